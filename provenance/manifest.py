"""Manifests: one canonical JSON line per file or record, ordered by ``(sha256, id)``.

Each line is the RFC 8785 canonical form of its entry, so the line bytes themselves are the
Merkle leaf data (leaf = SHA-256(0x00 || line)). Reading a manifest checks, per line, that the
entry is valid (a msgspec typed decode that the tests prove agrees with
``schemas/manifest-entry.v1.json``), that the line is exactly its canonical form, and that the
order is strictly increasing, and that every id follows the id rules (:func:`id_problem`); the
file digest and Merkle root are computed in the same pass.

Building hashes files on all cores (processes over chunks of small files, large files streamed
through a reused buffer), never follows symlinks (skipped and counted, or refused when they point
out of the data root), leaves out what exclusion patterns match, refuses special files and names
that cannot be ids, counts hard-linked files, and detects files that change while they are hashed.
Shards record which shard of how many they are, so that merging can tell a complete set.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import heapq
import itertools
import operator
import os
import re
import signal
import stat
import sys
import threading
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO, Literal, NamedTuple, NoReturn

import msgspec

from provenance import merkle
from provenance._files import atomic_writer, open_input

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    from provenance.records import Columns

from provenance.errors import (
    FormatError,
    InputError,
    LocalIOError,
    ProvenanceError,
    UnsafePathError,
)

MAX_ID_LENGTH = 4096
MAX_LINE_BYTES = 64 * 1024
_HEX64 = "^[0-9a-f]{64}$"

# A digest field is 64 characters (msgspec checks that) of lowercase hex (_hex_error checks
# that, for a whole block of entries at once: msgspec's per-value regex, the schema's
# "^[0-9a-f]{64}$", cost 0.5 s per million entries, more than half of decoding them). Both
# together are the schema's pattern, and stricter than Python's "$", which also matches before
# a final newline (so the schema gives the lengths too).
Sha256Hex = Annotated[str, msgspec.Meta(min_length=64, max_length=64)]
EntryId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]
Size = Annotated[int, msgspec.Meta(ge=0, le=2**53 - 1)]
ShortText = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_LENGTH)]


class ManifestEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
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
_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(ManifestEntry)


def _all_hex(digests: list[str]) -> bool:
    """True if every string is lowercase hex (their lengths are checked by the decoder)."""
    try:
        return not "".join(digests).encode("ascii").translate(None, b"0123456789abcdef")
    except UnicodeEncodeError:
        return False


def _hex_error(entries: list[ManifestEntry]) -> str | None:
    """The decoder's message for the first entry whose digest fields are not lowercase hex."""
    texts = [t for t in map(_TEXT_SHA256, entries) if t is not None]
    if _all_hex(list(map(_SHA256, entries))) and (not texts or _all_hex(texts)):
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
    starts with "/"), pass. True only means "check the ids".
    """
    return (
        not lines.isascii()
        or b"\\" in lines
        or b"\x7f" in lines
        or _DOUBLE_DOT.search(lines) is not None
        or (bool(ids) and min(ids) < "0")
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


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    """What a card commits to: the file digest, the entry count, total bytes and Merkle root."""

    digest: str
    entries: int
    total_bytes: int
    root: str


@dataclass(frozen=True, slots=True)
class Manifest:
    """A loaded manifest: entries in order plus the summary computed while reading them."""

    entries: list[ManifestEntry]
    summary: ManifestSummary


# Manifests are read and written in blocks of whole lines. A block is decoded with one msgspec
# call and checked with a few calls that loop in C (see _check_block); only a block that fails a
# check is gone through line by line, which finds and names the bad line exactly as a reader of
# single lines would. The Merkle tree, which costs two SHA-256 calls per entry, is computed in
# a second process from the same byte ranges when the manifest is big and a second core exists.
_READ_BLOCK = 4 << 20
_WRITE_BLOCK = 1 << 14  # entries
_MERKLE_PROCESS_BYTES = 8 << 20
_LINE_WINDOW = MAX_LINE_BYTES // 2
_ID = attrgetter("id")
_LINKED = attrgetter("linked")
_SIZE = attrgetter("size")


class _ReadState:
    """What the checks carry from one block to the next."""

    __slots__ = ("previous", "seen_ids", "total")

    def __init__(self) -> None:
        self.previous: tuple[str, str] | None = None
        self.seen_ids: set[str] = set()
        self.total = 0


def _lines_are_short(block: bytes) -> bool:
    """True if no line of ``block`` (newline included) can be longer than MAX_LINE_BYTES.

    A line longer than that would contain a whole aligned window of _LINE_WINDOW bytes without a
    newline; windows are checked with a C-speed find. False is inconclusive (a line between
    half and all of the limit also fails it): the caller then checks line by line.
    """
    find = block.find
    return all(
        find(b"\n", start, start + _LINE_WINDOW) >= 0
        for start in range(0, len(block) - _LINE_WINDOW + 1, _LINE_WINDOW)
    )


def _in_order(entries: list[ManifestEntry], previous: tuple[str, str] | None) -> bool:
    """True if the entries' (sha256, id) strictly increase, starting after ``previous``."""
    if previous is not None and (entries[0].sha256, entries[0].id) <= previous:
        return False
    shas = list(map(_SHA256, entries))
    if all(map(operator.lt, shas, shas[1:])):
        return True
    keys = list(map(_SORT_KEY, entries))  # equal digests (same content): compare ids too
    return all(map(operator.lt, keys, keys[1:]))


def _check_block(block: bytes, state: _ReadState) -> list[ManifestEntry] | None:
    """Decode and check a block of whole lines at C speed; None if any check fails.

    Every check :func:`_check_lines` makes per line holds for all lines when this returns
    entries: msgspec validates each entry against the schema's constraints; re-encoding the
    entries gives back exactly the block, so each line is its entry's canonical form (one
    entry per line, no blank lines, no duplicate keys, no other escapes); every id follows the
    id rules; keys strictly increase; and no id repeats, within the block or with earlier ones.
    """
    if not _lines_are_short(block):
        return None
    try:
        entries = _decoder.decode_lines(block)
    except msgspec.DecodeError:  # also catches ValidationError
        return None
    if not entries or _encoder.encode_lines(entries) != block or _hex_error(entries):
        return None
    listed = list(map(_ID, entries))
    if _ids_suspect(block, listed) and not _ids_fine(listed):
        return None
    if not _in_order(entries, state.previous):
        return None
    ids = set(listed)
    if len(ids) != len(entries) or not state.seen_ids.isdisjoint(ids):
        return None
    state.seen_ids |= ids
    last = entries[-1]
    state.previous = (last.sha256, last.id)
    state.total += sum(filter(None, map(_SIZE, entries)))
    return entries


