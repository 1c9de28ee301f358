"""Bucketed exclusion joins (DuckDB per hash-prefix bucket, as tasks): the same answers as the
matcher, for 1, 3 and 16 buckets, on real-ish lists and records (evasive URL spellings,
text-sha256, digests on two lists, unevaluable URLs), on threads and on the process pool of
provenance.executors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from joins_support import content, make_lists, make_records, text

from provenance.errors import InputError
from provenance.executors import LocalExecutor
from provenance.lists.match import ListIndex
from provenance.lists.model import ExclusionList

pytest.importorskip("duckdb")  # the 'scale' extra, part of 'all'

from provenance.lists.joins import (  # noqa: E402
    ThreadMap,
    bucket_numbers,
    bucketed_join,
    match_records_bucketed,
    write_buckets,
)


def _lists() -> list[ExclusionList]:
    import datetime as dt

    piracy, optout = make_lists()
    issued = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    return [
        ExclusionList(name=name, version=1, issued=issued, publisher="P", previous=None,
                      entries=tuple(entries))
        for name, entries in (("piracy", piracy), ("optout", optout))
    ]  # fmt: skip


LISTS = _lists()
INDEX = ListIndex(LISTS)
URLS, CONTENTS, TEXTS = make_records(4000, list(LISTS[0].entries), list(LISTS[1].entries))


@pytest.mark.parametrize("buckets", [1, 3, 16])
def test_bucketed_matching_equals_the_matcher(tmp_path: Path, buckets: int) -> None:
    expected = INDEX.match_records(URLS, CONTENTS, TEXTS)
    got = match_records_bucketed(
        INDEX, URLS, CONTENTS, TEXTS, directory=tmp_path, buckets=buckets, shard_size=700
    )
    assert got == expected
    # The data exercises every kind of answer.
    assert sum(1 for m in got if m.unevaluable) > 10
    kinds = {INDEX.entry(h).type for m in got for h in m.hits}
    assert kinds == {"domain", "url-prefix", "sha256", "text-sha256"}
    assert any(len({h.list_number for h in m.hits}) == 2 for m in got)  # on both lists
    assert len(list(tmp_path.glob("listed-content-*.parquet"))) == buckets


def test_bucketed_matching_takes_bytes_digests_and_real_processes(tmp_path: Path) -> None:
    contents = [bytes.fromhex(c) if c else None for c in CONTENTS]
    texts = [bytes.fromhex(t) if t else None for t in TEXTS]
    expected = INDEX.match_records(URLS, contents, texts)
    with LocalExecutor(2) as executor:  # the process pool of provenance.executors
        got = match_records_bucketed(
            INDEX, URLS, contents, texts, directory=tmp_path, buckets=3, executor=executor
        )
    assert got == expected


def test_bucketed_matching_without_url_entries(tmp_path: Path) -> None:
    hashes = [e for e in LISTS[0].entries if e.type == "sha256"]
    only = ListIndex([ExclusionList(
        name="h", version=1, issued=LISTS[0].issued, publisher="P", previous=None,
        entries=tuple(hashes),
    )])  # fmt: skip
    got = match_records_bucketed(only, URLS, CONTENTS, TEXTS, directory=tmp_path, buckets=16)
    assert got == only.match_records(URLS, CONTENTS, TEXTS)
    listed = {e.value for e in hashes}
    assert sum(1 for m in got if m.hits) == sum(1 for c in CONTENTS if c in listed) > 100


def test_bucketed_join_equals_a_set_intersection_with_duplicates(tmp_path: Path) -> None:
    rng = np.random.Generator(np.random.PCG64(5))
    listed = rng.integers(0, 256, size=(5000, 32), dtype=np.uint8)
    listed[100:110] = listed[0]  # one digest listed eleven times
    queries = np.concatenate([listed[rng.choice(5000, 700)], rng.integers(0, 256, (3000, 32),
                              dtype=np.uint8)])  # fmt: skip
    queries[5:8] = listed[0]
    left = write_buckets(queries, np.arange(len(queries)), tmp_path, side="q", buckets=16)
    right = write_buckets(listed, np.arange(len(listed)) * 7, tmp_path, side="l", buckets=16)
    numbers, refs = bucketed_join(left, right, ThreadMap(2))
    expected = sorted(
        (q, 7 * r)
        for q in range(len(queries))
        for r in np.flatnonzero((listed == queries[q]).all(axis=1)).tolist()
    )
    assert list(zip(numbers.tolist(), refs.tolist(), strict=True)) == expected
    assert len(expected) > 700


def test_buckets_are_balanced_and_in_digest_order() -> None:
    rng = np.random.Generator(np.random.PCG64(6))
    rows = rng.integers(0, 256, size=(60000, 32), dtype=np.uint8)
    for buckets in (1, 3, 16):
        numbers = bucket_numbers(rows, buckets)
        sizes = np.bincount(numbers, minlength=buckets)
        assert sizes.size == buckets and sizes.min() > 0.9 * len(rows) / buckets
        order = np.lexsort(rows[:, ::-1].T)  # digest order
        assert np.all(np.diff(numbers[order]) >= 0)
    with pytest.raises(InputError):
        bucket_numbers(rows, 0)


def test_mismatched_bucket_counts_are_refused(tmp_path: Path) -> None:
    rows = np.zeros((1, 32), dtype=np.uint8)
    left = write_buckets(rows, np.arange(1), tmp_path, side="a", buckets=2)
    right = write_buckets(rows, np.arange(1), tmp_path, side="b", buckets=3)
    with pytest.raises(InputError, match="2 buckets on one side, 3"):
        bucketed_join(left, right)


def test_examples_are_really_listed() -> None:
    (match,) = INDEX.match_records([None], [content(0)], [text(0)])
    assert {INDEX.entry(h).type for h in match.hits} == {"sha256", "text-sha256"}
