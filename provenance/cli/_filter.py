"""``provenance filter``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from provenance.cli import _demo_filter  # noqa: F401 - appends the filter part of the demo
from provenance.cli._columns import column_options, columns_from
from provenance.cli._common import PATH, json_option, now_option, print_json, resolve_now


@click.command("filter")
@click.argument("input_path", metavar="INPUT", type=PATH)
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
@click.option("--report", type=PATH, help="Write the filter report (JSON) here.")
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
@json_option
@now_option
def filter_command(
    input_path: Path,
    lists: str | None,
    trust_path: Path,
    kept: Path,
    removed: Path | None,
    report: Path | None,
    selectors: tuple[str, ...],
    keep_missing_url: bool,
    as_json: bool,
    now: str | None,
    **column_names: str,
) -> None:
    """Remove from INPUT every record an exclusion list matches.

    INPUT is a records file (JSON Lines, CSV or Parquet with the columns of 'manifest build')
    or a directory. KEPT and --removed are written in the input's format, in input order; for
    a directory they list relative paths, one per line. A record whose URL cannot be evaluated
    is removed and counted as unevaluable; one without a URL is removed and counted as
    missingUrl (unless --keep-missing-url). If no record has a URL while domain or URL entries
    are applied, nothing is written and the command exits 2.
    """
    from provenance.cli._trust import load_trust_store
    from provenance.filter import apply_lists, list_cache, select_lists

    at = resolve_now(now)
    columns = columns_from(column_names)
    store = load_trust_store(trust_path)
    with list_cache(lists, store=store, at=at) as cache:
        cached = select_lists(cache, selectors, at=at, store=store)
        result = apply_lists(
            input_path,
            cached,
            kept_path=kept,
            removed_path=removed,
            report_path=report,
            at=at,
            columns=columns,
            keep_missing_url=keep_missing_url,
        )
    for note in result.get("notes", []):
        click.echo(f"note: {note}", err=True)
    if as_json:
        print_json(result)
        return
    _print_summary(result, kept)


def _print_summary(result: dict[str, Any], kept: Path) -> None:
    records = result["records"]
    dropped = [f"{records['removed']} matched"]
    if records["unevaluable"]:
        dropped.append(f"{records['unevaluable']} unevaluable")
    missing = records.get("missingUrl", 0)
    kept_missing = result.get("missingUrlPolicy") == "kept"
    if missing and not kept_missing:
        dropped.append(f"{missing} without a URL")
    click.echo(
        f"kept {records['kept']} of {records['input']} record(s) in {kept};"
        f" removed {', '.join(dropped[:-1]) + ' and ' if len(dropped) > 1 else ''}{dropped[-1]}"
    )
    if missing and kept_missing:
        click.echo(f"  kept {missing} record(s) without a URL: not checked by domain or URL")
    for item in result["lists"]:
        matched = ", ".join(f"{k} {v}" for k, v in item["matched"].items() if v) or "nothing"
        click.echo(
            f"  {item['name']} v{item['version']} ({item['digest'][:16]}): matched {matched};"
            f" removed {item['removed']}"
        )
    for example in result.get("unevaluableExamples", [])[:5]:
        click.echo(f"  cannot evaluate {example['id']!r}: {example['reason']}")
    examples = result.get("missingUrlExamples", [])
    if missing and examples:
        shown = ", ".join(repr(e) for e in examples[:5])
        click.echo(f"  without a URL: {shown}{', ...' if missing > 5 else ''}")


COMMANDS = [filter_command]
