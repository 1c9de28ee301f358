"""``provenance verify``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from provenance import card
from provenance._files import read_bytes
from provenance.cli._common import (
    PATH,
    json_option,
    now_option,
    print_json,
    progress_bar,
    resolve_now,
)
from provenance.cli._trust import load_trust_store
from provenance.envelope import Envelope
from provenance.errors import FormatError
from provenance.verify import Report, verify


@click.command("verify")
@click.argument("signed_path", metavar="SIGNED", type=PATH)
@click.option("--trust", "trust_path", required=True, type=PATH, help="Trust store.")
@click.option(
    "--manifest", "manifest_path", type=PATH, help="Check this manifest against the card."
)
@click.option("--data", "data_dir", type=PATH, help="Re-hash this directory against the manifest.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="all cores",
    help="Hashing processes for --data.",
)
@json_option
@now_option
def verify_command(
    signed_path: Path,
    trust_path: Path,
    manifest_path: Path | None,
    data_dir: Path | None,
    workers: int,
    as_json: bool,
    now: str | None,
) -> int:
    """Verify a signed card: signatures, then the manifest and data it commits to.

    Exits 0 when everything verifies, 1 when a check fails.
    """
    at = resolve_now(now)
    trust = load_trust_store(trust_path)
    document = card.unverified_card_document(
        read_bytes(signed_path, limit=card.MAX_CARD_BYTES), what=str(signed_path)
    )
    if not isinstance(document, Envelope):
        raise FormatError(f"{signed_path}: the card is not signed; run 'provenance card sign'")
    with progress_bar(0, "verifying") as bar:
        report = verify(
            document,
            trust,
            at=at,
            what=str(signed_path),
            manifest_path=manifest_path,
            data_dir=data_dir,
            workers=workers,
            progress=bar.update,
            on_total=lambda total: bar.reset(total=total),
        )
    if as_json:
        print_json(report.to_dict())
    else:
        print_report(report)
    return 0 if report.ok else 1


def print_report(report: Report) -> None:
    """Print a human-readable report."""
    for check in report.checks:
        click.echo(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    for violation in report.violations:
        click.echo(f"VIOLATION  {violation}")
    for listed in report.newly_listed:
        click.echo(f"newly listed  {listed}")
    click.echo("verified" if report.ok else "NOT verified")


COMMANDS = [verify_command]
