"""The directory objects the emulator knows: tenants, APIs, daemon apps and credentials.

These mirror Entra's model as far as the client-credentials grant sees it: an *application* has a
client id and a service principal (``object_id``, the ``oid``/``sub`` of its tokens); it proves its
identity with a client secret, a certificate or a federated credential; a resource *API* is known
by its identifier URI (``api://...``) or its app id, and defines app roles that an admin grants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ._certs import CertificateMaterial

__all__ = ["Api", "App", "FederatedCredential", "SecretCredential", "Tenant"]

#: Default audience of a federated identity credential (Entra's recommended value).
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class Tenant:
    """A directory: its GUID and its ``*.onmicrosoft.com`` domain; both work in a URL path.

    Attributes:
        tenant_id: The directory's GUID, the ``tid`` of its tokens.
        domain: Its ``*.onmicrosoft.com`` name; ``/{domain}/...`` paths reach the same tenant.
    """

    tenant_id: str
    domain: str


@dataclass(frozen=True)
class Api:
    """A resource application, the target of ``{identifier_uri}/.default``.

    Tokens for a custom API carry ``aud = app_id`` (v2 tokens, protocol-facts §3). Built-in
    resources (Key Vault, Microsoft Graph) carry their resource URI as ``aud`` instead, which
    is what those services accept.

    ``access_token_version`` is the API manifest's ``accessTokenAcceptedVersion``: ``2`` (the
    default) or ``1`` (what Entra does when the manifest says ``null``): v1.0 tokens, whose
    ``aud`` is the resource as the client requested it -- the identifier URI, or the app id
    for ``{app_id}/.default``.

    Attributes:
        app_id: The application (client) id of the API, a GUID; ``{app_id}/.default`` works as
            a scope too.
        identifier_uri: The App ID URI, e.g. ``api://orders``; clients ask for
            ``{identifier_uri}/.default``.
        roles: The app roles the API defines; ``Emulator.grant`` grants a subset.
        name: The display name (used in AADSTS messages and by grants of a registration file).
        tenant_id: The tenant the API is registered in.
        assignment_required: When ``True``, an app with no granted role is refused with
            AADSTS501051 instead of getting a token without ``roles``.
        builtin: ``True`` for the pre-registered Key Vault and Microsoft Graph resources.
        access_token_version: The manifest's ``accessTokenAcceptedVersion``, ``1`` or ``2``.
    """

    app_id: str
    identifier_uri: str
    roles: tuple[str, ...]
    name: str
    tenant_id: str
    assignment_required: bool = False
    builtin: bool = False
    access_token_version: Literal[1, 2] = 2

    @property
    def audience(self) -> str:
        """The v2 ``aud``: the app id (a built-in resource: its URI). See :meth:`audience_for`."""
        return self.identifier_uri if self.builtin else self.app_id

    def audience_for(self, requested: str) -> str:
        """The ``aud`` of a token for ``requested`` (identifier URI or app id, no ``/.default``):
        :attr:`audience` for v2 tokens, ``requested`` as it is for v1.0 tokens."""
        return requested if self.access_token_version == 1 else self.audience


@dataclass(frozen=True)
class SecretCredential:
    """A client secret value and its optional expiry (expired secrets answer AADSTS7000222)."""

    value: str = field(repr=False)
    expires_at: datetime | None = None


@dataclass(frozen=True)
class FederatedCredential:
    """Trust in an external token: an assertion with this ``iss``/``sub`` and ``aud`` signs the
    app in.
    """

    issuer: str
    subject: str
    audience: str = TOKEN_EXCHANGE_AUDIENCE


@dataclass
class App:
    """A daemon application (confidential client) and its service principal.

    ``secret`` and ``certificate`` give the first registered credential of each kind, the usual
    thing a test needs; ``secrets``/``certificates`` hold them all.

    Attributes:
        client_id: The application (client) id, a GUID: ``client_id`` of a token request and
            ``azp``/``appid`` of the tokens.
        object_id: The service principal's object id, ``oid`` and ``sub`` of the tokens.
        name: The display name.
        tenant_id: The home tenant.
        secrets: Every registered client secret, oldest first.
        certificates: Every registered certificate credential, oldest first.
        federated_credentials: The external token issuers the app trusts.
    """

    client_id: str
    object_id: str
    name: str
    tenant_id: str
    secrets: list[SecretCredential] = field(default_factory=list, repr=False)
    certificates: list[CertificateMaterial] = field(default_factory=list, repr=False)
    federated_credentials: list[FederatedCredential] = field(default_factory=list)
    consented_tenants: set[str] = field(default_factory=set)
    """Other tenants where a multi-tenant app has a service principal (admin consent)."""

    def is_in_tenant(self, tenant_id: str) -> bool:
        """Whether the app has a service principal in ``tenant_id`` (home, or consented)."""
        return tenant_id == self.tenant_id or tenant_id in self.consented_tenants

    @property
    def secret(self) -> str | None:
        """The first registered client secret's value, or ``None`` without a secret."""
        return self.secrets[0].value if self.secrets else None

    @property
    def certificate(self) -> CertificateMaterial | None:
        """The first registered certificate credential, or ``None`` without one."""
        return self.certificates[0] if self.certificates else None
