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

Errors name the missing or conflicting settings, never their values.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._authority import AZURE_PUBLIC_CLOUD
from ._errors import ConfigurationError
from .credentials import (
    Certificate,
    ClientAssertion,
    ClientSecret,
    Credential,
    KeyWithThumbprint,
    ManagedIdentityAssertion,
)

if TYPE_CHECKING:
    from ._provider import TokenProvider

__all__ = ["Settings"]

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

    def provider(self, **kwargs: Any) -> TokenProvider:
        """Build a :class:`TokenProvider`; ``kwargs`` are its other options."""
        from ._provider import TokenProvider

        if self.additionally_allowed_tenants:
            kwargs.setdefault("additionally_allowed_tenants", self.additionally_allowed_tenants)
        return TokenProvider(
            self.credential,
            tenant_id=self.tenant_id,
            client_id=self.client_id,
            authority=self.authority,
            **kwargs,
        )

    # -- environment ---------------------------------------------------------------------------

    @classmethod
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
        )

    # -- files ---------------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Settings:
        """Read msal's ``parameters.json`` or a .NET ``appsettings.json`` (``AzureAd`` section)."""
        file = Path(path)
        try:
            document = json.loads(file.read_text(encoding="utf-8-sig"))
        except FileNotFoundError as exc:
            raise ConfigurationError(f"configuration file {str(file)!r} does not exist") from exc
        except ValueError as exc:
            raise ConfigurationError(
                f"configuration file {str(file)!r} is not valid JSON: {exc}"
            ) from exc
        if not isinstance(document, dict):
            raise ConfigurationError(f"configuration file {str(file)!r} is not a JSON object")
        base = file.parent
        if "AzureAd" in document:
            return cls._from_azure_ad(document["AzureAd"], document, base)
        if "client_id" in document:
            return cls._from_parameters(document, base)
        if "ClientId" in document:  # an AzureAd section saved on its own
            return cls._from_azure_ad(document, document, base)
        raise ConfigurationError(
            f"{str(file)!r} is neither an msal parameters.json nor an appsettings.json",
            hint="expected 'client_id' (parameters.json) or an 'AzureAd' section.",
        )

    @classmethod
    def _from_parameters(cls, doc: Mapping[str, Any], base: Path) -> Settings:
        authority = _required(doc, "authority", "parameters.json")
        client_id = _required(doc, "client_id", "parameters.json")
        credential: Credential
        if doc.get("secret"):
            credential = ClientSecret(str(doc["secret"]))
        elif doc.get("private_key_file"):
            key_path = base / str(doc["private_key_file"])
            if doc.get("thumbprint"):
                key = _read_text(key_path)
                if "BEGIN CERTIFICATE" in key:
                    credential = Certificate.from_file(key_path, password=doc.get("passphrase"))
                else:
                    credential = KeyWithThumbprint(
                        key, str(doc["thumbprint"]), password=doc.get("passphrase")
                    )
            else:
                credential = Certificate.from_file(key_path, password=doc.get("passphrase"))
        elif doc.get("private_key_pfx_path"):
            credential = Certificate.from_file(
                base / str(doc["private_key_pfx_path"]), password=doc.get("passphrase")
            )
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
        return cls(
            client_id=client_id,
            credential=credential,
            authority=authority,
            scope=str(scope) if scope else None,
            endpoint=str(doc["endpoint"]) if doc.get("endpoint") else None,
        )

    @classmethod
    def _from_azure_ad(cls, section: Any, document: Mapping[str, Any], base: Path) -> Settings:
        if not isinstance(section, dict):
            raise ConfigurationError("the 'AzureAd' section must be a JSON object")
        client_id = _required(section, "ClientId", "AzureAd")
        tenant = section.get("TenantId") or section.get("Tenant")
        instance = str(section.get("Instance") or AZURE_PUBLIC_CLOUD)
        if "{0}" in instance:  # older samples: "https://login.microsoftonline.com/{0}"
            instance = instance.replace("{0}", "")
        credential = _azure_ad_credential(section, base)
        return cls(
            client_id=client_id,
            credential=credential,
            tenant_id=str(tenant) if tenant else None,
            authority=instance.rstrip("/"),
        )


def _azure_ad_credential(section: Mapping[str, Any], base: Path) -> Credential:
    if section.get("ClientSecret"):
        return ClientSecret(str(section["ClientSecret"]))
    descriptions = section.get("ClientCredentials") or []
    if not isinstance(descriptions, list):
        raise ConfigurationError("'AzureAd.ClientCredentials' must be a list")
    unsupported: list[str] = []
    for item in descriptions:
        if not isinstance(item, dict):
            continue
        kind = str(item.get("SourceType", ""))
        if kind == "ClientSecret" and item.get("ClientSecret"):
            return ClientSecret(str(item["ClientSecret"]))
        if kind == "Path" and item.get("CertificateDiskPath"):
            return Certificate.from_file(
                base / str(item["CertificateDiskPath"]),
                password=item.get("CertificatePassword") or None,
            )
        if kind == "Base64Encoded" and item.get("Base64EncodedValue"):
            import base64
            import binascii

            try:
                pfx = base64.b64decode(str(item["Base64EncodedValue"]), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ConfigurationError(
                    "'Base64EncodedValue' is not valid base64",
                    hint="paste the PFX file's base64 encoding, on one line.",
                ) from exc
            return Certificate.from_pfx(pfx, password=item.get("CertificatePassword") or None)
        if kind == "SignedAssertionFilePath":
            path = item.get("SignedAssertionFileDiskPath") or os.environ.get(
                "AZURE_FEDERATED_TOKEN_FILE"
            )
            if path:
                return ClientAssertion.from_file(str(path))
        if kind == "SignedAssertionFromManagedIdentity":
            return ManagedIdentityAssertion(client_id=item.get("ManagedIdentityClientId") or None)
        unsupported.append(kind or "?")
    hint = "set 'ClientSecret', or a 'ClientCredentials' entry of SourceType ClientSecret, "
    hint += "Path, Base64Encoded, SignedAssertionFilePath or SignedAssertionFromManagedIdentity."
    if unsupported:
        hint += f" Not supported here: {', '.join(unsupported)}."
    raise ConfigurationError("the 'AzureAd' section has no usable credential", hint=hint)


def _required(doc: Mapping[str, Any], name: str, where: str) -> str:
    value = doc.get(name)
    if not value or not isinstance(value, str):
        raise ConfigurationError(f"{where} is missing {name!r}")
    return value


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigurationError(f"key file {str(path)!r} cannot be read: {exc.strerror}") from exc
