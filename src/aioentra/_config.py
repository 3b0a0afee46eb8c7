"""Configuration from the environment and from the JSON files daemon samples use.

Three sources, one result (:class:`Settings`):

* environment variables with azure-identity's names (``AZURE_TENANT_ID``,
  ``AZURE_CLIENT_ID``, ``AZURE_CLIENT_SECRET``, ``AZURE_CLIENT_CERTIFICATE_PATH``,
  ``AZURE_CLIENT_CERTIFICATE_PASSWORD``, ``AZURE_FEDERATED_TOKEN_FILE``,
  ``AZURE_AUTHORITY_HOST``), plus aioentra's ``AIOENTRA_CA_FILE``;
* msal Python's ``parameters.json`` (``authority``, ``client_id``, ``scope``,
  ``secret`` or ``thumbprint`` + ``private_key_file``, ``endpoint``, and ``ca_file``);
* a .NET ``appsettings.json``: the ``AzureAd`` section (``Instance``, ``TenantId``,
  ``ClientId``, ``ClientSecret``, ``ClientCredentials[]``, and ``CaFile``) and the
  ``DownstreamApis`` section (:mod:`aioentra._downstream`).

The shared token cache (:class:`aioentra.redis.RedisCache`) comes from an appsettings
``TokenCache`` section (``Redis``: the URL, ``EncryptionKeys``: base64 keys, the first
encrypts, ``Prefix``), or else from ``AIOENTRA_REDIS_URL``, ``AIOENTRA_REDIS_KEYS``
(comma-separated) and ``AIOENTRA_REDIS_PREFIX``, with every source.

**TLS trust.** The CA bundle aioentra's own connections trust (the token endpoint, and the Key
Vault credentials a file describes) is, first found wins: the ``ca_file=`` / ``ssl_context=``
argument; the file's ``AzureAd.CaFile`` (``ca_file`` in ``parameters.json``; relative to the
file's folder); ``AIOENTRA_CA_FILE``; else the system's trust store, which Python's
``ssl.create_default_context()`` builds, honouring ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` when
the connection's session is made. A CA file *replaces* the system's store for what it applies
to. ``REQUESTS_CA_BUNDLE`` is requests' variable, not read here (aioentra does not use
requests, and azure-identity's async credentials ignore it too).

Every error names the setting as the user wrote it (``appsettings.json: AzureAd.TenantId``,
``AZURE_TENANT_ID``; :mod:`aioentra._where`), never its value, and the checks that need no
network are made while the file is read: a missing tenant is the file's error, not the first
request's.
"""

from __future__ import annotations

import dataclasses
import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypedDict

