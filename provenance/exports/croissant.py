"""MLCommons Croissant 1.1 JSON-LD, with Responsible AI (RAI) fields and PROV-O sources.

The context is the full one of the Croissant 1.1 examples, with ``https://schema.org/`` as the
vocabulary (mlcroissant refuses ``http://``). Licenses are SPDX list URLs, and a
``sc:CreativeWork`` (name = the ``LicenseRef-`` id, url = the licensing agreement) for the
card's own ids. The manifest is a ``cr:FileObject`` with its ``sha256`` and a RecordSet whose
fields extract its columns, so Croissant readers can load it. Sources are ``prov:Entity`` nodes
under ``prov:wasDerivedFrom``. ``rai:dataCollectionTimeframe`` holds two DateTimes (start, end),
as the RAI vocabulary defines it, never an interval string.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
    exclusion_line,
)
from provenance.exports.licenses import is_listed, spdx_url
from provenance.licenses import license_ids
from provenance.partitions.index import PARTS_GLOB

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
MANIFEST_FILE_ID = "manifest-file"
"""The ``@id`` of the manifest's FileObject (its index, when partitioned), whatever its name."""
MANIFEST_PARTS_ID = "manifest-parts"
"""The ``@id`` of the FileSet of a partitioned manifest's parts."""
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "annotation": "cr:annotation",
    "arrayShape": "cr:arrayShape",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "containedIn": "cr:containedIn",
    "cr": "http://mlcommons.org/croissant/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "excludes": "cr:excludes",
    "extract": "cr:extract",
    "field": "cr:field",
    "fileObject": "cr:fileObject",
    "fileProperty": "cr:fileProperty",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "prov": "http://www.w3.org/ns/prov#",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "readLines": "cr:readLines",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "sdVersion": "cr:sdVersion",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "unArchive": "cr:unArchive",
    "value": "cr:value",
}
# RAI's recommended values for dataCollectionType, per source kind.
COLLECTION_TYPE = {
    "web-crawl": "Web Scraping",
    "licensed": "Secondary Data Analysis",
    "public-domain": "Secondary Data Analysis",
    "open-license": "Secondary Data Analysis",
    "user-contributed": "Crowdsourcing",
    "synthetic": "Software Collection",
    "dataset": "Secondary Data Analysis",
}
_FIELD_TYPES = {"size": "sc:Integer"}
_XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"


def _license_node(license_id: str, refs: Mapping[str, str | None], agreement: str | None) -> Any:
    if is_listed(license_id):
        return spdx_url(license_id)
    node: dict[str, Any] = {"@type": "sc:CreativeWork", "name": license_id}
    url = refs.get(license_id)
    if url:
        node["url"] = url
    elif agreement:
        node["description"] = agreement
    return node


def _licenses(expression: str, refs: Mapping[str, str | None], agreement: str | None) -> list[Any]:
    if expression == "NOASSERTION":
        return []
    return [_license_node(i, refs, agreement) for i in license_ids(expression)]


def _date_time(date: str, *, end: bool) -> str:
    return f"{date}T23:59:59Z" if end else f"{date}T00:00:00Z"


def _source_entity(source: Source, refs: Mapping[str, str | None]) -> dict[str, Any]:
    node: dict[str, Any] = {
        "@id": f"urn:provenance:source:{source.id}",
        "@type": "prov:Entity",
        "name": source.name,
        "identifier": source.id,
        "additionalType": source.kind,
    }
    licenses = _licenses(source.license, refs, source.agreement)
    if licenses:
        node["license"] = licenses[0] if len(licenses) == 1 else licenses
    node["prov:value"] = f"license (SPDX): {source.license}"
    if source.homepage:
        node["url"] = source.homepage
    if source.rights_holder:
        node["copyrightHolder"] = {"@type": "sc:Organization", "name": source.rights_holder}
        node["prov:wasAttributedTo"] = {"@type": "prov:Agent", "prov:label": source.rights_holder}
    window = collection_of(source)
    if window:
        activity: dict[str, Any] = {"@type": "prov:Activity", "prov:label": "collection"}
        if window.start:
            activity["prov:startedAtTime"] = {
                "@value": _date_time(window.start, end=False),
                "@type": _XSD_DATETIME,
            }
        if window.end:
            activity["prov:endedAtTime"] = {
                "@value": _date_time(window.end, end=True),
                "@type": _XSD_DATETIME,
            }
        node["prov:wasGeneratedBy"] = activity
    node["description"] = (
        f"{source.records} records, {source.bytes} bytes in the manifest"
        + (f"; legal basis: {source.legal_basis}" if source.legal_basis else "")
        + (f"; opt-outs honoured: {', '.join(source.opt_out)}" if source.opt_out else "")
    )
    return node


