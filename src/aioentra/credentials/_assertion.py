"""Client assertions from elsewhere: a callable, a file, or a managed identity.

These are federated credentials (workload identity federation): the token endpoint accepts a
JWT issued by a trusted issuer whose ``iss``/``sub`` match a federated credential registered on
the app, sent as ``client_assertion``.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._errors import AioEntraError, ConfigurationError, CredentialUnavailableError, fresh
from .._flight import Clock, Fetched, FetchReason, Flight, SystemClock
from .._policy import RefreshPolicy
from .._token import MAX_LIFETIME
from ._base import AssertionContext, Proof, ProofKind, ReloadReason

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from .._managed_identity import ManagedIdentityProvider

__all__ = ["ClientAssertion", "ManagedIdentityAssertion"]

AssertionFunc = Callable[..., "str | Awaitable[str]"]
TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"
_ASSERTION_KINDS: frozenset[ProofKind] = frozenset({"client_assertion"})


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

    ``func`` may be sync or async and may take no argument or one :class:`AssertionContext`.
    It is called once per token request; sync functions run in the provider's worker thread,
    coroutines on the loop.

    >>> ClientAssertion(lambda: "eyJ...")
    ClientAssertion(<lambda>)
    """

    proof_kinds = _ASSERTION_KINDS

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
        (``AZURE_FEDERATED_TOKEN_FILE``); the kubelet rewrites the file before expiry. When the
        token endpoint rejects the assertion, the file is read again before the one retry.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise ConfigurationError("ClientAssertion.from_file() takes a str or a path")
        reader = _AssertionFile(os.fspath(path))
        reader.check()
        instance = cls(reader)
        instance._name = f"file {os.fspath(path)!r}"
        return instance

    def get_proof(self, context: AssertionContext) -> Proof | Awaitable[Proof]:
        result = self._func(context) if self._with_context else self._func()
        if inspect.isawaitable(result):
            return _checked(result)
        return Proof.assertion(_check_value(result))

    async def reload(self, reason: ReloadReason) -> bool:
        """Re-read the file (for :meth:`from_file`); ``True`` if its content changed."""
        if isinstance(self._func, _AssertionFile):
            return self._func.reload()
        return False

    def __repr__(self) -> str:
        return f"ClientAssertion({getattr(self, '_name', '<not built>')})"


async def _checked(result: Awaitable[str]) -> Proof:
    return Proof.assertion(_check_value(await result))


def _check_value(value: object) -> str:
    if not isinstance(value, str) or value.strip().count(".") != 2:
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
            ) from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._value = self._read()
                self._stamp = stamp
            return self._value

    def reload(self) -> bool:
        with self._lock:
            before = self._value
            try:
                self._value = self._read()
            except ConfigurationError:
                return False
            self._stamp = None
            return self._value != before

    def _read(self) -> str:
        try:
            with open(self._path, encoding="ascii") as handle:
                return handle.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise ConfigurationError(
                f"assertion file {self._path!r} cannot be read: {reason}",
                hint="check AZURE_FEDERATED_TOKEN_FILE and the volume mount.",
            ) from None


class ManagedIdentityAssertion:
    """A client assertion signed by a managed identity (federated identity credential).

    The managed identity gets a token for ``api://AzureADTokenExchange``, which the app
    registration trusts through a federated credential; no secret is stored. The token comes
    from a :class:`~aioentra.ManagedIdentityProvider` (for ``client_id``, or the
    system-assigned identity), which this object creates, owns and closes: single-flight,
    refreshed ahead, reused while more than five minutes of its lifetime remain. Pass
    ``credential=`` (any azure-core ``AsyncTokenCredential``) to get the token elsewhere; it is
    then cached the same way and never closed here.
    """

    proof_kinds = _ASSERTION_KINDS

    def __init__(
        self,
        *,
        client_id: str | None = None,
        credential: AsyncTokenCredential | None = None,
        scope: str = TOKEN_EXCHANGE_SCOPE,
        clock: Clock | None = None,
    ) -> None:
        self._client_id = client_id
        self._credential = credential
        self._scope = scope
        self._clock: Clock = clock or SystemClock()
        self._policy = RefreshPolicy(expiry_margin=300.0)
        self._provider: ManagedIdentityProvider | None = None
        self._flight = self._new_flight()
        self._stale = False

    def _new_flight(self) -> Flight[str, str]:
        return Flight(self._fetch, policy=self._policy, clock=self._clock)

    def _get_provider(self) -> ManagedIdentityProvider:
        if self._provider is None:
            from .._managed_identity import ManagedIdentityProvider

            self._provider = ManagedIdentityProvider(
                client_id=self._client_id, refresh=self._policy, clock=self._clock
            )
        return self._provider

    async def get_proof(self, context: AssertionContext) -> Proof:
        force, self._stale = self._stale, False
        try:
            if self._credential is None:
                token = await self._get_provider().get_token(self._scope, force_refresh=force)
                return Proof.assertion(token.token)
            if force:
                self._flight.discard(self._scope)
            return Proof.assertion(await self._flight.get(self._scope))
        except AioEntraError as exc:
            raise fresh(exc) from None

    async def _fetch(self, scope: str, reason: FetchReason) -> Fetched[str]:
        """A token from ``credential=`` (the default source caches for itself)."""
        clock = self._clock
        started, wall = clock.monotonic(), clock.time()
        assert self._credential is not None
        try:
            token = await self._credential.get_token(scope)
            value, expires_on = token.token, token.expires_on
            del token  # no frame of a raised error holds the token
        except AioEntraError as exc:
            raise fresh(exc) from None
        except Exception as exc:
            raise CredentialUnavailableError(
                f"the managed identity could not get a token: {_first_line(exc)}",
                hint="check that this machine has a managed identity"
                + (f" with client id {self._client_id!r}" if self._client_id else "")
                + " and that its federated credential is registered on the app.",
            ) from None
        try:
            lifetime = min(float(expires_on) - wall, MAX_LIFETIME)
        except (TypeError, ValueError, OverflowError):
            lifetime = 0.0
        if not 0 < lifetime < float("inf") or not isinstance(value, str) or not value:
            del value
            raise CredentialUnavailableError(
                "the managed identity returned an expired or malformed token",
                hint="check this machine's clock.",
            )
        refresh_after, usable_for = self._policy.windows(lifetime)
        return Fetched(value, started + refresh_after, started + usable_for)

    async def reload(self, reason: ReloadReason) -> bool:
        """The token endpoint refused the assertion: the next one is a new token."""
        self._stale = True
        return True

    async def close(self) -> None:
        """Close the managed identity provider this object made (a ``credential=`` is its
        owner's). The object can be used again afterwards."""
        flight, self._flight = self._flight, self._new_flight()
        await flight.close()
        provider, self._provider = self._provider, None
        if provider is not None:
            await provider.close()

    def __repr__(self) -> str:
        return (
            f"ManagedIdentityAssertion(client_id={getattr(self, '_client_id', None)!r}, "
            f"scope={getattr(self, '_scope', None)!r})"
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    return line[:300]
