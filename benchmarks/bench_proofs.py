"""Benchmark: proofs of presence/absence for 1,000 works against a 1,000,000-entry manifest.

Measures, in one run on this machine:

- indexing the manifest once (read + check every line, file digest, leaf hashes, all complete
  subtree hashes), against the physical floor of merely hashing the file's bytes and against
  the existing streaming root computation (``provenance.merkle.TreeBuilder`` over the leaves);
- generating 1,000 proofs (half present, half absent), per proof, against the floor of the
  ~log2(n) SHA-256 node hashes a proof needs and against the reference
  ``merkle.inclusion_proof`` (O(n) per proof, timed on a few works only);
- verifying them as ``proof verify`` does (strict parse, checksum, canonical bytes, entry
  decode, inclusion), per proof, against a bare ``merkle.verify_inclusion``.

Run:  python benchmarks/bench_proofs.py [--entries 1000000] [--works 1000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provenance import _json, card, merkle, proofs  # noqa: E402
from provenance.envelope import sign_envelope  # noqa: E402
from provenance.keys import PrivateKey  # noqa: E402
from provenance.manifest import ManifestEntry, write_manifest  # noqa: E402
from provenance.trust import TrustStore  # noqa: E402

AT = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)


def _setup(directory: Path, entries_count: int) -> tuple[Path, Path, Path, list[str]]:
    started = time.perf_counter()
    entries = sorted(
        (
            ManifestEntry(
                id=f"data/{i:07d}.txt",
                sha256=hashlib.sha256(b"record %d" % i).hexdigest(),
                size=1000 + i % 5000,
                source="web",
            )
            for i in range(entries_count)
        ),
        key=ManifestEntry.sort_key,
    )
    manifest = directory / "manifest.jsonl"
    summary = write_manifest(entries, manifest)
    spec = card.load_spec(
        json.dumps(
            {
                "name": "bench",
                "version": "1",
                "description": "synthetic",
                "publisher": {"name": "Bench"},
                "sources": [{"id": "web", "name": "Web", "kind": "web-crawl", "license": "MIT"}],
            }
        ).encode(),
        what="spec",
    )
    statement = card.build_statement(
        spec, entries, lambda: summary, manifest_name=manifest.name, created=AT
    )
    key = PrivateKey.generate()
    signed = directory / "card.signed.json"
    signed.write_bytes(
        sign_envelope(card.PAYLOAD_TYPE, _json.canonical(statement.to_dict()), [key]).to_json()
    )
    trust = directory / "trust.json"
    trust.write_bytes(
        TrustStore().with_key(key.public, name="Bench", role="dataset-publisher").to_json()
    )
    digests = [e.sha256 for e in entries]
    print(
        f"setup: {entries_count:,} entries, manifest {manifest.stat().st_size / 1e6:.0f} MB,"
        f" built in {time.perf_counter() - started:.1f} s (not part of the figures)"
    )
    return manifest, signed, trust, digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--works", type=int, default=1_000)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="bench-proofs-") as temp:
        manifest, signed, trust, digests = _setup(Path(temp), args.entries)
        ref = proofs.load_card(signed, trust, at=AT)

        # Floor for indexing: hash the file's bytes once (no parsing, no tree).
        started = time.perf_counter()
        with open(manifest, "rb") as handle:
            hashlib.file_digest(handle, "sha256")
        floor_read = time.perf_counter() - started

        started = time.perf_counter()
        builder = proofs.ProofBuilder.from_manifest(manifest, ref)
        index_time = time.perf_counter() - started

        # Peer: the streaming root over the same leaf hashes (n - 1 node hashes, no storage).
        leaves = [builder._index.leaf(i) for i in range(builder.size)]
        started = time.perf_counter()
        tree = merkle.TreeBuilder()
        for leaf in leaves:
            tree.add(leaf)
        tree.root()
        streaming_root = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        half = args.works // 2
        works = [digests[(i * 7919) % len(digests)] for i in range(half)]
        works += [hashlib.sha256(b"absent %d" % i).hexdigest() for i in range(args.works - half)]
        started = time.perf_counter()
        made = builder.prove_many(works)
        prove_time = time.perf_counter() - started
        files = [p.to_json() for p in made]
        assert sum(p.claim == "present" for p in made) == half

        started = time.perf_counter()
        for data in files:
            proofs.verify_proof(proofs.Proof.from_json(data, what="proof"), ref.commitment)
        verify_time = time.perf_counter() - started

        # Floors per proof: log2(n) node hashes; a bare inclusion check of one leaf.
        depth = max(1, (args.entries - 1).bit_length())
        pair = b"\x01" + bytes(64)
        started = time.perf_counter()
        for _ in range(10_000):
            for _ in range(depth):
                hashlib.sha256(pair).digest()
        hash_floor = (time.perf_counter() - started) / 10_000
        leaf_proofs = [(p.leaves[0], merkle.leaf_hash(p.leaves[0].entry)) for p in made[:half]]
        root = bytes.fromhex(ref.commitment.merkle_root)
        started = time.perf_counter()
        for leaf, leaf_digest in leaf_proofs:
            merkle.verify_inclusion(leaf.index, builder.size, leaf_digest, leaf.audit_path, root)
        bare_verify = (time.perf_counter() - started) / max(1, len(leaf_proofs))

        # Peer: the reference O(n)-per-proof inclusion_proof, on three works only.
        started = time.perf_counter()
        for i in range(3):
            merkle.inclusion_proof(made[i].leaves[0].index, leaves)
        reference_per_proof = (time.perf_counter() - started) / 3

        sizes = [len(f) for f in files]
        per_prove = prove_time / len(works)
        per_verify = verify_time / len(files)
        print()
        print(
            f"index {args.entries:,} entries once: {index_time:.2f} s"
            f" (floor, hash the file only: {floor_read:.2f} s = {index_time / floor_read:.0f}x;"
            f" peer, streaming root over the leaf hashes: {streaming_root:.2f} s);"
            f" peak RSS {peak_mb:.0f} MB"
        )
        print(
            f"prove {len(works):,} works ({half} present, {len(works) - half} absent):"
            f" {prove_time * 1e3:.0f} ms, {per_prove * 1e6:.0f} us/proof"
            f" (floor, {depth} node hashes: {hash_floor * 1e6:.1f} us"
            f" = {per_prove / hash_floor:.0f}x;"
            f" peer, merkle.inclusion_proof O(n): {reference_per_proof:.2f} s/proof"
            f" = {reference_per_proof / per_prove:,.0f}x slower)"
        )
        print(
            f"verify {len(files):,} proofs (parse, checksum, entries, inclusion):"
            f" {verify_time * 1e3:.0f} ms, {per_verify * 1e6:.0f} us/proof"
            f" (bare merkle.verify_inclusion: {bare_verify * 1e6:.0f} us ="
            f" {per_verify / bare_verify:.0f}x)"
        )
        print(f"proof size: median {statistics.median(sizes):,.0f} bytes, max {max(sizes):,}")
        print(
            "total for the batch (index + prove + verify):"
            f" {index_time + prove_time + verify_time:.2f} s"
        )
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
