"""``provenance log verify|monitor``: check a registry's transparency log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from provenance.cli._common import (
    PATH,
    echo,
    echo_lines,
    json_option,
    load_trust,
    now_option,
    print_json,
    progress_bar,
    progress_callback,
    proxy_option,
    resolve_clock,
    timeout_options,
)
from provenance.errors import VerificationError


@click.group("log")
def log_group() -> None:
    """Verify receipts of the transparency log, and monitor a registry's log."""


def _short(text: str) -> str:
    return f"{text[:16]}..."


@log_group.command("verify")
@click.argument("receipt", type=PATH)
@click.option("--trust", "trust_path", required=True, type=PATH, help="Trust store.")
@click.option(
    "--card", "card_path", type=PATH, help="Also check that the entry names this signed card."
)
@json_option
@now_option
def verify(
    receipt: Path, trust_path: Path, card_path: Path | None, as_json: bool, now: str | None
) -> int:
    """Verify RECEIPT (a c2sp.org/tlog-proof@v1 file) offline.

    The checkpoint must be signed by a key the trust store holds as transparency-log, named as
    the checkpoint's origin; the inclusion proof must lead from the log entry in the receipt to
    that checkpoint's root. With --card, the entry must name that card (its id is the SHA-256 of
    the card's statement). Exits 0 if the receipt holds, 1 if it does not (including a damaged
    receipt), 2 if a file is missing or malformed.
    """
    from provenance.logclient import verify_receipt_file

    clock = resolve_clock(now)
    store = load_trust(trust_path, clock)
    try:
        report = verify_receipt_file(receipt, store, at=clock.at, card=card_path)
    except VerificationError as exc:
        if as_json:
            print_json({"ok": False, "error": str(exc)})
        echo(f"error: receipt does not verify: {exc}", err=True)
        return 1
    if as_json:
        print_json(report.to_dict())
        return 0
    entry = report.entry
    echo(
        f"verified: entry {report.index} of log {report.checkpoint.origin}"
        f" (checkpoint of {report.checkpoint.size} entries)"
    )
    echo(
        f"   card {entry.name} {entry.version}  id {entry.card}"
        f"  registered {entry.registered:%Y-%m-%dT%H:%M:%SZ}"
    )
    echo(f"   publisher {', '.join(entry.publisher)}")
    if report.card_checked:
        echo(f"   the entry names the card {card_path}")
    return 0


@log_group.command("monitor")
@click.argument("url")
@click.option("--trust", "trust_path", required=True, type=PATH, help="Trust store.")
@click.option(
    "--state",
    "state_path",
    required=True,
    type=PATH,
    help="Where the last verified checkpoint is kept (created on the first run).",
)
@timeout_options()
@proxy_option()
@json_option
@now_option
def monitor(
    url: str,
    trust_path: Path,
    state_path: Path,
    connect_timeout: float,
    read_timeout: float,
    total_timeout: float,
    proxy: str | None,
    as_json: bool,
    now: str | None,
) -> int:
    """Check the log of the registry at URL and print its new registrations.

    Verifies the log's checkpoint, checks that its tree extends the one verified last time (kept
    in --state), reads the new entries and prints each registration. Exits 1, with the evidence,
    if the log shows a split view (a checkpoint inconsistent with the one verified before) or
    two different cards under one (publisher, name, version); the state is then left as it was.
    """
    from provenance._http import FetchOptions
    from provenance.logclient import monitor as run_monitor
    from provenance.tlog import LogEntry

    clock = resolve_clock(now)
    store = load_trust(trust_path, clock)
    options = FetchOptions(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        total_timeout=total_timeout,
        proxy=proxy,
    )
    registrations: list[dict[str, Any]] = []
    bar = progress_bar(0, "reading the log", unit="entries")

    def on_registration(index: int, entry: LogEntry) -> None:
        if as_json:
            registrations.append({"index": index, **entry.to_dict()})
            return
        echo(
            f"#{index}  {entry.registered:%Y-%m-%dT%H:%M:%SZ}  {entry.name} {entry.version}"
            f"  card {_short(entry.card)}  publisher"
            f" {', '.join(_short(k) for k in entry.publisher)}"
        )

    with bar:
        report = run_monitor(
            url,
            store,
            state_path,
            at=clock.at,
            options=options,
            on_registration=on_registration,
            on_progress=progress_callback(bar),
        )
    if as_json:
        print_json({**report.to_dict(), "registrations": registrations})
    else:
        previous = report.previous
        since = f", consistent with {previous.size} verified before" if previous else ""
        if report.ok:
            echo(
                f"log {report.origin} at {report.url}: checkpoint of {report.checkpoint.size}"
                f" entries verified{since}; {report.registrations} new registration(s)"
            )
        if report.split_view is not None:
            echo("evidence: the checkpoint verified before (from the state file):")
            echo_lines(report.split_view.previous.decode("utf-8"))
            echo("evidence: the checkpoint the log serves now:")
            echo_lines(report.split_view.current.decode("utf-8"))
        for conflict in report.conflicts:
            echo(
                f"evidence: {conflict.name} {conflict.version} by {conflict.publisher}: card"
                f" {conflict.first[1]} at #{conflict.first[0]}, card {conflict.second[1]} at"
                f" #{conflict.second[0]}; a receipt for each:"
            )
            for receipt in conflict.receipts:
                echo_lines(receipt.decode("utf-8"))
    if report.split_view is not None:
        echo(
            f"error: split view: the log {report.origin} signed inconsistent checkpoints"
            f" ({report.split_view.reason}); the state was not changed",
            err=True,
        )
        return 1
    if report.conflicts:
        echo(
            f"error: the log {report.origin} holds {len(report.conflicts)} pair(s) of different"
            " cards under one (publisher, name, version); the state was not changed",
            err=True,
        )
        return 1
    return 0


COMMANDS = [log_group]
