"""``provenance manifest build|merge|show``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from provenance import manifest
from provenance.cli._columns import column_options, columns_from
from provenance.cli._common import PATH, echo, format_size, json_option, print_json, progress_bar
from provenance.cli._walk import exclude_option, report_walk, symlinks_option
from provenance.errors import InputError
from provenance.records import DEFAULT_COLUMNS


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
    columns = columns_from(column_names)
    shard_spec = manifest.parse_shard(shard) if shard else None
    prints: dict[str, Any] | None = None if no_fingerprints else {}
    sidecar = _sidecar_path(output)
    stats = manifest.WalkStats()
    if input_path.is_dir():
        if columns != DEFAULT_COLUMNS:
            raise InputError(
                f"{input_path}: is a directory; column names ({columns.describe()}) apply only"
                " to records files"
            )
        bar = progress_bar(0, "hashing")
        with bar:

            def on_total(total: int) -> None:
                bar.reset(total=total)

            entries = manifest.build_from_directory(
                input_path,
                workers=workers,
                shard=shard_spec,
                exclude={os.path.realpath(output), os.path.realpath(sidecar)},
                ignore=manifest.exclusion_matcher(excludes),
                symlinks=symlinks,
                stats=stats,
                # Without a bar shown, the walk need not stat every file for a total.
                progress=None if bar.disable else bar.update,
                on_total=None if bar.disable else on_total,
                prints=prints,
            )
        report_walk(stats, folder=input_path)
    else:
        if excludes or symlinks == "error":
            raise InputError(
                f"{input_path}: --exclude and --symlinks apply to a directory, not a records file"
            )
        with progress_bar(0, "records") as bar:
            entries = manifest.build_from_records(
                input_path, shard=shard_spec, progress=bar.update, prints=prints, columns=columns
            )
    summary = manifest.write_manifest(entries, output)
    manifest.write_shard_record(output, shard_spec, summary)
    if prints is not None:
        from provenance import fpindex

        fpindex.write_sidecar_for(entries, summary.digest, prints, sidecar)
    elif sidecar.exists():
        # A sidecar left from an earlier build would describe another manifest.
        sidecar.unlink()
    _report(output, summary, as_json)


def _sidecar_path(output: Path) -> Path:
    """``fpindex.sidecar_path``, without importing fpindex (and numpy) for --no-fingerprints."""
    return output.with_name(output.name + ".fp")


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
    from provenance import fpindex

    summary = manifest.merge_manifests(inputs, output)
    manifest.write_shard_record(output, None, summary)
    if fpindex.merge_sidecars(list(inputs), output) is None:
        fpindex.sidecar_path(output).unlink(missing_ok=True)
    _report(output, summary, as_json)


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
