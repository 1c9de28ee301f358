"""``provenance lists publish|refresh|fetch|show``."""

from __future__ import annotations

from pathlib import Path

import click

from provenance.cli._common import (
    PATH,
    echo,
    json_option,
    load_private_key,
    load_trust,
    now_option,
    print_json,
    proxy_option,
    resolve_clock,
    resolve_now,
    timeout_options,
    warn,
)
from provenance.keys import PrivateKey
from provenance.lists.model import CATEGORIES, ENTRY_TYPES
from provenance.trust import format_time


def _keys(paths: tuple[Path, ...], passphrase_env: str | None) -> list[PrivateKey]:
    return [load_private_key(path, passphrase_env) for path in paths]


def _cache_dir(value: Path | None) -> Path:
    from provenance.lists.cache import default_cache_dir

    return value if value is not None else default_cache_dir()


_KEY_OPTION = click.option(
    "--key",
    "key_paths",
    type=PATH,
    multiple=True,
    required=True,
    help="Private key signing the repository (repeat for several keys).",
)
_PASSPHRASE_OPTION = click.option(
    "--passphrase-env", metavar="VAR", help="Decrypt the key(s) with the passphrase in $VAR."
)
_EXPIRES_OPTION = click.option(
    "--expires-in",
    metavar="DAYS",
    type=int,
    help="Days until the timestamp metadata expires (default: as the last publish or refresh"
    " set it, else 7).",
)
_CACHE_OPTION = click.option(
    "--cache",
    "cache",
    type=PATH,
    help="Cache directory (default $PROVENANCE_HOME/lists or ~/.cache/provenance/lists).",
)


@click.group()
def lists() -> None:
    """Publish, fetch and show signed exclusion lists."""


@lists.command("publish")
@click.argument("entries_path", metavar="ENTRIES", type=PATH)
@click.option("--name", required=True, help="List name, e.g. 'piracy' ([a-z0-9._-], max 64).")
@_KEY_OPTION
@click.option("--repo", "repo_dir", type=PATH, required=True, help="Repository directory.")
@_EXPIRES_OPTION
@click.option("--threshold", type=int, help="Signatures needed per role (new repository only).")
@click.option("--publisher", help="Publisher name recorded in the list (default: as before).")
@click.option(
    "--type",
    "entry_type",
    type=click.Choice(ENTRY_TYPES),
    help="Type of the values of a plain text ENTRIES file, one per line (and of JSON Lines"
    " entries that do not name one); default: domains or a hosts file.",
)
@click.option(
    "--category",
    type=click.Choice(CATEGORIES),
    default="other",
    show_default=True,
    help="Category of entries that do not name one.",
)
@click.option(
    "--skip-invalid",
    is_flag=True,
    help="Skip (and report) lines with invalid values or public suffixes instead of failing.",
)
@_PASSPHRASE_OPTION
@now_option
@json_option
def publish_command(
    entries_path: Path,
    name: str,
    key_paths: tuple[Path, ...],
    repo_dir: Path,
    expires_in: int | None,
    threshold: int | None,
    publisher: str | None,
    entry_type: str | None,
    category: str,
    skip_invalid: bool,
    passphrase_env: str | None,
    now: str | None,
    as_json: bool,
) -> None:
    """Publish the next version of list NAME from ENTRIES into the repository DIR.

    ENTRIES is JSON Lines of entries, a plain text file of domains (one per line, '#'
    comments), a hosts file ('0.0.0.0 domain'), or with --type a plain text file of values of
    that type, one per line (e.g. --type url-prefix for 'host/path' lines). If the entries are
    those of the newest version, nothing is published ("unchanged", exit 0).
    """
    from provenance.lists.repository import describe, publish_file

    at = resolve_now(now)
    run = publish_file(
        entries_path,
        repo_dir,
        name=name,
        keys=_keys(key_paths, passphrase_env),
        at=at,
        category=category,  # type: ignore[arg-type]
        entry_type=entry_type,  # type: ignore[arg-type]
        skip_invalid=skip_invalid,
        publisher=publisher,
        threshold=threshold,
        expires_in=expires_in,
    )
    for error in run.skipped[:10]:
        warn(f"skipped {error}")
    if len(run.skipped) > 10:
        warn(f"skipped {len(run.skipped) - 10} more line(s)")
    if as_json:
        print_json(run.result.to_dict())
    else:
        echo(describe(run.result))


@lists.command("refresh")
@click.option("--repo", "repo_dir", type=PATH, required=True, help="Repository directory.")
@_KEY_OPTION
@_EXPIRES_OPTION
@_PASSPHRASE_OPTION
@now_option
@json_option
def refresh_command(
    repo_dir: Path,
    key_paths: tuple[Path, ...],
    expires_in: int | None,
    passphrase_env: str | None,
    now: str | None,
    as_json: bool,
) -> None:
    """Re-sign the timestamp (and anything expiring before it) so unchanged lists stay fresh."""
    from provenance.lists.repository import refresh

    result = refresh(
        repo_dir,
        keys=_keys(key_paths, passphrase_env),
        at=resolve_now(now),
        expires_in=expires_in,
    )
    if as_json:
        print_json(result.to_dict())
    else:
        echo(result.describe())


