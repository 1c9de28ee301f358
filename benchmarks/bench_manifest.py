#!/usr/bin/env python3
"""Benchmark manifest build, verify --data, manifest I/O and signing against limits and peers.

Run from the repository (``provenance`` importable, or installed)::

    python benchmarks/bench_manifest.py            # full suite, about 5 minutes on 2 cores
    python benchmarks/bench_manifest.py --quick    # small corpora, a smoke test (~1 minute)
    python benchmarks/bench_manifest.py --only B4 --runs 7 --json out.json

Everything runs in ONE invocation on the SAME generated files (deterministic numpy PCG64 bytes
in a temporary directory that is deleted afterwards), so the ratios compare like with like:

- B1 ``manifest build`` on 4 x 256 MiB files, against the physical limit (hashlib on N threads,
  N = cores, ``readinto`` a reused 1 MiB buffer) and OpenSSF ``model_signing`` (API and CLI).
- B2 the same on 20,000 x 4 KiB files in 20 folders; the limit there is N pre-started processes
  running an ``os.open``/``readv`` loop over chunks of paths listed beforehand.
- B3 ``verify --data`` (signature, manifest, re-hash) against the build, on both corpora.
- B4 a 1,000,000-entry manifest: write, then load and check (digest, Merkle root, order,
  canonical form, per-entry schema), against a msgspec typed decode of the same file.
- B8 signing and verifying a card (DSSE over the statement) against raw ``cryptography``.

Method. Library measurements run in a fresh child process each and time only the call (the
child's interpreter start and imports are excluded). CLI measurements time the whole process, as
a user sees it, from cached bytecode as an installed package runs. The jobs of a figure are
warmed up once, then run in turn (round-robin) ``--runs`` times; a time is the median of its
runs, and a ratio the median of its per-round ratios, so a change of machine load between
rounds does not skew it. Peak RSS (largest process) comes from GNU ``time`` when installed. The
machine is shared: the load average is printed at start and end.

Needs the ``bench`` extra for the peer (``pip install -e .[bench]``: model-signing, pyopenssl);
without it the model_signing rows are skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20
NOW = "2026-11-29T00:00:00Z"


# ----------------------------------------------------------------------------------------------
# Child-process measurements: ``bench_manifest.py --child KIND ARGS...`` prints {"seconds": s}.


def _list_files(directory: str) -> list[str]:
    """The limits' file list (not timed in the call; timed as part of the process)."""
    return sorted(
        os.path.join(folder, name) for folder, _, names in os.walk(directory) for name in names
    )


