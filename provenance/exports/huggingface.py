"""Hugging Face Hub dataset card: README.md with YAML front matter and the Hub template's body.

``license`` holds only the Hub's own ids (``data/hub-licenses.tsv``), as a list; a license the
Hub has no id for is ``other``, with ``license_name`` (lowercase ``[a-z0-9.-]``) and
``license_link``. The card's identity (statement digest), the manifest digest and Merkle root
are kept under a ``provenance:`` key (the Hub keeps keys it does not know).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from provenance.card.model import PREDICATE_TYPE, CardPredicate
from provenance.exports import (
    ExportCard,
    ExportOptions,
    ManifestFacts,
    collection_of,
    collection_window,
    custom_license_refs,
    dataset_license,
    exclusion_line,
    human_bytes,
    md_cell,
    md_code,
    md_paragraphs,
    md_text,
)
from provenance.exports.licenses import hub_id
from provenance.licenses import license_ids
from provenance.partitions.index import INDEX_NAME, PARTS_GLOB

MORE = "[More Information Needed]"
_SIZE_BUCKETS = (
    (10**3, "n<1K"),
    (10**4, "1K<n<10K"),
    (10**5, "10K<n<100K"),
    (10**6, "100K<n<1M"),
    (10**7, "1M<n<10M"),
    (10**8, "10M<n<100M"),
    (10**9, "100M<n<1B"),
    (10**10, "1B<n<10B"),
    (10**11, "10B<n<100B"),
    (10**12, "100B<n<1T"),
)
_HUB_DATASET = re.compile(r"^https://huggingface\.co/datasets/([A-Za-z0-9][\w.-]*/[\w.-]+)/?$")


def size_category(records: int) -> str:
    """The Hub's ``size_categories`` bucket for ``records`` examples."""
    for bound, label in _SIZE_BUCKETS:
        if records < bound:
            return label
    return "n>1T"


def license_name(license_id: str) -> str:
    """A Hub ``license_name``: lowercase ``[a-z0-9.-]``."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9.-]", "-", license_id.lower())).strip("-.")


def hub_licenses(predicate: CardPredicate) -> tuple[list[str], list[str]]:
    """The Hub ids for the card's licenses, and the SPDX ids the Hub has no id for."""
    hub: list[str] = []
    unmapped: list[str] = []
    expressions = {item.license for item in predicate.licenses} or {
        source.license for source in predicate.sources
    }
    for expression in sorted(expressions):
        if expression == "NOASSERTION":
            if "unknown" not in hub:
                hub.append("unknown")
            continue
        for license_id in license_ids(expression):
            mapped = hub_id(license_id)
            if mapped is None:
                if license_id not in unmapped:
                    unmapped.append(license_id)
            elif mapped not in hub:
                hub.append(mapped)
    if unmapped:
        hub.append("other")
    return hub, unmapped


def source_datasets(predicate: CardPredicate) -> list[str]:
    """``original`` for data first compiled here, ``extended|<id>`` for each source dataset."""
    values: list[str] = []
    for source in predicate.sources:
        if source.kind == "dataset":
            match = _HUB_DATASET.match(source.homepage or "")
            values.append(f"extended|{match[1] if match else source.id}")
        elif "original" not in values:
            values.insert(0, "original")
    return values


def front_matter(card: ExportCard, facts: ManifestFacts | None) -> dict[str, Any]:
    """The YAML metadata of the README."""
    predicate = card.predicate
    manifest = predicate.manifest
    hub, unmapped = hub_licenses(predicate)
    data: dict[str, Any] = {"pretty_name": predicate.name, "license": hub}
    if unmapped:
        refs = custom_license_refs(predicate)
        data["license_name"] = (
            license_name(unmapped[0]) if len(unmapped) == 1 else "custom-licenses"
        )
        link = refs.get(unmapped[0]) if len(unmapped) == 1 else None
        data["license_link"] = link or "LICENSE.md"
    data["size_categories"] = [size_category(manifest.entries)]
    data["source_datasets"] = source_datasets(predicate)
    data["tags"] = ["provenance"]
    data["configs"] = [
        {
            "config_name": "manifest",
            # A partitioned manifest's entries are in its parts; the card commits to its index.
            "data_files": [
                {
                    "split": "train",
                    "path": PARTS_GLOB if card.manifest_partitioned else card.manifest_name,
                }
            ],
        }
    ]
    data["provenance"] = {
        "card_sha256": card.statement_sha256,
        "predicate_type": PREDICATE_TYPE,
        "manifest": card.manifest_name,
        "manifest_sha256": card.manifest_sha256,
        "merkle_root": manifest.merkle_root,
        "entries": manifest.entries,
        "bytes": manifest.bytes,
        "license": dataset_license(predicate),
        "signers": [{"keyid": s.keyid, "name": s.name, "role": s.role} for s in card.signers],
    }
    if facts is not None:
        data["provenance"]["manifest_bytes"] = facts.file_bytes
    return data


