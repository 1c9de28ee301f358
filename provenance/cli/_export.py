"""``provenance export FORMAT SIGNED --trust TRUST [--manifest M] -o OUT``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from provenance._files import atomic_write
from provenance.cli._common import (
    PATH,
    echo,
    now_option,
    passphrase_from_env,
    passphrase_hint,
    resolve_clock,
)
from provenance.errors import InputError
from provenance.exports import FORMATS, MODALITIES, ExportOptions


@click.command("export")
@click.argument("format_name", metavar="FORMAT", type=click.Choice(FORMATS))
@click.argument("signed_path", metavar="SIGNED", type=PATH)
@click.option("--trust", "trust_path", required=True, type=PATH, help="Trust store.")
@click.option(
    "--manifest",
    "manifest_path",
    type=PATH,
    help="The card's manifest: checked against the card, then used for figures the card does"
    " not hold (domains, modalities, file size). Required for oms.",
)
@click.option("-o", "--output", required=True, type=PATH, help="File to write.")
@click.option("--json", "as_json", is_flag=True, help="eu-summary: write JSON instead of Markdown.")
@click.option("--url", help="Where the dataset is published (Croissant url, SPDX download, ...).")
@click.option(
    "--modality",
    "modalities",
    multiple=True,
    type=click.Choice(MODALITIES),
    help="The dataset's modalities (repeatable); inferred from --manifest otherwise.",
)
@click.option("--provider", help="eu-summary: provider name (default: the card's publisher).")
@click.option("--provider-contact", help="eu-summary: provider's contact details.")
@click.option("--model", help="eu-summary: versioned model name(s).")
@click.option("--crawler", help="eu-summary: crawler name(s) or user agent.")
@click.option("--sme", is_flag=True, help="eu-summary: the provider is an SME (top 5 % domains).")
@click.option("--data", "data_dir", type=PATH, help="oms: the data directory to sign.")
@click.option("--key", "key_path", type=PATH, help="oms: ECDSA P-256 private key.")
@click.option("--passphrase-env", metavar="VAR", help="oms: the key's passphrase is in $VAR.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=lambda: os.cpu_count() or 1,
    show_default="all cores",
    help="oms: hashing processes for --data.",
)
@now_option
def export_command(
    format_name: str,
    signed_path: Path,
    trust_path: Path,
    manifest_path: Path | None,
    output: Path,
    as_json: bool,
    url: str | None,
    modalities: tuple[str, ...],
    provider: str | None,
    provider_contact: str | None,
    model: str | None,
    crawler: str | None,
    sme: bool,
    data_dir: Path | None,
    key_path: Path | None,
    passphrase_env: str | None,
    workers: int,
    now: str | None,
) -> None:
    """Verify a signed card and write it in FORMAT.

    \b
    huggingface  README.md for a Hub dataset repository (YAML front matter + card body)
    croissant    Croissant 1.1 JSON-LD with RAI fields and PROV-O sources
    spdx3        SPDX 3.0.1 JSON-LD (Dataset profile)
    cyclonedx    CycloneDX 1.6 JSON with a data component
    eu-summary   EU AI Act public summary of training content, sections 1-3 (--json: JSON)
    oms          OpenSSF model_signing bundle over --data, signed with --key (needs --manifest)
    html         one self-contained page for people

    A card that does not verify exits 1 and nothing is written; so does a manifest (or, for
    oms, a data directory) that does not match the card.
    """
    clock = resolve_clock(now)
    if as_json and format_name != "eu-summary":
        raise InputError("--json applies to eu-summary only")
    if format_name == "oms":
        if manifest_path is None or data_dir is None or key_path is None:
            raise InputError("export oms needs --manifest, --data and --key")
        from provenance.exports.run import export_oms

        with passphrase_hint():
            data = export_oms(
                signed_path,
                trust_path,
                manifest_path=manifest_path,
                data_dir=data_dir,
                key_path=key_path,
                output=output,
                at=clock.at,
                passphrase=passphrase_from_env(passphrase_env),
                workers=workers,
                real_time=clock.real_time,
            )
    else:
        if data_dir is not None or key_path is not None:
            raise InputError("--data and --key apply to oms only")
        from provenance.exports.run import export

        data = export(
            format_name,
            signed_path,
            trust_path,
            at=clock.at,
            real_time=clock.real_time,
            manifest_path=manifest_path,
            options=ExportOptions(
                as_json=as_json,
                url=url,
                modalities=modalities,
                provider=provider,
                provider_contact=provider_contact,
                model=model,
                crawler=crawler,
                sme=sme,
            ),
        )
    atomic_write(output, data)
    echo(f"wrote {output} ({format_name}, {len(data)} bytes) from the verified card")


COMMANDS = [export_command]
