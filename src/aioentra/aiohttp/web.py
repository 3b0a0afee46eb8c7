"""Token validation for APIs written with aiohttp.web.

::

    from aiohttp import web
    from aioentra.aiohttp.web import request_claims, require_roles, token_validation

    @require_roles("ToDoList.Read.All", "ToDoList.ReadWrite.All")  # any one of them
    async def list_todos(request: web.Request) -> web.Response:
        claims = request_claims(request)  # also request[CLAIMS_KEY]
        return web.json_response({"caller": claims.app_id})

    app = web.Application()
    token_validation(
        authority="https://login.microsoftonline.com/<tenant id>", audience="api://todo"
    ).install(app)
    app.router.add_get("/api/todolist", list_todos)

What the middleware answers (RFC 6750):

=========================================  ======  ==========================================
request                                    status  ``WWW-Authenticate``
=========================================  ======  ==========================================
no ``Authorization: Bearer`` header        401     ``Bearer`` (no error: none was attempted)
more than one ``Authorization`` header     400     ``Bearer error="invalid_request"``
a token that is refused (expired, wrong    401     ``Bearer error="invalid_token",
audience, issuer or tenant, bad signature)         error_description="..."``
a valid token without a required role,     403     ``Bearer error="insufficient_scope",
or a user token where apps only may call           error_description="..."``
the keys cannot be fetched at all          503     (``Retry-After``; the token was not judged)
=========================================  ======  ==========================================

Every answer has a JSON body ``{"error": ..., "error_description": ...}``; 403 bodies add a
``hint`` (which role to grant). Descriptions never echo the token or its claims.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from aiohttp import hdrs, web

from .._errors import (
    AioEntraError,
    ConfigurationError,
    InsufficientPermissionsError,
    TokenValidationError,
)
from .._validation import Claims, missing_roles
from .._validator import TokenValidator

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .._validator import ValidatorOptions

__all__ = [
    "CLAIMS_KEY",
    "TokenValidation",
    "anonymous",
    "request_claims",
    "require_roles",
    "token_validation",
]

logger = logging.getLogger("aioentra.aiohttp.web")

if hasattr(web, "RequestKey"):  # aiohttp >= 3.13 warns about plain string keys
    CLAIMS_KEY: web.RequestKey[Claims] = web.RequestKey("claims", Claims)
else:  # pragma: no cover - older aiohttp
    CLAIMS_KEY = "aioentra.claims"  # type: ignore[assignment]
"""Where the middleware puts a request's validated :class:`~aioentra.Claims`:
``request[CLAIMS_KEY]`` (or :func:`request_claims`)."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
_ANONYMOUS = "__aioentra_anonymous__"


class TokenValidation:
    """An aiohttp.web middleware that admits requests with a valid bearer token.

    The validated claims are at ``request[CLAIMS_KEY]`` (:func:`request_claims`).
    Build it with :func:`token_validation`, then :meth:`install` it on the application.
    """

    __middleware_version__ = 1

    def __init__(self, validator: TokenValidator) -> None:
        self.validator = validator

    def install(self, app: web.Application) -> None:
        """Add the middleware to ``app``, load the keys on startup, close on cleanup."""
        app.middlewares.append(self)
        app.on_startup.append(self.on_startup)
        app.on_cleanup.append(self.on_cleanup)

    async def on_startup(self, app: web.Application) -> None:
        """Load the signing keys: a wrong authority fails the startup; an unreachable one is
        logged, and the keys are fetched with the first request instead."""
        if self.validator.closed:
            raise ConfigurationError(
                "this token_validation middleware was closed with the application it guarded",
                hint="build one token_validation() per application (in the app factory), not "
                "one for the whole process.",
            )
        try:
            await self.validator.start()
        except ConfigurationError:
            await self.validator.close()  # the app never starts, so its cleanup never runs
            raise
        except AioEntraError as error:
            logger.warning("signing keys not loaded at startup: %s", error)

    async def on_cleanup(self, app: web.Application) -> None:
        await self.validator.close()

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if getattr(handler, _ANONYMOUS, False):
            return await handler(request)
        headers = request.headers.getall(hdrs.AUTHORIZATION, ())
        if len(headers) > 1:  # which one would a proxy in front have read?
            return _invalid_request("send one Authorization header")
        token = bearer_token(headers[0] if headers else None)
        if token is None:
            return _challenge_response()
        try:
            claims = await self.validator.validate(token)
        except TokenValidationError as refused:
            logger.info(
                "%s %r refused (%d): %s",
                request.method,
                request.path,
                refused.status or 401,
                refused.message,
            )
            return _refusal_response(refused)
        except AioEntraError as error:
            # The key fetch's failure is logged once by the validator; this is per request.
            logger.debug("%s %r: token not checked: %s", request.method, request.path, error)
            return web.json_response(
                {
                    "error": "temporarily_unavailable",
                    "error_description": "the API cannot check tokens right now",
                },
                status=503,
                headers={hdrs.RETRY_AFTER: "5"},
            )
        request[CLAIMS_KEY] = claims
        return await handler(request)

    def __repr__(self) -> str:
        return f"TokenValidation({self.validator!r})"


