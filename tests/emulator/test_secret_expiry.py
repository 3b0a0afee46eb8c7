"""Client-secret expiry (``add_app(secret_expires_at=)``, ``add_secret(expires_at=)``) and the
typed keyword arguments of ``Emulator.from_file``."""

from __future__ import annotations

import inspect
import json
import math
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msal
import pytest

from aioentra.emulator import Emulator
from aioentra.emulator._state import secret_expiry

from .helpers import post_token, requests_session, secret_form

pytestmark = pytest.mark.anyio

VAULT = "https://vault.azure.net/.default"


# -- the pure conversion -------------------------------------------------------------------------


def test_an_aware_datetime_is_kept_and_unix_seconds_become_utc() -> None:
    aware = datetime(2030, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert secret_expiry(aware) is aware
    assert secret_expiry(1_900_000_000) == datetime(2030, 3, 17, 17, 46, 40, tzinfo=timezone.utc)
    assert secret_expiry(1_900_000_000.5) == datetime(
        2030, 3, 17, 17, 46, 40, 500000, tzinfo=timezone.utc
    )
    assert secret_expiry(None) is None


@pytest.mark.parametrize("value", [math.nan, math.inf, 10**20])
def test_an_unusable_timestamp_is_a_value_error(value: float) -> None:
    with pytest.raises(ValueError, match="not a usable Unix timestamp"):
        secret_expiry(value, "secret_expires_at")


def test_a_naive_datetime_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="secret_expires_at must be timezone-aware"):
        secret_expiry(datetime(2030, 1, 1), "secret_expires_at")


@pytest.mark.parametrize("value", [True, "2030-01-01T00:00:00Z", timedelta(days=1)])
def test_other_types_are_a_type_error(value: object) -> None:
    with pytest.raises(TypeError, match="an aware datetime or Unix seconds"):
        secret_expiry(value, "expires_at")  # type: ignore[arg-type]


# -- registration --------------------------------------------------------------------------------


def test_a_bad_expiry_registers_no_app() -> None:
    emu = Emulator()  # registration works before start()
    before = len(emu.state.apps)
    with pytest.raises(ValueError, match="timezone-aware"):
        emu.add_app("naive", secret_expires_at=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="needs a secret"):
        emu.add_app("no-secret", secret=False, secret_expires_at=time.time() + 60)
    assert len(emu.state.apps) == before


def test_add_secret_takes_unix_seconds_too() -> None:
    emu = Emulator()
    app = emu.add_app(secret=False)
    emu.add_secret(app, "later", expires_at=1_900_000_000)
    assert app.secrets[0].expires_at == datetime.fromtimestamp(1_900_000_000, timezone.utc)
    with pytest.raises(TypeError):
        emu.add_secret(app, "never", expires_at="tomorrow")  # type: ignore[arg-type]
    assert [s.value for s in app.secrets] == ["later"]


# -- the token endpoint --------------------------------------------------------------------------


async def test_a_secret_expired_by_unix_seconds_is_refused_7000222(emu: Emulator) -> None:
    expired = emu.add_app(secret="old", secret_expires_at=int(time.time()) - 60)
    valid = emu.add_app(secret="new", secret_expires_at=time.time() + 3600)
    status, body, _ = await post_token(emu, secret_form(expired.client_id, "old"))
    assert (status, body["error"], body["error_codes"]) == (401, "invalid_client", [7000222])
    assert expired.client_id in body["error_description"]
    status, body, _ = await post_token(emu, secret_form(valid.client_id, "new"))
    assert status == 200, body
    assert emu.requests.count("token", status=401) == 1


def test_msal_sees_the_expired_secret_as_7000222(threaded_emu: Emulator) -> None:
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    app = threaded_emu.add_app("msal-expired", secret="old", secret_expires_at=past)
    with requests_session(threaded_emu) as session:
        cca = msal.ConfidentialClientApplication(
            app.client_id,
            client_credential="old",
            authority=threaded_emu.authority,
            instance_discovery=False,
            http_client=session,
        )
        result = cca.acquire_token_for_client([VAULT])
    assert result.get("error") == "invalid_client", result
    assert result.get("error_codes") == [7000222]
    assert threaded_emu.requests.count("token", client_id=app.client_id) == 1


# -- from_file's keyword arguments ---------------------------------------------------------------


def test_from_file_takes_the_constructors_keyword_arguments() -> None:
    """Named, typed keyword-only parameters (not ``**kwargs``): a typo fails type checking,
    and at run time too."""
    init = inspect.signature(Emulator.__init__).parameters
    from_file = inspect.signature(Emulator.from_file).parameters
    expected = {name: p for name, p in init.items() if name not in ("self", "config")}
    options = {name: p for name, p in from_file.items() if name != "path"}
    assert list(options) == list(expected)
    for name, parameter in options.items():
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert (parameter.annotation, parameter.default) == (
            expected[name].annotation,
            expected[name].default,
        ), name


def test_from_file_passes_them_on_and_refuses_a_typo(tmp_path: Path) -> None:
    path = tmp_path / "emulator.json"
    path.write_text(json.dumps({"token_lifetime": 1200, "apps": [{"name": "daemon"}]}))
    emu = Emulator.from_file(path, token_lifetime=2400, clock_skew=10)
    assert (emu.token_lifetime, emu.clock_skew) == (2400, 10)
    with pytest.raises(TypeError, match="toke_lifetime"):
        Emulator.from_file(path, toke_lifetime=2400)  # type: ignore[call-arg]


def test_mypy_sees_a_typo_in_from_file_and_the_expiry_types(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    code = tmp_path / "user.py"
    code.write_text(
        "import time\n"
        "from datetime import datetime, timezone\n"
        "from aioentra.emulator import Emulator\n"
        "emu = Emulator.from_file('emulator.json', token_lifetime=1200)\n"
        "emu.add_app(secret_expires_at=time.time() - 60)\n"
        "emu.add_app(secret_expires_at=1_900_000_000)\n"
        "emu.add_secret('id', expires_at=datetime.now(timezone.utc))\n"
        "Emulator.from_file('emulator.json', toke_lifetime=1200)\n"
        "emu.add_app(secret_expires_at='2030-01-01')\n"
    )
    stdout, stderr, status = api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(code)]
    )
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    assert status == 1, stdout + stderr
    assert [line.split(":")[1] for line in errors] == ["8", "9"], stdout
    assert "toke_lifetime" in errors[0]