def document(
    card: ExportCard, facts: ManifestFacts | None, options: ExportOptions
) -> dict[str, Any]:
    """The Croissant JSON-LD document of ``card``."""
    predicate = card.predicate
    manifest = predicate.manifest
    refs = custom_license_refs(predicate)
    publisher: dict[str, Any] = {"@type": "sc:Organization", "name": predicate.publisher.name}
    if predicate.publisher.url:
        publisher["url"] = predicate.publisher.url
    licenses: list[Any] = []
    for expression in sorted({item.license for item in predicate.licenses}) or sorted(
        {s.license for s in predicate.sources}
    ):
        for node in _licenses(expression, refs, None):
            if node not in licenses:
                licenses.append(node)
    name = card.manifest_name
    summary = (
        f"{manifest.entries} entries, {manifest.bytes} bytes of data; RFC 9162 Merkle root"
        f" (SHA-256) {manifest.merkle_root}"
    )
    file_object: dict[str, Any] = {
        "@type": "cr:FileObject",
        # A fixed id: the file's name may hold a space (mlcroissant refuses ids with one) or be
        # "manifest", the RecordSet's own id.
        "@id": MANIFEST_FILE_ID,
        "name": name,
        "description": (
            f"The dataset's manifest (JSON Lines, one entry per file or record): {summary}."
        ),
        "contentUrl": name,
        "encodingFormat": "application/jsonlines",
        "sha256": card.manifest_sha256,
    }
    if facts is not None:
        file_object["contentSize"] = f"{facts.file_bytes} B"
    distribution = [file_object]
    read_from: dict[str, Any] = {"fileObject": {"@id": MANIFEST_FILE_ID}}
    if card.manifest_partitioned:
        # A partitioned manifest (DESIGN §8): the card commits to its index, which lists each
        # part's SHA-256; the entries are in the parts, read in name order.
        file_object.update(
            {
                "description": (
                    "The index of the dataset's partitioned manifest: each part's file name,"
                    f" SHA-256, entry count and bytes. The manifest holds {summary}."
                ),
                "encodingFormat": "application/json",
            }
        )
        distribution.append(
            {
                "@type": "cr:FileSet",
                "@id": MANIFEST_PARTS_ID,
                "name": "manifest parts",
                "description": "The manifest's parts (JSON Lines), as the index lists them.",
                "encodingFormat": "application/jsonlines",
                "includes": PARTS_GLOB,
            }
        )
        read_from = {"fileSet": {"@id": MANIFEST_PARTS_ID}}
    columns = facts.entries.columns if facts is not None else ("id", "sha256")
    fields = [
        {
            "@type": "cr:Field",
            "@id": f"manifest/{column}",
            "name": column,
            "dataType": _FIELD_TYPES.get(column, "sc:Text"),
            "source": {**read_from, "extract": {"column": column}},
        }
        for column in columns
    ]
    start, end = collection_window(predicate.sources)
    collection = []
    for source in predicate.sources:
        parts = [f"{source.id} ({source.kind}, license {source.license})"]
        if source.opt_out:
            parts.append(f"opt-outs honoured: {', '.join(source.opt_out)}")
        if source.legal_basis:
            parts.append(f"legal basis: {source.legal_basis}")
        if source.agreement:
            parts.append(f"agreement: {source.agreement}")
        collection.append("; ".join(parts))
    doc: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": predicate.name,
        "description": predicate.description.strip() or predicate.name,
        "version": predicate.version,
        "datePublished": predicate.created,
        # Where the dataset is published is not in the card; without it, the card's URN.
        "url": options.url or card.card_urn,
        "identifier": card.card_urn,
        "creator": publisher,
        "publisher": publisher,
        "license": licenses,
        "citeAs": f"{predicate.publisher.name}. {predicate.name} {predicate.version}."
        f" Signed dataset card {card.card_urn}.",
        "keywords": ["training data", "provenance"],
        "rai:dataCollection": "Sources: " + " | ".join(collection),
        "rai:dataCollectionType": sorted({COLLECTION_TYPE[s.kind] for s in predicate.sources}),
        "rai:dataPreprocessingProtocol": [exclusion_line(e) for e in predicate.exclusions]
        or ["No exclusion list applied, according to the signed card."],
        "prov:wasDerivedFrom": [_source_entity(s, refs) for s in predicate.sources],
        "prov:wasAttributedTo": {"@type": "prov:Agent", "prov:label": f"provenance ({TOOL_URL})"},
        "distribution": distribution,
        "recordSet": [
            {
                "@type": "cr:RecordSet",
                "@id": "manifest",
                "name": "manifest",
                "description": "One record per manifest entry.",
                "key": {"@id": "manifest/id"},
                "field": fields,
            }
        ],
    }
    if start and end:
        doc["rai:dataCollectionTimeframe"] = [
            _date_time(start, end=False),
            _date_time(end, end=True),
        ]
    doc["rai:dataCollectionRawData"] = (
        f"License of the whole dataset (SPDX): {dataset_license(predicate)}. "
        + "; ".join(
            f"{item.license}: {item.records} records, {item.bytes} bytes"
            for item in predicate.licenses
        )
    )
    return doc


def export(card: ExportCard, facts: ManifestFacts | None, options: ExportOptions) -> bytes:
    """Return the Croissant JSON-LD of ``card``."""
    return (
        json.dumps(document(card, facts, options), indent=2, ensure_ascii=False) + "\n"
    ).encode()
