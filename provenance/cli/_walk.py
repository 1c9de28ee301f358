"""Options and notes shared by the commands that walk a data folder (manifest build, verify)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from provenance import manifest
from provenance.cli._common import echo

EXCLUDE_HELP = (
    "Leave out paths matching GLOB (.gitignore style, as a card spec's 'paths': '*.log',"
    " 'build/', '**/cache/**', '!keep.log'); repeatable."
)
SYMLINKS_HELP = (
    "Symlinks are never followed: 'skip' leaves every one out (counted on stderr);"
    " 'error' refuses one that points out of the folder."
)


def exclude_option(function: Any) -> Any:
    """Add ``--exclude GLOB`` (repeatable)."""
    return click.option("--exclude", "excludes", multiple=True, metavar="GLOB", help=EXCLUDE_HELP)(
        function
    )


def symlinks_option(function: Any) -> Any:
    """Add ``--symlinks skip|error``."""
    return click.option(
        "--symlinks",
        type=click.Choice(["skip", "error"]),
        default="skip",
        show_default=True,
        help=SYMLINKS_HELP,
    )(function)


def report_walk(stats: manifest.WalkStats, *, folder: Path) -> None:
    """Say on stderr what a walk of ``folder`` left out or noticed (one line per kind)."""
    if stats.symlinks:
        outside = (
            f", {stats.symlinks_outside:,} pointing outside it" if stats.symlinks_outside else ""
        )
        echo(
            f"note: skipped {stats.symlinks:,} symlink(s) in {folder}{outside} (never followed)",
            err=True,
        )
    if stats.excluded_files or stats.excluded_dirs:
        echo(
            f"note: excluded {stats.excluded_files:,} file(s) and {stats.excluded_dirs:,}"
            f" folder(s) of {folder} by --exclude",
            err=True,
        )
    if stats.hard_linked:
        echo(
            f"warning: {stats.hard_linked:,} file(s) in {folder} have other hard links; a link"
            " outside the folder can change their content",
            err=True,
        )
