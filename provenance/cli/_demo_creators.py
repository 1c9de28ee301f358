"""The creators' part of ``provenance demo``: a creator looks up a portfolio against the signed
card, gets proofs of presence and absence, checks them without the manifest; then the usage
report by rights holder."""

from __future__ import annotations

import shutil
from pathlib import Path

from provenance.cli._demo import Stage


def make_portfolio(samples: Path, portfolio: Path) -> Path:
    """Copy the creator's three stories (I, in the dataset; XI and XII, not) into ``portfolio``.

    Returns ``portfolio``.
    """
    portfolio.mkdir(exist_ok=True)
    for source in (
        samples / "data" / "books" / "01-a-scandal-in-bohemia.txt",
        samples / "works" / "11-the-adventure-of-the-beryl-coronet.txt",
        samples / "works" / "12-the-adventure-of-the-copper-beeches.txt",
    ):
        shutil.copyfile(source, portfolio / source.name)
    return portfolio


def creator_lookup_step(stage: Stage, samples: Path, work: Path) -> None:
    """Demo: a creator looks up a portfolio of three stories against the signed card."""
    make_portfolio(samples, work / "portfolio")
    w = str(work)
    stage.party("Creator: was my work used? (lookup against the signed card)")
    stage.say("a portfolio of three stories: I (in the dataset as is), XI and XII (never licensed)")
    stage.say("XI turns up as an edited excerpt quoted inside a crawled forum page")
    stage.run(
        "lookup",
        f"{w}/portfolio",
        "--manifest",
        f"{w}/manifest.jsonl",
        "--card",
        f"{w}/card.signed.json",
        "--trust",
        f"{w}/trust.json",
    )


def creator_proofs_step(stage: Stage, samples: Path, work: Path) -> None:
    """Demo: the creator gets proofs of absence and presence, checks them without the manifest,
    and the usage report by rights holder is produced from the signed card."""
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
