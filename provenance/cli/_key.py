"""``provenance key generate``."""

from __future__ import annotations

from pathlib import Path

import click

from provenance.cli._common import PATH, passphrase_from_env
from provenance.keys import ALGORITHMS, PrivateKey, write_key_pair


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
    passphrase = passphrase_from_env(passphrase_env)
    private = PrivateKey.generate(algorithm)  # type: ignore[arg-type]
    public_path = write_key_pair(private, keyfile, passphrase=passphrase, force=force)
    click.echo(f"keyid {private.keyid}")
    click.echo(f"wrote {keyfile} (private, 0600) and {public_path} (public)", err=True)


COMMANDS = [key]