def export(card: ExportCard, facts: ManifestFacts | None, options: ExportOptions) -> bytes:
    """Return the README.md of a Hub dataset repository for ``card``."""
    predicate = card.predicate
    manifest = predicate.manifest
    meta = front_matter(card, facts)
    yaml_text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    lines = ["---", yaml_text.rstrip("\n"), "---", ""]
    add = lines.append
    add(f"# Dataset Card for {md_text(predicate.name)}")
    add("")
    add(
        "This card was generated from a signed `provenance` dataset card (an in-toto Statement"
        " in a DSSE envelope); the signed card, not this page, is the source of truth."
    )
    add("")
    add("## Dataset Details")
    add("")
    add("### Dataset Description")
    add("")
    add(md_paragraphs(predicate.description) or MORE)
    add("")
    publisher = predicate.publisher
    add(f"- **Curated by:** {md_text(publisher.name)}")
    if publisher.url:
        add(f"- **Publisher's site:** {md_text(publisher.url)}")
    add(f"- **Version:** {md_text(predicate.version)}")
    spdx = md_code(dataset_license(predicate))
    add(f"- **License:** {spdx} (SPDX expression of the whole dataset)")
    if options.url:
        add(f"- **Repository:** {md_text(options.url)}")
    add("")
    add("### Dataset Sources")
    add("")
    add(
        "| id | name | kind | license (SPDX) | rights holder | agreement | collection window"
        " | opt-outs honoured | legal basis | records | bytes |"
    )
    add("|---|---|---|---|---|---|---|---|---|---:|---:|")
    for source in predicate.sources:
        window = collection_of(source)
        span = f"{window.start or '?'} to {window.end or '?'}" if window else None
        add(
            "| "
            + " | ".join(
                md_cell(v)
                for v in (
                    source.id,
                    source.name,
                    source.kind,
                    source.license,
                    source.rights_holder,
                    source.agreement,
                    span,
                    ", ".join(source.opt_out or ()) or None,
                    source.legal_basis,
                    source.records,
                    source.bytes,
                )
            )
            + " |"
        )
    add("")
    add("## Uses")
    add("")
    add(MORE)
    add("")
    add("## Dataset Structure")
    add("")
    size = f", {facts.file_bytes} bytes" if facts is not None else ""
    listed = (
        f"The manifest's parts, {md_code(PARTS_GLOB)} (JSON Lines; their index"
        f" {md_code(INDEX_NAME)}{size}, gives each part's SHA-256), list"
        if card.manifest_partitioned
        else f"{md_code(card.manifest_name)} (JSON Lines{size}) lists"
    )
    add(
        f"{listed} every file or record: `id`, `sha256`,"
        " `size`, and where known `source`, `url`, `license`, `rightsHolder`. It holds"
        f" {manifest.entries} entries, {manifest.bytes} bytes"
        f" ({human_bytes(manifest.bytes)}) of data in total."
    )
    add("")
    add("## Dataset Creation")
    add("")
    add("### Source Data")
    add("")
    add("#### Data Collection and Processing")
    add("")
    start, end = collection_window(predicate.sources)
    if start or end:
        add(f"Data was collected from {md_text(start or '?')} to {md_text(end or '?')}.")
        add("")
    opt_outs = sorted({o for s in predicate.sources for o in s.opt_out or ()})
    if opt_outs:
        add(f"Opt-out signals honoured: {md_text(', '.join(opt_outs))}.")
        add("")
    add("#### Who are the source data producers?")
    add("")
    holders = sorted({s.rights_holder for s in predicate.sources if s.rights_holder})
    add(md_text(", ".join(holders)) if holders else MORE)
    add("")
    add("### Personal and Sensitive Information")
    add("")
    add(MORE)
    add("")
    add("## Licenses")
    add("")
    add("| license (SPDX) | records | bytes |")
    add("|---|---:|---:|")
    for item in predicate.licenses:
        add(f"| {md_cell(item.license)} | {item.records} | {item.bytes} |")
    add("")
    refs = custom_license_refs(predicate)
    if refs:
        add("Licenses of the card's own (`LicenseRef-`) ids:")
        add("")
        for ref, url in refs.items():
            terms = (
                md_text(url) if url else "terms to be added to LICENSE.md [More Information Needed]"
            )
            add(f"- {md_code(ref)}: {terms}")
        add("")
    add("## Exclusion lists applied")
    add("")
    if predicate.exclusions:
        add("| list | version | sha256 of the signed list | matched | removed | applied |")
        add("|---|---:|---|---|---:|---|")
        for exclusion in predicate.exclusions:
            matched = ", ".join(f"{k} {v}" for k, v in sorted(exclusion.matched.items()))
            add(
                f"| {md_cell(exclusion.name)} | {md_cell(exclusion.version)}"
                f" | `{exclusion.digest}` | {md_cell(matched or 'none')} | {exclusion.removed}"
                f" | {exclusion.applied} |"
            )
        add("")
        for exclusion in predicate.exclusions:
            add(f"- {md_text(exclusion_line(exclusion))}")
    else:
        add("The card records no exclusion list applied.")
    add("")
    add("## How to verify")
    add("")
    add(
        f"The signed card commits to {md_code(card.manifest_name)} by its SHA-256"
        f" `{card.manifest_sha256}` and its RFC 9162 Merkle root `{manifest.merkle_root}`."
        f" The card's own digest (SHA-256 of the signed statement) is `{card.statement_sha256}`."
    )
    add("")
    if card.signers:
        signers = "; ".join(f"{s.name} ({s.role}, key {s.keyid})" for s in card.signers)
        add(f"Signed by: {md_text(signers)}")
        add("")
    add("```sh")
    add(
        "provenance verify card.signed.json --trust trust.json"
        f" --manifest {shlex.quote(card.manifest_name)} --data DATA_DIR"
    )
    add("```")
    add("")
    return "\n".join(lines).encode("utf-8")
