"""The error hierarchy and the mapping of Entra (AADSTS) error responses onto it.

Every error carries what the identity provider said (``error``, ``error_codes``,
``correlation_id``, ``trace_id``, HTTP ``status``) and a ``hint`` that says what
to fix. Messages never contain a secret, an assertion or a token: they are
built only from the server's error description and from our own text.
"""

from __future__ import annotations

import copy
import functools
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "AioEntraError",
    "ApplicationNotFoundError",
    "AuthenticationError",
    "ConfigurationError",
    "ConsentRequiredError",
    "CredentialRejectedError",
    "CredentialUnavailableError",
    "IdentityProviderUnavailableError",
    "InsufficientPermissionsError",
    "InvalidScopeError",
    "InvalidTokenError",
    "KeyVaultError",
    "ProviderClosedError",
    "SecretsNotLoadedError",
    "TenantNotFoundError",
    "ThrottledError",
    "TokenValidationError",
    "error_from_response",
    "raises_cleanly",
]

P = ParamSpec("P")
R = TypeVar("R")


class AioEntraError(Exception):
    """Base class of every error raised by aioentra.

    Attributes are ``None`` or empty when the error did not come from a server
    response (for example a configuration error found before any request).
    ``retryable`` says whether sending the same request again may succeed.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        error: str | None = None,
        error_codes: Sequence[int] = (),
        correlation_id: str | None = None,
        trace_id: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.hint = hint
        self.error = error
        self.error_codes: tuple[int, ...] = tuple(error_codes)
        self.correlation_id = correlation_id
        self.trace_id = trace_id
        self.status = status
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.message]
        if self.hint:
            parts.append(f"Hint: {self.hint}")
        ids = []
        if self.correlation_id:
            ids.append(f"correlation_id={self.correlation_id}")
        if self.trace_id:
            ids.append(f"trace_id={self.trace_id}")
        if ids:
            parts.append(f"({', '.join(ids)})")
        return " ".join(parts)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor: pickle through the attributes, not the args.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[AioEntraError], state: dict[str, Any]) -> AioEntraError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, error._render())
    return error


class ConfigurationError(AioEntraError, ValueError):
    """The configuration is wrong: found before any network call, or reported by the server."""


class InvalidScopeError(ConfigurationError):
    """The scope is not a single ``{resource}/.default`` scope the tenant knows."""


class AuthenticationError(AioEntraError):
    """The identity provider answered with an OAuth 2.0 error response."""


class CredentialRejectedError(AuthenticationError):
    """The client secret, certificate or assertion was refused (``invalid_client``)."""


class ApplicationNotFoundError(AuthenticationError, ConfigurationError):
    """The client id is not registered in the tenant (AADSTS700016)."""


class TenantNotFoundError(AuthenticationError, ConfigurationError):
    """The tenant does not exist in this cloud (AADSTS90002 and relatives)."""


class ConsentRequiredError(AuthenticationError):
    """The app lacks a role assignment or admin consent on the API."""


class ThrottledError(AioEntraError):
    """The identity provider asked us to slow down (HTTP 429); see ``retry_after``."""

    retryable = True


class IdentityProviderUnavailableError(AioEntraError):
    """The identity provider could not be reached or failed (5xx, reset, timeout, bad body)."""

    retryable = True


class CredentialUnavailableError(AioEntraError):
    """The credential could not produce its secret or assertion (its own source failed)."""

    retryable = True


class KeyVaultError(AioEntraError):
    """Key Vault refused or failed a request; ``code`` is the vault's error code
    (``SecretNotFound``, ``Forbidden``, ``SecretDisabled``, ...)."""

    def __init__(self, message: str, *, code: str | None = None, **kwargs: Any) -> None:
        self.code = code
        super().__init__(message, **kwargs)


class SecretsNotLoadedError(KeyVaultError):
    """Some secrets of a :func:`~aioentra.keyvault.load_secrets` call could not be read;
    ``failures`` maps each of their names to its own error."""

    def __init__(self, message: str, *, failures: Mapping[str, AioEntraError], **kwargs: Any):
        self.failures = dict(failures)
        super().__init__(message, **kwargs)


class TokenValidationError(AioEntraError):
    """An API refused an incoming access token; ``status`` is the HTTP status to answer and
    ``error`` the RFC 6750 error code for its ``WWW-Authenticate`` header."""


class InvalidTokenError(TokenValidationError):
    """The token is missing, malformed, expired, badly signed or not meant for this API
    (HTTP 401, ``invalid_token``): the caller should get a new token."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("status", 401)
        kwargs.setdefault("error", "invalid_token")
        super().__init__(message, **kwargs)


