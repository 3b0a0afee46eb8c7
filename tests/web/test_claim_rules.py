"""The pure claim rules (``aioentra._validation``): each row of the module's table, no server."""

from __future__ import annotations

from typing import Any

import pytest

from aioentra import Claims, ConfigurationError, InsufficientPermissionsError, InvalidTokenError
from aioentra._validation import (
    ClaimRules,
    check_claims,
    check_header,
    jose_header,
    missing_roles,
)

TID = "11111111-2222-3333-4444-555555555555"
OTHER = "99999999-2222-3333-4444-555555555555"
CLIENT = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
ISSUER = f"https://login.microsoftonline.com/{TID}/v2.0"
NOW = 1_800_000_000.0
RULES = ClaimRules.build(audience=CLIENT)


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "aud": CLIENT,
        "iss": ISSUER,
        "tid": TID,
        "exp": NOW + 600,
        "nbf": NOW - 60,
        "azp": "cccccccc-bbbb-cccc-dddd-eeeeeeeeeeee",
        "roles": ["A.Read"],
        "ver": "2.0",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def test_a_good_token() -> None:
    result = check_claims(claims(), RULES, issuer=ISSUER, now=NOW)
    assert result.roles == {"A.Read"}
    assert result.is_app_only
    assert result.app_id == "cccccccc-bbbb-cccc-dddd-eeeeeeeeeeee"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exp": None}, "no expiry"),
        ({"exp": NOW - 61}, "expired"),
        ({"exp": float("nan")}, "no expiry"),
        ({"exp": True}, "no expiry"),
        ({"nbf": NOW + 61}, "not valid yet"),
        ({"nbf": "soon"}, "not valid yet"),
        ({"tid": None}, "no tenant id"),
        ({"iss": "https://login.microsoftonline.com/other/v2.0"}, "issuer"),
        ({"iss": f"https://sts.windows.net/{OTHER}/"}, "issuer"),
        ({"tid": OTHER, "iss": f"https://login.microsoftonline.com/{OTHER}/v2.0"}, "issuer"),
        ({"tid": OTHER}, "issuer"),
        ({"aud": "api://someone-else"}, "audience"),
        ({"aud": [1, 2]}, "audience"),
    ],
)
def test_refusals(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTokenError, match=message) as caught:
        check_claims(claims(**changes), RULES, issuer=ISSUER, now=NOW)
    assert (caught.value.status, caught.value.error) == (401, "invalid_token")


def test_within_the_leeway() -> None:
    check_claims(claims(exp=NOW - 59, nbf=NOW + 59), RULES, issuer=ISSUER, now=NOW)


def test_v1_issuer_of_the_same_tenant_and_audience_list() -> None:
    v1 = claims(iss=f"https://sts.windows.net/{TID}/", aud=["x", f"api://{CLIENT}"], ver="1.0")
    assert check_claims(v1, RULES, issuer=ISSUER, now=NOW).version == "1.0"


def test_generic_oidc_has_no_v1_form_and_no_tenant_requirement() -> None:
    rules = ClaimRules.build(audience="orders", entra=False)
    issuer = "https://id.example.com"
    check_claims(claims(iss=issuer, aud="orders", tid=None), rules, issuer=issuer, now=NOW)
    with pytest.raises(InvalidTokenError, match="issuer"):
        check_claims(
            claims(iss=f"https://sts.windows.net/{TID}/", aud="orders"),
            rules,
            issuer=issuer,
            now=NOW,
        )


def test_multi_tenant_issuer_template_needs_the_allow_list() -> None:
    template = "https://login.microsoftonline.com/{tenantid}/v2.0"
    other = claims(tid=OTHER, iss=f"https://login.microsoftonline.com/{OTHER}/v2.0")
    with pytest.raises(InvalidTokenError, match="tenant"):
        check_claims(other, RULES, issuer=template, now=NOW)
    listed = ClaimRules.build(audience=CLIENT, tenants=[OTHER.upper()])
    assert check_claims(other, listed, issuer=template, now=NOW).tenant_id == OTHER
    with pytest.raises(InvalidTokenError, match="tenant"):
        check_claims(claims(), listed, issuer=template, now=NOW)


def test_app_only() -> None:
    rules = ClaimRules.build(audience=CLIENT, app_only=True)
    for user in (claims(scp="A.Read"), claims(idtyp="user")):
        with pytest.raises(InsufficientPermissionsError) as caught:
            check_claims(user, rules, issuer=ISSUER, now=NOW)
        assert caught.value.status == 403
    assert check_claims(claims(idtyp="app"), rules, issuer=ISSUER, now=NOW).is_app_only


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"alg": "none", "kid": "k"}, "algorithm"),
        ({"alg": "HS256", "kid": "k"}, "algorithm"),
        ({"alg": "RS512", "kid": "k"}, "algorithm"),
        ({"kid": "k"}, "algorithm"),
        ({"alg": "RS256"}, "kid"),
        ({"alg": "RS256", "kid": ""}, "kid"),
    ],
)
def test_header_refusals(header: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidTokenError, match=message):
        check_header(header, RULES)


def test_header_accepts_the_allowed_algorithm() -> None:
    assert check_header({"alg": "RS256", "kid": "k"}, RULES) == ("RS256", "k")


@pytest.mark.parametrize(
    "bad",
    [
        {"audience": ""},
        {"audience": []},
        {"audience": "x", "algorithms": ["HS256"]},
        {"audience": "x", "algorithms": ["none"]},
        {"audience": "x", "algorithms": []},
        {"audience": "x", "tenants": []},
        {"audience": "x", "leeway": -1},
    ],
)
def test_configuration_is_checked(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ClaimRules.build(**bad)


def test_missing_roles_any_and_all() -> None:
    token = Claims(claims(roles=["A.Read", "B.Read"]))
    assert missing_roles(token, ["A.Read", "C.Write"], require_all=False) == []
    assert missing_roles(token, ["C.Write", "D.Write"], require_all=False) == [
        "C.Write",
        "D.Write",
    ]
    assert missing_roles(token, ["A.Read", "C.Write"], require_all=True) == ["C.Write"]
    assert Claims(claims(roles="A.Read")).roles == frozenset()  # not a list: no roles


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a.b.c.d", "!!!.e30.sig", "bnVsbA.e30.sig", "W10.e30.sig", "e30=.e30.sig"],
)
def test_a_header_that_is_not_a_jose_object_is_refused(token: str) -> None:
    with pytest.raises(InvalidTokenError, match="not a JWT"):
        jose_header(token)


def test_critical_extensions_are_refused() -> None:
    with pytest.raises(InvalidTokenError, match="critical"):
        check_header({"alg": "RS256", "kid": "k", "crit": ["exp"]}, RULES)
