#!/usr/bin/env python3
"""Benchmark exclusion matching and ``filter`` (B5, B7 and filter end to end).

The figures and goals are in the README's Performance section.

Run from the repository (needs the ``bench`` extra: duckdb; datatrove is optional)::

    python benchmarks/bench_lists.py                  # everything, full size (~10 minutes)
    python benchmarks/bench_lists.py --only b5,b7     # the matching benchmarks only
    python benchmarks/bench_lists.py --scale 0.1      # a quick run at a tenth of the sizes

Every measurement runs in a fresh process (so that its peak RSS is its own), on data generated
deterministically into a temporary directory that is deleted afterwards; figures are medians of
``--runs`` runs and every figure is printed with its ratio to the peers measured in the same run:

- **B5**, content-hash check: 1,000,000 manifest digests (10,000 listed) against 10,000,000
  listed digests. Ours: :class:`provenance.lists.digests.DigestIndex` built from the raw 32-byte
  digests (read, index, look up); from hex lines decoded by
  :func:`provenance._kernels.hex_digests` (the bulk decoder the index uses for list entries
  and manifest digests); and the real path, :class:`~provenance.lists.index.ListIndex` over
  hex-string entries and ``match_digests`` on hex strings (timed from loaded strings). Peers:
  a DuckDB join over the same digests in Parquet, as ``FIXED_LEN_BYTE_ARRAY(32)`` and as hex
  ``VARCHAR``; and, with ``--set-baseline``, a Python set of hex strings (about 2 GB). Goal:
  time and peak RSS at most 1.5x DuckDB (from hex: DuckDB's hex join).
- **B7**, domain matching: 1,000,000 URLs (5 % on a listed domain through a subdomain, some of
  those spelled evasively) against 1,000,000 listed domains. Ours:
  :meth:`provenance.lists.index.ListIndex.match_urls` (WHATWG/UTS-46 normalization with a
  checked fast path). Peers: ``urllib.parse.urlsplit(...).hostname`` plus a suffix loop over a
  set, and Hugging Face datatrove's ``URLFilter`` (offline PSL snapshot). Goal: >= 600,000
  URLs/s, >= 2x the urllib loop, >= 10x datatrove. Hits found are printed for each: the peers
  miss the evasive spellings.
- **B5 real path** (``--only b5real``): the real ``verify --lists`` path, from a list cache
  holding one signed list of 10,000,000 ``sha256`` entries (published and fetched over
  127.0.0.1 by the toolkit) and the manifest file of 1,000,000 entries (10,000 listed) to the
  violations (``benchmarks/bench_joins.py``'s data and workers: ``lists-file``, ``lists-read``,
  ``lists-memory``, ``duckdb-hex``, ``duckdb-bin``). One line gives the time and peak-RSS ratios
  to DuckDB's join over the same digests from Parquet, with the goals of issue 12: <= 2x time,
  <= 1.5x memory; the next, the same ratios when the manifest's SHA-256 and Merkle root are
  computed too, as ``verify`` does (``lists-read``). The five workers run in turn, ``--runs``
  rounds of them, so that ours and DuckDB's are timed minutes apart at most; the ratio of each
  round is printed too.
- **filter** end to end (``provenance.filter.apply_lists``: strict JSON Lines reading, matching,
  writing kept and removed, report) on 1,000,000 and 10,000,000 records against a list of
  100,000 domains and 100,000 hashes: records per second, and peak RSS, which must not grow
  with the input.

The machine is shared: ``uptime`` load is printed with the results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
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

SEED = 20260701
TLDS = ["com", "net", "org", "de", "co.uk", "io", "jp", "fr", "com.br", "ru"]


# ----------------------------------------------------------------------------------------------
# Data


def _label(rng: random.Random) -> str:
    return "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=rng.randint(5, 14)))


def make_domains(count: int, rng: random.Random) -> list[str]:
    domains: set[str] = set()
    while len(domains) < count:
        domains.add(f"{rng.choice('abcdefghijklmnopqrstuvwxyz')}{_label(rng)}.{rng.choice(TLDS)}")
    return sorted(domains)


def _evasive(host: str, path: str, rng: random.Random) -> str:
    """A spelling of http(s)://host/path that browsers resolve to host but naive parsers do not."""
    kind = rng.randrange(4)
    if kind == 0:
        return f"https://{host.upper()}./{path}"
    if kind == 1:
        return f"http://{host}\\@mirror.example/{path}"
    if kind == 2:
        return f"https://user@{host}:8443/{path}"
    return f"https://{host.replace('.', '%2E', 1)}/{path}"


