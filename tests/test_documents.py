"""Typed documents: the card statement and predicate, the filter report, list findings.

Each is a frozen value read with ``from_dict`` and written with ``to_dict``. For every valid
document ``d`` and every value ``x``: ``from_dict(d).to_dict() == d`` (so a card's signed bytes,
RFC 8785 of the document, never change by being read, unknown members included) and
``from_dict(x.to_dict()) == x``. Documents are generated from the schemas' rules and checked
against the schemas, so that the laws are tested on valid documents only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance import _json, card
from provenance.card import CardPredicate, CardStatement, Exclusion, Source
from provenance.errors import FormatError, SchemaError
from provenance.filter_report import FilterReport, parse_filter_report
from provenance.keys import PrivateKey
from provenance.lists.audit import ListedEntry, ListFinding
from provenance.manifest import ManifestEntry, ManifestSummary
from tests.conftest import SAMPLES

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies: documents as the schemas allow them -------------------------------------------

TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
SHA256 = st.text("0123456789abcdef", min_size=64, max_size=64)
COUNT = st.integers(0, 2**53 - 1)
TIME = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(9999, 1, 1)).map(
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")
)
DATE = st.dates(min_value=dt.date(1000, 1, 1)).map(lambda d: d.isoformat())
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
SOURCE_ID = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,10}", fullmatch=True)
KINDS = st.sampled_from(
    ["web-crawl", "licensed", "public-domain", "open-license", "user-contributed", "synthetic"]
    + ["dataset"]
)


def _unknown(cls: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Members a later version might add: any name the class does not know."""
    return st.dictionaries(TEXT.filter(lambda k: k not in cls.KNOWN), JSON_VALUE, max_size=2)


def _with(required: dict[str, Any], optional: dict[str, Any], cls: Any = None) -> Any:
    documents = st.fixed_dictionaries(required, optional=optional)
    if cls is None:
        return documents
    return st.tuples(documents, _unknown(cls)).map(lambda pair: {**pair[1], **pair[0]})


SOURCE = _with(
    {
        "id": SOURCE_ID,
        "name": TEXT,
        "kind": KINDS,
        "license": TEXT,
        "records": COUNT,
        "bytes": COUNT,
    },
    {
        "rightsHolder": TEXT,
        "agreement": TEXT,
        "homepage": TEXT,
        "paths": st.lists(TEXT, max_size=3),
        "domains": st.lists(TEXT, max_size=3),
        "collection": _with({}, {"start": DATE, "end": DATE}),
        "optOut": st.lists(TEXT, max_size=3),
        "legalBasis": TEXT,
    },
    card.Source,
)
LICENSE = _with({"license": TEXT, "records": COUNT, "bytes": COUNT}, {}, card.LicenseCount)
EXCLUSION = _with(
    {
        "name": TEXT,
        "version": st.integers(1, 2**31),
        "digest": SHA256,
        "signers": st.lists(SHA256, max_size=2),
        "matched": st.dictionaries(TEXT, COUNT, max_size=3),
        "removed": COUNT,
        "applied": TIME,
    },
    {"missingUrl": COUNT},
    card.Exclusion,
)
MANIFEST = _with(
    {"entries": COUNT, "bytes": COUNT, "merkleRoot": SHA256, "hashAlgorithm": st.just("sha256")},
    {
        "leafFormat": TEXT,
        "fingerprints": _with({"sha256": SHA256}, {"name": TEXT}, card.FingerprintIndexCommitment),
    },
    card.ManifestCommitment,
)
PREDICATE = _with(
    {
        "name": TEXT,
        "version": TEXT,
        "description": st.text(max_size=20),
        "publisher": _with({"name": TEXT}, {"url": TEXT, "contact": TEXT}),
        "created": TIME,
        # Each source's id its own (a card's sources may not share one).
        "sources": st.lists(SOURCE, min_size=1, max_size=3, unique_by=lambda s: s["id"]),
        "licenses": st.lists(LICENSE, max_size=3),
        "exclusions": st.lists(EXCLUSION, max_size=2),
        "manifest": MANIFEST,
        "generator": _with({"name": TEXT, "version": TEXT}, {}, card.Generator),
    },
    {},
    card.CardPredicate,
)
SUBJECT = _with(
    {
        "name": TEXT,
        "digest": st.tuples(
            SHA256, st.dictionaries(TEXT.filter(lambda k: k != "sha256"), TEXT, max_size=2)
        ).map(lambda pair: {**pair[1], "sha256": pair[0]}),
    },
    {},
    card.Subject,
)
STATEMENT = _with(
    {
        "_type": st.just(card.STATEMENT_TYPE),
        "subject": st.lists(SUBJECT, min_size=1, max_size=1),
        "predicateType": st.just(card.PREDICATE_TYPE),
        "predicate": PREDICATE,
    },
    {},
    card.CardStatement,
)


