"""The APIs a daemon calls: Microsoft.Identity.Web's ``DownstreamApis`` section.

::

    "DownstreamApis": {
      "TodoList": {
        "BaseUrl": "https://todo.contoso.com/api",
        "RelativePath": "todolist",
        "Scopes": ["api://6f3c.../.default"],
        "RequestAppToken": true
      }
    }

Each entry names one API: ``BaseUrl`` (required), ``RelativePath`` (joined to it as
Identity.Web joins them), ``Scopes`` (required) and ``RequestAppToken``. Identity.Web's schema
makes ``Scopes`` a list; its older ``DownstreamWebApi`` options took one space-separated
string, and both are read. Keys that shape a request (``HttpMethod``, ``AcceptHeader``,
``ContentType``, ``AcquireTokenOptions``) are not aioentra's business and are ignored;
``ProtocolScheme`` other than ``Bearer`` is refused, as aioentra sends bearer tokens only.

A daemon's token is the app's own (client credentials), for one resource, with the roles the
app was granted: every entry must name exactly one ``{resource}/.default`` scope. A list of
delegated scopes (``User.Read``) belongs to a web app's user tokens and is refused, naming the
entry.

The bearer middleware maps *origins* to scopes, so the entry's token goes to every path of its
``BaseUrl``'s origin (scheme, host, port), not only below ``BaseUrl``; two entries on one
origin must therefore name one scope.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from yarl import URL

from ._authority import is_loopback_host, validate_scope
from ._errors import ConfigurationError, InvalidScopeError
from ._origins import _render, origin_of
from ._where import Where

__all__ = ["DownstreamApi", "checked_base_url", "origin_scopes", "read_downstream_apis"]

_EXAMPLE = (
    '"DownstreamApis": {"TodoList": {"BaseUrl": "https://todo.contoso.com", '
    '"Scopes": ["api://<API client id>/.default"]}}'
)


@dataclass(frozen=True)
class DownstreamApi:
    """One ``DownstreamApis`` entry: an API, and the one scope of the app token it takes."""

    name: str
    base_url: str
    scope: str
    relative_path: str = ""

    @property
    def url(self) -> str:
        """``BaseUrl`` and ``RelativePath`` joined with one ``/``, as Identity.Web joins them."""
        base = self.base_url.rstrip("/")
        relative = self.relative_path.lstrip("/")
        return f"{base}/{relative}" if relative else base

    @property
    def origin(self) -> str:
        """The normalised origin of ``base_url``: what receives this API's token."""
        origin = origin_of(URL(self.base_url))
        if origin is None:  # only for an entry built by hand around a bad URL
            raise ConfigurationError(f"{self.name}: BaseUrl is not an http(s) URL")
        return _render(origin)


def read_downstream_apis(section: object, where: Where) -> tuple[DownstreamApi, ...]:
    """Every entry of a ``DownstreamApis`` section (``None``: there is none), checked."""
    if section is None:
        return ()
    if not isinstance(section, dict):
        raise ConfigurationError(f"{where} must be a JSON object", hint=f"e.g. {_EXAMPLE}.")
    apis = tuple(_entry(str(name), value, where.at(str(name))) for name, value in section.items())
    origin_scopes(apis, where)  # two entries on one origin with different scopes
    return apis


def origin_scopes(apis: Iterable[DownstreamApi], where: Where | None = None) -> dict[str, str]:
    """origin -> scope for the bearer middleware; an origin two entries name with different
    scopes is refused."""
    scopes: dict[str, tuple[str, str]] = {}
    for api in apis:
        origin = api.origin
        seen = scopes.setdefault(origin, (api.scope, api.name))
        if seen[0] != api.scope:
            prefix = f"{where}: " if where is not None else ""
            raise ConfigurationError(
                f"{prefix}entries {seen[1]!r} and {api.name!r} are both on {origin} but name "
                "different scopes",
                hint="a bearer token goes to a whole origin, and an origin accepts one token "
                "audience: give each API its own origin, or the same scope.",
            )
    return {origin: scope for origin, (scope, _) in scopes.items()}


def _entry(name: str, entry: object, where: Where) -> DownstreamApi:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where} must be a JSON object", hint=f"e.g. {_EXAMPLE}.")
    base_url = checked_base_url(entry.get("BaseUrl"), where.at("BaseUrl"))
    relative = entry.get("RelativePath")
    if relative is not None and not isinstance(relative, str):
        raise ConfigurationError(
            f"{where.at('RelativePath')} must be a string", hint='e.g. "RelativePath": "api/todo".'
        )
    flag = entry.get("RequestAppToken")
    if flag is not None and not isinstance(flag, bool):
        raise ConfigurationError(f"{where.at('RequestAppToken')} must be true or false")
    scheme = entry.get("ProtocolScheme")
    if scheme is not None and (not isinstance(scheme, str) or scheme.lower() != "bearer"):
        raise ConfigurationError(
            f"{where.at('ProtocolScheme')} must be Bearer",
            hint="aioentra sends bearer tokens only (no PoP or mTLS-bound tokens): remove "
            "ProtocolScheme or set it to Bearer.",
        )
    return DownstreamApi(
        name=name,
        base_url=base_url,
        scope=_scope(entry, where.at("Scopes")),
        relative_path=relative or "",
    )


def checked_base_url(value: object, where: Where) -> str:
    """An API's URL: absolute http(s), no user info, plain http only on a loopback host."""
    if value is None or value == "":
        raise ConfigurationError(
            f"{where} is missing", hint='the API\'s https URL, e.g. "https://todo.contoso.com".'
        )
    if not isinstance(value, str):
        raise ConfigurationError(f"{where} must be a string", hint="quote the URL.")
    try:
        url = URL(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{where} {value!r} is not a URL") from None
    origin = origin_of(url) if url.absolute else None
    if origin is None:
        raise ConfigurationError(
            f"{where} {value!r} is not an http(s) URL",
            hint='e.g. "https://todo.contoso.com/api".',
        )
    if any(c.isspace() or not c.isprintable() for c in origin[1]):
        raise ConfigurationError(f"{where} {value!r} has a malformed host")
    if url.raw_user is not None or url.raw_password is not None:
        raise ConfigurationError(
            f"{where} has user info",
            hint="the API authenticates with the app's token: drop the user name and password.",
        )
    if origin[0] == "http" and not is_loopback_host(origin[1]):
        raise ConfigurationError(
            f"{where} is a plain-http URL: refusing to send bearer tokens over it",
            hint="use https; only a loopback test server may be http (and then pass "
            "allow_http=True to authenticated_session).",
        )
    return value


def _scope(entry: Mapping[str, Any], where: Where) -> str:
    scopes = entry.get("Scopes")
    if scopes is None:
        raise ConfigurationError(
            f"{where} is missing",
            hint='an app token needs one scope: "Scopes": ["{App ID URI}/.default"].',
        )
    if not isinstance(scopes, (str, list)):
        raise ConfigurationError(
            f"{where} must be a list of one scope",
            hint='e.g. "Scopes": ["api://<API client id>/.default"].',
        )
    # One '{resource}/.default' only: a daemon's token carries the roles granted to the app,
    # it cannot ask for delegated scopes one by one.
    try:
        return validate_scope(scopes)
    except InvalidScopeError as error:
        hint = f"{error.hint} " if error.hint else ""
        hint += (
            "A daemon calls with the app's own token: one '{resource}/.default' scope per "
            "API; delegated scopes (User.Read) are for a signed-in user's token."
        )
        raise InvalidScopeError(f"{where}: {error.message}", hint=hint) from None
