"""``provenance verify``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from provenance import manifest
from provenance.cli._common import (
    PATH,
    echo,
    json_option,
    load_trust,
    now_option,
    print_json,
    progress_bar,
    resolve_clock,
)
from provenance.cli._executor import check_executor, executor_options
from provenance.cli._walk import exclude_option, symlinks_option
from provenance.errors import InputError
from provenance.partitions import is_partitioned
from provenance.verify import DataDiff, Report, verify_file

if TYPE_CHECKING:
    from provenance.lists.audit import ListFinding


@click.command("verify")
@click.argument("signed_path", metavar="SIGNED", type=PATH)
@click.option("--trust", "trust_path", required=True, type=PATH, help="Trust store.")
@click.option(
    "--manifest", "manifest_path", type=PATH, help="Check this manifest against the card."
)
@click.option("--data", "data_dir", type=PATH, help="Re-hash this directory against the manifest.")
@exclude_option
@symlinks_option
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="all cores",
    help="Hashing processes for --data.",
)
@click.option(
    "--lists",
    "lists",
    metavar="CACHE|URL",
    help="Check the manifest against the exclusion lists the card cites: a list cache, or a"
    " list repository URL (fetched into a temporary cache with --trust).",
)
@click.option(
    "--strict", is_flag=True, help="With --lists, entries listed after the card was made fail."
)
@executor_options
@json_option
@now_option
def verify_command(
    signed_path: Path,
    trust_path: Path,
    manifest_path: Path | None,
    data_dir: Path | None,
    excludes: tuple[str, ...],
    symlinks: manifest.SymlinkPolicy,
    workers: int,
    lists: str | None,
    strict: bool,
    executor: str,
    ray_address: str | None,
    as_json: bool,
    now: str | None,
) -> int:
    """Verify a signed card: signatures, then the manifest and data it commits to.

    With --data, the directory is walked as 'manifest build' walks it: give the same --exclude
    patterns (and --symlinks) as when the manifest was built. Changed, missing, extra and moved
    files are counted, and listed (20 per kind; --json lists every path).

    With --lists, a manifest entry on a list version the card claims to have applied is a
    violation; one only on a later version is newly listed (reported; a failure with --strict).

    With --executor and a partitioned manifest (no --data), each part is read, checked against
    index.json and joined with the lists in its own task; the findings are the same.

    Exits 0 when everything verifies, 1 when a check fails.
    """
    if data_dir is None and (excludes or symlinks == "error"):
        raise InputError("--exclude and --symlinks apply to the files of --data")
    if manifest_path is None and data_dir is not None:
        raise InputError("--data needs --manifest: the files are checked against the manifest")
    if manifest_path is None and lists is not None:
        raise InputError(
            "--lists needs --manifest: the manifest entries are checked against the lists"
        )
    check_executor(executor, ray_address)
    given = click.get_current_context().get_parameter_source("executor")
    run_on: str | None = None if given == click.core.ParameterSource.DEFAULT else executor
    if (
        run_on is not None
        and data_dir is None
        and not (manifest_path is not None and is_partitioned(manifest_path))
    ):
        raise click.UsageError(
            "--executor applies to the files of --data or the parts of a partitioned --manifest"
        )
    clock = resolve_clock(now)
    trust = load_trust(trust_path, clock)
    with progress_bar(0, "verifying") as bar:
        report = verify_file(
            signed_path,
            trust,
            at=clock.at,
            manifest_path=manifest_path,
            data_dir=data_dir,
            ignore=manifest.exclusion_matcher(excludes),
            symlinks=symlinks,
            workers=workers,
            # Without a bar shown, the walk need not stat every file for a total.
            progress=None if bar.disable else bar.update,
            on_total=None if bar.disable else (lambda total: bar.reset(total=total)),
            lists=lists,
            strict=strict,
            executor=run_on,
            ray_address=ray_address,
        )
    if as_json:
        print_json(report.to_dict())
    else:
        print_report(report)
    return 0 if report.ok else 1


MAX_SHOWN_PATHS = 20


def print_report(report: Report) -> None:
    """Print a human-readable report (every id, path and name escaped)."""
    for check in report.checks:
        echo(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
        if check.name == "data files" and report.data is not None:
            _print_data(report.data)
    for violation in report.violations:
        echo(f"VIOLATION  {_describe(violation)}")
    for listed in report.newly_listed:
        echo(f"newly listed  {_describe(listed)}")
    echo("verified" if report.ok else "NOT verified")


def _print_data(data: DataDiff) -> None:
    """The paths of each kind of difference, at most MAX_SHOWN_PATHS of each."""
    kinds: list[tuple[str, list[str]]] = [
        ("changed", list(data.changed)),
        ("missing", list(data.missing)),
        ("extra", list(data.extra)),
        ("moved", [f"{old} -> {new}" for old, new in data.moved]),
        ("unreadable", [f"{path} ({error})" for path, error in data.unreadable]),
    ]
    cut = False
    for kind, paths in kinds:
        for path in paths[:MAX_SHOWN_PATHS]:
            echo(f"        {kind + ':':<11} {path}")
        if len(paths) > MAX_SHOWN_PATHS:
            cut = True
            echo(f"        {kind + ':':<11} ... and {len(paths) - MAX_SHOWN_PATHS:,} more")
    if cut:
        echo("        (--json lists every path)")


def _describe(finding: ListFinding) -> str:
    """One line for a violation or a newly listed entry."""
    entry = finding.entry
    if entry is None:
        return f"list {finding.list}: {finding.reason or ''}"
    return (
        f"{finding.id}: on {finding.list} v{finding.version}"
        f" ({entry.type} {entry.value}, {entry.category})"
    )


COMMANDS = [verify_command]