# -- the card statement ------------------------------------------------------------------------


@SETTINGS
@given(STATEMENT)
def test_statement_round_trips_and_keeps_its_signed_bytes(document: dict[str, Any]) -> None:
    statement = card.parse_statement(document, what="generated")
    assert statement.to_dict() == document
    # What a signature covers: the RFC 8785 bytes, unchanged by reading the card.
    assert _json.canonical(statement.to_dict()) == _json.canonical(document)
    assert CardStatement.from_dict(statement.to_dict()) == statement
    # from_dict reads without changing what it reads.
    assert statement.to_dict() == json.loads(json.dumps(document))


@SETTINGS
@given(PREDICATE)
def test_predicate_parts_round_trip(document: dict[str, Any]) -> None:
    predicate = CardPredicate.from_dict(document)
    assert predicate.to_dict() == document
    assert CardPredicate.from_dict(predicate.to_dict()) == predicate
    for source, item in zip(predicate.sources, document["sources"], strict=True):
        assert Source.from_dict(item) == source and source.to_dict() == item
    for exclusion, item in zip(predicate.exclusions, document["exclusions"], strict=True):
        assert Exclusion.from_dict(item) == exclusion and exclusion.to_dict() == item


def _built_statement(exclusions: tuple[Exclusion, ...] = ()) -> CardStatement:
    spec = card.load_spec((SAMPLES / "records-spec.yaml").read_bytes(), what="records-spec")
    entries = [
        ManifestEntry(
            id=f"r{n}", sha256=f"{n:064x}", size=n, source=("crawl-2026", "cc-web")[n % 2]
        )
        for n in range(1, 4)
    ]
    summary = ManifestSummary("b" * 64, 3, 6, "c" * 64)
    return card.build_statement(
        spec,
        entries,
        lambda: summary,
        manifest_name="records.manifest.jsonl",
        created=dt.datetime(2026, 11, 29, tzinfo=dt.UTC),
        exclusions=exclusions,
    )


def test_a_built_card_is_the_document_its_schema_describes() -> None:
    statement = _built_statement()
    document = statement.to_dict()
    card.check_statement(document, what="built")
    assert card.parse_statement(document, what="built") == statement
    assert document["predicate"]["manifest"] == {
        "entries": 3,
        "bytes": 6,
        "merkleRoot": "c" * 64,
        "hashAlgorithm": "sha256",
        "leafFormat": card.LEAF_FORMAT,
    }


def test_signing_an_unsigned_card_signs_the_document_as_written() -> None:
    """Members this version does not know are signed too, byte for byte (RFC 8785)."""
    document = _built_statement().to_dict()
    document["x-later"] = {"added": [1, "two"]}
    document["predicate"]["sources"][0]["x-note"] = "kept"
    document["predicate"]["manifest"]["x-extra"] = 7
    statement = card.parse_statement(document, what="card")
    signed = card.sign_card(statement, PrivateKey.generate(), what="card")
    assert signed.envelope.payload == _json.canonical(document) and not signed.cosigned


def test_unknown_members_cannot_shadow_known_ones() -> None:
    predicate = CardPredicate.from_dict(_built_statement().to_dict()["predicate"])
    with pytest.raises(ValueError, match="known members"):
        dataclasses.replace(predicate, unrecognized_fields={"sources": []})
    with pytest.raises(ValueError, match="known members"):
        dataclasses.replace(predicate.manifest, unrecognized_fields={"merkleRoot": "x"})


