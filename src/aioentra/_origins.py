"""Which origin gets which token: the allow-list behind the aiohttp middleware.

A bearer token is a key to one API. It is sent only to the origins (RFC 6454:
scheme, host and port) it was mapped to, so a request or a redirect hop to any
other origin carries nothing::

    {"https://graph.microsoft.com": "https://graph.microsoft.com/.default",
     "https://todo.contoso.com": "api://6f3c.../.default"}

Origins compare after normalisation: scheme and host lower-cased, an IDN host in
its ASCII (punycode) form, a trailing dot dropped, the default port made explicit.
So ``https://Graph.Microsoft.com:443/`` is the same origin as the key above, while
``http://graph.microsoft.com`` and ``https://graph.microsoft.com:8443`` are not.

A request's URL is looked up without building its origin. yarl has already normalised the
host (lower case, IDNA, IPv6 compressed) when it parsed the URL, so the netloc it keeps is, for
nearly every URL, the normalised origin's ``host[:port]`` (:attr:`OriginScopes.netlocs`, read
by the integrations' hot paths), and ``host_port_subcomponent`` (the Host header: trailing
dots and user info dropped, the default port left out) is for nearly all others
(:meth:`OriginScopes.scope_for`). A hit in either is exact; only a URL that misses both is
normalised here, the authoritative way.

Bearer tokens travel only over TLS. A plain-http origin is refused at construction
unless the caller allows it, and only loopback hosts (``localhost``, 127.0.0.0/8,
``::1``) can be allowed: that is for test servers, never for a network hop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from yarl import URL

from ._authority import is_loopback_host, validate_scope
from ._errors import ConfigurationError, InvalidScopeError

__all__ = ["Origin", "OriginScopes", "origin_of"]

Origin = tuple[str, str, int]
"""``(scheme, host, port)``, normalised."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _url_slots() -> bool:
    """Whether yarl keeps a URL's scheme and netloc in the slots ``_scheme`` and ``_netloc``
    (normalised when parsed), as every yarl that aiohttp 3.12 accepts does.

    Reading a slot costs a tenth of a cached property of yarl's; that is worth it on a path
    every request takes. Checked once, here: a yarl that keeps them otherwise gets the
    public properties' lookup (:meth:`OriginScopes.scope_for`), which answers the same.
    """
    try:
        url = URL("HTTPS://Bücher.example.:8443/path?query#fragment")
        return (url._scheme, url._netloc) == ("https", "xn--bcher-kva.example.:8443")
    except Exception:  # pragma: no cover - a yarl without these slots
        return False


URL_SLOTS = _url_slots()
"""``url._scheme``/``url._netloc`` hold what :attr:`OriginScopes.netlocs` is keyed by."""


def origin_of(url: URL) -> Origin | None:
    """The normalised origin of an absolute http(s) URL, ``None`` for anything else."""
    scheme = url.scheme
    host = url.raw_host
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    port = url.port
    return (scheme, host.rstrip(".").lower(), _DEFAULT_PORTS[scheme] if port is None else port)


def origin_from_parts(scheme: str, host: str, port: int | None) -> Origin | None:
    """:func:`origin_of` for a URL that is not yarl's (httpx's), given as its parts.

    ``host`` in its ASCII (IDNA) form, without the brackets of an IPv6 literal;
    ``port`` ``None`` for the scheme's default. No URL object is built.
    """
    scheme = scheme.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default is None or not host:
        return None
    return (scheme, host.rstrip(".").lower(), default if port is None else port)


def host_port(origin: Origin) -> str:
    """The origin's host and port as yarl's ``URL.host_port_subcomponent`` writes them.

    ``graph.microsoft.com`` (default port), ``127.0.0.1:8443``, ``[::1]:8443``.
    """
    _, host, port = origin
    shown = f"[{host}]" if ":" in host else host
    return shown if port == _DEFAULT_PORTS[origin[0]] else f"{shown}:{port}"


def _render(origin: Origin) -> str:
    return f"{origin[0]}://{host_port(origin)}"


def _parse_origin(text: str, *, what: str) -> Origin:
    try:
        url = URL(text)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{what} {text!r} is not a URL") from exc
    origin = origin_of(url) if url.absolute else None
    if origin is None:
        raise ConfigurationError(
            f"{what} {text!r} is not an http(s) origin",
            hint="write it as scheme://host[:port], e.g. 'https://graph.microsoft.com'.",
        )
    if (
        url.raw_user is not None
        or url.path not in ("", "/")
        or url.raw_query_string
        or url.raw_fragment
    ):
        raise ConfigurationError(
            f"{what} {text!r} is not a bare origin",
            hint="tokens are scoped per origin (scheme://host[:port]); drop the path, "
            "query, fragment and user info.",
        )
    return origin


