"""The Key Vault secrets data plane over HTTP: routes, request checks and responses.

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

Before any of that: ``api-version`` must be present (any version the SDKs send is
accepted), then the caller is authenticated and authorised (:mod:`._kv_auth`). Every
error is a ``KeyVaultError`` JSON body; every 401 carries the bearer challenge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ._kv_auth import AccessPolicies, Caller, TokenVerifier, authenticate, challenge_header
from ._kv_store import SecretConflictError, SecretNameError, SecretNotFoundError, SecretStore
from ._kv_wire import (
    KeyVaultError,
    deleted_secret_bundle,
    page_body,
    parse_attributes_update,
    parse_max_results,
    parse_skiptoken,
    secret_bundle,
    secret_item,
)

__all__ = ["ENDPOINT", "VaultEndpoint"]

ENDPOINT = "keyvault"
"""The emulator endpoint name of every vault route (fault injection, request log)."""

_API_VERSION = re.compile(r"\d+\.\d+(-preview(\.\d+)?)?|\d{4}-\d{2}-\d{2}(-preview)?")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _vault_url(request: web.Request) -> str:
    """``scheme://host[:port]`` as the client addressed us: ids and links are built on it."""
    return f"{request.scheme}://{request.host}"


def _vault_name(request: web.Request) -> str:
    """The vault name the service puts in a 403: the first label of the host."""
    return request.host.split(":", 1)[0].split(".", 1)[0]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(
        body,
        status=status,
        headers={"Cache-Control": "no-cache", "Pragma": "no-cache", "Expires": "-1"},
        dumps=lambda value: json.dumps(value, separators=(",", ":")),
    )


