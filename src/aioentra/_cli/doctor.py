"""``aioentra doctor``: check a configuration end to end and say what to fix.

One line per check, in the order a token request depends on them:

===============  ===========================================================  ==================
check            fails (exit status) / warns when                             skipped when
===============  ===========================================================  ==================
configuration    the settings do not load or do not fit together (3)          never
authority        OIDC discovery is unreachable (5), refused (table), or lacks   configuration fails
                 issuer / token_endpoint / jwks_uri, or its issuer names
                 another tenant (5)
credential       it does not load (table); warn: a certificate expires        configuration fails
                 within 30 days
scope            no '{resource}/.default' (3); warn: no scope given           never
token            the token endpoint refuses or fails (table)                  scope or credential
roles            warn: the token has no roles                                 no token
===============  ===========================================================  ==================

"table" is :data:`aioentra._cli.EXIT_CODES`. The exit status is the highest of the failed
checks' (0 when nothing failed; warnings do not fail). Nothing secret is shown: checks name
settings and show credential reprs, which mask secrets, and the token's claims.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from . import Command, Output, error_document, exit_code_for, render_error
from ._jwt import claims_or_empty, human_duration
from ._options import add_config_options, build_provider, load_settings, source_of

if TYPE_CHECKING:
    from aioentra._provider import TokenProvider

__all__ = [
    "COMMAND",
    "EXPIRY_WARNING",
    "Check",
    "judge_discovery",
    "judge_expiry",
    "judge_roles",
    "judge_scope",
    "run_checks",
]

Status = Literal["ok", "warn", "fail", "skip"]
EXPIRY_WARNING = dt.timedelta(days=30)
NO_ROLES_HINT = (
    "grant admin consent for the app's application permissions (API permissions -> Grant "
    "admin consent), or assign the app a role on the API"
)
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


@dataclass(frozen=True)
class Check:
    """One check's verdict; ``exit_code`` is the status it asks for when it failed."""

    name: str
    status: Status
    message: str
    hint: str | None = None
    exit_code: int = 0
    error: dict[str, Any] | None = field(default=None)

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"name": self.name, "status": self.status}
        document["message"] = self.message
        if self.hint:
            document["hint"] = self.hint
        if self.status == "fail":
            document["exit_code"] = self.exit_code
        if self.error is not None:
            document["error"] = self.error
        return document


def _failed(name: str, error: BaseException) -> Check:
    document = error_document(error)
    return Check(
        name,
        "fail",
        document["message"],
        hint=document.get("hint"),
        exit_code=int(exit_code_for(error)),
        error=document,
    )


def _skip(name: str, why: str) -> Check:
    return Check(name, "skip", why)


# -- the pure judgements ---------------------------------------------------------------------------


def judge_discovery(document: object, *, tenant: str, host: str) -> Check:
    """Is this OIDC discovery document sane for ``tenant`` at authority ``host``?"""
    name = "authority"
    hint = (
        "a proxy, or a wrong authority host (AZURE_AUTHORITY_HOST / 'Instance'), may be answering."
    )
    if not isinstance(document, Mapping):
        return Check(name, "fail", "the discovery document is not a JSON object", hint, 5)
    missing = [
        key
        for key in ("issuer", "token_endpoint", "jwks_uri")
        if not isinstance(document.get(key), str) or not document[key]
    ]
    if missing:
        return Check(name, "fail", f"the discovery document lacks {', '.join(missing)}", hint, 5)
    issuer = str(document["issuer"])
    segments = urlsplit(issuer).path.strip("/").split("/")
    named = segments[0] if segments else ""
    if tenant.lower() == "organizations":
        if named != "{tenantid}":
            return Check(name, "fail", f"issuer {issuer!r} is not multi-tenant", hint, 5)
        identity = "multi-tenant ('organizations')"
    elif _GUID.match(tenant):
        if named.lower() != tenant.lower():
            return Check(
                name,
                "fail",
                f"the issuer {issuer!r} names tenant {named!r}, not {tenant!r}",
                hint,
                5,
            )
        identity = f"tenant {tenant}"
    else:
        if not _GUID.match(named):
            return Check(name, "fail", f"the issuer {issuer!r} names no tenant id", hint, 5)
        identity = f"tenant {tenant} is {named}"
    endpoint_host = urlsplit(str(document["token_endpoint"])).netloc.lower()
    if endpoint_host != urlsplit(host).netloc.lower():
        return Check(
            name,
            "warn",
            f"{identity}; but token_endpoint is on {endpoint_host}, not the authority's host",
            "check the authority host (a sovereign cloud's, or AZURE_AUTHORITY_HOST).",
        )
    return Check(name, "ok", f"{identity}; issuer {issuer}; token_endpoint and jwks_uri present")


