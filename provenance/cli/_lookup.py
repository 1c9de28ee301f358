"""``provenance lookup``: creators look up a portfolio of works in a dataset's manifest."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provenance.cli._common import (
    PATH,
    echo,
    json_option,
    now_option,
    print_json,
    resolve_clock,
    warn,
)
from provenance.cli._executor import check_executor, executor_options
from provenance.errors import InputError


@click.command("lookup")
@click.argument("works", nargs=-1, required=True, type=PATH)
@click.option("--manifest", "manifest_path", required=True, type=PATH, help="The manifest.")
@click.option(
    "--fingerprints",
    "sidecar",
    type=PATH,
    help="The fingerprint index (default: MANIFEST.fp next to the manifest, if present; a"
    " partitioned manifest's are its parts', OUT/part-NNNNN.jsonl.fp). With --card it is used"
    " only if the card commits to its digest.",
)
@click.option("--card", "card_path", type=PATH, help="Signed card to check the manifest against.")
@click.option("--trust", "trust_path", type=PATH, help="Trust store for --card.")
@click.option(
    "--proof-out",
    type=PATH,
    help="Write a proof for each work (a file for one work, else a directory): of presence of"
    " the matched entry, labelled with the status, or of absence for an absent work.",
)
@executor_options
@now_option
@json_option
def lookup_command(
    works: tuple[Path, ...],
    manifest_path: Path,
    sidecar: Path | None,
    card_path: Path | None,
    trust_path: Path | None,
    proof_out: Path | None,
    executor: str,
    ray_address: str | None,
    now: str | None,
    as_json: bool,
) -> None:
    """Look up WORK... (files, or directories of works) in a dataset's manifest.

    Each work gets one status: exact (same bytes), normalized (same text after norm-text-v1),
    near-duplicate (an edited copy), contained (a substantial part inside a larger record) or
    absent, with the matching entries and a similarity score. With --card and --trust the
    manifest (and the fingerprint index, if the card commits to one) is checked against the
    signed card first; a partitioned manifest (a directory) is then read only in the parts
    that the works' digests fall in, while normalized and near-duplicate lookups search every
    part's fingerprint sidecar. --executor ray reads and fingerprints the works in Ray tasks.
    """
    from provenance.creators import SignedCardFiles, lookup_files
    from provenance.lookup import STATUSES

    if (card_path is None) != (trust_path is None):
        raise InputError("--card and --trust go together")
    if proof_out is not None and card_path is None:
        raise InputError("--proof-out needs --card and --trust (proofs are against a signed card)")
    signed = None
    if card_path is not None and trust_path is not None:
        clock = resolve_clock(now)
        signed = SignedCardFiles(card_path, trust_path, clock.at, clock.real_time)
    check_executor(executor, ray_address)
    run = lookup_files(
        works,
        manifest_path,
        warn=warn,
        sidecar=sidecar,
        signed=signed,
        proof_out=proof_out,
        executor=executor,
        ray_address=ray_address,
    )
    if as_json:
        print_json(run.to_dict())
        return
    width = max(len(s) for s in STATUSES)
    for result in run.results:
        echo(f"{result.status:<{width}}  {result.work}")
        for match in result.matches[:10]:
            echo(f"{'':<{width}}    {match.status} {match.id} (score {match.score:.4f})")
        if len(result.matches) > 10:
            echo(f"{'':<{width}}    ... and {len(result.matches) - 10} more")
    for written in run.proofs:
        proof = written.proof
        what = "absence" if proof.claim == "absent" else f"presence ({proof.work_status})"
        echo(f"wrote proof of {what} {written.path}")
    sys.stdout.flush()


COMMANDS = [lookup_command]