def make_urls(count: int, domains: list[str], rng: random.Random) -> tuple[list[str], int]:
    """URLs, 5 % on a listed domain via a subdomain (2 % of those evasive); return them and hits."""
    urls = []
    hits = 0
    for number in range(count):
        path = f"{_label(rng)}/{number}.html"
        if rng.random() < 0.05:
            hits += 1
            host = rng.choice(["www.", "cdn.", "a.b.", ""]) + rng.choice(domains)
            if rng.random() < 0.02:
                urls.append(_evasive(host, path, rng))
                continue
        else:
            host = (
                rng.choice(["www.", ""]) + f"{_label(rng)}{rng.randrange(100)}.{rng.choice(TLDS)}"
            )
        urls.append(f"https://{host}/{path}")
    return urls, hits


def make_b5(directory: Path, listed: int, queries: int, hits: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.Generator(np.random.PCG64(SEED))
    rows = rng.integers(0, 256, size=(listed, 32), dtype=np.uint8)
    picked = rows[rng.choice(listed, size=hits, replace=False)]
    manifest = np.concatenate(
        [picked, rng.integers(0, 256, size=(queries - hits, 32), dtype=np.uint8)]
    )
    manifest = manifest[rng.permutation(queries)]
    for name, data in (("listed", rows), ("manifest", manifest)):
        data.tofile(directory / f"{name}.bin")
        column = pa.FixedSizeBinaryArray.from_buffers(
            pa.binary(32), len(data), [None, pa.py_buffer(data.tobytes())]
        )
        pq.write_table(
            pa.table({"sha256": column}), directory / f"{name}.parquet", compression="zstd"
        )
        hexed = np.frombuffer(data.tobytes().hex().encode(), dtype="S64")
        pq.write_table(
            pa.table({"sha256": pa.array(hexed).cast(pa.string())}),
            directory / f"{name}-hex.parquet",
            compression="zstd",
        )
        with open(directory / f"{name}.hex", "wb") as handle:
            for start in range(0, len(hexed), 1 << 20):
                handle.write(b"\n".join(hexed[start : start + (1 << 20)].tolist()) + b"\n")


def make_records(path: Path, count: int, domains: list[str], rng: random.Random) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        batch = []
        for number in range(count):
            if rng.random() < 0.05:
                host = rng.choice(["www.", ""]) + rng.choice(domains)
            else:
                host = f"{_label(rng)}{rng.randrange(100)}.{rng.choice(TLDS)}"
            batch.append(
                json.dumps(
                    {
                        "id": f"r{number:09d}",
                        "url": f"https://{host}/{_label(rng)}/{number}",
                        "text": f"Record {number}: a short crawled paragraph about {_label(rng)}.",
                        "source": "crawl",
                    }
                )
            )
            if len(batch) >= 100_000:
                handle.write("\n".join(batch) + "\n")
                batch = []
        if batch:
            handle.write("\n".join(batch) + "\n")


# ----------------------------------------------------------------------------------------------
# Workers (each runs in its own process; prints one JSON line)


def _rss_mib() -> float:
    """This process's peak RSS. ``ru_maxrss`` would not do: Linux carries it over ``exec`` from
    the parent, while ``VmHWM`` belongs to the process's own memory map."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_b5_ours(data: Path) -> dict[str, Any]:
    import numpy as np

    from provenance.lists.match import DigestIndex

    start = time.perf_counter()
    listed = np.fromfile(data / "listed.bin", dtype=np.uint8).reshape(-1, 32)
    index = DigestIndex(listed)
    built = time.perf_counter()
    queries = np.fromfile(data / "manifest.bin", dtype=np.uint8).reshape(-1, 32)
    found = index.count_matches(queries)
    end = time.perf_counter()
    return {"seconds": end - start, "build": built - start, "lookup": end - built, "hits": found}


def _read_hex_lines(path: Path) -> Any:
    """Read a file of hex digests, one per line, with the toolkit's bulk decoder, a block at a
    time (a block of lines is read into one reused buffer and decoded into the result)."""
    import numpy as np

    from provenance._kernels import hex_digests

    count = path.stat().st_size // 65
    rows = np.empty((count, 32), dtype=np.uint8)
    block = bytearray(65 * 65536)
    view = memoryview(block)
    position = 0
    with open(path, "rb", buffering=0) as handle:
        while True:
            size = handle.readinto(block)
            if not size:
                break
            lines = size // 65
            hex_digests(view[:size], newlines=True, out=rows[position : position + lines])
            position += lines
    return rows


def worker_b5_ours_hex(data: Path) -> dict[str, Any]:
    """The same, starting from hex lines: checked and decoded by ``hex_digests``."""
    from provenance.lists.match import DigestIndex

    start = time.perf_counter()
    index = DigestIndex(_read_hex_lines(data / "listed.hex"))
    built = time.perf_counter()
    found = index.count_matches(_read_hex_lines(data / "manifest.hex"))
    end = time.perf_counter()
    return {"seconds": end - start, "build": built - start, "lookup": end - built, "hits": found}


class _Entry:
    __slots__ = ("category", "type", "value")

    def __init__(self, value: str) -> None:
        self.type, self.value, self.category = "sha256", value, "piracy"


def worker_b5_ours_strings(data: Path) -> dict[str, Any]:
    """What ``filter`` and ``verify --lists`` run: a ListIndex over 10 M ``sha256`` entries whose
    values are hex strings, then 1 M manifest ``sha256`` strings matched in the batches
    ``verify --lists`` uses. Loading the strings is not timed (that is the list's and
    the manifest's loading, with 10 M Python objects: peak RSS is mostly theirs)."""
    import gc

    from provenance.lists.audit import BATCH_SIZE
    from provenance.lists.match import ListIndex

    gc.disable()  # 10 M small objects that cannot form cycles (as the list loader does)
    with open(data / "listed.hex", encoding="ascii") as handle:
        entries = [_Entry(line[:64]) for line in handle]
    with open(data / "manifest.hex", encoding="ascii") as handle:
        manifest = [line[:64] for line in handle]
    gc.enable()

    class _List:
        name, version = "bench", 1

        def __init__(self, entries: list[_Entry]) -> None:
            self.entries = entries

    start = time.perf_counter()
    index = ListIndex([_List(entries)])
    built = time.perf_counter()
    found = 0
    for first in range(0, len(manifest), BATCH_SIZE):
        found += sum(1 for r in index.match_digests(manifest[first : first + BATCH_SIZE]) if r)
    end = time.perf_counter()
    return {"seconds": end - start, "build": built - start, "lookup": end - built, "hits": found}


def _duckdb(data: Path, suffix: str) -> dict[str, Any]:
    import duckdb

    start = time.perf_counter()
    connection = duckdb.connect()
    connection.execute(f"PRAGMA threads={os.cpu_count() or 1}")
    found = connection.execute(
        f"SELECT count(*) FROM '{data}/manifest{suffix}.parquet'"
        f" JOIN '{data}/listed{suffix}.parquet' USING (sha256)"
    ).fetchone()
    return {"seconds": time.perf_counter() - start, "hits": found[0] if found else None}


def worker_b5_duckdb(data: Path) -> dict[str, Any]:
    return _duckdb(data, "")


def worker_b5_duckdb_hex(data: Path) -> dict[str, Any]:
    return _duckdb(data, "-hex")


def worker_b5_set(data: Path) -> dict[str, Any]:
    start = time.perf_counter()
    with open(data / "listed.hex", encoding="ascii") as handle:
        listed = set(handle.read().split())
    with open(data / "manifest.hex", encoding="ascii") as handle:
        found = sum(1 for line in handle if line.rstrip("\n") in listed)
    return {"seconds": time.perf_counter() - start, "hits": found}


def _b7_inputs(data: Path) -> tuple[list[str], list[str]]:
    domains = (data / "domains.txt").read_text("ascii").split("\n")
    urls = (data / "urls.txt").read_text("utf-8").split("\n")
    return domains, urls


def worker_b7_ours(data: Path) -> dict[str, Any]:
    from provenance.lists.match import ListIndex
    from provenance.lists.model import ExclusionList, ListEntry

    domains, urls = _b7_inputs(data)
    entries = tuple(ListEntry(type="domain", value=d, category="piracy") for d in domains)
    the_list = ExclusionList(
        name="bench", version=1, issued=dt.datetime(2026, 7, 1, tzinfo=dt.UTC),
        publisher="bench", previous=None, entries=entries,
    )  # fmt: skip
    start = time.perf_counter()
    index = ListIndex([the_list])
    built = time.perf_counter()
    refs, unevaluable = index.match_urls(urls)
    end = time.perf_counter()
    return {
        "seconds": end - built,
        "build": built - start,
        "hits": sum(1 for r in refs if r),
        "unevaluable": len(unevaluable),
    }


def worker_b7_urllib(data: Path) -> dict[str, Any]:
    from urllib.parse import urlsplit

    domains, urls = _b7_inputs(data)
    start = time.perf_counter()
    listed = set(domains)
    built = time.perf_counter()
    hits = 0
    for url in urls:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            continue
        while host:
            if host in listed:
                hits += 1
                break
            _, _, host = host.partition(".")
    end = time.perf_counter()
    return {"seconds": end - built, "build": built - start, "hits": hits}


def worker_b7_datatrove(data: Path) -> dict[str, Any]:
    from datatrove.data import Document
    from datatrove.pipeline.filters import URLFilter
    from tldextract import TLDExtract

    domains, urls = _b7_inputs(data)
    start = time.perf_counter()
    url_filter = URLFilter(extra_domains=domains, use_integrated_lists=False)
    # The PSL snapshot shipped in tldextract: no network (this machine has none).
    url_filter.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)
    built = time.perf_counter()
    hits = 0
    for number, url in enumerate(urls):
        if url_filter.filter(Document(text="", id=str(number), metadata={"url": url})) is not True:
            hits += 1
    end = time.perf_counter()
    return {"seconds": end - built, "build": built - start, "hits": hits}


def worker_filter(data: Path, records: str) -> dict[str, Any]:
    from provenance.filter import apply_lists
    from provenance.lists.cache import CachedList
    from provenance.lists.model import ExclusionList, ListEntry

    issued = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
    domains = (data / "filter-domains.txt").read_text("ascii").split("\n")
    hashes = (data / "filter-hashes.txt").read_text("ascii").split("\n")
    entries = tuple(
        [ListEntry(type="domain", value=d, category="piracy") for d in domains]
        + [ListEntry(type="sha256", value=h, category="piracy") for h in hashes]
    )
    the_list = ExclusionList(
        name="bench", version=1, issued=issued, publisher="bench", previous=None, entries=entries
    )
    cached = CachedList(list=the_list, digest="0" * 64, signers=(), expires=issued, url="local")
    rss_lists = _rss_mib()
    start = time.perf_counter()
    report = apply_lists(
        data / records, [cached], kept_path=data / "kept.jsonl",
        removed_path=data / "removed.jsonl", report_path=data / "report.json", at=issued,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "records": report.records.to_dict(), "rss_after_lists": rss_lists}


WORKERS: dict[str, Callable[..., dict[str, Any]]] = {
    "b5-ours": worker_b5_ours,
    "b5-ours-hex": worker_b5_ours_hex,
    "b5-ours-strings": worker_b5_ours_strings,
    "b5-duckdb": worker_b5_duckdb,
    "b5-duckdb-hex": worker_b5_duckdb_hex,
    "b5-set": worker_b5_set,
    "b7-ours": worker_b7_ours,
    "b7-urllib": worker_b7_urllib,
    "b7-datatrove": worker_b7_datatrove,
    "filter": worker_filter,
}


def run_worker(name: str, data: Path, *args: str, runs: int) -> dict[str, Any]:
    """Run a worker ``runs`` times in fresh processes; return medians (and the last result)."""
    results = []
    for _ in range(runs):
        completed = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--data", str(data), *args],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if completed.returncode != 0:
            return {"error": completed.stderr.strip().splitlines()[-1] if completed.stderr else "?"}
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
    merged = dict(results[-1])
    for key in ("seconds", "build", "lookup", "rss_mib"):
        if key in merged:
            merged[key] = statistics.median(r[key] for r in results)
    return merged


# ----------------------------------------------------------------------------------------------
# Reporting


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def bench_b5(work: Path, scale: float, runs: int, with_set: bool) -> None:
    listed, queries, hits = int(10_000_000 * scale), int(1_000_000 * scale), int(10_000 * scale)
    started = time.perf_counter()
    make_b5(work, listed, queries, hits)
    print(f"\nB5  {queries:,} manifest digests ({hits:,} listed) vs {listed:,} listed digests"
          f"  [data generated in {time.perf_counter() - started:.1f} s]")  # fmt: skip
    names = ["b5-ours", "b5-ours-hex", "b5-ours-strings", "b5-duckdb", "b5-duckdb-hex"] + (
        ["b5-set"] if with_set else []
    )
    once = ("b5-set", "b5-ours-strings")  # slow to set up (10 M Python objects)
    results = {name: run_worker(name, work, runs=1 if name in once else runs) for name in names}
    duck, duck_hex = results["b5-duckdb"], results["b5-duckdb-hex"]
    header = f"  {'method':<44} {'time':>8} {'peak RSS':>10}"
    print(f"{header}  {'vs DuckDB bin':>14}  {'vs DuckDB hex':>14}  hits")
    labels = {
        "b5-ours": "DigestIndex from 32-byte digests",
        "b5-ours-hex": "DigestIndex from hex lines (hex_digests)",
        "b5-ours-strings": "ListIndex + match_digests, hex strings *",
        "b5-duckdb": "DuckDB join, Parquet FIXED_LEN_BYTE_ARRAY(32)",
        "b5-duckdb-hex": "DuckDB join, Parquet hex VARCHAR",
        "b5-set": "Python set of hex strings",
    }
    for name in names:
        r = results[name]
        if "error" in r:
            print(f"  {labels[name]:<44} failed: {r['error']}")
            continue
        versus = [
            f"{_ratio(r['seconds'], peer.get('seconds', 0)):>6}"
            f" {_ratio(r['rss_mib'], peer.get('rss_mib', 0)):>6} RSS"
            for peer in (duck, duck_hex)
        ]
        print(
            f"  {labels[name]:<44} {r['seconds']:7.3f}s {r['rss_mib']:8.0f} MB"
            f"  {versus[0]}  {versus[1]}  {r['hits']}"
        )
    for name, what in (("b5-ours", "32-byte"), ("b5-ours-hex", "hex lines")):
        if "build" in results[name]:
            print(
                f"  (DigestIndex from {what}: read + build {results[name]['build']:.3f} s,"
                f" read + look up {results[name]['lookup']:.3f} s)"
            )
    strings = results["b5-ours-strings"]
    if "build" in strings:
        print(
            f"  * the real path, timed from Python strings already loaded (not timed: reading"
            f" them; their objects dominate its RSS): ListIndex build {strings['build']:.3f}"
            f" s, match_digests {strings['lookup']:.3f} s"
        )


def bench_b7(work: Path, scale: float, runs: int) -> None:
    rng = random.Random(SEED)
    count = int(1_000_000 * scale)
    domains = make_domains(count, rng)
    urls, expected = make_urls(count, domains, rng)
    (work / "domains.txt").write_text("\n".join(domains), "ascii")
    (work / "urls.txt").write_text("\n".join(urls), "utf-8")
    evasive = sum(
        1 for u in urls if not u.startswith("https://") or "%2E" in u or "@" in u or ":8443" in u
    )
    print(f"\nB7  {count:,} URLs ({expected:,} on listed domains, {evasive:,} of them spelled"
          f" evasively) vs {count:,} listed domains")  # fmt: skip
    results = {
        "b7-ours": run_worker("b7-ours", work, runs=runs),
        "b7-urllib": run_worker("b7-urllib", work, runs=runs),
        "b7-datatrove": run_worker("b7-datatrove", work, runs=1),
    }
    labels = {
        "b7-ours": "ListIndex.match_urls (WHATWG + UTS-46)",
        "b7-urllib": "urlsplit().hostname + suffix loop",
        "b7-datatrove": "datatrove URLFilter",
    }
    ours = results["b7-ours"]
    header = f"  {'method':<40} {'match':>8} {'URLs/s':>10} {'build':>7} {'peak RSS':>9}"
    print(f"{header}  {'ours is':>8}  hits")
    for name, r in results.items():
        if "error" in r:
            print(f"  {labels[name]:<40} not run: {r['error']}")
            continue
        rate = count / r["seconds"]
        faster = _ratio(r["seconds"], ours["seconds"]) if name != "b7-ours" else ""
        print(
            f"  {labels[name]:<40} {r['seconds']:7.3f}s {rate:10,.0f} {r['build']:6.2f}s"
            f" {r['rss_mib']:7.0f} MB  {faster:>8}  {r['hits']:,}"
        )
    if "unevaluable" in ours:
        print(f"  (ours: {ours['unevaluable']} URLs could not be evaluated)")


def bench_filter(work: Path, scale: float, runs: int) -> None:
    rng = random.Random(SEED + 1)
    domains = make_domains(100_000, rng)
    (work / "filter-domains.txt").write_text("\n".join(domains), "ascii")
    hashes = [f"{rng.getrandbits(256):064x}" for _ in range(100_000)]
    (work / "filter-hashes.txt").write_text("\n".join(hashes), "ascii")
    sizes = [int(1_000_000 * scale), int(10_000_000 * scale)]
    print("\nfilter  JSON Lines records against 100,000 domains + 100,000 sha256 entries")
    print(f"  {'records':>12} {'file':>9} {'time':>9} {'records/s':>11} {'peak RSS':>9}"
          f" {'RSS after lists':>16}  kept / removed")  # fmt: skip
    for size in sizes:
        name = f"records-{size}.jsonl"
        started = time.perf_counter()
        make_records(work / name, size, domains, rng)
        generated = time.perf_counter() - started
        r = run_worker("filter", work, name, runs=1 if size >= 5_000_000 else runs)
        if "error" in r:
            print(f"  {size:>12,} failed: {r['error']}")
            continue
        megabytes = (work / name).stat().st_size / 1e6
        print(
            f"  {size:>12,} {megabytes:7.0f}MB {r['seconds']:8.1f}s {size / r['seconds']:11,.0f}"
            f" {r['rss_mib']:7.0f}MB {r['rss_after_lists']:14.0f}MB"
            f"  {r['records']['kept']:,} / {r['records']['removed']:,}"
            f"   [generated in {generated:.0f} s]"
        )
        (work / name).unlink()
        for leftover in ("kept.jsonl", "removed.jsonl"):
            (work / leftover).unlink(missing_ok=True)


def bench_b5_real(work: Path, scale: float, runs: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_joins

    listed, manifest, hits = int(10_000_000 * scale), int(1_000_000 * scale), int(10_000 * scale)
    started = time.perf_counter()
    list_file = bench_joins.ensure_lists_data(work, listed, manifest, hits)
    index_size = list_file.with_suffix(".index").stat().st_size
    print(
        f"\nB5 real path  verify --lists: {manifest:,} manifest entries ({hits:,} listed) vs a"
        f" cached list of {listed:,} sha256 entries ({list_file.stat().st_size / 1e9:.2f} GB,"
        f" index {index_size / 1e9:.2f} GB)  [data made in {time.perf_counter() - started:.0f} s]"
    )
    names = ["duckdb-hex", "duckdb-bin", "lists-file", "lists-read", "lists-memory"]
    results = bench_joins.run_workers_interleaved(names, work, runs=runs)
    labels = {
        "duckdb-hex": "DuckDB join, Parquet hex VARCHAR (2 threads)",
        "duckdb-bin": "DuckDB join, Parquet FIXED_LEN_BYTE_ARRAY(32) (2 threads)",
        "lists-file": "ours: cache + manifest file -> violations (verify)",
        "lists-read": "ours: the same + file SHA-256 and Merkle root (as verify)",
        "lists-memory": "ours: cache -> violations (manifest entries in memory)",
    }
    peers = [results["duckdb-hex"], results["duckdb-bin"]]
    print(f"  {'':<58} {'time':>8} {'peak RSS':>10}  {'vs DuckDB hex':>13}"
          f"  {'vs DuckDB bin':>13}  hits")  # fmt: skip
    for name in names:
        bench_joins._row(labels[name], results[name], peers)
    ours, duck, duck_bin = results["lists-file"], results["duckdb-hex"], results["duckdb-bin"]
    if not any("error" in r for r in (ours, duck, duck_bin)):
        time_ratio = ours["seconds"] / duck["seconds"]
        rss_ratio = ours["rss_mib"] / duck["rss_mib"]
        time_bin = ours["seconds"] / duck_bin["seconds"]
        rss_bin = ours["rss_mib"] / duck_bin["rss_mib"]
        print(
            f"  B5 real path, {listed:,} listed: time {time_ratio:.2f}x DuckDB hex"
            f" ({time_bin:.2f}x binary), goal <= 2x {'met' if time_ratio <= 2 else 'MISSED'};"
            f" memory {rss_ratio:.2f}x ({rss_bin:.2f}x binary), goal <= 1.5x"
            f" {'met' if rss_ratio <= 1.5 else 'MISSED'}"
            f"  [load {' '.join(f'{x:.2f}' for x in os.getloadavg())}]"
        )
        paired = [a / b for a, b in zip(ours["runs_seconds"], duck["runs_seconds"], strict=True)]
        print(
            "  time against DuckDB hex round by round (the two run one after the other):"
            f" {', '.join(f'{r:.2f}x' for r in paired)}"
        )
    read = results["lists-read"]
    if not any("error" in r for r in (read, duck)):
        print(
            f"  with the manifest's SHA-256 and Merkle root (verify's read): time"
            f" {read['seconds'] / duck['seconds']:.2f}x DuckDB hex, memory"
            f" {read['rss_mib'] / duck['rss_mib']:.2f}x (not the goal's path; for comparison)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default="b5,b7,filter", help="comma-separated: b5, b5real, b7, filter"
    )
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every size by this")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--set-baseline", action="store_true", help="B5: also a Python set (~2 GB)")
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args, extra = parser.parse_known_args()
    if args.worker:
        result = WORKERS[args.worker](args.data, *extra)
        result["rss_mib"] = _rss_mib()
        print(json.dumps(result))
        return
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} cores,"
          f" Python {sys.version.split()[0]}")  # fmt: skip
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-lists-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        only = set(args.only.split(","))
        if "b5" in only:
            bench_b5(work, args.scale, args.runs, args.set_baseline)
        if "b5real" in only:
            bench_b5_real(work, args.scale, args.runs)
        if "b7" in only:
            bench_b7(work, args.scale, args.runs)
        if "filter" in only:
            bench_filter(work, args.scale, args.runs)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
