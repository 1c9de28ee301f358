"""Helpers shared by the command modules: options, clock, reading inputs, writing outputs."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from provenance._units import format_size
from provenance.errors import InputError

if TYPE_CHECKING:
    from provenance.keys import PrivateKey
    from provenance.trust import TrustStore

__all__ = ["echo", "escape", "format_size", "print_json", "warn"]

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


def timeout_options(
    *,
    read: float = 30.0,
    read_help: str = "Seconds between bytes.",
    total: float = 60.0,
    total_help: str = "Seconds in total per download.",
) -> Callable[[F], F]:
    """Return a decorator adding ``--connect-timeout``, ``--read-timeout`` and ``--timeout``.

    They arrive as ``connect_timeout``, ``read_timeout`` and ``total_timeout`` (seconds).
    """
    options = [
        click.option(
            "--connect-timeout",
            type=float,
            default=10.0,
            show_default=True,
            help="Seconds to connect.",
        ),
        click.option("--read-timeout", type=float, default=read, show_default=True, help=read_help),
        click.option(
            "--timeout",
            "total_timeout",
            type=float,
            default=total,
            show_default=True,
            help=total_help,
        ),
    ]

    def decorate(function: F) -> F:
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


def proxy_option(
    help_text: str = "HTTP(S) proxy (the environment is not consulted).",
) -> Callable[[F], F]:
    """Return a decorator adding ``--proxy URL`` (arrives as ``proxy``, None when not given)."""
    return click.option("--proxy", metavar="URL", help=help_text)


def real_now() -> dt.datetime:
    """Return the system clock, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def resolve_now(text: str | None) -> dt.datetime:
    """Return 'now' for a command: the ``--now`` value, or the system clock read once.

    An override is announced on stderr every time it is used: a moved clock changes what
    verifies, so it is never silent. (Commands that judge keys also judge them at the real
    time, see :func:`resolve_clock`.)
    """
    return resolve_clock(text).at


@dataclass(frozen=True, slots=True)
class Clock:
    """The time a command runs at: ``at``, and ``real_time`` when ``--now`` moved it.

    A moved clock never revives an expired key: commands that judge keys judge them at the real
    time too (:meth:`trust`, :attr:`provenance.trust.TrustStore.real_time`).
    """

    at: dt.datetime
    real_time: dt.datetime | None = None

    def trust(self, store: TrustStore) -> TrustStore:
        """Return ``store`` judging keys at the real time too when the clock was moved."""
        return store if self.real_time is None else store.with_real_time(self.real_time)


def resolve_clock(text: str | None) -> Clock:
    """Return the :class:`Clock` of a command: the ``--now`` value (announced on stderr), or
    the system clock read once."""
    if not text:
        return Clock(real_now())
    from provenance.trust import format_time, parse_time

    value = parse_time(text, what="--now")
    real = real_now()
    click.echo(
        f"warning: clock override: using {text} as the time (from --now or PROVENANCE_NOW),"
        f" not the real time {format_time(real)}",
        err=True,
    )
    return Clock(value, real)


def load_trust(path: Path, clock: Clock) -> TrustStore:
    """Read the trust store at ``path``, judging keys as ``clock`` says."""
    from provenance.trust import read_trust_store

    return clock.trust(read_trust_store(path))


def load_private_key(path: Path, passphrase_env: str | None) -> PrivateKey:
    """Read the private key at ``path``, decrypted with the passphrase in ``$passphrase_env``.

    Raises:
        KeyFormatError: as :func:`provenance.keys.load_private_key`; an encrypted key without
            a passphrase says which option gives one.
    """
    from provenance.keys import load_private_key as load

    with passphrase_hint():
        return load(path, passphrase=passphrase_from_env(passphrase_env))


@contextlib.contextmanager
def passphrase_hint() -> Iterator[None]:
    """Name ``--passphrase-env`` when a key turns out to be encrypted and no passphrase was given
    (the library does not know the option's name)."""
    from provenance.errors import KeyFormatError, PassphraseNeededError

    try:
        yield
    except PassphraseNeededError as exc:
        raise KeyFormatError(f"{exc} with --passphrase-env") from None


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


# What a terminal may act on or hide, and so never reaches it raw: controls (C0, DEL, C1),
# format characters (bidi controls, zero-width characters, U+FEFF...), line and paragraph
# separators, and lone surrogates. Ids from a manifest or a records file are refused when they
# hold controls or bidi controls (see provenance.manifest); this is the last line of defence
# for everything else printed: paths, names, and texts from files or from signed documents.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_BEYOND_ASCII = re.compile("[^\\x00-\\x7e]")


def _escape_char(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def escape(text: str) -> str:
    """Return ``text`` safe to print on a terminal as one line.

    Every control, format (bidi, zero-width), line or paragraph separator character becomes a
    visible Python-style escape (``\\x1b``, ``\\u202e``), so an id or path can neither move the
    cursor, erase what was printed, reorder the line nor hide characters. Printable text
    (including a literal backslash) is left as it is.
    """
    if text.isprintable():
        return text
    return "".join(
        _escape_char(c) if unicodedata.category(c) in _HIDDEN_CATEGORIES else c for c in text
    )


def echo(text: str = "", *, err: bool = False) -> None:
    """Print one line for people, escaped by :func:`escape` (use for anything naming an id,
    a path or a name; ``text`` must not hold newlines of its own)."""
    click.echo(escape(text), err=err)


def echo_lines(text: str) -> None:
    """Print a text of several lines (a signed note, a receipt), each line escaped (only a
    line feed ends a line: any other line break is shown as an escape)."""
    for line in text.removesuffix("\n").split("\n"):
        echo(line)


def warn(message: str) -> None:
    """Print ``warning: MESSAGE`` on stderr, escaped."""
    echo(f"warning: {message}", err=True)


def _json_escape(match: re.Match[str]) -> str:
    char = match[0]
    if unicodedata.category(char) not in _HIDDEN_CATEGORIES:
        return char
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def print_json(document: Any) -> None:
    """Print ``document`` as JSON (sorted keys) on stdout.

    JSON escapes C0 controls itself; DEL, C1 and format characters are written as ``\\uXXXX``
    escapes too (the same JSON value), so that printing it on a terminal is safe.
    """
    text = json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False)
    click.echo(text if text.isascii() else _BEYOND_ASCII.sub(_json_escape, text))


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


def progress_callback(bar: Any) -> Callable[[int, int], None]:
    """Return an ``on_progress(done, total)`` callback that moves ``bar`` to ``done`` of ``total``.

    The bar's total is reset whenever the reported total changes (it may be learnt late); a bar
    that is not shown is left alone.
    """
    shown = 0

    def on_progress(done: int, total: int) -> None:
        nonlocal shown
        if bar.disable:
            return
        if bar.total != total:
            bar.reset(total=total)
        bar.update(done - shown)
        shown = done

    return on_progress
