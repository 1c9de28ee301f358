"""``provenance lookup``: creators look up a portfolio of works in a dataset's manifest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from provenance import lookup, manifest
from provenance._files import read_bytes
from provenance.cli._common import PATH, json_option, now_option, print_json, resolve_now
from provenance.cli._demo import EXTRA_STEPS
from provenance.errors import InputError

_BATCH = 256


def collect_works(paths: tuple[Path, ...]) -> list[tuple[str, Path]]:
    """Return ``(label, path)`` per work: files as given, a directory's files in sorted order.

    Raises:
        InputError: a work is missing, or a directory holds no file.
        UnsafePathError: a directory holds a symlink out of it or a special file.
    """
    works: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_dir():
            files = manifest.walk_files(path)
            if not files:
                raise InputError(f"{path}: directory holds no work")
            works.extend((str(path / ref.id), Path(ref.path)) for ref in files)
        elif path.exists() or path.is_symlink():
            works.append((str(path), path))
        else:
            raise InputError(f"{path}: no such work file")
    return works


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@click.command("lookup")
@click.argument("works", nargs=-1, required=True, type=PATH)
@click.option("--manifest", "manifest_path", required=True, type=PATH, help="The manifest.")
@click.option(
    "--fingerprints",
    "sidecar",
    type=PATH,
    help="The fingerprint index (default: MANIFEST.fp next to the manifest, if present). With"
    " --card it is used only if the card commits to its digest.",
)
@click.option("--card", "card_path", type=PATH, help="Signed card to check the manifest against.")
@click.option("--trust", "trust_path", type=PATH, help="Trust store for --card.")
@click.option(
    "--proof-out",
    type=PATH,
    help="Write a proof for each work (a file for one work, else a directory): of presence of"
    " the matched entry, labelled with the status, or of absence for an absent work.",
)
@now_option
@json_option
def lookup_command(
    works: tuple[Path, ...],
    manifest_path: Path,
    sidecar: Path | None,
    card_path: Path | None,
    trust_path: Path | None,
    proof_out: Path | None,
    now: str | None,
    as_json: bool,
) -> None:
    """Look up WORK... (files, or directories of works) in a dataset's manifest.

    Each work gets one status: exact (same bytes), normalized (same text after norm-text-v1),
    near-duplicate (an edited copy), contained (a substantial part inside a larger record) or
    absent, with the matching entries and a similarity score. With --card and --trust the
    manifest (and the fingerprint index, if the card commits to one) is checked against the
    signed card first.
    """
    if (card_path is None) != (trust_path is None):
        raise InputError("--card and --trust go together")
    if proof_out is not None and card_path is None:
        raise InputError("--proof-out needs --card and --trust (proofs are against a signed card)")
    collected = collect_works(works)
    card_ref = None
    if card_path is not None and trust_path is not None:
        from provenance import proofs

        card_ref = proofs.load_card(card_path, trust_path, at=resolve_now(now))
    results: list[lookup.WorkResult] = []
    with lookup.open_for_lookup(manifest_path, sidecar=sidecar, card=card_ref, warn=_warn) as (
        index,
        builder,
    ):
        for start in range(0, len(collected), _BATCH):
            batch = [
                (label, read_bytes(path, limit=lookup.MAX_WORK_BYTES, what=label))
                for label, path in collected[start : start + _BATCH]
            ]
            results.extend(lookup.lookup_works(batch, index))
    written = []
    if proof_out is not None and builder is not None:
        from provenance import proofs

        single = len(works) == 1 and not works[0].is_dir()
        requests = lookup.proof_requests(results)
        try:
            written = proofs.write_proofs(
                builder,
                [(r.work, q) for r, q in zip(results, requests, strict=True)],
                proof_out,
                single=single,
            )
        except InputError as exc:
            raise InputError(f"--proof-out {exc}") from None
    if as_json:
        document: dict[str, object] = {"results": [r.to_dict() for r in results]}
        if written:
            document["proofs"] = [
                {
                    "work": r.work,
                    "path": str(path),
                    "claim": proof.claim,
                    "status": proof.work_status,
                    "digest": proof.digest,
                }
                for r, (path, proof) in zip(results, written, strict=True)
            ]
        print_json(document)
        return
    width = max(len(s) for s in lookup.STATUSES)
    for result in results:
        click.echo(f"{result.status:<{width}}  {result.work}")
        for match in result.matches[:10]:
            click.echo(f"{'':<{width}}    {match.status} {match.id} (score {match.score:.4f})")
        if len(result.matches) > 10:
            click.echo(f"{'':<{width}}    ... and {len(result.matches) - 10} more")
    for path, proof in written:
        what = "absence" if proof.claim == "absent" else f"presence ({proof.work_status})"
        click.echo(f"wrote proof of {what} {path}")
    sys.stdout.flush()


COMMANDS = [lookup_command]


def creator_lookup_step(stage: Any, samples: Path, work: Path) -> None:
    """Demo: a creator looks up a portfolio of three stories against the signed card."""
    import shutil

    portfolio = work / "portfolio"
    portfolio.mkdir(exist_ok=True)
    for source in (
        samples / "data" / "books" / "01-a-scandal-in-bohemia.txt",
        samples / "works" / "11-the-adventure-of-the-beryl-coronet.txt",
        samples / "works" / "12-the-adventure-of-the-copper-beeches.txt",
    ):
        shutil.copyfile(source, portfolio / source.name)
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


EXTRA_STEPS.append(creator_lookup_step)
