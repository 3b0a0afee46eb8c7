"""Authority and scope rules for the client-credentials grant, checked before any request.

Rules implemented (Microsoft identity platform, v2.0 endpoint):

* A daemon's authority is https and *tenanted*: ``common`` and ``consumers`` have
  no tenant admin to consent, and ``organizations`` works only with a client
  secret (msal's documented limitation for certificates).
* An OpenID issuer given as ``oidc_authority`` (:class:`OidcAuthority`) follows the same
  https rule and needs a path: msal reads ``{issuer}/.well-known/openid-configuration`` and
  refuses an issuer at a host's root. A ``/.well-known`` URL is refused: msal compares the
  discovery document's ``issuer`` with the URL it was given.
* A default port spelled out (``https://host:443``, ``http://host:80``) is dropped: an issuer
  never names it, and msal's issuer check compares the URLs as text.
* Error messages never show a URL's user info (``user:password@``), which is refused:
  ``user:***@`` stands in for it.
* The scope of a client-credentials request is exactly one ``{resource}/.default``;
  when the resource id itself ends in ``/`` the scope has a double slash
  (``https://database.windows.net//.default``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import urlsplit

from ._errors import ConfigurationError, InvalidScopeError

__all__ = [
    "AZURE_CHINA",
    "AZURE_GOVERNMENT",
    "AZURE_PUBLIC_CLOUD",
    "AnyAuthority",
    "Authority",
    "OidcAuthority",
    "TenantRules",
    "is_loopback_host",
    "validate_scope",
]

AZURE_PUBLIC_CLOUD = "https://login.microsoftonline.com"
AZURE_GOVERNMENT = "https://login.microsoftonline.us"
AZURE_CHINA = "https://login.chinacloudapi.cn"

DEFAULT_SUFFIX = "/.default"
_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
_CIAM_SUFFIX = ".ciamlogin.com"
_HOST_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.?$")


_USERINFO = re.compile(r"^(\s*(?:[A-Za-z][A-Za-z0-9+.-]*:)?//|\s*)([^/?#\s]*)@")


def _without_userinfo(text: str) -> str:
    """``text`` (a URL as given) with its user info masked: ``https://user:***@host``, or
    ``https://***@host`` when there is no password (a lone user name may be a token)."""
    match = _USERINFO.match(text)
    if match is None:
        return text
    user, colon, _ = match[2].partition(":")
    shown = f"{user}:***" if colon and user and "@" not in user else "***"
    return f"{match[1]}{shown}@{text[match.end() :]}"