class InsufficientPermissionsError(TokenValidationError):
    """The token is valid but lacks a role (or is a user token where an app's is required):
    HTTP 403, ``insufficient_scope``. A new token does not help: an administrator must grant
    the app role (admin consent)."""

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("status", 403)
        kwargs.setdefault("error", "insufficient_scope")
        super().__init__(message, **kwargs)


class ProviderClosedError(AioEntraError, RuntimeError):
    """The :class:`~aioentra.TokenProvider` was closed (or belongs to another event loop)."""


# AADSTS code -> (error class, hint). The hints are the first thing to check.
_BY_CODE: dict[int, tuple[type[AioEntraError], str]] = {
    7000215: (
        CredentialRejectedError,
        "the client secret is wrong: use the secret's Value, not its Secret ID.",
    ),
    7000222: (
        CredentialRejectedError,
        "the client secret has expired: create a new one or switch to a certificate.",
    ),
    7000218: (
        CredentialRejectedError,
        "no credential was sent: configure a client secret, certificate or assertion.",
    ),
    700027: (
        CredentialRejectedError,
        "the certificate is not registered on the app (or the key does not match): "
        "upload its public part to the app registration.",
    ),
    700024: (
        CredentialRejectedError,
        "the client assertion is expired or not yet valid: check the clock of this "
        "machine and the assertion's exp/nbf.",
    ),
    700023: (
        CredentialRejectedError,
        "the client assertion's audience is not this token endpoint: sign it for "
        "the authority you use.",
    ),
    50027: (
        CredentialRejectedError,
        "the client assertion has no certificate thumbprint (x5t or x5t#S256) header.",
    ),
    50012: (CredentialRejectedError, "the client assertion was not accepted."),
    70021: (
        CredentialRejectedError,
        "no federated credential on the app matches the assertion's issuer and subject: "
        "add one (issuer, subject, audience api://AzureADTokenExchange) to the app.",
    ),
    700016: (
        ApplicationNotFoundError,
        "the client id is unknown in this tenant: check the client id and the tenant, "
        "and that the app is registered (or consented) there.",
    ),
    90002: (
        TenantNotFoundError,
        "the tenant is unknown: check the tenant id or domain and the cloud (authority host).",
    ),
    900023: (TenantNotFoundError, "the tenant id is malformed: use its GUID or domain name."),
    50059: (
        TenantNotFoundError,
        "no tenant was given: use a tenant id, not 'common' or 'consumers'.",
    ),
    70011: (
        InvalidScopeError,
        "use one scope of the form '{resource}/.default' (for example "
        "'https://graph.microsoft.com/.default').",
    ),
    1002012: (
        InvalidScopeError,
        "client credentials need '{resource}/.default': app permissions are granted "
        "as roles, not requested one by one.",
    ),
    700022: (InvalidScopeError, "request one resource per token: one '{resource}/.default'."),
    500011: (
        InvalidScopeError,
        "the resource is not known in this tenant: check the identifier URI, and for "
        "identifiers ending in '/' use a double slash ('https://x.net//.default').",
    ),
    901002: (InvalidScopeError, "v2.0 takes 'scope', not 'resource'."),
    501051: (
        ConsentRequiredError,
        "the app has no role on the API, which requires assignment: grant an app role "
        "and admin consent.",
    ),
    650056: (
        ConsentRequiredError,
        "did you forget admin consent? Grant the API permissions in the app registration.",
    ),
    650057: (
        ConsentRequiredError,
        "the app registration does not list this API: add it under API permissions.",
    ),
    65001: (ConsentRequiredError, "did you forget admin consent?"),
}