def token_validation(
    *,
    audience: str | Iterable[str],
    authority: str | None = None,
    tenant_id: str | None = None,
    oidc_authority: str | None = None,
    **options: Unpack[ValidatorOptions],
) -> TokenValidation:
    """The middleware for an API: see :class:`~aioentra.TokenValidator` for every option
    (``tenants``, ``algorithms``, ``leeway``, ``app_only``, ``ca_file``, ...)."""
    return TokenValidation(
        TokenValidator(
            audience=audience,
            authority=authority,
            tenant_id=tenant_id,
            oidc_authority=oidc_authority,
            **options,
        )
    )


def require_roles(*roles: str, require_all: bool = False) -> Callable[[H], H]:
    """Decorate a handler so that only tokens holding one of ``roles`` (all of them with
    ``require_all=True``) reach it; others get a 403 naming the missing role.

    The roles are app roles (the ``roles`` claim of app tokens), as granted to the calling
    app by an administrator's consent.
    """
    if not roles or not all(isinstance(role, str) and role.strip() for role in roles):
        raise ConfigurationError("require_roles needs at least one role name")
    required = tuple(roles)

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            claims = request.get(CLAIMS_KEY)
            if not isinstance(claims, Claims):
                logger.error(
                    "%s %r requires roles, but no token_validation middleware ran",
                    request.method,
                    request.path,
                )
                raise web.HTTPInternalServerError
            missing = missing_roles(claims, required, require_all=require_all)
            if missing:
                which = " and ".join(missing) if require_all else " or ".join(missing)
                return _refusal_response(
                    InsufficientPermissionsError(
                        f"the calling app lacks the {which} role",
                        hint=f"grant the app the application permission {which} on this API "
                        "and give admin consent; then request a new token.",
                    )
                )
            return await handler(request)

        return checked  # type: ignore[return-value]

    return decorate


def anonymous(handler: H) -> H:
    """Mark a handler as open to requests without a token (health checks, metadata).

    For a class-based view, decorate the ``web.View`` class: the middleware sees the class,
    not its methods.
    """
    setattr(handler, _ANONYMOUS, True)
    return handler


def request_claims(request: web.Request) -> Claims:
    """The request's validated claims (the middleware must have admitted it)."""
    claims = request.get(CLAIMS_KEY)
    if not isinstance(claims, Claims):
        raise LookupError("no validated claims: is the token_validation middleware installed?")
    return claims


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, else ``None``."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def _invalid_request(description: str) -> web.Response:
    challenge = f'Bearer error="invalid_request", error_description="{description}"'
    return web.json_response(
        {"error": "invalid_request", "error_description": description},
        status=400,
        headers={hdrs.WWW_AUTHENTICATE: challenge},
    )


def _challenge_response() -> web.Response:
    return web.json_response(
        {"error": "unauthorized", "error_description": "a bearer token is required"},
        status=401,
        headers={hdrs.WWW_AUTHENTICATE: "Bearer"},
    )


def _refusal_response(refused: TokenValidationError) -> web.Response:
    code = refused.error or "invalid_token"
    description = refused.message.replace("\\", "").replace('"', "'")
    body: dict[str, str] = {"error": code, "error_description": refused.message}
    if refused.hint and isinstance(refused, InsufficientPermissionsError):
        body["hint"] = refused.hint
    return web.json_response(
        body,
        status=refused.status or 401,
        headers={
            hdrs.WWW_AUTHENTICATE: f'Bearer error="{code}", error_description="{description}"'
        },
    )
