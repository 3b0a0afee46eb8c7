"""Fixtures for provider tests: the session's emulator (the shipped pytest plugin's), a fresh app
per test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from aioentra import AccessToken, ClientSecret, RetryPolicy, TokenProvider
from aioentra.emulator import MANAGED_IDENTITY_VARIABLES, Api, App, Emulator, ManagedIdentity

API_URI = "api://aioentra-tests"
SCOPE = f"{API_URI}/.default"


@pytest.fixture
def emulator(aioentra_isolated: Emulator) -> Emulator:
    return aioentra_isolated


@pytest.fixture
def api(emulator: Emulator) -> Api:
    found = emulator.state.find_api(emulator.tenant_id, API_URI)
    return found if found is not None else emulator.add_api(API_URI, roles=["Things.Read"])


@pytest.fixture
def app(emulator: Emulator, api: Api, aioentra_app: App) -> App:
    emulator.grant(aioentra_app, api, ["Things.Read"])
    return aioentra_app


@pytest.fixture
def make_provider(emulator: Emulator, app: App) -> Callable[..., TokenProvider]:
    """Build providers pointed at the emulator; fast retries keep fault tests short."""

    def build(credential: Any = None, **kwargs: Any) -> TokenProvider:
        kwargs.setdefault("retry", RetryPolicy(base_delay=0.01, max_delay=0.05))
        return TokenProvider(
            credential or ClientSecret(app.secret or ""),
            tenant_id=kwargs.pop("tenant_id", emulator.tenant_id),
            client_id=kwargs.pop("client_id", app.client_id),
            authority=emulator.base_url,
            ca_file=emulator.ca_file,
            **kwargs,
        )

    return build


def token_requests(emulator: Emulator, app: App) -> int:
    """Token requests the emulator received from ``app``."""
    return emulator.requests.count(endpoint="token", client_id=app.client_id)


# -- Key Vault: the vault reached with the machine's (emulated) managed identity --------------


def use_managed_identity(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> None:
    """Point this process's managed identity at the emulator: ``environ`` is the emulator's
    App Service (``environ``) or IMDS (``imds_environ``) form, and no other source is set."""
    for name in MANAGED_IDENTITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def vault_identity(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> ManagedIdentity:
    """This machine's managed identity, allowed to read secrets and certificates and to sign."""
    use_managed_identity(monkeypatch, emulator.managed_identity.environ)
    identity = emulator.managed_identity.system_assigned  # what the vault credentials use
    emulator.vault.grant(identity, ["get"], keys=["get", "sign"], certificates=["get"])
    return identity


@pytest.fixture
def cert_app(emulator: Emulator, api: Api, aioentra_cert_app: App) -> App:
    emulator.grant(aioentra_cert_app, api, ["Things.Read"])
    return aioentra_cert_app


def vault_reads(emulator: Emulator, path: str) -> int:
    """Answered reads of ``path`` (a secret, certificate or key path) in the vault."""
    return sum(
        1
        for record in emulator.requests.filter("keyvault", status=200)
        if record.method == "GET" and record.path.split("?")[0].startswith(path)
    )


def unique(name: str) -> str:
    """A name no other test of the session uses (the vault is shared)."""
    unique.count = getattr(unique, "count", 0) + 1  # type: ignore[attr-defined]
    return f"{name}-{unique.count}"  # type: ignore[attr-defined]


def rejected(emulator: Emulator, app: App) -> int:
    return sum(
        1
        for record in emulator.requests.filter("token", client_id=app.client_id)
        if record.status == 401
    )


class AuditedProvider(TokenProvider):
    """A provider subclass with a get_token of its own that counts its callers, as an app's
    own wrapper would: telemetry and peeks must leave such a wrapper in the path."""

    __slots__ = ()
    calls: ClassVar[int] = 0

    async def get_token(
        self,
        scope: str,
        *,
        claims: str | None = None,
        tenant_id: str | None = None,
        force_refresh: bool = False,
    ) -> AccessToken:
        AuditedProvider.calls += 1
        return await super().get_token(
            scope, claims=claims, tenant_id=tenant_id, force_refresh=force_refresh
        )
