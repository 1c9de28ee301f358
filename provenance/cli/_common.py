"""Helpers shared by the command modules: options, clock, reading inputs, writing outputs."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from provenance.errors import InputError

F = TypeVar("F", bound=Callable[..., Any])

PATH = click.Path(path_type=Path)
EXISTING = click.Path(path_type=Path, exists=False)


def json_option(function: F) -> F:
    """Add ``--json`` (machine-readable output on stdout)."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(function)


def now_option(function: F) -> F:
    """Add the hidden ``--now`` option that fixes the clock (for tests and reproducing runs)."""
    return click.option(
        "--now",
        hidden=True,
        envvar="PROVENANCE_NOW",
        help="Use this UTC time (YYYY-MM-DDTHH:MM:SSZ) as 'now' (announced on stderr).",
    )(function)


def real_now() -> dt.datetime:
    """Return the system clock, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def resolve_now(text: str | None) -> dt.datetime:
    """Return 'now' for a command: the ``--now`` value, or the system clock read once.

    An override is announced on stderr every time it is used: a moved clock changes what
    verifies, so it is never silent. (Commands that judge keys also judge them at the real
    time, see :attr:`provenance.trust.TrustStore.real_time`.)
    """
    if text:
        from provenance.trust import format_time, parse_time

        value = parse_time(text, what="--now")
        click.echo(
            f"warning: clock override: using {text} as the time (from --now or PROVENANCE_NOW),"
            f" not the real time {format_time(real_now())}",
            err=True,
        )
        return value
    return real_now()


def passphrase_from_env(variable: str | None) -> bytes | None:
    """Return the passphrase held in environment variable ``variable``.

    Raises:
        InputError: the variable is named but not set or empty.
    """
    if variable is None:
        return None
    value = os.environ.get(variable)
    if not value:
        raise InputError(f"--passphrase-env: environment variable {variable} is not set or empty")
    return value.encode("utf-8")


def print_json(document: Any) -> None:
    """Print ``document`` as JSON (sorted keys) on stdout."""
    click.echo(json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False))


class _NoBar:
    """What :func:`progress_bar` returns when nothing is shown: the same calls, doing nothing."""

    disable = True

    def __enter__(self) -> _NoBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        """Do nothing."""

    def reset(self, total: int | None = None) -> None:
        """Do nothing."""


def progress_bar(total: int, description: str, *, unit: str = "B") -> Any:
    """Return a tqdm progress bar (of bytes unless ``unit`` says), shown only on a terminal.

    When it is not shown, a stand-in with ``disable = True`` is returned instead (tqdm is not
    even imported): callers can then skip the work of computing totals and progress.
    """
    if not sys.stderr.isatty():
        return _NoBar()
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit=unit,
        unit_scale=unit == "B",
        desc=description,
        disable=not sys.stderr.isatty(),
        leave=False,
        file=sys.stderr,
    )
