"""``provenance report usage``: records, bytes and shares per rights holder, source or license."""

from __future__ import annotations

from pathlib import Path

import click

from provenance import proofs
from provenance.cli._common import (
    PATH,
    echo,
    json_option,
    now_option,
    print_json,
    real_now,
    resolve_now,
)
from provenance.errors import InputError
from provenance.usage import BY_CHOICES, UsageReport, usage_report


@click.group("report")
def report_group() -> None:
    """Reports computed from a manifest that a signed card commits to."""


@report_group.command("usage")
@click.option("--manifest", "manifest_path", required=True, type=PATH, help="The manifest.")
@click.option("--card", "signed_path", required=True, type=PATH, help="The signed dataset card.")
@click.option("--trust", "trust_path", required=True, type=PATH, help="Trust store.")
@click.option(
    "--by",
    type=click.Choice(BY_CHOICES),
    default="rights-holder",
    show_default=True,
    help="Group records by this.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV on stdout.")
@json_option
@now_option
def usage(
    manifest_path: Path,
    signed_path: Path,
    trust_path: Path,
    by: str,
    as_csv: bool,
    as_json: bool,
    now: str | None,
) -> None:
    """Records, bytes and share of the dataset per rights holder, source or license.

    The card's signature is verified and the manifest must be the one it commits to (exit 1
    otherwise), so the figures are the ones the publisher signed.
    """
    if as_csv and as_json:
        raise InputError("--csv and --json exclude each other")
    # The time only decides which keys are trusted, and a moved clock never revives an expired
    # key: an override is announced, and keys are judged at the real time.
    resolve_now(now)
    ref = proofs.load_card(signed_path, trust_path, at=real_now())
    report = usage_report(manifest_path, ref, by=by)  # type: ignore[arg-type]
    if as_json:
        print_json(report.to_dict())
    elif as_csv:
        click.echo(report.to_csv(), nl=False)
    else:
        _print_table(report)


def _print_table(report: UsageReport) -> None:
    card = report.card
    echo(
        f"usage by {report.by} in {card['name']} {card['version']}:"
        f" {report.total_records} records, {report.total_bytes} bytes"
    )
    header = (report.by, "records", "share", "bytes", "share")
    rows = [
        (
            row.group,
            str(row.records),
            f"{row.record_share:.2%}",
            str(row.bytes),
            f"{row.byte_share:.2%}",
        )
        for row in report.rows
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for cells in [header, *rows]:
        echo(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
            ).rstrip()
        )


COMMANDS = [report_group]
