"""Scope rules of the client-credentials grant (protocol-facts §1.1).

A client-credentials request names exactly one resource as ``{resource}/.default``:

* nothing at all                                  -> AADSTS900144 (missing ``scope``)
* ``.default`` mixed with any other scope         -> AADSTS70011
* only resource-specific scopes (no ``.default``) -> AADSTS1002012
* ``.default`` of more than one resource          -> AADSTS700022
* a bare ``.default`` without a resource          -> AADSTS70011

The resource is everything before the final ``/.default``; an identifier URI ending in ``/``
therefore needs a double slash (``https://management.azure.com//.default``, protocol-facts §1.1).
Resolving the resource against the directory (AADSTS500011) is the token endpoint's job.
"""

from __future__ import annotations

from .._errors import EntraError

__all__ = ["DEFAULT_SUFFIX", "resource_of_scope"]

DEFAULT_SUFFIX = "/.default"


def resource_of_scope(scope: str | None) -> str:
    """The single resource a client-credentials ``scope`` parameter asks for, or an AADSTS error."""
    scopes = list(dict.fromkeys((scope or "").split()))
    if not scopes:
        raise EntraError(900144, name="scope")
    defaults = [s for s in scopes if s.endswith(DEFAULT_SUFFIX) or s == ".default"]
    others = [s for s in scopes if s not in defaults]
    if defaults and others:
        raise EntraError(70011, scope=" ".join(scopes))
    if not defaults:
        raise EntraError(1002012, scope=others[0])
    resources = list(dict.fromkeys(s[: -len(DEFAULT_SUFFIX)] for s in defaults if s != ".default"))
    if len(resources) != len(defaults) or "" in resources:
        raise EntraError(70011, scope=" ".join(scopes))
    if len(resources) > 1:
        raise EntraError(700022, scope=" ".join(scopes))
    return resources[0]
