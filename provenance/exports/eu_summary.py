"""The EU AI Office's public summary of training content (AI Act Art. 53(1)(d); template of July
2025), sections 1-3, in Markdown or JSON.

Everything the card holds is filled in from it; what it cannot know (the provider's contact, the
model's name, the crawler's name) comes from options or is marked ``[TO FILL: ...]`` and listed
under ``toFill``. Source kinds map to the template's sections: public-domain, open-license and
dataset sources to 2.1 (a ``dataset`` source is flagged to confirm it is public), licensed to
2.2.1, web-crawl to 2.3, user-contributed to 2.4, synthetic to 2.5.

The most relevant domains (2.3) come from the manifest: entries with a URL are grouped by
registrable domain (eTLD+1 on the Public Suffix List) and ranked by bytes; the top 10 % of the
domains are listed, rounded up and at least one (an SME lists the top 5 %, rounded up, or 1,000,
whichever is fewer).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from provenance.card.model import CardPredicate, Source
from provenance.exports import (
    ExportCard,
    ExportOptions,
    ManifestFacts,
    collection_window,
    dataset_license,
    dataset_modalities,
    md_cell,
    md_code,
    md_text,
    top_domain_count,
)

TEMPLATE = (
    "Template for the public summary of training content for general-purpose AI models"
    " (Art. 53(1)(d) of Regulation (EU) 2024/1689), AI Office, July 2025: sections 1-3"
)
PUBLIC_KINDS = ("public-domain", "open-license", "dataset")
TEXT_TOKENS_BOUND = 1_000_000_000


def to_fill(what: str) -> str:
    """The marker for a value the card cannot give."""
    return f"[TO FILL: {what}]"


def _source_row(source: Source) -> dict[str, Any]:
    """The summary's row of a source: the card's own JSON members that say something."""
    described = source.to_dict()
    row: dict[str, Any] = {
        "id": source.id,
        "name": source.name,
        "kind": source.kind,
        "license": source.license,
        "records": source.records,
        "bytes": source.bytes,
    }
    for key in ("homepage", "rightsHolder", "agreement", "legalBasis", "collection", "optOut"):
        if described.get(key):
            row[key] = described[key]
    return row


def _sources(predicate: CardPredicate, kinds: Sequence[str]) -> list[dict[str, Any]]:
    return [_source_row(s) for s in predicate.sources if s.kind in kinds]


def summary(
    card: ExportCard, facts: ManifestFacts | None, options: ExportOptions
) -> dict[str, Any]:
    """The summary as a JSON document (what ``--json`` writes)."""
    predicate = card.predicate
    sources = predicate.sources
    publisher = predicate.publisher
    missing: list[str] = []

    def fill(path: str, value: Any, what: str) -> Any:
        if value is None or value == []:
            missing.append(path)
            return to_fill(what)
        return value

    modalities, how = dataset_modalities(options, facts)
    size: list[dict[str, Any]] = []
    if facts is not None:
        for modality, (records, size_bytes) in facts.entries.modalities.items():
            if options.modalities and modality not in options.modalities:
                continue
            row: dict[str, Any] = {"modality": modality, "records": records, "bytes": size_bytes}
            if modality == "text" and size_bytes < TEXT_TOKENS_BOUND:
                # A tokenizer yields at most one token per byte (byte-level BPE, byte fallback).
                row["range"] = "less than 1 billion tokens"
            else:
                row["range"] = fill(
                    f"generalInformation.size.{modality}.range",
                    None,
                    f"size range of the {modality} data as the template defines it",
                )
            size.append(row)
    start, end = collection_window(sources)
    crawled = [s for s in sources if s.kind == "web-crawl"]
    crawl_start, crawl_end = collection_window(crawled)
    general = {
        "provider": {
            "name": options.provider or publisher.name,
            "contact": fill(
                "generalInformation.provider.contact",
                options.provider_contact or publisher.contact,
                "provider's contact details",
            ),
            "authorisedRepresentative": fill(
                "generalInformation.provider.authorisedRepresentative",
                None,
                "authorised representative, if applicable",
            ),
        },
        "model": {
            "names": fill(
                "generalInformation.model.names", options.model, "versioned model name(s)"
            ),
            "dependencies": fill(
                "generalInformation.model.dependencies",
                None,
                "link to the base model's summary if this model modifies one, else 'none'",
            ),
            "placedOnMarket": fill(
                "generalInformation.model.placedOnMarket",
                None,
                "date the model was placed on the Union market",
            ),
        },
        "modalities": fill(
            "generalInformation.modalities",
            list(modalities),
            "modalities (text, image, audio, video, other)",
        ),
        "modalitiesFrom": {
            "given": "given by the provider",
            "inferred": "inferred from the manifest's file names (extension) and text digests",
            "unknown": "not known: no manifest was given",
        }[how],
        "size": size or fill("generalInformation.size", None, "training data size per modality"),
        "records": predicate.manifest.entries,
        "bytes": predicate.manifest.bytes,
        "typesOfContent": [f"{s.name} ({s.kind})" for s in sources],
        "latestCollectionDate": fill(
            "generalInformation.latestCollectionDate", end, "latest date of data collection"
        ),
        "collectionOngoing": fill(
            "generalInformation.collectionOngoing", None, "whether collection is ongoing"
        ),
        "linguisticCharacteristics": fill(
            "generalInformation.linguisticCharacteristics", None, "languages of the data"
        ),
    }
    if start:
        general["earliestCollectionDate"] = start

    top: dict[str, Any] = {}
    if facts is not None:
        domains = facts.entries.domains
        listed = top_domain_count(len(domains), sme=options.sme)
        url_bytes = sum(d.bytes for d in domains)
        top = {
            "rule": (
                "top 5 % of domains by bytes (rounded up) or 1,000, whichever is fewer (SME)"
                if options.sme
                else "top 10 % of domains by bytes (rounded up, at least one)"
            ),
            "domains": len(domains),
            "entriesWithUrl": facts.entries.url_entries,
            "entriesWithUnreadableUrl": facts.entries.unparsable_urls,
            "listed": [
                {
                    "rank": rank,
                    "domain": d.domain,
                    "records": d.records,
                    "bytes": d.bytes,
                    "byteShare": round(d.bytes / url_bytes, 6) if url_bytes else 0.0,
                }
                for rank, d in enumerate(domains[:listed], start=1)
            ],
        }
    declared = sorted({d for s in crawled for d in s.domains or ()})
    crawl = {
        "used": bool(crawled),
        "sources": [_source_row(s) for s in crawled],
    }
    if crawled:
        crawl["crawler"] = fill("dataSources.crawled.crawler", options.crawler, "crawler name(s)")
        crawl["collectionPeriod"] = {
            "start": fill("dataSources.crawled.collectionPeriod.start", crawl_start, "start"),
            "end": fill("dataSources.crawled.collectionPeriod.end", crawl_end, "end"),
        }
        crawl["optOutSignalsHonoured"] = sorted({o for s in crawled for o in s.opt_out or ()})
        crawl["declaredDomains"] = declared
        crawl["topDomains"] = top or fill(
            "dataSources.crawled.topDomains", None, "most relevant domains (needs the manifest)"
        )
    elif top.get("listed"):
        crawl["topDomains"] = top
    public = _sources(predicate, PUBLIC_KINDS)
    for row in public:
        if row["kind"] == "dataset":
            row["note"] = "confirm it is publicly available (else it belongs in 2.2.2)"
    data_sources = {
        "publicDatasets": {"used": bool(public), "sources": public},
        "licensedData": {
            "used": any(s.kind == "licensed" for s in sources),
            "sources": _sources(predicate, ("licensed",)),
        },
        "otherPrivateThirdPartyData": {
            "used": fill(
                "dataSources.otherPrivateThirdPartyData.used",
                None,
                "whether private datasets were obtained from other third parties",
            )
        },
        "crawled": crawl,
        "userData": {
            "used": any(s.kind == "user-contributed" for s in sources),
            "sources": _sources(predicate, ("user-contributed",)),
        },
        "syntheticData": {
            "used": any(s.kind == "synthetic" for s in sources),
            "sources": _sources(predicate, ("synthetic",)),
        },
        "otherSources": {"used": False, "sources": []},
    }
    lists: list[dict[str, Any]] = [
        {
            "name": e.name,
            "version": e.version,
            "sha256": e.digest,
            "applied": e.applied,
            "matched": dict(e.matched),
            "removed": e.removed,
        }
        for e in predicate.exclusions
    ]
    illegal = [item for item in lists if item["matched"].get("illegal")]
    processing = {
        "reservationOfRights": {
            "optOutSignals": [
                {"source": s.id, "signals": list(s.opt_out)} for s in sources if s.opt_out
            ],
            "exclusionLists": lists,
            "codeOfPracticeSignatory": fill(
                "dataProcessing.reservationOfRights.codeOfPracticeSignatory",
                None,
                "whether the provider signed the GPAI Code of Practice",
            ),
        },
        "illegalContentRemoval": {
            "exclusionListsWithIllegalMatches": illegal,
            "otherMeasures": fill(
                "dataProcessing.illegalContentRemoval.otherMeasures",
                None,
                "other measures to remove illegal content (e.g. classifiers)",
            ),
        },
    }
    manifest = predicate.manifest
    return {
        "template": TEMPLATE,
        "card": {
            "urn": card.card_urn,
            "name": predicate.name,
            "version": predicate.version,
            "created": predicate.created,
            "license": dataset_license(predicate),
            "manifest": card.manifest_name,
            "manifestSha256": card.manifest_sha256,
            "merkleRoot": manifest.merkle_root,
            "signers": [{"keyid": s.keyid, "name": s.name, "role": s.role} for s in card.signers],
        },
        "generalInformation": general,
        "dataSources": data_sources,
        "dataProcessing": processing,
        "toFill": missing,
    }


def _yes_no(value: Any) -> str:
    if isinstance(value, bool):
        return "☑ Yes ☐ No" if value else "☐ Yes ☑ No"
    return str(value)


def _source_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        extra = [f"license {row['license']}", f"{row['records']} records, {row['bytes']} bytes"]
        if row.get("rightsHolder"):
            extra.append(f"rights holder {row['rightsHolder']}")
        if row.get("agreement"):
            extra.append(f"agreement: {row['agreement']}")
        if row.get("collection"):
            window = row["collection"]
            extra.append(f"collected {window.get('start', '?')} to {window.get('end', '?')}")
        if row.get("homepage"):
            extra.append(row["homepage"])
        if row.get("note"):
            extra.append(row["note"])
        lines.append(f"  - {row['name']} ({md_code(row['id'])}): " + "; ".join(extra))
    return lines


_MARKER = re.compile(r"\[TO FILL: [\w ,.'()/-]*\]\Z")
# Values shown as code spans (`...`), kept as they are; every other string is plain text.
_CODE_KEYS = frozenset(
    {
        "id",
        "source",
        "urn",
        "sha256",
        "manifestSha256",
        "merkleRoot",
        "license",
        "keyid",
        "manifest",
    }
)


def _as_markdown(value: Any, key: str | None = None) -> Any:
    """``value`` (a part of the summary document) with every plain-text string as Markdown that
    renders as that text (:func:`~provenance.exports.md_text`: a card's names cannot inject
    HTML, links or lines), and the keys of ``matched`` counts (a card's categories) alike."""
    if isinstance(value, str):
        # Our own markers stay as they are, to be found and filled in (plain words only).
        return value if key in _CODE_KEYS or _MARKER.match(value) else md_text(value)
    if isinstance(value, Mapping):
        return {
            (md_text(k) if key == "matched" else k): _as_markdown(v, k) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_as_markdown(item, key) for item in value]
    return value


def markdown(doc: Mapping[str, Any]) -> str:
    """The summary document rendered as Markdown, section by section."""
    doc = _as_markdown(doc)
    card = doc["card"]
    general = doc["generalInformation"]
    sources = doc["dataSources"]
    processing = doc["dataProcessing"]
    out: list[str] = []
    add = out.append
    add(f"# Public Summary of Training Content: {general['model']['names']}")
    add("")
    add(f"Following the {TEMPLATE}.")
    add(
        f"Generated from the signed dataset card {card['name']} {card['version']}"
        f" ({md_code(card['urn'])}), created {card['created']}. Values marked [TO FILL] are not in"
        " the card."
    )
    add("")
    add("## 1. General information")
    add("### 1.1. Provider identification")
    add(f"- Provider name: {general['provider']['name']}")
    add(f"- Contact details: {general['provider']['contact']}")
    add(f"- Authorised representative: {general['provider']['authorisedRepresentative']}")
    add("### 1.2. Model identification")
    add(f"- Versioned model name(s): {general['model']['names']}")
    add(f"- Model dependencies: {general['model']['dependencies']}")
    add(f"- Date of placement on the Union market: {general['model']['placedOnMarket']}")
    add("### 1.3. Modalities, overall training data size and other characteristics")
    modalities = general["modalities"]
    shown = ", ".join(modalities) if isinstance(modalities, list) else modalities
    add(f"- Modalities: {shown} ({general['modalitiesFrom']})")
    add(f"- Overall: {general['records']} records, {general['bytes']} bytes")
    if isinstance(general["size"], list):
        for row in general["size"]:
            add(
                f"- Size ({row['modality']}): {row['range']}"
                f" ({row['records']} records, {row['bytes']} bytes)"
            )
    else:
        add(f"- Size per modality: {general['size']}")
    add(f"- Types of content: {'; '.join(general['typesOfContent'])}")
    add(f"- Latest date of data collection: {general['latestCollectionDate']}")
    add(f"- Collection ongoing: {general['collectionOngoing']}")
    add(f"- Linguistic characteristics: {general['linguisticCharacteristics']}")
    add("")
    add("## 2. List of data sources")
    add("### 2.1. Publicly available datasets")
    add(f"- Used: {_yes_no(sources['publicDatasets']['used'])}")
    out += _source_lines(sources["publicDatasets"]["sources"])
    add("### 2.2. Private non-publicly available datasets obtained from third parties")
    add("#### 2.2.1. Datasets commercially licensed by rightsholders or their representatives")
    add(f"- Licensing agreements concluded: {_yes_no(sources['licensedData']['used'])}")
    out += _source_lines(sources["licensedData"]["sources"])
    add("#### 2.2.2. Private datasets obtained from other third parties")
    add(f"- Obtained: {_yes_no(sources['otherPrivateThirdPartyData']['used'])}")
    add("### 2.3. Data crawled and scraped from online sources")
    crawl = sources["crawled"]
    add(f"- Crawlers used by the provider or on its behalf: {_yes_no(crawl['used'])}")
    if crawl["used"]:
        add(f"- Crawler name(s) / identifier(s): {crawl['crawler']}")
        period = crawl["collectionPeriod"]
        add(f"- Period of data collection: {period['start']} to {period['end']}")
        signals = ", ".join(crawl["optOutSignalsHonoured"]) or "none stated"
        add(f"- Opt-out signals honoured by the crawler: {signals}")
        out += _source_lines(crawl["sources"])
        if crawl["declaredDomains"]:
            add(f"- Domains the sources declare: {', '.join(crawl['declaredDomains'])}")
    top = crawl.get("topDomains")
    if isinstance(top, Mapping):
        add(
            f"- Most relevant domain names ({top['rule']}; {top['domains']} domains over"
            f" {top['entriesWithUrl']} manifest entries with a URL):"
        )
        add("")
        add("  | rank | domain | records | bytes | share of bytes |")
        add("  |---:|---|---:|---:|---:|")
        for row in top["listed"]:
            add(
                f"  | {row['rank']} | {md_cell(row['domain'])} | {row['records']} | {row['bytes']}"
                f" | {row['byteShare']:.2%} |"
            )
        add("")
        if top["entriesWithUnreadableUrl"]:
            add(
                f"  ({top['entriesWithUnreadableUrl']} entries have a URL without a readable host.)"
            )
    elif top is not None:
        add(f"- Most relevant domain names: {top}")
    add("### 2.4. User data")
    add(f"- Used: {_yes_no(sources['userData']['used'])}")
    out += _source_lines(sources["userData"]["sources"])
    add("### 2.5. Synthetic data")
    add(f"- Used: {_yes_no(sources['syntheticData']['used'])}")
    out += _source_lines(sources["syntheticData"]["sources"])
    add("### 2.6. Other sources of data")
    add(f"- Used: {_yes_no(sources['otherSources']['used'])}")
    add("")
    add("## 3. Data processing aspects")
    add(
        "### 3.1. Respect of reservation of rights from text and data mining exception"
        " or limitation"
    )
    rights = processing["reservationOfRights"]
    add(f"- Signatory of the GPAI Code of Practice: {rights['codeOfPracticeSignatory']}")
    for item in rights["optOutSignals"]:
        signals = ", ".join(item["signals"])
        add(f"- Source {md_code(item['source'])}: opt-out signals honoured: {signals}")
    if rights["exclusionLists"]:
        add("- Exclusion lists applied before training:")
        for item in rights["exclusionLists"]:
            matched = ", ".join(f"{k} {v}" for k, v in sorted(item["matched"].items())) or "none"
            add(
                f"  - {item['name']} version {item['version']} (sha256 `{item['sha256']}`),"
                f" applied {item['applied']}: matched {matched}; {item['removed']} removed"
            )
    else:
        add("- Exclusion lists applied before training: none recorded in the card")
    add("### 3.2. Removal of illegal content")
    illegal = processing["illegalContentRemoval"]
    for item in illegal["exclusionListsWithIllegalMatches"]:
        add(
            f"- Exclusion list {item['name']} version {item['version']} removed entries listed"
            f" as illegal ({item['matched']['illegal']} matched)"
        )
    add(f"- Other measures: {illegal['otherMeasures']}")
    add("### 3.3. Other information")
    add(
        f"- The dataset card commits to the manifest {md_code(card['manifest'])} (sha256"
        f" `{card['manifestSha256']}`, RFC 9162 Merkle root `{card['merkleRoot']}`); license of"
        f" the whole dataset (SPDX): {md_code(card['license'])}."
    )
    for signer in card["signers"]:
        add(f"- Signed by {signer['name']} ({signer['role']}), key `{signer['keyid']}`")
    add("")
    return "\n".join(out)


def export(card: ExportCard, facts: ManifestFacts | None, options: ExportOptions) -> bytes:
    """Return the summary of ``card``: Markdown, or JSON with ``options.as_json``."""
    doc = summary(card, facts, options)
    if options.as_json:
        return (json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()
    return markdown(doc).encode("utf-8")
