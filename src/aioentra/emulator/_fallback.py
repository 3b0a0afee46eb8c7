"""JSON answers for paths and methods no route serves (aiohttp would send plain text).

A client of the emulator parses every error body as JSON, so an unknown path is a 404 (and a
known path with the wrong method a 405) in the shape of the service the path belongs to: the
vault's ``{"error": {"code", "message"}}`` on its collections (the caller decides), Entra's
``{"error", "error_description", ...}`` elsewhere. The wording is the emulator's own.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ._errors import error_body
from ._http import json_response

__all__ = ["not_served_middleware"]

Responder = Callable[[web.Request, int], "web.StreamResponse | None"]


def entra_not_served(request: web.Request, status: int) -> web.Response:
    """Entra's error shape, ``invalid_request`` without an AADSTS code."""
    message = (
        f"The HTTP method {request.method} is not supported on {request.path}."
        if status == 405
        else f"The path {request.path} is not served by the emulator."
    )
    body = error_body(
        "invalid_request", message, [], correlation_id=request.headers.get("client-request-id")
    )
    return json_response(body, status=status)


def not_served_middleware(respond: Responder | None = None) -> Middleware:
    """Turn aiohttp's own 404/405 into JSON: ``respond``'s answer, else Entra's shape."""

    @web.middleware
    async def not_served(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
            if getattr(request.match_info.route, "resource", None) is not None:
                raise  # a handler's own answer, not an unserved route
            answer = respond(request, exc.status) if respond is not None else None
            return answer if answer is not None else entra_not_served(request, exc.status)

    return not_served
