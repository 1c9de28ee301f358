"""The exclusion-list document (schema ``exclusion-list.v1``): pure data, no I/O.

A list version is one JSON document::

    {"name": "piracy", "version": 2, "issued": "2026-07-01T00:00:00Z",
     "publisher": "Example Rights Association",
     "previous": "<sha256 hex of the file bytes of version 1, or null for version 1>",
     "entries": [{"type": "domain", "value": "example.org", "category": "piracy"}, ...]}

Its file bytes are the RFC 8785 canonical form of that document, and its digest (the SHA-256 of
those bytes) is what cards cite. Reading refuses anything that is not exactly the canonical form
(which also refuses duplicate keys, unknown fields and non-canonical escapes), so one list version
has exactly one byte representation and one digest.

Entry values are checked for shape here (a host name, a bracketed IPv6 literal, a 64-hex digest,
a URL without spaces or control characters). Normalizing what a publisher typed (IDNA, case,
public suffixes) happens when the list is published (:mod:`provenance.lists.entries`).

The entry types and categories are defined here and nowhere else; matching
(:mod:`provenance.lists.match`) and the command line take them from this module.

Round trip: ``ExclusionList.from_bytes(x.to_bytes(), what=...) == x`` and
``ExclusionList.from_dict(x.to_dict(), what=...) == x``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import msgspec

from provenance._hex import Sha256Hex, first_invalid_sha256_hex, is_sha256_hex, sha256_hex
from provenance.errors import FormatError, InputError

EntryType = Literal["domain", "url-prefix", "url", "sha256", "text-sha256"]
Category = Literal["piracy", "opt-out", "illegal", "other"]
ENTRY_TYPES: tuple[EntryType, ...] = get_args(EntryType)
CATEGORIES: tuple[Category, ...] = get_args(Category)
URL_ENTRY_TYPES: tuple[EntryType, ...] = ("domain", "url-prefix", "url")
"""The types matched against a record's URL."""
DIGEST_ENTRY_TYPES: tuple[EntryType, ...] = ("sha256", "text-sha256")
"""The types matched against a content digest (``sha256``) or a norm-text-v1 digest."""

LIST_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
"""List names: lower-case ASCII, digits, ``.``, ``_``, ``-``; they become paths and URL parts."""

MAX_VALUE_LENGTH = 4096
MAX_NOTE_LENGTH = 1000
MAX_PUBLISHER_LENGTH = 200
MAX_VERSION = 2**53 - 1

_NAME_RE = re.compile(r"\A[a-z0-9][a-z0-9._-]{0,63}\Z")
# A host as published: ASCII lower case (IDNA A-labels), no empty label, no trailing dot. IPv4
# literals fit this pattern too; IPv6 literals are bracketed, as the WHATWG URL host serializer
# writes them.
_HOST_RE = re.compile(r"\A(?=.{1,253}\Z)(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\Z")
_IPV6_RE = re.compile(r"\A\[[0-9a-f:.]{2,45}\]\Z")
_URLISH_RE = re.compile(r"\A[^\x00-\x20\x7f]+\Z")
_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"


def is_valid_list_name(name: str) -> bool:
    """Return whether ``name`` is a safe list name (see :data:`LIST_NAME_PATTERN`)."""
    return bool(_NAME_RE.match(name))


def check_list_name(name: str, *, what: str = "list name") -> str:
    """Return ``name`` if it is a safe list name.

    Names become file names and URL path segments, so ``..``, ``/``, NUL or non-ASCII letters are
    refused before anything is written or fetched (docs/security.md L17).

    Raises:
        InputError: the name does not match :data:`LIST_NAME_PATTERN`.
    """
    if not is_valid_list_name(name):
        raise InputError(
            f"{what}: invalid list name {name!r} (allowed: {LIST_NAME_PATTERN}, e.g. 'piracy')"
        )
    return name


