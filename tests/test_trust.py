"""The trust store: keyids recomputed, roles separate, validity windows, list policies."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from provenance.errors import FormatError, InputError, SchemaError, SignatureError
from provenance.keys import PrivateKey
from provenance.trust import TrustedKey, TrustStore

AT = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


def _store() -> tuple[TrustStore, PrivateKey, PrivateKey]:
    publisher, lister = PrivateKey.generate(), PrivateKey.generate("ecdsa-p256")
    store = TrustStore().with_key(publisher.public, name="Lab", role="dataset-publisher")
    store = store.with_key(lister.public, name="Assoc", role="list-publisher", list_name="piracy")
    return store, publisher, lister


def test_round_trip_and_roles() -> None:
    store, publisher, lister = _store()
    loaded = TrustStore.from_json(store.to_json(), what="t")
    assert set(loaded.keys_for("dataset-publisher", at=AT)) == {publisher.keyid}
    assert set(loaded.keys_for("list-publisher", at=AT)) == {lister.keyid}
    assert loaded.keys_for("auditor", at=AT) == {}
    assert loaded.lists["piracy"].keyids == (lister.keyid,)
    with pytest.raises(InputError, match="no key is trusted for the role 'auditor'"):
        loaded.require_keys("auditor", at=AT, what="t")


def test_empty_store_is_refused_for_verification() -> None:
    with pytest.raises(InputError, match="no key is trusted"):
        TrustStore().require_keys("dataset-publisher", at=AT, what="t")


def test_keyid_must_match_its_key() -> None:
    store, _, _ = _store()
    document = json.loads(store.to_json())
    document["keys"][0]["keyid"] = "0" * 64
    document["lists"] = {}
    with pytest.raises(FormatError, match="does not match its key"):
        TrustStore.from_json(json.dumps(document).encode(), what="t")


def test_same_key_twice_is_refused() -> None:
    store, _, _ = _store()
    document = json.loads(store.to_json())
    document["keys"].append(document["keys"][0])
    with pytest.raises(FormatError, match="listed twice"):
        TrustStore.from_json(json.dumps(document).encode(), what="t")


def test_validity_window() -> None:
    store, publisher, _ = _store()
    document = json.loads(store.to_json())
    for item in document["keys"]:
        item["notBefore"] = "2026-01-01T00:00:00Z"
        item["notAfter"] = "2026-06-01T00:00:00Z"
    loaded = TrustStore.from_json(json.dumps(document).encode(), what="t")
    assert loaded.keys_for("dataset-publisher", at=AT) == {}
    assert publisher.keyid in loaded.keys_for(
        "dataset-publisher", at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    )


def test_list_thresholds() -> None:
    store, _, lister = _store()
    with pytest.raises(InputError, match="between 1 and"):
        store.with_key(
            lister.public, name="Assoc", role="list-publisher", list_name="x", threshold=2
        )
    with pytest.raises(InputError, match="a threshold applies only to a list"):
        store.with_key(lister.public, name="Assoc", role="list-publisher", threshold=1)
    with pytest.raises(InputError, match="a list name applies only to the role list-publisher"):
        store.with_key(lister.public, name="A", role="auditor", list_name="x")
    document = json.loads(store.to_json())
    document["lists"]["piracy"]["threshold"] = 2
    with pytest.raises(FormatError, match="exceeds"):
        TrustStore.from_json(json.dumps(document).encode(), what="t")
    document["lists"]["piracy"]["threshold"] = 0
    with pytest.raises(
        SchemaError, match="at lists/piracy/threshold: 0 is less than the minimum of 1"
    ):
        TrustStore.from_json(json.dumps(document).encode(), what="t")


def test_required_lists() -> None:
    store, _, _ = _store()
    store = store.with_required("piracy").with_required("opt-out")
    loaded = TrustStore.from_json(store.to_json(), what="t")
    assert loaded.lists["piracy"].required and loaded.lists["opt-out"].required


def test_unknown_role_and_fields_are_refused() -> None:
    store, _, _ = _store()
    document = json.loads(store.to_json())
    document["keys"][0]["roles"] = ["root"]
    with pytest.raises(SchemaError, match="roles"):
        TrustStore.from_json(json.dumps(document).encode(), what="t")


def test_a_key_is_trusted_for_one_role_only() -> None:
    store, publisher, lister = _store()
    with pytest.raises(InputError, match="already trusted as dataset-publisher.*separate key"):
        store.with_key(publisher.public, name="Lab", role="auditor")
    with pytest.raises(InputError, match="already trusted as list-publisher"):
        store.with_key(lister.public, name="Assoc", role="dataset-publisher")
    # The same role again is fine: a list-publisher key for one more list.
    more = store.with_key(lister.public, name="Assoc", role="list-publisher", list_name="optout")
    assert more.lists["optout"].keyids == (lister.keyid,)
    assert store.with_key(publisher.public, name="Lab", role="dataset-publisher") == store
    with pytest.raises(InputError, match="name the list"):
        store.with_key(PrivateKey.generate().public, name="New", role="list-publisher")


def test_a_store_listing_a_key_in_two_roles_is_refused() -> None:
    store, _, _ = _store()
    document = json.loads(store.to_json())
    document["lists"] = {}
    document["keys"][0]["roles"] = ["auditor", "dataset-publisher"]
    with pytest.raises(FormatError, match="one role only"):
        TrustStore.from_json(json.dumps(document).encode(), what="t")
    trusted = TrustStore.from_json(store.to_json(), what="t").keys
    one = next(iter(trusted.values()))
    with pytest.raises(FormatError, match="one role only"):
        TrustedKey(one.name, one.key, frozenset({"auditor", "dataset-publisher"}))


def test_real_time_keeps_an_expired_key_expired() -> None:
    store, publisher, _ = _store()
    document = json.loads(store.to_json())
    for item in document["keys"]:
        item["notAfter"] = "2026-06-01T00:00:00Z"
    loaded = TrustStore.from_json(json.dumps(document).encode(), what="t")
    march = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    assert publisher.keyid in loaded.keys_for("dataset-publisher", at=march)
    assert loaded.with_real_time(AT).keys_for("dataset-publisher", at=march) == {}
    with pytest.raises(SignatureError, match="trust expired at 2026-06-01T00:00:00Z"):
        loaded.require_keys("dataset-publisher", at=AT, what="t")