from ._authority import AZURE_PUBLIC_CLOUD, Authority, TenantRules, validate_scope
from ._downstream import DownstreamApi, checked_base_url, origin_scopes, read_downstream_apis
from ._errors import ConfigurationError, raises_cleanly
from ._tls import checked_ssl_context
from ._where import Where, naming, relocated
from .credentials import (
    # Certificate, KeyWithThumbprint and the Key Vault credentials are imported where a
    # setting names one: a secret loads neither cryptography, PyJWT nor the Key Vault code.
    ClientAssertion,
    ClientSecret,
    Credential,
    CredentialChain,
    ManagedIdentityAssertion,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._cache import SharedCache
    from ._provider import ProviderOptions, TokenProvider

__all__ = ["CA_FILE_VARIABLE", "DownstreamApi", "Settings", "SharedCacheSettings"]

CA_FILE_VARIABLE = "AIOENTRA_CA_FILE"
"""The environment variable naming the CA bundle aioentra's connections trust."""

_TRUE = {"1", "true", "yes", "on"}
_NO_TENANT = "no tenant given"  # Authority.parse's message when neither names a tenant


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
    ca_file: str | None = None
    """The CA bundle (PEM) to trust instead of the system's: the ``ca_file=`` argument, the
    file's ``AzureAd.CaFile`` / ``ca_file``, or ``AIOENTRA_CA_FILE``, in that order."""
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    """The ``ssl_context=`` given to :meth:`from_file`, if any (it beats every CA file)."""
    apis: tuple[DownstreamApi, ...] = ()
    """The ``DownstreamApis`` entries, in file order (``parameters.json``: its ``endpoint``
    with its ``scope``)."""

    @property
    def downstream_apis(self) -> Mapping[str, str]:
        """origin -> scope of every API the configuration names, for
        :func:`aioentra.aiohttp.authenticated_session` and the bearer middleware::

            async with authenticated_session(provider, settings.downstream_apis) as session:
                ...

        Each origin receives the token of its entry's one ``/.default`` scope.
        """
        return MappingProxyType(origin_scopes(self.apis))

    def api(self, name: str) -> DownstreamApi:
        """The ``DownstreamApis`` entry called ``name`` (its URL, scope and origin)."""
        for api in self.apis:
            if api.name == name:
                return api
        known = ", ".join(repr(api.name) for api in self.apis) or "none"
        raise ConfigurationError(
            f"no DownstreamApis entry is named {name!r}", hint=f"the entries are: {known}."
        )

    def provider(self, **options: Unpack[ProviderOptions]) -> TokenProvider:
        """Build a :class:`TokenProvider` that owns (and closes) this credential and the shared
        cache the settings name; ``options`` are its other keyword arguments.

        Without a ``ca_file``, ``ssl_context`` or ``session`` option, the provider trusts the
        settings' :attr:`ca_file` (or :attr:`ssl_context`), else the system's trust store."""
        from ._provider import TokenProvider

        if self.additionally_allowed_tenants:
            options.setdefault("additionally_allowed_tenants", self.additionally_allowed_tenants)
        if self.shared_cache is not None and "cache" not in options:
            options["cache"] = self.shared_cache.build()
        if all(options.get(name) is None for name in ("ca_file", "ssl_context", "session")):
            if self.ssl_context is not None:
                options["ssl_context"] = self.ssl_context
            elif self.ca_file is not None:
                options["ca_file"] = self.ca_file
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
        """Read azure-identity's environment variables (``EnvironmentCredential``'s set), and
        ``AIOENTRA_CA_FILE``, the CA bundle to trust instead of the system's."""
        env = os.environ if environ is None else environ
        missing = [name for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID") if not env.get(name)]
        if missing:
            raise ConfigurationError(
                f"missing environment variables: {', '.join(missing)}",
                hint="set AZURE_TENANT_ID and AZURE_CLIENT_ID, plus one credential variable.",
            )
        client = Where.environment("AZURE_CLIENT_ID")
        authority = Where.environment("AZURE_AUTHORITY_HOST")
        tenant = Where.environment("AZURE_TENANT_ID")
        identity = _Identity(
            env["AZURE_CLIENT_ID"],
            env.get("AZURE_AUTHORITY_HOST") or AZURE_PUBLIC_CLOUD,
            env["AZURE_TENANT_ID"],
            client=client,
            authority_key=authority,
            tenant_key=tenant,
        )
        identity.check()
        credential = _environment_credential(env)
        identity.check(credential)
        allowed = Where.environment("AZURE_ADDITIONALLY_ALLOWED_TENANTS")
        listed = env.get(allowed.path, "")
        tenants = tuple(t.strip() for t in listed.split(";") if t.strip())
        with naming(allowed):
            TenantRules.build(identity.parsed(credential), tenants)
        return cls(
            client_id=identity.client_id,
            tenant_id=identity.tenant,
            authority=identity.authority,
            credential=credential,
            additionally_allowed_tenants=tenants,
            shared_cache=SharedCacheSettings.from_environment(env),
            ca_file=_environment_ca_file(env),
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
        """Read msal's ``parameters.json`` or a .NET ``appsettings.json`` (``AzureAd``,
        ``DownstreamApis`` and ``TokenCache`` sections).

        ``ca_file`` or ``ssl_context`` is the TLS trust of the Key Vault credentials the file
        describes (``ClientCredentials`` entries of SourceType ``KeyVault``), e.g. a local
        vault's CA, and the default of :meth:`provider`'s; :meth:`TokenProvider.from_file`
        passes its own. Without either, the file's ``AzureAd.CaFile`` (``ca_file`` in a
        ``parameters.json``, relative to the file's folder) applies, else
        ``AIOENTRA_CA_FILE``, else the system's trust store.

        Errors name the file and the key (``appsettings.json: AzureAd.TenantId``), never a
        value: a JSON syntax error gives its line and column only, and nothing the file holds
        stays reachable from the error.
        """
        explicit = _vault_trust(ca_file, ssl_context)
        try:
            file = Path(path)
        except TypeError:
            raise ConfigurationError(f"{path!r} is not a file path") from None
        document = _load_json(file)
        if not isinstance(document, dict):
            raise ConfigurationError(f"configuration file {str(file)!r} is not a JSON object")
        source = Where(str(file))
        reader = _FileReader(source, file.parent, explicit)
        settings: Settings | None = None
        if "AzureAd" in document:
            settings = reader.azure_ad(document["AzureAd"], source.at("AzureAd"))
        elif "client_id" in document:
            settings = reader.parameters(document)
        elif "ClientId" in document:  # an AzureAd section saved on its own
            settings = reader.azure_ad(document, source)
        if settings is None:
            raise ConfigurationError(
                f"{str(file)!r} is neither an msal parameters.json nor an appsettings.json",
                hint="expected 'client_id' (parameters.json) or an 'AzureAd' section.",
            )
        shared = SharedCacheSettings.from_section(
            document.get("TokenCache"), source.at("TokenCache")
        )
        shared = shared or SharedCacheSettings.from_environment(os.environ)
        if "client_id" not in document or "AzureAd" in document:  # appsettings, not msal's
            apis = read_downstream_apis(document.get("DownstreamApis"), source.at("DownstreamApis"))
            settings = dataclasses.replace(settings, apis=apis)
        return dataclasses.replace(settings, shared_cache=shared)


# -- the app's identity: checked where it was read ---------------------------------------------


@dataclass(frozen=True)
class _Identity:
    """Client id, authority and tenant as read, with where each came from."""

    client_id: str
    authority: str
    tenant: str | None
    client: Where
    authority_key: Where
    tenant_key: Where | None

    def check(self, credential: Credential | None = None) -> None:
        """What :class:`TokenProvider` would refuse, refused here under the setting's name.

        Called before the credential is built (everything but the credential's kind), and
        after (the ``organizations`` tenant takes a secret only)."""
        value = self.client_id.strip()
        if any(c.isspace() or c == "/" or not c.isprintable() for c in value):
            raise ConfigurationError(
                f"{self.client} is malformed",
                hint="use the app's Application (client) ID from its registration, a GUID.",
            )
        self.parsed(credential)

    def parsed(self, credential: Credential | None = None) -> Authority:
        kinds = getattr(credential, "proof_kinds", None)
        secret = kinds is None or "client_secret" in kinds
        if self.tenant is not None and self.tenant_key is not None:
            with naming(self.tenant_key):
                Authority.parse(AZURE_PUBLIC_CLOUD, self.tenant, secret_credential=secret)
        try:
            # allow_insecure_http: a loopback http authority is the provider's option to
            # refuse or allow, not the file's; anything else http is refused either way.
            return Authority.parse(
                self.authority, self.tenant, allow_insecure_http=True, secret_credential=secret
            )
        except ConfigurationError as error:
            if error.message != _NO_TENANT:
                hint = f"check {self.authority_key.inside()}."
                raise relocated(error, self.authority_key, hint) from None
        if self.tenant_key is None:
            raise ConfigurationError(
                f"{self.authority_key} names no tenant",
                hint="give the tenanted authority, e.g. "
                "'https://login.microsoftonline.com/<tenant id>'.",
            )
        raise ConfigurationError(
            f"{self.tenant_key} is missing",
            hint=f"set {self.tenant_key.inside()} to the Directory (tenant) ID or a verified "
            "domain name of the app's tenant.",
        )


def _environment_credential(env: Mapping[str, str]) -> Credential:
    # azure-identity's order: EnvironmentCredential (secret, then certificate) before
    # WorkloadIdentityCredential (the federated token file, which AKS injects on its own).
    if env.get("AZURE_CLIENT_SECRET"):
        with naming(Where.environment("AZURE_CLIENT_SECRET")):
            return ClientSecret(env["AZURE_CLIENT_SECRET"])
    if env.get("AZURE_CLIENT_CERTIFICATE_PATH"):
        from .credentials import Certificate

        with naming(Where.environment("AZURE_CLIENT_CERTIFICATE_PATH")):
            return Certificate.from_file(
                env["AZURE_CLIENT_CERTIFICATE_PATH"],
                password=env.get("AZURE_CLIENT_CERTIFICATE_PASSWORD") or None,
                send_certificate_chain=env.get("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", "").lower()
                in _TRUE,
            )
    if env.get("AZURE_FEDERATED_TOKEN_FILE"):
        with naming(Where.environment("AZURE_FEDERATED_TOKEN_FILE")):
            return ClientAssertion.from_file(env["AZURE_FEDERATED_TOKEN_FILE"])
    raise ConfigurationError(
        "no credential in the environment",
        hint="set one of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH or "
        "AZURE_FEDERATED_TOKEN_FILE.",
    )


# -- TLS trust ---------------------------------------------------------------------------------


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
    if not isinstance(ca_file, str) or not _is_file(Path(ca_file)):
        raise ConfigurationError(
            f"ca_file {ca_file!r} does not exist",
            hint="give the path of a PEM file with the CA certificates to trust.",
        )
    return {"ca_file": ca_file}


def _environment_ca_file(env: Mapping[str, str]) -> str | None:
    """``AIOENTRA_CA_FILE``, checked to name a file (relative to the working directory)."""
    value = env.get(CA_FILE_VARIABLE)
    if not value:
        return None
    if not _is_file(Path(value)):
        raise ConfigurationError(
            f"{CA_FILE_VARIABLE} names {value!r}, which is not a file",
            hint="point it at a PEM file with the CA certificates to trust, or unset it.",
        )
    return value


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # e.g. a NUL byte in the path
        return False


# -- files ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FileReader:
    """Reads one configuration file: ``source`` names it, ``base`` is its folder (relative
    paths in it are relative to that), ``explicit`` the caller's trust options."""

    source: Where
    base: Path
    explicit: VaultTrust

    def trust(self, section: Mapping[str, Any], key: str, where: Where) -> VaultTrust:
        """The caller's trust, else the file's CA file ``key``, else ``AIOENTRA_CA_FILE``."""
        named = _optional_str(section, key, where)
        if self.explicit:
            return self.explicit
        if named is None:
            found = _environment_ca_file(os.environ)
            return {"ca_file": found} if found else {}
        path = self.base / named
        if not _is_file(path):
            raise ConfigurationError(
                f"{where.at(key)} names {str(path)!r}, which is not a file",
                hint="give a PEM file with the CA certificates to trust, relative to the "
                "configuration file's folder (or an absolute path).",
            )
        return {"ca_file": str(path)}

    def settings(self, trust: VaultTrust, **values: Any) -> Settings:
        return Settings(
            ca_file=trust.get("ca_file"), ssl_context=trust.get("ssl_context"), **values
        )

    def parameters(self, doc: Mapping[str, Any]) -> Settings:
        """msal's ``parameters.json``."""
        where = self.source
        trust = self.trust(doc, "ca_file", where)
        identity = _Identity(
            _required(doc, "client_id", where),
            _required(doc, "authority", where),
            None,
            client=where.at("client_id"),
            authority_key=where.at("authority"),
            tenant_key=None,
        )
        identity.check()
        credential = self._parameters_credential(doc)
        identity.check(credential)
        scope = _parameters_scope(doc, where.at("scope"))
        endpoint = _optional_str(doc, "endpoint", where)
        apis: tuple[DownstreamApi, ...] = ()
        if endpoint is not None:
            checked_base_url(endpoint, where.at("endpoint"))
            if scope is not None:
                apis = (DownstreamApi("endpoint", endpoint, scope),)
        return self.settings(
            trust,
            client_id=identity.client_id,
            credential=credential,
            authority=identity.authority,
            scope=scope,
            endpoint=endpoint,
            apis=apis,
        )

    def _parameters_credential(self, doc: Mapping[str, Any]) -> Credential:
        where = self.source
        password = _optional_str(doc, "passphrase", where)
        secret = _optional_str(doc, "secret", where)
        key_file = _optional_str(doc, "private_key_file", where)
        pfx_file = _optional_str(doc, "private_key_pfx_path", where)
        thumbprint = _optional_str(doc, "thumbprint", where)
        if secret:
            with naming(where.at("secret")):
                return ClientSecret(secret)
        from .credentials import Certificate, KeyWithThumbprint

        if key_file:
            key_path = self.base / key_file
            with naming(where.at("private_key_file"), "check private_key_file and passphrase."):
                if not thumbprint:
                    return Certificate.from_file(key_path, password=password)
                key = _read_text(key_path)
                if "BEGIN CERTIFICATE" in key:
                    del key
                    return Certificate.from_file(key_path, password=password)
                try:
                    return KeyWithThumbprint(key, thumbprint, password=password)
                finally:
                    del key
        if pfx_file:
            hint = "check private_key_pfx_path and passphrase."
            with naming(where.at("private_key_pfx_path"), hint):
                return Certificate.from_file(self.base / pfx_file, password=password)
        raise ConfigurationError(
            f"{where} has no credential",
            hint="set 'secret', or 'thumbprint' + 'private_key_file'.",
        )

    def azure_ad(self, section: Any, where: Where) -> Settings:
        """An ``AzureAd`` section (``where``: its key path, or the file for a bare one)."""
        if not isinstance(section, dict):
            raise ConfigurationError(f"{where} must be a JSON object")
        trust = self.trust(section, "CaFile", where)
        tenant_key = where.at("TenantId")
        tenant = _optional_str(section, "TenantId", where)
        if tenant is None and _optional_str(section, "Tenant", where) is not None:
            tenant_key = where.at("Tenant")
            tenant = section["Tenant"]
        instance = _optional_str(section, "Instance", where) or AZURE_PUBLIC_CLOUD
        if "{0}" in instance:  # older samples: "https://login.microsoftonline.com/{0}"
            instance = instance.replace("{0}", "")
        identity = _Identity(
            _required(section, "ClientId", where),
            instance.rstrip("/"),
            tenant,
            client=where.at("ClientId"),
            authority_key=where.at("Instance"),
            tenant_key=tenant_key,
        )
        identity.check()
        credential = self._azure_ad_credential(section, where, trust)
        identity.check(credential)
        return self.settings(
            trust,
            client_id=identity.client_id,
            credential=credential,
            tenant_id=tenant,
            authority=identity.authority,
        )

    def _azure_ad_credential(
        self, section: Mapping[str, Any], where: Where, trust: VaultTrust
    ) -> Credential:
        """``ClientSecret``, or the ``ClientCredentials`` list: one credential, or a
        :class:`CredentialChain` of every entry that could be built, in order."""
        secret = _optional_str(section, "ClientSecret", where)
        if secret:
            with naming(where.at("ClientSecret")):
                return ClientSecret(secret)
        listed = where.at("ClientCredentials")
        descriptions = section.get("ClientCredentials") or []
        if not isinstance(descriptions, list):
            raise ConfigurationError(f"{listed} must be a list")
        built: list[Credential] = []
        problems: list[str] = []
        for index, item in enumerate(descriptions):
            entry = listed.item(index).inside()  # listed under an error that names the file
            if not isinstance(item, dict):
                problems.append(f"{entry} is not an object")
                continue
            try:
                credential = self._described_credential(item, entry, trust)
            except ConfigurationError as error:
                # Microsoft.Identity.Web skips an entry that does not load; so does the chain.
                problems.append(error.message)
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
        raise ConfigurationError(f"{where} has no usable credential", hint=hint)

    def _described_credential(
        self, item: Mapping[str, Any], where: Where, trust: VaultTrust
    ) -> Credential:
        """One ``ClientCredentials`` entry (a Microsoft.Identity.Web credential description)."""
        kind = _optional_str(item, "SourceType", where) or ""
        password = _optional_str(item, "CertificatePassword", where)
        if kind == "ClientSecret":
            value = _needed(item, "ClientSecret", where)
            with naming(where.at("ClientSecret")):
                return ClientSecret(value)
        if kind == "KeyVault":
            vault = _needed(item, "KeyVaultUrl", where)
            certificate = _optional_str(item, "KeyVaultCertificateName", where)
            secret_name = _optional_str(item, "KeyVaultSecretName", where)  # aioentra's own
            if not (certificate or secret_name):
                raise ConfigurationError(
                    f"{where.at('KeyVaultCertificateName')} is missing (or KeyVaultSecretName)"
                )
            from .credentials import KeyVaultCertificate, KeyVaultSecret

            with naming(where):
                if certificate:
                    return KeyVaultCertificate(vault, certificate, **trust)
                assert secret_name is not None
                return KeyVaultSecret(vault, secret_name, **trust)
        if kind == "Path":
            disk_path = _needed(item, "CertificateDiskPath", where)
            hint = "check CertificateDiskPath and CertificatePassword."
            from .credentials import Certificate

            with naming(where.at("CertificateDiskPath"), hint):
                return Certificate.from_file(self.base / disk_path, password=password)
        if kind == "Base64Encoded":
            return _base64_certificate(_needed(item, "Base64EncodedValue", where), password, where)
        if kind == "SignedAssertionFilePath":
            named = _optional_str(item, "SignedAssertionFileDiskPath", where)
            if named is not None:
                with naming(where.at("SignedAssertionFileDiskPath")):
                    return ClientAssertion.from_file(self.base / named)
            # Identity.Web's default: the workload identity's projected token file.
            variable = os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
            if not variable:
                raise ConfigurationError(
                    f"{where.at('SignedAssertionFileDiskPath')} is missing "
                    "(and AZURE_FEDERATED_TOKEN_FILE is not set)"
                )
            with naming(Where.environment("AZURE_FEDERATED_TOKEN_FILE")):
                return ClientAssertion.from_file(variable)
        if kind == "SignedAssertionFromManagedIdentity":
            with naming(where.at("ManagedIdentityClientId")):
                return ManagedIdentityAssertion(
                    client_id=_optional_str(item, "ManagedIdentityClientId", where)
                )
        raise ConfigurationError(f"{where.at('SourceType')} {kind!r} is not supported")


def _base64_certificate(encoded: str, password: str | None, where: Where) -> Credential:
    import base64
    import binascii

    from .credentials import Certificate

    key = where.at("Base64EncodedValue")
    try:
        pfx = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"{key} is not valid base64",
            hint="paste the PFX file's base64 encoding, on one line.",
        ) from None
    with naming(key, "check Base64EncodedValue and CertificatePassword."):
        return Certificate.from_pfx(pfx, password=password)


def _parameters_scope(doc: Mapping[str, Any], where: Where) -> str | None:
    """``scope``: one ``{resource}/.default``, as a string or a list of one."""
    scope = doc.get("scope")
    if scope is None or scope == "" or scope == []:
        return None
    if not isinstance(scope, (str, list)):
        raise ConfigurationError(
            f"{where} must be a string or a list of one scope",
            hint='e.g. "scope": ["https://graph.microsoft.com/.default"].',
        )
    with naming(where):
        return validate_scope(scope)


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
    def from_section(
        cls, section: object, where: Where | None = None
    ) -> SharedCacheSettings | None:
        """An appsettings ``TokenCache`` section: ``Redis``, ``EncryptionKeys``, ``Prefix``
        (``where`` names it in errors)."""
        if section is None:
            return None
        where = where or Where(None, "TokenCache")
        if not isinstance(section, dict):
            raise ConfigurationError(f"{where} must be a JSON object")
        url = _required(section, "Redis", where)
        keys = section.get("EncryptionKeys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise ConfigurationError(
                f"{where.at('EncryptionKeys')} must be a list of base64 keys",
                hint="32 random bytes each, base64-encoded; the first encrypts, all decrypt.",
            )
        return cls(url, tuple(keys), _optional_str(section, "Prefix", where) or "aioentra")


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


def _optional_str(doc: Mapping[str, Any], name: str, where: Where) -> str | None:
    value = doc.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{where.at(name)} must be a string, not {type(value).__name__}",
            hint="quote the value in the JSON file.",
        )
    return value


def _required(doc: Mapping[str, Any], name: str, where: Where) -> str:
    value = _optional_str(doc, name, where)
    if value is None:
        raise ConfigurationError(f"{where.at(name)} is missing")
    return value


def _needed(item: Mapping[str, Any], name: str, where: Where) -> str:
    """A key the entry's SourceType needs."""
    value = _optional_str(item, name, where)
    if value is None:
        kind = item.get("SourceType")
        raise ConfigurationError(f"{where.at(name)} is missing (SourceType {kind!r} needs it)")
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
