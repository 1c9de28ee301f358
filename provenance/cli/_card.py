"""``provenance card build|sign``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from provenance import _json, card, manifest
from provenance._files import atomic_write, read_bytes
from provenance.cli._common import PATH, now_option, passphrase_from_env, resolve_now
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


def _fingerprints_commitment(manifest_path: Path) -> dict[str, str] | None:
    """The card's record of the manifest's fingerprint sidecar, if there is one.

    Raises:
        InputError: the sidecar belongs to another manifest.
        FormatError: the sidecar is corrupt.
    """
    from provenance import fpindex

    sidecar = fpindex.sidecar_path(manifest_path)
    if not sidecar.exists():
        return None
    # Opening checks the layout and that the sidecar was built for this very manifest.
    with fpindex.FingerprintIndex.open(manifest_path, sidecar):
        pass
    return {"sha256": fpindex.file_sha256(sidecar), "name": sidecar.name}


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
        fingerprints=_fingerprints_commitment(manifest_path),
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


COMMANDS = [card_group]

# 'card draft' lives in its own module, which imports cards of other formats.
from provenance.cli._card_draft import draft as _draft  # noqa: E402

card_group.add_command(_draft)
