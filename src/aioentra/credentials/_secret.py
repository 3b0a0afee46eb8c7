"""A client secret (``client_secret`` in the token request body)."""

from __future__ import annotations

from .._errors import ConfigurationError

__all__ = ["ClientSecret"]


class ClientSecret:
    """A client secret registered on the app ("Certificates & secrets" → Value).

    >>> ClientSecret("s3cr3t")
    ClientSecret(***)
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError(
                "the client secret is empty",
                hint="set AZURE_CLIENT_SECRET or pass the secret's Value from the app "
                "registration.",
            )
        self._value = value

    def get_secret(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "ClientSecret(***)"

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("ClientSecret cannot be pickled: it would copy the secret")