def _check_lines(
    block: bytes, number: int, state: _ReadState, what: str
) -> Iterator[ManifestEntry]:
    """Check ``block`` line by line (lines numbered from ``number``), raising at the first bad.

    Raises:
        FormatError: as :func:`iter_manifest`.
    """
    lines = block.split(b"\n")
    tail = lines.pop()  # b"" when the block ends with a newline
    seen_ids = state.seen_ids
    for line in lines:
        if len(line) >= MAX_LINE_BYTES:
            raise FormatError(f"{what}:{number}: line longer than {MAX_LINE_BYTES} bytes")
        entry = decode_entry(line, what=f"{what}:{number}")
        key = (entry.sha256, entry.id)
        if state.previous is not None and key <= state.previous:
            raise FormatError(f"{what}:{number}: entries are not ordered by (sha256, id)")
        if entry.id in seen_ids:
            raise FormatError(f"{what}:{number}: id {entry.id!r} appears twice")
        seen_ids.add(entry.id)
        state.previous = key
        state.total += entry.size or 0
        number += 1
        yield entry
    if tail:
        if len(tail) > MAX_LINE_BYTES:
            raise FormatError(f"{what}:{number}: line longer than {MAX_LINE_BYTES} bytes")
        raise FormatError(f"{what}:{number}: last line has no newline (truncated file?)")


def _read_blocks(handle: BinaryIO) -> Iterator[bytes]:
    """Yield the file in blocks of whole lines; a last block without a final newline, or a
    block that is one line longer than MAX_LINE_BYTES without a newline yet, ends it."""
    rest = b""
    while True:
        data = handle.read(_READ_BLOCK)
        if not data:
            if rest:
                yield rest
            return
        if rest:
            data = rest + data
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            rest = data
            if len(rest) > MAX_LINE_BYTES:
                yield rest  # the line-by-line check reports the long line
                return
            continue
        rest = data[cut:]
        yield data[:cut] if rest else data


class _LeafTree:
    """Merkle tree over the lines of the blocks given, computed in this process."""

    def __init__(self) -> None:
        self._tree = merkle.TreeBuilder()

    def add(self, block: bytes, offset: int) -> None:
        lines = block.split(b"\n")
        lines.pop()
        sha256 = hashlib.sha256
        self._tree.extend([sha256(b"\x00" + line).digest() for line in lines])

    def result(self, digest: str) -> tuple[int, str]:
        return self._tree.size, self._tree.root().hex()

    def close(self) -> None:
        pass


