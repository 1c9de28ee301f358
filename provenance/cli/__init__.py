"""The ``provenance`` command line. The only package that imports click.

Each command group lives in its own thin module; every command body calls into the library.
Errors are mapped to exit codes in exactly one place, :func:`main`:
0 ok, 1 a verified "no", 2 bad input or usage, 3 could not answer.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import click

from provenance import __version__
from provenance.errors import ParameterError, ProvenanceError, ProvenanceWarning


class _LazyGroup(click.Group):
    """A group that imports the command modules only when it needs them.

    ``provenance NAME ...`` first imports ``provenance.cli._NAME`` alone and uses it if it
    defines the command NAME: start-up then costs only what that command imports (building a
    manifest of a few files should not wait for jsonschema, cryptography and numpy). Anything
    else (``--help``, a command in a module of another name, an unknown name) registers every
    module with :func:`_register`.
    """

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and not _register_one(cmd_name):
            _register()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        _register()
        return super().list_commands(ctx)


def _register_one(name: str) -> bool:
    import importlib
    import importlib.util

    module_name = f"provenance.cli._{name}"
    if not name.isidentifier() or importlib.util.find_spec(module_name) is None:
        return False
    commands = getattr(importlib.import_module(module_name), "COMMANDS", [])
    if not any(command.name == name for command in commands):
        return False
    for command in commands:
        cli.add_command(command)
    return True


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="provenance")
def cli() -> None:
    """Signed dataset cards and exclusion lists for AI training data."""


def _register() -> None:
    from provenance.cli import (
        _card,
        _demo,
        _export,
        _filter,
        _key,
        _lists,
        _log,
        _lookup,
        _manifest,
        _proof,
        _registry,
        _report,
        _trust,
        _verify,
    )

    for module in (
        _key,
        _trust,
        _manifest,
        _card,
        _verify,
        _lookup,
        _proof,
        _report,
        _lists,
        _log,
        _registry,
        _filter,
        _export,
        _demo,
    ):
        for command in module.COMMANDS:
            cli.add_command(command)


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
    """Print our own warnings as one line each; other libraries' warnings are not for users."""
    if issubclass(category, ProvenanceWarning):
        from provenance.cli._common import warn

        # Warnings name sources, ids and paths: printed escaped, as errors are.
        warn(str(message))


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and exit with the code of the outcome (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", ProvenanceWarning)
        warnings.showwarning = _show_warning
        _main(argv)


OPTIONS = {
    "threshold": "--threshold",
    "expires_in": "--expires-in",
    "connect_timeout": "--connect-timeout",
    "read_timeout": "--read-timeout",
    "total_timeout": "--timeout",
    "max_bytes": "--max-bytes",
    "max_upload": "--max-upload",
    "lookup_burst": "--lookup-burst",
    "lookup_rate": "--lookup-rate",
    "idle_timeout": "--upload-idle-timeout",
}
"""The option that sets each library parameter a :class:`ParameterError` may name."""


def describe_error(exc: ProvenanceError) -> str:
    """The message of ``exc`` for a user of the command line: a parameter the library names is
    called by the option that set it."""
    if isinstance(exc, ParameterError) and exc.parameter in OPTIONS:
        return exc.naming(OPTIONS[exc.parameter])
    return str(exc)


def _main(argv: list[str] | None) -> None:
    try:
        result = cli.main(args=argv, prog_name="provenance", standalone_mode=False)
    except ProvenanceError as exc:
        from provenance.cli._common import echo

        # Messages name paths and ids, which may hold terminal controls: printed escaped.
        echo(f"error: {describe_error(exc)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("error: aborted", err=True)
        sys.exit(3)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(3)
    except KeyboardInterrupt:
        click.echo("error: interrupted", err=True)
        sys.exit(3)
    sys.exit(result if isinstance(result, int) else 0)
