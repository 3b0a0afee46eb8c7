"""Register what an :class:`~._config.EmulatorConfig` describes on an emulator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._config import EmulatorConfig
from ._model import App

if TYPE_CHECKING:
    from ._emulator import Emulator

__all__ = ["register_config"]


def register_config(emulator: Emulator, cfg: EmulatorConfig) -> None:
    """Tenants, then APIs, then apps with their credentials, then grants (by app and API name)."""
    for tenant in cfg.tenants:
        emulator.add_tenant(tenant.tenant_id, tenant.domain)
    for api in cfg.apis:
        emulator.add_api(
            api.identifier_uri,
            api.roles,
            tenant=api.tenant,
            name=api.name,
            app_id=api.app_id,
            assignment_required=api.assignment_required,
            access_token_version=api.access_token_version,
        )
    by_name: dict[str, App] = {}
    for spec in cfg.apps:
        app = emulator.add_app(
            spec.name,
            secret=False,
            tenant=spec.tenant,
            client_id=spec.client_id,
            object_id=spec.object_id,
        )
        by_name[spec.name] = app
        for secret in spec.secrets:
            emulator.add_secret(app, secret.value, expires_at=secret.expires_at)
        for path in spec.certificates:
            emulator.add_certificate(app, path.read_bytes())
        for fic in spec.federated_credentials:
            emulator.add_federated_credential(
                app, issuer=fic.issuer, subject=fic.subject, audience=fic.audience
            )
    for grant in cfg.grants:
        grantee = by_name.get(grant.app) or emulator.find_identity(client_id=grant.app)
        if grantee is None:
            raise KeyError(f"no app with client id {grant.app}")
        named = next(
            (
                a
                for a in emulator.state.apis.values()
                if a.tenant_id == grantee.tenant_id and a.name == grant.api
            ),
            None,
        )
        emulator.grant(grantee, named or grant.api, grant.roles)
