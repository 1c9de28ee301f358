"""Every way of building a manifest gives the bytes of one simple build.

Building hashes while walking, on a process pool, in tasks whose size depends on thresholds.
These tests shrink the thresholds (the ``small_thresholds`` fixture) so that every path runs on
a small corpus, and compare the results with an independent reference: byte-identical manifests
whatever the number of workers, with and without sizes known from a first walk, shards that
merge into the whole; a file changed while a worker hashes it is reported, and a stopped read
never yields a digest.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from provenance import _json, manifest
from provenance.errors import LocalIOError
from tests.manifest_support import mixed_corpus


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the process pools started (so a test knows the parallel path ran)."""
    started: list[int] = []
    real = concurrent.futures.ProcessPoolExecutor

    class Counting(real):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            started.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", Counting)
    return started


def _reference_manifest(files: dict[str, bytes]) -> bytes:
    entries = sorted(
        (hashlib.sha256(data).hexdigest(), name, len(data)) for name, data in files.items()
    )
    return b"".join(
        _json.canonical({"id": name, "sha256": digest, "size": size}) + b"\n"
        for digest, name, size in entries
    )


def _build(root: Path, output: Path, **kwargs: Any) -> bytes:
    manifest.write_manifest(manifest.build_from_directory(root, **kwargs), output)
    return output.read_bytes()


@pytest.mark.usefixtures("small_thresholds")
def test_same_manifest_bytes_whatever_workers(tmp_path: Path, pools: list[int]) -> None:
    files = mixed_corpus(tmp_path / "data")
    expected = _reference_manifest(files)
    assert _build(tmp_path / "data", tmp_path / "w1.jsonl", workers=1) == expected
    assert pools == []
    for workers in (2, 3):
        assert _build(tmp_path / "data", tmp_path / "w.jsonl", workers=workers) == expected
    assert len(pools) == 2  # the parallel path really ran


@pytest.mark.usefixtures("small_thresholds")
def test_walk_with_and_without_stat_hash_the_same(tmp_path: Path) -> None:
    files = mixed_corpus(tmp_path / "data")
    (tmp_path / "data" / "out.jsonl").write_text("the output, excluded")
    exclude = {os.path.realpath(tmp_path / "data" / "out.jsonl")}
    totals: list[int] = []
    progress: list[int] = []

    def on_total(total: int) -> None:
        assert not progress, "on_total comes before any progress"
        totals.append(total)

    for workers in (1, 2):
        with_stat = manifest.hash_tree(
            tmp_path / "data",
            workers=workers,
            exclude=exclude,
            on_total=on_total,
            progress=progress.append,
        )
        without = manifest.hash_tree(tmp_path / "data", workers=workers, exclude=exclude)
        assert sorted((r.id, d) for r, d in with_stat) == sorted((r.id, d) for r, d in without)
        assert {r.id: d.sha256 for r, d in without if d} == {
            name: hashlib.sha256(data).hexdigest() for name, data in files.items()
        }
        assert totals == [sum(map(len, files.values()))] == [sum(progress)]
        totals.clear()
        progress.clear()


@pytest.mark.usefixtures("small_thresholds")
def test_shards_merge_into_the_whole_build(tmp_path: Path) -> None:
    mixed_corpus(tmp_path / "data")
    whole = manifest.write_manifest(
        manifest.build_from_directory(tmp_path / "data", workers=2), tmp_path / "whole.jsonl"
    )
    parts = []
    for index in range(3):
        part = tmp_path / f"part-{index}.jsonl"
        entries = manifest.build_from_directory(tmp_path / "data", workers=2, shard=(index, 3))
        assert entries, "each shard gets some files"
        manifest.write_manifest(entries, part)
        parts.append(part)
    merged = manifest.merge_manifests(parts, tmp_path / "merged.jsonl")
    assert merged == whole
    assert (tmp_path / "merged.jsonl").read_bytes() == (tmp_path / "whole.jsonl").read_bytes()


@pytest.mark.usefixtures("small_thresholds")
def test_a_file_changed_in_a_worker_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mixed_corpus(tmp_path / "data")
    target = str(tmp_path / "data" / "big" / "blob-2.bin")
    real_readv = os.readv

    def readv_then_append(fd: int, buffers: list[memoryview]) -> int:
        count = real_readv(fd, buffers)
        if os.readlink(f"/proc/self/fd/{fd}") == target:
            with open(target, "ab") as handle:
                handle.write(b"x")  # on every read: the file keeps growing while it is read
        return count

    monkeypatch.setattr(os, "readv", readv_then_append)  # copied into the forked workers
    with pytest.raises(LocalIOError, match=r"blob-2\.bin: file changed while it was being hashed"):
        manifest.build_from_directory(tmp_path / "data", workers=2)


@pytest.mark.usefixtures("small_thresholds")
def test_a_stopped_read_never_yields_a_digest(tmp_path: Path) -> None:
    import threading

    (tmp_path / "big").write_bytes(bytes(5 * 4096))
    stop = threading.Event()
    stop.set()
    [result] = manifest.hashing.hash_task([str(tmp_path / "big")], stop=stop)
    assert isinstance(result, manifest.FileDigest) and result.error and not result.sha256
