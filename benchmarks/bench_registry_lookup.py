"""What ``registry lookup`` costs when it checks a match itself: one work matched in one card.

A made-up card of ``--entries`` entries (one of them the work) is pushed to ``registry serve``
(SQLite, on 127.0.0.1); then ``registry lookup`` of the work is timed, ``--runs`` times, with
this tree's code and, alternately, with each ``--baseline`` tree's (a ``git worktree`` of an
older commit, to see what the check adds: it downloads and reads the matched card's manifest).

Run:  python benchmarks/bench_registry_lookup.py [--entries 200000] [--runs 3]
      [--baseline /tmp/wt_old ...]
Needs the registry and test extras.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance.keys import load_private_key  # noqa: E402
from provenance.manifest import ManifestEntry  # noqa: E402
from tests.registry_support import RegistryServer, make_keys, ok, synthetic_card  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        keys = make_keys(work / "keys")
        poem = work / "poem.txt"
        poem.write_text("a poem that is in the dataset\n")
        rng = random.Random(1)
        entries = [
            ManifestEntry(id=f"d/{i:07d}.txt", sha256=f"{rng.getrandbits(256):064x}", size=i + 1)
            for i in range(args.entries - 1)
        ]
        digest = hashlib.sha256(poem.read_bytes()).hexdigest()
        entries.append(ManifestEntry(id="d/poem.txt", sha256=digest, size=poem.stat().st_size))
        card = synthetic_card(work / "card", load_private_key(keys.dev_key), "big", entries=entries)
        server = RegistryServer(
            ["--trust", str(keys.cards_trust), "--log-key", str(keys.log_key)]
            + ["--db", f"sqlite:///{work / 'registry.db'}", "--lookup-rate", "0"]
        )
        with server:
            ok(
                "registry", "push", card.signed, "--manifest", card.manifest,
                "--registry", server.url, "--trust", keys.trust,
            )  # fmt: skip
            size = card.manifest.stat().st_size
            print(f"one work matched in a card of {args.entries:,} entries ({size:,} bytes)")
            trees = [ROOT, *args.baseline]
            times: dict[Path, list[float]] = {tree: [] for tree in trees}
            for _ in range(args.runs):  # in turn: the machine's speed drifts over minutes
                for tree in trees:
                    started = time.perf_counter()
                    result = subprocess.run(
                        [sys.executable, "-m", "provenance", "registry", "lookup", str(poem)]
                        + ["--registry", server.url, "--trust", str(keys.trust)],
                        capture_output=True,
                        text=True,
                        cwd=tree,
                        env={**os.environ, "PYTHONPATH": str(tree)},
                        check=False,
                    )
                    times[tree].append(time.perf_counter() - started)
                    if result.returncode != 0 or not result.stdout.startswith("exact"):
                        raise SystemExit(f"{tree}: {result.stdout}{result.stderr}")
            for tree, seconds in times.items():
                shown = ", ".join(f"{s:.2f}" for s in seconds)
                print(f"  {'this tree' if tree == ROOT else tree}: {shown} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
