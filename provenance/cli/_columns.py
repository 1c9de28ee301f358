"""The ``--url-column``, ``--id-column``, ... options of ``filter`` and ``manifest build``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from provenance.records import Columns

F = TypeVar("F", bound=Callable[..., Any])

_FIELDS = (
    ("id", "the record id"),
    ("url", "the record's URL"),
    ("text", "the record's text"),
    ("path", "the path of the record's file"),
    ("sha256", "the SHA-256 of the record's content"),
)


def column_options(function: F) -> F:
    """Add one ``--FIELD-column NAME`` option per records field (defaults: the field's name)."""
    for field, meaning in reversed(_FIELDS):
        function = click.option(
            f"--{field}-column",
            f"{field}_column",
            metavar="NAME",
            default=field,
            show_default=True,
            help=f"Records files: the column holding {meaning} (names match exactly).",
        )(function)
    return function


def columns_from(options: dict[str, Any]) -> Columns:
    """Return the :class:`~provenance.records.Columns` chosen by :func:`column_options`, removing
    its keys from ``options`` (a command's keyword arguments).

    Raises:
        InputError: two fields name the same column, or a name is empty.
    """
    from provenance.records import Columns

    return Columns(**{field: options.pop(f"{field}_column") for field, _ in _FIELDS})