_BY_ERROR: dict[str, type[AioEntraError]] = {
    "invalid_client": CredentialRejectedError,
    "unauthorized_client": AuthenticationError,
    "invalid_scope": InvalidScopeError,
    "invalid_resource": InvalidScopeError,
    "invalid_tenant": TenantNotFoundError,
}

_FIRST_LINE = re.compile(r"^(?P<line>[^\r\n]*)")
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
"""RFC 6749 section 5.2: ``error`` is a short ASCII code; anything else is not shown."""


def _description_line(description: str) -> str:
    """The first line of ``error_description``, without the trailing trace/correlation block."""
    match = _FIRST_LINE.match(description)
    return match.group("line").strip() if match else description.strip()


def _int_codes(value: object) -> list[int]:
    if not isinstance(value, list):
        return []
    return [code for code in value[:16] if isinstance(code, int) and not isinstance(code, bool)]


def error_from_response(
    body: Mapping[str, Any],
    *,
    status: int | None = None,
    context: str = "token request failed",
) -> AioEntraError:
    """Build the typed error for an OAuth 2.0 error response body from Entra."""
    raw_error = body.get("error")
    error = raw_error if isinstance(raw_error, str) and _ERROR_CODE.match(raw_error) else None
    error = error or "unknown_error"
    codes = _int_codes(body.get("error_codes"))
    raw_description = body.get("error_description")
    description = _description_line(raw_description if isinstance(raw_description, str) else "")
    description = description[:500]
    cls: type[AioEntraError] = _BY_ERROR.get(error, AuthenticationError)
    hint: str | None = None
    for code in codes:
        if code in _BY_CODE:
            cls, hint = _BY_CODE[code]
            break
    message = f"{context}: {error}"
    if description:
        message += f": {description}"
    return cls(
        message,
        hint=hint,
        error=error,
        error_codes=codes,
        correlation_id=_str_or_none(body.get("correlation_id")),
        trace_id=_str_or_none(body.get("trace_id")),
        status=status,
    )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value and len(value) <= 128 else None


def fresh(error: AioEntraError) -> AioEntraError:
    """A copy of ``error`` with no traceback, cause or context."""
    clone = copy.copy(error)
    clone.__traceback__ = None
    return clone


def redact(error: AioEntraError, secret: str) -> AioEntraError:
    """``error`` with ``secret`` masked wherever a server echoed it (message, ids, error code)."""
    fields = ("message", "hint", "error", "correlation_id", "trace_id")
    if len(secret) < 4 or not any(secret in (getattr(error, f, None) or "") for f in fields):
        return error
    clone = fresh(error)
    for name in fields:
        value = getattr(clone, name, None)
        if isinstance(value, str):
            setattr(clone, name, value.replace(secret, "***"))
    clone.args = (clone._render(),)
    return clone


def raises_cleanly(func: Callable[P, R]) -> Callable[P, R]:
    """Raise ``func``'s :class:`AioEntraError` as a fresh copy, from a frame without its arguments.

    For functions handed secret material (key files, passwords, configuration documents): the
    traceback of what they raise would hold the frames that read that material, and error
    reporters that capture frame locals would record it. The copy's traceback starts here,
    after the arguments are dropped, and its cause and context are suppressed.
    """

    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:  # a call that does not fit the signature: Python's own error,
            message = str(exc)  # which names parameters only
            del args, kwargs
            raise TypeError(f"{func.__qualname__}(): {message}") from None
        try:
            return func(*args, **kwargs)
        except AioEntraError as caught:
            error = fresh(caught)
        except Exception as caught:  # an input nothing above foresaw: still a typed error
            error = ConfigurationError(
                f"{func.__qualname__}() could not use its arguments: {type(caught).__name__}",
                hint="check the types and values passed (see its docstring).",
            )
        del args, kwargs
        raise error from None

    return wrapper
