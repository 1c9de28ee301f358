"""A registry's receipt as the basis of absence claims: ``proof verify --receipt``.

An absence proof rests on the manifest's ``(sha256, id)`` order, which only someone other than
the publisher can vouch for. The registry checks the order when it admits a card, so its
receipt for the card (verified against a trusted transparency-log key) is such a basis: the
claim is refused without it (no auditor co-signed), accepted with it, and refused with a
receipt for another card. A card whose publisher mis-ordered its manifest to "prove" a work
absent is refused on push, so no receipt for it exists. (SQLite; the receipt does not depend
on the database, which test_registry.py covers on both.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from provenance import _json, card, merkle, proofs
from provenance.envelope import sign_envelope
from provenance.keys import load_private_key
from provenance.manifest import ManifestSummary, decode_entry
from tests.conftest import NOW, SAMPLES, one_error_line, run_cli
from tests.registry_support import (
    ORIGIN,
    Card,
    Keys,
    RegistryServer,
    http,
    make_card,
    make_keys,
    ok,
    push_raw,
    sample_data,
)

pytestmark = pytest.mark.timeout(300)

AT = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)
ABSENT = SAMPLES / "works" / "12-the-adventure-of-the-copper-beeches.txt"


@dataclass
class World:
    work: Path
    keys: Keys
    example: Card
    other: Card
    registry: RegistryServer
    receipt: Path
    other_receipt: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("proofs")
    keys = make_keys(work / "keys")
    example = make_card(keys, sample_data(work), "example", spec=SAMPLES / "card-spec.yaml")
    (work / "other").mkdir()
    (work / "other" / "a.txt").write_text("another dataset's only text\n")
    other = make_card(keys, work / "other", "other")
    server = RegistryServer(
        ["--trust", str(keys.cards_trust), "--log-key", str(keys.log_key)]
        + ["--db", f"sqlite:///{work / 'registry.db'}"]
    )
    with server:
        receipts = []
        for name, pushed in (("example", example), ("other", other)):
            receipt = work / f"{name}.tlog-proof"
            ok(*pushed.push_args(server.url, keys.trust), "-o", receipt)
            receipts.append(receipt)
        yield World(work, keys, example, other, server, *receipts)


def _verify(world: World, proof: Path, signed: Path, *extra: str | Path) -> tuple[int, str, str]:
    result = run_cli(
        "proof", "verify", proof, "--card", signed, "--trust", world.keys.trust, *extra
    )
    return result.returncode, result.stdout, result.stderr


def test_an_absence_claim_stands_on_the_registrys_receipt(world: World) -> None:
    proof = world.work / "absent.proof.json"
    signed = ("--card", world.example.signed, "--trust", world.keys.trust)
    ok("lookup", ABSENT, "--manifest", world.example.manifest, *signed, "--proof-out", proof)
    assert json.loads(proof.read_bytes())["claim"] == "absent"
    # The card was signed by its publisher alone: no auditor vouches for the order.
    code, _, stderr = _verify(world, proof, world.example.signed)
    assert code == 1 and "publisher's word alone" in stderr and "--receipt" in stderr
    # The registry's receipt for this card is a basis.
    code, stdout, stderr = _verify(
        world, proof, world.example.signed, "--receipt", world.receipt, "--json"
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["claim"] == "absent"
    assert report["order"] == {"publisherOnly": False, "auditors": [], "registries": [ORIGIN]}
    assert f"checked by registry {ORIGIN}" in report["detail"]
    # A receipt for another card is no basis for this one.
    code, _, stderr = _verify(world, proof, world.example.signed, "--receipt", world.other_receipt)
    assert code == 1 and "names card" in stderr
    # Nor is a damaged receipt.
    damaged = world.work / "damaged.tlog-proof"
    data = bytearray(world.receipt.read_bytes())
    data[data.index(b"index ") - 5] ^= 1
    damaged.write_bytes(bytes(data))
    code, _, _ = _verify(world, proof, world.example.signed, "--receipt", damaged)
    assert code == 1


def test_a_receipt_needs_a_trusted_log_key(world: World, tmp_path: Path) -> None:
    proof = world.work / "absent.proof.json"
    if not proof.exists():
        signed = ("--card", world.example.signed, "--trust", world.keys.trust)
        ok("lookup", ABSENT, "--manifest", world.example.manifest, *signed, "--proof-out", proof)
    publisher_only = tmp_path / "trust.json"
    ok(
        "trust", "add", publisher_only, f"{world.keys.dev_key}.pub", "--name", "Dev",
        "--role", "dataset-publisher",
    )  # fmt: skip
    result = run_cli(
        "proof", "verify", proof, "--card", world.example.signed, "--trust", publisher_only,
        "--receipt", world.receipt,
    )  # fmt: skip
    assert result.returncode == 2
    assert "transparency-log" in one_error_line(result)


def test_a_misordered_manifest_is_refused_on_push_so_its_forged_absence_has_no_basis(
    world: World, tmp_path: Path
) -> None:
    # The publisher moves story I's entry to the end of its manifest and signs that: story I's
    # digest now falls between two adjacent leaves, and an absence proof holds as far as the
    # Merkle tree goes.
    lines = world.example.manifest.read_bytes().splitlines()
    story = (SAMPLES / "data/books/01-a-scandal-in-bohemia.txt").read_bytes()
    digest = hashlib.sha256(story).hexdigest()
    moved = next(line for line in lines if json.loads(line)["sha256"] == digest)
    order = [line for line in lines if line is not moved] + [moved]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_bytes(b"".join(line + b"\n" for line in order))
    entries = [decode_entry(line, what="manifest") for line in order]
    leaves = [merkle.leaf_hash(line) for line in order]
    summary = ManifestSummary(
        hashlib.sha256(manifest.read_bytes()).hexdigest(),
        len(order),
        sum(e.size or 0 for e in entries),
        merkle.root(leaves).hex(),
    )
    spec = card.load_spec((SAMPLES / "card-spec.yaml").read_bytes(), what="spec")
    spec["version"] = "1.0.1-forged"
    statement = card.build_statement(
        spec, entries, lambda: summary, manifest_name=manifest.name, created=AT
    )
    payload = _json.canonical(statement.to_dict())
    signed = tmp_path / "forged.signed.json"
    key = load_private_key(world.keys.dev_key)
    signed.write_bytes(sign_envelope(card.PAYLOAD_TYPE, payload, [key]).to_json())
    forged_id = hashlib.sha256(payload).hexdigest()
    # The registry refuses it: the manifest is out of order. Nothing is stored.
    status, answer = push_raw(
        world.registry.url, [("card", signed.read_bytes()), ("manifest", manifest.read_bytes())]
    )
    assert status == 422 and "order" in answer["error"], answer
    assert http("GET", f"{world.registry.url}/v1/cards/{forged_id}")[0] == 404
    # The forged absence proof of story I: two adjacent leaves bracketing its digest.
    position = order.index(moved)
    left = max(i for i in range(position) if json.loads(order[i])["sha256"] < digest)
    index = proofs.MerkleIndex(b"".join(leaves))
    commitment = proofs.CardCommitment(forged_id, summary.digest, summary.root, summary.entries)
    forged = proofs.Proof(
        "absent",
        digest,
        commitment,
        tuple(proofs.ProofLeaf(i, order[i], tuple(index.audit_path(i))) for i in (left, left + 1)),
        status="absent",
    )
    assert proofs.verify_proof(forged, commitment).claim == "absent"  # the Merkle part holds
    path = tmp_path / "forged.proof.json"
    path.write_bytes(forged.to_json())
    code, _, stderr = _verify(world, path, signed, "--now", NOW)
    assert code == 1 and "publisher's word alone" in stderr
    # No receipt names the forged card; one for a registered card is not for it.
    code, _, stderr = _verify(world, path, signed, "--receipt", world.receipt)
    assert code == 1 and f"whose id is {forged_id}" in stderr
    # While the genuine card's proof that story I is present verifies.
    present = tmp_path / "present.proof.json"
    genuine = ("--card", world.example.signed, "--trust", world.keys.trust)
    ok("lookup", SAMPLES / "data/books/01-a-scandal-in-bohemia.txt", "--manifest",
       world.example.manifest, *genuine, "--proof-out", present)  # fmt: skip
    assert _verify(world, present, world.example.signed)[0] == 0