class _LeafTreeProcess:
    """Merkle tree over the lines of an open file, computed in a forked process.

    The child reads the same open file with pread: when reading a manifest, the whole file at
    its own pace; when writing one (``follow``), the (offset, length) ranges the parent sends
    once it has written and flushed them. It hashes the lines and finally sends back the
    SHA-256 of all the bytes it read, the leaf count and the root. The parent compares that
    digest with its own: equal digests mean both saw the same bytes.
    """

    def __init__(self, fd: int, *, follow: bool) -> None:
        self._follow = follow
        import multiprocessing

        context = multiprocessing.get_context("fork")
        _flush_std_streams()
        child_receive, self._send = context.Pipe(duplex=False)
        self._receive, child_send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_leaf_tree_child, args=(fd, child_receive, child_send, follow), daemon=True
        )
        self._process.start()
        child_receive.close()
        child_send.close()

    def add(self, block: bytes, offset: int) -> None:
        if self._follow:
            self._send.send((offset, len(block)))

    def result(self, digest: str) -> tuple[int, str]:
        try:
            if self._follow:
                self._send.send(None)
            outcome: tuple[str, int, str] = self._receive.recv()
        except (EOFError, OSError):
            raise LocalIOError("the process computing the Merkle root failed") from None
        self._process.join()
        if outcome[0] != digest:
            raise LocalIOError(
                "the file changed while it was being read"
                if outcome[0]
                else f"cannot read: {outcome[2]}"
            )
        return outcome[1], outcome[2]

    def close(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._send.close()
        self._receive.close()


def _leaf_tree_child(fd: int, receive: Any, send: Any, follow: bool) -> None:
    """The body of the :class:`_LeafTreeProcess` child; an empty digest reports an error."""
    file_hash = hashlib.sha256()
    tree = _LeafTree()
    try:
        offset, rest = 0, b""
        while not follow and (data := os.pread(fd, _READ_BLOCK, offset)):
            offset += len(data)
            file_hash.update(data)
            if rest:
                data = rest + data
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                tree.add(data[:cut] if rest else data, 0)
        while follow and (task := receive.recv()) is not None:
            offset, length = task
            parts = []
            while length:
                data = os.pread(fd, length, offset)
                if not data:
                    break
                parts.append(data)
                offset += len(data)
                length -= len(data)
            block = b"".join(parts)
            file_hash.update(block)
            tree.add(block, offset)
    except OSError as exc:
        send.send(("", 0, exc.strerror or str(exc)))
        return
    count, root = tree.result("")
    send.send((file_hash.hexdigest(), count, root))


def _leaf_tree(fd: int, size: int, *, follow: bool) -> _LeafTree | _LeafTreeProcess:
    """A leaf tree in another process for a big file when a second core is there to run it."""
    if size >= _MERKLE_PROCESS_BYTES and _other_cores() and "fork" in _start_methods():
        return _LeafTreeProcess(fd, follow=follow)
    return _LeafTree()


def _flush_std_streams() -> None:
    """Flush stdout and stderr before forking, so a child can never write their buffers again."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _other_cores() -> bool:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) > 1
    return (os.cpu_count() or 1) > 1


def _start_methods() -> list[str]:
    import multiprocessing

    return multiprocessing.get_all_start_methods() if sys.platform == "linux" else []


def iter_manifest(
    path: Path,
    *,
    on_summary: Callable[[ManifestSummary], None] | None = None,
    on_digest: Callable[[str], None] | None = None,
) -> Iterator[ManifestEntry]:
    """Stream the entries of the manifest at ``path``, checking each line and the order.

    ``on_summary`` is called with the summary once the whole file has been read and checked
    (without it, the file digest and Merkle root are not computed); ``on_digest``, then, with
    the SHA-256 of the bytes read (without the Merkle root's cost).

    Raises:
        InputError: the file is missing or unreadable.
        FormatError: a line is invalid, not canonical, or out of order, or an id repeats.
        LocalIOError: the file cannot be read, or changed while it was read.
    """
    for entries in _iter_blocks(path, on_summary, on_digest):
        yield from entries


def _iter_blocks(
    path: Path,
    on_summary: Callable[[ManifestSummary], None] | None,
    on_digest: Callable[[str], None] | None = None,
) -> Iterator[list[ManifestEntry]]:
    """:func:`iter_manifest`, a block of entries at a time (one at a time near a bad line)."""
    what = str(path)
    handle = open_input(path, kind="manifest file")  # closed in the finally below
    tree: _LeafTree | _LeafTreeProcess | None = None
    try:
        state = _ReadState()
        wanted = on_summary is not None or on_digest is not None
        file_hash = hashlib.sha256() if wanted else None
        if on_summary is not None:
            try:
                tree = _leaf_tree(handle.fileno(), os.fstat(handle.fileno()).st_size, follow=False)
            except OSError as exc:
                raise LocalIOError(f"{what}: cannot read: {exc.strerror}") from None
        number, offset = 1, 0
        try:
            for block in _read_blocks(handle):
                entries = _check_block(block, state)
                if entries is None:
                    entries = []
                    for entry in _check_lines(block, number, state, what):
                        yield [entry]
                        entries.append(entry)
                else:
                    yield entries
                number += len(entries)
                if file_hash is not None:
                    file_hash.update(block)
                if tree is not None:
                    tree.add(block, offset)
                offset += len(block)
        except OSError as exc:
            raise LocalIOError(f"{what}: cannot read: {exc.strerror}") from None
        if on_summary is not None and file_hash is not None and tree is not None:
            digest = file_hash.hexdigest()
            try:
                count, root = tree.result(digest)
            except LocalIOError as exc:
                raise LocalIOError(f"{what}: {exc}") from None
            on_summary(ManifestSummary(digest, count, state.total, root))
        if on_digest is not None and file_hash is not None:
            on_digest(file_hash.hexdigest())
    finally:
        if tree is not None:
            tree.close()
        handle.close()


def read_manifest(path: Path) -> Manifest:
    """Load and check the whole manifest at ``path``.

    Raises:
        InputError, FormatError, LocalIOError: as :func:`iter_manifest`.
    """
    summaries: list[ManifestSummary] = []
    entries: list[ManifestEntry] = []
    for block in _iter_blocks(path, summaries.append):
        entries.extend(block)
    return Manifest(entries, summaries[0])


def _check_write_block(block: list[ManifestEntry], state: _ReadState) -> None:
    """Check that ``block`` continues the manifest order with new ids.

    Raises:
        FormatError: naming the first entry out of order or repeated, as a per-entry check would.
    """
    ids = set(map(_ID, block))
    if (
        _in_order(block, state.previous)
        and len(ids) == len(block)
        and state.seen_ids.isdisjoint(ids)
    ):
        state.seen_ids |= ids
        state.previous = block[-1].sort_key()
        return
    previous, seen_ids = state.previous, state.seen_ids
    for entry in block:
        key = entry.sort_key()
        if previous is not None and key <= previous:
            if key == previous or entry.id in seen_ids:
                raise FormatError(f"id {entry.id!r} appears twice")
            raise FormatError("entries are not ordered by (sha256, id)")
        if entry.id in seen_ids:
            raise FormatError(f"id {entry.id!r} appears twice")
        seen_ids.add(entry.id)
        previous = key
    state.previous = previous


def write_manifest(entries: Iterable[ManifestEntry], output: Path) -> ManifestSummary:
    """Write ``entries`` (already in manifest order) atomically to ``output``.

    Returns:
        The summary of what was written.

    Raises:
        FormatError: the entries are out of order, or an id repeats or breaks an id rule.
        LocalIOError: the file cannot be written (nothing is left behind).
    """
    file_hash = hashlib.sha256()
    state = _ReadState()
    tree: _LeafTree | _LeafTreeProcess | None = None
    # Blocks written before the tree is chosen: once they reach _MERKLE_PROCESS_BYTES the
    # manifest is big, and its leaves may be hashed in another process (from the written file).
    pending: list[tuple[bytes, int]] = []
    offset = 0
    iterator = iter(entries)
    try:
        with atomic_writer(output) as handle:
            while block := list(itertools.islice(iterator, _WRITE_BLOCK)):
                _check_write_block(block, state)
                data = _encoder.encode_lines(block)
                listed = list(map(_ID, block))
                if _ids_suspect(data, listed) and not _ids_fine(listed):
                    for entry in block:
                        check_id(entry.id, what=str(output))
                handle.write(data)
                file_hash.update(data)
                state.total += sum(filter(None, map(_SIZE, block)))
                pending.append((data, offset))
                offset += len(data)
                if tree is None and offset >= _MERKLE_PROCESS_BYTES:
                    tree = _leaf_tree(handle.fileno(), offset, follow=True)
                if tree is not None:
                    if isinstance(tree, _LeafTreeProcess):
                        handle.flush()
                    for data, start in pending:
                        tree.add(data, start)
                    pending.clear()
            if tree is None:
                tree = _LeafTree()
                for data, start in pending:
                    tree.add(data, start)
            digest = file_hash.hexdigest()
            try:
                count, root = tree.result(digest)
            except LocalIOError as exc:
                raise LocalIOError(f"{output}: {exc}") from None
    finally:
        if tree is not None:
            tree.close()
    return ManifestSummary(digest, count, state.total, root)


# A shard built with ``--shard K/N`` gets a small record beside it, MANIFEST.shard.json
# (schemas/manifest-shard.v1.json): K, N and the digest of the shard's manifest file. Merging
# then knows whether the set of shards is complete, and a record left beside another file is
# caught by its digest. A manifest is never changed to hold this: its lines are its entries.
SHARD_RECORD_SUFFIX = ".shard.json"
MAX_SHARD_RECORD_BYTES = 4096


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """Which shard of a sharded build a manifest is: ``shard`` (K, from 0) of ``shards`` (N)."""

    shard: int
    shards: int
    sha256: str
    """The SHA-256 of the shard's manifest file."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardRecord:
        """Build from the JSON form (already validated against its schema)."""
        return cls(shard=data["shard"], shards=data["shards"], sha256=data["sha256"])

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"shard": self.shard, "shards": self.shards, "sha256": self.sha256}


def shard_record_path(manifest_path: Path) -> Path:
    """The shard record beside ``manifest_path``."""
    return manifest_path.with_name(manifest_path.name + SHARD_RECORD_SUFFIX)


def write_shard_record(
    manifest_path: Path, shard: tuple[int, int] | None, summary: ManifestSummary
) -> None:
    """Write the shard record of the manifest just written (atomically), or, for a manifest
    that is not a shard, remove a record left from an earlier build (it would describe
    another manifest).

    Raises:
        LocalIOError: the record cannot be written or removed.
    """
    path = shard_record_path(manifest_path)
    if shard is None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise LocalIOError(f"{path}: cannot remove: {exc.strerror}") from None
        return
    from provenance import _json
    from provenance._files import atomic_write

    record = ShardRecord(shard=shard[0], shards=shard[1], sha256=summary.digest)
    atomic_write(path, _json.canonical(record.to_dict()) + b"\n")


def read_shard_record(manifest_path: Path) -> ShardRecord | None:
    """Return the shard record beside ``manifest_path``, or None when it has none.

    Raises:
        InputError: the record is not a regular file or cannot be read.
        FormatError, SchemaError: it is malformed, or its K is not below its N.
    """
    from provenance import _json, schema
    from provenance._files import read_bytes

    path = shard_record_path(manifest_path)
    if not os.path.lexists(path):
        return None
    data = _json.loads_object(read_bytes(path, limit=MAX_SHARD_RECORD_BYTES), what=str(path))
    schema.validate(data, schema.MANIFEST_SHARD, what=str(path))
    record = ShardRecord.from_dict(data)
    if record.shard >= record.shards:
        raise FormatError(f"{path}: shard {record.shard} of {record.shards} (K must be below N)")
    return record


def _check_shard_set(paths: list[Path], records: list[ShardRecord | None]) -> None:
    """Refuse a set of inputs that mixes shards with other manifests, mixes builds of
    different N, repeats a shard or misses one.

    Raises:
        InputError: naming the inputs or the missing shards.
    """
    if all(record is None for record in records):
        return  # manifests built separately, not as shards: merged as they are
    by_index: dict[int, Path] = {}
    shards = next(r.shards for r in records if r is not None)
    for path, record in zip(paths, records, strict=True):
        if record is None:
            raise InputError(
                f"{path}: has no shard record ({shard_record_path(path).name}) while other"
                " inputs are shards; merge the shards of one build"
            )
        if record.shards != shards:
            raise InputError(
                f"{path}: is shard {record.shard}/{record.shards}, while other inputs are shards"
                f" of {shards}; merge the shards of one build"
            )
        if record.shard in by_index:
            raise InputError(
                f"{path}: is shard {record.shard}/{shards}, as {by_index[record.shard]} is"
            )
        by_index[record.shard] = path
    missing = [k for k in range(shards) if k not in by_index]
    if missing:
        listed = ", ".join(f"{k}/{shards}" for k in missing[:20])
        more = f" and {len(missing) - 20} more" if len(missing) > 20 else ""
        raise InputError(
            f"incomplete set of shards: {len(by_index)} of {shards} given, missing {listed}"
            f"{more} (K counts from 0 to {shards - 1})"
        )


def merge_manifests(paths: Iterable[Path], output: Path) -> ManifestSummary:
    """Merge manifests built separately (e.g. shards) into one, as a single build would give.

    When the inputs are shards (each has a shard record, see :func:`write_shard_record`), they
    must be every shard of one build, each the manifest its record describes.

    Raises:
        FormatError: an input is invalid, or an id appears in two inputs.
        InputError: a file cannot be read; the shards are not one complete set, or a shard
            record describes another manifest.
        LocalIOError: a file cannot be read or written (nothing is written).
    """
    inputs = list(paths)
    records = [read_shard_record(p) for p in inputs]
    _check_shard_set(inputs, records)
    digests: dict[int, str] = {}
    streams = [
        iter_manifest(p, on_digest=functools.partial(digests.__setitem__, k))
        for k, p in enumerate(inputs)
    ]

    def merged() -> Iterator[ManifestEntry]:
        yield from heapq.merge(*streams, key=ManifestEntry.sort_key)
        # Every input has been read whole by now, and nothing has been moved into place yet.
        for k, (path, record) in enumerate(zip(inputs, records, strict=True)):
            if record is not None and digests[k] != record.sha256:
                raise InputError(
                    f"{path}: its shard record {shard_record_path(path).name} describes another"
                    " manifest; rebuild this shard"
                )

    return write_manifest(merged(), output)


# ----------------------------------------------------------------------------------------------
# Hashing files


_BUFFER_SIZE = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_local = threading.local()  # each thread's read buffer
# Scheduling. Small files are hashed in tasks of up to _CHUNK_FILES files and _CHUNK_BYTES bytes
# (each task runs in one process, so the per-file cost stays that of a tight loop); a file of
# _LARGE_FILE bytes or more is a task of its own, started as early as possible. Inputs of fewer
# than _PARALLEL_FILES files and _PARALLEL_BYTES bytes are hashed in this process: starting
# processes would cost more than it saves.
_CHUNK_FILES = 512
_CHUNK_BYTES = 32 * _BUFFER_SIZE
_LARGE_FILE = 32 * _BUFFER_SIZE
_PARALLEL_FILES = 2000
_PARALLEL_BYTES = 8 * _BUFFER_SIZE
_IN_FLIGHT_PER_WORKER = 3
_STAT_FIRST = 256
_NOT_REGULAR = "not a regular file (FIFO, socket or device)"
_CHANGED = "file changed while it was being hashed"


class FileDigest(NamedTuple):
    """The outcome of hashing one file: a digest, or an error message.

    A named tuple rather than a dataclass: tens of thousands of them cross process boundaries,
    and tuples pickle several times faster.
    """

    sha256: str
    size: int
    error: str | None = None
    prints: Any = None
    """With fingerprinting: the file's :class:`provenance.fingerprints.ContentPrints`."""
    linked: bool = False
    """The file has other hard links (st_nlink > 1, seen on the descriptor hashed)."""


# Files larger than this are hashed but not fingerprinted (their content is not kept).
FINGERPRINT_MAX_BYTES = 64 * _BUFFER_SIZE


def hash_file(path: str) -> FileDigest:
    """Hash one regular file without following a final symlink and without blocking on FIFOs.

    Returns a :class:`FileDigest` whose ``error`` is set (and digest empty) when the file is not
    a regular file, cannot be read, or changed while it was read.
    """
    result = _hash_task([path])[0]
    assert isinstance(result, FileDigest)  # a task of one file is never deferred
    return result


def _hash_task(
    paths: list[str],
    fingerprint: bool = False,
    stop: threading.Event | None = None,
    on_read: Callable[[int], None] | None = None,
) -> list[FileDigest | int]:
    """Hash ``paths`` in order, in this process (the body of :func:`hash_file`, looped).

    Each file is opened without following symlinks and without blocking, checked to be a
    regular file on the open descriptor, read through a reused buffer, and checked again
    (size and mtime) after the read, so a file that changed while it was read is reported.

    In a task of several files, a file of ``_LARGE_FILE`` bytes or more is not hashed: its
    size is returned in its place, for the caller to hash it as a task of its own. Once
    ``_CHUNK_BYTES`` bytes have been read the remaining files are left out of the result, for
    the caller to queue again. So no task grows beyond what one process should do alone, even
    when the walk did not stat the files.

    With ``fingerprint``, the content of each file of at most ``FINGERPRINT_MAX_BYTES`` is kept
    and the task's files are fingerprinted together at the end (``FileDigest.prints``).
    Setting ``stop`` (from another thread) cuts a long read short; the result is then unusable.
    ``on_read`` is told the bytes of each read of a large file after the first, so that a
    progress bar moves while one big file is hashed.
    """
    buffer = getattr(_local, "buffer", None)
    if buffer is None or len(buffer) != _BUFFER_SIZE:
        buffer = _local.buffer = bytearray(_BUFFER_SIZE)
    view = memoryview(buffer)
    buffers = [view]
    alone = len(paths) == 1
    budget = _CHUNK_BYTES
    results: list[FileDigest | int] = []
    append, sha256, readv, fstat = results.append, hashlib.sha256, os.readv, os.fstat
    is_regular = stat.S_ISREG
    contents: dict[int, bytes] = {}
    for path in paths:
        if budget <= 0:
            break
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            append(FileDigest("", 0, _describe_os_error(exc)))
            continue
        try:
            before = fstat(fd)
            size = before.st_size
            if not is_regular(before.st_mode):
                append(FileDigest("", 0, _NOT_REGULAR))
                continue
            if size >= _LARGE_FILE and not alone:
                append(size)
                continue
            read = readv(fd, buffers)
            digest = sha256(view[:read])
            keep = fingerprint and size <= FINGERPRINT_MAX_BYTES
            parts = [bytes(view[:read])] if keep else []
            # A first read shorter than the buffer that returned exactly the size fstat gave is
            # the whole file, so the read that would return EOF is skipped (most files are
            # small). A file that grows or changes from here on is caught by the fstat below;
            # reading stops once more than the size has been read (a file that keeps growing
            # is reported as changed, not read forever).
            if read != size or read == _BUFFER_SIZE:
                while read <= size and (count := readv(fd, buffers)):
                    if stop is not None and stop.is_set():
                        break
                    digest.update(view[:count])
                    read += count
                    if on_read is not None:
                        on_read(count)
                    if keep:
                        parts.append(bytes(view[:count]))
            after = fstat(fd)
        except OSError as exc:
            append(FileDigest("", 0, _describe_os_error(exc)))
            continue
        finally:
            os.close(fd)
        budget -= read
        if read != size or after.st_size != size or after.st_mtime_ns != before.st_mtime_ns:
            append(FileDigest("", 0, _CHANGED))
        else:
            if keep and read <= FINGERPRINT_MAX_BYTES:
                contents[len(results)] = parts[0] if len(parts) == 1 else b"".join(parts)
            append(FileDigest(digest.hexdigest(), read, None, None, before.st_nlink > 1))
    if fingerprint:
        from provenance.fingerprints import content_prints

        # Files whose content was not kept keep prints=None (no textSha256, no fingerprints).
        # A new tuple, not _replace: several times cheaper per file.
        prints = content_prints(list(contents.values()), ordered=False)
        for k, found in zip(contents, prints, strict=True):
            kept = results[k]
            assert isinstance(kept, FileDigest)
            results[k] = FileDigest(kept.sha256, kept.size, None, found, kept.linked)
    return results


def _hash_task_in_pool(paths: list[str], fingerprint: bool) -> list[tuple[Any, ...] | int]:
    """:func:`_hash_task` for the process pool: plain tuples pickle ten times faster than
    named tuples, which matters at a few microseconds per small file."""
    return [tuple(r) if isinstance(r, FileDigest) else r for r in _hash_task(paths, fingerprint)]


def _describe_os_error(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if exc.errno == getattr(os, "ELOOP", -1):
        return "is a symlink"
    return exc.strerror or str(exc)


def _count_read(counter: list[int], count: int) -> None:
    """Add ``count`` bytes to a thread task's progress counter (only that thread writes it)."""
    counter[0] += count


class _FileRef(NamedTuple):
    """A file found by a walk. ``size`` is -1 when the walk did not stat the file."""

    id: str
    path: str
    size: int


class _Hasher:
    """Hashes the files of ``files`` it is given (while a walk may still be listing more).

    Small files are grouped into tasks as they arrive, for a process pool: the largest waiting
    task is submitted first and only a few tasks per process are in flight. The pool is started
    only once there is enough work to pay for it. A large file is a task of its own for a
    thread pool, at once: hashlib releases the GIL while it hashes, so threads hash big files
    as fast as processes without starting any. Progress (bytes) is reported only after
    :meth:`start_progress`, once the caller knows the total.
    """

    def __init__(
        self,
        files: list[_FileRef],
        workers: int,
        progress: Callable[[int], None] | None,
        *,
        fingerprint: bool = False,
    ) -> None:
        self._files = files
        self._fingerprint = fingerprint
        self._workers = workers
        self._progress = progress
        self._progress_ready = False
        self._progress_held = 0
        self._waiting: list[tuple[int, int, list[int]]] = []  # heap of (-bytes, seq, indexes)
        self._sequence = 0
        self._current: list[int] = []
        self._current_bytes = 0
        self._seen_files = 0
        self._seen_bytes = 0
        self._pool: ProcessPoolExecutor | None = None
        self._threads: ThreadPoolExecutor | None = None
        self._stop = threading.Event()
        self._running: dict[Future[list[Any]], list[int]] = {}
        # Bytes read so far by each thread task, and how many of them were reported already.
        self._partial: dict[Future[list[Any]], list[int]] = {}
        self.results: dict[int, FileDigest] = {}

    def add(self, index: int) -> None:
        """Queue ``files[index]`` for hashing."""
        size = self._files[index].size
        if size >= _LARGE_FILE:
            self._queue([index], size)
            return
        self._seen_files += 1
        self._current.append(index)
        if size > 0:
            self._seen_bytes += size
            self._current_bytes += size
        if len(self._current) < _CHUNK_FILES and self._current_bytes < _CHUNK_BYTES:
            return
        self._queue(self._current, self._current_bytes)
        self._current, self._current_bytes = [], 0
        self._start_pool()
        self._pump(block=False)

    def _start_pool(self) -> None:
        if (
            self._pool is None
            and self._workers > 1
            and (self._seen_files >= _PARALLEL_FILES or self._seen_bytes >= _PARALLEL_BYTES)
        ):
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
            if self._fingerprint:
                # Imported once here, not in every worker (forked workers inherit modules).
                import provenance.fingerprints  # noqa: F401
            _flush_std_streams()
            self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=context)

    def add_unsized(self, indexes: range) -> None:
        """Queue files of unknown size (``size`` -1): tasks of ``_CHUNK_FILES`` files."""
        self._seen_files += len(indexes)
        current = self._current
        current.extend(indexes)
        if len(current) < _CHUNK_FILES:
            return
        for start in range(0, len(current) - _CHUNK_FILES + 1, _CHUNK_FILES):
            self._queue(current[start : start + _CHUNK_FILES], self._current_bytes)
            self._current_bytes = 0
        self._current = current[len(current) - len(current) % _CHUNK_FILES :]
        self._start_pool()
        self._pump(block=False)

    def submit_all(self) -> None:
        """Hand every queued task to the pool now (largest first): the caller is about to be
        busy with other work and would not keep the workers fed."""
        if self._current:
            self._queue(self._current, self._current_bytes)
            self._current, self._current_bytes = [], 0
        while self._pool is not None and self._waiting:
            _, _, task = heapq.heappop(self._waiting)
            paths = [self._files[i].path for i in task]
            self._running[self._pool.submit(_hash_task_in_pool, paths, self._fingerprint)] = task

    def start_progress(self) -> None:
        """Report the progress held back so far, and from now on as it happens."""
        self._progress_ready = True
        self._report(0)

    def finish(self) -> dict[int, FileDigest]:
        """Hash everything still queued and return the digests by file index."""
        if self._current:
            self._queue(self._current, self._current_bytes)
            self._current, self._current_bytes = [], 0
        while self._waiting or self._running:
            if self._pool is None and self._waiting:  # little work: hash it in this process
                _, _, task = heapq.heappop(self._waiting)
                paths = [self._files[i].path for i in task]
                self._store(task, _hash_task(paths, self._fingerprint))
            else:
                self._pump(block=True)
        for pool in (self._pool, self._threads):
            if pool is not None:
                pool.shutdown()
        self._pool = self._threads = None
        return self.results

    def close(self) -> None:
        """Stop the workers at once (after an error): nothing they compute is needed."""
        self._stop.set()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None
        if self._pool is not None:
            processes = list(getattr(self._pool, "_processes", None) or {})
            self._pool.shutdown(wait=False, cancel_futures=True)
            for pid in processes:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)
            self._pool = None

    def _queue(self, task: list[int], size: int) -> None:
        if len(task) == 1 and size >= _LARGE_FILE and self._workers > 1:
            if self._threads is None:
                from concurrent.futures import ThreadPoolExecutor

                self._threads = ThreadPoolExecutor(self._workers, "provenance-hash")
            path = self._files[task[0]].path
            counter = [0, 0]
            on_read = None if self._progress is None else functools.partial(_count_read, counter)
            future = self._threads.submit(
                _hash_task, [path], self._fingerprint, self._stop, on_read
            )
            self._running[future] = task
            self._partial[future] = counter
            return
        self._sequence += 1
        heapq.heappush(self._waiting, (-size, self._sequence, task))

    def _pump(self, *, block: bool) -> None:
        if self._running:
            # While big files hash on threads, wake up now and then to move the progress bar.
            timeout: float | None = None if block else 0
            if block and self._partial and self._progress is not None:
                timeout = 0.2
            done, _ = wait(self._running, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                counter = self._partial.pop(future, None)
                reported = counter[1] if counter is not None else 0
                self._store(self._running.pop(future), future.result(), reported)
            for counter in self._partial.values():
                if counter[0] > counter[1]:
                    self._report(counter[0] - counter[1])
                    counter[1] = counter[0]
        while (
            self._pool
            and self._waiting
            and len(self._running) < self._workers * _IN_FLIGHT_PER_WORKER
        ):
            _, _, task = heapq.heappop(self._waiting)
            paths = [self._files[i].path for i in task]
            future = self._pool.submit(_hash_task_in_pool, paths, self._fingerprint)
            self._running[future] = task

    def _store(self, task: list[int], results: list[Any], reported: int = 0) -> None:
        # ``reported``: bytes of this task already shown on the progress bar while it ran.
        done = -reported
        for index, result in zip(task, results, strict=False):
            if isinstance(result, int):  # a large file in a task of small ones: a task of its own
                self._queue([index], result)
                continue
            digest = result if type(result) is FileDigest else FileDigest._make(result)
            self.results[index] = digest
            done += digest.size
        if len(results) < len(task):  # the task's byte budget ran out: queue the rest again
            self._queue(task[len(results) :], 0)
        self._report(max(done, 0))

    def _report(self, size: int) -> None:
        if self._progress is None:
            return
        if not self._progress_ready:
            self._progress_held += size
        elif self._progress_held or size:
            self._progress(self._progress_held + size)
            self._progress_held = 0


def hash_files(
    files: list[_FileRef], *, workers: int, progress: Callable[[int], None] | None = None
) -> list[FileDigest]:
    """Hash ``files`` on ``workers`` processes, returning digests in the same order."""
    hasher = _Hasher(files, workers, progress)
    hasher.start_progress()
    try:
        for index in range(len(files)):
            hasher.add(index)
        results = hasher.finish()
    finally:
        hasher.close()
    return [results[i] for i in range(len(files))]


# ----------------------------------------------------------------------------------------------
# Walking a directory

SymlinkPolicy = Literal["skip", "error"]


@dataclass(slots=True)
class WalkStats:
    """What a walk of a directory left out or noticed, for the caller to report.

    Filled in by :func:`walk_files`, :func:`hash_tree` and :func:`build_from_directory` when
    given one (``hard_linked`` only by the last two, which open every file).
    """

    symlinks: int = 0
    """Symlinks skipped (never followed)."""
    symlinks_outside: int = 0
    """Of those, the ones that resolve to a path outside the root (or dangle there)."""
    excluded_files: int = 0
    """Files (and symlinks) left out by an exclusion pattern."""
    excluded_dirs: int = 0
    """Directories left out, with everything under them, by an exclusion pattern."""
    hard_linked: int = 0
    """Files hashed that have more than one hard link (st_nlink > 1): another name for the
    same content, possibly outside the root, can change them."""


def exclusion_matcher(patterns: Iterable[str]) -> Callable[[str], bool] | None:
    """Return a matcher for .gitignore-style ``patterns`` over ids, or None when there are none.

    The patterns are those of a card spec's source ``paths`` (pathspec's ``gitignore``
    flavour): ``*`` stays within a segment, ``**`` spans any number, a pattern without a slash
    matches at any depth, ``dir/`` matches a directory (and so everything under it), ``!``
    re-includes. A directory is tested as its id with a trailing slash.

    Raises:
        InputError: a pattern is empty or invalid.
    """
    patterns = list(patterns)
    if not patterns:
        return None
    import pathspec

    for pattern in patterns:
        if not pattern.strip():
            raise InputError("an exclusion pattern is empty")
    try:
        spec = pathspec.PathSpec.from_lines("gitignore", patterns)
    except (ValueError, TypeError) as exc:
        raise InputError(f"invalid exclusion pattern: {exc}") from None
    return spec.match_file


def _plain_name(name: str) -> bool:
    """True if ``name`` can be part of an id as it is: printable ASCII (most names, two C
    calls), or otherwise valid UTF-8 that follows the id rules (:func:`id_problem`)."""
    if name.isascii():
        return name.isprintable()
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return id_problem(name) is None


def _is_utf8(name: str) -> bool:
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_name(root: str, parts: tuple[str, ...], *, check_ids: bool = True) -> NoReturn:
    """Raise the error for the first part of ``parts`` (a path under ``root``) that cannot be
    part of an id: not UTF-8, a control or bidi control, or not NFC (naming the NFC spelling
    too when both exist side by side).

    Raises:
        UnsafePathError: always.
    """
    for depth, part in enumerate(parts):
        where = os.path.join(root, *parts[: depth + 1])
        try:
            part.encode("utf-8")
        except UnicodeEncodeError:
            raw = os.fsencode(part)
            raise UnsafePathError(
                f"{where}: file name {raw!r} is not valid UTF-8; rename it or exclude it"
            ) from None
        problem = id_problem(part) if check_ids else None
        if problem is None:
            continue
        if not unicodedata.is_normalized("NFC", part) and _FORBIDDEN_CHAR.search(part) is None:
            twin = os.path.join(root, *parts[:depth], unicodedata.normalize("NFC", part))
            if os.path.lexists(twin):
                raise UnsafePathError(
                    f"{ascii(where)} and {ascii(twin)}: one name in two Unicode spellings"
                    " (ids must be NFC, the second); keep one of them"
                )
            raise UnsafePathError(
                f"{where}: file name is not in Unicode normalization form NFC ({ascii(part)});"
                " rename it to NFC or exclude it"
            )
        raise UnsafePathError(f"{where}: file name {part!r} {problem}; rename it or exclude it")
    raise AssertionError("no bad part")  # pragma: no cover - callers pass a bad name


def _walk(
    root: Path,
    exclude: set[str] | None,
    stat_files: int,
    *,
    ignore: Callable[[str], bool] | None = None,
    symlinks: SymlinkPolicy = "skip",
    stats: WalkStats | None = None,
    check_ids: bool = True,
) -> Iterator[list[_FileRef]]:
    """Yield the regular files under ``root``, one directory's worth at a time (unsorted).

    The first ``stat_files`` files are stat'ed for their size; later ones get size -1 and are
    told apart from special files by the directory entry's type alone (no system call), which
    is what makes walking cheap. The hashing re-checks every file on its open descriptor.
    ``ignore`` (from :func:`exclusion_matcher`) leaves out the ids it matches; an excluded
    directory is not entered.

    Raises: as :func:`walk_files`, when the offending entry is reached.
    """
    if not root.is_dir():
        if not os.path.lexists(root):
            raise InputError(f"{root}: no such directory")
        raise InputError(f"{root}: not a directory")
    real_root = os.path.realpath(root)
    root_text = str(root)
    excluded = exclude or set()
    stats = stats if stats is not None else WalkStats()
    # realpath() costs a few system calls: only a file named like an excluded one needs it.
    excluded_names = {os.path.basename(p) for p in excluded}
    plain = _plain_name if check_ids else _is_utf8
    stack: list[tuple[str, tuple[str, ...]]] = [(root_text, ())]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as iterator:
                entries = list(iterator)
        except OSError as exc:
            raise LocalIOError(
                f"{directory}: cannot list directory: {_describe_os_error(exc)}"
            ) from None
        prefix_ok = all(plain(part) for part in prefix)
        prefix_id = "".join(f"{part}/" for part in prefix)
        batch: list[_FileRef] = []
        for item in entries:
            name = item.name
            try:
                if stat_files <= 0 and item.is_file(follow_symlinks=False):
                    # A regular file by its directory entry (most entries; no system call).
                    regular, size = True, -1
                elif item.is_symlink():
                    if ignore is not None and ignore(prefix_id + name):
                        stats.excluded_files += 1
                        continue
                    target = os.path.realpath(item.path)
                    outside = os.path.commonpath([real_root, target]) != real_root
                    if outside and symlinks == "error":
                        raise UnsafePathError(
                            f"{item.path}: symlink points out of the data root (to {target})"
                        )
                    stats.symlinks += 1
                    stats.symlinks_outside += outside
                    continue
                elif item.is_dir(follow_symlinks=False):
                    if ignore is not None and ignore(f"{prefix_id}{name}/"):
                        stats.excluded_dirs += 1
                    else:
                        stack.append((item.path, (*prefix, name)))
                    continue
                elif stat_files > 0:
                    stat_files -= 1
                    info = item.stat(follow_symlinks=False)
                    regular, size = stat.S_ISREG(info.st_mode), info.st_size
                else:
                    regular, size = item.is_file(follow_symlinks=False), -1
            except OSError as exc:
                raise LocalIOError(f"{item.path}: {_describe_os_error(exc)}") from None
            if ignore is not None and ignore(prefix_id + name):
                stats.excluded_files += 1
                continue
            if not regular:
                raise UnsafePathError(f"{item.path}: {_NOT_REGULAR}")
            if name in excluded_names and os.path.realpath(item.path) in excluded:
                continue
            if not (prefix_ok and plain(name)):
                _refuse_name(root_text, (*prefix, name), check_ids=check_ids)
            batch.append(_FileRef(prefix_id + name, item.path, size))
        yield batch


def walk_files(
    root: Path,
    *,
    exclude: set[str] | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: SymlinkPolicy = "skip",
    stats: WalkStats | None = None,
    check_ids: bool = True,
) -> list[_FileRef]:
    """List every regular file under ``root`` as (id, path, size), sorted by id.

    ``exclude`` holds real paths to leave out (an output written inside the root); ``ignore``
    (see :func:`exclusion_matcher`) ids to leave out. Symlinks are never followed: with
    ``symlinks="skip"`` every symlink is skipped (counted in ``stats``); with ``"error"`` one
    that points out of ``root`` is an error and the others are skipped. A file's id is its
    path relative to ``root``, which must follow the id rules (:func:`id_problem`) unless
    ``check_ids`` is false (files that are not dataset entries, such as a creator's works;
    their names must still be UTF-8, and are then to be printed escaped).

    Raises:
        InputError: ``root`` is missing or not a directory.
        UnsafePathError: a special file, a name that is not UTF-8, holds a control character
            or is not NFC (one with an NFC twin beside it names both), or with
            ``symlinks="error"`` a symlink out of the root.
        LocalIOError: a directory cannot be listed.
    """
    files = [
        ref
        for batch in _walk(
            root,
            exclude,
            sys.maxsize,
            ignore=ignore,
            symlinks=symlinks,
            stats=stats,
            check_ids=check_ids,
        )
        for ref in batch
    ]
    files.sort(key=lambda f: f.id)
    return files


def hash_tree(
    root: Path,
    *,
    workers: int,
    select: Callable[[str], bool] | None = None,
    exclude: set[str] | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: SymlinkPolicy = "skip",
    stats: WalkStats | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    fingerprint: bool = False,
    while_hashing: Callable[[], None] | None = None,
) -> list[tuple[_FileRef, FileDigest | None]]:
    """Walk ``root`` as :func:`walk_files` does and hash the files whose id ``select`` accepts.

    Hashing starts while the walk is still listing files. ``on_total`` is called once with the
    bytes to hash when the walk is complete, before any ``progress`` call; without it, files
    are not stat'ed during the walk (their sizes come from hashing), which is faster. Then
    ``while_hashing`` is called, in this process, while the worker processes hash (its
    exceptions propagate, and stop the workers). With ``fingerprint``, each digest also
    carries the file's fingerprints (``FileDigest.prints``). ``stats`` also counts the hashed
    files that have other hard links.

    Returns:
        Every file found, in walk order, with its :class:`FileDigest` (``None`` for files not
        selected). Hashing problems are reported in the digests, not raised.

    Raises:
        InputError, UnsafePathError, LocalIOError: as :func:`walk_files`.
    """
    found: list[_FileRef] = []  # every file
    files: list[_FileRef] = []  # the selected ones, which the hasher indexes
    hasher = _Hasher(files, workers, progress, fingerprint=fingerprint)
    # Without a total to report, only the first files are stat'ed: enough to see whether the
    # input is a few big files (then hashed at once on threads) or many small ones.
    stat_files = sys.maxsize if on_total else _STAT_FIRST
    try:
        total = 0
        for batch in _walk(
            root, exclude, stat_files, ignore=ignore, symlinks=symlinks, stats=stats
        ):
            found.extend(batch)
            start = len(files)
            files.extend(batch if select is None else [f for f in batch if select(f.id)])
            # The walk stats only its first files: known sizes come first, then -1 for all.
            unsized = start
            while unsized < len(files) and files[unsized].size >= 0:
                total += files[unsized].size
                hasher.add(unsized)
                unsized += 1
            if unsized < len(files):
                hasher.add_unsized(range(unsized, len(files)))
        if on_total:
            on_total(total)
        hasher.start_progress()
        if while_hashing is not None:
            hasher.submit_all()
            while_hashing()
        results = hasher.finish()
    finally:
        hasher.close()
    if stats is not None:
        stats.hard_linked += sum(map(_LINKED, results.values()))
    if select is None:
        return [(ref, results[i]) for i, ref in enumerate(files)]
    hashed: list[tuple[_FileRef, FileDigest | None]] = []
    index = 0
    for ref in found:
        if index < len(files) and files[index] is ref:
            hashed.append((ref, results[index]))
            index += 1
        else:
            hashed.append((ref, None))
    return hashed


def _in_shard(entry_id: str, shard: tuple[int, int] | None) -> bool:
    if shard is None:
        return True
    index, count = shard
    return zlib.crc32(entry_id.encode("utf-8")) % count == index


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``K/N`` (0 <= K < N).

    Raises:
        InputError: not of that form.
    """
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise InputError(f"shard {text!r}: expected K/N with 0 <= K < N, e.g. 0/4")
    return int(match[1]), int(match[2])


def build_from_directory(
    root: Path,
    *,
    workers: int,
    shard: tuple[int, int] | None = None,
    exclude: set[str] | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: SymlinkPolicy = "skip",
    stats: WalkStats | None = None,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    prints: dict[str, Any] | None = None,
) -> list[ManifestEntry]:
    """Hash every regular file under ``root`` and return the entries in manifest order.

    ``exclude``, ``ignore``, ``symlinks`` and ``stats`` are those of :func:`walk_files` (and
    ``stats`` counts hashed files with other hard links). With ``prints`` (a dict), files are
    also fingerprinted: text entries get ``textSha256`` and ``prints`` gets each entry id's
    :class:`provenance.fingerprints.ContentPrints` that has near-duplicate fingerprints (for
    the sidecar, :mod:`provenance.fpindex`).

    Raises:
        InputError, UnsafePathError: see :func:`walk_files`.
        LocalIOError: a file cannot be read or changed while it was hashed (the path is named;
            with several such files, the first by id).
    """
    select = None if shard is None else (lambda entry_id: _in_shard(entry_id, shard))
    hashed = hash_tree(
        root,
        workers=workers,
        select=select,
        exclude=exclude,
        ignore=ignore,
        symlinks=symlinks,
        stats=stats,
        progress=progress,
        on_total=on_total,
        fingerprint=prints is not None,
    )
    entries = []
    failed: list[tuple[_FileRef, str]] = []
    for ref, digest in hashed:
        if digest is None:
            continue
        if digest.error is not None:
            failed.append((ref, digest.error))
            continue
        found = digest.prints
        if found is None:
            entries.append(ManifestEntry(id=ref.id, sha256=digest.sha256, size=digest.size))
            continue
        entries.append(
            ManifestEntry(
                id=ref.id, sha256=digest.sha256, size=digest.size, textSha256=found.text_sha256
            )
        )
        if prints is not None and (len(found.text) or found.image is not None):
            prints[ref.id] = found
    if failed:
        ref, error = min(failed, key=lambda f: f[0].id)
        error_type: type[ProvenanceError] = LocalIOError if "changed" in error else UnsafePathError
        if error == "permission denied":
            error_type = InputError
        raise error_type(f"{ref.path}: {error}")
    _sort_entries(entries)
    return entries


def _sort_entries(entries: list[ManifestEntry]) -> None:
    """Sort into manifest order, (sha256, id). Comparing strings is three times faster than
    comparing (sha256, id) tuples, so sort by digest, and by both only if digests repeat."""
    entries.sort(key=_SHA256)
    shas = list(map(_SHA256, entries))
    if any(map(operator.eq, shas, shas[1:])):  # the same content under several ids
        entries.sort(key=_SORT_KEY)


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


def build_from_records(
    path: Path,
    *,
    shard: tuple[int, int] | None = None,
    progress: Callable[[int], None] | None = None,
    prints: dict[str, Any] | None = None,
    columns: Columns | None = None,
) -> list[ManifestEntry]:
    """Hash every record of a records file and return the entries in manifest order.

    ``columns`` says which column holds each field (default: the fields' own names). A record
    id that appears twice is an error naming the file and both lines.

    A record's digest is the SHA-256 of its content: the UTF-8 bytes of ``text``, the file at
    ``path`` (relative to the records file's directory, never outside it), or the given
    ``sha256``. With ``prints`` (a dict), contents are fingerprinted as in
    :func:`build_from_directory` (records given only by ``sha256`` have no content to).

    Raises:
        InputError, FormatError, UnsafePathError, LocalIOError: a bad row or file, named.
    """
    from provenance.records import DEFAULT_COLUMNS, iter_records, safe_join, text_digest

    if not os.path.lexists(path):
        # Neither a directory nor a records file: say so, rather than guess a format from it.
        raise InputError(f"{path}: no such file or directory")
    base = path.parent
    entries: list[ManifestEntry] = []
    # Records waiting to be fingerprinted together: (fields, text content, ready prints, where).
    pending: list[tuple[dict[str, Any], bytes | None, Any, str]] = []

    def flush() -> None:
        from provenance.fingerprints import content_prints

        texts = [(k, item[1]) for k, item in enumerate(pending) if item[1] is not None]
        made = content_prints([t for _, t in texts], ordered=False)
        found = dict(zip([k for k, _ in texts], made, strict=True))
        for k, (fields, _, ready, where) in enumerate(pending):
            result = found.get(k, ready)
            if result is not None:
                fields["textSha256"] = result.text_sha256
                if prints is not None and (len(result.text) or result.image is not None):
                    prints[fields["id"]] = result
            entries.append(entry_from_mapping(fields, what=where))
        pending.clear()

    for record in iter_records(path, columns=columns or DEFAULT_COLUMNS, unique_ids=True):
        if not _in_shard(record.id, shard):
            continue
        where = f"{path}: record {record.id!r}"
        size: int | None
        ready: Any = None
        if record.text is not None:
            try:
                digest, size = text_digest(record.text)
            except FormatError as exc:
                raise FormatError(f"{where}: {exc}") from None
        elif record.path is not None:
            task = _hash_task([safe_join(base, record.path, what=where)], prints is not None)
            result = task[0]
            assert isinstance(result, FileDigest)  # a task of one file is never deferred
            ready = result.prints
            if result.error is not None:
                raise (LocalIOError if "changed" in result.error else InputError)(
                    f"{where}: {record.path}: {result.error}"
                )
            digest, size = result.sha256, result.size
        else:
            assert record.sha256 is not None
            digest, size = record.sha256, record.size
        fields = {
            "id": record.id,
            "sha256": digest,
            "size": size,
            "source": record.source,
            "url": record.url,
            "license": record.license,
            "rightsHolder": record.rights_holder,
        }
        if prints is None:
            entries.append(entry_from_mapping(fields, what=where))
        else:
            text = record.text.encode("utf-8") if record.text is not None else None
            pending.append((fields, text, ready, where))
            if len(pending) >= 512:
                flush()
        if progress:
            progress(size or 0)
    flush()
    _sort_entries(entries)
    return entries
