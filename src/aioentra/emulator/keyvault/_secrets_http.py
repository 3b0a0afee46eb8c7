"""The Key Vault secrets data plane over HTTP: one handler per REST operation.

Each handler reads like the REST operation it serves (protocol-facts §4.1):

========  ======================================  ==========================  ==========
method    path                                    operation                   permission
========  ======================================  ==========================  ==========
PUT       ``/secrets/{name}``                     SetSecret                   set
GET       ``/secrets/{name}[/]``                  GetSecret (latest)          get
GET       ``/secrets/{name}/{version}``           GetSecret                   get
PATCH     ``/secrets/{name}[/{version}]``         UpdateSecret                set
GET       ``/secrets``                            GetSecrets (paged)          list
GET       ``/secrets/{name}/versions``            GetSecretVersions (paged)   list
DELETE    ``/secrets/{name}``                     DeleteSecret                delete
GET       ``/deletedsecrets[/{name}]``            Get(Deleted)Secret(s)       list
DELETE    ``/deletedsecrets/{name}``              PurgeDeletedSecret          purge
POST      ``/deletedsecrets/{name}/recover``      RecoverDeletedSecret        recover
========  ======================================  ==========================  ==========

Every operation first passes the :class:`~._gate.Gate` (api-version, token, the
``secrets`` permission in the last column).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ._errors import KeyVaultError
from ._gate import Gate, Handler, json_body, read_json, vault_url
from ._store import SecretConflictError, SecretNameError, SecretNotFoundError, SecretStore
from ._wire import (
    deleted_secret_bundle,
    page_body,
    parse_attributes_update,
    parse_max_results,
    parse_skiptoken,
    secret_bundle,
    secret_item,
)

__all__ = ["SecretsApi"]


class SecretsApi:
    """The ``/secrets`` and ``/deletedsecrets`` routes of one vault."""

    def __init__(self, store: SecretStore, gate: Gate) -> None:
        self._store = store
        self._gate = gate

    def routes(self) -> list[web.RouteDef]:
        """The secret routes; order matters for aiohttp (``versions`` before ``{version}``)."""
        table: list[tuple[str, str, Handler, str]] = [
            ("GET", "/secrets", self.list_secrets, "list_secrets"),
            ("PUT", "/secrets/{name}", self.set_secret, "set_secret"),
            ("GET", "/secrets/{name}", self.get_secret, "get_secret"),
            ("GET", "/secrets/{name}/", self.get_secret, "get_secret_latest"),
            ("PATCH", "/secrets/{name}", self.update_secret, "update_secret"),
            ("PATCH", "/secrets/{name}/", self.update_secret, "update_secret_latest"),
            ("DELETE", "/secrets/{name}", self.delete_secret, "delete_secret"),
            ("GET", "/secrets/{name}/versions", self.list_versions, "list_versions"),
            ("GET", "/secrets/{name}/{version}", self.get_secret, "get_secret_version"),
            ("PATCH", "/secrets/{name}/{version}", self.update_secret, "update_secret_version"),
            ("GET", "/deletedsecrets", self.list_deleted, "list_deleted"),
            ("GET", "/deletedsecrets/{name}", self.get_deleted, "get_deleted"),
            ("DELETE", "/deletedsecrets/{name}", self.purge_deleted, "purge_deleted"),
            ("POST", "/deletedsecrets/{name}/recover", self.recover_deleted, "recover_deleted"),
        ]
        return self._gate.routes(table)

    # -- secrets ----------------------------------------------------------------------

    async def set_secret(self, request: web.Request) -> web.StreamResponse:
        """SetSecret: a new version with ``value`` and optional attributes (200, SecretBundle)."""
        self._gate.authorize(request, "secrets", "set")
        name = request.match_info["name"]
        body = await read_json(request)
        value = body.get("value")
        if not isinstance(value, str):
            raise KeyVaultError.bad_parameter("Property 'value' is required and must be a string.")
        update = parse_attributes_update(body)
        try:
            secret = self._store.set(
                name,
                value,
                content_type=update.content_type,
                enabled=True if update.enabled is None else update.enabled,
                not_before=update.not_before,
                expires_on=update.expires_on,
                tags=update.tags,
            )
        except SecretNameError as error:
            raise KeyVaultError.bad_parameter(str(error)) from None
        except SecretConflictError:
            raise KeyVaultError.name_in_deleted_state(name) from None
        return json_body(secret_bundle(secret, vault_url(request)))

    async def get_secret(self, request: web.Request) -> web.StreamResponse:
        """GetSecret: the given version, or the latest for ``/secrets/{name}[/]``.

        A disabled version is 403 ``SecretDisabled``. Versions outside their ``nbf``/``exp``
        window are returned: "a secret's get operation will work for not-yet-valid and
        expired secrets" (``about-secrets.md``, observed in Azure/AzureKeyVault#19).
        """
        self._gate.authorize(request, "secrets", "get")
        name = request.match_info["name"]
        try:
            secret = self._store.get(name, request.match_info.get("version"))
        except SecretNotFoundError:
            raise KeyVaultError.secret_not_found(name) from None
        if not secret.enabled:
            raise KeyVaultError.secret_disabled("get")
        bundle = secret_bundle(
            secret, vault_url(request), out_content_type=request.query.get("outContentType")
        )
        return json_body(bundle)

    async def update_secret(self, request: web.Request) -> web.StreamResponse:
        """UpdateSecret: change ``contentType``, ``tags`` and attributes of one version."""
        self._gate.authorize(request, "secrets", "set")
        name = request.match_info["name"]
        update = parse_attributes_update(await read_json(request))
        try:
            secret = self._store.update(
                name,
                request.match_info.get("version"),
                content_type=update.content_type,
                enabled=update.enabled,
                not_before=update.not_before,
                expires_on=update.expires_on,
                tags=update.tags,
            )
        except SecretNotFoundError:
            raise KeyVaultError.secret_not_found(name) from None
        body = secret_bundle(secret, vault_url(request))
        del body["value"]  # the update response is the bundle without its value
        return json_body(body)

    async def delete_secret(self, request: web.Request) -> web.StreamResponse:
        """DeleteSecret: soft delete; the body is a DeletedSecretBundle without the value."""
        self._gate.authorize(request, "secrets", "delete")
        name = request.match_info["name"]
        try:
            deleted = self._store.delete(name)
        except SecretNotFoundError:
            raise KeyVaultError.secret_not_found(name) from None
        return json_body(deleted_secret_bundle(deleted, vault_url(request)))

    async def list_secrets(self, request: web.Request) -> web.StreamResponse:
        """GetSecrets: SecretItems (version-less ids, no values) of the latest versions."""
        self._gate.authorize(request, "secrets", "list")
        vault = vault_url(request)
        items = [
            (secret.name.lower(), secret_item(secret, vault, versioned=False))
            for secret in self._store.latest_all()
        ]
        return json_body(self._page(request, items, f"{vault}/secrets"))

    async def list_versions(self, request: web.Request) -> web.StreamResponse:
        """GetSecretVersions: SecretItems with versioned ids, in creation order."""
        self._gate.authorize(request, "secrets", "list")
        vault = vault_url(request)
        name = request.match_info["name"]
        items = [
            (f"{index:08d}", secret_item(secret, vault, versioned=True))
            for index, secret in enumerate(self._store.versions(name))
        ]
        return json_body(self._page(request, items, f"{vault}/secrets/{name}/versions"))

    @staticmethod
    def _page(
        request: web.Request, items: list[tuple[str, dict[str, Any]]], base: str
    ) -> dict[str, Any]:
        return page_body(
            items,
            after=parse_skiptoken(request.query.get("$skiptoken")),
            max_results=parse_max_results(request.query.get("maxresults")),
            next_link_base=base,
            query=request.query,
        )

    # -- soft delete ------------------------------------------------------------------

    async def list_deleted(self, request: web.Request) -> web.StreamResponse:
        """GetDeletedSecrets: the soft-deleted secrets, as DeletedSecretItems."""
        self._gate.authorize(request, "secrets", "list")
        vault = vault_url(request)
        items = []
        for deleted in self._store.deleted_all():
            item = deleted_secret_bundle(deleted, vault)
            item["id"] = f"{vault}/secrets/{deleted.latest.name}"
            items.append((deleted.latest.name.lower(), item))
        return json_body(self._page(request, items, f"{vault}/deletedsecrets"))

    async def get_deleted(self, request: web.Request) -> web.StreamResponse:
        """GetDeletedSecret: one soft-deleted secret (404 while it is not deleted)."""
        self._gate.authorize(request, "secrets", "list")
        name = request.match_info["name"]
        try:
            deleted = self._store.get_deleted(name)
        except SecretNotFoundError:
            raise KeyVaultError.deleted_secret_not_found(name) from None
        return json_body(deleted_secret_bundle(deleted, vault_url(request)))

    async def purge_deleted(self, request: web.Request) -> web.StreamResponse:
        """PurgeDeletedSecret: gone for good (204)."""
        self._gate.authorize(request, "secrets", "purge")
        name = request.match_info["name"]
        try:
            self._store.purge(name)
        except SecretNotFoundError:
            raise KeyVaultError.deleted_secret_not_found(name) from None
        return web.Response(status=204)

    async def recover_deleted(self, request: web.Request) -> web.StreamResponse:
        """RecoverDeletedSecret: the secret is live again; the latest version's bundle, no value."""
        self._gate.authorize(request, "secrets", "recover")
        name = request.match_info["name"]
        try:
            secret = self._store.recover(name)
        except SecretNotFoundError:
            raise KeyVaultError.deleted_secret_not_found(name) from None
        body = secret_bundle(secret, vault_url(request))
        del body["value"]
        return json_body(body)
