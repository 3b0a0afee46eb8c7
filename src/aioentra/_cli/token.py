"""``aioentra token [SCOPE]``: get an app-only token and show what it says, not the token.

It shows the claims an API authorizes by (``aud``, ``iss``, ``tid``, ``appid``/``azp``,
``oid``, ``roles``) and when the token expires. The token itself goes to stdout only with
``--raw``, alone, for ``curl -H "Authorization: Bearer $(aioentra token --raw SCOPE)"``.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from . import CliError, Command, Exit, Output
from ._jwt import claims_or_empty, human_duration, token_summary
from ._options import add_config_options, build_provider, load_settings, required

if TYPE_CHECKING:
    from aioentra._token import AccessToken

__all__ = ["COMMAND", "fetch_token"]

SCOPE_HINT = (
    "pass SCOPE, one '{resource}/.default' such as 'api://my-api/.default' (or set 'scope' "
    "in parameters.json)."
)
NO_ROLES_HINT = "grant admin consent for the app's application permissions on the API"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "scope",
        nargs="?",
        metavar="SCOPE",
        help="one '{resource}/.default' scope (default: parameters.json's 'scope')",
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="print only the raw access token on stdout (for piping; it is a secret)",
    )
    add_config_options(parser)


async def fetch_token(args: argparse.Namespace, scope: str | None) -> AccessToken:
    """One token for ``scope`` (or the configuration's scope), from a provider built and
    closed here."""
    settings = load_settings(args)
    wanted = required(scope or settings.scope, "scope", SCOPE_HINT)
    async with build_provider(settings, args) as provider:
        return await provider.get_token(wanted, tenant_id=args.tenant)


def run(args: argparse.Namespace, out: Output) -> int:
    import asyncio

    if args.raw and out.json:
        # One JSON document, or the bare token: never a token inside a document a script
        # would store or log whole.
        raise CliError(
            "--raw and --json do not go together",
            hint="--raw prints the bare token for piping; --json prints its claims, never the "
            "token.",
            exit_code=Exit.USAGE,
            kind="UsageError",
        )
    token = asyncio.run(fetch_token(args, args.scope))
    if args.raw:
        out.raw(token.token)
        return Exit.OK
    claims = claims_or_empty(token.token)
    summary = token_summary(claims, token.expires_on, time.time())
    out.document({"scope": token.scope, "token_type": token.token_type, "claims": summary})
    for text in describe(token.scope, summary, jwt=bool(claims)):
        out.line(text)
    return Exit.OK


def describe(scope: str, summary: dict[str, Any], *, jwt: bool) -> list[str]:
    """The lines shown for a token's :func:`token_summary`."""
    lines = [f"token for {scope} (not shown; --raw prints it)"]
    if not jwt:
        lines.append("the token is not a JWT: its claims cannot be shown")
    for name in ("aud", "iss", "tid", "appid", "azp", "oid"):
        if name in summary:
            lines.append(f"  {name:<8}{summary[name]}")
    roles = summary.get("roles") or []
    if roles:
        lines.append(f"  {'roles':<8}{', '.join(roles)}")
    elif jwt:
        lines.append(f"  {'roles':<8}(none: {NO_ROLES_HINT})")
    left = summary["expires_in"]
    state = f"in {human_duration(left)}" if left >= 0 else f"{human_duration(left)} ago"
    lines.append(f"  {'expires':<8}{summary['expires_at']} ({state}; {left} s left)")
    return lines


COMMAND = Command(
    "token",
    "get an app-only token and show its claims (never the token, except with --raw)",
    configure,
    run,
)
