"""The exclusion-list document (model, canonical bytes, schema agreement) and ENTRIES parsing."""

from __future__ import annotations

import copy
import datetime as dt
import gc
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from provenance import _json, schema
from provenance.errors import FormatError, InputError
from provenance.lists.entries import (
    normalize_domain,
    parse_entries,
    prepare_entries,
    read_entries,
)
from provenance.lists.model import ExclusionList, ListEntry, check_list_name
from tests.lists_support import collector_watched

VECTORS = Path(__file__).resolve().parent / "vectors" / "blocklists"
T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
HEX = "ab" * 32

VALID: dict[str, Any] = {
    "name": "piracy",
    "version": 2,
    "issued": "2026-07-01T00:00:00Z",
    "publisher": "Example Rights Association",
    "previous": HEX,
    "entries": [
        {"type": "domain", "value": "example.org", "category": "piracy"},
        {"type": "domain", "value": "192.0.2.1", "category": "piracy"},
        {"type": "domain", "value": "[2001:db8::1]", "category": "other"},
        {"type": "url-prefix", "value": "example.net/films/", "category": "piracy"},
        {"type": "url", "value": "https://example.com/a?b=c", "category": "opt-out"},
        {"type": "sha256", "value": HEX, "category": "illegal", "note": "a pirated copy"},
        {"type": "text-sha256", "value": "cd" * 32, "category": "opt-out"},
    ],
}


