"""An app's credentials: register, rotate and revoke client secrets and certificates.

Part of :class:`~aioentra.emulator.Emulator` (a mixin, to keep the facade's module small).
Rotation is what an operator does in the portal: a new credential is added and the older
ones are deleted, after which the token endpoint answers exactly as Entra does for a
credential it no longer knows — AADSTS7000215 ``invalid_client`` for an old secret value,
AADSTS700027 ("The key was not found.") for an assertion signed by an old certificate.
"""

from __future__ import annotations

import secrets
from abc import abstractmethod
from datetime import datetime

from ._certs import CertificateMaterial
from ._model import TOKEN_EXCHANGE_AUDIENCE, App, FederatedCredential
from ._state import EmulatorState, secret_expiry

__all__ = ["AppCredentials"]


class AppCredentials:
    """Credential registration; the host class provides ``state`` and ``_app``."""

    state: EmulatorState
    """The directory state, provided by the host class (``Emulator.state``)."""

    @abstractmethod
    def _app(self, app: App | str) -> App: ...

    def add_secret(
        self,
        app: App | str,
        value: str | None = None,
        *,
        expires_at: datetime | float | None = None,
    ) -> str:
        """Register another client secret of ``app`` and return its value.

        The app's older secrets stay valid (a rotation in progress); the token endpoint
        refuses this one with AADSTS7000222 once it has expired.

        Args:
            app: The app, or its client id.
            value: The secret's value; ``None`` generates a random one.
            expires_at: When the secret expires: an aware ``datetime`` or Unix seconds
                (``time.time() - 60`` registers one that has expired); ``None``: never.

        Raises:
            ValueError: A naive ``expires_at`` (no time zone) or an unusable timestamp.
            TypeError: ``expires_at`` of another type.
            KeyError: No app with that client id.
        """
        expiry = secret_expiry(expires_at, "expires_at")
        secret = value if value is not None else secrets.token_urlsafe(30)
        self.state.add_secret(self._app(app), secret, expiry)
        return secret

    def add_certificate(
        self, app: App | str, certificate: CertificateMaterial | bytes | None = None
    ) -> CertificateMaterial:
        """Register a certificate credential: generated (RSA-2048) when ``None``, or a PEM
        certificate.
        """
        target = self._app(app)
        if certificate is None:
            material = CertificateMaterial.generate(target.name)
        elif isinstance(certificate, bytes):
            material = CertificateMaterial.from_pem_bundle(certificate)
        else:
            material = certificate
        self.state.add_certificate(target, material)
        return material

    def add_federated_credential(
        self, app: App | str, *, issuer: str, subject: str, audience: str = TOKEN_EXCHANGE_AUDIENCE
    ) -> FederatedCredential:
        """Trust assertions with this ``iss``/``sub``/``aud`` signed by the emulator's own key."""
        credential = FederatedCredential(issuer, subject, audience)
        self.state.add_federated_credential(self._app(app), credential)
        return credential

    def rotate_secret(self, app: App | str) -> str:
        """Register a new generated client secret and revoke every older one; return it."""
        value = secrets.token_urlsafe(30)
        self.state.replace_secrets(self._app(app), value)
        return value

    def revoke_secret(self, app: App | str, value: str) -> None:
        """Delete the client secret ``value`` (``KeyError`` when the app has no such secret)."""
        self.state.remove_secret(self._app(app), value)

    def rotate_certificate(self, app: App | str) -> CertificateMaterial:
        """Register a newly generated certificate (RSA-2048) and revoke every older one."""
        target = self._app(app)
        material = CertificateMaterial.generate(target.name)
        self.state.replace_certificates(target, material)
        return material

    def revoke_certificate(self, app: App | str, material: CertificateMaterial) -> None:
        """Delete a certificate credential, matched by thumbprint (``KeyError`` if absent)."""
        self.state.remove_certificate(self._app(app), material)
