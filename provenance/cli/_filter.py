"""``provenance filter``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from provenance.cli._columns import column_options, columns_from
from provenance.cli._common import (
    PATH,
    echo,
    json_option,
    load_trust,
    now_option,
    print_json,
    resolve_clock,
)
from provenance.cli._executor import check_executor, executor_options

if TYPE_CHECKING:
    from provenance.filter_report import FilterReport


@click.command("filter")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option(
    "--lists",
    "lists",
    metavar="CACHE|URL",
    help="A list cache (default $PROVENANCE_HOME/lists or ~/.cache/provenance/lists), or a list"
    " repository URL (fetched into a temporary cache, verified with --trust).",
)
@click.option(
    "--trust",
    "trust_path",
    type=PATH,
    required=True,
    help="Trust store: only lists signed by the keys it pins for them are applied.",
)
@click.option("-o", "--output", "kept", required=True, type=PATH, help="Kept records (or paths).")
@click.option("--removed", type=PATH, help="Write the removed records (or paths) here.")
@click.option("--report", "report_path", type=PATH, help="Write the filter report (JSON) here.")
@click.option(
    "--list",
    "selectors",
    multiple=True,
    metavar="NAME[@VERSION]",
    help="Apply only these lists (repeatable); default: the newest cached version of each.",
)
@column_options
@click.option(
    "--keep-missing-url",
    is_flag=True,
    help="Keep records without a URL (default: remove them when domain or URL entries are"
    " applied); the report and the card say how many were not checked.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="With several inputs: files filtered at once (default: all cores; with --executor"
    " ray, the CPUs of a local Ray instance).",
)
@executor_options
@json_option
@now_option
def filter_command(
    inputs: tuple[str, ...],
    lists: str | None,
    trust_path: Path,
    kept: Path,
    removed: Path | None,
    report_path: Path | None,
    selectors: tuple[str, ...],
    keep_missing_url: bool,
    workers: int | None,
    executor: str,
    ray_address: str | None,
    as_json: bool,
    now: str | None,
    **column_names: str,
) -> None:
    """Remove from INPUT every record an exclusion list matches.

    Several INPUTs (or globs such as 'crawl/*.parquet') are records files of one format,
    filtered as one dataset (one task per file, and per range of row groups of a large Parquet
    file, on --executor local or ray; one INPUT is split so too when --executor is given): KEPT
    and --removed hold their records in input order, and the report counts them all, the same
    bytes as one process writes.

    INPUT is a records file (JSON Lines, CSV or Parquet with the columns of 'manifest build')
    or a directory. KEPT and --removed are written in the input's format, in input order; for
    a directory they list relative paths, one per line. A record whose URL cannot be evaluated
    is removed and counted as unevaluable; one without a URL is removed and counted as
    missingUrl (unless --keep-missing-url). If no record has a URL while domain or URL entries
    are applied, nothing is written and the command exits 2.
    """
    from provenance.filter import filter_file
    from provenance.filter.shards import filter_inputs
    from provenance.sharded import expand_inputs

    check_executor(executor, ray_address)
    clock = resolve_clock(now)
    columns = columns_from(column_names)
    paths = expand_inputs(inputs)
    common = {
        "at": clock.at,
        "kept_path": kept,
        "removed_path": removed,
        "report_path": report_path,
        "selectors": selectors,
        "columns": columns,
        "keep_missing_url": keep_missing_url,
    }
    store = load_trust(trust_path, clock)
    given = click.get_current_context().get_parameter_source("executor")
    # One records file is cut into shards only when an executor is asked for; a directory is
    # filtered in this process (on Ray it is refused, as several inputs with one would be).
    default = given == click.core.ParameterSource.DEFAULT
    one = len(paths) == 1 and (default or (executor == "local" and paths[0].is_dir()))
    if one:
        report = filter_file(paths[0], lists, store, **common)  # type: ignore[arg-type]
    else:
        report = filter_inputs(
            paths,
            lists,
            store,
            executor=executor,
            ray_address=ray_address,
            workers=workers,
            **common,  # type: ignore[arg-type]
        )
    for note in report.notes or ():
        echo(f"note: {note}", err=True)
    if as_json:
        print_json(report.to_dict())
        return
    _print_summary(report, kept)


def _print_summary(report: FilterReport, kept: Path) -> None:
    records = report.records
    dropped = [f"{records.removed} matched"]
    if records.unevaluable:
        dropped.append(f"{records.unevaluable} unevaluable")
    missing = records.missing_url or 0
    if missing and not report.missing_url_kept:
        dropped.append(f"{missing} without a URL")
    echo(
        f"kept {records.kept} of {records.input} record(s) in {kept};"
        f" removed {', '.join(dropped[:-1]) + ' and ' if len(dropped) > 1 else ''}{dropped[-1]}"
    )
    if missing and report.missing_url_kept:
        echo(f"  kept {missing} record(s) without a URL: not checked by domain or URL")
    for item in report.lists:
        matched = ", ".join(f"{k} {v}" for k, v in item.matched.items() if v) or "nothing"
        echo(
            f"  {item.name} v{item.version} ({item.digest[:16]}): matched {matched};"
            f" removed {item.removed}"
        )
    for example in (report.unevaluable_examples or ())[:5]:
        echo(f"  cannot evaluate {example.id!r}: {example.reason}")
    examples = report.missing_url_examples or ()
    if missing and examples:
        shown = ", ".join(repr(e) for e in examples[:5])
        echo(f"  without a URL: {shown}{', ...' if missing > 5 else ''}")


COMMANDS = [filter_command]
