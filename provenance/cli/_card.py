"""``provenance card build|sign``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from provenance import _json, card, manifest
from provenance._files import atomic_write, read_bytes
from provenance.cli._common import (
    PATH,
    json_option,
    now_option,
    passphrase_from_env,
    print_json,
    real_now,
    resolve_now,
)
from provenance.envelope import Envelope, add_signature, sign_envelope
from provenance.errors import FormatError
from provenance.keys import load_private_key

MAX_REPORT_BYTES = 16 * 1024 * 1024


@click.group("card")
def card_group() -> None:
    """Build and sign dataset cards."""


def read_filter_report(path: Path) -> list[dict[str, Any]]:
    """Return the ``lists`` applied according to a filter report.

    Raises:
        FormatError: the report is malformed.
        SchemaError: it does not match ``schemas/filter-report.v1.json`` (whose ``lists`` items
            are the card predicate's ``exclusions`` items), or names a list twice.
    """
    from provenance import schema

    report = _json.loads_object(read_bytes(path, limit=MAX_REPORT_BYTES), what=str(path))
    lists = report.get("lists")
    if not isinstance(lists, list) or not all(isinstance(item, dict) for item in lists):
        raise FormatError(f"{path}: a filter report needs a 'lists' array")
    schema.validate(report, schema.FILTER_REPORT, what=f"{path} (filter report)")
    names = [item["name"] for item in lists]
    if len(set(names)) != len(names):
        raise FormatError(f"{path}: the filter report names a list twice")
    return lists


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
    from provenance import fpindex

    at = resolve_now(now)
    spec = card.load_spec(read_bytes(spec_path, limit=card.MAX_SPEC_BYTES), what=str(spec_path))
    exclusions = read_filter_report(filter_report) if filter_report else []
    summaries: list[manifest.ManifestSummary] = []
    statement = card.build_statement(
        spec,
        manifest.iter_manifest(manifest_path, on_summary=summaries.append),
        lambda: summaries[0],
        manifest_name=manifest_path.name,
        created=at,
        exclusions=exclusions,
        fingerprints=fpindex.sidecar_commitment(manifest_path),
    )
    atomic_write(output, _json.pretty(statement))
    predicate = statement["predicate"]
    click.echo(
        f"wrote {output}: {predicate['manifest']['entries']} entries in"
        f" {len(predicate['sources'])} source(s), {len(predicate['licenses'])} license(s),"
        f" {len(predicate['exclusions'])} exclusion list(s) applied"
    )


@card_group.command("sign")
@click.argument("card_path", metavar="CARD", type=PATH)
@click.option("--key", "key_path", required=True, type=PATH, help="Private key.")
@click.option("--passphrase-env", metavar="VAR", help="The key's passphrase is in $VAR.")
@click.option("-o", "--output", required=True, type=PATH, help="Signed card (may be CARD).")
def sign(card_path: Path, key_path: Path, passphrase_env: str | None, output: Path) -> None:
    """Sign CARD; signing an already signed card adds a co-signature."""
    key = load_private_key(key_path, passphrase=passphrase_from_env(passphrase_env))
    document = card.unverified_card_document(
        read_bytes(card_path, limit=card.MAX_CARD_BYTES), what=str(card_path)
    )
    if isinstance(document, Envelope):
        if document.payload_type != card.PAYLOAD_TYPE:
            raise FormatError(f"{card_path}: payload type {document.payload_type!r} is not a card")
        # The signer vouches for these exact bytes, so they must at least be a well-formed card.
        unverified_statement = _json.loads_object(document.payload, what=f"{card_path}: payload")
        card.check_statement(unverified_statement, what=f"{card_path}: payload")
        envelope = add_signature(document, key)
        verb = "co-signed"
    else:
        envelope = sign_envelope(card.PAYLOAD_TYPE, _json.canonical(document), [key])
        verb = "signed"
    atomic_write(output, envelope.to_json())
    click.echo(f"{verb} {output} with key {key.keyid} ({len(envelope.signatures)} signature(s))")


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
    from provenance.cli._trust import load_trust_store

    at = resolve_now(now)
    trust = load_trust_store(trust_path) if trust_path is not None else None
    if trust is not None and now:
        # A moved clock never revives an expired key: keys must be valid at the real time too.
        trust = trust.with_real_time(real_now())
    document = card.unverified_card_document(
        read_bytes(signed_path, limit=card.MAX_CARD_BYTES), what=str(signed_path)
    )
    view = card.show_card(document, trust, at=at, what=str(signed_path))
    if not view.verified:
        click.echo(
            f"warning: {signed_path}: NOT VERIFIED: {view.problem}; what is shown is only what"
            " the file claims",
            err=True,
        )
    if as_json:
        print_json(view.to_dict())
    else:
        _print_card(view)
    return 1 if trust is not None and not view.verified else 0


def _text(value: Any) -> str:
    """A value from the card for the terminal: control characters shown as escapes."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _print_card(view: card.CardView) -> None:
    """Print a card for people; an unverified one says so before, inside and after."""
    banner = (
        ""
        if view.verified
        else "NOT VERIFIED: " + _text(view.problem) + " (everything below is unverified)"
    )
    if banner:
        click.echo(banner)
    label = "" if view.verified else "unverified "
    statement = view.statement
    predicate = statement["predicate"]
    publisher = predicate["publisher"]
    click.echo(
        f"{label}card: {_text(predicate['name'])} {_text(predicate['version'])}"
        f" by {_text(publisher['name'])}"
        + (f" <{_text(publisher['url'])}>" if "url" in publisher else "")
        + f", created {_text(predicate['created'])}"
    )
    for line in predicate["description"].strip().splitlines():
        click.echo(f"  {_text(line)}")
    click.echo(f"{label}signatures ({len(view.signatures)}):")
    if not view.signatures:
        click.echo("  none")
    for signature in view.signatures:
        who = (
            f"{signature.role} {_text(signature.name)} ({signature.keyid[:16]})"
            if signature.role
            else f"key {_text(signature.keyid[:64])} (the envelope's unverified key hint)"
        )
        detail = f": {_text(signature.detail)}" if signature.detail else ""
        click.echo(f"  {signature.status:13} {who}{detail}")
    click.echo(f"{label}sources ({len(predicate['sources'])}):")
    for source in predicate["sources"]:
        claims = [
            f"{name} {', '.join(map(_text, source[key]))}"
            for name, key in (("paths", "paths"), ("domains", "domains"))
            if source.get(key)
        ]
        extra = [
            f"{name} {_text(source[key])}"
            for name, key in (
                ("rights holder", "rightsHolder"),
                ("agreement", "agreement"),
                ("homepage", "homepage"),
                ("legal basis", "legalBasis"),
            )
            if key in source
        ]
        click.echo(
            f"  {_text(source['id'])} ({_text(source['name'])}): {source['kind']},"
            f" {_text(source['license'])}, {source['records']:,} records,"
            f" {source['bytes']:,} bytes"
        )
        for line in [*claims, *extra]:
            click.echo(f"      {line}")
    click.echo(f"{label}licenses ({len(predicate['licenses'])}):")
    for item in predicate["licenses"]:
        click.echo(
            f"  {_text(item['license'])}: {item['records']:,} records, {item['bytes']:,} bytes"
        )
    exclusions = predicate["exclusions"]
    click.echo(f"{label}exclusion lists applied ({len(exclusions)}):")
    if not exclusions:
        click.echo("  none")
    for item in exclusions:
        matched = ", ".join(f"{_text(k)} {v:,}" for k, v in sorted(item["matched"].items()))
        click.echo(
            f"  {_text(item['name'])} v{item['version']} (sha256 {item['digest']}), applied"
            f" {_text(item['applied'])}: removed {item['removed']:,}"
            + (f" (matched {matched})" if matched else "")
            + f"; list signed by {', '.join(k[:16] for k in item['signers']) or 'no key'}"
        )
    manifest_part = predicate["manifest"]
    subject = statement["subject"][0]
    click.echo(
        f"{label}manifest: {_text(subject['name'])} sha256 {subject['digest']['sha256']},"
        f" {manifest_part['entries']:,} entries, {manifest_part['bytes']:,} bytes,"
        f" Merkle root {manifest_part['merkleRoot']}"
    )
    if "fingerprints" in manifest_part:
        click.echo(f"  fingerprint index sha256 {manifest_part['fingerprints']['sha256']}")
    generator = predicate["generator"]
    click.echo(f"made by {_text(generator['name'])} {_text(generator['version'])}")
    if banner:
        click.echo(banner)
    else:
        publishers = [s for s in view.signatures if s.status == "verified"]
        click.echo("verified: " + "; ".join(f"{s.role} {_text(s.name)}" for s in publishers))


COMMANDS = [card_group]

# 'card draft' lives in its own module, which imports cards of other formats.
from provenance.cli._card_draft import draft as _draft  # noqa: E402

card_group.add_command(_draft)
