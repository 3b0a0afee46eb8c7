"""Secrets from Azure Key Vault at startup: :func:`load_secrets`.

::

    from aioentra.keyvault import load_secrets

    secrets = await load_secrets(
        "https://contoso.vault.azure.net", ["db-password", "todo-api-key"]
    )
    connect(password=secrets["db-password"])

The names are read concurrently (a bounded anyio task group) with one vault token: the first
read answers the vault's authentication challenge, the others follow with the token it got.
Missing, disabled or forbidden secrets raise one :class:`~aioentra.SecretsNotLoadedError` that
names each failed secret and why. No value appears in a log, a repr or an error.

The identity, TLS and challenge options are those of every Key Vault entry point of the SDK:
see :class:`~aioentra._vault.VaultAccess`. The Key Vault credentials are in
:mod:`aioentra.credentials` (:class:`~aioentra.KeyVaultSecret`,
:class:`~aioentra.KeyVaultCertificate`).
"""

from __future__ import annotations

import math
import re
import ssl
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._errors import AioEntraError, ConfigurationError, KeyVaultError, SecretsNotLoadedError
from ._vault import VaultAccess, vault_error

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

__all__ = ["Secrets", "load_secrets"]

_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")


class Secrets(Mapping[str, str]):
    """A read-only mapping of secret names to values; its ``repr`` shows the names only."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> str:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Secrets({sorted(self._values)!r})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        raise TypeError("Secrets cannot be pickled: it would copy the values")


async def load_secrets(
    vault_url: str,
    names: Iterable[str],
    *,
    credential: AsyncTokenCredential | None = None,
    ca_file: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    verify_challenge_resource: bool | None = None,
    concurrency: int = 64,
    timeout: float = 30.0,  # noqa: ASYNC109 - the error then names what did not finish
) -> Secrets:
    """Read the latest version of each of ``names`` from the vault at ``vault_url``.

    ``credential`` is any azure-core ``AsyncTokenCredential`` (default: this machine's managed
    identity, closed again before returning); ``concurrency`` bounds the reads in flight and
    ``timeout`` the whole load. A secret that fails with a retryable error (429, 5xx, a reset)
    is read once more, after its ``Retry-After`` (at most 10 s).

    Raises:
        ConfigurationError: a name is not a Key Vault name, or an option is wrong.
        SecretsNotLoadedError: some secrets could not be read; ``failures`` says why, each.
    """
    wanted = _checked_names(names)
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError("concurrency must be an int of at least 1")
    if not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
        raise ConfigurationError("timeout must be a number of seconds > 0")
    access = VaultAccess(
        vault_url,
        credential=credential,
        ca_file=ca_file,
        ssl_context=ssl_context,
        verify_challenge_resource=verify_challenge_resource,
    )
    try:
        values, failures = await _read_all(access, wanted, concurrency, float(timeout))
    finally:
        await access.close()
    if failures:
        values.clear()  # no frame of the error holds a value that did load
        del values
        raise SecretsNotLoadedError(
            f"{len(failures)} of {len(wanted)} secrets could not be read from "
            f"{access.vault_url}: "
            + "; ".join(f"{name!r} ({_why(error)})" for name, error in sorted(failures.items())),
            failures=failures,
            hint="each failure's hint is in SecretsNotLoadedError.failures[name].hint.",
        )
    return Secrets({name: values[name] for name in wanted})


async def _read_all(
    access: VaultAccess,
    wanted: list[str],
    concurrency: int,
    timeout: float,  # noqa: ASYNC109 - see load_secrets
) -> tuple[dict[str, str], dict[str, AioEntraError]]:
    """Every name once, concurrently; names that fail with a retryable error once more."""
    values: dict[str, str] = {}
    failures: dict[str, AioEntraError] = {}
    client = await access.secrets()
    limiter = anyio.CapacityLimiter(concurrency)

    async def read(name: str) -> None:
        async with limiter:
            try:
                secret = await client.get_secret(name)
            except Exception as exc:
                failures[name] = vault_error(exc, f"reading secret {name!r}")
                return
        if not isinstance(secret.value, str):
            failures[name] = ConfigurationError(f"secret {name!r} has no value")
            return
        failures.pop(name, None)
        values[name] = secret.value

    async def round_of(names: list[str]) -> None:
        async with anyio.create_task_group() as group:
            for name in names:
                group.start_soon(read, name)

    with anyio.move_on_after(timeout) as scope:
        if wanted:
            await read(wanted[0])  # answers the vault's challenge; the rest reuse the token
        await round_of(wanted[1:])
        again = [name for name, error in failures.items() if error.retryable]
        if again:
            waits = [failures[name].retry_after or 1.0 for name in again]
            await anyio.sleep(min(max(waits), 10.0))
            await round_of(again)
    if scope.cancelled_caught:
        for name in wanted:
            if name not in values and name not in failures:
                failures[name] = KeyVaultError(
                    f"reading secret {name!r} did not finish within {timeout:g}s",
                    hint="the vault is slow or unreachable; raise timeout= if this is expected.",
                )
    return values, failures


def _checked_names(names: Iterable[str]) -> list[str]:
    if isinstance(names, str):
        raise ConfigurationError(
            "load_secrets() takes a list of names, not one string",
            hint="e.g. load_secrets(vault_url, ['db-password']).",
        )
    try:
        wanted = list(dict.fromkeys(names))
    except TypeError:
        raise ConfigurationError("load_secrets() takes an iterable of names") from None
    bad = [name for name in wanted if not isinstance(name, str) or not _NAME.match(name)]
    if bad:
        raise ConfigurationError(
            f"not Key Vault secret names: {bad!r}",
            hint="names are 1-127 letters, digits and dashes.",
        )
    return wanted


def _why(error: AioEntraError) -> str:
    code = getattr(error, "code", None)
    return f"{code}: {error.message}" if code else error.message