def test_an_unsigned_card_that_is_not_a_card_is_refused(tmp_path: Path) -> None:
    document = _built_statement().to_dict()
    del document["predicate"]["generator"]
    with pytest.raises(SchemaError, match="generator"):
        card.parse_statement(document, what="card")


# -- the filter report ---------------------------------------------------------------------------

RECORD_COUNTS = _with(
    {"input": COUNT, "kept": COUNT, "removed": COUNT, "unevaluable": COUNT},
    {"missingUrl": COUNT},
)
REPORT = st.tuples(
    st.fixed_dictionaries(
        {
            "lists": st.lists(EXCLUSION, max_size=3, unique_by=lambda e: e["name"]),
            "records": RECORD_COUNTS,
        },
        optional={
            "missingUrlPolicy": st.sampled_from(["removed", "kept"]),
            "unevaluableExamples": st.lists(
                st.fixed_dictionaries({"id": TEXT, "reason": TEXT}), max_size=2
            ),
            "missingUrlExamples": st.lists(TEXT, max_size=2),
            "notes": st.lists(TEXT, max_size=2),
        },
    ),
    st.dictionaries(
        TEXT.filter(
            lambda k: (
                k
                not in {"lists", "records", "missingUrlPolicy", "unevaluableExamples"}
                | {"missingUrlExamples", "notes"}
            )
        ),
        JSON_VALUE,
        max_size=2,
    ),
).map(lambda pair: {**pair[1], **pair[0]})


@SETTINGS
@given(REPORT)
def test_filter_report_round_trips(document: dict[str, Any]) -> None:
    report = parse_filter_report(document, what="generated")
    assert report.to_dict() == document
    assert FilterReport.from_dict(report.to_dict()) == report


def test_a_filter_report_naming_a_list_twice_is_refused() -> None:
    exclusion = {
        "name": "piracy",
        "version": 1,
        "digest": "a" * 64,
        "signers": [],
        "matched": {},
        "removed": 0,
        "applied": "2026-11-29T12:00:00Z",
    }
    records = {"input": 0, "kept": 0, "removed": 0, "unevaluable": 0}
    with pytest.raises(FormatError, match="names a list twice"):
        parse_filter_report({"lists": [exclusion, exclusion], "records": records}, what="r")
    with pytest.raises(FormatError, match="'lists' array"):
        parse_filter_report({"records": records}, what="r")


def test_a_card_built_from_a_filter_report_cites_its_lists_unchanged() -> None:
    exclusion = {
        "name": "piracy",
        "version": 3,
        "digest": "a" * 64,
        "signers": ["b" * 64],
        "matched": {"piracy": 2},
        "removed": 2,
        "applied": "2026-11-29T12:00:00Z",
        "missingUrl": 1,
    }
    report = parse_filter_report(
        {"lists": [exclusion], "records": {"input": 5, "kept": 3, "removed": 2, "unevaluable": 0}},
        what="r",
    )
    statement = _built_statement(report.lists)
    assert statement.to_dict()["predicate"]["exclusions"] == [exclusion]


# -- list findings -----------------------------------------------------------------------------

FINDING = st.builds(
    ListFinding,
    id=st.none() | TEXT,
    list=TEXT,
    version=st.none() | st.integers(1, 2**31),
    entry=st.none() | st.builds(ListedEntry, type=TEXT, value=TEXT, category=TEXT),
    reason=st.none() | TEXT,
)


@given(FINDING)
def test_list_finding_round_trips(finding: ListFinding) -> None:
    document = finding.to_dict()
    assert ListFinding.from_dict(document) == finding
    assert json.loads(json.dumps(document)) == document
    assert set(document) == {"id", "list", "version", "entry"} | (
        set() if finding.reason is None else {"reason"}
    )


def test_a_required_list_not_applied_is_the_violation_verify_reports() -> None:
    assert ListFinding.required_not_applied("optout").to_dict() == {
        "id": None,
        "list": "optout",
        "version": None,
        "entry": None,
        "reason": "the trust store requires this list; the card did not apply it",
    }
