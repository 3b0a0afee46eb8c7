"""The log lines of token fetches: one INFO per token acquired, one WARNING per failure.

Each line is readable on its own and carries its fields as ``record.aioentra`` (a dict) for
structured logging::

    INFO  aioentra.provider: token for api://orders/.default acquired (client 6f3c..., tenant
          72f9...): no cached token; from the network, valid for 3599s, took 0.081s
    WARNING aioentra.provider: token request for api://orders/.default (client 6f3c...,
          tenant 72f9...) failed after 0.042s: invalid_client (AADSTS7000215), correlation id
          1f0e...; callers get this error until a call after 2.0s sends a new request; to fix
          it: the client secret is wrong or expired...

What a failure line says happens next is what the cell does (see :mod:`aioentra._flight` and
:func:`next_action`): nothing is retried on its own. Within the back-off, callers get the error
(or the cached token while it is usable); the first call after it that needs a new token sends
one new request -- a renewal or a claims call only once the renewal limit lets it.

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
    fresh_for: float | None = None,
    renewal_in: float | None = None,
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
        reason=reason,
        fresh_for=fresh_for,
        renewal_in=renewal_in,
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
    *,
    retryable: bool,
    backoff: float,
    serving_for: float | None,
    hint: str | None,
    reason: FetchReason = FetchReason.COLD,
    fresh_for: float | None = None,
    renewal_in: float | None = None,
) -> str:
    """What the source does after a failed fetch, in words: a pure function of the cell's state.

    Args:
        backoff: seconds before the key may fetch again (``retry_at``).
        serving_for: seconds the cached token is still served (to ``usable_until``), or
            ``None`` when callers wait for a new one.
        fresh_for: seconds until the cached token's refresh time, if still ahead: plain calls
            start no refresh before it.
        renewal_in: seconds until the renewal limit (``renewal_interval``) lets a renewal or a
            claims answer go out again, when that is what the next one waits for.

    ====================  =====================================================================
    state                 says
    ====================  =====================================================================
    renewal limit ahead   a renewal (claims call) after R s sends a request; until then
                          callers get the error for B s, then the current (plain) token
    cached, still fresh   served; refreshed at its refresh time, or by a forced call after B s
    cached                served for S s; a call after B s starts a refresh (and from S s to
                          B s, if S < B, callers get the error)
    nothing usable        callers get the error until a call after B s sends a request
    ====================  =====================================================================

    A failure the same request cannot fix adds "the same request fails the same way until the
    cause is fixed" and the hint. Nothing is retried by itself: the next request waits for a
    caller.
    """
    if renewal_in is not None and renewal_in > backoff:
        if reason is FetchReason.CLAIMS:
            text = (
                f"a claims call after {renewal_in:.1f}s sends a new request (one claims "
                f"answer per renewal_interval); until then calls with these claims get this "
                f"error for {backoff:.1f}s, then the plain token"
            )
        else:
            text = (
                f"a renewal after {renewal_in:.1f}s sends a new request (one per "
                f"renewal_interval); until then renew_token gets this error for {backoff:.1f}s, "
                "then the current token"
            )
            if serving_for is not None:
                text += f", which get_token keeps serving for another {max(0.0, serving_for):.0f}s"
    elif serving_for is not None and fresh_for is not None and fresh_for > 0:
        text = (
            f"serving the cached token for another {max(0.0, serving_for):.0f}s; it is "
            f"refreshed at its refresh time in {fresh_for:.0f}s, or by a forced call after "
            f"{backoff:.1f}s"
        )
    elif serving_for is not None:
        left = max(0.0, serving_for)
        text = (
            f"serving the cached token for another {left:.0f}s; a call after {backoff:.1f}s "
            "starts a new refresh"
        )
        if left < backoff:
            text += f" (from {left:.0f}s to {backoff:.1f}s callers get this error)"
    else:
        text = f"callers get this error until a call after {backoff:.1f}s sends a new request"
    if not retryable:
        text += "; the same request fails the same way until the cause is fixed"
        if hint:
            text += f": {hint}"
    return text
