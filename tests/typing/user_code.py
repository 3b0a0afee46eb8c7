"""User code the public API must type-check (``mypy --strict``); run by tests/test_package.py.

Nothing here runs: it is checked, not executed.
"""

from __future__ import annotations

import aiohttp
from azure.core.credentials_async import AsyncSupportsTokenInfo, AsyncTokenCredential
from azure.keyvault.secrets.aio import SecretClient

from aioentra import (
    AccessToken,
    AssertionContext,
    ClientAssertion,
    ClientSecret,
    Credential,
    Proof,
    RefreshPolicy,
    RetryPolicy,
    Settings,
    TokenProvider,
)
from aioentra.aiohttp import BearerTokenMiddleware, TokenSource, authenticated_session
from aioentra.testing import ManualClock


async def azure_sdk(provider: TokenProvider, vault_url: str) -> str | None:
    credential: AsyncTokenCredential = provider.as_azure_credential()
    supports_info: AsyncSupportsTokenInfo = provider.as_azure_credential()
    async with credential, supports_info:
        client = SecretClient(vault_url, credential)
        async with client:
            secret = await client.get_secret("db-password")
            return secret.value


def from_configuration() -> list[TokenProvider]:
    return [
        TokenProvider.from_file(
            "appsettings.json",
            ca_file="ca.pem",
            retry=RetryPolicy(total_timeout=10),
            refresh=RefreshPolicy(renewal_interval=60),
            max_workers=2,
            clock=ManualClock(),
        ),
        TokenProvider.from_environment({"AZURE_TENANT_ID": "t"}, trust_env=False),
    ]


async def downstream_apis(path: str) -> int:
    settings = Settings.from_file(path, ca_file="ca.pem")
    todo = settings.api("TodoList")
    scopes: dict[str, str] = dict(settings.downstream_apis)
    async with (
        settings.provider(max_workers=2) as provider,
        authenticated_session(provider, settings.downstream_apis) as session,
        session.get(todo.url) as response,
    ):
        return response.status + len(scopes)


async def middleware(provider: TokenProvider) -> int:
    source: TokenSource = provider
    BearerTokenMiddleware(source, {"https://api.contoso.com": "api://contoso/.default"})
    async with (
        authenticated_session(provider, {"https://api.contoso.com": "api://x/.default"}) as s,
        s.get("https://api.contoso.com/items") as response,
    ):
        return response.status


class VaultSecret:
    """A user's own credential."""

    def get_proof(self, context: AssertionContext) -> Proof:
        return Proof.secret("from-somewhere")


async def credentials() -> AccessToken:
    mine: Credential = VaultSecret()
    also: Credential = ClientAssertion(lambda context: "h.p.s")
    _ = also
    async with TokenProvider(mine, tenant_id="t", client_id="c") as provider:
        token = await provider.get_token("api://x/.default")
        return await provider.renew_token("api://x/.default", rejected=token)


def secret() -> Credential:
    return ClientSecret("value")


async def session_is_untouched(session: aiohttp.ClientSession) -> None:
    async with TokenProvider(ClientSecret("v"), tenant_id="t", client_id="c", session=session):
        pass
