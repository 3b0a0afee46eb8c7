"""Client assertions from elsewhere: a callable, a file, or a managed identity.

These are federated credentials (workload identity federation): the token
endpoint accepts a JWT issued by a trusted issuer whose ``iss``/``sub`` match a
federated credential registered on the app, sent as ``client_assertion``.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._errors import ConfigurationError
from ._base import AssertionContext

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

__all__ = ["ClientAssertion", "ManagedIdentityAssertion"]

AssertionFunc = Callable[..., "str | Awaitable[str]"]
TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"


def _takes_context(func: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    return len(positional) == 1


class ClientAssertion:
    """A client assertion supplied by your code or read from a file.

    ``func`` may be sync or async and may take no argument or one
    :class:`AssertionContext`. It is called once per token request; sync
    functions run in the provider's worker thread, coroutines on the loop.

    >>> ClientAssertion(lambda: "eyJ...")
    ClientAssertion(<lambda>)
    """

    def __init__(self, func: AssertionFunc) -> None:
        if not callable(func):
            raise ConfigurationError("ClientAssertion needs a callable that returns a JWT")
        self._func = func
        self._with_context = _takes_context(func)
        self._name = getattr(func, "__qualname__", type(func).__name__)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ClientAssertion:
        """Read the assertion from ``path``, re-reading it whenever the file changes.

        This is how Kubernetes workload identity delivers its projected token
        (``AZURE_FEDERATED_TOKEN_FILE``); the kubelet rewrites the file before expiry.
        """
        reader = _AssertionFile(os.fspath(path))
        reader.check()
        instance = cls(reader)
        instance._name = f"file {os.fspath(path)!r}"
        return instance

    def get_assertion(self, context: AssertionContext) -> str | Awaitable[str]:
        result = self._func(context) if self._with_context else self._func()
        if inspect.isawaitable(result):
            return _checked(result)
        return _check_value(result)

    def __repr__(self) -> str:
        return f"ClientAssertion({self._name})"


async def _checked(result: Awaitable[str]) -> str:
    return _check_value(await result)


def _check_value(value: object) -> str:
    if not isinstance(value, str) or value.count(".") != 2:
        raise ConfigurationError(
            "the client assertion source did not return a JWT",
            hint="return the compact JWT string (header.payload.signature).",
        )
    return value.strip()


class _AssertionFile:
    """Caches the file's content and re-reads it when its mtime or size changes."""

    __qualname__ = "AssertionFile"

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._value = ""

    def check(self) -> None:
        if not os.path.isfile(self._path):
            raise ConfigurationError(
                f"assertion file {self._path!r} does not exist",
                hint="check AZURE_FEDERATED_TOKEN_FILE (is the projected volume mounted?).",
            )

    def __call__(self) -> str:
        try:
            stat = os.stat(self._path)
        except OSError as exc:
            raise ConfigurationError(
                f"assertion file {self._path!r} cannot be read: {exc.strerror}",
                hint="check AZURE_FEDERATED_TOKEN_FILE and the volume mount.",
            ) from exc
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                with open(self._path, encoding="ascii") as handle:
                    self._value = handle.read().strip()
                self._stamp = stamp
            return self._value


class ManagedIdentityAssertion:
    """A client assertion signed by a managed identity (federated identity credential).

    The managed identity gets a token for ``api://AzureADTokenExchange``, which the
    app registration trusts through a federated credential; no secret is stored.
    ``credential`` defaults to azure-identity's async ``ManagedIdentityCredential``.
    Tokens are reused while more than five minutes of their lifetime remain.
    """

    def __init__(
        self,
        *,
        client_id: str | None = None,
        credential: AsyncTokenCredential | None = None,
        scope: str = TOKEN_EXCHANGE_SCOPE,
    ) -> None:
        self._client_id = client_id
        self._credential = credential
        self._owns_credential = credential is None
        self._scope = scope
        self._cached: tuple[str, int] | None = None

    def _get_credential(self) -> AsyncTokenCredential:
        if self._credential is None:
            from azure.identity.aio import ManagedIdentityCredential

            self._credential = ManagedIdentityCredential(client_id=self._client_id)
        return self._credential

    async def get_assertion(self, context: AssertionContext) -> str:
        import time

        if self._cached is not None and self._cached[1] - time.time() > 300:
            return self._cached[0]
        token = await self._get_credential().get_token(self._scope)
        self._cached = (token.token, token.expires_on)
        return token.token

    async def close(self) -> None:
        """Close the managed identity credential if this object created it."""
        if self._owns_credential and self._credential is not None:
            await self._credential.close()
            self._credential = None

    def __repr__(self) -> str:
        return f"ManagedIdentityAssertion(client_id={self._client_id!r}, scope={self._scope!r})"