def _shown(value: object) -> str:
    """``repr`` of a URL setting for an error message, its user info masked."""
    return repr(_without_userinfo(value)) if isinstance(value, str) else repr(value)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1).

    ``*.localhost`` names are not included: not every resolver keeps them on loopback,
    and plain http must never leave the machine.
    """
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Authority:
    """A validated, tenanted authority such as ``https://login.microsoftonline.com/{tenant}``."""

    host: str
    """Scheme and network location, no trailing slash: ``https://login.microsoftonline.com``."""
    tenant: str

    @property
    def url(self) -> str:
        return f"{self.host}/{self.tenant}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/oauth2/v2.0/token"

    @property
    def is_https(self) -> bool:
        return self.host.startswith("https://")

    def with_tenant(self, tenant: str) -> Authority:
        return Authority(self.host, _check_tenant(tenant))

    @classmethod
    def parse(
        cls,
        authority: str,
        tenant_id: str | None = None,
        *,
        allow_insecure_http: bool = False,
        secret_credential: bool = True,
    ) -> Authority:
        """Validate ``authority`` (a host, or host + tenant path) and ``tenant_id``.

        ``secret_credential`` says whether the credential is a client secret: the
        ``organizations`` pseudo-tenant is refused for anything else.
        """
        if not isinstance(authority, str):
            raise ConfigurationError(
                f"the authority must be a string, not {type(authority).__name__}"
            )
        if tenant_id is not None and not isinstance(tenant_id, str):
            raise ConfigurationError(f"tenant_id must be a string, not {type(tenant_id).__name__}")
        raw = authority.strip()
        if "://" not in raw:
            raw = "https://" + raw
        origin, host, path = _checked_url(
            raw, authority, "authority", allow_insecure_http=allow_insecure_http
        )
        path_tenant = path.strip("/").split("/")[0] if path.strip("/") else ""
        if path_tenant and tenant_id and path_tenant.lower() != tenant_id.lower():
            raise ConfigurationError(
                f"the authority names tenant {path_tenant!r} but tenant_id is {tenant_id!r}",
                hint="give the tenant once, either in the authority path or as tenant_id.",
            )
        tenant = tenant_id or path_tenant
        if not tenant and host.endswith(_CIAM_SUFFIX):
            # External ID: https://{name}.ciamlogin.com/ defaults to {name}.onmicrosoft.com
            tenant = host[: -len(_CIAM_SUFFIX)] + ".onmicrosoft.com"
        if not tenant:
            raise ConfigurationError(
                "no tenant given",
                hint="set tenant_id (AZURE_TENANT_ID) to your tenant's GUID or domain name.",
            )
        tenant = _check_tenant(tenant)
        if tenant.lower() == "organizations" and not secret_credential:
            raise ConfigurationError(
                "the 'organizations' authority works only with a client secret",
                hint="use your tenant id with a certificate or assertion credential.",
            )
        return cls(origin, tenant)


WELL_KNOWN_SUFFIX = "/.well-known/openid-configuration"


@dataclass(frozen=True)
class OidcAuthority:
    """A validated OpenID Connect issuer, given as ``oidc_authority=``.

    msal (``ConfidentialClientApplication(oidc_authority=...)``) reads
    ``{issuer}/.well-known/openid-configuration``, checks that the document's ``issuer`` is this
    URL (or on the same scheme and host) and sends token requests to its ``token_endpoint``.
    For Entra External ID custom URL domains (``https://login.contoso.com/{tenant-id}/v2.0``)
    and other OpenID providers. The issuer needs a path: msal refuses a host's root.
    """

    host: str
    """Scheme and network location, no trailing slash: ``https://login.contoso.com``."""
    issuer: str
    """The issuer URL without a trailing slash."""

    @property
    def url(self) -> str:
        return self.issuer

    @property
    def tenant(self) -> str:
        """The issuer's first path segment: what msal takes as the authority's tenant (the
        tenant id of an External ID issuer ``https://login.contoso.com/{tenant-id}/v2.0``)."""
        return self.issuer[len(self.host) :].strip("/").split("/")[0]

    @property
    def discovery_url(self) -> str:
        """Where msal reads the OpenID configuration."""
        return self.issuer + WELL_KNOWN_SUFFIX

    @property
    def is_https(self) -> bool:
        return self.host.startswith("https://")

    @classmethod
    def parse(cls, issuer: str, *, allow_insecure_http: bool = False) -> OidcAuthority:
        """Validate an issuer URL: https (plain http for a loopback test server with
        ``allow_insecure_http``), a host, a path, no query, fragment or user info."""
        example = "https://login.contoso.com/{tenant-id}/v2.0"
        if not isinstance(issuer, str):
            raise ConfigurationError(
                f"oidc_authority must be a string, not {type(issuer).__name__}"
            )
        raw = issuer.strip()
        if "://" not in raw or any(c.isspace() or not c.isprintable() for c in raw):
            raise ConfigurationError(
                f"oidc_authority {_shown(issuer)} is not an issuer URL",
                hint=f"give the issuer as the provider's discovery document names it, e.g. "
                f"{example!r}.",
            )
        origin, _, path = _checked_url(
            raw,
            issuer,
            "oidc_authority",
            allow_insecure_http=allow_insecure_http,
            example=example,
        )
        path = path.rstrip("/")
        lowered = path.lower()
        if lowered.endswith("/.well-known") or "/.well-known/" in lowered:
            prefix = path[: lowered.index("/.well-known")]
            at_root = (
                ""
                if prefix.strip("/")
                else "; an issuer at a host's root cannot be used through msal"
            )
            if lowered.endswith(WELL_KNOWN_SUFFIX):
                raise ConfigurationError(
                    f"oidc_authority {_shown(issuer)} is the discovery document's URL, not the "
                    "issuer",
                    hint=f"pass {origin + prefix!r}: msal appends {WELL_KNOWN_SUFFIX!r} itself"
                    f"{at_root}.",
                )
            raise ConfigurationError(
                f"oidc_authority {_shown(issuer)} is a /.well-known URL, not the issuer",
                hint=f"give the issuer itself, as its discovery document's 'issuer' names it "
                f"(probably {origin + prefix!r}): msal appends {WELL_KNOWN_SUFFIX!r} to it and "
                f"checks that the document names the same issuer{at_root}.",
            )
        if not path.strip("/"):
            raise ConfigurationError(
                f"oidc_authority {_shown(issuer)} has no path",
                hint=f"msal takes an issuer with at least one path segment, such as {example!r}; "
                "an issuer at a host's root cannot be used through msal.",
            )
        return cls(origin, origin + path)


