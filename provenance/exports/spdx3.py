"""SPDX 3.0.1 JSON-LD, Dataset profile.

The dataset is a ``dataset_DatasetPackage`` (the document's root element) and so is every source,
linked by a ``descendantOf`` relationship; licenses are ``simplelicensing_LicenseExpression``
elements reached by ``hasDeclaredLicense`` relationships, with ``customIdToUri`` for the card's
``LicenseRef-`` ids (the agreement's URL, or a URN naming the signed card that defines them). The
manifest is a ``software_File`` verified by its SHA-256; the RFC 9162 Merkle root, which has no
SPDX algorithm, is a ``Hash`` of algorithm ``other`` with a comment saying what it is. Exclusion
lists applied are ``dataset_dataPreprocessing`` lines; counts per license and per source an
``Annotation``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from provenance.card.model import Source
from provenance.exports import (
    TOOL_URL,
    ExportCard,
    ExportOptions,
    ManifestFacts,
    collection_of,
    collection_window,
    custom_license_refs,
    dataset_license,
    dataset_modalities,
    exclusion_line,
)
from provenance.licenses import license_ids

CONTEXT = "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
# SPDX dataset types for our modalities; "other" has its own value.
DATASET_TYPE = {
    "text": "text",
    "image": "image",
    "audio": "audio",
    "video": "video",
    "other": "other",
}
AVAILABILITY = {"web-crawl": "scrapingScript"}


def _id_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", text)


def document(
    card: ExportCard, facts: ManifestFacts | None, options: ExportOptions
) -> dict[str, Any]:
    """The SPDX 3.0.1 JSON-LD document of ``card``."""
    predicate = card.predicate
    manifest = predicate.manifest
    base = f"urn:provenance:card:sha256:{card.statement_sha256}"
    refs = custom_license_refs(predicate)
    created = predicate.created
    graph: list[dict[str, Any]] = []
    elements: list[str] = []

    def element(kind: str, local: str, **fields: Any) -> str:
        spdx_id = f"{base}/{kind}/{_id_part(local)}"
        graph.append({"type": kind, "spdxId": spdx_id, "creationInfo": "_:creationinfo", **fields})
        elements.append(spdx_id)
        return spdx_id

    publisher_id = f"{base}/Organization/publisher"
    tool_id = f"{base}/Tool/provenance"
    graph.append(
        {
            "type": "CreationInfo",
            "@id": "_:creationinfo",
            "specVersion": "3.0.1",
            "created": created,
            "createdBy": [publisher_id],
            "createdUsing": [tool_id],
        }
    )
    element("Organization", "publisher", name=predicate.publisher.name)
    element(
        "Tool",
        "provenance",
        name=f"provenance {predicate.generator.version}",
        externalIdentifier=[
            {
                "type": "ExternalIdentifier",
                "externalIdentifierType": "other",
                "identifier": TOOL_URL,
            }
        ],
    )
    modalities, _ = dataset_modalities(options, facts)
    types = [DATASET_TYPE[m] for m in modalities] or ["noAssertion"]

    def license_element(local: str, expression: str) -> str:
        fields: dict[str, Any] = {"simplelicensing_licenseExpression": expression}
        custom = [
            {"type": "DictionaryEntry", "key": i, "value": refs.get(i) or f"{base}#{i}"}
            for i in (license_ids(expression) if expression != "NOASSERTION" else [])
            if "LicenseRef-" in i
        ]
        if custom:
            fields["simplelicensing_customIdToUri"] = custom
        return element("simplelicensing_LicenseExpression", local, **fields)

    def declared(local: str, subject: str, expression: str) -> None:
        target = license_element(local, expression)
        element(
            "Relationship",
            f"{local}-declared-license",
            relationshipType="hasDeclaredLicense",
            **{"from": subject, "to": [target]},
        )

    holders: dict[str, str] = {}
    start, end = collection_window(predicate.sources)
    dataset_fields: dict[str, Any] = {
        "name": predicate.name,
        "description": predicate.description.strip() or predicate.name,
        "software_packageVersion": predicate.version,
        "software_primaryPurpose": "data",
        "software_downloadLocation": options.url or "NOASSERTION",
        "releaseTime": created,
        "originatedBy": [publisher_id],
        "suppliedBy": publisher_id,
        "dataset_datasetType": types,
        "dataset_datasetSize": manifest.bytes,
        "dataset_dataCollectionProcess": "; ".join(
            [f"{s.id}: {s.kind}" for s in predicate.sources]
            + ([f"collected {start or '?'} to {end or '?'}"] if start or end else [])
        ),
        "dataset_dataPreprocessing": [exclusion_line(e) for e in predicate.exclusions]
        or ["no exclusion list applied (as the signed card records)"],
        "dataset_hasSensitivePersonalInformation": "noAssertion",
        "verifiedUsing": [
            {
                "type": "Hash",
                "algorithm": "other",
                "hashValue": manifest.merkle_root,
                "comment": "RFC 9162 Merkle tree root (SHA-256) over the manifest's entries,"
                f" committed to by signed provenance card {card.card_urn}",
            }
        ],
    }
    if end:
        dataset_fields["builtTime"] = f"{end}T23:59:59Z"
    dataset_id = element("dataset_DatasetPackage", "dataset", **dataset_fields)
    declared("dataset", dataset_id, dataset_license(predicate))

    source_ids: list[str] = []
    for source in predicate.sources:
        fields = _source_fields(source, types)
        holder = source.rights_holder
        if holder:
            if holder not in holders:
                holders[holder] = element("Organization", f"holder-{len(holders) + 1}", name=holder)
            fields["originatedBy"] = [holders[holder]]
        source_id = element("dataset_DatasetPackage", f"source-{source.id}", **fields)
        source_ids.append(source_id)
        declared(f"source-{source.id}", source_id, source.license)
    element(
        "Relationship",
        "derived-from-sources",
        relationshipType="descendantOf",
        completeness="complete",
        **{"from": dataset_id, "to": source_ids},
    )
    file_fields: dict[str, Any] = {
        "name": card.manifest_name,
        "software_primaryPurpose": "manifest",
        "contentType": "application/jsonlines",
        "verifiedUsing": [
            {"type": "Hash", "algorithm": "sha256", "hashValue": card.manifest_sha256}
        ],
    }
    file_id = element("software_File", "manifest", **file_fields)
    element(
        "Relationship",
        "manifest",
        relationshipType="hasMetadata",
        **{"from": dataset_id, "to": [file_id]},
    )
    counts = {
        "licenses": {
            i.license: {"records": i.records, "bytes": i.bytes} for i in predicate.licenses
        },
        "sources": {s.id: {"records": s.records, "bytes": s.bytes} for s in predicate.sources},
        "entries": manifest.entries,
        "card": card.card_urn,
    }
    element(
        "Annotation",
        "counts",
        annotationType="other",
        subject=dataset_id,
        contentType="application/json",
        statement=json.dumps(counts, sort_keys=True),
    )
    document_id = f"{base}/SpdxDocument"
    graph.append(
        {
            "type": "SpdxDocument",
            "spdxId": document_id,
            "creationInfo": "_:creationinfo",
            "name": f"{predicate.name} {predicate.version} (from a signed provenance card)",
            "profileConformance": ["core", "software", "dataset", "simpleLicensing"],
            "rootElement": [dataset_id],
            "element": elements,
        }
    )
    return {"@context": CONTEXT, "@graph": graph}


def _source_fields(source: Source, types: list[str]) -> dict[str, Any]:
    process = [f"kind: {source.kind}"]
    window = collection_of(source)
    if window:
        process.append(f"collected {window.start or '?'} to {window.end or '?'}")
    if source.opt_out:
        process.append(f"opt-outs honoured: {', '.join(source.opt_out)}")
    if source.legal_basis:
        process.append(f"legal basis: {source.legal_basis}")
    if source.agreement:
        process.append(f"licensing agreement: {source.agreement}")
    fields: dict[str, Any] = {
        "name": source.name,
        "software_primaryPurpose": "data",
        "software_downloadLocation": source.homepage or "NOASSERTION",
        "dataset_datasetType": types,
        "dataset_datasetSize": source.bytes,
        "dataset_dataCollectionProcess": "; ".join(process),
    }
    if source.kind in AVAILABILITY:
        fields["dataset_datasetAvailability"] = AVAILABILITY[source.kind]
    if window and window.end:
        fields["builtTime"] = f"{window.end}T23:59:59Z"
    agreement = source.agreement
    if agreement and agreement.startswith(("https://", "http://")):
        fields["externalRef"] = [
            {"type": "ExternalRef", "externalRefType": "license", "locator": [agreement]}
        ]
    return fields


def export(card: ExportCard, facts: ManifestFacts | None, options: ExportOptions) -> bytes:
    """Return the SPDX 3.0.1 JSON-LD of ``card``."""
    return (
        json.dumps(document(card, facts, options), indent=2, ensure_ascii=False) + "\n"
    ).encode()