def _child_limit_threads(directory: str, workers: str) -> float:
    """The large-file limit: hashlib on N threads, readinto a reused 1 MiB buffer per thread."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    paths = _list_files(directory)
    local = threading.local()

    def digest(path: str) -> str:
        buffer = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = bytearray(MiB)
        view = memoryview(buffer)
        h = hashlib.sha256()
        with open(path, "rb", buffering=0) as f:
            while count := f.readinto(view):
                h.update(view[:count])
        return h.hexdigest()

    with ThreadPoolExecutor(int(workers)) as pool:
        list(pool.map(str, range(int(workers))))  # start the threads before timing
        start = time.perf_counter()
        list(pool.map(digest, paths))
        return time.perf_counter() - start


def _limit_chunk(paths: list[str]) -> list[str]:
    buffer = _limit_chunk.__dict__.setdefault("buffer", bytearray(MiB))
    view = memoryview(buffer)
    out = []
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        h = hashlib.sha256()
        while count := os.readv(fd, [view]):
            h.update(view[:count])
        os.close(fd)
        out.append(h.hexdigest())
    return out


def _child_limit_processes(directory: str, workers: str) -> float:
    """The small-file limit: N pre-started processes, os.open + readv loop, chunks of paths."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    paths = _list_files(directory)
    n = int(workers)
    chunk = max(1, min(1000, len(paths) // (n * 4) or 1))
    chunks = [paths[i : i + chunk] for i in range(0, len(paths), chunk)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(n, mp_context=context) as pool:
        list(pool.map(_limit_chunk, [[]] * (n * 2)))  # pre-start the processes
        start = time.perf_counter()
        list(pool.map(_limit_chunk, chunks))
        return time.perf_counter() - start


def _child_prov_build(directory: str, output: str, workers: str) -> float:
    from provenance import manifest

    start = time.perf_counter()
    entries = manifest.build_from_directory(
        Path(directory), workers=int(workers), exclude={os.path.realpath(output)}
    )
    manifest.write_manifest(entries, Path(output))
    return time.perf_counter() - start


def _child_prov_build_fp(directory: str, output: str, workers: str) -> float:
    from provenance import fpindex, manifest

    start = time.perf_counter()
    sidecar = fpindex.sidecar_path(Path(output))
    prints: dict[str, Any] = {}
    entries = manifest.build_from_directory(
        Path(directory),
        workers=int(workers),
        exclude={os.path.realpath(output), os.path.realpath(sidecar)},
        prints=prints,
    )
    summary = manifest.write_manifest(entries, Path(output))
    fpindex.write_sidecar_for(entries, summary.digest, prints, sidecar)
    return time.perf_counter() - start


def _child_prov_verify(
    card: str, trust: str, manifest_path: str, directory: str, workers: str
) -> float:
    from provenance import card as card_module
    from provenance._files import read_bytes
    from provenance.envelope import Envelope
    from provenance.trust import TrustStore, parse_time
    from provenance.verify import verify

    start = time.perf_counter()
    store = TrustStore.from_json(read_bytes(Path(trust), limit=1 << 22), what=trust)
    document = card_module.unverified_card_document(
        read_bytes(Path(card), limit=card_module.MAX_CARD_BYTES), what=card
    )
    assert isinstance(document, Envelope)
    report = verify(
        document,
        store,
        at=parse_time(NOW, what="now"),
        what=card,
        manifest_path=Path(manifest_path),
        data_dir=Path(directory),
        workers=int(workers),
    )
    seconds = time.perf_counter() - start
    if not report.ok:
        raise SystemExit(f"verify failed: {report.to_dict()}")
    return seconds


def _child_ms_hash(directory: str) -> float:
    from model_signing import hashing

    start = time.perf_counter()
    hashing.Config().hash(directory)
    return time.perf_counter() - start


_Hex64 = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$", min_length=64, max_length=64)]
_Text = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class BenchEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """The baseline's entry type: the constraints of schemas/manifest-entry.v1.json."""

    id: _Text
    sha256: _Hex64
    size: Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)] | None = None
    source: _Text | None = None
    url: _Text | None = None
    license: _Text | None = None
    rightsHolder: _Text | None = None  # noqa: N815
    textSha256: _Hex64 | None = None  # noqa: N815


def _b4_struct() -> type[BenchEntry]:
    return BenchEntry


def _child_b4_msgspec_lines(path: str) -> float:
    """Baseline: msgspec typed decode, one ``decode`` call per line."""
    import msgspec

    decoder = msgspec.json.Decoder(_b4_struct())
    start = time.perf_counter()
    with open(path, "rb") as f:
        entries = [decoder.decode(line) for line in f]
    seconds = time.perf_counter() - start
    assert entries
    return seconds


def _child_b4_msgspec_whole(path: str) -> float:
    """Baseline: msgspec typed decode of the whole file at once (``decode_lines``)."""
    import msgspec

    decoder = msgspec.json.Decoder(_b4_struct())
    start = time.perf_counter()
    with open(path, "rb") as f:
        entries = decoder.decode_lines(f.read())
    seconds = time.perf_counter() - start
    assert entries
    return seconds


def _child_b4_load(path: str) -> float:
    from provenance.manifest import read_manifest

    start = time.perf_counter()
    loaded = read_manifest(Path(path))
    seconds = time.perf_counter() - start
    assert loaded.summary.entries == len(loaded.entries)
    return seconds


def _child_b4_iter(path: str) -> float:
    from provenance.manifest import iter_manifest

    start = time.perf_counter()
    count = sum(1 for _ in iter_manifest(Path(path)))
    seconds = time.perf_counter() - start
    assert count
    return seconds


def _child_b4_write(source: str, output: str) -> float:
    import msgspec

    from provenance.manifest import ManifestEntry, write_manifest

    entries = msgspec.json.Decoder(ManifestEntry).decode_lines(Path(source).read_bytes())
    start = time.perf_counter()
    write_manifest(entries, Path(output))
    seconds = time.perf_counter() - start
    if Path(output).read_bytes() != Path(source).read_bytes():
        raise SystemExit("write_manifest output differs from the generated manifest")
    return seconds


def _child_b4_baseline_write(source: str, output: str) -> float:
    """Baseline: msgspec encode_lines of the same entries, write and fsync (no checks)."""
    import msgspec

    struct = _b4_struct()
    entries = msgspec.json.Decoder(struct).decode_lines(Path(source).read_bytes())
    encoder = msgspec.json.Encoder(order="sorted")
    start = time.perf_counter()
    with open(output, "wb") as f:
        f.write(encoder.encode_lines(entries))
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - start


def _child_b4_jsonschema(path: str, sample: str) -> float:
    """Informational: per-entry jsonschema on a sample, extrapolated to the whole file."""
    import jsonschema

    schema = json.loads((REPO / "provenance" / "schemas" / "manifest-entry.v1.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    total = 0
    with open(path, "rb") as f:
        for line in f:
            total += 1
            if len(lines) < int(sample):
                lines.append(line)
    start = time.perf_counter()
    for line in lines:
        validator.validate(json.loads(line))
    return (time.perf_counter() - start) * total / len(lines)


CHILDREN: dict[str, Callable[..., float]] = {
    "limit-threads": _child_limit_threads,
    "limit-processes": _child_limit_processes,
    "prov-build": _child_prov_build,
    "prov-build-fp": _child_prov_build_fp,
    "prov-verify": _child_prov_verify,
    "ms-hash": _child_ms_hash,
    "b4-msgspec-lines": _child_b4_msgspec_lines,
    "b4-msgspec-whole": _child_b4_msgspec_whole,
    "b4-load": _child_b4_load,
    "b4-iter": _child_b4_iter,
    "b4-write": _child_b4_write,
    "b4-baseline-write": _child_b4_baseline_write,
    "b4-jsonschema": _child_b4_jsonschema,
}


# ----------------------------------------------------------------------------------------------
# Running and timing


@dataclass
class Sample:
    seconds: float  # the call (child) or the whole process (CLI)
    wall: float  # the whole process
    rss_mib: float  # peak RSS of the largest process in the tree


@dataclass
class Result:
    name: str
    samples: list[Sample]

    @property
    def seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def rss_mib(self) -> float:
        return max((s.rss_mib for s in self.samples), default=float("nan"))


def paired(numerator: Result, denominator: Result, *, wall: bool = False) -> float:
    """Median over the rounds of numerator / denominator (same round: same machine load).

    ``wall`` takes the numerator's whole-process time instead of its call time.
    """
    return statistics.median(
        (a.wall if wall else a.seconds) / b.seconds
        for a, b in zip(numerator.samples, denominator.samples, strict=True)
    )


PYCACHE: Path | None = None  # set by main(): a bytecode cache inside the temporary directory


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.pop("PROVENANCE_NOW", None)
    if PYCACHE is not None:
        # As an installed package runs: from cached bytecode (the warm-up run writes it), even
        # where PYTHONDONTWRITEBYTECODE is set (it would recompile every module at every start).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


_TIME = shutil.which("time", path="/usr/bin:/bin")
_RSS_MARK = "@@maxrss-kib="


def _run(cmd: Sequence[str], *, child: bool) -> Sample:
    """Run ``cmd``; its peak RSS comes from GNU time when installed (NaN otherwise).

    Not from wait4 here: Linux carries a process's pre-exec high-water mark across exec, so a
    child forked from this (big) process would report this process's RSS as its own peak.
    GNU time is small, so the commands it runs start from a small mark.
    """
    wrapped = [_TIME, "-f", f"{_RSS_MARK}%M", *cmd] if _TIME else list(cmd)
    start = time.perf_counter()
    done = subprocess.run(wrapped, capture_output=True, env=_env(), cwd=REPO, check=False)
    wall = time.perf_counter() - start
    err = done.stderr.decode(errors="replace")
    rss = float("nan")
    if _TIME and _RSS_MARK in err:
        err, _, mark = err.rpartition(_RSS_MARK)
        rss = int(mark.split()[0]) / 1024
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {done.returncode}: {err[-2000:]}")
    seconds = json.loads(done.stdout.splitlines()[-1])["seconds"] if child else wall
    return Sample(seconds, wall, rss)


@dataclass
class Job:
    key: str
    name: str
    cmd: list[str]
    child: bool = False


def measure_group(jobs: Sequence[Job], runs: int) -> dict[str, Result]:
    """Warm each job up once, then run them all in turn ``runs`` times (round-robin).

    Interleaving matters on a shared machine: when the load changes, it changes for every
    job of the group alike, so the ratios between them stay meaningful.
    """
    for job in jobs:
        _run(job.cmd, child=job.child)
    samples: dict[str, list[Sample]] = {job.key: [] for job in jobs}
    for _ in range(runs):
        for job in jobs:
            samples[job.key].append(_run(job.cmd, child=job.child))
    results = {job.key: Result(job.name, samples[job.key]) for job in jobs}
    for job in jobs:
        result = results[job.key]
        shown = f"{result.seconds:.3f} s" + (f" (process {result.wall:.3f} s)" if job.child else "")
        print(f"  {job.name:56s} {shown}", flush=True)
    return results


def child_cmd(kind: str, *args: object) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--child", kind, *map(str, args)]


def prov_cmd(*args: object) -> list[str]:
    return [sys.executable, "-m", "provenance", *map(str, args)]


def model_signing_cli() -> str | None:
    found = shutil.which("model_signing", path=str(Path(sys.executable).parent))
    return found or shutil.which("model_signing")


def have_model_signing() -> bool:
    """model_signing and pyOpenSSL (which 1.1.1 imports without declaring it) are installed."""
    import importlib.util

    return all(importlib.util.find_spec(name) for name in ("model_signing", "OpenSSL"))


# ----------------------------------------------------------------------------------------------
# Corpora


def _random_bytes(seed: int, size: int) -> bytes:
    try:
        import numpy as np
    except ImportError:  # deterministic fallback without numpy
        return hashlib.shake_256(seed.to_bytes(8, "little")).digest(size)
    return np.random.Generator(np.random.PCG64(seed)).bytes(size)


def make_large(root: Path, count: int, size: int) -> None:
    root.mkdir(parents=True)
    for i in range(count):
        (root / f"part-{i:02d}.bin").write_bytes(_random_bytes(1000 + i, size))


def make_small(root: Path, count: int, size: int, folders: int) -> None:
    data = _random_bytes(7, count * size)
    per = -(-count // folders)
    for f in range(folders):
        folder = root / f"folder-{f:02d}"
        folder.mkdir(parents=True)
        for i in range(f * per, min(count, (f + 1) * per)):
            (folder / f"file-{i:06d}.bin").write_bytes(data[i * size : (i + 1) * size])


def make_manifest(path: Path, count: int) -> None:
    """A canonical manifest of ``count`` entries, sorted by (sha256, id), written with msgspec."""
    import msgspec

    struct = _b4_struct()
    entries = []
    for i in range(count):
        entries.append(
            struct(
                id=f"shard-{i % 1000:04d}/doc-{i:08d}.txt",
                sha256=hashlib.sha256(i.to_bytes(8, "little")).hexdigest(),
                size=1000 + (i * 7919) % 100_000,
            )
        )
    entries.sort(key=lambda e: (e.sha256, e.id))
    path.write_bytes(msgspec.json.Encoder(order="sorted").encode_lines(entries))


def make_card(work: Path, manifest_path: Path, name: str) -> tuple[Path, Path]:
    """Key, trust store, spec (one source claiming ``**``), card and signature, via the CLI."""
    key = work / "keys" / "publisher"
    trust = work / "keys" / "trust.json"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        _run(prov_cmd("key", "generate", key), child=False)
        _run(
            prov_cmd(
                "trust",
                "add",
                trust,
                f"{key}.pub",
                "--name",
                "Bench",
                "--role",
                "dataset-publisher",
            ),
            child=False,
        )
    spec = work / f"spec-{name}.json"
    spec.write_text(
        json.dumps(
            {
                "name": f"bench-{name}",
                "version": "1.0.0",
                "description": "Generated benchmark corpus",
                "publisher": {"name": "Bench"},
                "sources": [
                    {
                        "id": "generated",
                        "name": "Generated bytes",
                        "kind": "synthetic",
                        "license": "CC0-1.0",
                        "paths": ["**"],
                    }
                ],
            }
        )
    )
    card = work / f"card-{name}.json"
    signed = work / f"card-{name}.signed.json"
    _run(
        prov_cmd("card", "build", spec, "--manifest", manifest_path, "-o", card, "--now", NOW),
        child=False,
    )
    _run(prov_cmd("card", "sign", card, "--key", key, "-o", signed), child=False)
    return signed, trust


def make_p256_key(work: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private, public = work / "p256.pem", work / "p256.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


# ----------------------------------------------------------------------------------------------
# Report


@dataclass
class Row:
    bench: str
    what: str
    seconds: float
    rate: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None
    rss_mib: float | None = None


def _line(*cells: str) -> str:
    widths = (5, -58, 9, 16, 7, 8, 4, 8)
    return " ".join(
        f"{c:<{-w}}" if w < 0 else f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)
    )


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def ratio(
        self, bench: str, what: str, ratio: float, goal: float | None, *, higher_is_better: bool
    ) -> None:
        met = None if goal is None else (ratio >= goal if higher_is_better else ratio <= goal)
        sign = ">=" if higher_is_better else "<="
        self.add(
            Row(bench, what, float("nan"), "", ratio, f"{sign} {goal}" if goal else "info", met)
        )
        self.summary.setdefault("ratios", {})[f"{bench} {what}"] = {
            "ratio": round(ratio, 3),
            "goal": f"{sign} {goal}" if goal else None,
            "met": met,
        }

    def print(self) -> None:
        print()
        header = _line("bench", "what", "median s", "rate", "ratio", "goal", "met", "RSS MiB")
        print(header)
        print("-" * len(header))
        for r in self.rows:
            seconds = "" if r.seconds != r.seconds else f"{r.seconds:9.3f}"
            ratio = "" if r.ratio is None else f"{r.ratio:7.2f}"
            met = "" if r.met is None else ("yes" if r.met else "NO")
            rss = "" if r.rss_mib is None or r.rss_mib != r.rss_mib else f"{r.rss_mib:8.0f}"
            print(_line(r.bench, r.what, seconds, r.rate, ratio, r.goal, met, rss))


def _mib(value: float) -> float | None:
    return None if value != value else round(value, 1)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us/op"


def _gbps(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / 1e9:.2f} GB/s"


def _fps(files: int, seconds: float) -> str:
    return f"{files / seconds / 1e3:.1f} k files/s"


# ----------------------------------------------------------------------------------------------
# Benchmarks


@dataclass
class Sizes:
    large_count: int
    large_size: int
    small_count: int
    small_size: int
    small_folders: int
    manifest_entries: int


FULL = Sizes(4, 256 * MiB, 20_000, 4096, 20, 1_000_000)
QUICK = Sizes(4, 32 * MiB, 4_000, 4096, 20, 100_000)


def _result_json(results: dict[str, Result], nbytes: int, files: int) -> dict[str, Any]:
    return {
        key: {
            "seconds": round(value.seconds, 4),
            "process_seconds": round(value.wall, 4),
            "GB_per_s": round(nbytes / value.seconds / 1e9, 3),
            "files_per_s": round(files / value.seconds),
            "peak_rss_mib": _mib(value.rss_mib),
        }
        for key, value in results.items()
    }


def build_jobs(bench: str, corpus: Path, out: Path, workers: int, limit_kind: str) -> list[Job]:
    manifest_path = out / f"{bench}.manifest.jsonl"
    return [
        Job(
            "limit",
            f"limit ({limit_kind}, {workers})",
            child_cmd(limit_kind, corpus, workers),
            True,
        ),
        Job(
            "lib",
            "library build_from_directory + write_manifest",
            child_cmd("prov-build", corpus, manifest_path, workers),
            True,
        ),
        Job(
            "lib_fp",
            "library, with fingerprints (+ sidecar)",
            child_cmd("prov-build-fp", corpus, manifest_path, workers),
            True,
        ),
        Job(
            "cli_nofp",
            "CLI manifest build --no-fingerprints",
            prov_cmd("manifest", "build", corpus, "-o", manifest_path, "--no-fingerprints"),
        ),
        Job(
            "cli",
            "CLI manifest build (default: fingerprints)",
            prov_cmd("manifest", "build", corpus, "-o", manifest_path),
        ),
    ]


def bench_build(
    report: Report,
    bench: str,
    corpus: Path,
    out: Path,
    nbytes: int,
    files: int,
    runs: int,
    workers: int,
    ms: bool,
    p256: tuple[Path, Path] | None,
    *,
    limit_kind: str,
    goal_limit: float,
    goal_ms: float,
) -> dict[str, Result]:
    rate = (lambda s: _gbps(nbytes, s)) if bench == "B1" else (lambda s: _fps(files, s))
    jobs = build_jobs(bench, corpus, out, workers, limit_kind)
    cli = model_signing_cli()
    if ms:
        jobs.append(
            Job(
                "ms_api",
                "model_signing API hashing.Config().hash()",
                child_cmd("ms-hash", corpus),
                True,
            )
        )
        if cli and p256:
            signature = out / f"{bench}.ms.sig"
            jobs.append(
                Job(
                    "ms_cli",
                    "model_signing CLI sign key (P-256)",
                    [
                        cli,
                        "sign",
                        "key",
                        "--private_key",
                        str(p256[0]),
                        "--signature",
                        str(signature),
                        str(corpus),
                    ],
                )
            )
    r = measure_group(jobs, runs)
    for key, label in (
        ("limit", f"limit: hashlib {limit_kind} x{workers} (call)"),
        ("lib", "library build, no fingerprints (call)"),
        ("lib_fp", "library build with fingerprints + sidecar (call)"),
        ("cli_nofp", "CLI manifest build --no-fingerprints (process)"),
        ("cli", "CLI manifest build, default (process)"),
        ("ms_api", "model_signing API Config().hash (call)"),
        ("ms_cli", "model_signing CLI sign key (process)"),
    ):
        if key in r:
            report.add(
                Row(bench, label, r[key].seconds, rate(r[key].seconds), rss_mib=r[key].rss_mib)
            )
    limit = r["limit"]
    report.add(Row(bench, "limit as a process (incl. interpreter start)", limit.wall))
    ratios: list[tuple[str, float, float | None]] = [
        ("library vs limit (call vs call)", paired(limit, r["lib"]), goal_limit),
        ("library+fingerprints vs limit", paired(limit, r["lib_fp"]), None),
        (
            "CLI --no-fingerprints vs limit as a process",
            paired(limit, r["cli_nofp"], wall=True),
            goal_limit,
        ),
        ("CLI default vs limit as a process", paired(limit, r["cli"], wall=True), goal_limit),
        ("CLI --no-fingerprints vs limit (call only, strict)", paired(limit, r["cli_nofp"]), None),
    ]
    if "ms_api" in r:
        ratios.append(("library vs model_signing API", paired(r["ms_api"], r["lib"]), goal_ms))
    if "ms_cli" in r:
        ms_cli = r["ms_cli"]
        ratios.append(("CLI default vs model_signing CLI", paired(ms_cli, r["cli"]), goal_ms))
        ratios.append(
            ("CLI --no-fingerprints vs model_signing CLI", paired(ms_cli, r["cli_nofp"]), goal_ms)
        )
    for label, value, goal in ratios:
        report.ratio(bench, label, value, goal, higher_is_better=True)
    report.summary[bench] = {
        "bytes": nbytes,
        "files": files,
        "workers": workers,
        **_result_json(r, nbytes, files),
    }
    return r


def bench_verify(
    report: Report,
    bench: str,
    work: Path,
    corpus: Path,
    out: Path,
    runs: int,
    workers: int,
    ms: bool,
    p256: tuple[Path, Path] | None,
    limit_kind: str,
) -> None:
    """verify --data against the build, both run in the same rounds (interleaved)."""
    manifest_path = out / f"{bench}.manifest.jsonl"
    card, trust = make_card(work, manifest_path, bench)
    builds = [
        j
        for j in build_jobs(bench, corpus, out / "rebuild", workers, limit_kind)
        if j.key != "limit"
    ]
    (out / "rebuild").mkdir(exist_ok=True)
    jobs = [
        *builds,
        Job(
            "lib_verify",
            f"library verify --data ({bench} corpus)",
            child_cmd("prov-verify", card, trust, manifest_path, corpus, workers),
            True,
        ),
        Job(
            "cli_verify",
            f"CLI verify --manifest --data ({bench} corpus)",
            prov_cmd(
                "verify",
                card,
                "--trust",
                trust,
                "--manifest",
                manifest_path,
                "--data",
                corpus,
                "--now",
                NOW,
            ),
        ),
    ]
    sig = out / f"{bench}.ms.sig"
    cli_ms = model_signing_cli()
    if ms and cli_ms and p256 and sig.exists():
        jobs.append(
            Job(
                "ms_verify",
                f"model_signing CLI verify key ({bench} corpus)",
                [
                    cli_ms,
                    "verify",
                    "key",
                    "--public_key",
                    str(p256[1]),
                    "--signature",
                    str(sig),
                    str(corpus),
                ],
            )
        )
    r = measure_group(jobs, runs)
    for key, label in (
        ("lib_verify", "library verify (call)"),
        ("cli_verify", "CLI verify --data (process)"),
        ("ms_verify", "model_signing CLI verify key (process)"),
    ):
        if key in r:
            report.add(Row("B3", f"{bench}: {label}", r[key].seconds, rss_mib=r[key].rss_mib))
    lib, cli = r["lib_verify"], r["cli_verify"]
    for label, value in (
        ("library verify / library build", paired(lib, r["lib"])),
        ("CLI verify / CLI build --no-fingerprints", paired(cli, r["cli_nofp"])),
        ("CLI verify / CLI build (default)", paired(cli, r["cli"])),
    ):
        report.ratio("B3", f"{bench}: {label}", value, 1.15, higher_is_better=False)
    if "ms_verify" in r:
        report.ratio(
            "B3",
            f"{bench}: CLI verify vs model_signing verify",
            paired(r["ms_verify"], cli),
            None,
            higher_is_better=True,
        )
    report.summary.setdefault("B3", {})[bench] = {
        key: {"seconds": round(value.seconds, 4), "peak_rss_mib": _mib(value.rss_mib)}
        for key, value in r.items()
    }


def bench_manifest_io(report: Report, work: Path, entries: int, runs: int) -> None:
    source = work / "b4-source.jsonl"
    make_manifest(source, entries)
    size = source.stat().st_size
    written = work / "b4-written.jsonl"
    base_written = work / "b4-baseline.jsonl"
    labels = {
        "write": "provenance write_manifest (checks, digest, root, fsync)",
        "base_write": "baseline: msgspec encode_lines + write + fsync",
        "lines": "baseline: msgspec typed decode per line",
        "whole": "baseline: msgspec typed decode_lines, whole file",
        "load": "provenance read_manifest (load + check + digest + root)",
        "iter": "provenance iter_manifest (load + check, no root)",
    }
    commands = {
        "write": child_cmd("b4-write", source, written),
        "base_write": child_cmd("b4-baseline-write", source, base_written),
        "lines": child_cmd("b4-msgspec-lines", source),
        "whole": child_cmd("b4-msgspec-whole", source),
        "load": child_cmd("b4-load", source),
        "iter": child_cmd("b4-iter", source),
    }
    r = measure_group([Job(k, labels[k], commands[k], True) for k in labels], runs)
    schema = measure_group(
        [
            Job(
                "schema",
                "jsonschema per entry (10k sample, extrapolated)",
                child_cmd("b4-jsonschema", source, 10_000),
                True,
            )
        ],
        1,
    )["schema"]
    rate = lambda s: f"{entries / s / 1e6:.2f} M entries/s"  # noqa: E731
    for key, label in labels.items():
        report.add(Row("B4", label, r[key].seconds, rate(r[key].seconds), rss_mib=r[key].rss_mib))
    report.add(
        Row(
            "B4",
            "info: jsonschema per entry (extrapolated from 10k)",
            schema.seconds,
            rate(schema.seconds),
        )
    )
    for label, value, goal in (
        ("load+check (iter_manifest) / msgspec per-line", paired(r["iter"], r["lines"]), 1.5),
        ("load+check+digest+root (read_manifest) / per-line", paired(r["load"], r["lines"]), 1.5),
        ("load+check+digest+root / msgspec decode_lines", paired(r["load"], r["whole"]), None),
        ("write / msgspec encode+write+fsync", paired(r["write"], r["base_write"]), 2.5),
    ):
        report.ratio("B4", label, value, goal, higher_is_better=False)
    report.summary["B4"] = {
        "entries": entries,
        "file_bytes": size,
        **{
            k: {"seconds": round(v.seconds, 4), "peak_rss_mib": _mib(v.rss_mib)}
            for k, v in r.items()
        },
        "jsonschema_per_entry_extrapolated_seconds": round(schema.seconds, 3),
    }


def _median_time(fn: Callable[[], object], repeat: int, number: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times)


def _raw_sign_verify(algorithm: str, digest: bytes) -> Callable[[], None]:
    """Raw cryptography: sign and verify a 32-byte root (the baseline of B8)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if algorithm == "ed25519":
        ed_private = ed25519.Ed25519PrivateKey.generate()
        ed_public = ed_private.public_key()
        return lambda: ed_public.verify(ed_private.sign(digest), digest)
    ec_private = ec.generate_private_key(ec.SECP256R1())
    ec_public = ec_private.public_key()
    ecdsa = ec.ECDSA(hashes.SHA256())
    return lambda: ec_public.verify(ec_private.sign(digest, ecdsa), digest, ecdsa)


def _dsse_sign_verify(key: Any, payload: bytes) -> Callable[[], None]:
    """Ours: DSSE-sign the card payload, serialise, parse and verify the envelope."""
    from provenance.card import PAYLOAD_TYPE
    from provenance.envelope import Envelope, sign_envelope, verify_envelope

    keys = {key.keyid: key.public}

    def run() -> None:
        envelope = sign_envelope(PAYLOAD_TYPE, payload, [key])
        parsed = Envelope.from_json(envelope.to_json(), what="card")
        verify_envelope(parsed, keys, payload_type=PAYLOAD_TYPE)

    return run


def bench_signing(report: Report, work: Path, runs: int) -> None:
    from provenance import card as card_module
    from provenance._files import read_bytes
    from provenance.envelope import Envelope
    from provenance.keys import PrivateKey
    from provenance.trust import TrustStore, parse_time

    signed_path = next(iter(sorted(work.glob("card-*.signed.json"))), None)
    if signed_path is None:
        return
    trust = TrustStore.from_json(
        read_bytes(work / "keys" / "trust.json", limit=1 << 22), what="trust"
    )
    document = card_module.unverified_card_document(
        read_bytes(signed_path, limit=1 << 26), what="card"
    )
    assert isinstance(document, Envelope)
    payload = document.payload
    at = parse_time(NOW, what="now")
    result: dict[str, Any] = {"payload_bytes": len(payload)}
    for algorithm in ("ed25519", "ecdsa-p256"):
        raw = _raw_sign_verify(algorithm, hashlib.sha256(payload).digest())
        ours = _dsse_sign_verify(PrivateKey.generate(algorithm), payload)  # type: ignore[arg-type]
        t_raw = _median_time(raw, max(runs, 5), 200)
        t_ours = _median_time(ours, max(runs, 5), 200)
        overhead = (t_ours - t_raw) * 1000
        report.add(
            Row("B8", f"{algorithm}: raw cryptography sign+verify (32 B)", t_raw, _us(t_raw))
        )
        report.add(
            Row("B8", f"{algorithm}: DSSE sign + serialise + parse + verify", t_ours, _us(t_ours))
        )
        report.ratio(
            "B8", f"{algorithm}: overhead ms vs raw", overhead, 5.0, higher_is_better=False
        )
        result[algorithm] = {"raw_s": t_raw, "ours_s": t_ours, "overhead_ms": round(overhead, 4)}
    t_card = _median_time(
        lambda: card_module.verify_card(document, trust, at=at, what="card"), max(runs, 5), 50
    )
    report.add(
        Row("B8", "verify_card: signature + statement/predicate schemas", t_card, _us(t_card))
    )
    report.ratio(
        "B8", "verify_card total ms (incl. jsonschema)", t_card * 1000, 5.0, higher_is_better=False
    )
    result["verify_card_ms"] = round(t_card * 1000, 4)
    report.summary["B8"] = result


def bench_startup(report: Report, runs: int) -> None:
    jobs = [
        Job("python", "python -c pass", [sys.executable, "-c", "pass"]),
        Job("help", "provenance --help", prov_cmd("--help")),
        Job(
            "build_help",
            "provenance manifest build --help",
            prov_cmd("manifest", "build", "--help"),
        ),
        Job("verify_help", "provenance verify --help", prov_cmd("verify", "--help")),
    ]
    cli = model_signing_cli()
    if cli:
        jobs.append(Job("ms_help", "model_signing --help", [cli, "--help"]))
    results = measure_group(jobs, max(runs, 5))
    for job in jobs:
        report.add(Row("start", job.name, results[job.key].seconds))
    report.summary["startup_seconds"] = {
        job.name: round(results[job.key].seconds, 4) for job in jobs
    }


def _load() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "n/a"


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    import ssl

    out["openssl"] = ssl.OPENSSL_VERSION
    for name in ("msgspec", "cryptography", "model-signing", "numpy", "jsonschema"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small corpora (a smoke test)")
    parser.add_argument("--runs", type=int, default=5, help="timed rounds per figure (median)")
    parser.add_argument("--only", default="start,B1,B2,B3,B4,B8", help="comma-separated subset")
    parser.add_argument(
        "--no-model-signing", action="store_true", help="skip the model_signing peer"
    )
    parser.add_argument("--workdir", type=Path, help="where to generate (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the JSON summary here")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    if args.child:
        kind, *rest = args.child
        print(json.dumps({"seconds": CHILDREN[kind](*rest)}))
        return 0
    sizes = QUICK if args.quick else FULL
    only = set(args.only.split(","))
    workers = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    ms = not args.no_model_signing and have_model_signing()
    report = Report()
    report.summary["machine"] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": workers,
        "cpu": platform.processor() or platform.machine(),
        "load_at_start": _load(),
        **_versions(),
    }
    report.summary["mode"] = "quick" if args.quick else "full"
    report.summary["runs"] = args.runs
    mode = report.summary["mode"]
    print(f"bench_manifest: {mode} mode, {workers} cores, load {_load()}, runs {args.runs}")
    if not ms:
        print("  (model_signing not installed or --no-model-signing: peer rows skipped)")
    base = Path(tempfile.mkdtemp(prefix="provenance-bench-", dir=args.workdir))
    global PYCACHE
    PYCACHE = base / "pycache"
    try:
        work, out = base, base / "out"
        out.mkdir()
        p256 = make_p256_key(work) if ms else None
        if "start" in only:
            print("start-up:")
            bench_startup(report, args.runs)
        large, small = base / "large", base / "small"
        if {"B1", "B3"} & only:
            print(f"generating {sizes.large_count} x {sizes.large_size // MiB} MiB ...", flush=True)
            make_large(large, sizes.large_count, sizes.large_size)
        if {"B2", "B3"} & only:
            count, size, folders = sizes.small_count, sizes.small_size, sizes.small_folders
            print(f"generating {count} x {size} B in {folders} folders ...", flush=True)
            make_small(small, sizes.small_count, sizes.small_size, sizes.small_folders)
        os.sync()
        builds: dict[str, dict[str, Result]] = {}
        if {"B1", "B3"} & only:
            print("B1 large files:")
            builds["B1"] = bench_build(
                report,
                "B1",
                large,
                out,
                sizes.large_count * sizes.large_size,
                sizes.large_count,
                args.runs,
                workers,
                ms,
                p256,
                limit_kind="limit-threads",
                goal_limit=0.85,
                goal_ms=1.0,
            )
        if {"B2", "B3"} & only:
            print("B2 small files:")
            builds["B2"] = bench_build(
                report,
                "B2",
                small,
                out,
                sizes.small_count * sizes.small_size,
                sizes.small_count,
                args.runs,
                workers,
                ms,
                p256,
                limit_kind="limit-processes",
                goal_limit=0.7,
                goal_ms=5.0,
            )
        if "B3" in only:
            print("B3 verify --data:")
            for bench, corpus, kind in (
                ("B1", large, "limit-threads"),
                ("B2", small, "limit-processes"),
            ):
                bench_verify(report, bench, work, corpus, out, args.runs, workers, ms, p256, kind)
        if "B4" in only:
            print(f"B4 manifest I/O, {sizes.manifest_entries} entries:")
            bench_manifest_io(report, work, sizes.manifest_entries, args.runs)
        if "B8" in only:
            print("B8 signing:")
            if not any(work.glob("card-*.signed.json")):
                make_manifest(out / "b8.jsonl", 10)
                make_card(work, out / "b8.jsonl", "b8")
            bench_signing(report, work, args.runs)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report.summary["machine"]["load_at_end"] = _load()
    report.print()
    print()
    print(f"load average at start {report.summary['machine']['load_at_start']}, at end {_load()}")
    text = json.dumps(report.summary, indent=2, sort_keys=True)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
