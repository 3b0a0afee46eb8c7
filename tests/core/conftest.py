"""Fixtures for provider tests: the session's emulator (the shipped pytest plugin's), a fresh app
per test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from aioentra import ClientSecret, RetryPolicy, TokenProvider
from aioentra.emulator import Api, App, Emulator

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
