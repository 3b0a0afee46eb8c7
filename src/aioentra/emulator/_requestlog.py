"""The request log: one :class:`RequestRecord` per request the emulator answered (or dropped).

Records carry what a test asserts on -- endpoint, status, tenant, client id, grant type, how the
client authenticated, the scope and the AADSTS codes -- and never a secret or an assertion value.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["LogInfo", "RequestLog", "RequestRecord", "log_info"]


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it.

    ``status`` is ``None`` when the connection was dropped without a response (a ``"reset"`` fault).
    ``auth_method`` is ``client_secret_post``, ``client_secret_basic``, ``private_key_jwt``,
    ``bearer`` (a token presented to a resource) or ``None``. ``fault`` names the
    injected fault kind.

    Attributes:
        method: The HTTP method.
        path: The request path, without the query string.
        endpoint: ``token``, ``discovery``, ``jwks``, ``keyvault``, ``managed_identity`` or
            ``other`` (a path no route serves).
        status: The response status, ``None`` for a dropped connection.
        tenant: The GUID of the tenant the path named (the segment as sent when no tenant
            has that name), or a bearer token's ``tid``.
        client_id: The client id of a token request, a managed identity, or a bearer token's
            ``azp``/``appid`` at the vault.
        grant_type: The token request's ``grant_type``.
        auth_method: How the client authenticated (see above).
        scope: The token request's ``scope``.
        error_codes: The AADSTS codes of an error answer.
        time: When the request arrived, Unix seconds.
        fault: The kind of the fault applied to it, if one was.
        claims: The ``claims`` parameter of a token request (a CAE claims challenge).
    """

    method: str
    path: str
    endpoint: str
    status: int | None
    tenant: str | None = None
    client_id: str | None = None
    grant_type: str | None = None
    auth_method: str | None = None
    scope: str | None = None
    error_codes: tuple[int, ...] = ()
    time: float = field(default_factory=time.time)
    fault: str | None = None
    claims: str | None = None


@dataclass
class LogInfo:
    """Mutable per-request notes that handlers and middlewares fill in; becomes a record at the
    end.
    """

    endpoint: str
    tenant: str | None = None
    client_id: str | None = None
    grant_type: str | None = None
    auth_method: str | None = None
    scope: str | None = None
    error_codes: list[int] = field(default_factory=list)
    fault: str | None = None
    claims: str | None = None


class RequestLog:
    """Thread-safe list of :class:`RequestRecord` with a few query helpers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    @property
    def records(self) -> list[RequestRecord]:
        """A snapshot copy, oldest first."""
        with self._lock:
            return list(self._records)

    def append(self, record: RequestRecord) -> None:
        """Add a record (the emulator's middleware does, once per request)."""
        with self._lock:
            self._records.append(record)

    def clear(self) -> None:
        """Forget every record, e.g. after a test's arrangement and before what it counts."""
        with self._lock:
            self._records.clear()

    def filter(
        self,
        endpoint: str | None = None,
        *,
        status: int | None = None,
        client_id: str | None = None,
        tenant: str | None = None,
    ) -> list[RequestRecord]:
        """Records matching every given filter (``None`` matches anything)."""
        return [
            r
            for r in self.records
            if (endpoint is None or r.endpoint == endpoint)
            and (status is None or r.status == status)
            and (client_id is None or (r.client_id or "").lower() == client_id.lower())
            and (tenant is None or (r.tenant or "").lower() == tenant.lower())
        ]

    def count(
        self,
        endpoint: str | None = None,
        *,
        status: int | None = None,
        client_id: str | None = None,
        tenant: str | None = None,
    ) -> int:
        """How many requests match, e.g. ``emu.requests.count("token", status=200)``."""
        return len(self.filter(endpoint, status=status, client_id=client_id, tenant=tenant))

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)


# aiohttp >= 3.13 wants typed request keys (and warns on strings); older versions only have strings.
_LOG_INFO: Any = (
    web.RequestKey("aioentra_log_info", LogInfo)
    if hasattr(web, "RequestKey")
    else "aioentra_log_info"
)


def log_info(request: web.Request, endpoint: str = "other") -> LogInfo:
    """The request's :class:`LogInfo` (created on first use) -- handlers add their findings to
    it.
    """
    info = request.get(_LOG_INFO)
    if not isinstance(info, LogInfo):
        info = LogInfo(endpoint=endpoint)
        request[_LOG_INFO] = info
    return info