def _with(path: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    target: Any = document
    keys = path.split("/")
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if value is _DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return document


_DELETE = object()

CASES: dict[str, tuple[dict[str, Any], bool]] = {
    "valid": (VALID, True),
    "version 1 without previous": ({**_with("version", 1), "previous": None}, True),
    "no entries": (_with("entries", []), True),
    "missing name": (_with("name", _DELETE), False),
    "name with a slash": (_with("name", "../a"), False),
    "name upper case": (_with("name", "Piracy"), False),
    "name with umlaut": (_with("name", "ö"), False),
    "name 65 characters": (_with("name", "a" * 65), False),
    "version 0": (_with("version", 0), False),
    "version a string": (_with("version", "2"), False),
    "version 2 without previous": (_with("previous", None), False),
    "version 1 with previous": (_with("version", 1), False),
    "previous not hex": (_with("previous", "AB" * 32), False),
    "issued with offset": (_with("issued", "2026-07-01T00:00:00+00:00"), False),
    "issued with fraction": (_with("issued", "2026-07-01T00:00:00.5Z"), False),
    "publisher empty": (_with("publisher", ""), False),
    "unknown top-level field": ({**VALID, "expires": "x"}, False),
    "unknown entry field": (_with("entries/0/weight", 1), False),
    "entry type unknown": (_with("entries/0/type", "regex"), False),
    "category unknown": (_with("entries/0/category", "spam"), False),
    "domain upper case": (_with("entries/0/value", "Example.org"), False),
    "domain trailing dot": (_with("entries/0/value", "example.org."), False),
    "domain empty label": (_with("entries/0/value", "example..org"), False),
    "domain with space": (_with("entries/0/value", "exa mple.org"), False),
    "ipv6 unbracketed": (_with("entries/2/value", "2001:db8::1"), False),
    "url with space": (_with("entries/4/value", "https://example.com/a b"), False),
    "url with tab": (_with("entries/3/value", "example.net/\tx"), False),
    "sha256 upper case": (_with("entries/5/value", "AB" * 32), False),
    "sha256 short": (_with("entries/6/value", "cd" * 31), False),
    "note empty": (_with("entries/5/note", ""), False),
    "value empty": (_with("entries/3/value", ""), False),
    "value too long": (_with("entries/4/value", "https://e.com/" + "a" * 4090), False),
    "entries not a list": (_with("entries", {}), False),
}


def _schema_accepts(document: dict[str, Any]) -> bool:
    try:
        schema.validate(document, "exclusion-list.v1.json", what="case")
    except FormatError:
        return False
    return True


def _model_accepts(document: dict[str, Any]) -> bool:
    try:
        ExclusionList.from_dict(document, what="case")
    except FormatError:
        return False
    return True


@pytest.mark.parametrize("case", sorted(CASES))
def test_typed_decoder_agrees_with_the_schema(case: str) -> None:
    document, valid = CASES[case]
    assert _schema_accepts(document) is valid
    assert _model_accepts(document) is valid
    data = _json.canonical(document)
    try:
        ExclusionList.from_bytes(data, what="case")
        parsed = True
    except FormatError:
        parsed = False
    assert parsed is valid


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(schema.load_schema("exclusion-list.v1.json"))


def test_round_trip_and_canonical_bytes() -> None:
    parsed = ExclusionList.from_dict(VALID, what="x")
    assert parsed.to_dict() == VALID
    data = parsed.to_bytes()
    assert data == _json.canonical(VALID)
    assert ExclusionList.from_bytes(data, what="x") == parsed
    assert parsed.counts() == {"illegal": 1, "opt-out": 2, "other": 1, "piracy": 3}
    assert len(parsed.digest()) == 64


def test_entries_are_decoded_untracked_without_pausing_the_collector(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A big list loads without gc.disable(): its entries are objects the collector never scans."""
    document = {**VALID, "entries": [
        {"type": "domain", "value": f"host{n}.example", "category": "piracy"} for n in range(50_000)
    ]}  # fmt: skip
    data = _json.canonical(document)
    with collector_watched(monkeypatch) as collections:
        parsed = ExclusionList.from_bytes(data, what="x")
    assert len(parsed.entries) == 50_000
    assert not any(gc.is_tracked(entry) for entry in parsed.entries[:1000])
    # 50,000 tracked objects would set off about 70 collections; a few lists and dicts none.
    assert len(collections) <= 2
    entry = ListEntry(type="domain", value="a.example", category="piracy")
    assert not gc.is_tracked(entry)
    with pytest.raises(ValueError, match="unknown entry type"):
        ListEntry(type="regex", value="a", category="piracy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown category"):
        ListEntry(type="domain", value="a", category="spam")  # type: ignore[arg-type]
    with pytest.raises(FormatError, match="previous: 'AB"):
        ExclusionList.from_bytes(_json.canonical(_with("previous", "AB" * 32)), what="x")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            lambda b: b.replace(b'"name":"piracy"', b'"name":"piracy","name":"x"'),
            id="duplicate key",
        ),
        pytest.param(lambda b: b.replace(b",", b", ", 1), id="whitespace"),
        pytest.param(lambda b: b"\xef\xbb\xbf" + b, id="byte-order mark"),
        pytest.param(
            lambda b: b.replace(b'"example.org"', b'"exampl\\u0065.org"'), id="escaped letter"
        ),
        pytest.param(lambda b: b + b"\n", id="trailing newline"),
        pytest.param(lambda b: b.replace(b'"version":2', b'"version":2.0'), id="float version"),
    ],
)
def test_only_the_canonical_form_is_accepted(data: Any) -> None:
    canonical = ExclusionList.from_dict(VALID, what="x").to_bytes()
    with pytest.raises(FormatError):
        ExclusionList.from_bytes(data(canonical), what="x")


@pytest.mark.parametrize(
    "name", ["../a", "..", ".", "/", "a/b", "ö", "a\0", "", "A", "-a", "a" * 65, "1.ö", "a b"]
)
def test_fishy_list_names_are_refused(name: str) -> None:
    """python-tuf's fishy_rolenames, and more (THREATS L17)."""
    with pytest.raises(InputError, match="invalid list name"):
        check_list_name(name)


@pytest.mark.parametrize("name", ["piracy", "a", "opt-out.v2", "jp_anime-2026", "0" * 64])
def test_safe_list_names(name: str) -> None:
    assert check_list_name(name) == name


# --- ENTRIES files ----------------------------------------------------------------------------


def test_hosts_file_from_the_block_list_project() -> None:
    entries = read_entries(VECTORS / "blocklistproject-piracy-head.txt", category="piracy")
    assert [e.value for e in entries[:3]] == ["0daycn.net", "100-postal2.blogspot.com", "1337x.to"]
    assert len(entries) == 17  # 30 lines minus the 13-line header
    assert {e.type for e in entries} == {"domain"} and {e.category for e in entries} == {"piracy"}


def test_plain_domains_from_ut1() -> None:
    entries = read_entries(VECTORS / "ut1-warez-domains-head.txt", category="piracy")
    assert len(entries) == 25
    assert entries[0].value == "01cinema.com"


def test_public_suffix_in_a_real_list_is_refused_with_its_line() -> None:
    path = VECTORS / "ut1-filehosting-domains-153.txt"
    with pytest.raises(InputError, match=r"domains-153.txt:6: 'dweb.link' is only a public suffix"):
        read_entries(path)
    skipped: list[InputError] = []
    entries = read_entries(path, skipped=skipped)
    assert len(entries) == 8 and len(skipped) == 1


@pytest.mark.parametrize("value", ["com", "co.uk", "github.io", "COM.", "*.co.uk", "jp"])
def test_public_suffixes_are_refused(value: str) -> None:
    with pytest.raises(InputError, match="only a public suffix"):
        normalize_domain(value, what="x")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Example.ORG.", "example.org"),
        ("*.example.org", "example.org"),
        ("Bücher.example", "xn--bcher-kva.example"),
        ("192.0.2.1", "192.0.2.1"),
        ("[2001:DB8:0::1]", "[2001:db8::1]"),
        ("2001:db8::1", "[2001:db8::1]"),
        ("foo.github.io", "foo.github.io"),
    ],
)
def test_domains_are_normalized(value: str, expected: str) -> None:
    assert normalize_domain(value, what="x") == expected


