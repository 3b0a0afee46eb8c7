"""The pure parts of the shared cache: acceptance, sealing, back-off, polling, validation.

No sockets and no sleeps (no redis-server needed either).
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys

import pytest
from cache_support import KEY_A, KEY_A_B64, KEY_B, token

from aioentra import ConfigurationError
from aioentra._cache import (
    KEY_ID_BYTES,
    NONCE_BYTES,
    POLL_CAP,
    POLL_FIRST,
    POLL_FLOOR,
    VERSION,
    CachedToken,
    Keyring,
    Outage,
    Unreadable,
    acceptable,
    entry_ttl_ms,
    poll_budget,
    poll_delay,
)
from aioentra.redis import RedisCache, _describe, _display_url

CACHE_KEY = "https://login.microsoftonline.com|tenant|client|api://x/.default|"
TOKEN = CachedToken("eyJ.the-access-token.sig", 1_800_000_000.0, 3600.0, 1800.0)


# -- CachedToken and acceptance ------------------------------------------------------------------


def test_a_cached_token_is_what_was_answered() -> None:
    assert TOKEN.expires_on() == 1_800_003_600.0
    assert TOKEN.remaining(1_800_003_000.0) == 600.0
    assert TOKEN.remaining(1_800_004_000.0) == -400.0
    assert "the-access-token" not in repr(TOKEN)


@pytest.mark.parametrize(
    ("now", "newer_than", "min_remaining", "expected"),
    [
        (1_800_000_000.0, 0.0, 300.0, True),  # fresh
        (1_800_003_300.0, 0.0, 300.0, True),  # exactly min_remaining left
        (1_800_003_301.0, 0.0, 300.0, False),  # a second less
        (1_800_000_000.0, 0.0, 3601.0, False),  # more than it ever had
        (1_800_004_000.0, 0.0, 0.0, False),  # expired
        (1_800_000_000.0, 1_800_003_600.0, 0.0, False),  # the caller holds this one
        (1_800_000_000.0, 1_800_003_599.0, 0.0, True),  # newer than the caller's
    ],
)
def test_acceptable(now: float, newer_than: float, min_remaining: float, expected: bool) -> None:
    verdict = acceptable(TOKEN, now=now, newer_than=newer_than, min_remaining=min_remaining)
    assert verdict is expected


def test_the_token_the_caller_holds_is_never_handed_back() -> None:
    held = token("held-token")
    assert acceptable(held, now=held.issued_at, unlike="another-token")
    assert not acceptable(held, now=held.issued_at, unlike="held-token")


def test_an_entry_expires_with_its_token_never_after() -> None:
    assert entry_ttl_ms(TOKEN, 1_800_000_000.0) == 3_600_000
    assert entry_ttl_ms(TOKEN, 1_800_003_599.9994) is None  # under a millisecond left
    assert entry_ttl_ms(TOKEN, 1_800_003_599.5) == 500
    assert entry_ttl_ms(TOKEN, 1_800_003_600.0) is None
    assert entry_ttl_ms(TOKEN, 1_800_009_000.0) is None
    assert entry_ttl_ms(CachedToken("t", 0.0, math.nan, None), 0.0) is None


# -- Keyring -------------------------------------------------------------------------------------


def test_a_sealed_entry_opens_only_under_its_own_cache_key() -> None:
    ring = Keyring(KEY_A)
    blob = ring.encode(CACHE_KEY, TOKEN)
    assert ring.decode(CACHE_KEY, blob) == TOKEN
    assert ring.decode(CACHE_KEY + "other", blob) is None
    why = ring.open(CACHE_KEY + "other", blob)
    assert isinstance(why, Unreadable)
    assert why.key_id == ring.key_ids[0]
    assert "another cache key" in str(why)


def test_the_format_is_version_key_id_nonce_ciphertext() -> None:
    ring = Keyring(KEY_A)
    blob = ring.encode(CACHE_KEY, TOKEN)
    assert blob[0] == VERSION
    assert blob[1 : 1 + KEY_ID_BYTES].hex() == ring.key_ids[0]
    assert blob != ring.encode(CACHE_KEY, TOKEN)  # a fresh nonce each time
    plain = json.dumps({"t": TOKEN.access_token}).encode()
    for needle in (
        TOKEN.access_token.encode(),
        base64.b64encode(TOKEN.access_token.encode()),
        plain,
        KEY_A,
    ):
        assert needle not in blob
    record = {"t": TOKEN.access_token, "i": TOKEN.issued_at, "e": 3600.0, "r": 1800.0}
    compact = json.dumps(record, separators=(",", ":")).encode()
    assert len(blob) == 1 + KEY_ID_BYTES + NONCE_BYTES + len(compact) + 16  # 16: the GCM tag


def test_any_change_to_an_entry_makes_it_a_miss() -> None:
    ring = Keyring(KEY_A)
    blob = ring.encode(CACHE_KEY, TOKEN)
    for position in range(len(blob)):
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        assert ring.decode(CACHE_KEY, bytes(tampered)) is None, position
    for length in range(len(blob)):
        assert ring.decode(CACHE_KEY, blob[:length]) is None
    assert ring.decode(CACHE_KEY, blob + b"x") is None


@pytest.mark.parametrize(
    "garbage", [b"", b"\x00", b"\x01" * 200, b"not an entry at all, just text", "text", 42, None]
)
def test_garbage_is_a_miss_not_an_exception(garbage: object) -> None:
    ring = Keyring(KEY_A)
    assert ring.decode(CACHE_KEY, garbage) is None  # type: ignore[arg-type]
    assert isinstance(ring.open(CACHE_KEY, garbage), Unreadable)


def test_an_authentic_entry_that_is_not_a_token_is_a_miss() -> None:
    ring = Keyring(KEY_A)
    cipher = ring._ciphers[bytes.fromhex(ring.key_ids[0])]
    header = bytes([VERSION]) + bytes.fromhex(ring.key_ids[0])
    from aioentra._cache import _aad

    for plain in (b"[1, 2]", b'{"t": "", "i": 1, "e": 2}', b'{"t": "x", "i": "1", "e": 2}', b"{"):
        nonce = bytes(NONCE_BYTES)
        blob = header + nonce + cipher.encrypt(nonce, plain, _aad(header, CACHE_KEY))
        assert ring.decode(CACHE_KEY, blob) is None, plain


def test_key_rotation_the_first_key_seals_every_key_opens() -> None:
    old, rotated, new_only = Keyring(KEY_A), Keyring([KEY_B, KEY_A]), Keyring(KEY_B)
    old_entry = old.encode(CACHE_KEY, TOKEN)
    assert rotated.decode(CACHE_KEY, old_entry) == TOKEN
    new_entry = rotated.encode(CACHE_KEY, TOKEN)
    assert new_entry[1 : 1 + KEY_ID_BYTES].hex() == new_only.key_ids[0]
    assert new_only.decode(CACHE_KEY, new_entry) == TOKEN
    why = old.open(CACHE_KEY, new_entry)
    assert isinstance(why, Unreadable)
    assert why.key_id == new_only.key_ids[0]
    assert "not in this keyring" in str(why)


def test_keys_are_accepted_raw_base64_urlsafe_unpadded_or_hex() -> None:
    expected = Keyring(KEY_A).key_ids
    for form in (
        KEY_A,
        bytearray(KEY_A),
        KEY_A_B64,
        f"  {KEY_A_B64}\n",
        KEY_A_B64.encode(),
        base64.urlsafe_b64encode(KEY_A).decode().rstrip("="),
        KEY_A.hex(),
        [KEY_A_B64],
    ):
        assert Keyring(form).key_ids == expected, form  # type: ignore[arg-type]
    assert Keyring([KEY_A, KEY_A_B64]).key_ids == expected  # one key given twice


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ([], "no cache key"),
        (b"short", "5 bytes; it must be 32"),
        (base64.b64encode(b"x" * 16).decode(), "16 bytes after base64 decoding; it must be 32"),
        ("not base64 !!", "neither base64 nor hex"),
        ([KEY_A, b"\xff" * 31], "cache key 2 of 2 is 31 bytes"),
        (42, "not int"),
        ([KEY_A, 42], "cache key 2 of 2 must be bytes or text"),
    ],
)
def test_a_bad_key_is_a_configuration_error_without_the_key(keys: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        Keyring(keys)  # type: ignore[arg-type]
    assert "openssl rand -base64 32" in str(caught.value)
    assert KEY_A_B64 not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_a_keyring_shows_key_ids_never_keys() -> None:
    ring = Keyring([KEY_B, KEY_A])
    shown = repr(ring)
    assert shown.startswith("Keyring(key_ids=[")
    for material in (KEY_A, KEY_B):
        assert material.hex() not in shown and base64.b64encode(material).decode() not in shown
    assert len(ring.key_ids) == 2 and all(len(kid) == 2 * KEY_ID_BYTES for kid in ring.key_ids)


# -- back-off and polling ------------------------------------------------------------------------


def test_outage_backs_off_from_one_second_doubling_to_thirty() -> None:
    outage = Outage()
    now = 0.0
    assert outage.allows(now)
    delays = []
    for round_ in range(8):
        assert outage.failed(now) is (round_ == 0)  # only the first failure is reported
        delays.append(outage.retry_at - now)
        assert not outage.allows(now) and not outage.allows(outage.retry_at - 0.001)
        now = outage.retry_at
        assert outage.allows(now)
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert outage.succeeded() is True
    assert outage.succeeded() is False
    assert outage.allows(now) and outage.failed(now) is True  # a new outage: reported again


def test_failures_of_calls_already_in_flight_do_not_escalate() -> None:
    outage = Outage()
    assert outage.failed(10.0)
    for _ in range(50):
        assert not outage.failed(10.2)
    assert outage.failures == 1 and outage.retry_at == 11.0


def test_polls_start_fast_and_slow_down_to_the_cap() -> None:
    delays = [poll_delay(n, time_left=10.0, lease_left=None) for n in range(12)]
    assert delays[0] == POLL_FIRST
    assert delays == sorted(delays)
    assert max(delays) == POLL_CAP
    assert sum(delays[:6]) < 0.5  # a typical token request is answered within these


def test_polls_wake_up_for_the_end_of_the_lease_and_of_the_wait() -> None:
    assert poll_delay(10, time_left=10.0, lease_left=0.03) == pytest.approx(0.03 + POLL_FLOOR)
    assert poll_delay(10, time_left=0.07, lease_left=None) == pytest.approx(0.07)
    assert poll_delay(10, time_left=0.0, lease_left=0.0) == POLL_FLOOR  # never a spin
    assert poll_delay(10, time_left=-5.0, lease_left=-1.0) == POLL_FLOOR


def test_a_wait_has_a_bounded_number_of_polls() -> None:
    assert poll_budget(5.0) == 36
    assert poll_budget(0.1) == 17
    total, attempt = 0.0, 0
    while total < 5.0:  # the schedule fits the budget for the whole wait
        total += poll_delay(attempt, time_left=5.0 - total, lease_left=None)
        attempt += 1
    assert attempt <= poll_budget(5.0)


# -- RedisCache construction: validation, no network, no secrets ---------------------------------


def test_a_cache_is_built_without_connecting() -> None:
    cache = RedisCache("redis://:hunter2@192.0.2.1:6379/0", key=KEY_A)  # TEST-NET: unroutable
    assert repr(cache) == "RedisCache('redis://:***@192.0.2.1:6379/0', prefix='aioentra')"
    assert cache._client is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"url": "http://localhost:6379"}, "redis://, rediss:// or unix://"),
        ({"url": "localhost:6379"}, "redis://, rediss:// or unix://"),
        ({"url": "redis://localhost:notaport/0"}, "not a URL"),
        ({"url": "redis://localhost/0?db=x"}, "invalid"),
        ({"url": "unix://"}, "socket path"),
        ({"url": 6379}, "url must be text"),
        ({"key": b"short"}, "must be 32"),
        ({"prefix": ""}, "prefix"),
        ({"prefix": "has space"}, "prefix"),
        ({"lock_lease": 0}, "lock_lease must be a positive"),
        ({"wait_timeout": -1.0}, "wait_timeout must be a positive"),
        ({"socket_timeout": math.inf}, "socket_timeout must be a positive"),
        ({"connect_timeout": True}, "connect_timeout must be a number"),
        ({"client": object()}, "redis.asyncio.Redis"),
        ({"clock": 5}, "clock"),
    ],
)
def test_every_argument_is_checked_at_construction(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"key": KEY_A, **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        RedisCache(**arguments)  # type: ignore[arg-type]


def test_a_given_client_that_decodes_responses_is_refused() -> None:
    import redis.asyncio

    client = redis.asyncio.Redis(decode_responses=True)
    with pytest.raises(ConfigurationError, match="decode_responses=False"):
        RedisCache(key=KEY_A, client=client)


def test_urls_are_shown_without_passwords() -> None:
    assert _display_url("redis://user:p%40ss@host:6380/2") == "redis://user:***@host:6380/2"
    assert _display_url("rediss://:pw@host/0?ssl_cert_reqs=none") == "rediss://:***@host/0"
    assert _display_url("redis://pw@host") == "redis://***@host"
    assert _display_url("unix:///run/redis.sock?db=1&password=pw") == "unix:///run/redis.sock"
    assert _display_url("redis://host:6379/0") == "redis://host:6379/0"


def test_error_descriptions_mask_passwords() -> None:
    error = ConnectionError("auth failed for hunter22 at host\nsecond line")
    assert _describe(error, ["hunter22"]) == "ConnectionError: auth failed for *** at host"
    assert _describe(ConnectionError("x pw y"), ["pw"]) == "ConnectionError: (message withheld)"
    assert _describe(TimeoutError(), [], 1.5) == "TimeoutError: no answer within 1.5 s"


def test_a_missing_redis_py_says_what_to_install() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "try:\n    import aioentra.redis\n"
        "except Exception as error:\n    print(type(error).__name__, error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("ConfigurationError")
    assert "pip install 'aioentra[redis]'" in result.stdout
