"""Dataset cards: an in-toto Statement v1 whose subject is the manifest and whose predicate
describes the dataset (sources, licenses, exclusion lists applied, the manifest commitment).

The card is built from a developer-written spec (YAML or JSON) and a manifest. Sources claim
manifest entries by path globs (.gitignore style: ``*`` stays in one path segment, ``**`` spans
any number), by URL domains (the host and its subdomains), or by the records' own ``source``
column, which wins. An entry that no source claims is an error naming it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pathspec
import yaml

from provenance import __version__, _json, schema
from provenance.envelope import Envelope, VerifiedPayload, verified_signers, verify_envelope
from provenance.errors import FormatError, InputError
from provenance.licenses import normalize_license
from provenance.manifest import ManifestEntry, ManifestSummary
from provenance.trust import TrustStore, format_time

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://provenance.dev/dataset-card/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
LEAF_FORMAT = "rfc8785-jsonl"
MAX_SPEC_BYTES = 16 * 1024 * 1024
MAX_CARD_BYTES = 64 * 1024 * 1024


def load_spec(data: bytes, *, what: str) -> dict[str, Any]:
    """Parse a card spec (JSON, or YAML restricted to JSON's data model) and validate it.

    Raises:
        FormatError, SchemaError: malformed, or not matching ``schemas/card-spec.v1.json``, or a
            license that is not a valid SPDX expression, or a source id used twice.
    """
    if len(data) > MAX_SPEC_BYTES:
        raise FormatError(f"{what}: larger than {MAX_SPEC_BYTES} bytes")
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        document = _json.loads(data, what=what)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{what}: not valid UTF-8 at byte {exc.start}") from None
        try:
            document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader subclass
        except yaml.YAMLError as exc:
            raise FormatError(f"{what}: malformed YAML: {exc}".replace("\n", " ")) from None
        # Round-trip through strict JSON so that YAML cannot smuggle in what JSON refuses.
        document = _json.loads(_json.canonical(_plain(document, what)), what=what)
    schema.validate(document, schema.CARD_SPEC, what=what)
    seen: set[str] = set()
    for index, source in enumerate(document["sources"]):
        if source["id"] in seen:
            raise FormatError(f"{what}: sources/{index}: id {source['id']!r} is used twice")
        seen.add(source["id"])
        try:
            source["license"] = normalize_license(source["license"])
        except FormatError as exc:
            raise FormatError(f"{what}: sources/{index}: {exc}") from None
        if not source.get("paths") and not source.get("domains"):
            source.setdefault("paths", [])
    return dict(document)


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _plain(value: Any, what: str) -> Any:
    """Turn YAML values into JSON ones; dates become ISO strings, other types are refused."""
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise FormatError(f"{what}: mapping key {key!r} is not a string")
        return {key: _plain(item, what) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, what) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        raise FormatError(f"{what}: NaN is not allowed")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise FormatError(f"{what}: value of type {type(value).__name__} is not allowed")


# ----------------------------------------------------------------------------------------------
# Assigning entries to sources


def _host_of(url: str) -> str | None:
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


class SourceAssigner:
    """Maps manifest entries to source ids, as the spec's sources claim them."""

    def __init__(self, sources: Sequence[Mapping[str, Any]]) -> None:
        """Compile the sources' path globs and domains."""
        self._ids: list[str] = [s["id"] for s in sources]
        self._known = set(self._ids)
        self._specs = [
            pathspec.PathSpec.from_lines("gitignore", s.get("paths", [])) for s in sources
        ]
        self._domains: dict[str, str] = {}
        for source in sources:
            for domain in source.get("domains", []):
                self._domains.setdefault(domain.rstrip(".").lower(), source["id"])

    def assign(self, entry: ManifestEntry) -> str:
        """Return the source id claiming ``entry``.

        Raises:
            InputError: the entry names an unknown source, or no source claims it.
        """
        if entry.source is not None:
            if entry.source not in self._known:
                raise InputError(
                    f"entry {entry.id!r} names source {entry.source!r},"
                    " which the spec does not define"
                )
            return entry.source
        for source_id, spec in zip(self._ids, self._specs, strict=True):
            if spec.match_file(entry.id):
                return source_id
        if entry.url and self._domains:
            host = _host_of(entry.url)
            while host:
                if host in self._domains:
                    return self._domains[host]
                _, _, host = host.partition(".")
        raise InputError(
            f"entry {entry.id!r} is claimed by no source; add a path glob or domain that covers it"
        )


@dataclass(frozen=True, slots=True)
class Tally:
    """Records and bytes per source id and per license expression."""

    by_source: dict[str, tuple[int, int]]
    by_license: dict[str, tuple[int, int]]


def tally(entries: Iterable[ManifestEntry], sources: Sequence[Mapping[str, Any]]) -> Tally:
    """Count records and bytes per source and per license (an entry's own license wins).

    Raises:
        InputError: an entry is claimed by no source or names an unknown one.
        FormatError: an entry's license is not a valid SPDX expression.
    """
    assigner = SourceAssigner(sources)
    source_license = {s["id"]: s["license"] for s in sources}
    by_source = {s["id"]: [0, 0] for s in sources}
    by_license: dict[str, list[int]] = {}
    for entry in entries:
        source_id = assigner.assign(entry)
        size = entry.size or 0
        by_source[source_id][0] += 1
        by_source[source_id][1] += size
        if entry.license is not None:
            try:
                license_id = normalize_license(entry.license)
            except FormatError as exc:
                raise FormatError(f"entry {entry.id!r}: {exc}") from None
        else:
            license_id = source_license[source_id]
        counts = by_license.setdefault(license_id, [0, 0])
        counts[0] += 1
        counts[1] += size
    return Tally(
        {k: (v[0], v[1]) for k, v in by_source.items()},
        {k: (v[0], v[1]) for k, v in sorted(by_license.items())},
    )


# ----------------------------------------------------------------------------------------------
# Building


def build_statement(
    spec: Mapping[str, Any],
    entries: Iterable[ManifestEntry],
    summary_of: Any,
    *,
    manifest_name: str,
    created: dt.datetime,
    exclusions: Sequence[Mapping[str, Any]] = (),
    fingerprints: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the in-toto Statement of a dataset card.

    Args:
        spec: a spec as returned by :func:`load_spec`.
        entries: the manifest's entries (streamed once).
        summary_of: a zero-argument callable returning the :class:`ManifestSummary`, called after
            ``entries`` has been consumed.
        manifest_name: the subject name (the manifest's file name).
        created: the creation time.
        exclusions: the lists applied, from a filter report.
        fingerprints: the sidecar fingerprint index commitment, if any.

    Raises:
        InputError, FormatError: see :func:`tally`.
    """
    counts = tally(entries, spec["sources"])
    summary: ManifestSummary = summary_of()
    sources = []
    for source in spec["sources"]:
        records, size = counts.by_source[source["id"]]
        sources.append({**source, "records": records, "bytes": size})
    manifest_part: dict[str, Any] = {
        "entries": summary.entries,
        "bytes": summary.total_bytes,
        "merkleRoot": summary.root,
        "hashAlgorithm": "sha256",
        "leafFormat": LEAF_FORMAT,
    }
    if fingerprints is not None:
        manifest_part["fingerprints"] = dict(fingerprints)
    predicate = {
        "name": spec["name"],
        "version": spec["version"],
        "description": spec["description"],
        "publisher": spec["publisher"],
        "created": format_time(created),
        "sources": sources,
        "licenses": [
            {"license": license_id, "records": records, "bytes": size}
            for license_id, (records, size) in counts.by_license.items()
        ],
        "exclusions": [dict(e) for e in exclusions],
        "manifest": manifest_part,
        "generator": {"name": "provenance", "version": __version__},
    }
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": manifest_name, "digest": {"sha256": summary.digest}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }
    check_statement(statement, what="built card")
    return statement


def check_statement(statement: Any, *, what: str) -> None:
    """Validate a statement and its predicate against their schemas.

    Raises:
        SchemaError: either does not match.
    """
    schema.validate(statement, schema.CARD_STATEMENT, what=what)
    schema.validate(statement["predicate"], schema.CARD_PREDICATE, what=f"{what}: predicate")


# ----------------------------------------------------------------------------------------------
# Signing and verifying


def unverified_card_document(data: bytes, *, what: str) -> Envelope | dict[str, Any]:
    """Read a card file: an unsigned Statement (dict) or a DSSE envelope.

    Nothing here is trusted: it is what the user asked to sign or verify.

    Raises:
        FormatError: neither.
    """
    if len(data) > MAX_CARD_BYTES:
        raise FormatError(f"{what}: larger than {MAX_CARD_BYTES} bytes")
    document = _json.loads_object(data, what=what)
    if "payloadType" in document:
        return Envelope.from_dict(document, what=what)
    if document.get("_type") == STATEMENT_TYPE:
        check_statement(document, what=what)
        return document
    raise FormatError(f"{what}: neither a card statement nor a DSSE envelope")


@dataclass(frozen=True, slots=True)
class VerifiedCard:
    """A card whose signature verified: the statement parsed from the verified bytes only."""

    statement: dict[str, Any]
    publishers: tuple[str, ...]
    """keyids of trusted dataset-publisher keys that signed."""
    auditors: tuple[str, ...]
    """keyids of trusted auditor keys that co-signed."""

    @property
    def predicate(self) -> dict[str, Any]:
        """The card predicate."""
        predicate: dict[str, Any] = self.statement["predicate"]
        return predicate

    @property
    def manifest_digest(self) -> str:
        """The manifest file digest the card commits to."""
        digest: str = self.statement["subject"][0]["digest"]["sha256"]
        return digest


def verify_card(
    envelope: Envelope, trust: TrustStore, *, at: dt.datetime, what: str
) -> VerifiedCard:
    """Verify a signed card against ``trust`` and parse it.

    The signature is checked against the keys trusted as ``dataset-publisher`` at ``at``; only
    the verified payload bytes are then parsed and validated. Auditor co-signatures are
    reported, not required.

    Raises:
        InputError: no key in ``trust`` is a dataset-publisher (vacuous trust is refused).
        SignatureError: no trusted publisher key signed, or the payload type is wrong.
        FormatError, SchemaError: the verified payload is not a valid card.
    """
    keys = trust.require_keys("dataset-publisher", at=at, what="trust store")
    verified: VerifiedPayload = verify_envelope(envelope, keys, payload_type=PAYLOAD_TYPE)
    statement = _json.loads_object(verified.payload, what=f"{what}: payload")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise FormatError(
            f"{what}: predicateType is {statement.get('predicateType')!r},"
            f" expected {PREDICATE_TYPE}"
        )
    check_statement(statement, what=f"{what}: payload")
    auditors = verified_signers(envelope, trust.keys_for("auditor", at=at))
    return VerifiedCard(statement, verified.signers, auditors)
