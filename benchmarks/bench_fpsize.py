"""The fingerprint sidecar's size per entry (issue 12, item 3).

Builds one records file of ``--entries`` texts of about 1.1 KB (windows of the two Sherlock
Holmes stories in ``samples/works``, with words varied so that texts differ), then the
manifest and its sidecar as ``provenance manifest build`` does, single-file and partitioned,
and prints the sidecar's bytes per entry (with each section's share) beside the manifest's.

Run:  python benchmarks/bench_fpsize.py [--entries N] [--partitions P]
Goal: smaller than sidecar format 1 (146 bytes/entry on the issue's 1.1 KB texts), lookups
unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
from pathlib import Path

import numpy as np

from provenance import sharded
from provenance.fpindex import layout

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "works"


def _corpus(path: Path, count: int, seed: int = 5) -> int:
    words = " ".join(p.read_text("utf-8") for p in sorted(SAMPLES.glob("*.txt"))).split()
    rng = random.Random(seed)
    total = 0
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            start = rng.randrange(len(words) - 400)
            chunk = words[start : start + 400]
            text, used = [], 0
            for word in chunk:
                if used >= 1100:
                    break
                if rng.random() < 0.05:
                    word = rng.choice(["very", "quite", "truly", "indeed"])
                text.append(word)
                used += len(word) + 1
            body = " ".join(text)
            total += len(body.encode("utf-8"))
            handle.write(json.dumps({"id": f"t{i:07d}", "text": body}) + "\n")
    return total


def _sections(sidecar: Path) -> tuple[dict[str, int], int]:
    """Each section's bytes on disk, and the bytes of the same sidecar in format 1."""
    data = sidecar.read_bytes()
    header, arrays = layout.parse(sidecar, data, len(data))
    sizes = {}
    for section in header["sections"]:
        dtype = section["dtype"]
        widths = {
            layout.ENTRY: header.get("entryBytes"),
            layout.LINE: header.get("lineBytes"),
            layout.KEY: header.get("keyBytes"),
        }
        item = widths.get(dtype) or np.dtype(dtype).itemsize
        sizes[section["name"]] = section["count"] * item
    layout.check_prints(sidecar, arrays, header)
    if header["version"] != 1:  # the same sidecar in format 1, for the comparison
        arrays = dict(arrays)
        for name in ("shaPrefix", "textShaPrefix"):  # 8-byte prefixes in format 1 (the size)
            arrays[name] = np.zeros(len(arrays[name]), dtype=np.uint64)
        arrays["fpHash"], arrays["fpEntry"] = arrays["fpKeys"].by_hash(arrays["fpEntry"])
    count = header["manifest"]["entries"]
    old = sum(len(p) for p in layout.encode(header["manifest"]["sha256"], count, arrays, version=1))
    return sizes, old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=16)
    args = parser.parse_args()
    print("uptime load:", os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        records = work / "texts.jsonl"
        text_bytes = _corpus(records, args.entries)
        single = work / "single.jsonl"
        sharded.build_dataset([records], single, executor="local", workers=2)
        fp = single.with_name(single.name + ".fp")
        per_entry = fp.stat().st_size / args.entries
        print(
            f"{args.entries} texts of {text_bytes / args.entries:.0f} bytes on average;"
            f" sidecar format {layout.VERSION}"
        )
        sizes, format1 = _sections(fp)
        for name, size in sorted(sizes.items(), key=lambda item: -item[1]):
            print(f"  {name:14s} {size / args.entries:7.1f} bytes/entry")
        parted = work / "parted"
        sharded.build_dataset(
            [records], parted, partitioned=True, partition_count=args.partitions, workers=2
        )
        parts = sum(f.stat().st_size for f in parted.glob("part-*.jsonl.fp"))
        manifest = single.stat().st_size
        print(
            f"fingerprint sidecar: {per_entry:.1f} bytes/entry single-file"
            f" ({fp.stat().st_size / 1e6:.1f} MB beside a {manifest / 1e6:.1f} MB manifest,"
            f" {fp.stat().st_size / manifest:.2f}x), {parts / args.entries:.1f} bytes/entry in"
            f" {args.partitions} parts; format 1 of the same sidecar:"
            f" {format1 / args.entries:.1f} bytes/entry (goal: smaller than format 1)"
        )


if __name__ == "__main__":
    main()