def value_problem(entry_type: str, value: str) -> str | None:
    """Return why ``value`` is not a well-formed value for ``entry_type``, or None if it is."""
    if entry_type in DIGEST_ENTRY_TYPES:
        return None if is_sha256_hex(value) else "must be 64 lower-case hex digits"
    if entry_type == "domain":
        if _HOST_RE.match(value) or _IPV6_RE.match(value):
            return None
        return "must be a lower-case ASCII host name (IDNA A-labels, no trailing dot) or IP literal"
    if entry_type in URL_ENTRY_TYPES:
        return None if _URLISH_RE.match(value) else "must not contain spaces or control characters"
    return f"unknown entry type {entry_type!r}"


def _parse_time(text: str, *, what: str) -> dt.datetime:
    try:
        value = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise FormatError(
            f"{what}: issued {text!r} is not a UTC time like 2026-01-31T12:00:00Z"
        ) from None
    return value.replace(tzinfo=dt.UTC)


def _format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ListEntry(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
    gc=False,
):
    """One listed item: a ``domain``, ``url-prefix``, ``url``, ``sha256`` or ``text-sha256``.

    A frozen msgspec Struct rather than a dataclass, and one the cyclic garbage collector does
    not track (``gc=False``; it holds only strings, so it cannot be part of a reference cycle):
    a list of millions of entries is decoded straight into these, with no Python code per entry
    and no collector pass over them. Its fields mirror ``schemas/exclusion-list.v1.json``
    (the tests prove they agree); the length limits are checked when decoding.
    """

    type: EntryType
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_VALUE_LENGTH)]
    category: Category
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NOTE_LENGTH)] | None = None

    def __post_init__(self) -> None:
        """Refuse an unknown type or category (decoding checks them too).

        Raises:
            ValueError: ``type`` or ``category`` is not one of the known ones.
        """
        if self.type not in ENTRY_TYPES:
            raise ValueError(f"unknown entry type {self.type!r}")
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, what: str) -> ListEntry:
        """Build an entry from its JSON form.

        Raises:
            FormatError: a missing or unknown field, a wrong type, or a malformed value.
        """
        try:
            entry = msgspec.convert(dict(data), cls)
        except msgspec.ValidationError as exc:
            raise FormatError(f"{what}: invalid list entry: {exc}") from None
        problem = value_problem(entry.type, entry.value)
        if problem is not None:
            raise FormatError(f"{what}: {entry.type} entry {entry.value[:100]!r} {problem}")
        return entry

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (``note`` only when present)."""
        data: dict[str, Any] = {"type": self.type, "value": self.value, "category": self.category}
        if self.note is not None:
            data["note"] = self.note
        return data

    def sort_key(self) -> tuple[str, str]:
        """The order entries are published in: by type, then value."""
        return (self.type, self.value)


# --- typed decoding (mirrors schemas/exclusion-list.v1.json; tests prove they agree) ----------


class _ListDoc(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern=LIST_NAME_PATTERN)]
    version: Annotated[int, msgspec.Meta(ge=1, le=MAX_VERSION)]
    issued: Annotated[str, msgspec.Meta(pattern=_TIME_PATTERN)]
    publisher: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PUBLISHER_LENGTH)]
    previous: str | None  # checked by _list_of (sha256_hex)
    entries: list[ListEntry]


_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(_ListDoc)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExclusionList:
    """One immutable version of an exclusion list."""

    name: str
    version: int
    issued: dt.datetime
    publisher: str
    previous: Sha256Hex | None
    entries: Sequence[ListEntry]
    """A tuple; or, loaded from the cache's index, made on demand (:mod:`.packed`)."""

    def __post_init__(self) -> None:
        if not is_valid_list_name(self.name):
            raise ValueError(f"invalid list name {self.name!r}")
        if not 1 <= self.version <= MAX_VERSION:
            raise ValueError(f"version {self.version} out of range")
        if self.issued.tzinfo is None:
            raise ValueError("issued must be an aware datetime")
        if (self.previous is None) != (self.version == 1):
            raise ValueError("previous must be null exactly for version 1")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, what: str) -> ExclusionList:
        """Build a list from its JSON form (as produced by :meth:`to_dict`).

        Raises:
            FormatError: the document does not match ``exclusion-list.v1``, or ``previous`` is
                null for a version above 1 (or set for version 1).
        """
        try:
            doc = msgspec.convert(dict(data), _ListDoc)
        except msgspec.ValidationError as exc:
            raise FormatError(f"{what}: invalid exclusion list: {exc}") from None
        return _list_of(doc, what=what)

    @classmethod
    def from_bytes(cls, data: bytes, *, what: str) -> ExclusionList:
        """Parse list file bytes, which must be the document's canonical (RFC 8785) form.

        Raises:
            FormatError: malformed JSON, not ``exclusion-list.v1``, or not the canonical form
                (duplicate keys, whitespace, key order or escapes differ).
        """
        try:
            doc = _decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise FormatError(f"{what}: invalid exclusion list: {exc}") from None
        except msgspec.DecodeError as exc:
            raise FormatError(f"{what}: malformed JSON: {exc}") from None
        if _encoder.encode(doc) != data:
            raise FormatError(
                f"{what}: not in canonical form (RFC 8785; duplicate keys are not allowed)"
            )
        return _list_of(doc, what=what)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "name": self.name,
            "version": self.version,
            "issued": _format_time(self.issued),
            "publisher": self.publisher,
            "previous": self.previous,
            "entries": [entry.to_dict() for entry in self.entries],
        }

    def to_bytes(self) -> bytes:
        """Return the file bytes: the RFC 8785 canonical form of :meth:`to_dict`."""
        doc = _ListDoc(
            name=self.name,
            version=self.version,
            issued=_format_time(self.issued),
            publisher=self.publisher,
            previous=self.previous,
            entries=list(self.entries),
        )
        return _encoder.encode(doc)

    def digest(self) -> Sha256Hex:
        """Return the SHA-256 hex of :meth:`to_bytes`, the digest cards cite."""
        return Sha256Hex(hashlib.sha256(self.to_bytes()).hexdigest())

    def counts(self) -> dict[str, int]:
        """Return the number of entries per category (categories without entries omitted)."""
        result: dict[str, int] = {}
        for entry in self.entries:
            result[entry.category] = result.get(entry.category, 0) + 1
        return dict(sorted(result.items()))


