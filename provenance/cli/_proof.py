"""``provenance proof verify``: check a proof of presence or absence against a signed card."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from provenance import _json, proofs
from provenance._files import file_sha256
from provenance.cli._common import PATH, json_option, now_option, print_json, resolve_now
from provenance.cli._demo import EXTRA_STEPS
from provenance.errors import FormatError, VerificationError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@click.group("proof")
def proof_group() -> None:
    """Check proofs that works are present in, or absent from, a card's manifest."""


def _unverified_peek(unverified_data: bytes) -> tuple[str | None, str | None]:
    """Return the claim and work a (failed) proof states, for the report only."""
    try:
        document = _json.loads_object(unverified_data, what="proof")
    except FormatError:
        return None, None
    claim = document.get("claim")
    work = document.get("work")
    digest = work.get("sha256") if isinstance(work, dict) else None
    return (
        claim if claim in ("present", "absent") else None,
        digest if isinstance(digest, str) and _HEX64.match(digest) else None,
    )


def _sha256_of(path: Path) -> str:
    return file_sha256(path, what=f"--work {path}")


@proof_group.command("verify")
@click.argument("proof_path", metavar="PROOF", type=PATH)
@click.option("--card", "signed_path", required=True, type=PATH, help="The signed dataset card.")
@click.option("--trust", "trust_path", required=True, type=PATH, help="Trust store.")
@click.option(
    "--work", "work_path", type=PATH, help="Also check that the proof is about this file."
)
@json_option
@now_option
def verify(
    proof_path: Path,
    signed_path: Path,
    trust_path: Path,
    work_path: Path | None,
    as_json: bool,
    now: str | None,
) -> int:
    """Verify PROOF against the signed card, without the manifest.

    The card's signature is checked against the trust store (role dataset-publisher), then the
    proof against the Merkle root and size the card commits to. Exits 0 if the proof holds, 1 if
    it does not (including a damaged or altered proof file, or a card that does not verify),
    2 if a file is missing or the card or trust store is malformed.
    """
    at = resolve_now(now)
    unverified_data = proofs.read_proof(proof_path)
    work_digest = _sha256_of(work_path) if work_path is not None else None
    try:
        ref = proofs.load_card(signed_path, trust_path, at=at)
        proof = proofs.Proof.from_json(unverified_data, what=str(proof_path))
        verified = proofs.verify_proof(proof, ref.commitment)
        if work_digest is not None and work_digest != verified.work:
            raise proofs.ProofError(
                f"the proof is about work {verified.work}, not {work_path} (sha256 {work_digest})"
            )
    except VerificationError as exc:
        claim, work = _unverified_peek(unverified_data)
        if as_json:
            print_json({"ok": False, "claim": claim, "work": work, "error": str(exc)})
        click.echo(f"error: proof does not verify: {exc}", err=True)
        return 1
    predicate = ref.card.predicate
    if as_json:
        document: dict[str, Any] = verified.to_dict()
        document["card"] = {
            **document["card"],
            "name": predicate["name"],
            "version": predicate["version"],
            "publishers": list(ref.card.publishers),
        }
        print_json(document)
    else:
        click.echo(f"verified: {verified.describe()}")
        click.echo(
            f"   against card {predicate['name']} {predicate['version']}"
            f" (statement sha256 {ref.commitment.statement_sha256[:16]}...,"
            f" Merkle root {ref.commitment.merkle_root[:16]}...)"
        )
    return 0


COMMANDS = [proof_group]


def creator_proofs_step(stage: Any, samples: Path, work: Path) -> None:
    """Demo: the creator gets proofs of absence and presence, checks them without the manifest,
    and the usage report by rights holder is produced from the signed card."""
    import shutil

    portfolio = work / "portfolio"
    portfolio.mkdir(exist_ok=True)
    absent = portfolio / "12-the-adventure-of-the-copper-beeches.txt"
    present = portfolio / "01-a-scandal-in-bohemia.txt"
    for target, source in (
        (absent, samples / "works" / absent.name),
        (present, samples / "data" / "books" / present.name),
    ):
        if not target.exists():
            shutil.copyfile(source, target)
    w = str(work)
    signed = ("--card", f"{w}/card.signed.json", "--trust", f"{w}/trust.json")
    manifest = ("--manifest", f"{w}/manifest.jsonl")

    stage.party("Creator: proofs to show others, checked against the signed card alone")
    stage.say("story XII was not found: a proof of absence (the two adjacent manifest entries")
    stage.say("that bracket its sha256, each with its Merkle inclusion proof)")
    stage.run("lookup", str(absent), *manifest, *signed, "--proof-out", f"{w}/xii.proof.json")
    stage.say("story I is in the dataset byte for byte: a proof of presence")
    stage.run("lookup", str(present), *manifest, *signed, "--proof-out", f"{w}/i.proof.json")
    stage.say("anyone with the signed card and the trust store checks them; no manifest needed")
    stage.run("proof", "verify", f"{w}/xii.proof.json", *signed)
    stage.run("proof", "verify", f"{w}/i.proof.json", *signed, "--work", str(present))
    proof = work / "xii.proof.json"
    data = bytearray(proof.read_bytes())
    position = data.index(b'"sha256": "', data.index(b'"work"')) + len(b'"sha256": "')
    data[position] = ord("0") if data[position] != ord("0") else ord("1")
    (work / "xii.altered.proof.json").write_bytes(bytes(data))
    stage.say("one character of the work's digest changed in a copy of the proof: refused")
    stage.run("proof", "verify", f"{w}/xii.altered.proof.json", *signed, expect=1)

    stage.party("Rights holders and developer: usage report, the basis for compensation")
    stage.run("report", "usage", *manifest, *signed, "--by", "rights-holder")


EXTRA_STEPS.append(creator_proofs_step)