AnyAuthority: TypeAlias = "Authority | OidcAuthority"
"""What a provider's token requests go to: an Entra authority or an OpenID issuer."""


@dataclass(frozen=True)
class TenantRules:
    """Which tenants a provider may ask for tokens (multi-tenant apps).

    The authority's own tenant always; others only when listed in
    ``additionally_allowed_tenants`` (``"*"`` for any), or per request with the
    ``organizations`` authority, which has no tenant of its own. Tenants compare
    case-insensitively, so one tenant is one cache key however it is spelled.
    """

    authority: Authority
    allowed: frozenset[str]

    @classmethod
    def build(cls, authority: Authority, allowed: Iterable[str]) -> TenantRules:
        return cls(
            authority,
            frozenset(t if t == "*" else _check_tenant(t).lower() for t in allowed),
        )

    def resolve(self, tenant_id: str | None) -> str | None:
        """The tenant of a request: ``None`` for the authority's own, else the lower-cased id."""
        own = self.authority.tenant.lower()
        if tenant_id is None or tenant_id.lower() == own:
            if own == "organizations":
                raise ConfigurationError(
                    "the 'organizations' authority needs a tenant per request",
                    hint="pass tenant_id= with each get_token() call (the customer's tenant).",
                )
            return None
        tenant = _check_tenant(tenant_id).lower()
        if own != "organizations" and "*" not in self.allowed and tenant not in self.allowed:
            raise ConfigurationError(
                f"tenant {tenant_id!r} is not allowed for this provider",
                hint="add it to additionally_allowed_tenants (or '*' for any tenant).",
            )
        return tenant


_DEFAULT_PORTS = {"https": 443, "http": 80}


