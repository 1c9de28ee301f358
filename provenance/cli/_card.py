"""``provenance card build|sign|show|draft``."""

from __future__ import annotations

from pathlib import Path

import click

from provenance import card
from provenance.cli._card_draft import draft
from provenance.cli._common import (
    PATH,
    echo,
    json_option,
    load_private_key,
    load_trust,
    now_option,
    print_json,
    resolve_clock,
    resolve_now,
)


@click.group("card")
def card_group() -> None:
    """Build and sign dataset cards."""


@card_group.command("build")
@click.argument("spec_path", metavar="SPEC", type=PATH)
@click.option("--manifest", "manifest_path", required=True, type=PATH, help="The manifest.")
@click.option("--filter-report", type=PATH, help="Report of 'provenance filter' (lists applied).")
@click.option("-o", "--output", required=True, type=PATH, help="Unsigned card to write.")
@now_option
def build(
    spec_path: Path, manifest_path: Path, filter_report: Path | None, output: Path, now: str | None
) -> None:
    """Build an unsigned dataset card from SPEC (YAML or JSON) and a manifest."""
    statement = card.build_card(
        spec_path,
        manifest_path,
        output=output,
        at=resolve_now(now),
        filter_report=filter_report,
    )
    predicate = statement.predicate
    echo(
        f"wrote {output}: {predicate.manifest.entries} entries in"
        f" {len(predicate.sources)} source(s), {len(predicate.licenses)} license(s),"
        f" {len(predicate.exclusions)} exclusion list(s) applied"
    )


@card_group.command("sign")
@click.argument("card_path", metavar="CARD", type=PATH)
@click.option("--key", "key_path", required=True, type=PATH, help="Private key.")
@click.option("--passphrase-env", metavar="VAR", help="The key's passphrase is in $VAR.")
@click.option("-o", "--output", required=True, type=PATH, help="Signed card (may be CARD).")
def sign(card_path: Path, key_path: Path, passphrase_env: str | None, output: Path) -> None:
    """Sign CARD; signing an already signed card adds a co-signature."""
    signed = card.sign_card_file(
        card_path, load_private_key(key_path, passphrase_env), output=output
    )
    echo(
        f"{'co-signed' if signed.cosigned else 'signed'} {output} with key {signed.keyid}"
        f" ({len(signed.envelope.signatures)} signature(s))"
    )


@card_group.command("show")
@click.argument("signed_path", metavar="SIGNED", type=PATH)
@click.option(
    "--trust", "trust_path", type=PATH, help="Trust store to verify the signatures against."
)
@json_option
@now_option
def show(signed_path: Path, trust_path: Path | None, as_json: bool, now: str | None) -> int:
    """Show a card for people: sources, licenses, exclusions, manifest, signatures.

    With --trust the signatures are verified (exit 1 when the card does not verify). Without
    it nothing is verified, and everything shown is only what the file claims.
    """
    clock = resolve_clock(now)
    trust = load_trust(trust_path, clock) if trust_path is not None else None
    view = card.show_card_file(signed_path, trust, at=clock.at)
    if not view.verified:
        echo(
            f"warning: {signed_path}: NOT VERIFIED: {view.problem}; what is shown is only what"
            " the file claims",
            err=True,
        )
    if as_json:
        print_json(view.to_dict())
    else:
        _print_card(view)
    return 1 if trust is not None and not view.verified else 0


def _print_card(view: card.CardView) -> None:
    """Print a card for people; an unverified one says so before, inside and after."""
    banner = (
        "" if view.verified else f"NOT VERIFIED: {view.problem} (everything below is unverified)"
    )
    if banner:
        echo(banner)
    label = "" if view.verified else "unverified "
    statement = view.statement
    predicate = statement.predicate
    publisher = predicate.publisher
    echo(
        f"{label}card: {predicate.name} {predicate.version} by {publisher.name}"
        + (f" <{publisher.url}>" if publisher.url is not None else "")
        + f", created {predicate.created}"
    )
    for line in predicate.description.strip().splitlines():
        echo(f"  {line}")
    echo(f"{label}signatures ({len(view.signatures)}):")
    if not view.signatures:
        echo("  none")
    for signature in view.signatures:
        who = (
            f"{signature.role} {signature.name} ({signature.keyid[:16]})"
            if signature.role
            else f"key {signature.keyid[:64]} (the envelope's unverified key hint)"
        )
        detail = f": {signature.detail}" if signature.detail else ""
        echo(f"  {signature.status:13} {who}{detail}")
    echo(f"{label}sources ({len(predicate.sources)}):")
    for source in predicate.sources:
        echo(
            f"  {source.id} ({source.name}): {source.kind}, {source.license},"
            f" {source.records:,} records, {source.bytes:,} bytes"
        )
        for name, value in (
            ("paths", ", ".join(source.paths or ())),
            ("domains", ", ".join(source.domains or ())),
            ("rights holder", source.rights_holder),
            ("agreement", source.agreement),
            ("homepage", source.homepage),
            ("legal basis", source.legal_basis),
        ):
            if value:
                echo(f"      {name} {value}")
    echo(f"{label}licenses ({len(predicate.licenses)}):")
    for item in predicate.licenses:
        echo(f"  {item.license}: {item.records:,} records, {item.bytes:,} bytes")
    echo(f"{label}exclusion lists applied ({len(predicate.exclusions)}):")
    if not predicate.exclusions:
        echo("  none")
    for exclusion in predicate.exclusions:
        matched = ", ".join(f"{k} {v:,}" for k, v in sorted(exclusion.matched.items()))
        signers = ", ".join(k[:16] for k in exclusion.signers) or "no key"
        echo(
            f"  {exclusion.name} v{exclusion.version} (sha256 {exclusion.digest}), applied"
            f" {exclusion.applied}: removed {exclusion.removed:,}"
            + (f" (matched {matched})" if matched else "")
            + f"; list signed by {signers}"
        )
    committed = predicate.manifest
    echo(
        f"{label}manifest: {statement.manifest_name} sha256 {statement.manifest_sha256},"
        f" {committed.entries:,} entries, {committed.bytes:,} bytes,"
        f" Merkle root {committed.merkle_root}"
    )
    if committed.fingerprints is not None:
        echo(f"  fingerprint index sha256 {committed.fingerprints.sha256}")
    echo(f"made by {predicate.generator.name} {predicate.generator.version}")
    if banner:
        echo(banner)
    else:
        publishers = [s for s in view.signatures if s.status == "verified"]
        echo("verified: " + "; ".join(f"{s.role} {s.name}" for s in publishers))


card_group.add_command(draft)

COMMANDS = [card_group]
