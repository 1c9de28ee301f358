"""Hashing speed of the creator's page in Chromium (issue 10: "the page hashing >= 300 MiB/s").

Generated files (default 256 MiB and 1 GiB) are chosen in the page as a creator would (Playwright
driving Debian's Chromium, headless; the page served by the real registry app of the page
tests on 127.0.0.1, with no cards). The page's paths (provenance/registry/static/digest.js), with
the limits it takes from navigator.deviceMemory (limits.js; Chromium reports 8 here, so 1 GiB for
the file and 512 MiB for its normalized text):

- a file within both limits: both digests from one read in one worker, which hands a copy of
  the bytes to the other worker for SHA-256 (WebCrypto's digest() copies and hashes on the
  calling thread) while it normalizes them in place (runs of ASCII through the WebAssembly fast
  path) and hashes the normalized text; with ``--query split-min=N`` the second part of a text
  is normalized by the other worker instead (``text_halves`` in the JSON);
- above: two workers, SHA-256 (WebCrypto up to its limit, hash-wasm streamed above) and
  norm-text-v1 (in memory up to its limit, streamed through hash-wasm above).

Two kinds of file: ``binary`` (random bytes: the text job stops at the first invalid UTF-8 byte,
so the figure is SHA-256 alone) and ``text`` (ASCII prose: both digests over the whole file).
Reported per file: the SHA-256 digest's MiB/s, the norm-text digest's MiB/s, and the page's
MiB/s (size over the time from the file's row appearing to both digests done, as the creator
waits; all three timed by the page itself), with Python's hashlib on the same file as the
reference (SHA-NI here), the machine's SHA-256 speed at 8 MiB blocks in memory (hashlib and
``openssl speed -evp sha256``, the faster: the physical limit, measured after each file's runs;
each GOAL line gives the page's figure also as a fraction of it), the CPU time the browser's
processes used per GiB (user + system, all cores: less sensitive to other programs' load than
the speeds), their peak resident memory (sampled every 20 ms) and the load average when the file
was measured. ``wall_s`` in the JSON
also counts Playwright handing the file to the page. One GOAL line per file and digest.

The browser's own floor, measured alternately with the page in the same browser (``floor`` in
the table): a bare page on the same origin whose one worker (started before the file is chosen,
as the page's are) reads the file whole (``Blob.arrayBuffer()``) and hashes it with one WebCrypto
digest, nothing else; timed, as the page is, from the file input's change event to the digest's
arrival, and its digest checked against hashlib's. No page that reads the file into memory
and hashes it with WebCrypto (the fastest SHA-256 a page has) can do less, so each GOAL line
also gives the page's figure as a fraction of it.

Run:  python benchmarks/bench_page.py [--sizes 256 1024] [--kinds binary text] [--runs 3]
      [--query split-min=4194304]   (the page's test hooks, app.js: texts >= 4 MiB in two parts)
      [--phases]   (each run's timeline: when each phase of the page's jobs ended)
      [--query hash-elsewhere=0]   (the reading worker hashes the raw bytes itself)
Needs /usr/bin/chromium (apt-get install chromium) and the test extra (playwright).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.page_support import chromium, empty_registry  # noqa: E402

MIB = 1 << 20
KEYS = ("sha256_mib_s", "text_mib_s", "page_mib_s", "wall_s", "cpu_s_per_gib", "peak_rss_mib")
FLOOR_KEYS = ("floor_mib_s", "floor_read_ms", "floor_digest_ms")
SENTENCE = (
    "the quick brown fox jumps over a lazy dog while Holmes and Watson walk down Baker Street "
    "in the fog of a November evening, talking of the case of the red-headed league.\n"
)
WORDS = SENTENCE.split()


def _write(path: Path, size: int, kind: str) -> None:
    rng = np.random.default_rng(10)
    # Text: 4 MiB of words in random order, repeated (the speed does not depend on repeats).
    picks = rng.integers(0, len(WORDS), 4 * MIB // 5)
    text = " ".join(WORDS[k] for k in picks).encode()[: 4 * MIB]
    with path.open("wb") as handle:
        written = 0
        while written < size:
            block_size = min(4 * MIB, size - written)
            if kind == "binary":
                block = rng.integers(0, 256, block_size, dtype=np.uint8).tobytes()
            else:
                block = text[:block_size]
            handle.write(block)
            written += block_size


def _hashlib_mib_s(path: Path) -> tuple[float, str]:
    """Python's hashlib over the file: MiB/s, and the hex digest (the floor's must equal it)."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(16 * MIB):
            digest.update(block)
    return path.stat().st_size / MIB / (time.perf_counter() - started), digest.hexdigest()


