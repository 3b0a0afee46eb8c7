"""The options ``token``, ``call`` and ``doctor`` share: where the app's configuration comes
from and how its token provider is built.

The configuration is azure-identity's environment variables (``AZURE_TENANT_ID``,
``AZURE_CLIENT_ID``, one credential variable, ``AZURE_AUTHORITY_HOST``), or with ``--config``
an msal ``parameters.json`` or a .NET ``appsettings.json``: what
:meth:`TokenProvider.from_environment` and :meth:`TokenProvider.from_file` read. The SDK is
imported inside these functions, when a command runs.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aioentra._config import Settings
    from aioentra._provider import TokenProvider

__all__ = ["add_config_options", "build_provider", "load_settings", "required", "source_of"]

DEFAULT_TIMEOUT = 30.0
ATTEMPT_TIMEOUT = 10.0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError("the timeout must be a number of seconds > 0")
    return value


def add_config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration")
    group.add_argument(
        "--config",
        metavar="FILE",
        help="msal parameters.json or .NET appsettings.json (default: the AZURE_* environment "
        "variables azure-identity reads)",
    )
    group.add_argument(
        "--ca-file",
        metavar="PEM",
        help="trust the CA certificates in this PEM file instead of the system's (e.g. the "
        "emulator's ca_file), for the identity provider, a Key Vault the configuration reads "
        "and (call) the API; TLS is always verified",
    )
    group.add_argument(
        "--tenant",
        metavar="TENANT",
        help="ask this tenant for the token (a multi-tenant app's customer tenant); allowed "
        "for this command only",
    )
    group.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"give up after this long (default: {DEFAULT_TIMEOUT:g})",
    )


def source_of(args: argparse.Namespace) -> str:
    return str(args.config) if args.config else "the environment (AZURE_*)"


def load_settings(args: argparse.Namespace) -> Settings:
    """The app's settings from ``--config FILE`` or the environment (ConfigurationError).

    ``--ca-file`` is also the trust of the Key Vault credentials the file describes
    (``ClientCredentials`` of SourceType ``KeyVault``), as for ``TokenProvider.from_file``.
    """
    from aioentra._config import Settings

    if args.config:
        return Settings.from_file(args.config, ca_file=args.ca_file)
    return Settings.from_environment()


def build_provider(settings: Settings, args: argparse.Namespace) -> TokenProvider:
    """A provider for ``settings`` with the command line's TLS, tenant and time limits."""
    from aioentra._policy import RetryPolicy

    tenants = list(settings.additionally_allowed_tenants)
    if args.tenant:
        tenants.append(args.tenant)
    return settings.provider(
        ca_file=args.ca_file,
        additionally_allowed_tenants=tenants,
        retry=RetryPolicy(
            total_timeout=args.timeout, attempt_timeout=min(ATTEMPT_TIMEOUT, args.timeout)
        ),
    )


def required(value: str | None, what: str, hint: str) -> str:
    """``value``, or a ConfigurationError naming ``what`` is missing."""
    if value:
        return value
    from aioentra._errors import ConfigurationError

    raise ConfigurationError(f"no {what} given", hint=hint)
