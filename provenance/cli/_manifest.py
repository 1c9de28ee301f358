"""``provenance manifest build|merge|show``."""

from __future__ import annotations

import glob
import os
from pathlib import Path

import click

from provenance import manifest
from provenance.cli._columns import column_options, columns_from
from provenance.cli._common import PATH, echo, format_size, json_option, print_json, progress_bar
from provenance.cli._executor import check_executor, executor_options
from provenance.cli._walk import exclude_option, report_walk, symlinks_option
from provenance.errors import InputError


@click.group("manifest")
def manifest_group() -> None:
    """Build and inspect manifests (one hashed entry per file or record)."""


@manifest_group.command("build")
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    help="Manifest file to write; OUT/ (a trailing slash, or an existing directory) writes a"
    " partitioned manifest (OUT/index.json and OUT/part-NNNNN.jsonl).",
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1, max=65536),
    help="Parts of a partitioned manifest (hash-prefix ranges).  [default: 16]",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="all cores",
    help="Hashing processes (with --executor ray: the CPUs of a local Ray instance).",
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
    help="Skip textSha256 and the near-duplicate fingerprint index for lookups (OUTPUT.fp, or"
    " OUT/part-NNNNN.jsonl.fp beside each part of a partitioned manifest).",
)
@executor_options
@column_options
@json_option
def build(
    inputs: tuple[str, ...],
    output: str,
    partitions: int | None,
    workers: int,
    shard: str | None,
    excludes: tuple[str, ...],
    symlinks: manifest.SymlinkPolicy,
    no_fingerprints: bool,
    executor: str,
    ray_address: str | None,
    as_json: bool,
    **column_names: str,
) -> None:
    """Hash INPUT (directories, .jsonl/.csv/.parquet records files, or globs of them such as
    'crawl/*.parquet': one dataset, ids unique across them) into a manifest.

    A directory's ids are the files' paths under it: they must be valid UTF-8 in Unicode NFC
    with no control characters (rename or --exclude the others). By default text entries also
    get their normalized-text digest (textSha256) and near-duplicate fingerprints of texts and
    images go to a sidecar index OUTPUT.fp (a partitioned manifest: one per part,
    OUT/part-NNNNN.jsonl.fp, listed in OUT/index.json), which 'card build' records and 'lookup'
    uses.
    """
    from provenance.manifest_files import build_manifest_file
    from provenance.sharded import build_dataset

    check_executor(executor, ray_address)
    columns = columns_from(column_names)
    output_path = Path(output)
    partitioned = output.endswith(("/", os.sep)) or output_path.is_dir()
    if partitions is not None and not partitioned:
        raise click.UsageError("--partitions applies to a partitioned manifest (-o OUT/)")
    single = len(inputs) == 1 and not glob.has_magic(inputs[0])
    input_path = Path(inputs[0])
    is_dir = all(Path(i).is_dir() for i in inputs)
    if shard and not (single and not partitioned and executor == "local"):
        raise click.UsageError(
            "--shard builds one INPUT into one file on --executor local; several inputs,"
            " partitioned manifests and Ray split the work themselves"
        )
    if single and not input_path.is_dir() and (excludes or symlinks == "error"):
        raise InputError(
            f"{input_path}: --exclude and --symlinks apply to a directory, not a records file"
        )
    stats = manifest.WalkStats()
    with progress_bar(0, "hashing" if is_dir else "records") as bar:
        common = {
            "ignore": manifest.exclusion_matcher(excludes),
            "symlinks": symlinks,
            "columns": columns,
            "fingerprints": not no_fingerprints,
            "stats": stats,
            # Without a bar shown, the walk need not stat every file for a total.
            "progress": None if bar.disable else bar.update,
            "on_total": None if bar.disable else (lambda total: bar.reset(total=total)),
        }
        if shard:
            summary = build_manifest_file(
                input_path,
                output_path,
                workers=workers,
                shard=manifest.parse_shard(shard),
                **common,  # type: ignore[arg-type]
            )
        else:
            summary = build_dataset(
                inputs,
                output_path,
                partitioned=partitioned,
                partition_count=partitions or 16,
                executor=executor,
                ray_address=ray_address,
                workers=workers,
                **common,  # type: ignore[arg-type]
            )
    for item in inputs:
        if Path(item).is_dir():
            report_walk(stats, folder=Path(item))
            break
    _report(output_path, summary, as_json)


@manifest_group.command("merge")
@click.argument("inputs", nargs=-1, required=True, type=PATH)
@click.option(
    "-o",
    "--output",
    required=True,
    help="Merged manifest to write: a file, or OUT/ (a trailing slash, or an existing"
    " directory) for a partitioned manifest.",
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1, max=65536),
    help="Parts of a partitioned OUTPUT.  [default: 16]",
)
@json_option
def merge(inputs: tuple[Path, ...], output: str, partitions: int | None, as_json: bool) -> None:
    """Merge manifests built separately (e.g. with --shard) into one, or turn a manifest
    file into a partitioned manifest (-o OUT/) and back (INPUT a partitioned manifest).

    Shards (built with --shard K/N, K counting from 0) must be the complete set 0/N ... N-1/N of
    one build: a missing, repeated or stale shard is refused, naming it. Their fingerprint
    indexes (INPUT.fp, or a partitioned INPUT's part sidecars) are merged too, into OUTPUT.fp
    or one sidecar per part of a partitioned OUTPUT.
    """
    from provenance.manifest_files import merge_manifest_files
    from provenance.sharded import merge_to_partitioned

    output_path = Path(output)
    if output.endswith(("/", os.sep)) or output_path.is_dir():
        summary = merge_to_partitioned(inputs, output_path, partition_count=partitions or 16)
    elif partitions is not None:
        raise click.UsageError("--partitions applies to a partitioned manifest (-o OUT/)")
    else:
        summary = merge_manifest_files(inputs, output_path)
    _report(output_path, summary, as_json)


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
