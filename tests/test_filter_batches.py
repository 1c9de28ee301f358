"""The batch paths of ``filter`` answer as the one-record paths: match_records against
match_url / match_digests, Tally.add_many against Tally.add, and the digests of a batch of
records against hashing them one by one. Plus ``filter`` end to end on many records."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.errors import FormatError, InvalidURLError
from provenance.filter import Tally, apply_lists
from provenance.filter._digests import record_digests as _record_digests
from provenance.lists.cache import CachedList
from provenance.lists.match import NO_MATCH, Hit, ListIndex, RecordMatch
from provenance.lists.model import ExclusionList, ListEntry
from provenance.normtext import norm_text_sha256
from provenance.records import Record

ISSUED = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


def _sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def _list(name: str, entries: list[tuple[str, str]], category: str = "piracy") -> ExclusionList:
    return ExclusionList(
        name=name,
        version=1,
        issued=ISSUED,
        publisher="p",
        previous=None,
        entries=tuple(ListEntry(type=t, value=v, category=category) for t, v in entries),  # type: ignore[arg-type]
    )


LISTS = [
    _list(
        "a",
        [
            ("domain", "evil.com"),
            ("sha256", _sha("pirated").hex()),
            ("url-prefix", "ok.com/bad"),
            ("sha256", _sha("x").hex()),
        ],
    ),
    _list(
        "b",
        [
            ("text-sha256", _sha("x").hex()),
            ("domain", "www.evil.com"),
            ("sha256", _sha("pirated").hex()),
        ],
        "opt-out",
    ),
]
INDEX = ListIndex(LISTS)
_DIGESTS = st.none() | st.sampled_from([_sha("pirated"), _sha("x"), _sha("y")])


def _one_by_one(
    index: ListIndex, url: str | None, content: bytes | None, text: bytes | None
) -> RecordMatch:
    refs: tuple[int, ...] = ()
    problem = None
    if url is not None:
        try:
            refs += index.match_url(url)
        except InvalidURLError as exc:
            problem = str(exc)
    refs += index.match_digests([content])[0] + index.match_digests([text], text=True)[0]
    return RecordMatch(tuple(index.hit(r) for r in sorted(set(refs))), problem)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.none()
            | st.sampled_from(
                [
                    "http://evil.com/",
                    "https://www.evil.com/x",
                    "http://ok.com/bad/1",
                    "http://ok.com/good",
                    "http://exa mple/",
                    "http://xn--/",
                    "https://a.b.evil.com",
                ]
            ),
            _DIGESTS,
            _DIGESTS,
        ),
        max_size=12,
    )
)
def test_match_records_equals_one_record_at_a_time(
    records: list[tuple[str | None, bytes | None, bytes | None]],
) -> None:
    urls = [r[0] for r in records]
    contents = [r[1] for r in records]
    texts = [r[2] for r in records]
    results = INDEX.match_records(urls, contents, texts)
    assert results == [_one_by_one(INDEX, *record) for record in records]
    assert all((r is NO_MATCH) == (r == NO_MATCH) for r in results)
    # Hex digests give the same answers as bytes.
    hexed = [None if d is None else d.hex() for d in contents]
    assert INDEX.match_records(urls, hexed, texts) == results


_RESULTS = st.sampled_from(
    [
        NO_MATCH,
        RecordMatch(()),  # clean, but not the shared object: must still be kept
        RecordMatch((Hit(0, 0),)),
        RecordMatch((Hit(0, 1), Hit(1, 2))),
        RecordMatch((), "cannot be parsed"),
        RecordMatch((Hit(1, 0),), "cannot be parsed"),
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_RESULTS, max_size=30))
def test_tally_add_many_equals_add(results: list[RecordMatch]) -> None:
    ids = [f"r{n}" for n in range(len(results))]
    one, many = Tally(INDEX), Tally(INDEX)
    dropped = [n for n, (i, r) in enumerate(zip(ids, results, strict=True)) if not one.add(i, r)]
    assert many.add_many(ids, results) == dropped
    assert (many.input, many.kept, many.removed, many.unevaluable) == (
        one.input,
        one.kept,
        one.removed,
        one.unevaluable,
    )
    assert [t.matched for t in many.lists] == [t.matched for t in one.lists]
    assert [t.removed for t in many.lists] == [t.removed for t in one.lists]
    assert many.examples == one.examples


def _record(number: int, text: str | None = None, sha256: str | None = None) -> Record:
    return Record(number, f"r{number}", None, text, None, sha256, None, None, None, None, b"")


def test_record_digests_in_bulk_and_one_by_one(tmp_path: Path) -> None:
    content_only = ListIndex([_list("c", [("sha256", _sha("a").hex())])])
    both = ListIndex(LISTS)
    texts = [_record(n, text=t) for n, t in enumerate(["a", "", "é 😀", "x"])]
    contents, normalized = _record_digests(texts, tmp_path, content_only, "f")
    assert contents == [
        hashlib.sha256(r.text.encode()).digest() for r in texts if r.text is not None
    ]
    assert normalized == [None] * 4
    mixed = [*texts, _record(9, sha256=_sha("x").hex())]
    contents, normalized = _record_digests(mixed, tmp_path, both, "f")
    assert contents == [*(_sha(r.text) for r in texts if r.text is not None), _sha("x")]
    assert normalized[0] == bytes.fromhex(norm_text_sha256(b"a") or "")
    given = [_record(n, sha256=_sha(str(n)).hex()) for n in range(3)]
    contents, normalized = _record_digests(given, tmp_path, both, "f")
    assert contents == [r.sha256 for r in given] and normalized == [None] * 3  # hex, in bulk
    assert both.match_records([None] * 3, contents, normalized) == both.match_records(
        [None] * 3, [bytes.fromhex(r.sha256 or "") for r in given], normalized
    )
    with pytest.raises(FormatError, match=r"^f: record 'r1': text holds a lone surrogate"):
        _record_digests([texts[0], _record(1, text="\ud800")], tmp_path, content_only, "f")


def test_filter_many_records_end_to_end(tmp_path: Path) -> None:
    # Several read blocks and match batches; kept and removed in input order, byte for byte.
    lines = []
    removed = []
    for number in range(30_000):
        host = "www.evil.com" if number % 97 == 0 else f"site{number}.example"
        text = "pirated" if number % 101 == 0 else f"text {number}: about {host}"
        line = json.dumps({"id": f"r{number}", "url": f"https://{host}/{number}", "text": text})
        lines.append(line.encode())
        if number % 97 == 0 or number % 101 == 0:
            removed.append(line.encode())
    source = tmp_path / "records.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    cached = [
        CachedList(list=the_list, digest="0" * 64, signers=(), expires=ISSUED, url="local")
        for the_list in LISTS
    ]
    report = apply_lists(
        source,
        cached,
        kept_path=tmp_path / "kept.jsonl",
        removed_path=tmp_path / "removed.jsonl",
        report_path=None,
        at=ISSUED,
    ).to_dict()
    gone = set(removed)
    kept = [line for line in lines if line not in gone]
    assert (tmp_path / "kept.jsonl").read_bytes() == b"\n".join(kept) + b"\n"
    assert (tmp_path / "removed.jsonl").read_bytes() == b"\n".join(removed) + b"\n"
    assert report["records"] == {
        "input": 30_000,
        "kept": len(kept),
        "removed": len(removed),
        "unevaluable": 0,
        "missingUrl": 0,
    }
