"""``aioentra call METHOD URL``: one authenticated request, through ``authenticated_session``.

The URL's origin is mapped to the scope (``--scope``, or parameters.json's ``scope``), so the
bearer middleware adds the token to that origin only, answers a 401 challenge once, and never
shows the token to anything that prints. The status line goes to stderr and the body to
stdout (JSON pretty-printed), so ``aioentra call GET URL | jq`` works.

An API that echoes the request (httpbin's ``/headers``, a debugging endpoint) would show the
token: every token the provider handed out for this call is replaced by ``***`` in what is
printed, and so is anything shaped like an ``Authorization`` value (:func:`redact`).

Plain http is refused unless ``--allow-http`` is given, and then only for a loopback host (the
middleware's rule): a local test server.

Exit status by answer (:func:`exit_for_status`): 2xx -> 0, 401/403 -> 4, 5xx -> 5, any other
-> 1; no answer at all (refused, reset, TLS, timeout) -> 5.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import CliError, Command, Exit, Output
from ._options import add_config_options, build_provider, load_settings, required

if TYPE_CHECKING:
    from aioentra._token import AccessToken
    from aioentra.aiohttp import TokenSource

__all__ = ["COMMAND", "REDACTED", "exit_for_status", "origin_of", "parse_header", "redact"]

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP method or header name (RFC 9110 ``token``)."""

REDACTED = "***"
_TOKEN68 = r"[A-Za-z0-9\-._~+/]{16,}=*"
_CREDENTIAL = re.compile(
    r"\b((?i:bearer|pop|basic|negotiate))(\s+)" + _TOKEN68 + r"(?![A-Za-z0-9\-._~+/=\"])"
)
"""An ``Authorization`` value: a scheme and a token68 (RFC 9110 section 11.4) of at least 16
characters, not a ``key="value"`` parameter (so ``WWW-Authenticate: Bearer error="..."`` stays)."""
_HEADER_LINE = re.compile(
    r"(?im)^([ \t]*(?:proxy-)?authorization[ \t]*:[ \t]*)([A-Za-z][A-Za-z0-9-]*[ \t]+)?\S[^\r\n]*"
)
"""``Authorization: ...`` on a line of its own (an API that echoes the raw request)."""
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization"})

