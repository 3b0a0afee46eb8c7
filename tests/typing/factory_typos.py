"""Misspelt and mistyped factory options: each marked line must be a mypy error.

Checked by tests/typing/test_typed_factories.py, never run. A line whose comment is
``E: text`` must have an error whose message contains ``text``; no other line may have one.
"""

from __future__ import annotations

from aioentra import ManagedIdentityProvider, Settings, TokenProvider
from aioentra.aiohttp.web import token_validation
from aioentra.otel import OpenTelemetry


def typos(settings: Settings) -> None:
    TokenProvider.from_file("appsettings.json", max_wokers=2)  # E: "max_wokers"
    TokenProvider.from_file("appsettings.json", cafile="ca.pem")  # E: "cafile"
    TokenProvider.from_environment(trust_envv=False)  # E: "trust_envv"
    TokenProvider.from_environment({}, max_workers="4")  # E: "max_workers"
    Settings.from_file("appsettings.json", ca_flie="ca.pem")  # E: "ca_flie"
    Settings.from_environment({}, ca_file="ca.pem")  # E: "ca_file"
    settings.provider(retyr=None)  # E: "retyr"
    settings.provider(allow_insecure_http="yes")  # E: "allow_insecure_http"
    TokenProvider(settings.credential, client_id="c", tenant="t")  # E: "tenant"
    ManagedIdentityProvider(clientid="c")  # E: "clientid"
    token_validation(audience="api://a", authority="https://x", leway=5)  # E: "leway"
    token_validation(audience="api://a", authority="https://x", app_only="no")  # E: "app_only"
    TokenProvider.from_environment(telemetry=object())  # E: "telemetry"


def fine(settings: Settings) -> None:
    TokenProvider.from_file("appsettings.json", ca_file="ca.pem", max_workers=2)
    TokenProvider.from_environment(trust_env=False)
    Settings.from_file("appsettings.json", ca_file="ca.pem").provider(ca_file=None)
    settings.provider(allow_insecure_http=True)
    token_validation(audience="api://a", authority="https://x", leeway=5, ca_file="ca.pem")
    TokenProvider.from_environment(telemetry=OpenTelemetry())
