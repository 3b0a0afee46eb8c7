"""JSON shapes of the Key Vault secrets data plane: bundles, items, pages, request bodies.

Pure functions between :mod:`._store` objects and the bodies the
service sends (protocol-facts §4.2-4.3, azure-rest-api-specs ``GetSecret``,
``GetSecrets``, ``SetSecret`` examples):

* ``SecretBundle`` — ``value``, versioned ``id``, ``attributes`` in Unix seconds with
  ``recoveryLevel``/``recoverableDays``, optional ``contentType``/``tags``, and for a
  certificate-backed secret ``managed: true`` and ``kid``;
* ``SecretItem`` (lists) — no ``value``; the version-less ``id`` in ``GET /secrets``,
  the versioned one in ``GET /secrets/{name}/versions``;
* pages ``{"value": [...], "nextLink": ...}`` — the ``nextLink`` is built from the
  request's own ``scheme://host:port`` with a ``$skiptoken`` and the same ``maxresults``.

Every ``id`` is built from the vault URL the request arrived on, because the client
parses ``vault_url`` back out of it (``parse_key_vault_id``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from ._errors import KeyVaultError
from ._material import PEM, PKCS12
from ._store import (
    RECOVERABLE_DAYS,
    RECOVERY_LEVEL,
    DeletedSecret,
    SecretVersion,
)

__all__ = [
    "MAX_PAGE_SIZE",
    "SecretAttributesUpdate",
    "deleted_secret_bundle",
    "page_body",
    "parse_attributes_update",
    "parse_skiptoken",
    "secret_bundle",
    "secret_item",
    "unix_time",
    "version_attributes",
]

MAX_PAGE_SIZE = 25
"""``maxresults`` default and ceiling of the list operations."""


def unix_time(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def version_attributes(secret: SecretVersion) -> dict[str, Any]:
    """The ``attributes`` object of a version: Unix seconds plus the recovery level."""
    attributes: dict[str, Any] = {"enabled": secret.enabled}
    if secret.not_before is not None:
        attributes["nbf"] = unix_time(secret.not_before)
    if secret.expires_on is not None:
        attributes["exp"] = unix_time(secret.expires_on)
    attributes["created"] = unix_time(secret.created_on)
    attributes["updated"] = unix_time(secret.updated_on)
    attributes["recoveryLevel"] = RECOVERY_LEVEL
    attributes["recoverableDays"] = RECOVERABLE_DAYS
    return attributes


def _common(secret: SecretVersion, vault_url: str, secret_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": secret_id, "attributes": version_attributes(secret)}
    if secret.content_type is not None:
        body["contentType"] = secret.content_type
    if secret.tags is not None:
        body["tags"] = dict(secret.tags)
    if secret.managed:
        body["managed"] = True
    return body


def secret_bundle(
    secret: SecretVersion, vault_url: str, *, out_content_type: str | None = None
) -> dict[str, Any]:
    """The ``SecretBundle`` of one version, ``value`` included.

    ``out_content_type`` implements ``outContentType``: on a certificate-backed PFX
    secret, ``application/x-pem-file`` returns the PEM form (and that content type).
    Any other requested format is refused with 400 ``BadParameter``.
    """
    value = secret.value
    content_type = secret.content_type
    if out_content_type is not None:
        if out_content_type not in (PEM, PKCS12):
            raise KeyVaultError.bad_parameter(
                f"The outContentType {out_content_type!r} is not supported; "
                "only PFX to PEM conversion is supported."
            )
        if secret.certificate is not None and out_content_type != content_type:
            value = secret.certificate.secret_value(out_content_type, with_key=secret.exportable)
            content_type = out_content_type
    base = vault_url.rstrip("/")
    body = {"value": value, **_common(secret, base, secret.id(base))}
    if content_type is not None:
        body["contentType"] = content_type
    if secret.managed:
        body["kid"] = f"{base}/keys/{secret.name}/{secret.version}"
    return body


def secret_item(secret: SecretVersion, vault_url: str, *, versioned: bool) -> dict[str, Any]:
    """A ``SecretItem``: no value; the id is version-less unless ``versioned``."""
    base = vault_url.rstrip("/")
    secret_id = secret.id(base) if versioned else f"{base}/secrets/{secret.name}"
    return _common(secret, base, secret_id)


def deleted_secret_bundle(
    deleted: DeletedSecret, vault_url: str, *, with_value: bool = False
) -> dict[str, Any]:
    """A ``DeletedSecretBundle``: the last version plus ``recoveryId`` and the deletion dates.

    ``DELETE /secrets/{name}`` and ``GET /deletedsecrets/{name}`` omit the value (it is
    not readable while deleted); ``with_value`` exists for tests only.
    """
    base = vault_url.rstrip("/")
    body = (
        secret_bundle(deleted.latest, base)
        if with_value
        else _common(deleted.latest, base, deleted.latest.id(base))
    )
    if deleted.latest.managed:
        body["kid"] = f"{base}/keys/{deleted.latest.name}/{deleted.latest.version}"
    body["recoveryId"] = f"{base}/deletedsecrets/{deleted.latest.name}"
    body["deletedDate"] = unix_time(deleted.deleted_on)
    body["scheduledPurgeDate"] = unix_time(deleted.scheduled_purge_date)
    return body


def parse_skiptoken(token: str | None) -> str:
    """Decode a ``$skiptoken`` (the lower-cased name of the last item already returned)."""
    if not token:
        return ""
    try:
        padded = token + "=" * (-len(token) % 4)
        return base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise KeyVaultError.bad_parameter("The $skiptoken is not valid.") from None


def _skiptoken(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def page_body(
    items: Sequence[tuple[str, dict[str, Any]]],
    *,
    after: str,
    max_results: int,
    next_link_base: str,
    query: Mapping[str, str],
) -> dict[str, Any]:
    """One page of a list: the items whose sort key is after ``after``.

    ``items`` are ``(sort_key, item_json)`` in sort order. When more remain, ``nextLink``
    is ``next_link_base`` with the request's other query parameters (``api-version``,
    ``maxresults``) and a ``$skiptoken`` naming the last returned key, so a page is
    stable even if secrets are added between calls.
    """
    remaining = [item for item in items if item[0] > after]
    page = remaining[:max_results]
    body: dict[str, Any] = {"value": [item for _, item in page], "nextLink": None}
    if len(remaining) > len(page):
        params = {key: value for key, value in query.items() if key != "$skiptoken"}
        params["$skiptoken"] = _skiptoken(page[-1][0])
        body["nextLink"] = f"{next_link_base}?{urlencode(params, safe='$')}"
    return body


def parse_max_results(raw: str | None) -> int:
    """``maxresults``: 1-25, default 25 (values above 25 are served as 25 pages)."""
    if raw is None or raw == "":
        return MAX_PAGE_SIZE
    try:
        value = int(raw)
    except ValueError:
        raise KeyVaultError.bad_parameter(f"Invalid maxresults value: {raw}") from None
    if value < 1:
        raise KeyVaultError.bad_parameter(f"Invalid maxresults value: {raw}")
    return min(value, MAX_PAGE_SIZE)


@dataclass(frozen=True)
class SecretAttributesUpdate:
    """The settable parts of a ``SecretSetParameters``/``SecretUpdateParameters`` body."""

    content_type: str | None = None
    enabled: bool | None = None
    not_before: datetime | None = None
    expires_on: datetime | None = None
    tags: Mapping[str, str] | None = None


def _timestamp(attributes: Mapping[str, Any], key: str) -> datetime | None:
    raw = attributes.get(key)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise KeyVaultError.bad_parameter(f"Attribute {key} must be a Unix time in seconds.")
    return datetime.fromtimestamp(raw, timezone.utc)


def parse_attributes_update(body: Mapping[str, Any]) -> SecretAttributesUpdate:
    """Read ``contentType``, ``tags`` and ``attributes.{enabled,nbf,exp}`` from a JSON body."""
    content_type = body.get("contentType")
    if content_type is not None and not isinstance(content_type, str):
        raise KeyVaultError.bad_parameter("contentType must be a string.")
    tags = body.get("tags")
    if tags is not None and not (
        isinstance(tags, dict) and all(isinstance(v, str) for v in tags.values())
    ):
        raise KeyVaultError.bad_parameter("tags must be an object of strings.")
    attributes = body.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise KeyVaultError.bad_parameter("attributes must be an object.")
    enabled = attributes.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise KeyVaultError.bad_parameter("Attribute enabled must be a boolean.")
    return SecretAttributesUpdate(
        content_type=content_type,
        enabled=enabled,
        not_before=_timestamp(attributes, "nbf"),
        expires_on=_timestamp(attributes, "exp"),
        tags=tags,
    )
