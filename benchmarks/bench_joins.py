#!/usr/bin/env python3
"""Benchmark exclusion checks at 10^7 listed digests against DuckDB (issue 12's join goals).

Run from the repository (needs the ``scale`` extra: duckdb, pyarrow)::

    python benchmarks/bench_joins.py                 # both, full size (about 5 minutes, ~6 GB)
    python benchmarks/bench_joins.py --only lists    # verify --lists from the cache
    python benchmarks/bench_joins.py --only join --buckets 16,64
    python benchmarks/bench_joins.py --scale 0.01    # a quick run
    python benchmarks/bench_joins.py --keep /tmp/bj  # keep the data (7 minutes to make) for reruns

Every measurement runs in a fresh process (its peak RSS is its own, ``VmHWM``) on data generated
deterministically into a temporary directory deleted afterwards; figures are medians of
``--runs`` runs, printed with their ratios to DuckDB measured in the same run:

- **lists**: the real ``verify --lists`` path from a list cache holding one list of 10,000,000
  ``sha256`` entries (published, signed and fetched over 127.0.0.1 by the toolkit, so the cache
  holds the list file and its binary index) to the violations of a 1,000,000-entry manifest
  (10,000 of its digests listed): :func:`provenance.lists.audit.audit_lists` with a
  :class:`~provenance.lists.audit.CacheSource` (metadata re-verified, the index hashed against
  the signed packed form, the digests indexed and matched). Timed twice: with the manifest
  entries already in memory (the lists part) and reading the manifest file a block at a time as
  ``verify`` does (:func:`provenance.manifest.reader.iter_manifest_blocks`: every line checked;
  the list loads on a second thread meanwhile); and once without the index (the JSON parsed, as
  before the index existed). Peers: a 2-thread DuckDB join of the same digests from Parquet,
  hex ``VARCHAR`` (the list's and the manifest's form) and ``FIXED_LEN_BYTE_ARRAY(32)``.
  Goal: time at most 2x DuckDB, peak RSS at most 1.5x.
- **join**: a prepartitioned exclusion join of 10,000,000 manifest digests (100,000 listed)
  against 10,000,000 listed digests: both sides already written as Parquet buckets by hash
  prefix (:func:`provenance.lists.joins.write_buckets`), each pair joined by a one-thread DuckDB
  in a task, two tasks at a time (:func:`provenance.lists.joins.bucketed_join`). Peer: one
  2-thread DuckDB join of the same digests from two unpartitioned Parquet files. Both return
  every matching pair of row numbers. Goal: at most 2x the single join.
- **verify-parts**: the real ``verify --lists --executor local`` path (:func:`provenance.verify.
  verify_file`) on a partitioned manifest of ``--parts-entries`` entries (default 1,000,000; 1%
  listed; 16 parts) against a cached list of as many ``sha256`` entries, from the signed card
  and the list cache to the report: each part read, checked against the verified index and
  joined with its bucket of the list in DuckDB, in a task of the local executor. Peer: the
  2-thread DuckDB join of the same digests (binary Parquet, as in **lists**); for context, the
  same verify in one process (no executor). Goal (issue 12): at most 2x the single DuckDB join.

The machine is shared: the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SEED = 20261203
T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
AT = T0 + dt.timedelta(hours=6)


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ----------------------------------------------------------------------------------------------
# Data


def _digests(count: int, seed: int) -> Any:
    import numpy as np

    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.integers(0, 256, size=(count, 32), dtype=np.uint8)


def _write_parquet(rows: Any, path: Path, *, hexed: bool) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if hexed:
        column = pa.array(np.frombuffer(rows.tobytes().hex().encode(), dtype="S64")).cast(
            pa.string()
        )
    else:
        column = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(32), len(rows), [None, pa.py_buffer(rows.tobytes())]
        )
    numbers = pa.array(np.arange(len(rows), dtype=np.int64))
    pq.write_table(pa.table({"sha256": column, "n": numbers}), path, compression="zstd")


def make_lists_data(work: Path, listed: int, manifest: int, hits: int) -> None:
    """A signed list of ``listed`` digests fetched into a cache, a manifest of ``manifest``
    entries (``hits`` of them listed), and the same digests as Parquet for DuckDB."""
    import numpy as np

    from provenance.keys import PrivateKey
    from provenance.lists._serve import serving
    from provenance.lists.client import fetch
    from provenance.lists.model import ListEntry
    from provenance.lists.repository import publish
    from provenance.manifest import ManifestEntry, write_manifest
    from provenance.trust import TrustStore

    rows = _digests(listed, SEED)
    rows = rows[np.lexsort(rows[:, ::-1].T)]  # published order: by value
    rng = np.random.Generator(np.random.PCG64(SEED + 1))
    queries = np.concatenate(
        [rows[rng.choice(listed, hits, replace=False)], _digests(manifest - hits, SEED + 2)]
    )
    hexes = rows.tobytes().hex()
    entries = [
        ListEntry(type="sha256", value=hexes[64 * n : 64 * n + 64], category="piracy")
        for n in range(listed)
    ]
    del hexes
    key = PrivateKey.generate()
    publish(work / "repo", entries, name="big", keys=[key], at=T0, publisher="Bench")
    del entries
    store = TrustStore().with_key(key.public, name="b", role="list-publisher", list_name="big")
    (work / "trust.json").write_bytes(store.to_json())
    with serving(work / "repo") as url:
        fetch(url, store=store, cache_dir=work / "cache", at=T0 + dt.timedelta(hours=1))
    query_hex = queries.tobytes().hex()
    manifest_entries = sorted(
        (
            ManifestEntry(id=f"r{n:08d}", sha256=query_hex[64 * n : 64 * n + 64])
            for n in range(manifest)
        ),
        key=lambda e: (e.sha256, e.id),
    )
    write_manifest(manifest_entries, work / "manifest.jsonl")
    for name, data in (("listed", rows), ("manifest", queries)):
        _write_parquet(data, work / f"{name}.parquet", hexed=False)
        _write_parquet(data, work / f"{name}-hex.parquet", hexed=True)


def make_join_data(work: Path, listed: int, manifest: int, hits: int, buckets: list[int]) -> None:
    import numpy as np

    from provenance.lists.joins import write_buckets

    rows = _digests(listed, SEED + 3)
    rng = np.random.Generator(np.random.PCG64(SEED + 4))
    queries = np.concatenate(
        [rows[rng.choice(listed, hits, replace=False)], _digests(manifest - hits, SEED + 5)]
    )
    queries = queries[rng.permutation(manifest)]
    for name, data in (("jlisted", rows), ("jmanifest", queries)):
        _write_parquet(data, work / f"{name}.parquet", hexed=False)
        for count in buckets:
            write_buckets(data, np.arange(len(data)), work / f"b{count}", side=name, buckets=count)


def make_parts_data(work: Path, entries: int, hits: int, partitions: int) -> None:
    """:func:`make_lists_data` (a list and a manifest of ``entries`` each), then the manifest
    partitioned and a signed card over it that claims the list was applied."""
    from provenance import card
    from provenance import partitions as parts
    from provenance.keys import PrivateKey
    from provenance.manifest import iter_manifest

    make_lists_data(work, entries, entries, hits)
    summary = parts.write_partitioned(
        iter_manifest(work / "manifest.jsonl"), work / "parted", partitions=partitions
    )
    claim, store, _ = _claim(work)
    keyids = [k["keyid"] for k in json.loads((work / "trust.json").read_text())["keys"]]
    claim = card.Exclusion.from_dict({**claim.to_dict(), "signers": keyids[:1]})
    spec = {
        "name": "bench", "version": "1", "description": "benchmark", "publisher": {"name": "B"},
        "sources": [{"id": "web", "name": "Web", "kind": "web-crawl", "license": "MIT",
                     "paths": ["**"]}],
    }  # fmt: skip
    statement = card.build_statement(
        spec, iter_manifest(work / "manifest.jsonl"), lambda: summary, manifest_name="index.json",
        created=T0, exclusions=[claim],
    )  # fmt: skip
    developer = PrivateKey.generate()
    signed = card.sign_card(statement, developer, what="bench card")
    (work / "parts.signed.json").write_bytes(signed.envelope.to_json())
    trust = store.with_key(developer.public, name="Dev", role="dataset-publisher")
    (work / "trust-parts.json").write_bytes(trust.to_json())


# ----------------------------------------------------------------------------------------------
# Workers (each in a fresh process; prints one JSON line)


def _claim(work: Path) -> tuple[Any, Any, Any]:
    from provenance.card.model import Exclusion
    from provenance.lists.audit import CacheSource
    from provenance.trust import TrustStore

    store = TrustStore.from_json((work / "trust.json").read_bytes(), what="trust store")
    source = CacheSource(work / "cache", AT)
    (list_file,) = (work / "cache" / "current" / "repos").glob("*/lists/big/v1.json")
    import hashlib

    with open(list_file, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    claim = Exclusion(
        name="big", version=1, digest=digest, signers=(), matched={}, removed=0,
        applied="2026-07-01T00:00:00Z",
    )  # fmt: skip
    return claim, store, source


def _audit(work: Path, entries: Any, finish: Callable[[], Any] | None = None) -> dict[str, Any]:
    # Imported before timing, as DuckDB is: the path is timed, not the interpreter's imports.
    import provenance.lists.cache
    import provenance.lists.match
    import provenance.lists.packed  # noqa: F401
    from provenance.lists.audit import audit_lists

    claim, store, source = _claim(work)
    start = time.perf_counter()
    audit = audit_lists([claim], store, entries, source, at=AT)
    if finish is not None:  # the rest of the read (the Merkle root)
        finish()
    seconds = time.perf_counter() - start
    failed = [c for c in audit.checks if not c[1] and c[0] != "exclusions"]
    if failed:
        raise SystemExit(f"unexpected failed checks: {failed}")
    return {"seconds": seconds, "hits": audit.violation_count}


def worker_lists_memory(work: Path) -> dict[str, Any]:
    from provenance.manifest import iter_manifest

    entries = list(iter_manifest(work / "manifest.jsonl"))
    rss_entries = _rss_mib()
    result = _audit(work, entries)
    result["rss_before"] = rss_entries
    return result


def worker_lists_file(work: Path) -> dict[str, Any]:
    """The manifest read and checked a block at a time, as ``verify`` hands it to the audit."""
    from provenance.lists.audit import EntryBlocks
    from provenance.manifest.reader import iter_manifest_blocks

    return _audit(work, EntryBlocks(iter_manifest_blocks(work / "manifest.jsonl")))


def worker_lists_read(work: Path) -> dict[str, Any]:
    """As ``lists-file``, with the manifest read as ``verify`` reads it: the file's SHA-256 and
    the Merkle root of its lines computed too (a big file's tree in a forked child)."""
    from provenance.lists.audit import EntryBlocks
    from provenance.manifest.reader import ManifestReader

    reader = ManifestReader(work / "manifest.jsonl")
    return _audit(work, EntryBlocks(block.entries for block in reader.blocks()), reader.finish)


def worker_lists_timeline(work: Path) -> dict[str, Any]:
    """``lists-file`` with when each side ended (seconds after the start) and the CPU each
    thread used: the reading thread (reading, checking and handing on the manifest), the
    list thread's load and index, and its matching (``python benchmarks/bench_joins.py
    --worker lists-timeline --data DIR``, on data kept with ``--keep``)."""
    import threading

    from provenance.lists import audit as audit_module
    from provenance.lists.audit import EntryBlocks
    from provenance.manifest.reader import iter_manifest_blocks

    marks: dict[str, float] = {}
    start = [0.0]

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            cpu = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                marks[f"{name}_end"] = time.perf_counter() - start[0]
                marks[f"{name}_cpu"] = time.thread_time() - cpu

        return run

    audit_module._load_and_index = timed("load", audit_module._load_and_index)  # type: ignore[method-assign]
    audit_module._match_manifest = timed("match", audit_module._match_manifest)  # type: ignore[method-assign]
    reader = threading.current_thread()

    def blocks() -> Any:
        cpu = time.thread_time()
        yield from iter_manifest_blocks(work / "manifest.jsonl")
        assert threading.current_thread() is reader
        marks["read_end"] = time.perf_counter() - start[0]
        marks["read_cpu"] = time.thread_time() - cpu

    claim, store, source = _claim(work)
    import provenance.lists.cache
    import provenance.lists.match
    import provenance.lists.packed  # noqa: F401

    cpu = time.process_time()
    start[0] = time.perf_counter()
    audit = audit_module.audit_lists([claim], store, EntryBlocks(blocks()), source, at=AT)
    seconds = time.perf_counter() - start[0]
    return {
        "seconds": seconds, "cpu": time.process_time() - cpu, "hits": audit.violation_count,
        **{k: round(v, 3) for k, v in marks.items()},
    }  # fmt: skip


def worker_lists_no_index(work: Path) -> dict[str, Any]:
    from provenance.lists import cache
    from provenance.manifest import iter_manifest

    cache.load_index = lambda *args, **kwargs: (None, "disabled")  # type: ignore[assignment]
    cache.save_index = lambda *args, **kwargs: None  # type: ignore[assignment]
    return _audit(work, iter_manifest(work / "manifest.jsonl"))


def worker_lists_parts(work: Path) -> dict[str, Any]:
    """Where the time of the lists path goes: the cached list loaded (metadata re-verified, the
    file hashed, the index checked against it), the digests indexed, the manifest's matched."""
    import provenance.lists.match  # noqa: F401
    from provenance.lists.audit import BATCH_SIZE, CacheSource
    from provenance.lists.match import ListIndex
    from provenance.manifest import iter_manifest

    hexes = [e.sha256 for e in iter_manifest(work / "manifest.jsonl")]
    start = time.perf_counter()
    cached = CacheSource(work / "cache", AT).load_version("big", 1)
    loaded = time.perf_counter()
    rss_loaded = _rss_mib()
    index = ListIndex([cached.list])
    indexed = time.perf_counter()
    hits = 0
    for first in range(0, len(hexes), BATCH_SIZE):
        hits += sum(1 for r in index.match_digests(hexes[first : first + BATCH_SIZE]) if r)
    end = time.perf_counter()
    return {
        "seconds": end - start, "load": loaded - start, "index": indexed - loaded,
        "match": end - indexed, "hits": hits, "rss_loaded": rss_loaded,
    }  # fmt: skip


def _duckdb_join(left: Path, right: Path, *, pairs: bool) -> dict[str, Any]:
    import duckdb

    start = time.perf_counter()
    connection = duckdb.connect()
    connection.execute(f"SET threads = {len(os.sched_getaffinity(0))}")
    if pairs:
        result = connection.execute(
            f"SELECT m.n, l.n FROM '{left}' m JOIN '{right}' l USING (sha256)"
        ).fetchnumpy()
        hits = len(result["n"])
    else:
        row = connection.execute(
            f"SELECT count(*) FROM '{left}' m JOIN '{right}' l USING (sha256)"
        ).fetchone()
        hits = row[0] if row else -1
    return {"seconds": time.perf_counter() - start, "hits": hits}


def worker_duckdb_hex(work: Path) -> dict[str, Any]:
    return _duckdb_join(work / "manifest-hex.parquet", work / "listed-hex.parquet", pairs=False)


def worker_duckdb_bin(work: Path) -> dict[str, Any]:
    return _duckdb_join(work / "manifest.parquet", work / "listed.parquet", pairs=False)


def worker_join_single(work: Path) -> dict[str, Any]:
    return _duckdb_join(work / "jmanifest.parquet", work / "jlisted.parquet", pairs=True)


def worker_join_bucketed(work: Path, buckets: str) -> dict[str, Any]:
    import duckdb  # noqa: F401 - imported before timing, as for the single join

    from provenance.lists.joins import ThreadMap, bucketed_join

    directory = work / f"b{buckets}"
    left = sorted(directory.glob("jmanifest-*.parquet"))
    right = sorted(directory.glob("jlisted-*.parquet"))
    start = time.perf_counter()
    numbers, _ = bucketed_join(left, right, ThreadMap())
    return {"seconds": time.perf_counter() - start, "hits": len(numbers)}


def worker_verify_parts(work: Path, executor: str) -> dict[str, Any]:
    import resource

    # Imported before timing, as DuckDB is for its join.
    import duckdb  # noqa: F401

    import provenance.lists.cache
    import provenance.lists.joins
    import provenance.lists.packed
    import provenance.partitions.parallel  # noqa: F401
    from provenance.trust import TrustStore
    from provenance.verify import verify_file

    store = TrustStore.from_json((work / "trust-parts.json").read_bytes(), what="trust store")
    start = time.perf_counter()
    report = verify_file(
        work / "parts.signed.json", store, at=AT, lists=str(work / "cache"),
        manifest_path=work / "parted", executor=None if executor == "none" else executor,
        workers=len(os.sched_getaffinity(0)),
    )  # fmt: skip
    seconds = time.perf_counter() - start
    failed = {c.name: c.detail for c in report.checks if not c.ok}
    if set(failed) != {"exclusions"}:
        raise SystemExit(f"unexpected checks: {failed}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    hits = int(failed["exclusions"].split()[0])
    return {"seconds": seconds, "hits": hits, "rss_task": children}


WORKERS: dict[str, Callable[..., dict[str, Any]]] = {
    "verify-parts": worker_verify_parts,
    "lists-memory": worker_lists_memory,
    "lists-file": worker_lists_file,
    "lists-read": worker_lists_read,
    "lists-no-index": worker_lists_no_index,
    "lists-parts": worker_lists_parts,
    "lists-timeline": worker_lists_timeline,
    "duckdb-hex": worker_duckdb_hex,
    "duckdb-bin": worker_duckdb_bin,
    "join-single": worker_join_single,
    "join-bucketed": worker_join_bucketed,
}


def run_worker(name: str, work: Path, *args: str, runs: int) -> dict[str, Any]:
    """Run a worker ``runs`` times in fresh processes; medians of time and peak RSS."""
    results = []
    for _ in range(runs):
        result = _run_once(name, work, *args)
        if "error" in result:
            return result
        results.append(result)
    return _medians(results)


def run_workers_interleaved(names: list[str], work: Path, *, runs: int) -> dict[str, Any]:
    """Run the workers ``names`` in turn, ``runs`` rounds, each in a fresh process: on a
    machine whose speed drifts over minutes, each round's figures are taken in the same
    window. Returns per worker the medians of time and peak RSS, with ``runs_seconds``, the
    time of each round."""
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    failed: dict[str, dict[str, Any]] = {}
    for _ in range(runs):
        for name in names:
            if name in failed:
                continue
            result = _run_once(name, work)
            if "error" in result:
                failed[name] = result
            else:
                rounds[name].append(result)
    merged: dict[str, Any] = dict(failed)
    for name in names:
        if name not in failed:
            merged[name] = _medians(rounds[name])
            merged[name]["runs_seconds"] = [r["seconds"] for r in rounds[name]]
    return merged


def _run_once(name: str, work: Path, *args: str) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", name, "--data", str(work), *args],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        lines = (completed.stderr or "?").strip().splitlines()
        return {"error": lines[-1] if lines else "?"}
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _medians(results: list[dict[str, Any]]) -> dict[str, Any]:
    merged = dict(results[-1])
    for key in (
        "seconds", "rss_mib", "rss_before", "load", "index", "match", "rss_loaded", "rss_task",
    ):  # fmt: skip
        if key in merged:
            merged[key] = statistics.median(r[key] for r in results)
    return merged


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def _row(label: str, r: dict[str, Any], peers: list[dict[str, Any]]) -> None:
    if "error" in r:
        print(f"  {label:<58} failed: {r['error']}")
        return
    versus = "  ".join(
        f"{_ratio(r['seconds'], p.get('seconds', 0)):>6}"
        f" {_ratio(r['rss_mib'], p.get('rss_mib', 0)):>6}"
        for p in peers
    )
    print(f"  {label:<58} {r['seconds']:7.3f}s {r['rss_mib']:7.0f} MB  {versus}  {r['hits']:,}")


def ensure_lists_data(work: Path, listed: int, manifest: int, hits: int) -> Path:
    """Make the lists measurements' data in ``work`` (in a child process, so that its memory
    is not the measuring process's) unless it is there already (--keep); return the cached
    list file."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path;"
        " from benchmarks.bench_joins import make_lists_data as m;"
        f" m(Path(sys.argv[2]), {listed}, {manifest}, {hits})"
    )
    if not (work / "cache").is_dir():  # --keep: generated once
        subprocess.run([sys.executable, "-c", code, str(ROOT), str(work)], check=True)
    (list_file,) = (work / "cache/current/repos").glob("*/lists/big/v1.json")
    return list_file


def bench_lists(work: Path, scale: float, runs: int) -> None:
    listed, manifest, hits = int(10_000_000 * scale), int(1_000_000 * scale), int(10_000 * scale)
    started = time.perf_counter()
    list_file = ensure_lists_data(work, listed, manifest, hits)
    print(
        f"\nlists  verify --lists: {manifest:,} manifest entries ({hits:,} listed) vs a cached"
        f" list of {listed:,} sha256 entries ({list_file.stat().st_size / 1e9:.2f} GB, index"
        f" {list_file.with_suffix('.index').stat().st_size / 1e9:.2f} GB)"
        f"  [published, fetched, indexed in {time.perf_counter() - started:.0f} s]"
    )
    names = ["duckdb-hex", "duckdb-bin", "lists-memory", "lists-file", "lists-no-index"]
    results = {n: run_worker(n, work, runs=1 if n == "lists-no-index" else runs) for n in names}
    peers = [results["duckdb-hex"], results["duckdb-bin"]]
    print(f"  {'':<58} {'time':>8} {'peak RSS':>10}  {'vs DuckDB hex':>13}"
          f"  {'vs DuckDB bin':>13}  hits")  # fmt: skip
    labels = {
        "duckdb-hex": "DuckDB join, Parquet hex VARCHAR (2 threads)",
        "duckdb-bin": "DuckDB join, Parquet FIXED_LEN_BYTE_ARRAY(32) (2 threads)",
        "lists-memory": "ours: cache -> violations (manifest entries in memory)",
        "lists-file": "ours: cache + manifest file -> violations",
        "lists-no-index": "ours without the index (JSON parsed), + manifest file",
    }
    for name in names:
        _row(labels[name], results[name], peers)
    parts = run_worker("lists-parts", work, runs=runs)
    if "load" in parts:
        print(
            f"  ours, by step: load the cached list {parts['load']:.3f} s (peak RSS then"
            f" {parts['rss_loaded']:.0f} MB), index its digests {parts['index']:.3f} s, match"
            f" {manifest:,} digests {parts['match']:.3f} s; peak RSS {parts['rss_mib']:.0f} MB"
        )
    memory = results["lists-memory"]
    if "rss_before" in memory:
        print(f"  (the 1M manifest entries in memory take {memory['rss_before']:.0f} MB of its RSS"
              " before the lists are touched)")  # fmt: skip


def bench_join(work: Path, scale: float, runs: int, buckets: list[int]) -> None:
    listed, manifest, hits = int(10_000_000 * scale), int(10_000_000 * scale), int(100_000 * scale)
    started = time.perf_counter()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path;"
        " from benchmarks.bench_joins import make_join_data as m;"
        f" m(Path(sys.argv[2]), {listed}, {manifest}, {hits}, {buckets!r})"
    )
    if not all((work / f"b{count}").is_dir() for count in buckets):
        subprocess.run([sys.executable, "-c", code, str(ROOT), str(work)], check=True)
    print(
        f"\njoin  prepartitioned: {manifest:,} manifest digests ({hits:,} listed) vs {listed:,}"
        f" listed  [data written in {time.perf_counter() - started:.0f} s]"
    )
    single = run_worker("join-single", work, runs=runs)
    print(f"  {'':<58} {'time':>8} {'peak RSS':>10}  {'vs single':>13}  pairs")
    _row("DuckDB, one join of two Parquet files (2 threads)", single, [single])
    for count in buckets:
        r = run_worker("join-bucketed", work, str(count), runs=runs)
        _row(f"ours: {count} buckets, one-thread DuckDB per task, 2 tasks at once", r, [single])


def bench_verify_parts(work: Path, entries: int, runs: int, partitions: int = 16) -> None:
    hits = max(1, entries // 100)
    started = time.perf_counter()
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from pathlib import Path;"
        " from benchmarks.bench_joins import make_parts_data as m;"
        f" m(Path(sys.argv[2]), {entries}, {hits}, {partitions})"
    )
    if not (work / "parts.signed.json").is_file():
        subprocess.run([sys.executable, "-c", code, str(ROOT), str(work)], check=True)
    print(
        f"\nverify-parts  verify --lists on a partitioned manifest: {entries:,} entries in"
        f" {partitions} parts ({hits:,} listed) vs a cached list of {entries:,} sha256 entries"
        f"  [data made in {time.perf_counter() - started:.0f} s]"
    )
    duckdb = run_worker("duckdb-bin", work, runs=runs)
    tasks = run_worker("verify-parts", work, "local", runs=runs)
    one = run_worker("verify-parts", work, "none", runs=1)
    print(f"  {'':<58} {'time':>8} {'peak RSS':>10}  {'vs DuckDB':>13}  hits")
    _row("DuckDB join, Parquet FIXED_LEN_BYTE_ARRAY(32) (2 threads)", duckdb, [duckdb])
    _row("ours: verify --lists --executor local (card -> report)", tasks, [duckdb])
    _row("ours: verify --lists in one process (no executor)", one, [duckdb])
    if "rss_task" in tasks:
        print(f"  (--executor local: the largest task's peak RSS {tasks['rss_task']:.0f} MB)")
    if "seconds" in tasks and "seconds" in duckdb:
        ratio = tasks["seconds"] / duckdb["seconds"]
        print(
            f"  RESULT verify --lists --executor local / one DuckDB join = {ratio:.2f}x"
            f" (goal <= 2x: {'met' if ratio <= 2 else 'NOT met'}) at {entries:,} digests;"
            f" load average {_load()}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default="lists,join", help="comma-separated: lists, join, verify-parts"
    )
    parser.add_argument(
        "--parts-entries", type=int, default=1_000_000,
        help="verify-parts: manifest entries and listed digests (10000000 for 10^7)",
    )  # fmt: skip
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--buckets", default="16", help="join: comma-separated bucket counts")
    parser.add_argument("--keep", type=Path, help="generate into this directory (or reuse it)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args()
    if args.worker:
        result = WORKERS[args.worker](args.data, *extra)
        result["rss_mib"] = _rss_mib()
        print(json.dumps(result))
        return
    print(f"load average {_load()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-joins-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        only = set(args.only.split(","))
        if "lists" in only:
            bench_lists(work, args.scale, args.runs)
        if "join" in only:
            bench_join(work, args.scale, args.runs, [int(b) for b in args.buckets.split(",")])
        if "verify-parts" in only:
            bench_verify_parts(work / "verify-parts", args.parts_entries, args.runs)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {_load()} at the end")


if __name__ == "__main__":
    main()
