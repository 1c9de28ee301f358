"""CycloneDX 1.6 JSON: a BOM whose ``metadata.component`` is the dataset, of type ``data``.

The dataset's license is one SPDX ``expression``; each source is a ``data`` component under
``pedigree.ancestors`` whose licenses are ``license.id`` for SPDX list ids and ``license.name``
for ``LicenseRef-`` ids (1.6 forbids mixing an expression with other entries in one array, so a
source under a compound expression keeps it as its only entry). Hashes are ``SHA-256``; what
CycloneDX has no field for (kind, collection window, opt-outs, legal basis, counts, exclusion
lists, Merkle root, the card's digest) is a ``provenance:`` property.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from provenance import __version__
from provenance.card.model import PREDICATE_TYPE, Source
from provenance.exports import (
    TOOL_URL,
    ExportCard,
    ExportOptions,
    ManifestFacts,
    custom_license_refs,
    dataset_license,
)
from provenance.exports.licenses import is_listed
from provenance.licenses import license_ids

SPEC_VERSION = "1.6"


def _property(name: str, value: object) -> dict[str, str]:
    return {"name": f"provenance:{name}", "value": str(value)}


def _licenses(expression: str, refs: Mapping[str, str | None]) -> list[dict[str, Any]]:
    if expression == "NOASSERTION":
        return []
    ids = license_ids(expression)
    if len(ids) != 1 or ids[0] != expression:
        return [{"expression": expression}]
    license_id = ids[0]
    if is_listed(license_id):
        return [{"license": {"id": license_id}}]
    entry: dict[str, Any] = {"name": license_id}
    if refs.get(license_id):
        entry["url"] = refs[license_id]
    return [{"license": entry}]


def _source_component(source: Source, refs: Mapping[str, str | None]) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "dataset", "name": source.name}
    if source.homepage:
        data["contents"] = {"url": source.homepage}
    if source.rights_holder:
        data["governance"] = {"owners": [{"organization": {"name": source.rights_holder}}]}
    properties = [
        _property("source:id", source.id),
        _property("source:kind", source.kind),
        _property("source:license", source.license),
        _property("source:records", source.records),
        _property("source:bytes", source.bytes),
    ]
    window = source.collection
    if window is not None and window.start:
        properties.append(_property("source:collection_start", window.start))
    if window is not None and window.end:
        properties.append(_property("source:collection_end", window.end))
    if source.opt_out:
        properties.append(_property("source:opt_out_signals", ",".join(source.opt_out)))
    if source.legal_basis:
        properties.append(_property("source:legal_basis", source.legal_basis))
    if source.agreement:
        properties.append(_property("source:agreement", source.agreement))
    component: dict[str, Any] = {
        "type": "data",
        "bom-ref": f"source:{source.id}",
        "name": source.name,
        "data": [data],
        "properties": properties,
    }
    licenses = _licenses(source.license, refs)
    if licenses:
        component["licenses"] = licenses
    return component


def document(
    card: ExportCard, facts: ManifestFacts | None, options: ExportOptions
) -> dict[str, Any]:
    """The CycloneDX 1.6 BOM of ``card``."""
    predicate = card.predicate
    manifest = predicate.manifest
    refs = custom_license_refs(predicate)
    properties = [
        _property("card:sha256", card.statement_sha256),
        _property("card:predicate_type", PREDICATE_TYPE),
        _property("manifest:name", card.manifest_name),
        _property("manifest:sha256", card.manifest_sha256),
        _property("manifest:merkle_root", manifest.merkle_root),
        _property("manifest:entries", manifest.entries),
        _property("manifest:bytes", manifest.bytes),
        _property("license", dataset_license(predicate)),
    ]
    for item in predicate.licenses:
        properties.append(_property(f"license:{item.license}:records", item.records))
        properties.append(_property(f"license:{item.license}:bytes", item.bytes))
    for exclusion in predicate.exclusions:
        prefix = f"exclusion:{exclusion.name}"
        properties += [
            _property(f"{prefix}:version", exclusion.version),
            _property(f"{prefix}:sha256", exclusion.digest),
            _property(f"{prefix}:removed", exclusion.removed),
            _property(f"{prefix}:applied", exclusion.applied),
        ]
        properties += [
            _property(f"{prefix}:matched:{category}", count)
            for category, count in sorted(exclusion.matched.items())
        ]
    for signer in card.signers:
        properties.append(_property(f"signer:{signer.role}", f"{signer.name} {signer.keyid}"))
    manifest_ref: dict[str, Any] = {
        "type": "distribution",
        "url": options.url.rstrip("/") + "/" + card.manifest_name
        if options.url
        else card.manifest_name,
        "comment": f"manifest (JSON Lines); RFC 9162 Merkle root {manifest.merkle_root}",
        "hashes": [{"alg": "SHA-256", "content": card.manifest_sha256}],
    }
    dataset_data: dict[str, Any] = {
        "type": "dataset",
        "name": predicate.name,
        "description": predicate.description.strip() or predicate.name,
        "contents": {
            "properties": [
                {"name": "provenance:records", "value": str(manifest.entries)},
                {"name": "provenance:bytes", "value": str(manifest.bytes)},
            ]
        },
        "governance": {"owners": [{"organization": {"name": predicate.publisher.name}}]},
    }
    supplier: dict[str, Any] = {"name": predicate.publisher.name}
    if predicate.publisher.url:
        supplier["url"] = [predicate.publisher.url]
    component: dict[str, Any] = {
        "type": "data",
        "bom-ref": f"dataset:{predicate.name}",
        "name": predicate.name,
        "version": predicate.version,
        "description": predicate.description.strip() or predicate.name,
        "supplier": supplier,
        "externalReferences": [manifest_ref],
        "data": [dataset_data],
        "pedigree": {"ancestors": [_source_component(s, refs) for s in predicate.sources]},
        "properties": properties,
    }
    whole = dataset_license(predicate)
    if whole != "NOASSERTION":
        component["licenses"] = [{"expression": whole}]
    if options.url:
        component["externalReferences"].insert(0, {"type": "website", "url": options.url})
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        # Stable for a given card: the same card always gives the same BOM.
        "serialNumber": uuid.uuid5(uuid.NAMESPACE_URL, card.card_urn).urn,
        "version": 1,
        "metadata": {
            "timestamp": predicate.created,
            "tools": {
                "components": [
                    {
                        "type": "application",
                        "name": "provenance",
                        "version": __version__,
                        "externalReferences": [{"type": "website", "url": TOOL_URL}],
                    }
                ]
            },
            "component": component,
        },
    }


def export(card: ExportCard, facts: ManifestFacts | None, options: ExportOptions) -> bytes:
    """Return the CycloneDX 1.6 JSON of ``card``."""
    return (
        json.dumps(document(card, facts, options), indent=2, ensure_ascii=False) + "\n"
    ).encode()
