"""A dataset card as typed values: the in-toto Statement and its dataset-card predicate.

Every class is frozen. ``from_dict`` builds a value from a document that matches the card's
schemas (``schemas/card-statement.v1.json`` and ``schemas/card-predicate.v1.json``; use
:func:`provenance.card.parse_statement` for a document not checked yet) and never changes the
document it reads; ``to_dict`` gives the document back. Members this version does not know are
kept in ``unrecognized_fields`` and written back (as python-tuf's ``_payload`` classes do), so
for every valid document ``d`` and every value ``x`` of a class ``C``::

    C.from_dict(d).to_dict() == d
    C.from_dict(x.to_dict()) == x

Reading a card therefore never changes what its signature covers: the signed bytes are the
RFC 8785 form of ``to_dict()``. Times stay the strings the card holds (``YYYY-MM-DDTHH:MM:SSZ``)
for the same reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://provenance.dev/dataset-card/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
LEAF_FORMAT = "rfc8785-jsonl"

__all__ = [
    "LEAF_FORMAT",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "CardPredicate",
    "CardStatement",
    "Collection",
    "Exclusion",
    "FingerprintIndexCommitment",
    "Generator",
    "LicenseCount",
    "ManifestCommitment",
    "Publisher",
    "Source",
    "SourceDescription",
    "Subject",
]


def present(members: Mapping[str, Any]) -> dict[str, Any]:
    """``members`` without those whose value is None (optional members that are absent)."""
    return {key: value for key, value in members.items() if value is not None}


def _strings(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _list(value: tuple[str, ...] | None) -> list[str] | None:
    return None if value is None else list(value)


class _Extensible:
    """A document part whose unknown members are kept in ``unrecognized_fields``."""

    __slots__ = ()
    KNOWN: ClassVar[frozenset[str]] = frozenset()
    """The members this version reads; any other is unrecognized."""

    unrecognized_fields: Mapping[str, Any]

    def _check_unrecognized(self) -> None:
        clash = self.KNOWN.intersection(self.unrecognized_fields)
        if clash:
            raise ValueError(f"unrecognized_fields holds known members: {sorted(clash)}")

    @classmethod
    def _unrecognized(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in data.items() if key not in cls.KNOWN}

    def _with_unrecognized(self, members: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.unrecognized_fields, **present(members)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Publisher:
    """Who publishes the dataset (no other members are allowed)."""

    name: str
    url: str | None = None
    contact: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Publisher:
        """Return the publisher of a predicate's ``publisher`` object."""
        return cls(name=data["name"], url=data.get("url"), contact=data.get("contact"))

    def to_dict(self) -> dict[str, Any]:
        """Return the ``publisher`` object."""
        return present({"name": self.name, "url": self.url, "contact": self.contact})


