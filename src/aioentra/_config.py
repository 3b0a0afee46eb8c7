"""Configuration from the environment and from the JSON files daemon samples use.

Three sources, one result (:class:`Settings`):

* environment variables with azure-identity's names (``AZURE_TENANT_ID``,
  ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``, ``AZURE_CLIENT_CERTIFICATE_PATH``,
  ``AZURE_CLIENT_CERTIFICATE_PASSWORD``, ``AZURE_FEDERATED_TOKEN_FILE``,
  ``AZURE_AUTHORITY_HOST``);
* msal Python's ``parameters.json`` (``authority``, ``client_id``, ``scope``,
  ``secret`` or ``thumbprint`` + ``private_key_file``, ``endpoint``);
* the ``AzureAd`` section of a .NET ``appsettings.json`` (``Instance``,
  ``TenantId``, ``ClientId``, ``ClientSecret``, ``ClientCredentials[]``).

The shared token cache (:class:`aioentra.redis.RedisCache`) comes from an appsettings
``TokenCache`` section (``Redis``: the URL, ``EncryptionKeys``: base64 keys, the first
encrypts, ``Prefix``), or else from ``AIOENTRA_REDIS_URL``, ``AIOENTRA_REDIS_KEYS``
(comma-separated) and ``AIOENTRA_REDIS_PREFIX``, with every source.

Errors name the missing or conflicting settings, never their values.
"""

from __future__ import annotations