def _checked_url(
    raw: str,
    original: str,
    label: str,
    *,
    allow_insecure_http: bool,
    example: str = "https://login.microsoftonline.com",
) -> tuple[str, str, str]:
    """``(origin, host, path)`` of an authority URL: an https URL (plain http only for a
    loopback host, and only with ``allow_insecure_http``) with a valid host and no query,
    fragment or user info. The origin leaves out a default port (``:443`` for https, ``:80``
    for http). ``original`` and ``label`` name it in errors, its user info masked."""
    shown = _shown(original)
    try:
        parts = urlsplit(raw)
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        raise ConfigurationError(
            f"{label} {shown} is not a valid URL (check the port and any IPv6 brackets)",
            hint=f"use e.g. {example!r}.",
        ) from None
    if not host:
        raise ConfigurationError(f"{label} {shown} has no host", hint=f"use e.g. {example!r}.")
    if not _HOST_RE.match(host) and not _is_ip(host):
        raise ConfigurationError(
            f"{label} {shown} has an invalid host name",
            hint=f"use e.g. {example!r} (an IDN host in its xn-- form).",
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            f"{label} {shown} must not carry user info (user:password@)",
            hint="remove the user name and password from the URL; credentials go in the "
            "credential (client secret, certificate), never in the authority.",
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(f"{label} {shown} must not carry a query or fragment")
    if scheme == "http":
        if not is_loopback_host(host):
            raise ConfigurationError(
                f"{label} {shown} is plain http",
                hint="use https; plain http is only allowed for a loopback test server.",
            )
        if not allow_insecure_http:
            raise ConfigurationError(
                f"{label} {shown} is plain http",
                hint="pass allow_insecure_http=True to use a plain-http loopback test server.",
            )
    elif scheme != "https":
        raise ConfigurationError(f"{label} {shown} must be an https URL")
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    return f"{scheme}://{netloc}", host, parts.path


def _check_tenant(tenant: str) -> str:
    if not isinstance(tenant, str):
        raise ConfigurationError(f"a tenant must be a string, not {type(tenant).__name__}")
    tenant = tenant.strip()
    lowered = tenant.lower()
    if lowered in ("common", "consumers"):
        raise ConfigurationError(
            f"tenant {tenant!r} cannot be used by a daemon app",
            hint="app-only tokens need a tenant admin's consent: use your tenant id or domain.",
        )
    if lowered == "adfs":
        raise ConfigurationError("AD FS authorities are not supported")
    if not _TENANT_RE.match(tenant):
        raise ConfigurationError(
            f"tenant {tenant!r} is not a tenant id or domain name",
            hint="use the directory (tenant) id GUID or a verified domain such as contoso.com.",
        )
    return tenant


def validate_scope(scope: str | Sequence[str]) -> str:
    """Return the single ``{resource}/.default`` scope, or raise :class:`InvalidScopeError`."""
    if not isinstance(scope, str):
        try:
            scopes = list(scope)
        except TypeError:
            raise InvalidScopeError(
                f"the scope must be a string, got {type(scope).__name__}",
                hint="pass one '{resource}/.default' string.",
            ) from None
        if len(scopes) != 1:
            raise InvalidScopeError(
                f"client credentials take exactly one scope, got {len(scopes)}",
                hint="request one '{resource}/.default' per token.",
            )
        scope = scopes[0]
        if not isinstance(scope, str):
            raise InvalidScopeError(
                f"the scope must be a string, got {type(scope).__name__}",
                hint="pass one '{resource}/.default' string.",
            )
    value = scope.strip()
    if not value:
        raise InvalidScopeError("the scope is empty", hint="use '{resource}/.default'.")
    if any(c.isspace() for c in value):
        raise InvalidScopeError(
            f"scope {value!r} names several scopes",
            hint="request one '{resource}/.default' per token: the token's roles come from "
            "the app roles granted to the app.",
        )
    if value.endswith(DEFAULT_SUFFIX) and len(value) > len(DEFAULT_SUFFIX):
        return value
    if value.endswith("/"):
        raise InvalidScopeError(
            f"scope {value!r} does not end in '/.default'",
            hint=f"use {value + DEFAULT_SUFFIX!r}: this resource id ends in '/', so the scope "
            "has a double slash.",
        )
    resource = _resource_of(value)
    raise InvalidScopeError(
        f"scope {value!r} does not end in '/.default'",
        hint=f"use {resource + DEFAULT_SUFFIX!r}: app permissions are granted to the app as "
        "roles, not requested one by one.",
    )


def _resource_of(scope: str) -> str:
    """The resource part of a scope, for hints: ``https://x.com/User.Read`` -> ``https://x.com``."""
    parts = urlsplit(scope)
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return scope.rstrip("/")