@pytest.mark.parametrize("value", ["exa mple.org", "example.org/path", "a..b", "http://x.org"])
def test_invalid_domains_are_refused(value: str) -> None:
    with pytest.raises(InputError):
        normalize_domain(value, what="x")


def test_text_and_hosts_lines() -> None:
    text = b"""# comment
127.0.0.1 localhost
::1 ip6-localhost ip6-loopback
0.0.0.0 a.example b.example # two names, inline comment

c.example
198.51.100.7
"""
    entries = list(parse_entries(text.splitlines(True), category="illegal", what="f"))
    assert [e.value for e in entries] == [
        "a.example",
        "b.example",
        "c.example",
        "198.51.100.7",
    ]


def test_garbage_line_names_its_line() -> None:
    with pytest.raises(InputError, match=r"^f:2: expected one domain per line"):
        list(parse_entries([b"a.example", b"||ads.example^ $third-party"], what="f"))


def test_json_lines() -> None:
    lines = [
        json.dumps({"value": "Example.org"}).encode(),
        b"",
        json.dumps({"type": "sha256", "value": "AB" * 32, "category": "illegal"}).encode(),
        json.dumps({"type": "url-prefix", "value": "example.net/films/", "note": "n"}).encode(),
    ]
    entries = list(parse_entries(lines, category="piracy", what="f"))
    assert entries == [
        ListEntry(type="domain", value="example.org", category="piracy"),
        ListEntry(type="sha256", value="ab" * 32, category="illegal"),
        ListEntry(type="url-prefix", value="example.net/films/", category="piracy", note="n"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b'{"value": "a.example", "weight": 1}',
        b'{"type": "regex", "value": "a"}',
        b'{"value": "a.example", "category": "spam"}',
        b'{"type": "sha256", "value": "xyz"}',
        b'{"value": "a.example", "value": "b.example"}',
        b'{"value": 7}',
        b"not json",
    ],
)
def test_bad_json_lines(line: bytes) -> None:
    with pytest.raises(InputError, match=r"^f:2: "):
        list(parse_entries([b'{"value": "ok.example"}', line], what="f"))


def test_prepare_sorts_and_deduplicates() -> None:
    a = ListEntry(type="domain", value="b.example", category="piracy")
    b = ListEntry(type="domain", value="a.example", category="piracy")
    c = ListEntry(type="sha256", value=HEX, category="piracy")
    assert prepare_entries([c, a, b, a], what="f") == (b, a, c)
    with pytest.raises(InputError, match="listed twice"):
        prepare_entries(
            [a, ListEntry(type="domain", value="b.example", category="other")], what="f"
        )


def test_model_requires_aware_times_and_chained_versions() -> None:
    with pytest.raises(ValueError, match="previous"):
        ExclusionList(name="a", version=2, issued=T0, publisher="p", previous=None, entries=())
    with pytest.raises(ValueError, match="aware"):
        ExclusionList(
            name="a",
            version=1,
            issued=dt.datetime(2026, 1, 1),
            publisher="p",
            previous=None,
            entries=(),
        )
