"""``provenance proof verify``: check a proof of presence or absence against a signed card."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from provenance import _json, proofs
from provenance._files import read_bytes
from provenance.cli._common import PATH, json_option, now_option, print_json, resolve_now
from provenance.cli._demo import EXTRA_STEPS
from provenance.errors import FormatError, VerificationError

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@click.group("proof")
def proof_group() -> None:
    """Check proofs that works are present in, or absent from, a card's manifest."""


def _unverified_peek(unverified_data: bytes) -> dict[str, Any]:
    """Return the claim, status and work a (failed) proof states, for the report only."""
    try:
        document = _json.loads_object(unverified_data, what="proof")
    except FormatError:
        return {"claim": None, "work": None}
    claim = document.get("claim")
    work = document.get("work")
    digest = work.get("sha256") if isinstance(work, dict) else None
    peek: dict[str, Any] = {
        "claim": claim if claim in ("present", "absent") else None,
        "work": digest if isinstance(digest, str) and _HEX64.match(digest) else None,
    }
    status = document.get("status")
    if status in proofs.STATUSES:
        peek["status"] = status
    return peek


def _work_digests(path: Path) -> proofs.WorkDigests:
    from provenance.lookup import MAX_WORK_BYTES

    return proofs.WorkDigests.of(read_bytes(path, limit=MAX_WORK_BYTES, what=f"--work {path}"))


@proof_group.command("verify")
@click.argument("proof_path", metavar="PROOF", type=PATH)
@click.option("--card", "signed_path", required=True, type=PATH, help="The signed dataset card.")
@click.option("--trust", "trust_path", required=True, type=PATH, help="Trust store.")
@click.option(
    "--work",
    "work_path",
    type=PATH,
    help="Also check that the proof is about this file (its sha256, or its norm-text-v1"
    " digest for a normalized copy).",
)
@click.option(
    "--receipt",
    "receipt_paths",
    multiple=True,
    type=PATH,
    help="A registry's receipt (.tlog-proof) for the card, signed by a transparency-log key of"
    " the trust store: the registry checked the manifest's order, a basis for absence claims.",
)
@click.option(
    "--accept-publisher-order",
    is_flag=True,
    help="Accept an absence claim although only the publisher vouches for the manifest's"
    " order (no independent auditor co-signature, no registry receipt).",
)
@json_option
@now_option
def verify(
    proof_path: Path,
    signed_path: Path,
    trust_path: Path,
    work_path: Path | None,
    receipt_paths: tuple[Path, ...],
    accept_publisher_order: bool,
    as_json: bool,
    now: str | None,
) -> int:
    """Verify PROOF against the signed card, without the manifest.

    The card's signature is checked against the trust store (role dataset-publisher), then the
    proof against the Merkle root and size the card commits to. A proof of absence holds only
    if the manifest is sorted, which the publisher alone could fake: it is accepted only when
    a trusted auditor other than the publisher co-signed the card (auditors co-sign after
    'verify --manifest' checked the order), when a registry's receipt for the card is given
    (--receipt: the registry checks the order on admission), or with --accept-publisher-order.
    Exits 0 if the
    proof holds, 1 if it does not (including a damaged or altered proof file, or a card that
    does not verify), 2 if a file is missing or the card or trust store is malformed.
    """
    at = resolve_now(now)
    unverified_data = proofs.read_proof(proof_path)
    work = _work_digests(work_path) if work_path is not None else None
    try:
        ref = proofs.load_card(signed_path, trust_path, at=at)
        receipts = []
        if receipt_paths:
            from provenance.cli._trust import load_trust_store
            from provenance.logclient import registered_card

            store = load_trust_store(trust_path)
            receipts = [
                registered_card(path, store, at=at, card=signed_path) for path in receipt_paths
            ]
        verified = proofs.check_proof(
            unverified_data,
            ref,
            what=str(proof_path),
            work=work,
            work_label=str(work_path),
            receipts=receipts,
            accept_publisher_order=accept_publisher_order,
        )
    except VerificationError as exc:
        message = str(exc)
        if isinstance(exc, proofs.UnattestedOrderError):
            message += (
                "; give a registry's receipt for the card (--receipt), or pass"
                " --accept-publisher-order to accept it knowingly"
            )
        if as_json:
            print_json({"ok": False, **_unverified_peek(unverified_data), "error": message})
        click.echo(f"error: proof does not verify: {message}", err=True)
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
            f"   claim about the work's {verified.digest}; against card {predicate['name']}"
            f" {predicate['version']} (statement sha256 {ref.commitment.statement_sha256[:16]}...,"
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
    quoted = portfolio / "11-the-adventure-of-the-beryl-coronet.txt"
    for target, source in (
        (absent, samples / "works" / absent.name),
        (present, samples / "data" / "books" / present.name),
        (quoted, samples / "works" / quoted.name),
    ):
        if not target.exists():
            shutil.copyfile(source, target)
    w = str(work)
    signed = ("--card", f"{w}/card.signed.json", "--trust", f"{w}/trust.json")
    manifest = ("--manifest", f"{w}/manifest.jsonl")

    stage.party("Creator: proofs to show others, checked against the signed card alone")
    stage.say("story XII was not found in any form: a proof of absence (the two adjacent")
    stage.say("manifest entries that bracket its sha256, each with its Merkle inclusion proof)")
    stage.run("lookup", str(absent), *manifest, *signed, "--proof-out", f"{w}/xii.proof.json")
    stage.say("story I is in the dataset byte for byte: a proof of presence")
    stage.run("lookup", str(present), *manifest, *signed, "--proof-out", f"{w}/i.proof.json")
    stage.say("story XI is quoted inside a forum page: a proof that this page is in the dataset,")
    stage.say("labelled 'contained' (never a proof of absence for a work found in any form)")
    stage.run("lookup", str(quoted), *manifest, *signed, "--proof-out", f"{w}/xi.proof.json")
    stage.say("anyone with the signed card and the trust store checks them; no manifest needed;")
    stage.say("absence counts because an auditor, not the publisher, co-signed the card after")
    stage.say("'verify --manifest' checked the manifest's order")
    stage.run("proof", "verify", f"{w}/xii.proof.json", *signed)
    stage.run("proof", "verify", f"{w}/i.proof.json", *signed, "--work", str(present))
    stage.run("proof", "verify", f"{w}/xi.proof.json", *signed)
    stage.run(
        "card",
        "sign",
        f"{w}/card.json",
        "--key",
        f"{w}/developer.key",
        "-o",
        f"{w}/card.publisher-only.json",
    )
    stage.say("against the same card signed by the publisher alone, the absence is refused:")
    stage.say("the publisher could have mis-ordered its manifest to hide story XII")
    stage.run(
        "proof",
        "verify",
        f"{w}/xii.proof.json",
        "--card",
        f"{w}/card.publisher-only.json",
        "--trust",
        f"{w}/trust.json",
        expect=1,
    )
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