@lists.command("fetch")
@click.argument("url")
@click.option("--trust", "trust_path", type=PATH, required=True, help="Trust store.")
@_CACHE_OPTION
@timeout_options()
@click.option(
    "--max-bytes",
    type=int,
    help="Largest download accepted, counted after decoding (default 4 GiB).",
)
@proxy_option()
@now_option
@json_option
def fetch_command(
    url: str,
    trust_path: Path,
    cache: Path | None,
    connect_timeout: float,
    read_timeout: float,
    total_timeout: float,
    max_bytes: int | None,
    proxy: str | None,
    now: str | None,
    as_json: bool,
) -> None:
    """Fetch and verify every new version of the trusted lists in the repository at URL."""
    from provenance.lists.cache import MAX_LIST_BYTES
    from provenance.lists.client import FetchOptions, fetch

    clock = resolve_clock(now)
    store = load_trust(trust_path, clock)
    options = FetchOptions(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        total_timeout=total_timeout,
        max_bytes=max_bytes if max_bytes is not None else MAX_LIST_BYTES,
        proxy=proxy,
    )
    result = fetch(url, store=store, cache_dir=_cache_dir(cache), at=clock.at, options=options)
    for note in result.notes:
        echo(f"note: {note}", err=True)
    if as_json:
        print_json(result.to_dict())
        return
    for item in result.lists:
        echo(result.describe(item))


@lists.command("show")
@click.argument("name", required=False)
@_CACHE_OPTION
@click.option(
    "--trust",
    "trust_path",
    type=PATH,
    required=True,
    help="Trust store: every list shown must be signed by the keys it pins for that list.",
)
@now_option
@json_option
def show_command(
    name: str | None, cache: Path | None, trust_path: Path, now: str | None, as_json: bool
) -> None:
    """Print the newest cached version of each list (or of list NAME).

    Each list must be signed by the keys the trust store pins for it, as 'lists fetch'
    requires (the cache is not trusted); one that is not is named and the command exits 1.
    """
    from provenance.lists.cache import cached_list_status

    clock = resolve_clock(now)
    store = load_trust(trust_path, clock)
    cache_dir = _cache_dir(cache)
    statuses = cached_list_status(
        cache_dir, at=clock.at, store=store, names=None if name is None else [name]
    )
    if as_json:
        print_json({"lists": [status.to_dict() for status in statuses]})
        return
    if not statuses:
        echo(f"no lists cached in {cache_dir}")
    for status in statuses:
        item = status.newest
        echo(
            f"{item.list.name} v{item.list.version}  {len(item.list.entries)} entries"
            f"  sha256 {item.digest}  {'EXPIRED' if status.expired else 'fresh'} until"
            f" {format_time(item.expires)}  from {item.url}"
        )


@lists.command("diff")
@click.argument("name")
@click.argument("old_version", metavar="V1", type=click.IntRange(min=1))
@click.argument("new_version", metavar="V2", type=click.IntRange(min=1))
@_CACHE_OPTION
@click.option(
    "--trust",
    "trust_path",
    type=PATH,
    help="Trust store: both versions must be signed by the keys it pins for the list.",
)
@now_option
@json_option
def diff_command(
    name: str,
    old_version: int,
    new_version: int,
    cache: Path | None,
    trust_path: Path | None,
    now: str | None,
    as_json: bool,
) -> None:
    """Print the entries added (+) and removed (-) from version V1 to V2 of list NAME.

    Both versions must be in the cache ('lists fetch' keeps every version). Entries are grouped
    by category, one per line: '+ TYPE VALUE' or '- TYPE VALUE'.
    """
    from provenance.lists.diff import diff_cached

    clock = resolve_clock(now)
    store = load_trust(trust_path, clock) if trust_path is not None else None
    result = diff_cached(
        _cache_dir(cache), name, old_version, new_version, at=clock.at, store=store
    )
    if store is None:
        click.echo(
            "note: the cached versions were checked against the repository's own keys only;"
            " give --trust to check them against the keys you trust",
            err=True,
        )
    if as_json:
        print_json(result.to_dict())
        return
    counts = result.counts()
    added, removed = len(result.added), len(result.removed)
    echo(
        f"{name} v{old_version} ({result.old.digest[:16]}) -> v{new_version}"
        f" ({result.new.digest[:16]}): {added} added, {removed} removed"
    )
    for category in counts:
        echo(f"{category}:")
        for sign, entries in (("-", result.removed), ("+", result.added)):
            for entry in entries:
                if entry.category == category:
                    # A signed note must not drive the terminal: echo escapes it.
                    note = f"  # {entry.note}" if entry.note else ""
                    echo(f"{sign} {entry.type} {entry.value}{note}")


COMMANDS = [lists]
