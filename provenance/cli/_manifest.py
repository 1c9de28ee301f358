"""``provenance manifest build|merge|show``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from provenance import manifest
from provenance.cli._columns import column_options, columns_from
from provenance.cli._common import PATH, echo, format_size, json_option, print_json, progress_bar
from provenance.cli._walk import exclude_option, report_walk, symlinks_option
from provenance.errors import InputError


@click.group("manifest")
def manifest_group() -> None:
    """Build and inspect manifests (one hashed entry per file or record)."""


@manifest_group.command("build")
@click.argument("input_path", metavar="INPUT", type=PATH)
@click.option("-o", "--output", required=True, type=PATH, help="Manifest file to write.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="all cores",
    help="Hashing processes.",
)
@click.option(
    "--shard",
    metavar="K/N",
    help="Build only shard K of N, K counting from 0 (0/4 ... 3/4); records K/N in"
    " OUTPUT.shard.json so that 'manifest merge' can check the set is complete.",
)
@exclude_option
@symlinks_option
@click.option(
    "--no-fingerprints",
    is_flag=True,
    help="Skip textSha256 and the near-duplicate fingerprint index (OUTPUT.fp) for lookups.",
)
@column_options
@json_option
def build(
    input_path: Path,
    output: Path,
    workers: int,
    shard: str | None,
    excludes: tuple[str, ...],
    symlinks: manifest.SymlinkPolicy,
    no_fingerprints: bool,
    as_json: bool,
    **column_names: str,
) -> None:
    """Hash INPUT (a directory, or a .jsonl/.csv/.parquet records file) into a manifest.

    A directory's ids are the files' paths under it: they must be valid UTF-8 in Unicode NFC
    with no control characters (rename or --exclude the others). By default text entries also
    get their normalized-text digest (textSha256) and near-duplicate fingerprints of texts and
    images go to a sidecar index OUTPUT.fp, which 'card build' records and 'lookup' uses.
    """
    from provenance.manifest_files import build_manifest_file

    columns = columns_from(column_names)
    shard_spec = manifest.parse_shard(shard) if shard else None
    is_dir = input_path.is_dir()
    if not is_dir and (excludes or symlinks == "error"):
        raise InputError(
            f"{input_path}: --exclude and --symlinks apply to a directory, not a records file"
        )
    stats = manifest.WalkStats()
    with progress_bar(0, "hashing" if is_dir else "records") as bar:
        summary = build_manifest_file(
            input_path,
            output,
            workers=workers,
            shard=shard_spec,
            ignore=manifest.exclusion_matcher(excludes),
            symlinks=symlinks,
            columns=columns,
            fingerprints=not no_fingerprints,
            stats=stats,
            # Without a bar shown, the walk need not stat every file for a total.
            progress=None if bar.disable else bar.update,
            on_total=None if bar.disable else (lambda total: bar.reset(total=total)),
        )
    if is_dir:
        report_walk(stats, folder=input_path)
    _report(output, summary, as_json)


@manifest_group.command("merge")
@click.argument("inputs", nargs=-1, required=True, type=PATH)
@click.option("-o", "--output", required=True, type=PATH, help="Merged manifest to write.")
@json_option
def merge(inputs: tuple[Path, ...], output: Path, as_json: bool) -> None:
    """Merge manifests built separately (e.g. with --shard) into one.

    Shards (built with --shard K/N, K counting from 0) must be the complete set 0/N ... N-1/N of
    one build: a missing, repeated or stale shard is refused, naming it. Their fingerprint
    indexes (INPUT.fp) are merged too, into OUTPUT.fp.
    """
    from provenance.manifest_files import merge_manifest_files

    _report(output, merge_manifest_files(inputs, output), as_json)


@manifest_group.command("show")
@click.argument("path", type=PATH)
@json_option
def show(path: Path, as_json: bool) -> None:
    """Check a manifest and print its digest, entry count, bytes and Merkle root."""
    summary = manifest.ManifestReader(path).finish()  # streamed: memory does not grow
    _report(path, summary, as_json, verb="checked")


def _report(
    path: Path, summary: manifest.ManifestSummary, as_json: bool, verb: str = "wrote"
) -> None:
    if as_json:
        print_json(
            {
                "manifest": str(path),
                "sha256": summary.digest,
                "entries": summary.entries,
                "bytes": summary.total_bytes,
                "merkleRoot": summary.root,
            }
        )
        return
    echo(f"{verb} {path}: {summary.entries:,} entries, {format_size(summary.total_bytes)}")
    echo(f"  sha256      {summary.digest}")
    echo(f"  merkle root {summary.root}")


COMMANDS = [manifest_group]