@dataclass(frozen=True, slots=True, kw_only=True)
class Collection:
    """When a source's data was collected (ISO dates; no other members are allowed)."""

    start: str | None = None
    end: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Collection:
        """Return the period of a source's ``collection`` object."""
        return cls(start=data.get("start"), end=data.get("end"))

    def to_dict(self) -> dict[str, Any]:
        """Return the ``collection`` object."""
        return present({"start": self.start, "end": self.end})


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceDescription(_Extensible):
    """A source as a card spec describes it: what it is, its license, what it claims.

    ``paths`` (globs over manifest ids) and ``domains`` (URL hosts) say which manifest entries
    the source claims; either may be absent (None) or empty.
    """

    KNOWN: ClassVar[frozenset[str]] = frozenset(
        {"id", "name", "kind", "license", "rightsHolder", "agreement", "homepage", "paths"}
        | {"domains", "collection", "optOut", "legalBasis"}
    )

    id: str
    name: str
    kind: str
    license: str
    rights_holder: str | None = None
    agreement: str | None = None
    homepage: str | None = None
    paths: tuple[str, ...] | None = None
    domains: tuple[str, ...] | None = None
    collection: Collection | None = None
    opt_out: tuple[str, ...] | None = None
    legal_basis: str | None = None
    unrecognized_fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_unrecognized()

    @classmethod
    def _members(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        collection = data.get("collection")
        return {
            "id": data["id"],
            "name": data["name"],
            "kind": data["kind"],
            "license": data["license"],
            "rights_holder": data.get("rightsHolder"),
            "agreement": data.get("agreement"),
            "homepage": data.get("homepage"),
            "paths": _strings(data.get("paths")),
            "domains": _strings(data.get("domains")),
            "collection": None if collection is None else Collection.from_dict(collection),
            "opt_out": _strings(data.get("optOut")),
            "legal_basis": data.get("legalBasis"),
            "unrecognized_fields": cls._unrecognized(data),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SourceDescription:
        """Return the source described by a spec's ``sources`` item."""
        return cls(**cls._members(data))

    def _description(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "license": self.license,
            "rightsHolder": self.rights_holder,
            "agreement": self.agreement,
            "homepage": self.homepage,
            "paths": _list(self.paths),
            "domains": _list(self.domains),
            "collection": None if self.collection is None else self.collection.to_dict(),
            "optOut": _list(self.opt_out),
            "legalBasis": self.legal_basis,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the spec's ``sources`` item."""
        return self._with_unrecognized(self._description())


@dataclass(frozen=True, slots=True, kw_only=True)
class Source(SourceDescription):
    """A source in a card: its description, and the records and bytes it holds."""

    KNOWN: ClassVar[frozenset[str]] = SourceDescription.KNOWN | {"records", "bytes"}

    records: int
    bytes: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Source:
        """Return the source of a predicate's ``sources`` item."""
        return cls(**cls._members(data), records=data["records"], bytes=data["bytes"])

    def to_dict(self) -> dict[str, Any]:
        """Return the predicate's ``sources`` item."""
        members = self._description()
        members.update(records=self.records, bytes=self.bytes)
        return self._with_unrecognized(members)


@dataclass(frozen=True, slots=True, kw_only=True)
class LicenseCount(_Extensible):
    """Records and bytes under one license expression (SPDX)."""

    KNOWN: ClassVar[frozenset[str]] = frozenset({"license", "records", "bytes"})

    license: str
    records: int
    bytes: int
    unrecognized_fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_unrecognized()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LicenseCount:
        """Return the count of a predicate's ``licenses`` item."""
        return cls(
            license=data["license"],
            records=data["records"],
            bytes=data["bytes"],
            unrecognized_fields=cls._unrecognized(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the ``licenses`` item."""
        return self._with_unrecognized(
            {"license": self.license, "records": self.records, "bytes": self.bytes}
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Exclusion(_Extensible):
    """One exclusion list applied before the card was made (a filter report's ``lists`` item).

    ``missing_url``: records kept without a URL, which the list's domain and URL entries could
    not check (None when there were none).
    """

    KNOWN: ClassVar[frozenset[str]] = frozenset(
        {"name", "version", "digest", "signers", "matched", "removed", "applied", "missingUrl"}
    )

    name: str
    version: int
    digest: str
    signers: tuple[str, ...]
    matched: Mapping[str, int]
    """Records removed per category of the list's entries."""
    removed: int
    applied: str
    missing_url: int | None = None
    unrecognized_fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_unrecognized()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Exclusion:
        """Return the list applied of an ``exclusions`` (or filter report ``lists``) item."""
        return cls(
            name=data["name"],
            version=data["version"],
            digest=data["digest"],
            signers=tuple(data["signers"]),
            matched=dict(data["matched"]),
            removed=data["removed"],
            applied=data["applied"],
            missing_url=data.get("missingUrl"),
            unrecognized_fields=cls._unrecognized(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the ``exclusions`` item."""
        return self._with_unrecognized(
            {
                "name": self.name,
                "version": self.version,
                "digest": self.digest,
                "signers": list(self.signers),
                "matched": dict(self.matched),
                "removed": self.removed,
                "applied": self.applied,
                "missingUrl": self.missing_url,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FingerprintIndexCommitment(_Extensible):
    """The manifest's fingerprint sidecar the card commits to: its SHA-256 and file name."""

    KNOWN: ClassVar[frozenset[str]] = frozenset({"sha256", "name"})

    sha256: str
    name: str | None = None
    unrecognized_fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_unrecognized()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FingerprintIndexCommitment:
        """Return the commitment of a manifest commitment's ``fingerprints`` object."""
        return cls(
            sha256=data["sha256"],
            name=data.get("name"),
            unrecognized_fields=cls._unrecognized(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the ``fingerprints`` object."""
        return self._with_unrecognized({"sha256": self.sha256, "name": self.name})


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestCommitment(_Extensible):
    """What the card says of its manifest beyond the file digest: entries, bytes, Merkle root."""

    KNOWN: ClassVar[frozenset[str]] = frozenset(
        {"entries", "bytes", "merkleRoot", "hashAlgorithm", "leafFormat", "fingerprints"}
    )

    entries: int
    bytes: int
    merkle_root: str
    hash_algorithm: str = "sha256"
    leaf_format: str | None = None
    fingerprints: FingerprintIndexCommitment | None = None
    unrecognized_fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_unrecognized()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ManifestCommitment:
        """Return the commitment of a predicate's ``manifest`` object."""
        fingerprints = data.get("fingerprints")
        return cls(
            entries=data["entries"],
            bytes=data["bytes"],
            merkle_root=data["merkleRoot"],
            hash_algorithm=data["hashAlgorithm"],
            leaf_format=data.get("leafFormat"),
            fingerprints=(
                None if fingerprints is None else FingerprintIndexCommitment.from_dict(fingerprints)
            ),
            unrecognized_fields=cls._unrecognized(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the ``manifest`` object."""
        return self._with_unrecognized(
            {
                "entries": self.entries,
                "bytes": self.bytes,
                "merkleRoot": self.merkle_root,
                "hashAlgorithm": self.hash_algorithm,
                "leafFormat": self.leaf_format,
                "fingerprints": None if self.fingerprints is None else self.fingerprints.to_dict(),
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Generator(_Extensible):
    """The tool that made the card."""

    KNOWN: ClassVar[frozenset[str]] = frozenset({"name", "version"})

    name: str
    version: str
    unrecognized_fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_unrecognized()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Generator:
        """Return the generator of a predicate's ``generator`` object."""
        return cls(
            name=data["name"], version=data["version"], unrecognized_fields=cls._unrecognized(data)
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the ``generator`` object."""
        return self._with_unrecognized({"name": self.name, "version": self.version})


@dataclass(frozen=True, slots=True, kw_only=True)
class CardPredicate(_Extensible):
    """The dataset card (predicateType :data:`PREDICATE_TYPE`)."""

    KNOWN: ClassVar[frozenset[str]] = frozenset(
        {"name", "version", "description", "publisher", "created", "sources", "licenses"}
        | {"exclusions", "manifest", "generator"}
    )

    name: str
    version: str
    description: str
    publisher: Publisher
    created: str
    """When the card was made (``YYYY-MM-DDTHH:MM:SSZ``)."""
    sources: tuple[Source, ...]
    licenses: tuple[LicenseCount, ...]
    exclusions: tuple[Exclusion, ...]
    manifest: ManifestCommitment
    generator: Generator
    unrecognized_fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_unrecognized()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CardPredicate:
        """Return the predicate of a statement's ``predicate`` object."""
        return cls(
            name=data["name"],
            version=data["version"],
            description=data["description"],
            publisher=Publisher.from_dict(data["publisher"]),
            created=data["created"],
            sources=tuple(Source.from_dict(item) for item in data["sources"]),
            licenses=tuple(LicenseCount.from_dict(item) for item in data["licenses"]),
            exclusions=tuple(Exclusion.from_dict(item) for item in data["exclusions"]),
            manifest=ManifestCommitment.from_dict(data["manifest"]),
            generator=Generator.from_dict(data["generator"]),
            unrecognized_fields=cls._unrecognized(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the ``predicate`` object."""
        return self._with_unrecognized(
            {
                "name": self.name,
                "version": self.version,
                "description": self.description,
                "publisher": self.publisher.to_dict(),
                "created": self.created,
                "sources": [source.to_dict() for source in self.sources],
                "licenses": [item.to_dict() for item in self.licenses],
                "exclusions": [item.to_dict() for item in self.exclusions],
                "manifest": self.manifest.to_dict(),
                "generator": self.generator.to_dict(),
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Subject(_Extensible):
    """The statement's one subject: the manifest file, by name and digests."""

    KNOWN: ClassVar[frozenset[str]] = frozenset({"name", "digest"})

    name: str
    digest: Mapping[str, str]
    """Digests by algorithm; ``sha256`` is always there."""
    unrecognized_fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_unrecognized()

    @property
    def sha256(self) -> str:
        """The manifest file's SHA-256 (hex)."""
        return self.digest["sha256"]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Subject:
        """Return the subject of a ``subject`` item."""
        return cls(
            name=data["name"],
            digest=dict(data["digest"]),
            unrecognized_fields=cls._unrecognized(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the ``subject`` item."""
        return self._with_unrecognized({"name": self.name, "digest": dict(self.digest)})


@dataclass(frozen=True, slots=True, kw_only=True)
class CardStatement(_Extensible):
    """An in-toto Statement v1 whose one subject is the manifest and whose predicate is the card.

    Its ``_type`` and ``predicateType`` are :data:`STATEMENT_TYPE` and :data:`PREDICATE_TYPE`.
    """

    KNOWN: ClassVar[frozenset[str]] = frozenset({"_type", "subject", "predicateType", "predicate"})

    subject: Subject
    predicate: CardPredicate
    unrecognized_fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_unrecognized()

    @property
    def manifest_name(self) -> str:
        """The manifest's file name, as the subject names it."""
        return self.subject.name

    @property
    def manifest_sha256(self) -> str:
        """The manifest file digest the card commits to."""
        return self.subject.sha256

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CardStatement:
        """Return the statement of a document that matches the card's schemas.

        Raises:
            ValueError: the document is not a card statement (its ``_type`` or
                ``predicateType``, or not exactly one subject).
        """
        if data["_type"] != STATEMENT_TYPE or data["predicateType"] != PREDICATE_TYPE:
            raise ValueError("not a dataset card statement")
        (subject,) = data["subject"]
        return cls(
            subject=Subject.from_dict(subject),
            predicate=CardPredicate.from_dict(data["predicate"]),
            unrecognized_fields=cls._unrecognized(data),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the statement document (signed as its RFC 8785 bytes)."""
        return self._with_unrecognized(
            {
                "_type": STATEMENT_TYPE,
                "subject": [self.subject.to_dict()],
                "predicateType": PREDICATE_TYPE,
                "predicate": self.predicate.to_dict(),
            }
        )