class OriginScopes:
    """An immutable map from origins to the scope of the token they accept.

    Each scope is checked as a token request checks it, at construction rather than at the
    first request: one ``{resource}/.default`` scope (``"api://orders"`` is refused, with
    the hint ``"api://orders/.default"``).

    Args:
        scopes: origin -> scope, e.g. ``{"https://graph.microsoft.com":
            "https://graph.microsoft.com/.default"}``.
        allow_http: ``True`` allows every plain-http *loopback* origin in ``scopes``;
            an iterable of origins allows exactly those (each must be loopback and
            mapped). Non-loopback http origins are always refused.

    Raises:
        ConfigurationError: an entry is not a bare http(s) origin, has a scope that is not
            one ``{resource}/.default`` (an :class:`InvalidScopeError`), collides with
            another entry after normalisation, or is a plain-http origin that is not
            allowed.
    """

    __slots__ = ("_scopes", "hosts", "netlocs")

    def __init__(
        self, scopes: Mapping[str, str], *, allow_http: bool | Iterable[str] = False
    ) -> None:
        if not isinstance(scopes, Mapping):
            raise ConfigurationError(
                "the scope map must be a mapping of origin -> scope",
                hint="e.g. {'https://graph.microsoft.com': 'https://graph.microsoft.com/.default'}.",
            )
        parsed: dict[Origin, str] = {}
        for text, scope in scopes.items():
            if not isinstance(text, str):
                raise ConfigurationError(f"origin {text!r} is not a string")
            origin = _parse_origin(text, what="origin")
            scope = _checked_scope(text, scope)
            if parsed.get(origin, scope) != scope:
                raise ConfigurationError(
                    f"{_render(origin)} is mapped to two different scopes",
                    hint="one origin accepts one token audience; keep one entry.",
                )
            parsed[origin] = scope
        if not parsed:
            raise ConfigurationError(
                "the origin -> scope map is empty",
                hint="map each API origin to its scope, e.g. "
                "{'https://graph.microsoft.com': 'https://graph.microsoft.com/.default'}.",
            )
        allowed = _allowed_http(allow_http, parsed)
        for origin in parsed:
            if origin[0] == "http" and origin not in allowed:
                raise ConfigurationError(
                    f"refusing to send bearer tokens to {_render(origin)} over plain http",
                    hint=(
                        "use https; for a loopback test server pass allow_http=True."
                        if is_loopback_host(origin[1])
                        else "use https: only loopback hosts may be allowed over http."
                    ),
                )
        self._scopes = parsed
        hosts: dict[str, dict[str, str]] = {}
        for origin, scope in parsed.items():
            hosts.setdefault(origin[0], {})[host_port(origin)] = scope
        self.hosts: Mapping[str, Mapping[str, str]] = hosts
        """scheme -> :func:`host_port` -> scope: :meth:`scope_for`'s first lookup (a hit is
        the answer, a miss is not)."""
        netlocs = dict(hosts.get("https", {}))
        for origin, scope in parsed.items():
            if origin[0] == "https" and origin[2] == 443:  # as written: "host:443"
                netlocs[f"{host_port(origin)}:443"] = scope
        self.netlocs: Mapping[str, str] = netlocs
        """The https origins by the netloc a yarl URL of theirs keeps (``url._netloc``, read
        when :data:`URL_SLOTS`): ``host[:port]``, the default port left out or written. A hit
        is the answer (a netloc without user info names its host and port); a miss goes to
        :meth:`scope_for`. Read-only, for the integrations' hot paths to inline."""

    def scope_for(self, url: URL) -> str | None:
        """The scope of the token ``url`` may receive, or ``None`` if it gets no token."""
        # The fast path reads two properties that an aiohttp request has already cached on
        # its URL (the session checks the scheme, the Host header is host_port_subcomponent)
        # and builds nothing. A hit is exact: the key is the normalised origin, written as
        # host_port_subcomponent writes a host that is already normalised. A URL whose host
        # yarl left in another form (built with encoded=True in upper case, an IPv6 zone in
        # upper case) misses, and its origin is normalised below.
        hosts = self.hosts.get(url.scheme)
        if hosts is not None:
            scope = hosts.get(url.host_port_subcomponent)  # type: ignore[arg-type]  # None: a miss
            if scope is not None:
                return scope
        origin = origin_of(url)
        return None if origin is None else self._scopes.get(origin)

    def scope_of(self, origin: Origin | None) -> str | None:
        """The scope mapped to a normalised origin (:func:`origin_from_parts`), if any."""
        return None if origin is None else self._scopes.get(origin)

    def as_mapping(self) -> Mapping[str, str]:
        """The normalised map, ``{"https://graph.microsoft.com": scope, ...}``."""
        return MappingProxyType({_render(origin): scope for origin, scope in self._scopes.items()})

    def __repr__(self) -> str:
        if getattr(self, "_scopes", None) is None:
            return "OriginScopes(<not built>)"
        return f"OriginScopes({dict(self.as_mapping())!r})"


def _checked_scope(origin: str, scope: object) -> str:
    """The entry's scope, validated as a client-credentials scope; errors name the origin."""
    if not isinstance(scope, str):
        raise InvalidScopeError(
            f"the scope for {origin!r} must be a string, not {type(scope).__name__}",
            hint="map each origin to one '{resource}/.default' string.",
        )
    try:
        return validate_scope(scope)
    except InvalidScopeError as error:
        raise InvalidScopeError(
            f"the scope for {origin!r}: {error.message}", hint=error.hint
        ) from None


def _allowed_http(allow_http: bool | Iterable[str], scopes: Mapping[Origin, str]) -> set[Origin]:
    """The plain-http origins the caller allowed, all checked to be loopback and mapped."""
    if allow_http is True:
        return {o for o in scopes if o[0] == "http" and is_loopback_host(o[1])}
    if allow_http is False:
        return set()
    entries = [allow_http] if isinstance(allow_http, str) else list(allow_http)
    allowed: set[Origin] = set()
    for text in entries:
        origin = _parse_origin(text, what="allow_http origin")
        if origin[0] != "http":
            raise ConfigurationError(f"allow_http lists {text!r}, which is not an http origin")
        if not is_loopback_host(origin[1]):
            raise ConfigurationError(
                f"allow_http lists {text!r}, which is not a loopback host",
                hint="bearer tokens go over plain http only to localhost, 127.0.0.0/8 or ::1.",
            )
        if origin not in scopes:
            raise ConfigurationError(f"allow_http lists {text!r}, which is not in the scope map")
        allowed.add(origin)
    return allowed
