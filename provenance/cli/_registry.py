"""``provenance registry serve|push|lookup``: run a registry, publish a card, look works up."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provenance.cli._common import (
    PATH,
    F,
    echo,
    json_option,
    load_private_key,
    load_trust,
    now_option,
    print_json,
    progress_bar,
    progress_callback,
    proxy_option,
    resolve_clock,
    timeout_options,
    warn,
)
from provenance.errors import InputError

_SERVER_EXTRA = "the registry server needs the 'registry' extra: pip install 'provenance[registry]'"


@click.group("registry")
def registry_group() -> None:
    """Run a registry of signed cards, push cards to it, look works up in it."""


def _network_options(function: F) -> F:
    function = proxy_option("HTTP(S) proxy (not from the environment).")(function)
    return timeout_options(
        read=300.0,
        read_help="Seconds to wait for the registry's answer.",
        total=600.0,
        total_help="Seconds in total to read each answer.",
    )(function)


@registry_group.command("serve")
@click.option("--trust", "trust_path", required=True, type=PATH, help="Trust store (cards' keys).")
@click.option("--log-key", "key_path", required=True, type=PATH, help="The log's Ed25519 key.")
@click.option("--passphrase-env", metavar="VAR", help="The log key's passphrase is in $VAR.")
@click.option(
    "--db",
    "db_url",
    help="sqlite:///PATH or postgresql://... (default sqlite:///$PROVENANCE_HOME/registry.db).",
)
@click.option(
    "--origin",
    default="localhost/provenance",
    show_default=True,
    help="The log's origin: the name of its key in checkpoints.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8766, show_default=True,
    help="Port (0: any free).",
)  # fmt: skip
@click.option(
    "--max-upload",
    type=int,
    default=4 * 1024**3,
    show_default=True,
    help="Largest push in bytes (413 beyond, while streaming).",
)
@click.option(
    "--lookup-rate",
    type=float,
    default=20.0,
    show_default=True,
    help="Lookups per second per client address after a burst (0: no limit; 429 beyond).",
)
@click.option(
    "--lookup-burst",
    type=int,
    default=600,
    show_default=True,
    help="Lookups a client may make at once.",
)
@click.option(
    "--upload-idle-timeout",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds a push or a lookup's body may stall before it is abandoned (408).",
)
@click.option(
    "--cache", "cache_dir", type=PATH, help="Where stored fingerprint indexes are cached."
)
@now_option
def serve(
    trust_path: Path,
    key_path: Path,
    passphrase_env: str | None,
    db_url: str | None,
    origin: str,
    host: str,
    port: int,
    max_upload: int,
    lookup_rate: float,
    lookup_burst: int,
    upload_idle_timeout: float,
    cache_dir: Path | None,
    now: str | None,
) -> None:
    """Serve a registry: the HTTP API, the transparency log and the creator's page.

    A card is admitted only if a key of --trust (role dataset-publisher) signed it and its
    manifest matches it; each registration is appended to the log, whose checkpoints are
    signed with --log-key under --origin. Runs until interrupted.
    """
    try:
        from provenance.registry.app import Settings
        from provenance.registry.server import run_registry
    except ImportError as exc:
        raise InputError(f"{_SERVER_EXTRA} ({exc})") from None

    clock = resolve_clock(now)
    settings = Settings(
        origin=origin,
        max_upload=max_upload,
        lookup_rate=lookup_rate,
        lookup_burst=lookup_burst,
        cache_directory=cache_dir,
        idle_timeout=upload_idle_timeout,
    )

    def started(base: str, database: str) -> None:
        echo(f"registry {origin} serving {base} (database {database})")
        sys.stdout.flush()

    run_registry(
        db_url,
        load_trust(trust_path, clock),
        load_private_key(key_path, passphrase_env),
        settings,
        at=clock.at,
        host=host,
        port=port,
        on_started=started,
    )


@registry_group.command("push")
@click.argument("signed", type=PATH)
@click.option("--manifest", "manifest_path", required=True, type=PATH, help="The card's manifest.")
@click.option(
    "--fingerprints",
    "sidecar",
    type=PATH,
    help="The fingerprint index (required when the card commits to one; refused otherwise).",
)
@click.option("--registry", "url", required=True, help="The registry's base URL.")
@click.option("--trust", "trust_path", required=True, type=PATH, help="Trust store (the log key).")
@click.option("-o", "--output", type=PATH, help="Write the receipt (.tlog-proof) here.")
@_network_options
@json_option
@now_option
def push(
    signed: Path,
    manifest_path: Path,
    sidecar: Path | None,
    url: str,
    trust_path: Path,
    output: Path | None,
    connect_timeout: float,
    read_timeout: float,
    total_timeout: float,
    proxy: str | None,
    as_json: bool,
    now: str | None,
) -> None:
    """Publish SIGNED (a signed card) with its manifest to the registry at --registry.

    The registry's receipt is verified before it is believed: signed by a log key that the
    trust store holds as transparency-log, its entry naming this card and manifest. Exits 1
    if the registry refuses the card (untrusted signer, another card under this name and
    version, a manifest that is not the card's) or its receipt does not verify.
    """
    from provenance._http import FetchOptions
    from provenance.registry.client import push as run_push

    clock = resolve_clock(now)
    options = FetchOptions(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        total_timeout=total_timeout,
        proxy=proxy,
    )
    bar = progress_bar(0, "uploading", unit="B")

    with bar:
        report = run_push(
            url,
            signed,
            manifest_path,
            load_trust(trust_path, clock),
            at=clock.at,
            fingerprints=sidecar,
            output=output,
            options=options,
            on_progress=progress_callback(bar),
        )
    if as_json:
        document = report.to_dict()
        document["receiptPath"] = str(output) if output is not None else None
        print_json(document)
        return
    logged = report.entry
    verb = "registered" if report.created else "already registered"
    echo(
        f"{verb}: {logged.name} {logged.version} as entry {report.index} of log"
        f" {report.checkpoint.origin} (checkpoint of {report.checkpoint.size} entries)"
    )
    echo(f"   card {report.entry.card}  {report.entry.entries} manifest entries")
    if output is not None:
        echo(f"   receipt verified and written to {output}")
    else:
        echo("   receipt verified (not written: pass -o FILE to keep it)")


@registry_group.command("lookup")
@click.argument("works", nargs=-1, required=True, type=PATH)
@click.option("--registry", "url", required=True, help="The registry's base URL.")
@click.option("--trust", "trust_path", required=True, type=PATH, help="Trust store (the log key).")
@_network_options
@json_option
@now_option
def lookup(
    works: tuple[Path, ...],
    url: str,
    trust_path: Path,
    connect_timeout: float,
    read_timeout: float,
    total_timeout: float,
    proxy: str | None,
    as_json: bool,
    now: str | None,
) -> None:
    """Look up WORK... (files, or directories of works) in every card of a registry.

    Sends each work's SHA-256, its norm-text-v1 digest (text) and its fingerprints, and gives
    each the statuses of 'provenance lookup': exact, normalized, near-duplicate, contained or
    absent. Every card in the answer is checked against the transparency log (its receipt
    must verify with a transparency-log key of the trust store). Absent means no match in
    this registry's answer; for a proof, use 'provenance lookup' with the card and manifest.
    """
    from provenance._http import FetchOptions
    from provenance.lookup import STATUSES
    from provenance.registry.client import lookup_files

    clock = resolve_clock(now)
    options = FetchOptions(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        total_timeout=total_timeout,
        proxy=proxy,
    )
    results = lookup_files(
        url, works, load_trust(trust_path, clock), at=clock.at, options=options, warn=warn
    )
    if as_json:
        print_json({"registry": url, "results": [result.to_dict() for result in results]})
        return
    width = max(len(status) for status in STATUSES)
    for result in results:
        echo(f"{result.status:<{width}}  {result.work}")
        for match in result.matches[:10]:
            score = "" if match.status in ("exact", "normalized") else f" (score {match.score:.4f})"
            echo(
                f"{'':<{width}}    {match.status} {match.entry} in {match.name} {match.version}"
                f" (card {match.card[:16]}..., log #{match.log_index}){score}"
            )
        if len(result.matches) > 10:
            echo(f"{'':<{width}}    ... and {len(result.matches) - 10} more")


COMMANDS = [registry_group]