class VaultEndpoint:
    """The HTTP face of one vault: its routes, bound to a store and its access policies."""

    def __init__(
        self,
        store: SecretStore,
        policies: AccessPolicies,
        *,
        tenant_id: Callable[[], str],
        authority: Callable[[], str],
        verify: TokenVerifier,
        signature_valid: Callable[[str], bool],
        clock_skew: Callable[[], float] = lambda: 300,
        location: str = "local",
    ) -> None:
        self._store = store
        self._policies = policies
        self._tenant_id = tenant_id
        self._authority = authority
        self._verify = verify
        self._signature_valid = signature_valid
        self._clock_skew = clock_skew
        self._location = location

    def routes(self) -> list[web.RouteDef]:
        """The data-plane routes, named ``keyvault:<operation>``; order matters for aiohttp."""
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
        return [
            web.route(method, path, self._guard(handler), name=f"{ENDPOINT}:{name}")
            for method, path, handler, name in table
        ]

    # -- the checks every operation starts with -------------------------------------

    def _guard(self, handler: Handler) -> Handler:
        """Turn :class:`KeyVaultError` into the service's error response (401s with challenge)."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except KeyVaultError as error:
                response = _json(error.body(), status=error.status)
                if error.status == 401:
                    response.headers["WWW-Authenticate"] = challenge_header(
                        self._authority(), self._tenant_id()
                    )
                return response

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    def _authorize(self, request: web.Request, permission: str) -> Caller:
        """api-version present, then a valid vault token, then the access-policy permission."""
        if not _API_VERSION.fullmatch(request.query.get("api-version", "")):
            version = request.query.get("api-version")
            raise KeyVaultError.bad_parameter(
                "The api-version query parameter (?api-version=) is required for all requests."
                if not version
                else f"The specified version ({version}) is not recognized."
            )
        caller = authenticate(
            request.headers.get("Authorization"),
            verify=self._verify,
            signature_valid=self._signature_valid,
            tenant_id=self._tenant_id(),
            clock_skew=self._clock_skew(),
        )
        self._policies.check(
            caller, permission, vault_name=_vault_name(request), location=self._location
        )
        return caller

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise KeyVaultError.bad_parameter("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise KeyVaultError.bad_parameter("The request body must be a JSON object.")
        return body

    # -- secrets ----------------------------------------------------------------------

    async def set_secret(self, request: web.Request) -> web.StreamResponse:
        """SetSecret: a new version with ``value`` and optional attributes (200, SecretBundle)."""
        self._authorize(request, "set")
        name = request.match_info["name"]
        body = await self._body(request)
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
        return _json(secret_bundle(secret, _vault_url(request)))

    async def get_secret(self, request: web.Request) -> web.StreamResponse:
        """GetSecret: the given version, or the latest for ``/secrets/{name}[/]``.

        A disabled version is 403 ``SecretDisabled``. Versions outside their ``nbf``/``exp``
        window are returned: "a secret's get operation will work for not-yet-valid and
        expired secrets" (``about-secrets.md``, observed in Azure/AzureKeyVault#19).
        """
        self._authorize(request, "get")
        name = request.match_info["name"]
        try:
            secret = self._store.get(name, request.match_info.get("version"))
        except SecretNotFoundError:
            raise KeyVaultError.secret_not_found(name) from None
        if not secret.enabled:
            raise KeyVaultError.secret_disabled("get")
        bundle = secret_bundle(
            secret, _vault_url(request), out_content_type=request.query.get("outContentType")
        )
        return _json(bundle)

    async def update_secret(self, request: web.Request) -> web.StreamResponse:
        """UpdateSecret: change ``contentType``, ``tags`` and attributes of one version."""
        self._authorize(request, "set")
        name = request.match_info["name"]
        update = parse_attributes_update(await self._body(request))
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
        body = secret_bundle(secret, _vault_url(request))
        del body["value"]  # the update response is the bundle without its value
        return _json(body)

    async def delete_secret(self, request: web.Request) -> web.StreamResponse:
        """DeleteSecret: soft delete; the body is a DeletedSecretBundle without the value."""
        self._authorize(request, "delete")
        name = request.match_info["name"]
        try:
            deleted = self._store.delete(name)
        except SecretNotFoundError:
            raise KeyVaultError.secret_not_found(name) from None
        return _json(deleted_secret_bundle(deleted, _vault_url(request)))

    async def list_secrets(self, request: web.Request) -> web.StreamResponse:
        """GetSecrets: SecretItems (version-less ids, no values) of the latest versions."""
        self._authorize(request, "list")
        vault = _vault_url(request)
        items = [
            (secret.name.lower(), secret_item(secret, vault, versioned=False))
            for secret in self._store.latest_all()
        ]
        return _json(self._page(request, items, f"{vault}/secrets"))

    async def list_versions(self, request: web.Request) -> web.StreamResponse:
        """GetSecretVersions: SecretItems with versioned ids, in creation order."""
        self._authorize(request, "list")
        vault = _vault_url(request)
        name = request.match_info["name"]
        items = [
            (f"{index:08d}", secret_item(secret, vault, versioned=True))
            for index, secret in enumerate(self._store.versions(name))
        ]
        return _json(self._page(request, items, f"{vault}/secrets/{name}/versions"))

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
        self._authorize(request, "list")
        vault = _vault_url(request)
        items = []
        for deleted in self._store.deleted_all():
            item = deleted_secret_bundle(deleted, vault)
            item["id"] = f"{vault}/secrets/{deleted.latest.name}"
            items.append((deleted.latest.name.lower(), item))
        return _json(self._page(request, items, f"{vault}/deletedsecrets"))

    async def get_deleted(self, request: web.Request) -> web.StreamResponse:
        """GetDeletedSecret: one soft-deleted secret (404 while it is not deleted)."""
        self._authorize(request, "list")
        name = request.match_info["name"]
        try:
            deleted = self._store.get_deleted(name)
        except SecretNotFoundError:
            raise KeyVaultError.deleted_secret_not_found(name) from None
        return _json(deleted_secret_bundle(deleted, _vault_url(request)))

    async def purge_deleted(self, request: web.Request) -> web.StreamResponse:
        """PurgeDeletedSecret: gone for good (204)."""
        self._authorize(request, "purge")
        name = request.match_info["name"]
        try:
            self._store.purge(name)
        except SecretNotFoundError:
            raise KeyVaultError.deleted_secret_not_found(name) from None
        return web.Response(status=204)

    async def recover_deleted(self, request: web.Request) -> web.StreamResponse:
        """RecoverDeletedSecret: the secret is live again; the latest version's bundle, no value."""
        self._authorize(request, "recover")
        name = request.match_info["name"]
        try:
            secret = self._store.recover(name)
        except SecretNotFoundError:
            raise KeyVaultError.deleted_secret_not_found(name) from None
        body = secret_bundle(secret, _vault_url(request))
        del body["value"]
        return _json(body)
