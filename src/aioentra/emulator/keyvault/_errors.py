"""Key Vault error responses: a status and ``{"error": {"code", "message", "innererror"?}}``.

The body shape is the service's ``KeyVaultError`` (protocol-facts §4.3). The factories below
carry the service's wording where it is known from recorded responses; the client maps
401 → ``ClientAuthenticationError``, 404 → ``ResourceNotFoundError``, 409 →
``ResourceExistsError`` and anything else to ``HttpResponseError``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["KeyVaultError"]

_RECOVER_HINT = (
    "If you recently deleted this {kind} you may be able to recover it using the correct "
    "recovery command. For help resolving this issue, please see "
    "https://go.microsoft.com/fwlink/?linkid=2125182"
)


class KeyVaultError(Exception):
    """An error response of the vault: HTTP status plus the ``KeyVaultError`` body."""

    def __init__(self, status: int, code: str, message: str, inner_code: str | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code

    def body(self) -> dict[str, Any]:
        """``{"error": {"code", "message"[, "innererror": {"code"}]}}``."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner_code:
            error["innererror"] = {"code": self.inner_code}
        return {"error": error}

    @classmethod
    def bad_parameter(cls, message: str) -> KeyVaultError:
        """400 ``BadParameter``: a malformed request the service refuses to run."""
        return cls(400, "BadParameter", message)

    @classmethod
    def _not_found(cls, code: str, kind: str, name: str) -> KeyVaultError:
        return cls(
            404,
            code,
            f"A {kind} with (name/id) {name} was not found in this key vault. "
            + _RECOVER_HINT.format(kind=kind),
        )

    @classmethod
    def secret_not_found(cls, name: str) -> KeyVaultError:
        """404 ``SecretNotFound`` with the service's wording."""
        return cls._not_found("SecretNotFound", "secret", name)

    @classmethod
    def certificate_not_found(cls, name: str) -> KeyVaultError:
        """404 ``CertificateNotFound``, worded like ``SecretNotFound``."""
        return cls._not_found("CertificateNotFound", "certificate", name)

    @classmethod
    def key_not_found(cls, name: str) -> KeyVaultError:
        """404 ``KeyNotFound``, worded like ``SecretNotFound``."""
        return cls._not_found("KeyNotFound", "key", name)

    @classmethod
    def deleted_secret_not_found(cls, name: str) -> KeyVaultError:
        """404 ``SecretNotFound`` for the ``/deletedsecrets`` collection."""
        return cls(404, "SecretNotFound", f"Deleted Secret not found: {name}")

    @classmethod
    def secret_disabled(cls, operation: str) -> KeyVaultError:
        """403 ``Forbidden``/``SecretDisabled``: a disabled version has no readable value."""
        return cls(
            403,
            "Forbidden",
            f"Operation {operation} is not allowed on a disabled secret.",
            "SecretDisabled",
        )

    @classmethod
    def key_disabled(cls, operation: str) -> KeyVaultError:
        """403 ``Forbidden``/``KeyDisabled``: a disabled key signs nothing (wording: ours)."""
        return cls(
            403,
            "Forbidden",
            f"Operation {operation} is not allowed on a disabled key.",
            "KeyDisabled",
        )

    @classmethod
    def name_in_deleted_state(cls, name: str) -> KeyVaultError:
        """409 ``Conflict``/``ObjectIsDeletedButRecoverable``: a soft-deleted secret's name."""
        return cls(
            409,
            "Conflict",
            f"Secret {name} is currently in a deleted but recoverable state, and its name "
            "cannot be reused; in this state, the secret can only be recovered or purged.",
            "ObjectIsDeletedButRecoverable",
        )

    @classmethod
    def not_served(cls, method: str, path: str, status: int = 404) -> KeyVaultError:
        """404/405 for a path or method the emulated vault does not serve (wording: ours)."""
        if status == 405:
            return cls(
                405, "MethodNotAllowed", f"The HTTP method {method} is not supported on {path}."
            )
        return cls(404, "NotFound", f"The requested resource {path} is not served by this vault.")
