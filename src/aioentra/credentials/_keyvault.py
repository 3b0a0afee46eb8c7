"""Credentials whose material lives in Azure Key Vault: a client secret, or a certificate.

Key Vault's budget shapes their lifecycle (4,000 transactions per 10 s per vault, failed ones
included; Microsoft's guidance is to cache for hours):

* **Loaded when the provider is entered** (``start()``), and a failure there is a typed error.
* **Reloaded on a schedule**: after ``reload_every`` (an hour) less up to 20% of jitter, the
  next use starts one background read; the current value keeps serving meanwhile.
* **Reloaded at once when the token endpoint rejects it** (``reload()``): one read for every
  concurrent rejection, at most one per 30 s; the provider then retries its request once.
* **While Key Vault fails the last good value keeps serving**; the failure is logged once per
  back-off period, not per call. Which version is in use is logged, never its value.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import logging
import math
import random
import re
import ssl
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from .._errors import AioEntraError, ConfigurationError, CredentialUnavailableError, fresh
from .._flight import Clock, Fetched, FetchReason, Flight, SystemClock
from .._policy import RefreshPolicy
from .._stats import error_code
from .._vault import VaultAccess, vault_error
from .._workers import WorkerPool
from ._base import AssertionContext, Proof, ProofKind, ReloadReason
from ._certificate import Certificate, _assertion_claims, _b64url, _check_validity, _digest

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

__all__ = ["KeyVaultCertificate", "KeyVaultSecret"]

logger = logging.getLogger("aioentra.keyvault")

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"
_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_VERSION = re.compile(r"^[0-9A-Za-z]{1,64}$")
_KEY = "material"


@dataclass(frozen=True)
class _Material:
    """What one read of the vault gave: the usable thing, and the version it came from."""

    version: str
    value: Any = field(repr=False)


class _VaultCredential:
    """The vault-backed lifecycle the two credentials share (see the module docstring)."""

    kind = "secret"

    def __init__(
        self,
        vault_url: str,
        name: str,
        *,
        version: str | None,
        credential: AsyncTokenCredential | None,
        ca_file: str | None,
        ssl_context: ssl.SSLContext | None,
        verify_challenge_resource: bool | None,
        reload_every: float,
        clock: Clock | None,
    ) -> None:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigurationError(
                f"{name!r} is not a Key Vault object name",
                hint="names are 1-127 letters, digits and dashes.",
            )
        if version is not None and (not isinstance(version, str) or not _VERSION.match(version)):
            raise ConfigurationError(f"{version!r} is not a Key Vault version id")
        if not isinstance(reload_every, (int, float)) or not 0 < reload_every < math.inf:
            raise ConfigurationError("reload_every must be a number of seconds > 0")
        if clock is not None and not (
            callable(getattr(clock, "monotonic", None)) and callable(getattr(clock, "time", None))
        ):
            raise ConfigurationError("clock must have monotonic() and time() methods")
        self._access = VaultAccess(
            vault_url,
            credential=credential,
            ca_file=ca_file,
            ssl_context=ssl_context,
            verify_challenge_resource=verify_challenge_resource,
        )
        self._name = name
        self._pinned = version
        self._reload_every = float(reload_every)
        self._clock: Clock = clock or SystemClock()
        self._flight: Flight[str, _Material] = Flight(
            self._fetch,
            policy=RefreshPolicy(failure_backoff=2.0, max_failure_backoff=300.0),
            clock=self._clock,
            observer=_VaultLog(self),
            same=lambda a, b: a.version == b.version,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kicks: set[asyncio.Future[Any]] = set()

    # -- what subclasses provide ------------------------------------------------------------

    async def _load(self) -> _Material:
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def version(self) -> str | None:
        """The version in use (``None`` before the first load)."""
        slot = self._flight.slots.get(_KEY)
        return slot.value.version if slot is not None and slot.generation else None

    async def start(self) -> None:
        """Read the vault (the provider calls this when it is entered)."""
        self._loop = asyncio.get_running_loop()
        await self._flight.get(_KEY)

    async def reload(self, reason: ReloadReason) -> bool:
        """Read the vault now; ``True`` if it holds another version than the one in use."""
        self._loop = asyncio.get_running_loop()
        current = self._flight.peek(_KEY)
        if current is None:
            await self._flight.get(_KEY)
            return True
        fetched = await self._flight.renew(_KEY, current)
        changed = fetched.version != current.version
        logger.info(
            "Key Vault %s %r reloaded after a rejection (codes %s): %s",
            self.kind,
            self._name,
            list(reason.error_codes),
            f"version {fetched.version} replaces {current.version}"
            if changed
            else f"still version {current.version}",
        )
        return changed

    async def close(self) -> None:
        """Stop a read in flight and close the vault clients (and the default identity)."""
        await self._flight.close()
        for kick in list(self._kicks):
            kick.cancel()
        await self._access.close()

    # -- internals -------------------------------------------------------------------------------

    async def _fetch(self, key: str, reason: FetchReason) -> Fetched[_Material]:
        try:
            material = await self._load()
        except AioEntraError as exc:
            raise fresh(exc) from None
        except Exception as exc:
            raise vault_error(exc, f"reading {self.kind} {self._name!r} from Key Vault") from None
        now = self._clock.monotonic()
        # The scheduled reload: one background read on the first use after this.
        fresh_until = now + self._reload_every * random.uniform(0.8, 1.0)  # noqa: S311
        logger.info("Key Vault %s %r: version %s in use", self.kind, self._name, material.version)
        return Fetched(material, fresh_until, math.inf)

    def _current(self) -> _Material:
        """The material in use; may be called from a worker thread. Starts the scheduled
        reload when it is due (on the loop, in the background)."""
        slot = self._flight.slots.get(_KEY)
        if slot is None or not slot.generation:
            raise CredentialUnavailableError(
                f"Key Vault {self.kind} {self._name!r} is not loaded",
                hint="enter the provider (async with) or let its first request start the "
                "credential; a failed load is tried again by the next request.",
            )
        loop = self._loop
        if loop is not None and self._clock.monotonic() >= slot.fresh_until and slot.task is None:
            loop.call_soon_threadsafe(self._kick)
        material: _Material = slot.value
        return material

    def _kick(self) -> None:
        if self._flight.in_flight(_KEY):
            return
        kick = asyncio.ensure_future(self._flight.get(_KEY))  # serves, and refreshes behind
        self._kicks.add(kick)
        kick.add_done_callback(_done(self._kicks))

    def _describe(self) -> str:
        return f"{type(self).__name__}({self._access.vault_url!r}, {self._name!r})"

    def __repr__(self) -> str:
        access = getattr(self, "_access", None)
        return (
            f"{type(self).__name__}(vault_url={getattr(access, 'vault_url', None)!r}, "
            f"name={getattr(self, '_name', None)!r}, "
            f"version={self.version if access is not None else None!r})"
        )


class KeyVaultSecret(_VaultCredential):
    """A client secret whose value lives in Key Vault (a secret named ``name``).

    >>> KeyVaultSecret("https://contoso.vault.azure.net", "daemon-secret")  # doctest: +SKIP

    Rotate it by writing a new version to the vault: the provider picks it up on the next
    scheduled reload, or at once when the token endpoint rejects the old value (AADSTS7000215,
    7000222). ``version`` pins one version. See :mod:`aioentra.credentials._keyvault` for the
    lifecycle and :class:`~aioentra._vault.VaultAccess` for ``credential``, ``ca_file``,
    ``ssl_context`` and ``verify_challenge_resource``.
    """

    proof_kinds: frozenset[ProofKind] = frozenset({"client_secret"})
    kind = "secret"

    def __init__(
        self,
        vault_url: str,
        name: str,
        *,
        version: str | None = None,
        credential: AsyncTokenCredential | None = None,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        verify_challenge_resource: bool | None = None,
        reload_every: float = 3600.0,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            vault_url,
            name,
            version=version,
            credential=credential,
            ca_file=ca_file,
            ssl_context=ssl_context,
            verify_challenge_resource=verify_challenge_resource,
            reload_every=reload_every,
            clock=clock,
        )
        self._client: Any = None

    def get_proof(self, context: AssertionContext) -> Proof:
        proof: Proof = self._current().value
        return proof

    async def _load(self) -> _Material:
        if self._client is None:
            self._client = await self._access.secrets()
        secret = await self._client.get_secret(self._name, self._pinned)
        value = secret.value
        if not isinstance(value, str) or not value:
            raise CredentialUnavailableError(
                f"Key Vault secret {self._name!r} is empty", hint="store the client secret's Value."
            )
        return _Material(str(secret.properties.version), Proof.secret(value))


class KeyVaultCertificate(_VaultCredential):
    """A certificate credential whose certificate lives in Key Vault.

    By default the certificate and its key are read from the certificate's backing secret
    (PKCS#12 or PEM, as the vault stores it) and the client assertion is signed here, in a
    worker thread. With ``sign_in_vault=True`` the private key never leaves the vault: the
    public part is read from ``GET /certificates/{name}`` (its thumbprint names the key) and
    each assertion is signed by Key Vault's ``sign`` operation (azure-keyvault-keys), PS256
    or ``algorithm="RS256"``. That needs the identity's ``get`` on certificates and ``sign``
    on keys, and works with a non-exportable key.

    A new version in the vault is picked up on the next scheduled reload, or at once when the
    token endpoint rejects the old certificate (AADSTS700027, 7000214, 1000502, ...).
    ``send_certificate_chain`` sends ``x5c`` (with ``sign_in_vault``, the leaf only).
    """

    proof_kinds: frozenset[ProofKind] = frozenset({"client_assertion"})
    kind = "certificate"

    def __init__(
        self,
        vault_url: str,
        name: str,
        *,
        version: str | None = None,
        credential: AsyncTokenCredential | None = None,
        send_certificate_chain: bool = False,
        sign_in_vault: bool = False,
        algorithm: Literal["PS256", "RS256"] = "PS256",
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        verify_challenge_resource: bool | None = None,
        reload_every: float = 3600.0,
        clock: Clock | None = None,
    ) -> None:
        if algorithm not in ("PS256", "RS256"):
            raise ConfigurationError(f"unsupported signing algorithm {algorithm!r}")
        super().__init__(
            vault_url,
            name,
            version=version,
            credential=credential,
            ca_file=ca_file,
            ssl_context=ssl_context,
            verify_challenge_resource=verify_challenge_resource,
            reload_every=reload_every,
            clock=clock,
        )
        self._send_chain = send_certificate_chain
        self._sign_in_vault = sign_in_vault
        self._algorithm: Literal["PS256", "RS256"] = algorithm
        self._workers = WorkerPool(1, name="aioentra-keyvault")
        self._client: Any = None

    def get_proof(self, context: AssertionContext) -> Proof | Awaitable[Proof]:
        material = self._current().value
        if isinstance(material, Certificate):
            return material.get_proof(context)  # signed here: in the provider's worker thread
        signer: _VaultSigner = material
        return signer.sign(context)

    async def close(self) -> None:
        await super().close()
        await self._workers.close()

    async def _load(self) -> _Material:
        if self._sign_in_vault:
            return await self._load_public_part()
        if self._client is None:
            self._client = await self._access.secrets()
        secret = await self._client.get_secret(self._name, self._pinned)
        version = str(secret.properties.version)
        content_type = secret.properties.content_type or PKCS12
        value = secret.value or ""
        send_chain, algorithm = self._send_chain, self._algorithm

        def parse() -> Certificate:  # key parsing and PFX decryption: CPU, off the loop
            if content_type == PEM:
                return Certificate.from_pem(
                    value, send_certificate_chain=send_chain, algorithm=algorithm
                )
            try:
                pfx = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigurationError(
                    f"Key Vault certificate {self._name!r} is not base64 PKCS#12",
                    hint="store the certificate as PKCS#12 or PEM (the vault's content types).",
                ) from None
            return Certificate.from_pfx(pfx, send_certificate_chain=send_chain, algorithm=algorithm)

        del secret
        try:
            certificate = await self._workers.run(parse)
        except ConfigurationError as error:
            keyless = (
                "PRIVATE KEY" not in value
                if content_type == PEM
                else "no private" in (error.message)
            )
            raise ConfigurationError(
                f"Key Vault certificate {self._name!r} version {version} is not usable: "
                f"{error.message}",
                hint=(
                    "its key is not exportable: use KeyVaultCertificate(..., sign_in_vault=True), "
                    "and the vault signs the assertion."
                    if keyless
                    else error.hint
                ),
            ) from None
        return _Material(version, certificate)

    async def _load_public_part(self) -> _Material:
        if self._client is None:
            self._client = await self._access.certificates()
        if self._pinned is None:
            bundle = await self._client.get_certificate(self._name)
        else:
            bundle = await self._client.get_certificate_version(self._name, self._pinned)
        try:
            certificate = x509.load_der_x509_certificate(bytes(bundle.cer))
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"Key Vault certificate {self._name!r} has no readable public part"
            ) from None
        _check_validity(certificate, dt.datetime.now(dt.timezone.utc))
        key_id = str(bundle.key_id)
        crypto = await self._access.cryptography(key_id)
        signer = _VaultSigner(
            certificate, crypto, self._algorithm, send_chain=self._send_chain, key_id=key_id
        )
        return _Material(str(bundle.properties.version), signer)


class _VaultSigner:
    """Client assertions signed by Key Vault's keys API: the private key stays in the vault."""

    def __init__(
        self,
        certificate: x509.Certificate,
        crypto: Any,
        algorithm: Literal["PS256", "RS256"],
        *,
        send_chain: bool,
        key_id: str,
    ) -> None:
        der = certificate.public_bytes(serialization.Encoding.DER)
        self._crypto = crypto
        self._algorithm = algorithm
        self._key_id = key_id
        header: dict[str, object] = {"alg": algorithm, "typ": "JWT"}
        if algorithm == "PS256":
            header["x5t#S256"] = _b64url(_digest(hashes.SHA256(), der))
        else:
            header["x5t"] = _b64url(_digest(hashes.SHA1(), der))  # noqa: S303 - a thumbprint
        if send_chain:
            header["x5c"] = [base64.b64encode(der).decode("ascii")]
        self._header = _b64url(json.dumps(header, separators=(",", ":")).encode())

    async def sign(self, context: AssertionContext) -> Proof:
        from azure.keyvault.keys.crypto import SignatureAlgorithm

        claims = _b64url(json.dumps(_assertion_claims(context), separators=(",", ":")).encode())
        signing_input = f"{self._header}.{claims}"
        digest = _digest(hashes.SHA256(), signing_input.encode("ascii"))
        algorithm = (
            SignatureAlgorithm.ps256 if self._algorithm == "PS256" else SignatureAlgorithm.rs256
        )
        try:
            result = await self._crypto.sign(algorithm, digest)
        except Exception as exc:
            raise vault_error(exc, "signing the client assertion in Key Vault") from None
        return Proof.assertion(f"{signing_input}.{_b64url(bytes(result.signature))}")


class _VaultLog:
    """The cell's observer for a vault credential: one line per read, never a value."""

    def __init__(self, credential: _VaultCredential) -> None:
        self._credential = credential

    def fetched(self, key: str, reason: FetchReason, seconds: float) -> None:
        logger.debug("%s read in %.3fs: %s", self._credential._describe(), seconds, reason.value)

    def failed(
        self, key: str, reason: FetchReason, error: Exception, backoff: float, serving: bool
    ) -> None:
        credential = self._credential
        code = error_code(error)
        correlation = getattr(error, "correlation_id", None)
        hint = getattr(error, "hint", None)
        wait = backoff
        if serving:
            # What reads the vault again: a reload after a rejection once the renewal limit
            # lets one through (the failed one spent it), or the scheduled reload, whichever
            # comes first; never before the back-off.
            flight = credential._flight
            now = credential._clock.monotonic()
            slot = flight.slots.get(_KEY)
            scheduled = slot.fresh_until - now if slot is not None else backoff
            if reason is FetchReason.RENEWAL:
                wait = max(backoff, min(flight.renewal_due(_KEY) - now, scheduled))
            else:
                wait = max(backoff, scheduled)
            action = (
                f"version {credential.version} keeps serving; a read after {wait:.0f}s "
                "reads the vault again"
            )
        else:
            action = f"callers get this error until a call after {wait:.0f}s reads again"
        if not getattr(error, "retryable", False) and hint:
            action += f"; to fix it: {hint}"
        logger.warning(
            "%s: reading Key Vault failed (%s): %s%s; %s",
            credential._describe(),
            _VAULT_READS[reason],
            code,
            f", correlation id {correlation}" if correlation else "",
            action,
            extra={
                "aioentra": {
                    "event": "keyvault_read_failed",
                    "reason": reason.value,
                    "error_code": code,
                    "correlation_id": correlation,
                    "retry_in": wait,
                    "serving": serving,
                }
            },
        )


_VAULT_READS = {
    FetchReason.COLD: "the first read",
    FetchReason.EXPIRED: "the value in use had expired",
    FetchReason.AHEAD: "the scheduled reload",
    FetchReason.FORCED: "a forced reload",
    FetchReason.CLAIMS: "a reload for a claims challenge",
    FetchReason.RENEWAL: "a reload after the identity provider refused the value in use",
}
"""Why a vault credential read its vault, in the words of its failure lines."""


def _done(kicks: set[asyncio.Future[Any]]) -> Any:
    def forget(kick: asyncio.Future[Any]) -> None:
        kicks.discard(kick)
        if not kick.cancelled():
            kick.exception()  # reported by the cell's observer already

    return forget
