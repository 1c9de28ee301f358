"""The entry format: one file or record, its canonical line, the id rules and the manifest order.

Each manifest line is the RFC 8785 canonical form of its entry, so the line bytes themselves are
the Merkle leaf data (leaf = SHA-256(0x00 || line)). An entry is checked by a msgspec typed
decode that the tests prove agrees with ``schemas/manifest-entry.v1.json``; its id follows the id
rules (:func:`id_problem`); entries are ordered by ``(sha256, id)``, strictly, with no id twice.
This module does no I/O.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections.abc import Callable, Iterable
from operator import attrgetter
from typing import Annotated, Any

import msgspec

from provenance._hex import SHA256_HEX_PATTERN, first_invalid_sha256_hex
from provenance.errors import FormatError

MAX_ID_LENGTH = 4096
MAX_LINE_BYTES = 64 * 1024
_HEX64 = SHA256_HEX_PATTERN

# A digest field is 64 characters (msgspec checks that) of lowercase hex (_hex_error checks
# that, and a reader's block check for a whole block of entries at once, decoding them on the
# way, provenance._hex.sha256_hex_digests: msgspec's per-value regex, the schema's
# "^[0-9a-f]{64}$", cost 0.5 s per million entries, more than half of decoding them). Both
# together are the schema's pattern, and stricter than Python's "$", which also matches before
# a final newline (so the schema gives the lengths too).
Sha256Hex = Annotated[str, msgspec.Meta(min_length=64, max_length=64)]
EntryId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Size = Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]


class ManifestEntry(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, gc=False
):
    """One file or record. ``id`` is a relative POSIX path or a record id.

    An id follows the id rules (:func:`id_problem`, README "Ids"): no control character (C0,
    DEL, C1), line or paragraph separator or Unicode bidi control; not absolute; no ``..``
    segment; in Unicode NFC. Every reader and writer of manifests checks them.
    """

    id: EntryId
    sha256: Sha256Hex
    size: Size | None = None
    source: ShortText | None = None
    url: ShortText | None = None
    license: ShortText | None = None
    rightsHolder: ShortText | None = None  # noqa: N815 - the JSON field name
    textSha256: Sha256Hex | None = None  # noqa: N815 - the JSON field name

    def sort_key(self) -> tuple[str, str]:
        """The manifest order."""
        return (self.sha256, self.id)


_SORT_KEY = attrgetter("sha256", "id")  # ManifestEntry.sort_key, without a method call
_SHA256 = attrgetter("sha256")
_TEXT_SHA256 = attrgetter("textSha256")
_ID = attrgetter("id")
_SIZE = attrgetter("size")
_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(ManifestEntry)


def _all_hex(digests: list[str]) -> bool:
    """True if every string is 64 lower-case hex digits (the one check, provenance._hex)."""
    return first_invalid_sha256_hex(digests) is None


def _hex_error(entries: list[ManifestEntry], shas: list[str] | None = None) -> str | None:
    """The decoder's message for the first entry whose digest fields are not lowercase hex.

    ``shas``: the entries' ``sha256`` values, when the caller has them already.
    """
    texts = (
        [t for t in map(_TEXT_SHA256, entries) if t is not None]
        if any(map(_TEXT_SHA256, entries))
        else []
    )
    if shas is None:
        shas = list(map(_SHA256, entries))
    if _all_hex(shas) and (not texts or _all_hex(texts)):
        return None
    for entry in entries:
        for field in ("sha256", "textSha256"):
            value = getattr(entry, field)
            if value is not None and not _all_hex([value]):
                return f"Expected `str` matching regex '{_HEX64}' - at `$.{field}`"
    return None  # pragma: no cover - unreachable


# The rules an id follows beyond the schema's (README "Manifest format"). The schema holds the
# first three as patterns; NFC it cannot express.
# - No C0 control, DEL or C1 control (a terminal acts on them: an id could erase lines and
#   print a fake result), no line or paragraph separator, and no Unicode Bidi_Control character
#   (UAX #9: they reorder how a line is displayed, so "txt.exe" can show as "exe.txt"). Other
#   invisible format characters (ZWJ, ZWNJ, U+FEFF...) are allowed: they are part of real names
#   (emoji sequences, Persian and Indic scripts); the CLI shows them escaped.
# - Not absolute, and no ".." segment: an id names a path under the data root.
# - NFC: one name has one spelling, so "caf\u00e9" and "cafe\u0301" cannot be two entries that
#   look the same, and a spec's path glob (typed in NFC) matches the ids it shows.
_OTHER_FORBIDDEN = "\\x7f-\\x9f\\u061c\\u200e\\u200f\\u2028-\\u202e\\u2066-\\u2069"
_FORBIDDEN_CHAR = re.compile(f"[\\x00-\\x1f{_OTHER_FORBIDDEN}]")
_FORBIDDEN_BUT_NEWLINE = re.compile(f"[\\x00-\\x09\\x0b-\\x1f{_OTHER_FORBIDDEN}]")
_DOTDOT_SEGMENT = re.compile(r"(?:^|/)\.\.(?:/|$)", re.MULTILINE)


def id_problem(entry_id: str) -> str | None:
    """Return what makes ``entry_id`` unfit as a manifest id, or None if it is fine.

    An id holds no control character (C0, DEL, C1), line or paragraph separator or Unicode
    bidi control; is not absolute; has no ``..`` segment; and is in Unicode NFC.
    """
    found = _FORBIDDEN_CHAR.search(entry_id)
    if found is not None:
        return f"holds U+{ord(found[0]):04X}, a control or bidi control character"
    if entry_id.startswith("/"):
        return "is an absolute path"
    if _DOTDOT_SEGMENT.search(entry_id) is not None:
        return "has a '..' segment"
    if not entry_id.isascii() and not unicodedata.is_normalized("NFC", entry_id):
        return f"is not in Unicode normalization form NFC (as escaped: {ascii(entry_id)})"
    return None


_DOUBLE_DOT = re.compile(rb"\.\.")  # a regex finds two bytes faster than bytes.find here


def _ids_suspect(lines: bytes, ids: list[str]) -> bool:
    """False when no id of these canonical manifest lines can break an id rule (most blocks).

    Checked at C speed on the lines, which write every C0 control as an escape: ASCII lines
    without a backslash, DEL or ``..`` anywhere, whose smallest id sorts after "0" (so none
    starts with "/"), pass. True only means "check the ids". A one-byte search (memchr) is
    many times faster than a search for ``..`` or a pass over the ids, so those run only in
    lines holding a "." or a "/".
    """
    return (
        not lines.isascii()
        or b"\\" in lines
        or b"\x7f" in lines
        or (b"." in lines and _DOUBLE_DOT.search(lines) is not None)
        or (b"/" in lines and bool(ids) and min(ids) < "0")
    )


def _ids_fine(ids: list[str]) -> bool:
    """True if every id follows the id rules (:func:`id_problem`), checked in a few C calls."""
    joined = "\n".join(ids)
    return (
        joined.count("\n") == len(ids) - 1
        and _FORBIDDEN_BUT_NEWLINE.search(joined) is None
        and not joined.startswith("/")
        and "\n/" not in joined
        and (".." not in joined or _DOTDOT_SEGMENT.search(joined) is None)
        # NFC of ids joined by newlines (a starter that composes with nothing) is NFC of each.
        and (joined.isascii() or unicodedata.is_normalized("NFC", joined))
    )


def check_id(entry_id: str, *, what: str) -> None:
    """Raise if ``entry_id`` breaks an id rule (see :func:`id_problem`).

    Raises:
        FormatError: naming the id (escaped) and the rule.
    """
    problem = id_problem(entry_id)
    if problem is not None:
        raise FormatError(f"{what}: id {entry_id!r} {problem}")


def entry_bytes(entry: ManifestEntry) -> bytes:
    """Return the canonical (RFC 8785) bytes of ``entry``: its manifest line without newline."""
    return _encoder.encode(entry)


def entry_lines(entries: Iterable[ManifestEntry]) -> bytes:
    """Return the manifest lines of ``entries``, each ending with a newline (at C speed)."""
    return _encoder.encode_lines(entries)


def decode_entry(line: bytes, *, what: str) -> ManifestEntry:
    """Decode and check one manifest line (without its newline).

    Raises:
        FormatError: invalid entry, an id that breaks an id rule (:func:`id_problem`), or the
            line is not the entry's canonical form (which also catches duplicate keys and
            non-canonical escapes).
    """
    try:
        entry = _decoder.decode(line)
    except msgspec.ValidationError as exc:
        raise FormatError(f"{what}: invalid manifest entry: {exc}") from None
    except msgspec.DecodeError as exc:
        raise FormatError(f"{what}: malformed JSON: {exc}") from None
    if (error := _hex_error([entry])) is not None:
        raise FormatError(f"{what}: invalid manifest entry: {error}")
    check_id(entry.id, what=f"{what}: invalid manifest entry")
    if _encoder.encode(entry) != line:
        raise FormatError(f"{what}: entry is not in canonical form (RFC 8785, no duplicate keys)")
    return entry


def entry_from_mapping(data: dict[str, Any], *, what: str) -> ManifestEntry:
    """Build an entry from a mapping of manifest fields, checking it like a decoded line.

    Raises:
        FormatError: a field is missing or invalid, or the id breaks an id rule.
    """
    try:
        entry = msgspec.convert(
            {k: v for k, v in data.items() if v is not None}, ManifestEntry, strict=True
        )
    except msgspec.ValidationError as exc:
        raise FormatError(f"{what}: {exc}") from None
    if (error := _hex_error([entry])) is not None:
        raise FormatError(f"{what}: {error}")
    check_id(entry.id, what=what)
    return entry


_MAX_SIZE = 2**53 - 1
_TEXT_FIELDS = tuple(attrgetter(f) for f in ("source", "url", "license", "rightsHolder"))


def entry_fields(entry: ManifestEntry) -> dict[str, Any]:
    """The mapping of manifest fields that :func:`entry_from_mapping` turns into ``entry``."""
    return {f: getattr(entry, f) for f in entry.__struct_fields__}


def _entries_fine(entries: list[ManifestEntry]) -> bool:
    """True if :func:`entry_from_mapping` accepts the fields of each of ``entries`` (built
    without checks from str, int and None values), checked in a few C calls per block.

    The constraints of :class:`ManifestEntry`'s fields (lengths, size bounds), lowercase hex
    digests and the id rules; False only means "check them one by one".
    """
    ids = list(map(_ID, entries))
    if not ids or min(map(len, ids)) < 1 or max(map(len, ids)) > MAX_ID_LENGTH:
        return False
    if first_invalid_sha256_hex(list(map(_SHA256, entries))) is not None:
        return False
    if any(map(_TEXT_SHA256, entries)):
        return False  # not made by the fast builders: left to the one-by-one check
    sizes = [s for s in map(_SIZE, entries) if s is not None]
    if sizes and (
        not all(s.__class__ is int for s in sizes) or min(sizes) < 0 or max(sizes) > _MAX_SIZE
    ):
        return False
    for field in _TEXT_FIELDS:
        texts = [t for t in map(field, entries) if t is not None]
        if texts and (
            not all(t.__class__ is str for t in texts)
            or min(map(len, texts)) < 1
            or max(map(len, texts)) > MAX_ID_LENGTH
        ):
            return False
    return _ids_fine(ids)


def checked_entries(entries: list[ManifestEntry], where: Callable[[int], str]) -> None:
    """Check entries built without checks (``ManifestEntry(...)`` from str, int and None
    values) exactly as :func:`entry_from_mapping` checks each one's fields, a block at a time.

    ``where(k)`` names entry ``k`` in an error.

    Raises:
        FormatError: as :func:`entry_from_mapping` for the first entry it refuses.
    """
    if _entries_fine(entries):
        return
    for k, entry in enumerate(entries):
        entry_from_mapping(entry_fields(entry), what=where(k))


# ----------------------------------------------------------------------------------------------
# The manifest order


def sort_entries(entries: list[ManifestEntry]) -> None:
    """Sort ``entries`` in place into manifest order, ``(sha256, id)``.

    Comparing strings is three times faster than comparing (sha256, id) tuples, so this sorts
    by digest, and by both only if digests repeat.
    """
    entries.sort(key=_SHA256)
    shas = list(map(_SHA256, entries))
    if any(map(operator.eq, shas, shas[1:])):  # the same content under several ids
        entries.sort(key=_SORT_KEY)


class _OrderState:
    """What the order checks carry from one block of entries to the next."""

    __slots__ = ("previous", "seen_ids", "total")

    def __init__(self) -> None:
        self.previous: tuple[str, str] | None = None
        self.seen_ids: set[str] = set()
        self.total = 0


def _in_order(
    entries: list[ManifestEntry], previous: tuple[str, str] | None, shas: list[str] | None = None
) -> bool:
    """True if the entries' (sha256, id) strictly increase, starting after ``previous``.

    ``shas``: the entries' ``sha256`` values, when the caller has them already.
    """
    if previous is not None and (entries[0].sha256, entries[0].id) <= previous:
        return False
    if shas is None:
        shas = list(map(_SHA256, entries))
    if all(map(operator.lt, shas, shas[1:])):
        return True
    keys = list(map(_SORT_KEY, entries))  # equal digests (same content): compare ids too
    return all(map(operator.lt, keys, keys[1:]))
