"""Card specs, source assignment, statements, and verifying signed cards."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance import _json, card
from provenance.card import sources as card_sources
from provenance.envelope import sign_envelope
from provenance.errors import (
    DocumentTypeError,
    FormatError,
    InputError,
    ProvenanceWarning,
    SchemaError,
    SignatureError,
)
from provenance.keys import PrivateKey
from provenance.manifest import ManifestEntry, ManifestSummary
from provenance.trust import TrustStore
from tests.conftest import SAMPLES, VECTORS

AT = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)

SPEC_YAML = b"""
name: test
version: "1"
description: d
publisher: {name: Lab}
sources:
  - id: books
    name: Books
    kind: public-domain
    license: LicenseRef-Public-Domain
    paths: ["books/*.txt"]
  - id: deep
    name: Deep
    kind: dataset
    license: mit
    paths: ["data/**/*.csv"]
  - id: web
    name: Web
    kind: web-crawl
    license: NOASSERTION
    domains: [news.example]
"""


def _spec(text: bytes = SPEC_YAML) -> dict[str, Any]:
    return card.load_spec(text, what="spec.yaml")


def _entry(entry_id: str, **fields: Any) -> ManifestEntry:
    return ManifestEntry(id=entry_id, sha256=fields.pop("sha256", "a" * 64), **fields)


def test_sample_spec_loads() -> None:
    spec = card.load_spec((SAMPLES / "card-spec.yaml").read_bytes(), what="card-spec.yaml")
    assert [s["id"] for s in spec["sources"]] == [
        "gutenberg",
        "us-senate",
        "photos",
        "example-news",
        "fans-forum",
    ]
    assert spec["sources"][3]["collection"] == {"start": "2026-03-01", "end": "2026-05-31"}


def test_licenses_are_normalized() -> None:
    assert _spec()["sources"][1]["license"] == "MIT"


@pytest.mark.parametrize(
    ("replacement", "message"),
    [
        (b"license: mit", b"license: MIT OR"),
        (b"license: mit", b"license: (MIT"),
        (b"license: mit", b"license: Foo-1.0"),
    ],
)
def test_bad_licenses(replacement: tuple[bytes, bytes], message: bytes) -> None:
    with pytest.raises(FormatError, match="sources/1: license"):
        _spec(SPEC_YAML.replace(replacement, message))


def test_spec_errors() -> None:
    with pytest.raises(FormatError, match="duplicate key"):
        _spec(SPEC_YAML + b"name: again\n")
    with pytest.raises(FormatError, match="used twice"):
        _spec(SPEC_YAML.replace(b"id: deep", b"id: books"))
    with pytest.raises(SchemaError, match="kind"):
        _spec(SPEC_YAML.replace(b"kind: dataset", b"kind: scraped"))
    with pytest.raises(SchemaError, match="unknown field 'pathz' \\(did you mean 'paths'\\?\\)"):
        _spec(
            SPEC_YAML.replace(
                b'    paths: ["books/*.txt"]', b'    paths: ["books/*.txt"]\n    pathz: [x]'
            )
        )
    with pytest.raises(FormatError, match="malformed YAML"):
        _spec(b"name: [unclosed\n")
    with pytest.raises(FormatError, match="duplicate key"):
        _spec(b'{"name": "a", "name": "b"}')
    with pytest.raises(FormatError, match="not valid UTF-8"):
        _spec(b"name: \xff\n")


def test_assignment_rules() -> None:
    assigner = card.SourceAssigner(_spec()["sources"])
    assert assigner.assign(_entry("books/a.txt")) == "books"
    assert assigner.assign(_entry("data/x/y/z.csv")) == "deep"
    assert assigner.assign(_entry("data/z.csv")) == "deep"
    assert assigner.assign(_entry("r1", url="https://www.news.example/a")) == "web"
    assert assigner.assign(_entry("r2", url="https://news.example./a")) == "web"
    assert assigner.assign(_entry("books/a.txt", source="web")) == "web"
    with pytest.raises(InputError, match=r"'books/sub/a.txt' is claimed by no source"):
        assigner.assign(_entry("books/sub/a.txt"))  # '*' stays inside one segment
    with pytest.raises(InputError, match="claimed by no source"):
        assigner.assign(_entry("r3", url="https://notnews.example/a"))
    with pytest.raises(InputError, match="names source 'other'"):
        assigner.assign(_entry("books/a.txt", source="other"))


def test_tally_uses_entry_license_over_source_license() -> None:
    entries = [
        _entry("books/a.txt", size=10),
        _entry("books/b.txt", size=5, license="CC-BY-4.0"),
        _entry("data/q.csv", size=1),
    ]
    counts = card.tally(entries, _spec()["sources"])
    assert counts.by_source == {"books": (2, 15), "deep": (1, 1), "web": (0, 0)}
    assert counts.by_license == {
        "CC-BY-4.0": (1, 5),
        "LicenseRef-Public-Domain": (1, 10),
        "MIT": (1, 1),
    }


def _statement() -> dict[str, Any]:
    entries = [_entry("books/a.txt", size=3)]
    summary = ManifestSummary("b" * 64, 1, 3, "c" * 64)
    with pytest.warns(ProvenanceWarning) as warned:
        statement = card.build_statement(
            _spec(), entries, lambda: summary, manifest_name="m.jsonl", created=AT
        )
    # Only 'books' claims the entry: the two other sources are named, one warning each.
    assert sorted(str(w.message).split("'")[1] for w in warned) == ["deep", "web"]
    return statement.to_dict()


def test_statement_shape() -> None:
    statement = _statement()
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": "m.jsonl", "digest": {"sha256": "b" * 64}}]
    predicate = statement["predicate"]
    assert predicate["manifest"]["merkleRoot"] == "c" * 64
    assert predicate["created"] == "2026-11-29T12:00:00Z"
    assert predicate["sources"][0]["records"] == 1


CASES = json.loads((VECTORS / "in-toto" / "attestation_go_cases.json").read_text())["cases"]
STATEMENT_CASES = [c for c in CASES if c["json"].startswith('{"_type"')]


@pytest.mark.parametrize("case", STATEMENT_CASES, ids=lambda c: c["name"])
def test_in_toto_statement_vectors_are_refused_unless_they_are_our_card(
    case: dict[str, str],
) -> None:
    # None of the upstream statements carries our predicate type, and the invalid ones are
    # invalid in other ways too (no subject, wrong _type): all must fail the card schema.
    with pytest.raises(SchemaError, match=r"^vector: at .*(was expected|is a required property)"):
        card.check_statement(json.loads(case["json"]), what="vector")


def test_wrong_statement_type_is_refused() -> None:
    statement = _statement()
    statement["_type"] = "https://in-toto.io/Statement/v0.1"
    with pytest.raises(SchemaError, match="_type"):
        card.check_statement(statement, what="x")


def _signed(statement: dict[str, Any], key: PrivateKey) -> Any:
    return sign_envelope(card.PAYLOAD_TYPE, _json.canonical(statement), [key])


def test_verify_card_roles() -> None:
    publisher, auditor, stranger = (
        PrivateKey.generate(),
        PrivateKey.generate(),
        PrivateKey.generate(),
    )
    trust = TrustStore().with_key(publisher.public, name="Lab", role="dataset-publisher")
    trust = trust.with_key(auditor.public, name="Aud", role="auditor")
    statement = _statement()
    verified = card.verify_card(_signed(statement, publisher), trust, at=AT, what="c")
    assert verified.publishers == (publisher.keyid,)
    assert verified.predicate.to_dict() == statement["predicate"]
    # An auditor key alone cannot make a card trusted: roles do not mix.
    with pytest.raises(SignatureError, match="signed by 0 of the 1 trusted key"):
        card.verify_card(_signed(statement, auditor), trust, at=AT, what="c")
    with pytest.raises(SignatureError, match="signed by 0 of the 1 trusted key"):
        card.verify_card(_signed(statement, stranger), trust, at=AT, what="c")
    with pytest.raises(InputError, match="no key is trusted"):
        card.verify_card(_signed(statement, publisher), TrustStore(), at=AT, what="c")


def test_expired_publisher_key_is_a_verified_no_naming_the_key() -> None:
    publisher = PrivateKey.generate()
    trust = TrustStore().with_key(publisher.public, name="Lab", role="dataset-publisher")
    document = json.loads(trust.to_json())
    document["keys"][0]["notAfter"] = "2026-01-01T00:00:00Z"
    expired = TrustStore.from_json(json.dumps(document).encode(), what="t")
    signed = _signed(_statement(), publisher)
    with pytest.raises(SignatureError, match="signed by dataset-publisher Lab .*expired at 2026"):
        card.verify_card(signed, expired, at=AT, what="c")
    # Valid at the time asked about, but not at the real time of a run whose clock was moved.
    early = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    assert card.verify_card(signed, expired, at=early, what="c").publishers
    with pytest.raises(SignatureError, match="on the real clock"):
        card.verify_card(signed, expired.with_real_time(AT), at=early, what="c")


def test_verified_payload_must_be_a_card() -> None:
    publisher = PrivateKey.generate()
    trust = TrustStore().with_key(publisher.public, name="Lab", role="dataset-publisher")
    statement = _statement()
    statement["predicate"]["manifest"]["merkleRoot"] = "not hex"
    with pytest.raises(SchemaError, match="merkleRoot"):
        card.verify_card(_signed(statement, publisher), trust, at=AT, what="c")
    statement = _statement()
    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    with pytest.raises(DocumentTypeError, match="not a dataset card"):
        card.verify_card(_signed(statement, publisher), trust, at=AT, what="c")
    other = sign_envelope(card.PAYLOAD_TYPE, b'{"a": 1, "a": 2}', [publisher])
    with pytest.raises(FormatError, match="duplicate key"):
        card.verify_card(other, trust, at=AT, what="c")


def test_sources_are_tried_in_the_order_written() -> None:
    spec = _spec(
        SPEC_YAML.replace(
            b"  - id: books\n",
            b"  - id: news\n    name: News\n    kind: licensed\n    license: MIT\n"
            b"    domains: [news.example]\n  - id: books\n",
        ).replace(b'paths: ["books/*.txt"]', b'paths: ["books/*.txt", "**"]')
    )
    assigner = card.SourceAssigner(spec["sources"])
    # "news" (by domain) is written before "books" (whose "**" matches every id).
    assert assigner.assign(_entry("books/a.txt", url="https://www.news.example/a")) == "news"
    assert assigner.assign(_entry("books/a.txt", url="https://other.example/a")) == "books"
    assert assigner.assign(_entry("data/x.csv")) == "books"  # before "deep"
    assert assigner.assign(_entry("x", url="https://news.example/", source="deep")) == "deep"


def test_a_domain_listed_by_two_sources_goes_to_the_first() -> None:
    sources = [
        {"id": "a", "name": "A", "kind": "dataset", "license": "MIT", "domains": ["example.org"]},
        {"id": "b", "name": "B", "kind": "dataset", "license": "MIT", "domains": ["x.example.org"]},
    ]
    assigner = card.SourceAssigner(sources)
    assert assigner.assign(_entry("r", url="https://x.example.org/")) == "a"


ALIAS_BOMB = b"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ALIAS_BOMB, r"YAML aliases \(\*a\) are not allowed, at line 2"),
        (b"name: &n x\nversion: *n\n", r"YAML aliases \(\*n\) are not allowed"),
        (b"name: " + b"[" * 5000 + b"]" * 5000, "nesting deeper than 64 levels"),
        (b"a:\n" + b"".join(b"  " * i + b"- \n" for i in range(1, 80)), "nesting deeper"),
    ],
)
def test_yaml_aliases_and_deep_nesting_are_refused(text: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        _spec(text)


def test_yaml_nesting_up_to_the_json_bound_is_accepted_by_the_reader() -> None:
    # 64 levels in all (the top mapping is one): the reader accepts it, the schema then refuses.
    with pytest.raises(SchemaError, match="'version' is a required property"):
        _spec(b"name: " + b"[" * 63 + b"]" * 63)


def test_spec_errors_are_one_helpful_line() -> None:
    with pytest.raises(SchemaError, match="at sources/1/kind: 'blog' is not one of") as caught:
        _spec(SPEC_YAML.replace(b"kind: dataset", b"kind: blog"))
    assert str(caught.value) == (
        "spec.yaml: at sources/1/kind: 'blog' is not one of: web-crawl, licensed,"
        " public-domain, open-license, user-contributed, synthetic, dataset"
    )
    with pytest.raises(
        SchemaError, match=r"unknown field 'licence' \(did you mean 'license'\?\)"
    ) as caught:
        _spec(SPEC_YAML.replace(b"license: mit", b"licence: mit"))
    assert str(caught.value).startswith(
        "spec.yaml: at sources/1: unknown field 'licence' (did you mean 'license'?); known fields:"
    )
    with pytest.raises(SchemaError, match="at publisher: unknown field 'nmae'"):
        _spec(SPEC_YAML.replace(b"publisher: {name: Lab}", b"publisher: {name: Lab, nmae: x}"))
    with pytest.raises(SchemaError, match="at sources/0: 'license' is a required property"):
        _spec(SPEC_YAML.replace(b"    license: LicenseRef-Public-Domain\n", b""))


def test_an_invalid_glob_in_a_spec_names_the_source() -> None:
    with pytest.raises(FormatError, match=r"sources/0: paths: glob 'books\\\\': .*backslash"):
        _spec(SPEC_YAML.replace(b'paths: ["books/*.txt"]', b"paths: ['books\\']"))


def test_show_card_names_what_is_unverified() -> None:
    publisher, stranger = PrivateKey.generate(), PrivateKey.generate()
    trust = TrustStore().with_key(publisher.public, name="Lab", role="dataset-publisher")
    statement = _statement()
    envelope = _signed(statement, publisher)
    shown = card.show_card(envelope, trust, at=AT, what="c")
    assert shown.verified and shown.to_dict()["card"] == statement
    assert [s.status for s in shown.signatures] == ["verified"]
    unchecked = card.show_card(envelope, None, at=AT, what="c")
    assert not unchecked.verified and "nothing was verified" in str(unchecked.problem)
    assert "card" not in unchecked.to_dict() and unchecked.to_dict()["unverifiedCard"]
    forged = card.show_card(_signed(statement, stranger), trust, at=AT, what="c")
    assert not forged.verified and [s.status for s in forged.signatures] == ["untrusted"]
    unsigned = card.show_card(card.CardStatement.from_dict(statement), trust, at=AT, what="c")
    assert not unsigned.verified and unsigned.problem == "the card is not signed"


# ----------------------------------------------------------------------------------------------
# The tally a block at a time: what counting entry by entry gives

_TALLY_SOURCES = [
    {"id": "img", "name": "Images", "kind": "web-crawl", "license": "MIT",
     "paths": ["images/**", "!images/private/*"]},
    {"id": "news", "name": "News", "kind": "web-crawl", "license": "CC-BY-4.0",
     "domains": ["news.example"]},
    {"id": "txt", "name": "Texts", "kind": "web-crawl", "license": "CC0-1.0", "paths": ["*.txt"]},
    {"id": "rest", "name": "Rest", "kind": "web-crawl", "license": "MIT", "paths": ["r*", "docs/"]},
    {"id": "misc", "name": "Misc", "kind": "web-crawl", "license": "MIT", "paths": ["*.jpg", "x"]},
]  # fmt: skip

_tally_entries = st.lists(
    st.builds(
        lambda folder, name, size, source, license_, url: _entry(
            folder + name, size=size, source=source, license=license_, url=url
        ),
        st.sampled_from(["", "images/", "images/private/", "docs/", "x/"]),
        st.sampled_from(["a.txt", "r1", "b.jpg", "x"]),
        st.one_of(st.none(), st.integers(0, 10**9)),
        st.sampled_from([None] * 7 + ["txt"]),
        st.one_of(st.none(), st.none(), st.none(), st.just("Apache-2.0")),
        st.one_of(st.none(), st.sampled_from(["https://news.example/a", "https://b.example/"])),
    ),
    max_size=40,
)


def _tally_entry_by_entry(entries: list[ManifestEntry]) -> card.Tally:
    from provenance.card.sources import SourceAssigner, entry_license

    assigner = SourceAssigner(_TALLY_SOURCES)
    by_source = {s["id"]: [0, 0] for s in _TALLY_SOURCES}
    by_license: dict[str, list[int]] = {}
    for entry in entries:
        source = assigner.source_of(entry)
        by_source[source.id][0] += 1
        by_source[source.id][1] += entry.size or 0
        counts = by_license.setdefault(entry_license(entry, source), [0, 0])
        counts[0] += 1
        counts[1] += entry.size or 0
    return card.Tally(
        {k: (a, b) for k, (a, b) in by_source.items()},
        {k: (a, b) for k, (a, b) in sorted(by_license.items())},
    )


@settings(max_examples=300, deadline=None)
@given(_tally_entries, st.booleans(), st.one_of(st.none(), st.integers(0, 40)), st.booleans())
def test_tally_by_blocks_equals_entry_by_entry(
    entries: list[ManifestEntry], plain: bool, bad_at: int | None, defer: bool
) -> None:
    """Counted in blocks, the tally is the entry-by-entry count, or its error; with
    ``defer_errors`` that error comes from ``result()``, every entry having been taken."""
    if plain:  # blocks the C-speed count takes: claimed by path, no license of their own
        entries = [_entry(e.id, size=e.size) for e in entries]
    if bad_at is not None:  # an entry no source claims, or one naming an unknown source
        bad = _entry("q.bin") if bad_at % 2 else _entry("r9", source="nope")
        entries.insert(bad_at, bad)
    try:
        want: card.Tally | str = _tally_entry_by_entry(entries)
    except InputError as exc:
        want = str(exc)
    tallier = card.Tallier(_TALLY_SOURCES, defer_errors=defer)
    added = False
    try:
        # Blocks of 7 (a streamed manifest is counted a block at a time): bulk and entry by
        # entry mixed in one count.
        with mock.patch.object(card_sources, "_BLOCK", 7):
            tallier.add(entries[: len(entries) // 2])
            tallier.add(iter(entries[len(entries) // 2 :]))
        added = True
        got: card.Tally | str = tallier.result()
    except InputError as exc:
        got = str(exc)
    assert got == want
    assert added or not defer  # deferred: raised by result(), not by add()


def test_tally_counts_plain_blocks_a_source_at_a_time() -> None:
    entries = [_entry(f"images/{n}", size=n) for n in range(50)]
    entries += [_entry("images/private/r2", size=7), _entry("docs/d", size=1)]
    tallier = card.Tallier(_TALLY_SOURCES)
    assert tallier._add_by_paths(entries)  # the block path, not entry by entry
    result = tallier.result()
    assert result == _tally_entry_by_entry(entries)
    assert result.by_source["img"] == (50, sum(range(50)))
    # Excluded from "img" by "!images/private/*", the next source's "r*" (at any depth) takes it.
    assert result.by_source["rest"] == (2, 8)
    assert result.by_license == {"MIT": (52, sum(range(50)) + 8)}