# Whole-list checks: one pass over all values of a kind joined by newlines (which no valid value
# contains) instead of one match per entry, which dominated load time; digests are checked by the
# bulk form of the one SHA-256 check.
_HOST_RUN = re.compile(r"(?:(?:(?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}|\[[0-9a-f:.]{2,45}\])\n)*")
_URLISH_RUN = re.compile(r"[^\x00-\x20\x7f]+(?:\n[^\x00-\x20\x7f]+)*\n")
_KIND = {
    "sha256": "hex",
    "text-sha256": "hex",
    "domain": "host",
    "url": "url",
    "url-prefix": "url",
}


def _check_values(entries: list[ListEntry], *, what: str) -> None:
    groups: dict[str, list[str]] = {"hex": [], "host": [], "url": []}
    for item in entries:
        groups[_KIND[item.type]].append(item.value)
    ok = (
        first_invalid_sha256_hex(groups["hex"]) is None
        and _HOST_RUN.fullmatch("\n".join(groups["host"]) + "\n" if groups["host"] else "")
        and max(map(len, groups["host"]), default=0) <= 253
        and (not groups["url"] or _URLISH_RUN.fullmatch("\n".join(groups["url"]) + "\n"))
    )
    if ok:
        return
    # Something is wrong: find the first offending entry for the message.
    for index, item in enumerate(entries):
        problem = value_problem(item.type, item.value)
        if problem is not None:
            raise FormatError(
                f"{what}: entries/{index}: {item.type} entry {item.value[:100]!r} {problem}"
            )
    raise AssertionError("bulk and per-entry value checks disagree")  # pragma: no cover


def _list_of(doc: _ListDoc, *, what: str) -> ExclusionList:
    if (doc.previous is None) != (doc.version == 1):
        raise FormatError(
            f"{what}: 'previous' must be null for version 1 and a digest for later versions"
        )
    previous = None if doc.previous is None else sha256_hex(doc.previous, what=f"{what}: previous")
    _check_values(doc.entries, what=what)
    return ExclusionList(
        name=doc.name,
        version=doc.version,
        issued=_parse_time(doc.issued, what=what),
        publisher=doc.publisher,
        previous=previous,
        entries=tuple(doc.entries),  # the decoded entries themselves: nothing is rebuilt
    )
