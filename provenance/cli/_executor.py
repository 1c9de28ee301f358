"""``--executor local|ray`` and ``--ray-address ADDR``, shared by the commands that run shards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from provenance.executors import EXECUTOR_NAMES

F = TypeVar("F", bound=Callable[..., Any])


def executor_options(function: F) -> F:
    """Add ``--executor`` and ``--ray-address`` (passed as ``executor`` and ``ray_address``)."""
    function = click.option(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster to run on (with --executor ray), e.g. ray://head:10001 or auto;"
        " without it a local Ray instance is started and stopped.",
    )(function)
    return click.option(
        "--executor",
        type=click.Choice(EXECUTOR_NAMES),
        default="local",
        show_default=True,
        help="Where shards run: this machine's cores, or Ray tasks (needs the ray extra).",
    )(function)


def check_executor(executor: str, ray_address: str | None) -> None:
    """Refuse --ray-address without --executor ray."""
    if ray_address is not None and executor != "ray":
        raise click.UsageError("--ray-address applies to --executor ray")
