"""Dataset cards: an in-toto Statement v1 whose subject is the manifest and whose predicate
describes the dataset (sources, licenses, exclusion lists applied, the manifest commitment).

The card is built from a developer-written spec (YAML or JSON) and a manifest. Sources claim
manifest entries by path globs (.gitignore style: ``*`` stays in one path segment, ``**`` spans
any number; see :mod:`provenance.globs`) or by URL domains (the host and its subdomains). Sources
are tried in the order written and the first that claims an entry, by either, takes it; a
record's own ``source`` column wins over both. An entry that no source claims is an error naming
it; a source that claims no entry is a warning (:class:`~provenance.errors.ProvenanceWarning`).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import yaml

from provenance import __version__, _json, schema
from provenance.envelope import Envelope, VerifiedPayload, verified_signers, verify_envelope
from provenance.errors import (
    DocumentTypeError,
    FormatError,
    InputError,
    ProvenanceWarning,
    SignatureError,
)
from provenance.globs import GlobSet
from provenance.licenses import normalize_license
from provenance.manifest import ManifestEntry, ManifestSummary
from provenance.trust import TrustStore, format_time

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://provenance.dev/dataset-card/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
LEAF_FORMAT = "rfc8785-jsonl"
MAX_SPEC_BYTES = 16 * 1024 * 1024
MAX_CARD_BYTES = 64 * 1024 * 1024
CARD_ROLES = ("dataset-publisher", "auditor")
"""The roles whose signatures on a card mean something: the publisher's and co-signers'."""


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
        except _YAMLLimitError as exc:
            raise FormatError(f"{what}: {exc}") from None
        except yaml.YAMLError as exc:
            raise FormatError(f"{what}: malformed YAML: {exc}".replace("\n", " ")) from None
        except RecursionError:  # pragma: no cover - the depth limit stops nesting long before
            raise FormatError(f"{what}: nesting deeper than {_json.MAX_DEPTH} levels") from None
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
        try:
            GlobSet(source.get("paths", ()))
        except FormatError as exc:
            raise FormatError(f"{what}: sources/{index}: paths: {exc}") from None
    return dict(document)


class _YAMLLimitError(yaml.YAMLError):
    """YAML that the spec reader refuses before building it: aliases, or too deep nesting."""


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys, aliases and deep nesting.

    Aliases are refused outright: a few hundred bytes of nested aliases expand to gigabytes
    ("billion laughs"), and a spec has no need of them. Nesting is bounded as JSON's is
    (:data:`provenance._json.MAX_DEPTH`) while the document is composed, before PyYAML's
    recursive composer and constructor could run out of stack.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _YAMLLimitError(
                f"YAML aliases (*{event.anchor}) are not allowed, at line"
                f" {event.start_mark.line + 1}"
            )
        if self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            if self._depth >= _json.MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _YAMLLimitError(
                    f"nesting deeper than {_json.MAX_DEPTH} levels, at line {mark.line + 1}"
                )
            self._depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


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
    """Maps manifest entries to source ids, as the spec's sources claim them.

    The sources are tried in the order written; the first whose path globs match the entry's
    id or whose domains hold the host of its URL takes it. A record's own ``source`` wins.
    """

    def __init__(self, sources: Sequence[Mapping[str, Any]]) -> None:
        """Compile the sources' path globs and domains.

        Raises:
            FormatError: a path glob is not valid.
        """
        self._ids: list[str] = [s["id"] for s in sources]
        self._known = set(self._ids)
        self._globs: list[GlobSet] = []
        for index, source in enumerate(sources):
            try:
                self._globs.append(GlobSet(source.get("paths", [])))
            except FormatError as exc:
                raise FormatError(f"sources/{index} ({source['id']}): paths: {exc}") from None
        # Each domain maps to the first source (by position) that lists it.
        self._domains: dict[str, int] = {}
        for index, source in enumerate(sources):
            for domain in source.get("domains", []):
                self._domains.setdefault(domain.rstrip(".").lower(), index)

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
        by_domain = len(self._ids)
        if entry.url and self._domains:
            host = _host_of(entry.url)
            while host:
                by_domain = min(by_domain, self._domains.get(host, by_domain))
                _, _, host = host.partition(".")
        # Only sources written before the one the domain names can still take the entry.
        for index in range(by_domain):
            globs = self._globs[index]
            if globs and globs.matches(entry.id):
                return self._ids[index]
        if by_domain < len(self._ids):
            return self._ids[by_domain]
        raise InputError(
            f"entry {entry.id!r} is claimed by no source; add a path glob or domain that covers it"
        )


@dataclass(frozen=True, slots=True)
class Tally:
    """Records and bytes per source id and per license expression."""

    by_source: dict[str, tuple[int, int]]
    by_license: dict[str, tuple[int, int]]


class Tallier:
    """Counts records and bytes per source and per license as entries are added (see
    :func:`tally`), so that one pass over a manifest can feed it and another check."""

    def __init__(self, sources: Sequence[Mapping[str, Any]]) -> None:
        """Compile the sources (see :class:`SourceAssigner`)."""
        self._assigner = SourceAssigner(sources)
        self._source_license = {s["id"]: s["license"] for s in sources}
        self._by_source = {s["id"]: [0, 0] for s in sources}
        self._by_license: dict[str, list[int]] = {}

    def add(self, entries: Iterable[ManifestEntry]) -> None:
        """Count ``entries``.

        Raises:
            InputError: an entry is claimed by no source or names an unknown one.
            FormatError: an entry's license is not a valid SPDX expression.
        """
        assign, by_source, by_license = self._assigner.assign, self._by_source, self._by_license
        for entry in entries:
            source_id = assign(entry)
            size = entry.size or 0
            by_source[source_id][0] += 1
            by_source[source_id][1] += size
            if entry.license is not None:
                try:
                    license_id = normalize_license(entry.license)
                except FormatError as exc:
                    raise FormatError(f"entry {entry.id!r}: {exc}") from None
            else:
                license_id = self._source_license[source_id]
            counts = by_license.setdefault(license_id, [0, 0])
            counts[0] += 1
            counts[1] += size

    def result(self) -> Tally:
        """The counts of the entries added so far."""
        return Tally(
            {k: (v[0], v[1]) for k, v in self._by_source.items()},
            {k: (v[0], v[1]) for k, v in sorted(self._by_license.items())},
        )


def tally(entries: Iterable[ManifestEntry], sources: Sequence[Mapping[str, Any]]) -> Tally:
    """Count records and bytes per source and per license (an entry's own license wins).

    Raises:
        InputError: an entry is claimed by no source or names an unknown one.
        FormatError: an entry's license is not a valid SPDX expression.
    """
    tallier = Tallier(sources)
    tallier.add(entries)
    return tallier.result()


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
    for source in spec["sources"]:
        if counts.by_source[source["id"]][0] == 0:
            warnings.warn(
                f"source {source['id']!r} claims no manifest entry (sources are tried in the"
                " order written; an earlier one may claim its entries)",
                ProvenanceWarning,
                stacklevel=2,
            )
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
        SignatureError: no publisher key trusted at ``at`` signed (naming a listed key that did
            sign outside its validity window), or the payload type is wrong.
        DocumentTypeError: a trusted key signed a statement that is not a dataset card.
        FormatError, SchemaError: the verified payload is not a valid card.
    """
    listed = trust.keys_with_role("dataset-publisher")
    if not listed:
        raise InputError("trust store: no key is trusted for the role 'dataset-publisher'")
    keys = trust.keys_for("dataset-publisher", at=at)
    try:
        if not keys:
            raise SignatureError(
                f"{what}: no dataset-publisher key of the trust store is valid at {format_time(at)}"
            )
        verified: VerifiedPayload = verify_envelope(envelope, keys, payload_type=PAYLOAD_TYPE)
    except SignatureError:
        # Say so when a listed publisher key signed, but outside its validity window.
        for keyid in verified_signers(envelope, {k: v for k, v in listed.items() if k not in keys}):
            reason = trust.why_not_valid(trust.keys[keyid], at=at)
            raise SignatureError(
                f"{what}: signed by dataset-publisher {trust.name_of(keyid)} ({keyid[:16]}),"
                f" whose {reason}"
            ) from None
        raise
    statement = _json.loads_object(verified.payload, what=f"{what}: payload")
    if statement.get("predicateType") != PREDICATE_TYPE:
        raise DocumentTypeError(
            f"{what}: the signed statement's predicateType is"
            f" {statement.get('predicateType')!r}, not a dataset card ({PREDICATE_TYPE})"
        )
    check_statement(statement, what=f"{what}: payload")
    auditors = verified_signers(envelope, trust.keys_for("auditor", at=at))
    return VerifiedCard(statement, verified.signers, auditors)


# ----------------------------------------------------------------------------------------------
# Showing a card to people


@dataclass(frozen=True, slots=True)
class SignatureView:
    """What one signature of a card is, as far as the trust store says.

    ``status`` is ``verified`` (a key trusted now for ``role`` made it), ``not-valid-now`` (a
    key the store lists for ``role`` made it, outside its validity window), ``untrusted`` (no
    key of the store made it) or ``unchecked`` (no trust store was given). ``keyid`` is the
    key that made it when one of the store's keys verifies it, else the envelope's unverified
    hint.
    """

    keyid: str
    status: str
    role: str | None = None
    name: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "keyid": self.keyid,
            "status": self.status,
            "role": self.role,
            "name": self.name,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class CardView:
    """A card as ``card show`` presents it.

    ``statement`` is the verified statement when ``verified``; otherwise it is only what the
    file claims (``unverified``), and must be presented as such.
    """

    verified: bool
    trust_given: bool
    problem: str | None
    statement: dict[str, Any]
    signatures: tuple[SignatureView, ...]
    signed: bool

    def to_dict(self) -> dict[str, Any]:
        """Return the ``--json`` document; an unverified card is under ``unverifiedCard``."""
        return {
            "verified": self.verified,
            "trustStore": self.trust_given,
            "problem": self.problem,
            "signatures": [s.to_dict() for s in self.signatures],
            ("card" if self.verified else "unverifiedCard"): self.statement,
        }


def show_card(
    document: Envelope | dict[str, Any],
    trust: TrustStore | None,
    *,
    at: dt.datetime,
    what: str,
) -> CardView:
    """Decode a card for people and, given a trust store, verify its signatures.

    Without ``trust`` nothing is verified: the statement is decoded from the unverified
    payload, and every signature is ``unchecked``. With ``trust`` the card is verified as
    :func:`verify_card` does; when that fails, the statement shown is the unverified one and
    ``problem`` says why.

    Returns:
        A :class:`CardView`.

    Raises:
        InputError: ``trust`` has no dataset-publisher key.
        FormatError, SchemaError: the (verified or unverified) payload is not a card.
    """
    if isinstance(document, dict):
        return CardView(
            verified=False,
            trust_given=trust is not None,
            problem="the card is not signed",
            statement=document,
            signatures=(),
            signed=False,
        )
    problem: str | None = None
    statement: dict[str, Any]
    if trust is not None:
        try:
            statement = verify_card(document, trust, at=at, what=what).statement
        except (SignatureError, DocumentTypeError) as exc:
            problem = str(exc)
            statement = _unverified_statement(document, what=what)
    else:
        problem = "no trust store was given: nothing was verified"
        statement = _unverified_statement(document, what=what)
    return CardView(
        verified=problem is None,
        trust_given=trust is not None,
        problem=problem,
        statement=statement,
        signatures=tuple(_signature_views(document, trust, at=at)),
        signed=True,
    )


def _unverified_statement(envelope: Envelope, *, what: str) -> dict[str, Any]:
    """The envelope's payload as a card statement, without any signature check (for display)."""
    if envelope.payload_type != PAYLOAD_TYPE:
        raise FormatError(f"{what}: payload type {envelope.payload_type!r} is not a card")
    unverified = _json.loads_object(envelope.payload, what=f"{what}: unverified payload")
    check_statement(unverified, what=f"{what}: unverified payload")
    return unverified


def _signature_views(
    envelope: Envelope, trust: TrustStore | None, *, at: dt.datetime
) -> list[SignatureView]:
    views: list[SignatureView] = []
    for signature in envelope.signatures:
        hint = signature.keyid or "(none)"
        if trust is None:
            views.append(SignatureView(hint, "unchecked", detail="no trust store given"))
            continue
        signers = verified_signers(
            Envelope(envelope.payload_type, envelope.payload, (signature,)),
            {k: t.key for k, t in trust.keys.items()},
        )
        if not signers:
            views.append(
                SignatureView(hint, "untrusted", detail="no key of the trust store made it")
            )
            continue
        trusted = trust.keys[signers[0]]
        reason = trust.why_not_valid(trusted, at=at)
        status = "verified" if reason is None else "not-valid-now"
        if trusted.role not in CARD_ROLES:
            status, reason = "wrong-role", f"trusted as {trusted.role}, which does not sign cards"
        views.append(
            SignatureView(
                trusted.keyid,
                status,
                role=trusted.role,
                name=trusted.name,
                detail=reason or "",
            )
        )
    return views
