"""``provenance trust add|require|show``."""

from __future__ import annotations

from pathlib import Path

import click

from provenance._files import atomic_write, read_bytes
from provenance.cli._common import PATH, json_option, print_json
from provenance.keys import load_public_key
from provenance.trust import MAX_TRUST_STORE_BYTES, ROLES, TrustStore


def load_trust_store(path: Path) -> TrustStore:
    """Read and check the trust store at ``path``."""
    return TrustStore.from_json(read_bytes(path, limit=MAX_TRUST_STORE_BYTES), what=str(path))


def _load_or_new(path: Path) -> TrustStore:
    return load_trust_store(path) if path.exists() else TrustStore()


@click.group()
def trust() -> None:
    """Manage a trust store: which keys are trusted for which roles."""


@trust.command("add")
@click.argument("trust_path", metavar="TRUST", type=PATH)
@click.argument("pubkey", type=PATH)
@click.option(
    "--name",
    required=True,
    help="Who holds the key (shown in reports); for a transparency-log key, the log's origin.",
)
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the key may sign.")
@click.option("--list", "list_name", metavar="NAME", help="The exclusion list the key may sign.")
@click.option("--threshold", type=int, help="Signatures needed for the list (default 1).")
def add(
    trust_path: Path,
    pubkey: Path,
    name: str,
    role: str,
    list_name: str | None,
    threshold: int | None,
) -> None:
    """Trust PUBKEY for ROLE in TRUST (created if missing)."""
    store = _load_or_new(trust_path)
    key = load_public_key(pubkey)
    store = store.with_key(key, name=name, role=role, list_name=list_name, threshold=threshold)  # type: ignore[arg-type]
    atomic_write(trust_path, store.to_json())
    click.echo(
        f"trusted {key.keyid} ({name}) as {role}" + (f" for list {list_name}" if list_name else "")
    )


@trust.command("require")
@click.argument("trust_path", metavar="TRUST", type=PATH)
@click.argument("name")
def require(trust_path: Path, name: str) -> None:
    """Require cards to have applied exclusion list NAME."""
    store = load_trust_store(trust_path).with_required(name)
    atomic_write(trust_path, store.to_json())
    click.echo(f"cards must now have applied list {name}")


@trust.command("show")
@click.argument("trust_path", metavar="TRUST", type=PATH)
@json_option
def show(trust_path: Path, as_json: bool) -> None:
    """Print the keys and list policies of TRUST."""
    store = load_trust_store(trust_path)
    if as_json:
        print_json(store.to_dict())
        return
    for keyid, trusted in sorted(store.keys.items()):
        click.echo(
            f"{keyid}  {trusted.key.algorithm:10}"
            f"  {','.join(sorted(trusted.roles)):30}  {trusted.name}"
        )
    for name, policy in sorted(store.lists.items()):
        required = " (required)" if policy.required else ""
        click.echo(f"list {name}: {policy.threshold} of {len(policy.keyids)} key(s){required}")


COMMANDS = [trust]
