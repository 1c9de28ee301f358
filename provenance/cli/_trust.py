"""``provenance trust add|require|show``."""

from __future__ import annotations

from pathlib import Path

import click

from provenance.cli._common import PATH, echo, json_option, print_json
from provenance.trust import ROLES, add_trusted_key, read_trust_store, require_list


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
    key = add_trusted_key(
        trust_path,
        pubkey,
        name=name,
        role=role,  # type: ignore[arg-type]
        list_name=list_name,
        threshold=threshold,
    )
    for_list = f" for list {list_name}" if list_name else ""
    echo(f"trusted {key.keyid} ({name}) as {role}{for_list}")


@trust.command("require")
@click.argument("trust_path", metavar="TRUST", type=PATH)
@click.argument("name")
def require(trust_path: Path, name: str) -> None:
    """Require cards to have applied exclusion list NAME."""
    require_list(trust_path, name)
    echo(f"cards must now have applied list {name}")


@trust.command("show")
@click.argument("trust_path", metavar="TRUST", type=PATH)
@json_option
def show(trust_path: Path, as_json: bool) -> None:
    """Print the keys and list policies of TRUST."""
    store = read_trust_store(trust_path)
    if as_json:
        print_json(store.to_dict())
        return
    for keyid, trusted in sorted(store.keys.items()):
        echo(
            f"{keyid}  {trusted.key.algorithm:10}"
            f"  {','.join(sorted(trusted.roles)):30}  {trusted.name}"
        )
    for name, policy in sorted(store.lists.items()):
        required = " (required)" if policy.required else ""
        echo(f"list {name}: {policy.threshold} of {len(policy.keyids)} key(s){required}")


COMMANDS = [trust]