HINTS = {
    401: "the API refused the token: check that it expects this audience (the scope's "
    "resource) and issuer (tenant); 'aioentra token SCOPE' shows them.",
    403: "the API accepted the token but not the request: the app may lack the role it needs "
    "('aioentra doctor --scope SCOPE' lists the token's roles).",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("method", metavar="METHOD", help="GET, POST, PUT, PATCH, DELETE, ...")
    parser.add_argument(
        "url", nargs="?", metavar="URL", help="https URL (default: parameters.json's 'endpoint')"
    )
    parser.add_argument(
        "--scope",
        help="the API's '{resource}/.default' scope (default: parameters.json's 'scope')",
    )
    parser.add_argument(
        "--data",
        "-d",
        metavar="DATA",
        help="request body: text, @FILE, or @- for stdin (JSON is sent as application/json)",
    )
    parser.add_argument(
        "--allow-http",
        action="store_true",
        help="allow a plain-http URL on a loopback host (a local test server; the token is sent "
        "unencrypted); other hosts are always refused",
    )
    parser.add_argument(
        "--header",
        "-H",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="an extra request header (repeatable); Authorization is aioentra's to set",
    )
    add_config_options(parser)


# -- the pure parts ------------------------------------------------------------------------------


def exit_for_status(status: int) -> Exit:
    """The exit status for an HTTP answer."""
    if 200 <= status < 300:
        return Exit.OK
    if status in (401, 403):
        return Exit.AUTHENTICATION
    if status >= 500:
        return Exit.UNAVAILABLE
    return Exit.FAILURE


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of an absolute http(s) URL (a usage error otherwise)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise _usage(f"URL {url!r} is not valid") from None
    if parts.scheme not in ("https", "http") or not host:
        raise _usage(f"URL {url!r} is not an absolute https URL", hint="e.g. https://host/path")
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}" + (f":{port}" if port is not None else "")


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` -> ``(name, value)``; ``Authorization`` is refused (the middleware
    sets it, for the mapped origin only)."""
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not _TOKEN.match(name):
        raise _usage(f"--header {name or text!r}: expected 'NAME: VALUE'")
    if name.lower() == "authorization":
        raise _usage(
            "--header Authorization: aioentra sets the Authorization header itself",
            hint="drop it; the token for --scope is added to requests to the URL's origin.",
        )
    return name, value.strip()


def redact(value: Any, tokens: Collection[str]) -> Any:
    """``value`` (the answer: JSON, text, headers) with each of ``tokens`` replaced by
    :data:`REDACTED`, and so anything that looks like an ``Authorization`` value: the value of
    an ``Authorization`` key, ``Bearer <token68>``, an ``Authorization: ...`` line."""
    if isinstance(value, str):
        for token in tokens:
            if token:
                value = value.replace(token, REDACTED)
        value = _CREDENTIAL.sub(lambda m: f"{m[1]}{m[2]}{REDACTED}", value)
        return _HEADER_LINE.sub(lambda m: f"{m[1]}{m[2] or ''}{REDACTED}", value)
    if isinstance(value, dict):
        shown: dict[Any, Any] = {}
        for key, item in value.items():
            name = redact(key, tokens)
            if isinstance(key, str) and key.lower() in _SECRET_HEADERS and isinstance(item, str):
                scheme, space, _ = item.strip().partition(" ")
                shown[name] = f"{scheme} {REDACTED}" if space else REDACTED
            else:
                shown[name] = redact(item, tokens)
        return shown
    if isinstance(value, list):
        return [redact(item, tokens) for item in value]
    return value


def _usage(message: str, hint: str | None = None) -> CliError:
    return CliError(message, hint=hint, exit_code=Exit.USAGE, kind="UsageError")


def _body(data: str | None) -> bytes | None:
    if data is None:
        return None
    if data == "@-":
        return sys.stdin.buffer.read()
    if data.startswith("@"):
        try:
            with open(data[1:], "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise _usage(f"--data {data}: {exc.strerror or type(exc).__name__}") from None
    return data.encode("utf-8")


def _content_type(body: bytes) -> str:
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        return "text/plain; charset=utf-8"
    return "application/json"


def _headers(texts: Sequence[str], body: bytes | None) -> dict[str, str]:
    headers = dict(parse_header(text) for text in texts)
    if body is not None and not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = _content_type(body)
    return headers


def shown_body(raw: bytes, content_type: str, charset: str | None) -> Any:
    """The body as JSON when it is JSON, else as text."""
    text = raw.decode(charset or "utf-8", errors="replace")
    if "json" in content_type.lower() or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            pass
    return text


# -- the request ---------------------------------------------------------------------------------


class _Handed:
    """The provider as the middleware sees it: asked for ``--tenant``'s tokens when given
    (the middleware asks for the default), and remembering every token it handed out, so
    that none is printed."""

    def __init__(self, source: Any, tenant: str | None) -> None:
        self._source = source
        self._options: dict[str, str] = {"tenant_id": tenant} if tenant else {}
        self.tokens: set[str] = set()

    def _seen(self, token: AccessToken) -> AccessToken:
        self.tokens.add(token.token)
        return token

    async def get_token(self, scope: str, *, claims: str | None = None) -> AccessToken:
        return self._seen(await self._source.get_token(scope, claims=claims, **self._options))

    async def renew_token(self, scope: str, *, rejected: AccessToken) -> AccessToken:
        self.tokens.add(rejected.token)
        return self._seen(await self._source.renew_token(scope, rejected=rejected, **self._options))


async def send(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio
    import ssl

    import aiohttp

    from aioentra._authority import validate_scope
    from aioentra._netfail import connection_error
    from aioentra.aiohttp import authenticated_session

    method = args.method.upper()
    if not _TOKEN.match(method):
        raise _usage(f"{args.method!r} is not an HTTP method")
    settings = load_settings(args)
    url = required(
        args.url or settings.endpoint, "URL", "pass URL (or set 'endpoint' in parameters.json)."
    )
    origin = origin_of(url)
    if origin.startswith("http://") and not args.allow_http:
        from aioentra._authority import is_loopback_host
        from aioentra._errors import ConfigurationError

        raise ConfigurationError(
            f"refusing to send a bearer token to {origin} over plain http",
            hint="use https; for a local test server on a loopback host pass --allow-http."
            if is_loopback_host(urlsplit(url).hostname or "")
            else "use https: only loopback hosts may be called over plain http (--allow-http).",
        )
    scope = validate_scope(
        required(
            args.scope or settings.scope,
            "scope",
            "pass --scope with the API's '{resource}/.default' (or set 'scope' in "
            "parameters.json).",
        )
    )
    body = _body(args.data)
    headers = _headers(args.header, body)
    tls: ssl.SSLContext | bool = True
    if args.ca_file:
        try:
            tls = ssl.create_default_context(cafile=args.ca_file)
        except (OSError, ssl.SSLError):
            from aioentra._errors import ConfigurationError

            raise ConfigurationError(
                f"ca_file {args.ca_file!r} could not be loaded",
                hint="give a readable PEM file with the CA certificates to trust.",
            ) from None
    async with build_provider(settings, args) as provider:
        handed = _Handed(provider, args.tenant)
        source: TokenSource = handed
        async with authenticated_session(
            source,
            {origin: scope},
            allow_http=bool(args.allow_http),
            connector=aiohttp.TCPConnector(ssl=tls),
            timeout=aiohttp.ClientTimeout(total=args.timeout),
        ) as session:
            try:
                async with session.request(method, url, data=body, headers=headers) as response:
                    raw = await response.read()
                    answer = {
                        "method": method,
                        "url": url,
                        "status": response.status,
                        "reason": response.reason or "",
                        "content_type": response.content_type,
                        "www_authenticate": response.headers.get("WWW-Authenticate"),
                        "body": shown_body(raw, response.content_type, response.charset),
                    }
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                failure = connection_error(f"{method} {origin}", exc, timeout=args.timeout)
                raise CliError(
                    failure.message,
                    hint=failure.hint,
                    exit_code=Exit.UNAVAILABLE,
                    kind="NetworkError",
                ) from None
        # The token the provider holds now too (a 401 may have renewed it in the meantime);
        # from its cache, so no request is made for it.
        with contextlib.suppress(Exception):
            handed.tokens.add((await source.get_token(scope)).token)
    shown: dict[str, Any] = redact(answer, handed.tokens)
    return shown


def run(args: argparse.Namespace, out: Output) -> int:
    import asyncio

    answer = asyncio.run(send(args))
    code = exit_for_status(answer["status"])
    if answer["www_authenticate"] is None:
        del answer["www_authenticate"]
    out.document({**answer, "exit_code": int(code)})
    out.note(f"HTTP {answer['status']} {answer['reason']}".rstrip())
    if answer["status"] in HINTS:
        out.note(f"  hint: {HINTS[answer['status']]}")
        if "www_authenticate" in answer:
            out.note(f"  WWW-Authenticate: {answer['www_authenticate']}")
    body = answer["body"]
    if isinstance(body, str):
        if body:
            out.line(body.rstrip("\n"))
    else:
        out.line(json.dumps(body, indent=2, ensure_ascii=False))
    return code


COMMAND = Command(
    "call",
    "send one request with the app's token (to the URL's origin only) and print the answer",
    configure,
    run,
)