import dataclasses
import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from ._authority import AZURE_PUBLIC_CLOUD
from ._errors import ConfigurationError, raises_cleanly
from ._tls import checked_ssl_context
from .credentials import (
    Certificate,
    ClientAssertion,
    ClientSecret,
    Credential,
    CredentialChain,
    KeyVaultCertificate,
    KeyVaultSecret,
    KeyWithThumbprint,
    ManagedIdentityAssertion,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._cache import SharedCache
    from ._provider import ProviderOptions, TokenProvider

__all__ = ["Settings", "SharedCacheSettings"]

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Who the app is and how it proves it: enough to build a :class:`TokenProvider`."""

    client_id: str
    credential: Credential
    tenant_id: str | None = None
    authority: str = AZURE_PUBLIC_CLOUD
    scope: str | None = None
    """The scope the configuration names, if any (``parameters.json``'s ``scope``)."""
    endpoint: str | None = None
    """The API endpoint the configuration names, if any."""
    additionally_allowed_tenants: tuple[str, ...] = ()
    """Other tenants tokens may be requested for (``AZURE_ADDITIONALLY_ALLOWED_TENANTS``)."""
    shared_cache: SharedCacheSettings | None = None
    """The shared token cache to put behind the provider's own, if configured."""

    def provider(self, **options: Unpack[ProviderOptions]) -> TokenProvider:
        """Build a :class:`TokenProvider` that owns (and closes) this credential and the shared
        cache the settings name; ``options`` are its other keyword arguments."""
        from ._provider import TokenProvider

        if self.additionally_allowed_tenants:
            options.setdefault("additionally_allowed_tenants", self.additionally_allowed_tenants)
        if self.shared_cache is not None and "cache" not in options:
            options["cache"] = self.shared_cache.build()
        return TokenProvider(
            self.credential,
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            authority=self.authority,
            **options,
        )

    # -- environment ---------------------------------------------------------------------------

    @classmethod
    @raises_cleanly
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read azure-identity's environment variables (``EnvironmentCredential``'s set)."""
        env = os.environ if environ is None else environ
        missing = [name for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID") if not env.get(name)]
        if missing:
            raise ConfigurationError(
                f"missing environment variables: {', '.join(missing)}",
                hint="set AZURE_TENANT_ID and AZURE_CLIENT_ID, plus one credential variable.",
            )
        # azure-identity's order: EnvironmentCredential (secret, then certificate) before
        # WorkloadIdentityCredential (the federated token file, which AKS injects on its own).
        credential: Credential
        if env.get("AZURE_CLIENT_SECRET"):
            credential = ClientSecret(env["AZURE_CLIENT_SECRET"])
        elif env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
            credential = Certificate.from_file(
                env["AZURE_CLIENT_CERTIFICATE_PATH"],
                password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None,
                send_certificate_chain=env.get("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "").lower()
                in _TRUE,
            )
        elif env.get("AZURE_FEDERATED_TOKEN_FILE"):
            credential = ClientAssertion.from_file(env["AZURE_FEDERATED_TOKEN_FILE"])
        else:
            raise ConfigurationError(
                "no credential in the environment",
                hint="set one of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or "
                "AZURE_FEDERATED_TOKEN_FILE.",
            )
        tenants = env.get("AZURE_ADDITIONALLY_ALLOWED_TENANTS", "")
        return cls(
            client_id=env["AZURE_CLIENT_ID"],
            tenant_id=env["AZURE_TENANT_ID"],
            authority=env.get("AZURE_AUTHORITY_HOST") or AZURE_PUBLIC_CLOUD,
            credential=credential,
            additionally_allowed_tenants=tuple(t.strip() for t in tenants.split(";") if t.strip()),
            shared_cache=SharedCacheSettings.from_environment(env),
        )

    # -- files ---------------------------------------------------------------------------------

    @classmethod
    @raises_cleanly
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        ca_file: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Settings:
        """Read msal's ``parameters.json`` or a .NET ``appsettings.json`` (``AzureAd`` section).

        ``ca_file`` or ``ssl_context`` is the TLS trust of the Key Vault credentials the file
        describes (``ClientCredentials`` entries of SourceType ``KeyVault``), e.g. a local
        vault's CA; :meth:`TokenProvider.from_file` passes its own. Without either they use
        the system's trust store.

        Errors name the file and the setting, never a value: a JSON syntax error gives its
        line and column only, and nothing the file holds stays reachable from the error.
        """
        trust = _vault_trust(ca_file, ssl_context)
        try:
            file = Path(path)
        except TypeError:
            raise ConfigurationError(f"{path!r} is not a file path") from None
        document = _load_json(file)
        if not isinstance(document, dict):
            raise ConfigurationError(f"configuration file {str(file)!r} is not a JSON object")
        base = file.parent
        settings: Settings | None = None
        if "AzureAd" in document:
            settings = cls._from_azure_ad(document["AzureAd"], document, base, trust)
        elif "client_id" in document:
            settings = cls._from_parameters(document, base)
        elif "ClientId" in document:  # an AzureAd section saved on its own
            settings = cls._from_azure_ad(document, document, base, trust)
        if settings is not None:
            shared = SharedCacheSettings.from_section(document.get("TokenCache"))
            shared = shared or SharedCacheSettings.from_environment(os.environ)
            return dataclasses.replace(settings, shared_cache=shared)
        raise ConfigurationError(
            f"{str(file)!r} is neither an msal parameters.json nor an appsettings.json",
            hint="expected 'client_id' (parameters.json) or an 'AzureAd' section.",
        )

    @classmethod
    def _from_parameters(cls, doc: Mapping[str, Any], base: Path) -> Settings:
        where = "parameters.json"
        authority = _required(doc, "authority", where)
        client_id = _required(doc, "client_id", where)
        password = _optional_str(doc, "passphrase", where)
        secret = _optional_str(doc, "secret", where)
        key_file = _optional_str(doc, "private_key_file", where)
        pfx_file = _optional_str(doc, "private_key_pfx_path", where)
        thumbprint = _optional_str(doc, "thumbprint", where)
        credential: Credential
        if secret:
            credential = ClientSecret(secret)
        elif key_file:
            key_path = base / key_file
            if thumbprint:
                key = _read_text(key_path)
                if "BEGIN CERTIFICATE" in key:
                    credential = Certificate.from_file(key_path, password=password)
                else:
                    credential = KeyWithThumbprint(key, thumbprint, password=password)
                del key
            else:
                credential = Certificate.from_file(key_path, password=password)
        elif pfx_file:
            credential = Certificate.from_file(base / pfx_file, password=password)
        else:
            raise ConfigurationError(
                "parameters.json has no credential",
                hint="set 'secret', or 'thumbprint' + 'private_key_file'.",
            )
        scope = doc.get("scope")
        if isinstance(scope, list):
            if len(scope) != 1:
                raise ConfigurationError(
                    "parameters.json 'scope' must hold exactly one '{resource}/.default' scope"
                )
            scope = scope[0]
        if scope is not None and not isinstance(scope, str):
            raise ConfigurationError("parameters.json 'scope' must be a string")
        return cls(
            client_id=client_id,
            credential=credential,
            authority=authority,
            scope=scope or None,
            endpoint=_optional_str(doc, "endpoint", where),
        )

    @classmethod
    def _from_azure_ad(
        cls, section: Any, document: Mapping[str, Any], base: Path, trust: VaultTrust
    ) -> Settings:
        if not isinstance(section, dict):
            raise ConfigurationError("the 'AzureAd' section must be a JSON object")
        client_id = _required(section, "ClientId", "AzureAd")
        tenant = _optional_str(section, "TenantId", "AzureAd") or _optional_str(
            section, "Tenant", "AzureAd"
        )
        instance = _optional_str(section, "Instance", "AzureAd") or AZURE_PUBLIC_CLOUD
        if "{0}" in instance:  # older samples: "https://login.microsoftonline.com/{0}"
            instance = instance.replace("{0}", "")
        credential = _azure_ad_credential(section, base, trust)
        return cls(
            client_id=client_id,
            credential=credential,
            tenant_id=tenant,
            authority=instance.rstrip("/"),
        )


class VaultTrust(TypedDict, total=False):
    """The TLS options of the Key Vault credentials a configuration file describes."""

    ca_file: str
    ssl_context: ssl.SSLContext


def _vault_trust(ca_file: object, ssl_context: object) -> VaultTrust:
    """Checked before any entry is built: a bad option must fail loudly, not make every
    Key Vault entry one the chain skips."""
    if ca_file is not None and ssl_context is not None:
        raise ConfigurationError("pass ca_file or ssl_context, not both")
    if ssl_context is not None:
        return {"ssl_context": checked_ssl_context(ssl_context, "ssl_context")}
    if ca_file is None:
        return {}
    if not isinstance(ca_file, str) or not os.path.isfile(ca_file):
        raise ConfigurationError(
            f"ca_file {ca_file!r} does not exist",
            hint="give the path of a PEM file with the CA certificates to trust.",
        )
    return {"ca_file": ca_file}


@dataclass(frozen=True)
class SharedCacheSettings:
    """Where the shared token cache is and how its entries are encrypted (never in repr)."""

    url: str
    keys: tuple[str, ...] = field(repr=False)
    prefix: str = "aioentra"

    def build(self) -> SharedCache:
        """The :class:`aioentra.redis.RedisCache` these settings describe."""
        try:
            from .redis import RedisCache
        except ImportError:  # pragma: no cover - the redis extra is missing
            raise ConfigurationError(
                "a shared token cache is configured, but redis-py is not installed",
                hint="pip install 'aioentra[redis]'.",
            ) from None
        return RedisCache(self.url, key=list(self.keys), prefix=self.prefix)

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> SharedCacheSettings | None:
        url = env.get("AIOENTRA_REDIS_URL")
        if not url:
            return None
        keys = tuple(k.strip() for k in env.get("AIOENTRA_REDIS_KEYS", "").split(",") if k.strip())
        if not keys:
            raise ConfigurationError(
                "AIOENTRA_REDIS_URL is set but AIOENTRA_REDIS_KEYS is not",
                hint="set AIOENTRA_REDIS_KEYS to one or more base64 keys of 32 bytes, "
                "comma-separated (the first encrypts), the same in every replica.",
            )
        return cls(url, keys, env.get("AIOENTRA_REDIS_PREFIX") or "aioentra")

    @classmethod
    def from_section(cls, section: object) -> SharedCacheSettings | None:
        """An appsettings ``TokenCache`` section: ``Redis``, ``EncryptionKeys``, ``Prefix``."""
        if section is None:
            return None
        where = "TokenCache"
        if not isinstance(section, dict):
            raise ConfigurationError("the 'TokenCache' section must be a JSON object")
        url = _required(section, "Redis", where)
        keys = section.get("EncryptionKeys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise ConfigurationError(
                "'TokenCache.EncryptionKeys' must be a list of base64 keys",
                hint="32 random bytes each, base64-encoded; the first encrypts, all decrypt.",
            )
        return cls(url, tuple(keys), _optional_str(section, "Prefix", where) or "aioentra")


def _azure_ad_credential(section: Mapping[str, Any], base: Path, trust: VaultTrust) -> Credential:
    """``ClientSecret``, or the ``ClientCredentials`` list: one credential, or a
    :class:`CredentialChain` of every entry that could be built, in order."""
    secret = _optional_str(section, "ClientSecret", "AzureAd")
    if secret:
        return ClientSecret(secret)
    descriptions = section.get("ClientCredentials") or []
    if not isinstance(descriptions, list):
        raise ConfigurationError("'AzureAd.ClientCredentials' must be a list")
    built: list[Credential] = []
    problems: list[str] = []
    for number, item in enumerate(descriptions, 1):
        if not isinstance(item, dict):
            problems.append(f"entry {number} is not an object")
            continue
        try:
            credential = _described_credential(item, base, trust)
        except ConfigurationError as error:
            # Microsoft.Identity.Web skips an entry that does not load; so does the chain.
            problems.append(f"entry {number}: {error.message}")
            continue
        if credential is None:
            problems.append(f"entry {number}: SourceType {item.get('SourceType')!r} is not usable")
            continue
        built.append(credential)
    if len(built) == 1:
        return built[0]
    if built:
        return CredentialChain(built)
    hint = "set 'ClientSecret', or 'ClientCredentials' entries of SourceType ClientSecret, "
    hint += "KeyVault, Path, Base64Encoded, SignedAssertionFilePath or "
    hint += "SignedAssertionFromManagedIdentity."
    if problems:
        hint += " " + "; ".join(problems) + "."
    raise ConfigurationError("the 'AzureAd' section has no usable credential", hint=hint)


def _described_credential(
    item: Mapping[str, Any], base: Path, trust: VaultTrust
) -> Credential | None:
    """One ``ClientCredentials`` entry (a Microsoft.Identity.Web credential description)."""
    where = "AzureAd.ClientCredentials entry"
    kind = _optional_str(item, "SourceType", where) or ""
    password = _optional_str(item, "CertificatePassword", where)
    if kind == "ClientSecret":
        value = _optional_str(item, "ClientSecret", where)
        return ClientSecret(value) if value else None
    if kind == "KeyVault":
        vault = _optional_str(item, "KeyVaultUrl", where)
        certificate = _optional_str(item, "KeyVaultCertificateName", where)
        secret_name = _optional_str(item, "KeyVaultSecretName", where)  # an aioentra extension
        if not vault or not (certificate or secret_name):
            raise ConfigurationError(
                "a KeyVault entry needs KeyVaultUrl and KeyVaultCertificateName "
                "(or KeyVaultSecretName)"
            )
        if certificate:
            return KeyVaultCertificate(vault, certificate, **trust)
        assert secret_name is not None
        return KeyVaultSecret(vault, secret_name, **trust)
    if kind == "Path":
        disk_path = _optional_str(item, "CertificateDiskPath", where)
        return Certificate.from_file(base / disk_path, password=password) if disk_path else None
    if kind == "Base64Encoded":
        encoded = _optional_str(item, "Base64EncodedValue", where)
        if not encoded:
            return None
        import base64
        import binascii

        try:
            pfx = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(
                "'Base64EncodedValue' is not valid base64",
                hint="paste the PFX file's base64 encoding, on one line.",
            ) from None
        return Certificate.from_pfx(pfx, password=password)
    if kind == "SignedAssertionFilePath":
        path = _optional_str(item, "SignedAssertionFileDiskPath", where) or os.environ.get(
            "AZURE_FEDERATED_TOKEN_FILE"
        )
        return ClientAssertion.from_file(path) if path else None
    if kind == "SignedAssertionFromManagedIdentity":
        return ManagedIdentityAssertion(
            client_id=_optional_str(item, "ManagedIdentityClientId", where)
        )
    return None


def _load_json(file: Path) -> Any:
    """The file's JSON document; every failure is a ConfigurationError raised from None (a
    JSONDecodeError would carry the whole document, secrets included)."""
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigurationError(f"configuration file {str(file)!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigurationError(
            f"configuration file {str(file)!r} is a directory",
            hint="give the path of the JSON file itself.",
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"configuration file {str(file)!r} cannot be read: {exc.strerror or 'error'}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"configuration file {str(file)!r} is not UTF-8 text") from None
    except ValueError:  # e.g. a NUL byte in the path
        raise ConfigurationError(f"configuration file path {str(file)!r} is not valid") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
    except (ValueError, RecursionError):
        where = "nested too deeply or not JSON"
    del text
    raise ConfigurationError(f"configuration file {str(file)!r} is not valid JSON ({where})")


def _optional_str(doc: Mapping[str, Any], name: str, where: str) -> str | None:
    value = doc.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{where} {name!r} must be a string, not {type(value).__name__}",
            hint="quote the value in the JSON file.",
        )
    return value


def _required(doc: Mapping[str, Any], name: str, where: str) -> str:
    value = doc.get(name)
    if not value or not isinstance(value, str):
        raise ConfigurationError(f"{where} is missing {name!r}")
    return value


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigurationError(f"key file {str(path)!r} cannot be read: {reason}") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"key file {str(path)!r} is not a PEM text file") from None
    except ValueError:
        raise ConfigurationError(f"key file path {str(path)!r} is not valid") from None