def judge_expiry(not_valid_after: dt.datetime, now: dt.datetime, what: str) -> Check:
    """A certificate's expiry: fail once expired, warn within :data:`EXPIRY_WARNING`."""
    left = not_valid_after - now
    day = not_valid_after.date().isoformat()
    renew = "create a new certificate, register its public part on the app, and switch to it"
    if left <= dt.timedelta(0):
        return Check("credential", "fail", f"{what} expired on {day}", renew + ".", 3)
    if left < EXPIRY_WARNING:
        return Check(
            "credential",
            "warn",
            f"{what} expires on {day} (in {human_duration(left.total_seconds())})",
            renew + " before then.",
        )
    return Check(
        "credential",
        "ok",
        f"{what} loaded; valid until {day} (in {human_duration(left.total_seconds())})",
    )


def judge_scope(scope: str | None) -> Check:
    if not scope:
        return Check(
            "scope",
            "warn",
            "no scope given: the token and its roles are not checked",
            "pass --scope {resource}/.default (or set 'scope' in parameters.json).",
        )
    from aioentra._authority import validate_scope
    from aioentra._errors import InvalidScopeError

    try:
        validate_scope(scope)
    except InvalidScopeError as error:
        return _failed("scope", error)
    if scope != scope.strip():
        return Check(
            "scope", "fail", f"scope {scope!r} has surrounding white space", "strip it.", 3
        )
    return Check("scope", "ok", scope)


def judge_roles(claims: Mapping[str, Any]) -> Check:
    """The roles the API will see in the app's tokens."""
    audience = f" (aud {claims['aud']})" if "aud" in claims else ""
    roles = claims.get("roles")
    if isinstance(roles, list) and roles:
        return Check("roles", "ok", f"{', '.join(str(r) for r in roles)}{audience}")
    if not claims:
        return Check("roles", "warn", "the token is not a JWT: its roles cannot be read")
    return Check("roles", "warn", f"the token has no roles{audience}", NO_ROLES_HINT)


def certificate_expiry(credential: object) -> tuple[str, dt.datetime] | None:
    """``(description, not_valid_after)`` of the certificate a credential signs with, when it
    can tell: a Certificate, a chain's serving member, a loaded Key Vault certificate."""
    current = getattr(credential, "current", None)  # CredentialChain: the member serving
    if current is not None and current is not credential:
        return certificate_expiry(current)
    expiry = getattr(credential, "not_valid_after", None)
    if isinstance(expiry, dt.datetime):
        return f"certificate {getattr(credential, 'subject', '')}".rstrip(), expiry
    loaded = getattr(credential, "_current", None)  # KeyVaultCertificate's material in use
    if callable(loaded) and getattr(credential, "kind", None) == "certificate":
        try:
            value = loaded().value
        except Exception:
            return None
        found = certificate_expiry(value)
        if found is not None:
            return f"Key Vault {found[0]}", found[1]
    return None


# -- the checks that talk to the network -----------------------------------------------------------


async def check_discovery(provider: TokenProvider, args: argparse.Namespace) -> Check:
    import asyncio
    import ssl

    import aiohttp

    from aioentra._errors import (
        ConfigurationError,
        IdentityProviderUnavailableError,
        ThrottledError,
        error_from_response,
    )
    from aioentra._netfail import connection_error

    url = f"{provider.authority}/v2.0/.well-known/openid-configuration"
    try:
        tls = ssl.create_default_context(cafile=args.ca_file) if args.ca_file else True
    except (OSError, ssl.SSLError):
        return _failed(
            "authority", ConfigurationError(f"ca_file {args.ca_file!r} could not be loaded")
        )
    timeout = aiohttp.ClientTimeout(total=min(args.timeout, 10.0))
    try:
        async with (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=tls), timeout=timeout, trust_env=True
            ) as session,
            session.get(url, headers={"Accept": "application/json"}) as response,
        ):
            status = response.status
            try:
                document = await response.json(content_type=None)
            except ValueError:
                document = None
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        return _failed("authority", connection_error(f"GET {url}", exc))
    if status == 429 or status >= 500:
        # Failing or throttling (an Entra-shaped body does not make it an OAuth refusal).
        said = (
            error_from_response(document, status=status)
            if isinstance(document, dict) and "error" in document
            else None
        )
        unavailable = ThrottledError if status == 429 else IdentityProviderUnavailableError
        return _failed(
            "authority",
            unavailable(
                f"OIDC discovery failed: HTTP {status} ({url})",
                hint="the identity provider is failing or throttling; try again later.",
                error=said.error if said else None,
                error_codes=said.error_codes if said else (),
                correlation_id=said.correlation_id if said else None,
                trace_id=said.trace_id if said else None,
                status=status,
            ),
        )
    if status != 200:
        if isinstance(document, dict) and "error" in document:
            return _failed(
                "authority",
                error_from_response(document, status=status, context="OIDC discovery failed"),
            )
        return Check(
            "authority",
            "fail",
            f"OIDC discovery answered HTTP {status} ({url})",
            "check the authority host and tenant; a proxy may be answering.",
            5,
        )
    authority = urlsplit(provider.authority)
    return judge_discovery(
        document, tenant=provider.tenant_id, host=f"{authority.scheme}://{authority.netloc}"
    )


