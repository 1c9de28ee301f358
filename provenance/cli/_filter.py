"""``provenance filter``."""

from __future__ import annotations

from pathlib import Path

import click

from provenance.cli import _demo_filter  # noqa: F401 - appends the filter part of the demo
from provenance.cli._common import PATH, json_option, now_option, print_json, resolve_now


@click.command("filter")
@click.argument("input_path", metavar="INPUT", type=PATH)
@click.option(
    "--lists",
    "cache",
    type=PATH,
    help="List cache (default $PROVENANCE_HOME/lists or ~/.cache/provenance/lists).",
)
@click.option("-o", "--output", "kept", required=True, type=PATH, help="Kept records (or paths).")
@click.option("--removed", type=PATH, help="Write the removed records (or paths) here.")
@click.option("--report", type=PATH, help="Write the filter report (JSON) here.")
@click.option(
    "--list",
    "selectors",
    multiple=True,
    metavar="NAME[@VERSION]",
    help="Apply only these lists (repeatable); default: the newest cached version of each.",
)
@json_option
@now_option
def filter_command(
    input_path: Path,
    cache: Path | None,
    kept: Path,
    removed: Path | None,
    report: Path | None,
    selectors: tuple[str, ...],
    as_json: bool,
    now: str | None,
) -> None:
    """Remove from INPUT every record an exclusion list matches.

    INPUT is a records file (JSON Lines, CSV or Parquet with the columns of 'manifest build')
    or a directory. KEPT and --removed are written in the input's format, in input order; for
    a directory they list relative paths, one per line. A record whose URL cannot be evaluated
    is removed and counted as unevaluable.
    """
    from provenance.filter import apply_lists, select_lists
    from provenance.lists.cache import default_cache_dir

    at = resolve_now(now)
    cached = select_lists(cache if cache is not None else default_cache_dir(), selectors, at=at)
    result = apply_lists(
        input_path, cached, kept_path=kept, removed_path=removed, report_path=report, at=at
    )
    if as_json:
        print_json(result)
        return
    records = result["records"]
    click.echo(
        f"kept {records['kept']} of {records['input']} record(s) in {kept};"
        f" removed {records['removed']} matched"
        + (f" and {records['unevaluable']} unevaluable" if records["unevaluable"] else "")
    )
    for item in result["lists"]:
        matched = ", ".join(f"{k} {v}" for k, v in item["matched"].items() if v) or "nothing"
        click.echo(
            f"  {item['name']} v{item['version']} ({item['digest'][:16]}): matched {matched};"
            f" removed {item['removed']}"
        )
    for example in result.get("unevaluableExamples", [])[:5]:
        click.echo(f"  cannot evaluate {example['id']!r}: {example['reason']}")


COMMANDS = [filter_command]
