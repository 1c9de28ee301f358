"""``provenance key generate``."""

from __future__ import annotations

from pathlib import Path

import click

from provenance.cli._common import PATH, echo, passphrase_from_env
from provenance.errors import InputError, OutputExistsError
from provenance.keys import ALGORITHMS, generate_key_pair


@click.group()
def key() -> None:
    """Generate signing keys."""


@key.command("generate")
@click.argument("keyfile", type=PATH)
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS),
    default="ed25519",
    show_default=True,
    help="Key algorithm.",
)
@click.option(
    "--passphrase-env", metavar="VAR", help="Encrypt the key with the passphrase in $VAR."
)
@click.option("--force", is_flag=True, help="Overwrite an existing key.")
def generate(keyfile: Path, algorithm: str, passphrase_env: str | None, force: bool) -> None:
    """Write a new private key to KEYFILE (mode 0600) and its public key to KEYFILE.pub.

    Prints the keyid: the SHA-256 of the public key's DER SubjectPublicKeyInfo.
    """
    try:
        private, public_path = generate_key_pair(
            keyfile,
            algorithm=algorithm,  # type: ignore[arg-type]
            passphrase=passphrase_from_env(passphrase_env),
            force=force,
        )
    except OutputExistsError as exc:
        raise InputError(f"{exc}; use --force to overwrite") from None
    click.echo(f"keyid {private.keyid}")
    echo(f"wrote {keyfile} (private, 0600) and {public_path} (public)", err=True)


COMMANDS = [key]
