"""``provenance proof verify``: check a proof of presence or absence against a signed card."""

from __future__ import annotations

from pathlib import Path

import click

from provenance.cli._common import (
    PATH,
    echo,
    json_option,
    now_option,
    print_json,
    resolve_clock,
)


@click.group("proof")
def proof_group() -> None:
    """Check proofs that works are present in, or absent from, a card's manifest."""


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
    Exits 0 if the proof holds, 1 if it does not (including a damaged or altered proof file, or
    a card that does not verify), 2 if a file is missing or the card or trust store is
    malformed.
    """
    from provenance.creators import SignedCardFiles, check_proof_file

    clock = resolve_clock(now)
    check = check_proof_file(
        proof_path,
        SignedCardFiles(signed_path, trust_path, clock.at, clock.real_time),
        work_path=work_path,
        receipts=receipt_paths,
        accept_publisher_order=accept_publisher_order,
    )
    if check.proof is None or check.card is None:
        advice = (
            "; give a registry's receipt for the card (--receipt), or pass"
            " --accept-publisher-order to accept it knowingly"
        )
        advice = advice if check.unattested_order else ""
        if as_json:
            print_json(check.to_dict(advice=advice))
        echo(f"error: proof does not verify: {check.problem}{advice}", err=True)
        return 1
    if as_json:
        print_json(check.to_dict())
        return 0
    verified, ref = check.proof, check.card
    predicate = ref.card.predicate
    echo(f"verified: {verified.describe()}")
    echo(
        f"   claim about the work's {verified.digest}; against card {predicate.name}"
        f" {predicate.version} (statement sha256 {ref.commitment.statement_sha256[:16]}...,"
        f" Merkle root {ref.commitment.merkle_root[:16]}...)"
    )
    return 0


COMMANDS = [proof_group]
