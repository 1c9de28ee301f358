#!/usr/bin/env python3
"""Benchmark the exclusion-list pipeline: parse ENTRIES, publish, fetch over HTTP, load.

Run from the repository::

    python benchmarks/bench_lists_repo.py                 # 1,000,000 hashes + 100,000 domains
    python benchmarks/bench_lists_repo.py --hashes 100000 --domains 10000   # quick

One invocation, the same generated data for every figure (deterministic), in a temporary
directory deleted afterwards. Each step is compared with the physical limit or a peer measured in
the same run:

- parse ENTRIES (``read_entries`` + ``prepare_entries``: JSON Lines of hashes, a plain domain
  list) against ``json.loads`` per line / ``str.split`` per line, the least any parser does;
- ``publish`` (canonical bytes, TUF metadata, signatures, atomic writes, read-back verify)
  against the unavoidable work: encoding the list once and hashing it;
- ``fetch`` over 127.0.0.1 (ngclient + our fetcher with deadline and decoded-size cap, hash
  check, cache generation swap) against a plain ``requests.get`` of the same file;
- ``load_cached_lists`` (re-verify metadata, SHA-256 of the file, canonical-form check, typed
  decode, entry objects) against reading + hashing the file (the limit for any verified load)
  and a bare ``msgspec`` decode (a peer that checks nothing).

Figures are medians of ``--runs`` runs; peak RSS is the process high-water mark after each
step (monotonic: read it as "at most"). The machine is shared: ``uptime`` load is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec  # noqa: E402
import requests  # noqa: E402

from provenance.keys import PrivateKey  # noqa: E402
from provenance.lists._serve import serving  # noqa: E402
from provenance.lists.cache import load_cached_lists  # noqa: E402
from provenance.lists.client import fetch  # noqa: E402
from provenance.lists.entries import prepare_entries, read_entries  # noqa: E402
from provenance.lists.model import ExclusionList  # noqa: E402
from provenance.lists.repository import publish  # noqa: E402
from provenance.trust import TrustStore  # noqa: E402

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)


def _median(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--domains", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"load average at start: {_load()}; cpus: {os.cpu_count()}")
    rng = random.Random(7)
    work = Path(tempfile.mkdtemp(prefix="bench-lists-"))
    try:
        hashes_file = work / "hashes.jsonl"
        with open(hashes_file, "w") as out:
            for _ in range(args.hashes):
                digest = rng.randbytes(32).hex()
                out.write(f'{{"type":"sha256","value":"{digest}","category":"piracy"}}\n')
        domains_file = work / "domains.txt"
        with open(domains_file, "w") as out:
            for i in range(args.domains):
                out.write(f"site-{i}-{rng.randrange(10**9)}.example{i % 50}.com\n")
        print(f"entries: {args.hashes:,} sha256 (JSON Lines), {args.domains:,} domains (text)")

        # -- parse ENTRIES ------------------------------------------------------------------
        t_parse_h, hashes = _median(
            lambda: prepare_entries(read_entries(hashes_file, category="piracy"), what="h"),
            args.runs,
        )
        t_json, _ = _median(
            lambda: [json.loads(line) for line in hashes_file.read_bytes().splitlines()],
            args.runs,
        )
        t_parse_d, domains = _median(
            lambda: prepare_entries(read_entries(domains_file, category="piracy"), what="d"),
            args.runs,
        )
        t_split, _ = _median(lambda: domains_file.read_text().split(), args.runs)
        print(
            f"parse hashes   {t_parse_h:7.2f} s  {args.hashes / t_parse_h:12,.0f} entries/s"
            f"  ({t_parse_h / t_json:.1f}x json.loads per line, {t_json:.2f} s)"
        )
        print(
            f"parse domains  {t_parse_d:7.2f} s  {args.domains / t_parse_d:12,.0f} entries/s"
            f"  ({t_parse_d / t_split:.0f}x str.split, {t_split:.3f} s; normalization + PSL)"
        )
        print(f"  peak RSS so far {_rss_mib():,.0f} MiB")
        all_entries = tuple(sorted(hashes + domains, key=lambda e: e.sort_key()))

        # -- publish ------------------------------------------------------------------------
        key = PrivateKey.generate()
        counter = iter(range(10**6))

        def do_publish() -> Any:
            n = next(counter)
            return publish(
                work / f"repo{n}", all_entries, name="piracy", keys=[key], at=T0, publisher="B"
            )

        def encode_and_hash() -> str:
            doc = ExclusionList(
                name="piracy", version=1, issued=T0, publisher="B", previous=None,
                entries=all_entries,
            )  # fmt: skip
            return hashlib.sha256(doc.to_bytes()).hexdigest()

        t_publish, published = _median(do_publish, args.runs)
        t_encode, _ = _median(encode_and_hash, args.runs)
        size = next((work / "repo0/targets/lists/piracy").iterdir()).stat().st_size
        print(
            f"publish        {t_publish:7.2f} s  {len(all_entries) / t_publish:12,.0f} entries/s"
            f"  ({t_publish / t_encode:.2f}x encode+hash, {t_encode:.2f} s);"
            f" file {size / 2**20:.0f} MiB"
        )
        print(f"  peak RSS so far {_rss_mib():,.0f} MiB")

        # -- fetch and load -----------------------------------------------------------------
        store = TrustStore().with_key(
            key.public, name="b", role="list-publisher", list_name="piracy"
        )
        repo = work / "repo0"
        list_file = next((repo / "targets/lists/piracy").iterdir())
        with serving(repo) as url:

            def do_fetch() -> Any:
                cache = work / f"cache{next(counter)}"
                fetch(url, store=store, cache_dir=cache, at=T0 + dt.timedelta(hours=1))
                return cache

            def plain_get() -> int:
                relative = list_file.relative_to(repo)
                return len(requests.get(f"{url}/{relative}", timeout=60).content)

            t_fetch, cache = _median(do_fetch, args.runs)
            t_get, _ = _median(plain_get, args.runs)
        print(
            f"fetch          {t_fetch:7.2f} s  {size / t_fetch / 2**20:9.0f} MiB/s"
            f"  ({t_fetch / t_get:.2f}x plain requests.get, {t_get:.2f} s)"
        )
        t_loadc, loaded = _median(
            lambda: load_cached_lists(cache, at=T0 + dt.timedelta(hours=1)), args.runs
        )
        assert loaded[0].digest == published.digest
        t_hash, _ = _median(lambda: hashlib.sha256(list_file.read_bytes()).hexdigest(), args.runs)
        t_msgspec, _ = _median(lambda: msgspec.json.decode(list_file.read_bytes()), args.runs)
        print(
            f"load (verify)  {t_loadc:7.2f} s  {len(all_entries) / t_loadc:12,.0f} entries/s"
            f"  ({t_loadc / t_hash:.1f}x read+sha256 {t_hash:.3f} s;"
            f" {t_loadc / t_msgspec:.1f}x bare msgspec decode {t_msgspec:.2f} s)"
        )
        print(f"  peak RSS so far {_rss_mib():,.0f} MiB")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at end: {_load()}")


if __name__ == "__main__":
    main()
