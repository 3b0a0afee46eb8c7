"""Fault injection (every kind, counts, filters, Retry-After) and the request log."""

from __future__ import annotations

import json
import time

import aiohttp
import pytest

from aioentra.emulator import Emulator, Fault

from .helpers import http, secret_form

pytestmark = pytest.mark.anyio


async def call_token(emu: Emulator, client_id: str, secret: str) -> tuple[int, str, dict[str, str]]:
    async with (
        http(emu) as session,
        session.post(emu.token_endpoint, data=secret_form(client_id, secret)) as r,
    ):
        return r.status, await r.text(), dict(r.headers)


async def test_status_fault_with_count(emu: Emulator) -> None:
    app = emu.add_app()
    emu.faults.add(Fault("token", "status", status=503, count=2))
    results = [await call_token(emu, app.client_id, str(app.secret)) for _ in range(3)]
    assert [r[0] for r in results] == [503, 503, 200]
    body = json.loads(results[0][1])
    assert (body["error"], body["error_codes"]) == ("temporarily_unavailable", [90033])
    assert results[0][2]["Content-Type"].startswith("application/json")
    assert emu.requests.count("token", status=503) == 2
    assert [r.fault for r in emu.requests.filter("token")] == ["status", "status", None]
    assert emu.faults.active == []


async def test_throttle_has_retry_after_and_json(emu: Emulator) -> None:
    app = emu.add_app()
    emu.faults.add(Fault("token", "throttle", retry_after=7))
    status, text, headers = await call_token(emu, app.client_id, str(app.secret))
    assert (status, headers["Retry-After"]) == (429, "7")
    assert json.loads(text)["error"] == "temporarily_unavailable"
    emu.faults.add(Fault("token", "status", status=500, retry_after=2))
    status, _, headers = await call_token(emu, app.client_id, str(app.secret))
    assert (status, headers["Retry-After"]) == (500, "2")


async def test_latency_then_normal(emu: Emulator) -> None:
    app = emu.add_app()
    emu.faults.add(Fault("token", "latency", delay=0.3))
    started = time.monotonic()
    status, _, _ = await call_token(emu, app.client_id, str(app.secret))
    assert status == 200
    assert time.monotonic() - started >= 0.3


async def test_reset_drops_connection(emu: Emulator) -> None:
    app = emu.add_app()
    emu.faults.add(Fault("token", "reset"))
    with pytest.raises(aiohttp.ClientError):
        await call_token(emu, app.client_id, str(app.secret))
    record = emu.requests.records[-1]
    assert (record.status, record.fault) == (None, "reset")
    assert (await call_token(emu, app.client_id, str(app.secret)))[0] == 200


async def test_malformed_json_and_html(emu: Emulator) -> None:
    app = emu.add_app()
    emu.faults.add(Fault("token", "malformed_json"))
    emu.faults.add(Fault("discovery", "html", status=502))
    status, text, headers = await call_token(emu, app.client_id, str(app.secret))
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        json.loads(text)
    async with http(emu) as session:
        url = f"{emu.authority}/v2.0/.well-known/openid-configuration"
        async with session.get(url) as response:
            assert response.status == 502
            assert response.content_type == "text/html"
            assert "<html>" in await response.text()


async def test_filters_and_until_removed(emu: Emulator) -> None:
    first, second = emu.add_app(), emu.add_app()
    fault = emu.faults.add(
        Fault("token", "status", status=500, count=None, client_id=second.client_id)
    )
    assert (await call_token(emu, first.client_id, str(first.secret)))[0] == 200
    for _ in range(2):
        assert (await call_token(emu, second.client_id, str(second.secret)))[0] == 500
    emu.faults.remove(fault)
    assert (await call_token(emu, second.client_id, str(second.secret)))[0] == 200
    emu.faults.add(Fault("token", "status", tenant="other.onmicrosoft.com"))
    emu.faults.add(Fault("jwks", "status", status=503, tenant=emu.domain))
    assert (await call_token(emu, first.client_id, str(first.secret)))[0] == 200
    emu.faults.clear()
    assert emu.faults.active == []


def test_fault_validation() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("token", "explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="count"):
        Fault("token", "status", count=0)


async def test_request_log_records_safe_fields(emu: Emulator) -> None:
    app = emu.add_app()
    await call_token(emu, app.client_id, str(app.secret))
    await call_token(emu, app.client_id, "wrong-secret")
    ok, bad = emu.requests.filter("token")
    assert (ok.method, ok.status, ok.tenant, ok.client_id) == (
        "POST",
        200,
        emu.tenant_id,
        app.client_id,
    )
    assert (ok.grant_type, ok.auth_method, ok.scope) == (
        "client_credentials",
        "client_secret_post",
        "https://vault.azure.net/.default",
    )
    assert bad.error_codes == (7000215,)
    assert bad.status == 401
    assert str(app.secret) not in repr(emu.requests.records)
    assert "wrong-secret" not in repr(emu.requests.records)
    assert emu.requests.count(client_id=app.client_id) == 2
    assert emu.requests.count("token", status=401) == 1
    assert emu.requests.count("token", tenant=emu.tenant_id) == 2
    emu.requests.clear()
    assert len(emu.requests) == 0