async def run_checks(args: argparse.Namespace) -> list[Check]:
    """Every check, in order; a check that cannot run is skipped, naming why."""
    checks: list[Check] = []
    try:
        settings = load_settings(args)
        provider = build_provider(settings, args)
    except Exception as error:
        checks.append(_failed("configuration", error))
        checks += [_skip(n, "the configuration does not load") for n in ("authority", "credential")]
        checks.append(judge_scope(args.scope))
        checks += [_skip(n, "the configuration does not load") for n in ("token", "roles")]
        return checks
    checks.append(
        Check(
            "configuration",
            "ok",
            f"client_id {provider.client_id}, authority {provider.authority}, from "
            f"{source_of(args)}",
        )
    )
    try:
        checks.append(await check_discovery(provider, args))
        try:
            await provider.__aenter__()  # starts the credential; closes itself if that fails
        except Exception as error:
            checks.append(_failed("credential", error))
            started = False
        else:
            started = True
            found = certificate_expiry(provider.credential)
            if found is None:
                checks.append(Check("credential", "ok", f"{provider.credential!r} loaded"))
            else:
                checks.append(judge_expiry(found[1], dt.datetime.now(dt.timezone.utc), found[0]))
        scope = args.scope or settings.scope
        checks.append(judge_scope(scope))
        if not started or checks[-1].status != "ok":
            why = "the credential does not load" if not started else "no usable scope"
            checks += [_skip("token", why), _skip("roles", "no token")]
            return checks
        assert scope is not None
        try:
            token = await provider.get_token(scope, tenant_id=args.tenant)
        except Exception as error:
            checks += [_failed("token", error), _skip("roles", "no token")]
            return checks
        left = human_duration(token.expires_in())
        checks.append(Check("token", "ok", f"got a token for {scope} (expires in {left})"))
        checks.append(judge_roles(claims_or_empty(token.token)))
        return checks
    finally:
        await provider.close()


def worst(checks: list[Check]) -> int:
    return max((c.exit_code for c in checks if c.status == "fail"), default=0)


def run(args: argparse.Namespace, out: Output) -> int:
    import asyncio

    checks = asyncio.run(run_checks(args))
    code = worst(checks)
    out.document(
        {
            "source": source_of(args),
            "ok": code == 0,
            "exit_code": code,
            "checks": [check.as_json() for check in checks],
        }
    )
    out.line(f"aioentra doctor: checking the configuration from {source_of(args)}")
    indent = " " * 21  # under the message: status (5), name (14), two spaces
    for check in checks:
        out.line(f"{check.status:<5} {check.name:<14} {check.message}")
        if check.error is not None:
            for text in render_error(check.error)[1:]:
                shown = text.strip()
                out.line(
                    f"{indent}fix: {shown[6:]}" if shown.startswith("hint: ") else indent + shown
                )
        elif check.hint:
            out.line(f"{indent}fix: {check.hint}")
    failures = sum(c.status == "fail" for c in checks)
    warnings = sum(c.status == "warn" for c in checks)
    out.line(f"{failures} failed, {warnings} warned: exit status {code}")
    return code


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scope",
        help="the API's '{resource}/.default' scope to check a token for (default: "
        "parameters.json's 'scope')",
    )
    add_config_options(parser)


COMMAND = Command(
    "doctor",
    "check a configuration (authority, credential, scope, token, roles) and say what to fix",
    configure,
    run,
)
