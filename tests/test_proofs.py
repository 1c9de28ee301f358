"""Proofs of presence and absence: building, verifying, every way a proof can be wrong, and
``provenance proof verify`` end to end."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from provenance import _json, card, merkle, proofs
from provenance.envelope import sign_envelope
from provenance.errors import DigestMismatchError, FormatError, InputError, VerificationError
from provenance.keys import PrivateKey
from provenance.manifest import ManifestEntry, ManifestSummary, entry_bytes, write_manifest
from provenance.trust import TrustStore
from tests.card_support import sign_card_for
from tests.conftest import NOW, ROOT, VECTORS, one_error_line, run_cli

AT = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)
SPEC = {
    "name": "proof-test",
    "version": "1",
    "description": "entries for proof tests",
    "publisher": {"name": "Test Lab"},
    "sources": [
        {"id": "s", "name": "Everything", "kind": "licensed", "license": "MIT", "paths": ["**"]}
    ],
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entries_for(count: int, *, prefix: str = "work") -> list[ManifestEntry]:
    entries = [
        ManifestEntry(id=f"{prefix}/{i:04d}.txt", sha256=sha(f"{prefix}-{i}"), size=i * 10)
        for i in range(count)
    ]
    return sorted(entries, key=ManifestEntry.sort_key)


@dataclass
class World:
    """A manifest, its signed card and a trust store, written to ``directory``."""

    directory: Path
    manifest: Path
    signed: Path
    trust: Path
    entries: list[ManifestEntry]
    ref: proofs.CardRef

    def builder(self) -> proofs.ProofBuilder:
        return proofs.ProofBuilder.from_manifest(self.manifest, self.ref)


AUDITOR = PrivateKey.generate()


def make_world(
    directory: Path,
    entries: list[ManifestEntry],
    key: PrivateKey,
    *,
    version: str = "1",
    auditor: PrivateKey | None = AUDITOR,
) -> World:
    """Sign a card for ``entries`` with ``key``, co-signed by ``auditor`` (trusted as one)."""
    spec = card.load_spec(json.dumps({**SPEC, "version": version}).encode(), what="spec")
    signers = [key] if auditor is None else [key, auditor]
    made = sign_card_for(directory, entries, signers, spec=spec, created=AT)
    manifest, signed = made.manifest, made.signed
    trust = directory / "trust.json"
    store = TrustStore().with_key(key.public, name="Test Lab", role="dataset-publisher")
    store = store.with_key(AUDITOR.public, name="Test Auditor", role="auditor")
    trust.write_bytes(store.to_json())
    return World(
        directory, manifest, signed, trust, entries, proofs.load_card(signed, trust, at=AT)
    )


@pytest.fixture(scope="module")
def key() -> PrivateKey:
    return PrivateKey.generate()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, key: PrivateKey) -> World:
    return make_world(tmp_path_factory.mktemp("world"), entries_for(13), key)


def between(left: str, right: str) -> str:
    """A digest strictly between two digests (they differ by more than 1)."""
    value = (int(left, 16) + int(right, 16)) // 2
    result = f"{value:064x}"
    assert left < result < right
    return result


def resign(document: dict[str, Any]) -> bytes:
    """Serialize an edited proof document with a fresh checksum, as a forger would."""
    body = {k: v for k, v in document.items() if k != "checksum"}
    try:
        body["checksum"] = hashlib.sha256(_json.canonical(body)).hexdigest()
    except FormatError:  # e.g. an index beyond 2**53, which JSON cannot carry exactly
        body["checksum"] = "0" * 64
    return _json.pretty(body)


def check(data: bytes, world: World) -> proofs.VerifiedProof:
    return proofs.verify_proof(proofs.Proof.from_json(data, what="proof"), world.ref.commitment)


# ----------------------------------------------------------------------------------------------
# Building and verifying


def test_present_proof_for_every_entry(world: World) -> None:
    builder = world.builder()
    for index, entry in enumerate(world.entries):
        proof = builder.prove(entry.sha256)
        assert proof.claim == "present"
        assert [leaf.index for leaf in proof.leaves] == [index]
        assert proof.leaves[0].entry == entry_bytes(entry)
        verified = check(proof.to_json(), world)
        assert verified.claim == "present"
        assert verified.leaves[0][1] == entry
        assert proofs.Proof.from_json(proof.to_json(), what="p") == proof


def test_absent_between_every_pair_of_adjacent_leaves(world: World) -> None:
    builder = world.builder()
    for i in range(len(world.entries) - 1):
        work = between(world.entries[i].sha256, world.entries[i + 1].sha256)
        proof = builder.prove(work)
        assert proof.claim == "absent"
        assert [leaf.index for leaf in proof.leaves] == [i, i + 1]
        verified = check(proof.to_json(), world)
        assert verified.claim == "absent"
        assert "between adjacent leaves" in verified.describe()


def test_absent_before_the_first_and_after_the_last_leaf(world: World) -> None:
    builder = world.builder()
    first = builder.prove("0" * 64)
    assert first.claim == "absent"
    assert [leaf.index for leaf in first.leaves] == [0]
    assert "before the first" in check(first.to_json(), world).describe()
    last = builder.prove("f" * 64)
    assert [leaf.index for leaf in last.leaves] == [len(world.entries) - 1]
    assert "after the last" in check(last.to_json(), world).describe()


def test_empty_manifest(tmp_path: Path, key: PrivateKey) -> None:
    empty = make_world(tmp_path, [], key)
    assert empty.ref.commitment.tree_size == 0
    assert empty.ref.commitment.merkle_root == merkle.EMPTY_ROOT.hex()
    proof = empty.builder().prove(sha("anything"))
    assert proof.claim == "absent"
    assert proof.leaves == ()
    assert "empty" in check(proof.to_json(), empty).describe()


def test_one_entry_manifest(tmp_path: Path, key: PrivateKey) -> None:
    one = make_world(tmp_path, entries_for(1), key)
    (entry,) = one.entries
    builder = one.builder()
    present = builder.prove(entry.sha256)
    assert present.claim == "present"
    assert present.leaves[0].audit_path == ()
    check(present.to_json(), one)
    below = f"{int(entry.sha256, 16) - 1:064x}"
    above = f"{int(entry.sha256, 16) + 1:064x}"
    for work, side in ((below, "before the first"), (above, "after the last")):
        proof = builder.prove(work)
        assert proof.claim == "absent"
        assert [leaf.index for leaf in proof.leaves] == [0]
        assert side in check(proof.to_json(), one).describe()


def test_duplicate_digests_and_the_id_tiebreak(tmp_path: Path, key: PrivateKey) -> None:
    # Two entries share a digest; the order breaks the tie by id. A work with that digest is
    # present, and no absence proof can be made for it.
    shared = sha("shared")
    entries = sorted(
        [
            *entries_for(6),
            ManifestEntry(id="copy/b.txt", sha256=shared, size=1),
            ManifestEntry(id="copy/a.txt", sha256=shared, size=1),
        ],
        key=ManifestEntry.sort_key,
    )
    dup = make_world(tmp_path, entries, key)
    proof = dup.builder().prove(shared)
    assert proof.claim == "present"
    first = [i for i, e in enumerate(entries) if e.sha256 == shared][0]
    assert proof.leaves[0].index == first
    assert json.loads(proof.leaves[0].entry)["id"] == "copy/a.txt"
    # A forged "absent" claim with the two equal-digest leaves (adjacent, both genuine) fails.
    index = proofs.MerkleIndex(b"".join(merkle.leaf_hash(entry_bytes(e)) for e in entries))
    forged = proofs.Proof(
        "absent",
        shared,
        dup.ref.commitment,
        tuple(
            proofs.ProofLeaf(i, entry_bytes(entries[i]), tuple(index.audit_path(i)))
            for i in (first, first + 1)
        ),
    )
    with pytest.raises(proofs.ProofError, match="do not bracket"):
        proofs.verify_proof(forged, dup.ref.commitment)
    # And the left neighbour with the first copy: the work equals the right leaf's digest.
    forged = replace(
        forged,
        leaves=tuple(
            proofs.ProofLeaf(i, entry_bytes(entries[i]), tuple(index.audit_path(i)))
            for i in (first - 1, first)
        ),
    )
    with pytest.raises(proofs.ProofError, match="do not bracket"):
        proofs.verify_proof(forged, dup.ref.commitment)


# ----------------------------------------------------------------------------------------------
# The Merkle step


@pytest.mark.parametrize("size", [*range(0, 40), 63, 64, 65, 100, 257, 1000])
def test_merkle_index_matches_the_reference_implementation(size: int) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    index = proofs.MerkleIndex(b"".join(leaves))
    assert index.root() == merkle.root(leaves)
    for i in range(size) if size <= 100 else range(0, size, 7):
        assert index.audit_path(i) == merkle.inclusion_proof(i, leaves)
    with pytest.raises(IndexError, match=r"leaf \d+ is outside a tree of \d+"):
        index.audit_path(size)


def test_merkle_index_reference_tree_roots() -> None:
    reference = json.loads((VECTORS / "merkle" / "rfc6962_reference.json").read_text())
    inputs = [bytes.fromhex(h) for h in reference["leaf_inputs_hex"]]
    for size, expected in enumerate(reference["root_by_size_hex"]):
        index = proofs.MerkleIndex(b"".join(merkle.leaf_hash(x) for x in inputs[:size]))
        assert index.root().hex() == expected


INCLUSION_VECTORS = sorted((VECTORS / "merkle" / "transparency-dev" / "inclusion").rglob("*.json"))


@pytest.mark.parametrize("path", INCLUSION_VECTORS, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_proof_verifier_inclusion_step_against_transparency_dev(path: Path) -> None:
    case = json.loads(path.read_text())

    def b64(value: str | None) -> bytes:
        return base64.b64decode(value) if value else b""

    args = (
        case["leafIdx"],
        case["treeSize"],
        b64(case["leafHash"]),
        [b64(p) for p in case["proof"] or []],
        b64(case["root"]),
    )
    if case["wantErr"]:
        with pytest.raises(
            proofs.ProofError,
            match=(
                r"leads to another root|is not 32 bytes|longer than the tree allows"
                r"|shorter than the tree requires|is outside a tree of size"
            ),
        ):
            proofs.verify_leaf(*args)
    else:
        proofs.verify_leaf(*args)


def test_transparency_dev_probes_through_proof_documents(world: World) -> None:
    # Every probe's path and index, put into a real proof of a real leaf, must fail: either the
    # schema refuses it (index beyond 2**53, hashes that are not 32 bytes) or it does not lead
    # to the card's root.
    proof = world.builder().prove(world.entries[5].sha256)
    document = json.loads(proof.to_json())
    for path in INCLUSION_VECTORS:
        case = json.loads(path.read_text())
        leaf = document["leaves"][0]
        leaf["index"] = case["leafIdx"]
        leaf["auditPath"] = [base64.b64decode(p).hex() for p in case["proof"] or []]
        with pytest.raises(
            VerificationError,
            match=r"inclusion proof \d+ \(leaf \d+ of \d+\) is invalid|not a valid proof",
        ):
            check(resign(document), world)


# ----------------------------------------------------------------------------------------------
# Every way a proof can be wrong


def _mutants(data: bytes) -> list[tuple[int, bytes]]:
    """Each byte position changed to two other values: a neighbour and a structural byte."""
    result = []
    for position, byte in enumerate(data):
        for value in {byte ^ 0x01, 0x20 if byte != 0x20 else 0x09}:
            result.append((position, data[:position] + bytes([value]) + data[position + 1 :]))
    return result


def _absence_cases(world: World) -> dict[str, bytes]:
    builder = world.builder()
    entries = world.entries
    return {
        "present": builder.prove(entries[6].sha256).to_json(),
        "absent-between": builder.prove(between(entries[3].sha256, entries[4].sha256)).to_json(),
        "absent-first": builder.prove("0" * 64).to_json(),
        "absent-last": builder.prove("f" * 64).to_json(),
    }


@pytest.mark.parametrize("case", ["present", "absent-between", "absent-first", "absent-last"])
def test_every_single_byte_change_fails(world: World, case: str) -> None:
    data = _absence_cases(world)[case]
    check(data, world)  # the original verifies
    mutants = _mutants(data)
    assert len(mutants) >= 2 * len(data) - 1
    for position, mutant in mutants:
        with pytest.raises(VerificationError, match="not a valid proof") as caught:
            check(mutant, world)
        assert caught.value.exit_code == 1, position


def test_every_single_byte_change_fails_in_an_empty_manifest(
    tmp_path: Path, key: PrivateKey
) -> None:
    empty = make_world(tmp_path, [], key)
    data = empty.builder().prove(sha("x")).to_json()
    check(data, empty)
    for position, mutant in _mutants(data):
        with pytest.raises(VerificationError, match="not a valid proof"):
            check(mutant, empty)
        assert position >= 0


def test_checksum_binds_what_the_merkle_checks_cannot(world: World) -> None:
    # Another digest in the same bracket is also absent, so only the checksum stops an edit of
    # the work digest (the test fails if the checksum check is removed).
    entries = world.entries
    data = world.builder().prove(between(entries[3].sha256, entries[4].sha256)).to_json()
    document = json.loads(data)
    other = between(entries[3].sha256, document["work"]["sha256"])
    edited = data.replace(document["work"]["sha256"].encode(), other.encode())
    with pytest.raises(proofs.ProofError, match="checksum"):
        check(edited, world)
    assert check(resign({**document, "work": {"sha256": other}}), world).work == other


def test_reformatted_proof_fails(world: World) -> None:
    data = world.builder().prove(world.entries[2].sha256).to_json()
    compact = json.dumps(json.loads(data), sort_keys=True).encode()
    with pytest.raises(proofs.ProofError, match="byte for byte"):
        check(compact, world)
    with pytest.raises(proofs.ProofError, match="byte for byte"):
        check(data.replace(b'\n  "card"', b'\n\t"card"', 1), world)


def test_malformed_and_schema_invalid_proofs_fail_as_verification(world: World) -> None:
    data = world.builder().prove(world.entries[2].sha256).to_json()
    for bad in (data[:-10], b"", b"[]", b"\xff" + data, data.replace(b'"present"', b'"maybe"')):
        with pytest.raises(proofs.ProofError, match="not a valid proof") as caught:
            check(bad, world)
        assert caught.value.exit_code == 1


def _forge(world: World, work: str, edit: Any) -> bytes:
    document = json.loads(world.builder().prove(work).to_json())
    edit(document)
    return resign(document)


def test_forgeries_with_a_valid_checksum_fail(world: World) -> None:
    entries = world.entries
    present = entries[6].sha256
    gap = between(entries[3].sha256, entries[4].sha256)
    index = proofs.MerkleIndex(b"".join(merkle.leaf_hash(entry_bytes(e)) for e in entries))

    def leaf(i: int) -> dict[str, Any]:
        return {
            "index": i,
            "entry": entry_bytes(entries[i]).decode(),
            "auditPath": [h.hex() for h in index.audit_path(i)],
        }

    def set_(path: list[Any], value: Any) -> Any:
        def edit(document: dict[str, Any]) -> None:
            target = document
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value

        return edit

    def both(*edits: Any) -> Any:
        def edit(document: dict[str, Any]) -> None:
            for each in edits:
                each(document)

        return edit

    cases: list[tuple[str, str, Any, str]] = [
        (
            "present, other work",
            present,
            set_(["work", "sha256"], entries[7].sha256),
            "not the work",
        ),
        (
            "present claimed absent",
            present,
            both(set_(["claim"], "absent"), set_(["status"], "absent")),
            "do not bracket|single leaf",
        ),
        (
            "absent claimed present",
            gap,
            both(set_(["claim"], "present"), set_(["status"], "exact")),
            "exactly one leaf",
        ),
        (
            "normalized, but the entry has another text digest",
            present,
            both(
                set_(["status"], "normalized"),
                set_(["digest"], "textSha256"),
                set_(["work", "textSha256"], "cd" * 32),
            ),
            "has textSha256 None, not the work's",
        ),
        ("claim against status", present, set_(["claim"], "absent"), "not a valid proof"),
        ("status against claim", gap, set_(["status"], "exact"), "not a valid proof"),
        ("digest against status", present, set_(["digest"], "textSha256"), "not a valid proof"),
        (
            "exact relabelled normalized without the text digest",
            present,
            both(set_(["status"], "normalized"), set_(["digest"], "textSha256")),
            "not a valid proof",
        ),
        ("index moved", present, set_(["leaves", 0, "index"], 7), "inclusion proof"),
        ("path flipped", present, set_(["leaves", 0, "auditPath", 0], "00" * 32), "inclusion"),
        ("path truncated", present, set_(["leaves", 0, "auditPath"], []), "inclusion"),
        ("other entry line", present, set_(["leaves", 0, "entry"], leaf(7)["entry"]), "inclusion"),
        ("tree size", present, set_(["card", "treeSize"], 14), "tree size"),
        ("root", present, set_(["card", "merkleRoot"], "ab" * 32), "Merkle root"),
        ("manifest", present, set_(["card", "manifestSha256"], "ab" * 32), "manifest sha256"),
        ("statement", present, set_(["card", "statementSha256"], "ab" * 32), "another card"),
        ("not adjacent", gap, set_(["leaves"], [leaf(3), leaf(5)]), "not adjacent"),
        ("not bracketing", gap, set_(["leaves"], [leaf(5), leaf(6)]), "do not bracket"),
        ("reversed", gap, set_(["leaves"], [leaf(4), leaf(3)]), "not adjacent"),
        ("one middle leaf", gap, set_(["leaves"], [leaf(3)]), "single leaf"),
        ("first leaf, work above it", gap, set_(["leaves"], [leaf(0)]), "single leaf"),
        ("last leaf, work below it", gap, set_(["leaves"], [leaf(12)]), "single leaf"),
        ("no leaves", gap, set_(["leaves"], []), "one or two leaves"),
        ("three leaves", gap, set_(["leaves"], [leaf(2), leaf(3), leaf(4)]), "not a valid proof"),
    ]
    for name, work, edit, message in cases:
        with pytest.raises(proofs.ProofError, match=message):
            check(_forge(world, work, edit), world)
        assert name


def test_non_canonical_entry_line_fails_even_if_the_tree_holds_it(world: World) -> None:
    # A publisher's tree over a non-canonical line (extra space): the inclusion proof is fine,
    # but the line must be exactly a canonical manifest entry.
    line = b'{"id":"x", "sha256":"' + sha("x").encode() + b'"}'
    others = [entry_bytes(e) for e in world.entries[:3]]
    leaves = [merkle.leaf_hash(x) for x in [*others, line]]
    index = proofs.MerkleIndex(b"".join(leaves))
    commitment = proofs.CardCommitment("aa" * 32, "bb" * 32, index.root().hex(), 4)
    proof = proofs.Proof(
        "present", sha("x"), commitment, (proofs.ProofLeaf(3, line, tuple(index.audit_path(3))),)
    )
    with pytest.raises(proofs.ProofError, match="canonical"):
        proofs.verify_proof(proof, commitment)


def test_empty_tree_needs_the_empty_root() -> None:
    commitment = proofs.CardCommitment("aa" * 32, "bb" * 32, "cc" * 32, 0)
    with pytest.raises(proofs.ProofError, match="empty root"):
        proofs.verify_proof(proofs.Proof("absent", sha("w"), commitment, ()), commitment)
    good = replace(commitment, merkle_root=merkle.EMPTY_ROOT.hex())
    proofs.verify_proof(proofs.Proof("absent", sha("w"), good, ()), good)
    line = entry_bytes(ManifestEntry(id="a", sha256=sha("a")))
    for claim in ("absent", "present"):
        with_leaf = proofs.Proof(claim, sha("a"), good, (proofs.ProofLeaf(0, line, ()),))  # type: ignore[arg-type]
        with pytest.raises(proofs.ProofError, match="outside a tree of size 0"):
            proofs.verify_proof(with_leaf, good)


def test_a_proof_for_card_a_fails_with_card_b(
    world: World, tmp_path: Path, key: PrivateKey
) -> None:
    data = world.builder().prove(world.entries[1].sha256).to_json()
    # Card B: the same manifest, another card version, signed by the same trusted key.
    same_manifest = make_world(tmp_path / "b", world.entries, key, version="2")
    assert same_manifest.ref.commitment.merkle_root == world.ref.commitment.merkle_root
    with pytest.raises(proofs.ProofError, match="another card"):
        check(data, same_manifest)
    # Card C: another manifest.
    other = make_world(tmp_path / "c", entries_for(13, prefix="other"), key)
    with pytest.raises(proofs.ProofError, match="another card"):
        check(data, other)


# ----------------------------------------------------------------------------------------------
# The builder's I/O


def test_builder_refuses_a_manifest_the_card_does_not_commit_to(
    world: World, tmp_path: Path
) -> None:
    other = tmp_path / "other.jsonl"
    write_manifest(world.entries[:-1], other)
    with pytest.raises(DigestMismatchError, match="is not the manifest the card") as caught:
        proofs.ProofBuilder.from_manifest(other, world.ref)
    assert caught.value.exit_code == 1


def test_builder_detects_a_manifest_changed_after_indexing(tmp_path: Path, key: PrivateKey) -> None:
    changing = make_world(tmp_path, entries_for(5), key)
    builder = changing.builder()
    data = changing.manifest.read_bytes()
    changing.manifest.write_bytes(data.replace(b'"size":10', b'"size":11'))
    target = [e for e in changing.entries if e.size == 10][0]
    with pytest.raises(DigestMismatchError, match="changed"):
        builder.prove(target.sha256)


def test_bad_work_digests_are_input_errors(world: World) -> None:
    builder = world.builder()
    for bad in ("", "A" * 64, "0" * 63, "g" * 64):
        with pytest.raises(InputError, match="is not 64 lowercase hex digits"):
            builder.prove(bad)


def test_write_proofs_single_file_and_directory(world: World, tmp_path: Path) -> None:
    builder = world.builder()
    one = [("novel.txt", world.entries[0].sha256)]
    [(path, proof)] = proofs.write_proofs(builder, one, tmp_path / "one.json", single=True)
    assert path.read_bytes() == proof.to_json()
    works = [("a/novel.txt", world.entries[0].sha256), ("b/novel.txt", sha("not there"))]
    written = proofs.write_proofs(builder, works, tmp_path / "out", single=False)
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(
        [
            f"novel.txt.{world.entries[0].sha256[:12]}.proof.json",
            f"novel.txt.{sha('not there')[:12]}.proof.json",
        ]
    )
    assert [p.claim for _, p in written] == ["present", "absent"]
    with pytest.raises(InputError, match="one file holds one proof, not 2"):
        proofs.write_proofs(builder, works, tmp_path / "x.json", single=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a directory"):
        proofs.write_proofs(builder, works, tmp_path / "file", single=False)


def test_a_batch_of_many_works_stays_fast() -> None:
    # 200,000 leaves indexed once, then 2,000 audit paths: each path is O(log n) lookups, so
    # the batch takes milliseconds; an O(n)-per-proof implementation would take minutes.
    size = 200_000
    leaves = b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size))
    index = proofs.MerkleIndex(leaves)
    digests = b"".join(sorted(leaves[i : i + 32] for i in range(0, len(leaves), 32)))
    root = index.root()
    started = time.perf_counter()
    for i in range(2_000):
        work = hashlib.sha256(b"w%d" % i).digest()
        _, found = proofs.locate(digests, work)
        for leaf_index in found:
            path = index.audit_path(leaf_index)
            merkle.verify_inclusion(leaf_index, size, index.leaf(leaf_index), path, root)
    assert time.perf_counter() - started < 5.0


# ----------------------------------------------------------------------------------------------
# proof verify, end to end


def _proof_file(world: World, tmp_path: Path, work: str, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(world.builder().prove(work).to_json())
    return path


def _verify(proof: Path, world: World, *extra: str) -> Any:
    return run_cli(
        "proof",
        "verify",
        proof,
        "--card",
        world.signed,
        "--trust",
        world.trust,
        "--now",
        NOW,
        *extra,
    )


def test_cli_present_and_absent(world: World, tmp_path: Path) -> None:
    present = _proof_file(world, tmp_path, world.entries[4].sha256, "present.json")
    result = _verify(present, world, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["ok"], report["claim"], report["work"]) == (
        True,
        "present",
        world.entries[4].sha256,
    )
    assert report["leaves"][0]["id"] == world.entries[4].id
    assert report["card"]["name"] == "proof-test"
    gap = between(world.entries[8].sha256, world.entries[9].sha256)
    absent = _proof_file(world, tmp_path, gap, "absent.json")
    result = _verify(absent, world)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"verified: work {gap} is ABSENT from the 13-entry manifest")


def test_cli_altered_proofs_fail_with_exit_1(world: World, tmp_path: Path) -> None:
    data = _absence_cases(world)["absent-between"]
    mutants = _mutants(data)
    # A sample across the file: checksum, card, entry lines, audit paths, whitespace, key names.
    sample = [mutants[i] for i in range(0, len(mutants), len(mutants) // 6)][:6]
    for position, mutant in sample:
        path = tmp_path / f"mutant-{position}.json"
        path.write_bytes(mutant)
        result = _verify(path, world)
        assert result.returncode == 1, (position, result.stdout, result.stderr)
        assert one_error_line(result).startswith("error: proof does not verify: ")
    truncated = tmp_path / "truncated.json"
    truncated.write_bytes(data[: len(data) // 2])
    result = _verify(truncated, world, "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["ok"] is False
    assert "malformed JSON" in one_error_line(result)


def test_cli_json_failure_report(world: World, tmp_path: Path) -> None:
    data = world.builder().prove(world.entries[0].sha256).to_json()
    path = tmp_path / "bad.json"
    path.write_bytes(resign({**json.loads(data), "claim": "absent"}))
    result = _verify(path, world, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["claim"] == "absent"
    assert report["work"] == world.entries[0].sha256
    assert report["error"]


def test_cli_wrong_card_untrusted_card_and_missing_files(
    world: World, tmp_path: Path, key: PrivateKey
) -> None:
    proof = _proof_file(world, tmp_path, world.entries[3].sha256, "p.json")
    card_b = make_world(tmp_path / "b", world.entries, key, version="2")
    result = run_cli(
        "proof", "verify", proof, "--card", card_b.signed, "--trust", world.trust, "--now", NOW
    )
    assert result.returncode == 1
    assert "the proof is for another card" in one_error_line(result)
    # A card signed by a key that world.trust does not trust.
    stranger = make_world(tmp_path / "s", world.entries, PrivateKey.generate())
    result = run_cli(
        "proof", "verify", proof, "--card", stranger.signed, "--trust", world.trust, "--now", NOW
    )
    assert result.returncode == 1
    assert "signed by 0 of the 1 trusted key(s)" in one_error_line(result)
    result = _verify(tmp_path / "missing.json", world)
    assert result.returncode == 2
    assert "no such file" in one_error_line(result)
    result = run_cli("proof", "verify", proof, "--card", tmp_path / "nope", "--trust", world.trust)
    assert result.returncode == 2
    one_error_line(result)


def test_cli_work_option(world: World, tmp_path: Path) -> None:
    work = tmp_path / "mine.txt"
    work.write_bytes(b"a work that is not in the dataset\n")
    digest = hashlib.sha256(work.read_bytes()).hexdigest()
    proof = _proof_file(world, tmp_path, digest, "mine.proof.json")
    assert _verify(proof, world, "--work", work).returncode == 0
    other = tmp_path / "other.txt"
    other.write_bytes(b"another work\n")
    result = _verify(proof, world, "--work", other)
    assert result.returncode == 1
    assert "not " + str(other) in one_error_line(result)


def test_lookup_writes_proofs_that_proof_verify_accepts(world: World, tmp_path: Path) -> None:
    portfolio = tmp_path / "portfolio"
    portfolio.mkdir()
    (portfolio / "a-present.txt").write_bytes(b"work-3")
    (portfolio / "b-absent.txt").write_bytes(b"a work the dataset does not hold")
    signed = ("--card", world.signed, "--trust", world.trust, "--now", NOW)
    result = run_cli(
        "lookup", portfolio, "--manifest", world.manifest, *signed,
        "--proof-out", tmp_path / "proofs", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = json.loads(result.stdout)["proofs"]
    assert [p["claim"] for p in written] == ["present", "absent"]
    for item in written:
        verified = run_cli("proof", "verify", item["path"], *signed, "--json")
        assert verified.returncode == 0, verified.stderr
        assert json.loads(verified.stdout)["claim"] == item["claim"]
    single = tmp_path / "one.proof.json"
    result = run_cli(
        "lookup", portfolio / "a-present.txt", "--manifest", world.manifest, *signed,
        "--proof-out", single,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _verify(single, world, "--work", portfolio / "a-present.txt").returncode == 0


def test_entries_with_unusual_ids_round_trip_byte_for_byte(tmp_path: Path, key: PrivateKey) -> None:
    # Controls and separators are not allowed in ids (README "Ids"); these unusual ones are.
    ids = ["é/ü.txt", 'quote"back\\slash.txt', "nbsp\u00a0here.txt", "zwj\u200dsep.txt", "😀.txt"]
    entries = sorted(
        (ManifestEntry(id=name, sha256=sha(name), size=1) for name in ids),
        key=ManifestEntry.sort_key,
    )
    odd = make_world(tmp_path, entries, key)
    builder = odd.builder()
    for entry in entries:
        data = builder.prove(entry.sha256).to_json()
        assert check(data, odd).leaves[0][1].id == entry.id
    data = builder.prove(between(entries[1].sha256, entries[2].sha256)).to_json()
    assert check(data, odd).claim == "absent"


# ----------------------------------------------------------------------------------------------
# Absence rests on the manifest's order: who vouches for it


def _cli(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The CLI as users run it, with a short timeout (a hang fails the test, not the suite)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PROVENANCE_NOW", None)
    return subprocess.run(
        [sys.executable, "-m", "provenance", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_forged_absence_from_a_misordered_manifest_is_refused_without_an_auditor(
    tmp_path: Path, key: PrivateKey
) -> None:
    # The card's signer moves a work's entry to the end of its manifest and signs that: the
    # work's digest now falls "between" two adjacent leaves, and an absence proof verifies as
    # far as the Merkle tree goes. Only someone who checked the order can rule this out.
    entries = entries_for(8)
    moved = entries[3]
    order = [e for e in entries if e is not moved] + [moved]
    lines = [entry_bytes(e) for e in order]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_bytes(b"".join(line + b"\n" for line in lines))
    leaves = [merkle.leaf_hash(line) for line in lines]
    summary = ManifestSummary(
        hashlib.sha256(manifest.read_bytes()).hexdigest(),
        len(order),
        sum(e.size or 0 for e in order),
        merkle.root(leaves).hex(),
    )
    spec = card.load_spec(json.dumps(SPEC).encode(), what="spec")
    statement = card.build_statement(
        spec, order, lambda: summary, manifest_name=manifest.name, created=AT
    )
    payload = _json.canonical(statement.to_dict())
    signed = tmp_path / "card.signed.json"
    signed.write_bytes(sign_envelope(card.PAYLOAD_TYPE, payload, [key]).to_json())
    trust = tmp_path / "trust.json"
    store = TrustStore().with_key(key.public, name="Test Lab", role="dataset-publisher")
    trust.write_bytes(store.with_key(AUDITOR.public, name="Auditor", role="auditor").to_json())
    index = proofs.MerkleIndex(b"".join(leaves))
    # In the mis-ordered file, entries[2] and entries[4] are adjacent (leaves 2 and 3) and
    # bracket the moved work's digest. First the forgery in proof format v1, which earlier
    # versions wrote and accepted (exit 0).
    forged_v1 = {
        "type": "https://provenance.dev/proof/v1",
        "hashAlgorithm": "sha256",
        "leafFormat": "rfc8785-jsonl",
        "card": {
            "statementSha256": hashlib.sha256(payload).hexdigest(),
            "manifestSha256": summary.digest,
            "merkleRoot": summary.root,
            "treeSize": summary.entries,
        },
        "work": {"sha256": moved.sha256},
        "claim": "absent",
        "leaves": [
            {
                "index": i,
                "entry": lines[i].decode(),
                "auditPath": [h.hex() for h in index.audit_path(i)],
            }
            for i in (2, 3)
        ],
    }
    old_format = tmp_path / "forged.v1.proof.json"
    old_format.write_bytes(resign(forged_v1))
    result = _cli("proof", "verify", old_format, "--card", signed, "--trust", trust, "--now", NOW)
    assert result.returncode == 1, result.stdout
    assert "rests on the publisher's word alone" in one_error_line(result)
    # The same in format v2.
    commitment = proofs.CardCommitment(
        hashlib.sha256(payload).hexdigest(), summary.digest, summary.root, summary.entries
    )
    forged = proofs.Proof(
        "absent",
        moved.sha256,
        commitment,
        tuple(proofs.ProofLeaf(i, lines[i], tuple(index.audit_path(i))) for i in (2, 3)),
        status="absent",
    )
    assert proofs.verify_proof(forged, commitment).claim == "absent"  # the Merkle part holds
    path = tmp_path / "forged.proof.json"
    path.write_bytes(forged.to_json())
    verify = ("proof", "verify", path, "--card", signed, "--trust", trust, "--now", NOW)
    result = _cli(*verify)
    assert result.returncode == 1, result.stdout + result.stderr
    line = one_error_line(result)
    assert "rests on the publisher's word alone" in line
    assert "--accept-publisher-order" in line
    assert result.stdout == ""
    result = _cli(*verify, "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["ok"] is False
    # An auditor co-signs only after 'verify --manifest', which refuses this manifest.
    audit = _cli("verify", signed, "--trust", trust, "--manifest", manifest, "--now", NOW)
    assert audit.returncode != 0
    assert "order" in audit.stdout + audit.stderr
    # Accepted only when asked to, and then said to rest on the publisher's word.
    result = _cli(*verify, "--accept-publisher-order", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["claim"] == "absent"
    assert report["order"] == {"publisherOnly": True, "auditors": [], "registries": []}
    assert "publisher's word alone" in report["detail"]


def test_an_independent_auditor_co_signature_is_the_basis_of_absence(world: World) -> None:
    gap = between(world.entries[5].sha256, world.entries[6].sha256)
    path = world.directory / "gap.proof.json"
    path.write_bytes(world.builder().prove(gap).to_json())
    result = _verify(path, world, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["order"]["publisherOnly"] is False
    assert report["order"]["auditors"] == [{"keyid": AUDITOR.public.keyid, "name": "Test Auditor"}]
    assert "checked by auditor Test Auditor" in report["detail"]
    # A presence proof needs no one to vouch for the order.
    present = world.directory / "present.proof.json"
    present.write_bytes(world.builder().prove(world.entries[5].sha256).to_json())
    report = json.loads(_verify(present, world, "--json").stdout)
    assert "order" not in report


def test_the_publishers_own_auditor_signature_does_not_count(
    tmp_path: Path, key: PrivateKey
) -> None:
    # Library level: a keyid among both the publisher signers and the auditors is no auditor.
    own = make_world(tmp_path / "own", entries_for(5), key, auditor=None)
    doubled = replace(own.ref, card=replace(own.ref.card, auditors=tuple(own.ref.card.publishers)))
    with pytest.raises(proofs.UnattestedOrderError, match="signed as publisher"):
        proofs.order_basis(doubled)
    assert proofs.order_basis(doubled, accept_publisher_order=True).publisher_only
    # Through the CLI: the publisher's key also trusted as auditor (a store that another check
    # may refuse outright, exit 2); either way the absence never verifies on its strength.
    gap = between(own.entries[1].sha256, own.entries[2].sha256)
    path = tmp_path / "gap.proof.json"
    path.write_bytes(own.builder().prove(gap).to_json())
    document = json.loads(own.trust.read_bytes())
    for item in document["keys"]:
        if item["keyid"] == key.public.keyid:
            item["roles"] = ["auditor", "dataset-publisher"]
    doubled_trust = tmp_path / "doubled-trust.json"
    doubled_trust.write_text(json.dumps(document))
    result = _cli(
        "proof", "verify", path, "--card", own.signed, "--trust", doubled_trust, "--now", NOW
    )
    assert result.returncode in (1, 2), result.stdout
    if result.returncode == 1:
        assert "signed as publisher, so it does not count" in one_error_line(result)


@dataclass(frozen=True)
class _Receipt:
    """Stands in for a registry's verified receipt (the registry is not part of this version)."""

    registry: str
    statement_sha256: str


