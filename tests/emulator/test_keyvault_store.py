"""The vault's secret store and its JSON shapes, without HTTP (protocol-facts §4.2)."""

from __future__ import annotations

import base64
import re
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12

from aioentra.emulator.keyvault._errors import KeyVaultError
from aioentra.emulator.keyvault._material import PEM, PKCS12, VaultCertificate
from aioentra.emulator.keyvault._store import (
    SecretConflictError,
    SecretNameError,
    SecretNotFoundError,
    SecretStore,
)
from aioentra.emulator.keyvault._wire import (
    deleted_secret_bundle,
    page_body,
    parse_attributes_update,
    parse_max_results,
    parse_skiptoken,
    secret_bundle,
    secret_item,
)

VAULT = "https://localhost:8443"
T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def test_versions_are_32_hex_and_latest_is_newest() -> None:
    store = SecretStore()
    first = store.set("db", "one")
    second = store.set("DB", "two")
    assert re.fullmatch(r"[0-9a-f]{32}", first.version)
    assert store.get("db").value == "two"
    assert store.get("Db", first.version).value == "one"
    assert store.get("db", "") is second
    assert second.name == "db"  # the first spelling of a name is kept
    assert [v.version for v in store.versions("db")] == [first.version, second.version]


def test_unknown_name_or_version_is_not_found() -> None:
    store = SecretStore()
    store.set("a", "x")
    with pytest.raises(SecretNotFoundError):
        store.get("b")
    with pytest.raises(SecretNotFoundError):
        store.get("a", "0" * 32)


@pytest.mark.parametrize("name", ["", "has_underscore", "a" * 128, "sp ace"])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(SecretNameError):
        SecretStore().set(name, "x")


def test_update_changes_attributes_but_not_value() -> None:
    store = SecretStore()
    version = store.set("a", "x", tags={"k": "v"})
    updated = store.update("a", enabled=False, content_type="text/plain", now=T0)
    assert updated.version == version.version
    assert (updated.value, updated.enabled, updated.content_type) == ("x", False, "text/plain")
    assert updated.tags == {"k": "v"}
    assert updated.updated_on == T0
    assert store.get("a").enabled is False


def test_soft_delete_blocks_the_name_until_purged_or_recovered() -> None:
    store = SecretStore()
    store.set("a", "x")
    deleted = store.delete("a", now=T0)
    assert "a" not in store
    assert deleted.scheduled_purge_date == T0 + timedelta(days=90)
    with pytest.raises(SecretConflictError):
        store.set("a", "y")
    assert store.recover("a").value == "x"
    store.delete("a")
    store.purge("a")
    assert store.set("a", "z").value == "z"


def test_secret_bundle_shape() -> None:
    store = SecretStore()
    secret = store.set(
        "name",
        "value",
        content_type="text/plain",
        tags={"env": "test"},
        not_before=T0,
        expires_on=T0 + timedelta(days=1),
        now=T0,
    )
    body = secret_bundle(secret, VAULT + "/")
    assert body == {
        "value": "value",
        "id": f"{VAULT}/secrets/name/{secret.version}",
        "contentType": "text/plain",
        "tags": {"env": "test"},
        "attributes": {
            "enabled": True,
            "nbf": int(T0.timestamp()),
            "exp": int(T0.timestamp()) + 86400,
            "created": int(T0.timestamp()),
            "updated": int(T0.timestamp()),
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        },
    }
    item = secret_item(secret, VAULT, versioned=False)
    assert "value" not in item
    assert item["id"] == f"{VAULT}/secrets/name"
    assert secret_item(secret, VAULT, versioned=True)["id"] == body["id"]


def test_deleted_bundle_has_recovery_fields_and_no_value() -> None:
    store = SecretStore()
    store.set("gone", "x")
    body = deleted_secret_bundle(store.delete("gone", now=T0), VAULT)
    assert "value" not in body
    assert body["recoveryId"] == f"{VAULT}/deletedsecrets/gone"
    assert body["deletedDate"] == int(T0.timestamp())


def test_certificate_secret_pfx_and_pem_conversion() -> None:
    material = VaultCertificate.generate("CN=unit")
    store = SecretStore()
    secret = store.set(
        "cert",
        material.secret_value(PKCS12),
        content_type=PKCS12,
        managed=True,
        certificate=material,
        not_before=material.not_before,
        expires_on=material.not_after,
    )
    body = secret_bundle(secret, VAULT)
    assert body["managed"] is True
    assert body["kid"] == f"{VAULT}/keys/cert/{secret.version}"
    key, cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(body["value"]), None)
    assert key is not None
    assert cert == material.certificate

    pem = secret_bundle(secret, VAULT, out_content_type=PEM)
    assert pem["contentType"] == PEM
    assert pem["value"].startswith("-----BEGIN PRIVATE KEY-----\n")
    assert "-----BEGIN CERTIFICATE-----" in pem["value"]
    with pytest.raises(KeyVaultError) as excinfo:
        secret_bundle(secret, VAULT, out_content_type="application/json")
    assert excinfo.value.status == 400


def test_pem_round_trip_and_pfx_round_trip() -> None:
    material = VaultCertificate.generate("CN=rt")
    marker = "-----BEGIN CERTIFICATE-----"
    key_pem, cert_pem = material.pem().split(marker, 1)
    again = VaultCertificate.from_pem(key_pem, marker + cert_pem)
    assert again.certificate == material.certificate
    from_pfx = VaultCertificate.from_pfx(material.pfx())
    assert from_pfx.certificate == material.certificate


def test_paging_with_skiptoken() -> None:
    items = [(f"s{i:02d}", {"id": i}) for i in range(5)]
    query = {"api-version": "7.5", "maxresults": "2"}
    first = page_body(
        items, after="", max_results=2, next_link_base=VAULT + "/secrets", query=query
    )
    assert [item["id"] for item in first["value"]] == [0, 1]
    link = first["nextLink"]
    assert link.startswith(f"{VAULT}/secrets?api-version=7.5&maxresults=2&$skiptoken=")
    token = link.split("$skiptoken=", 1)[1]
    after = parse_skiptoken(token)
    last = page_body(items, after=after, max_results=10, next_link_base="x", query=query)
    assert [item["id"] for item in last["value"]] == [2, 3, 4]
    assert last["nextLink"] is None


@pytest.mark.parametrize(("raw", "expected"), [(None, 25), ("1", 1), ("25", 25), ("100", 25)])
def test_max_results(raw: str | None, expected: int) -> None:
    assert parse_max_results(raw) == expected


@pytest.mark.parametrize("raw", ["0", "-1", "many"])
def test_bad_max_results(raw: str) -> None:
    with pytest.raises(KeyVaultError):
        parse_max_results(raw)


def test_attribute_parsing() -> None:
    update = parse_attributes_update(
        {"contentType": "c", "tags": {"a": "b"}, "attributes": {"enabled": False, "exp": 1.0}}
    )
    assert update.enabled is False
    assert update.expires_on == datetime.fromtimestamp(1, timezone.utc)
    for bad in (
        {"attributes": {"enabled": "no"}},
        {"tags": {"a": 1}},
        {"attributes": {"nbf": "x"}},
    ):
        with pytest.raises(KeyVaultError):
            parse_attributes_update(bad)
