"""The log lines of token fetches: one INFO per token acquired, one WARNING per failure.

Each line is readable on its own and carries its fields as ``record.aioentra`` (a dict) for
structured logging::

    INFO  aioentra.provider: token for api://orders/.default acquired (client 6f3c..., tenant
          72f9...): no cached token; from the network, valid for 3599s, took 0.081s
    WARNING aioentra.provider: token request for api://orders/.default (client 6f3c...,
          tenant 72f9...) failed after 0.042s: invalid_client (AADSTS7000215), correlation id
          1f0e...; callers get this error until a call after 2.0s sends a new request; to fix
          it: the client secret is wrong or expired...

What a failure line says happens next is what the cell does (see :mod:`aioentra._flight`):
nothing is retried on its own. Within the back-off, callers get the error (or the cached token
while it is usable); the first call after it sends one new request.

No field is a secret: scopes, ids, codes, counts and times only.
"""

from __future__ import annotations

import logging
from typing import Any

from ._flight import FetchReason
from ._token import ServedFrom, TokenMetadata

__all__ = ["acquired", "failed", "next_action"]

logger = logging.getLogger("aioentra.provider")

_FROM = {
    ServedFrom.NETWORK: "from the network",
    ServedFrom.SHARED_CACHE: "from the shared cache",
    ServedFrom.MEMORY: "from memory",
}


def acquired(
    *,
    scope: str,
    tenant_id: str,
    client_id: str,
    claims: bool,
    metadata: TokenMetadata,
    lifetime: float,
) -> None:
    """INFO: a fetch got a token."""
    if not logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "event": "token_acquired",
        "scope": scope,
        "tenant_id": tenant_id,
        "client_id": client_id,
        "claims": claims,
        "reason": metadata.reason.value,
        "source": metadata.source.value,
        "lifetime": lifetime,
        "duration": metadata.duration,
    }
    logger.info(
        "token for %s acquired (client %s, tenant %s%s): %s; %s, valid for %.0fs, took %.3fs",
        scope,
        client_id,
        tenant_id,
        ", with claims" if claims else "",
        metadata.reason.description,
        _FROM[metadata.source],
        lifetime,
        metadata.duration,
        extra={"aioentra": fields},
    )


def failed(
    *,
    scope: str,
    tenant_id: str,
    client_id: str,
    claims: bool,
    reason: FetchReason,
    error: Exception,
    code: str,
    duration: float,
    backoff: float,
    serving_for: float | None,
) -> None:
    """WARNING: a fetch failed; says the codes and what happens next."""
    correlation = getattr(error, "correlation_id", None)
    hint = getattr(error, "hint", None)
    retryable = bool(getattr(error, "retryable", False))
    action = next_action(
        retryable=retryable,
        backoff=backoff,
        serving_for=serving_for,
        hint=hint if isinstance(hint, str) else None,
    )
    fields: dict[str, Any] = {
        "event": "token_failed",
        "scope": scope,
        "tenant_id": tenant_id,
        "client_id": client_id,
        "claims": claims,
        "reason": reason.value,
        "error_code": code,
        "correlation_id": correlation,
        "retryable": retryable,
        "retry_in": backoff,
        "serving": serving_for is not None,
        "duration": duration,
    }
    logger.warning(
        "token request for %s (client %s, tenant %s%s; %s) failed after %.3fs: %s%s; %s",
        scope,
        client_id,
        tenant_id,
        ", with claims" if claims else "",
        reason.description,
        duration,
        code,
        f", correlation id {correlation}" if correlation else "",
        action,
        extra={"aioentra": fields},
    )


def next_action(
    *, retryable: bool, backoff: float, serving_for: float | None, hint: str | None
) -> str:
    """What the source does after a failed fetch, in words (a pure function of the facts).

    ================  ===========================  ===============================================
    retryable         serving the cached token     says
    ================  ===========================  ===============================================
    yes               yes                          serving the cached token (valid for N s more);
                                                   a call after B s starts a new refresh
    yes               no                           callers get this error until a call after B s
                                                   sends a new request
    no                either                       as above, and "to fix it: <hint>", since the
                                                   same request will fail the same way
    ================  ===========================  ===============================================

    Nothing is retried by itself: the next request waits for a caller.
    """
    if serving_for is not None:
        text = (
            f"serving the cached token (valid for another {max(0.0, serving_for):.0f}s); "
            f"a call after {backoff:.1f}s starts a new refresh"
        )
    else:
        text = f"callers get this error until a call after {backoff:.1f}s sends a new request"
    if not retryable:
        text += "; the same request fails the same way until the cause is fixed"
        if hint:
            text += f": {hint}"
    return text