def _sha256_limit() -> dict[str, float]:
    """The machine's SHA-256 speed (MiB/s), the physical limit of any page figure: Python's
    hashlib (OpenSSL) over one 8 MiB block in memory, hashed again for about half a second, and
    ``openssl speed -evp sha256`` at 8 MiB blocks when the command exists."""
    block = np.random.default_rng(1).integers(0, 256, 8 * MIB, dtype=np.uint8).tobytes()
    digest = hashlib.sha256()
    blocks = 0
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < 0.5:
        digest.update(block)
        blocks += 1
    limits = {"hashlib": blocks * 8 / elapsed}
    if shutil.which("openssl"):
        out = subprocess.run(
            ["openssl", "speed", "-seconds", "1", "-bytes", str(8 * MIB), "-evp", "sha256"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        # The last line: "sha256  <thousands of bytes per second>k"
        fields = out.strip().splitlines()[-1].split() if out.strip() else []
        if len(fields) == 2 and fields[1].endswith("k"):
            limits["openssl"] = float(fields[1][:-1]) * 1000 / MIB
    return limits


def _browser_processes() -> dict[int, list[str]]:
    """The /proc/PID/stat fields (after the name) of this process's descendants: the browser's."""
    stats: dict[int, list[str]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            stats[int(stat.parent.name)] = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
    parents = {pid: int(fields[1]) for pid, fields in stats.items()}
    mine = {}
    for pid, fields in stats.items():
        ancestor = parents[pid]
        while ancestor not in (0, 1, os.getpid()):
            ancestor = parents.get(ancestor, 0)
        if ancestor == os.getpid():
            mine[pid] = fields
    return mine


def _browser_cpu_s() -> float:
    """CPU seconds (user + system) used so far by the browser's processes: a figure that load
    from other programs inflates far less than time does."""
    tick = os.sysconf("SC_CLK_TCK")
    return sum((int(f[11]) + int(f[12])) / tick for f in _browser_processes().values())


class _PeakMemory(threading.Thread):
    """The largest total resident memory of the browser's processes, sampled every 20 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self.stopping.wait(0.02):
            rss = sum(int(f[21]) * page for f in _browser_processes().values())
            self.peak = max(self.peak, rss)

    def stop(self) -> int:
        self.stopping.set()
        self.join()
        return self.peak


def _measure(browser: Any, url: str, path: Path, query: str) -> dict[str, Any]:
    page = browser.new_page()
    try:
        page.goto(f"{url}?{query}" if query else url)
        page.wait_for_selector("body[data-ready=true]", state="attached")
        started = time.perf_counter()
        cpu = _browser_cpu_s()
        memory = _PeakMemory()
        memory.start()
        page.set_input_files("#files", str(path))
        # The row leaves "hashing" once both digests are done.
        page.wait_for_selector(
            "[data-testid=result]:not([data-status=hashing])", state="attached", timeout=600_000
        )
        wall = time.perf_counter() - started
        cpu = _browser_cpu_s() - cpu
        peak = memory.stop()
        row = page.locator("[data-testid=result]")
        size_mib = path.stat().st_size / MIB
        hash_ms = float(row.get_attribute("data-hash-ms") or "nan")
        text_ms = float(row.get_attribute("data-text-ms") or "nan")
        both_ms = float(row.get_attribute("data-digests-ms") or "nan")
        return {
            "method": row.get_attribute("data-hash-method"),
            "text": row.get_attribute("data-text-sha256") is not None,
            "halves": row.get_attribute("data-text-halves") == "true",
            "sha256_mib_s": size_mib / (hash_ms / 1000),
            "text_mib_s": size_mib / (text_ms / 1000),
            "page_mib_s": size_mib / (both_ms / 1000),
            "wall_s": wall,
            "cpu_s_per_gib": cpu / (path.stat().st_size / (1 << 30)),
            "peak_rss_mib": peak / MIB,
            "phases": json.loads(row.get_attribute("data-phases") or "{}"),
        }
    finally:
        page.close()


FLOOR_PAGE = """<!doctype html><meta charset="utf-8"><title>floor</title>
<input type="file" id="files">
<script>
const worker = new Worker("floor-worker.js");
worker.onmessage = (event) => {
  if (event.data.ready) { document.body.dataset.ready = "true"; return; }
  window.floorResult = { ...event.data, ms: performance.now() - window.floorStarted };
};
document.getElementById("files").addEventListener("change", (event) => {
  window.floorStarted = performance.now();
  worker.postMessage(event.target.files[0]);
});
</script>
"""
FLOOR_WORKER = """self.onmessage = async (event) => {
  const started = performance.now();
  const bytes = await event.data.arrayBuffer();
  const readMs = performance.now() - started;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  self.postMessage({ readMs, digestMs: performance.now() - started - readMs, digest: hex });
};
self.postMessage({ ready: true });
"""


def _measure_floor(browser: Any, url: str, path: Path, expected: str) -> dict[str, float]:
    """The browser's floor for `path` (see the module's docstring): MiB/s as timed by the bare
    page, and its read's and digest's milliseconds. Raises if its digest is not `expected`."""
    page = browser.new_page()
    try:
        # Served by Playwright on the registry's origin (a secure context, as the page's is);
        # the registry itself never sees these requests.
        bodies = {"floor/index.html": FLOOR_PAGE, "floor/floor-worker.js": FLOOR_WORKER}
        page.route(
            f"{url}floor/*",
            lambda route: route.fulfill(
                body=bodies[route.request.url.removeprefix(url)],
                content_type="text/html"
                if route.request.url.endswith(".html")
                else "text/javascript",
            ),
        )
        page.goto(f"{url}floor/index.html")
        page.wait_for_selector("body[data-ready=true]", state="attached")
        page.set_input_files("#files", str(path))
        page.wait_for_function("() => window.floorResult !== undefined", timeout=600_000)
        result: dict[str, Any] = page.evaluate("() => window.floorResult")
    finally:
        page.close()
    if result["digest"] != expected:
        raise SystemExit(f"the floor page's SHA-256 of {path} is not hashlib's: {result}")
    size_mib = path.stat().st_size / MIB
    return {
        "floor_mib_s": size_mib / (result["ms"] / 1000),
        "floor_read_ms": result["readMs"],
        "floor_digest_ms": result["digestMs"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], help="MiB")
    parser.add_argument("--kinds", nargs="+", default=["binary", "text"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--query",
        default="",
        help="the page's test hooks, e.g. hash-elsewhere=0 or split-min=4194304, to compare paths",
    )
    parser.add_argument(
        "--phases",
        action="store_true",
        help="also print each run's phase timeline (ms since the file's row appeared)",
    )
    args = parser.parse_args()
    results = []
    with (
        tempfile.TemporaryDirectory() as temp,
        empty_registry(Path(temp) / "registry") as registry,
        chromium() as b,
    ):
        print(f"Chromium {b.version}; {args.runs} runs each, medians")
        header = f"{'file':<16} {'sha256 via':<10} {'sha256':>9} {'norm-text':>10} {'page':>9}"
        header += f" {'floor':>9}"
        print(
            f"{header} {'hashlib':>9} {'SHA limit':>9}   (MiB/s)  browser: CPU s/GiB, peak MiB"
            "  load average"
        )
        for kind in args.kinds:
            for size in args.sizes:
                path = Path(temp) / f"{kind}-{size}.bin"
                _write(path, size * MIB, kind)
                reference, expected = _hashlib_mib_s(path)
                runs, floors = [], []
                for _ in range(args.runs):  # in turn: the machine's speed drifts over minutes
                    runs.append(_measure(b, registry.url, path, args.query))
                    floors.append(_measure_floor(b, registry.url, path, expected))
                if args.phases:
                    for floor in floors:
                        print(
                            f"  floor, {kind} {size} MiB (ms): read {floor['floor_read_ms']:.0f},"
                            f" digest {floor['floor_digest_ms']:.0f}"
                        )
                    for run in runs:
                        timeline = sorted(run["phases"].items(), key=lambda item: item[1])
                        print(
                            f"  phases, {kind} {size} MiB (ms) [load {os.getloadavg()[0]:.2f}]: "
                            + ", ".join(f"{name} {ms}" for name, ms in timeline)
                        )
                limit = _sha256_limit()
                row = {
                    "kind": kind,
                    "size_mib": size,
                    "method": runs[0]["method"],
                    "text_digest": runs[0]["text"],
                    "text_halves": runs[0]["halves"],
                    "hashlib_mib_s": reference,
                    "sha256_limit_mib_s": max(limit.values()),
                    "sha256_limits": limit,
                    "load_average": os.getloadavg()[0],
                }
                for key in KEYS:
                    row[key] = statistics.median(run[key] for run in runs)
                for key in FLOOR_KEYS:
                    row[key] = statistics.median(floor[key] for floor in floors)
                row["page_of_floor_by_run"] = [
                    run["page_mib_s"] / floor["floor_mib_s"]
                    for run, floor in zip(runs, floors, strict=True)
                ]
                results.append(row)
                text = f"{row['text_mib_s']:>10.0f}" if row["text_digest"] else f"{'(none)':>10}"
                print(
                    f"{kind + ' ' + str(size) + ' MiB':<16} {row['method']:<10}"
                    f" {row['sha256_mib_s']:>9.0f} {text} {row['page_mib_s']:>9.0f}"
                    f" {row['floor_mib_s']:>9.0f}"
                    f" {reference:>9.0f} {row['sha256_limit_mib_s']:>9.0f}"
                    f"           {row['cpu_s_per_gib']:>10.2f}"
                    f" {row['peak_rss_mib']:>10.0f}  {row['load_average']:>12.2f}"
                )
                path.unlink()
        cores = os.cpu_count()
        for row in results:
            case = f"{row['kind']} {row['size_mib']} MiB"
            goals = [("SHA-256 digest", row["sha256_mib_s"])]
            if row["text_digest"]:
                goals += [("norm-text-v1 digest", row["text_mib_s"])]
            goals += [("page, both digests as the creator waits", row["page_mib_s"])]
            limit = row["sha256_limit_mib_s"]
            floor = row["floor_mib_s"]
            by_run = ", ".join(f"{ratio:.2f}" for ratio in row["page_of_floor_by_run"])
            for name, value in goals:
                print(
                    f"GOAL page hashing, {case}, {name}: {value:.0f} MiB/s (goal >= 300 MiB/s):"
                    f" {'met' if value >= 300 else 'missed'}; {value / floor:.2f} of the"
                    f" browser's floor (read + one WebCrypto digest, {floor:.0f} MiB/s, median"
                    f" of runs alternated with the page's)"
                    f"; {value / limit:.2f} of this machine's SHA-256 ({limit:.0f} MiB/s at"
                    f" 8 MiB blocks) [load average {row['load_average']:.2f} on {cores} cores]"
                )
            print(f"  the page as the creator waits / the floor, run by run: {by_run}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