def test_a_registry_receipt_for_the_card_is_a_basis_for_absence(
    tmp_path: Path, key: PrivateKey
) -> None:
    alone = make_world(tmp_path, entries_for(5), key, auditor=None)
    data = alone.builder().prove(between(alone.entries[0].sha256, alone.entries[1].sha256))
    proof = data.to_json()
    with pytest.raises(
        proofs.UnattestedOrderError, match="the absence rests on the publisher's word alone"
    ):
        proofs.check_proof(proof, alone.ref, what="p")
    receipt = _Receipt("Example Registry", alone.ref.commitment.statement_sha256)
    verified = proofs.check_proof(proof, alone.ref, what="p", receipts=[receipt])
    assert verified.order is not None
    assert verified.order.registries == ("Example Registry",)
    assert "registry Example Registry" in verified.describe()
    other = _Receipt("Example Registry", "ab" * 32)
    with pytest.raises(DigestMismatchError, match="for another card"):
        proofs.check_proof(proof, alone.ref, what="p", receipts=[other])


# ----------------------------------------------------------------------------------------------
# Proofs of format v1 (written before statuses were recorded)

V1 = VECTORS / "proofs-v1"


def test_v1_proofs_still_verify(tmp_path: Path) -> None:
    for name in ("present.proof.json", "absent.proof.json"):
        data = (V1 / name).read_bytes()
        assert proofs.Proof.from_json(data, what=name).to_json() == data
    trusted = ("--trust", V1 / "trust.json", "--now", NOW)
    present = _cli(
        "proof", "verify", V1 / "present.proof.json", "--card", V1 / "card.signed.json",
        *trusted, "--work", V1 / "present-work.txt", "--json",
    )  # fmt: skip
    assert present.returncode == 0, present.stderr
    report = json.loads(present.stdout)
    assert (report["format"], report["claim"], report["status"], report["digest"]) == (
        1,
        "present",
        "exact",
        "sha256",
    )
    absent = _cli(
        "proof", "verify", V1 / "absent.proof.json", "--card", V1 / "card.signed.json",
        *trusted, "--work", V1 / "absent-work.txt",
    )  # fmt: skip
    assert absent.returncode == 0, absent.stderr
    assert "ABSENT" in absent.stdout
    assert "checked by auditor Vector Auditor" in absent.stdout
    # The absence rule applies to old proofs too.
    alone = _cli(
        "proof", "verify", V1 / "absent.proof.json", "--card",
        V1 / "card.publisher-only.signed.json", *trusted,
    )  # fmt: skip
    assert alone.returncode == 1
    assert "publisher's word alone" in one_error_line(alone)
    # A proof of a format this version does not know is refused clearly.
    unknown = json.loads((V1 / "present.proof.json").read_bytes())
    unknown["type"] = "https://provenance.dev/proof/v9"
    path = tmp_path / "v9.proof.json"
    path.write_bytes(resign(unknown))
    result = _cli("proof", "verify", path, "--card", V1 / "card.signed.json", *trusted)
    assert result.returncode == 1
    assert "proof format 'https://provenance.dev/proof/v9' is not one" in one_error_line(result)


