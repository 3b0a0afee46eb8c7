"""Vault authentication and access policies, without HTTP (protocol-facts §4.3-4.4)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from aioentra.emulator._state import EmulatorState
from aioentra.emulator.identity import TokenMinter
from aioentra.emulator.keyvault._auth import Caller, authenticate, challenge_header
from aioentra.emulator.keyvault._errors import KeyVaultError
from aioentra.emulator.keyvault._policies import AccessPolicies

BASE = "https://localhost:8443"


@pytest.fixture
def state() -> EmulatorState:
    state = EmulatorState()
    state.base_url = BASE
    return state


def _signature_valid(state: EmulatorState) -> Callable[[str], bool]:
    def check(token: str) -> bool:
        try:
            state.signer.verify(token)
        except jwt.PyJWTError:
            return False
        return True

    return check


def _auth(state: EmulatorState, header: str | None, tenant_id: str) -> Caller:
    return authenticate(
        header,
        verify=state.verify_access_token,
        signature_valid=_signature_valid(state),
        tenant_id=tenant_id,
        clock_skew=state.clock_skew,
    )


def _error(state: EmulatorState, header: str | None, tenant_id: str) -> KeyVaultError:
    with pytest.raises(KeyVaultError) as excinfo:
        _auth(state, header, tenant_id)
    return excinfo.value


def _token(state: EmulatorState, tenant_id: str, resource: str = "https://vault.azure.net") -> str:
    return (
        TokenMinter(state)
        .mint(tenant_id=tenant_id, client_id="c1", object_id="o1", resource=resource)
        .token
    )


def test_challenge_header_names_tenant_and_resource() -> None:
    assert challenge_header(BASE + "/", "t1") == (
        f'Bearer authorization="{BASE}/t1", resource="https://vault.azure.net"'
    )


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer", "Bearer not-a-jwt"])
def test_missing_token_is_akv10000(state: EmulatorState, header: str | None) -> None:
    error = _error(state, header, "t")
    assert (error.status, error.code) == (401, "Unauthorized")
    assert error.message == "AKV10000: Request is missing a Bearer or PoP token."


def test_valid_token_gives_the_caller(state: EmulatorState) -> None:
    tenant = state.add_tenant()
    caller = _auth(state, f"Bearer {_token(state, tenant.tenant_id)}", tenant.tenant_id)
    assert (caller.object_id, caller.app_id) == ("o1", "c1")
    assert caller.display == f"appid=c1;oid=o1;iss={BASE}/{tenant.tenant_id}/v2.0"


def test_wrong_audience_is_akv10022(state: EmulatorState) -> None:
    tenant = state.add_tenant()
    token = _token(state, tenant.tenant_id, "https://graph.microsoft.com")
    error = _error(state, f"Bearer {token}", tenant.tenant_id)
    assert error.message == (
        "AKV10022: Invalid audience. Expected https://vault.azure.net, "
        "found: https://graph.microsoft.com."
    )


def test_foreign_signature_is_akv10046(state: EmulatorState) -> None:
    tenant = state.add_tenant()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"aud": "https://vault.azure.net", "tid": tenant.tenant_id, "exp": now + 600}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "other"})
    error = _error(state, f"Bearer {token}", tenant.tenant_id)
    assert error.message.startswith("AKV10046: Unable to resolve the key used for signature")
    assert token.split(".")[0] in error.message
    assert token.split(".")[1] not in error.message  # claims are never echoed


def test_expired_token(state: EmulatorState) -> None:
    tenant = state.add_tenant()
    token = (
        TokenMinter(state)
        .mint(
            tenant_id=tenant.tenant_id,
            client_id="c1",
            object_id="o1",
            resource="https://vault.azure.net",
            claims={"exp": int(time.time()) - 3600},
        )
        .token
    )
    error = _error(state, f"Bearer {token}", tenant.tenant_id)
    assert (error.status, error.message) == (
        401,
        "[TokenExpired] Error validating token: 'S2S12086'.",
    )


def test_token_of_another_tenant_is_akv10032(state: EmulatorState) -> None:
    home, other = state.add_tenant(), state.add_tenant()
    error = _error(state, f"Bearer {_token(state, other.tenant_id)}", home.tenant_id)
    assert error.message.startswith("AKV10032: Invalid issuer. Expected one of ")
    assert f"{BASE}/{home.tenant_id}/v2.0" in error.message


def test_access_policies() -> None:
    policies = AccessPolicies()
    caller = Caller(object_id=str(uuid.uuid4()), app_id="a", issuer="i", tenant_id="t")
    with pytest.raises(KeyVaultError) as excinfo:
        policies.check(caller, "secrets", "get", vault_name="localhost", location="local")
    error = excinfo.value
    assert (error.status, error.code, error.inner_code) == (403, "Forbidden", "AccessDenied")
    assert error.message == (
        f"The user, group or application 'appid=a;oid={caller.object_id};iss=i' does not have "
        "secrets get permission on key vault 'localhost;location=local'. For help resolving "
        "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"
    )
    policies.grant(caller.object_id.upper(), "secrets", ["Get"])
    policies.check(caller, "secrets", "get", vault_name="v", location="l")
    with pytest.raises(KeyVaultError):
        policies.check(caller, "secrets", "list", vault_name="v", location="l")
    assert policies.grant(caller.object_id, "secrets", ["all"]) >= {"list", "purge"}
    policies.revoke(caller.object_id, "secrets", ["purge"])
    assert "purge" not in policies.permissions(caller.object_id)
    policies.remove(caller.object_id)
    assert policies.permissions(caller.object_id) == frozenset()
    with pytest.raises(ValueError, match="Unknown secrets permission"):
        policies.grant(caller.object_id, "secrets", ["encrypt"])


def test_access_policy_kinds_are_independent() -> None:
    policies = AccessPolicies()
    caller = Caller(object_id=str(uuid.uuid4()), app_id="a", issuer="i", tenant_id="t")
    assert policies.grant(caller.object_id, "keys", ["Get", "SIGN", "unwrapKey"]) == {
        "get",
        "sign",
        "unwrapkey",
    }
    policies.check(caller, "keys", "sign", vault_name="v", location="l")
    for kind in ("secrets", "certificates"):
        with pytest.raises(KeyVaultError) as excinfo:
            policies.check(caller, kind, "get", vault_name="v", location="l")  # type: ignore[arg-type]
        assert f"does not have {kind} get permission" in excinfo.value.message
    assert policies.grant(caller.object_id, "certificates", ["all"]) >= {"get", "managecontacts"}
    with pytest.raises(ValueError, match="Unknown keys permission"):
        policies.grant(caller.object_id, "keys", ["set"])
    with pytest.raises(TypeError, match="as a list"):
        policies.grant(caller.object_id, "keys", "sign")