def test_v2_proofs_match_their_schema_and_round_trip(world: World) -> None:
    for work in (
        world.entries[2].sha256,
        between(world.entries[2].sha256, world.entries[3].sha256),
    ):
        proof = world.builder().prove(work)
        data = proof.to_json()
        document = json.loads(data)
        assert document["type"] == proofs.PROOF_TYPE
        assert document["digest"] == "sha256"
        assert proofs.Proof.from_json(data, what="p") == proof


# ----------------------------------------------------------------------------------------------
# Inputs that are not regular files


def test_proof_verify_work_fifo_exits_2(world: World, tmp_path: Path) -> None:
    proof = _proof_file(world, tmp_path, world.entries[1].sha256, "p.json")
    fifo = tmp_path / "work.fifo"
    os.mkfifo(fifo)
    result = _cli(
        "proof", "verify", proof, "--card", world.signed, "--trust", world.trust, "--now", NOW,
        "--work", fifo, timeout=20,
    )  # fmt: skip
    assert result.returncode == 2
    assert "not a regular file" in one_error_line(result)
    proof_fifo = tmp_path / "proof.fifo"
    os.mkfifo(proof_fifo)
    result = _cli(
        "proof", "verify", proof_fifo, "--card", world.signed, "--trust", world.trust, timeout=20
    )
    assert result.returncode == 2
    assert "not a regular file" in one_error_line(result)


def test_claim_status_and_text_digest_are_checked_beyond_the_schema(world: World) -> None:
    proof = world.builder().prove(world.entries[4].sha256)
    commitment = world.ref.commitment
    with pytest.raises(proofs.ProofError, match="cannot claim 'absent'"):
        proofs.verify_proof(replace(proof, claim="absent"), commitment)
    with pytest.raises(proofs.ProofError, match="needs the work's textSha256"):
        proofs.verify_proof(replace(proof, status="normalized"), commitment)
    labelled = replace(proof, status="near-duplicate")
    verified = proofs.verify_proof(labelled, commitment)
    assert (verified.status, verified.digest) == ("near-duplicate", "sha256")
    with pytest.raises(proofs.ProofError, match="not the work's"):
        proofs.verify_proof(replace(proof, work=world.entries[5].sha256), commitment)
