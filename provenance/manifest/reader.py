"""Reading a manifest: one checked pass that yields entries, then what they add up to.

A manifest is read in blocks of whole lines. :class:`BlockChecker` (pure: it is handed bytes and
does no I/O) decodes a block with one msgspec call and checks it with a few calls that loop in C;
only a block that fails a check is gone through line by line, which finds and names the bad line
exactly as a reader of single lines would. :class:`ManifestReader` (the I/O shell) reads the
file once, hands each block to the checker, hashes the same bytes for the file digest and the
Merkle root, and, once the file is exhausted, holds the :class:`ManifestSummary` of exactly the
bytes whose entries it yielded.

Whoever checks a manifest against a card reads it once through a :class:`ManifestReader` given
the card's commitment, and uses what it yields only once the summary matches it
(:meth:`ManifestReader.check`, or :func:`read_committed` which does both): the entries judged
are then the entries the card commits to, even if the file is replaced during the pass.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, NoReturn, Protocol, TypeVar

import msgspec

from provenance._files import open_input
from provenance._hex import sha256_hex_digests
from provenance.errors import DigestMismatchError, FormatError, LocalIOError, ProvenanceError
from provenance.manifest._leaves import LeafTree, LeafTreeProcess, leaf_tree
from provenance.manifest.entry import (
    _ID,
    _SHA256,
    _SIZE,
    _TEXT_SHA256,
    MAX_LINE_BYTES,
    ManifestEntry,
    _all_hex,
    _decoder,
    _encoder,
    _ids_fine,
    _ids_suspect,
    _in_order,
    _OrderState,
    decode_entry,
    entry_lines,
)

T = TypeVar("T")


class CommittedManifest(Protocol):
    """What a card says of its manifest (:class:`provenance.card.ManifestCommitment`)."""

    @property
    def entries(self) -> int:
        """The entry count."""
        ...

    @property
    def bytes(self) -> int:
        """The total of the entries' sizes."""
        ...

    @property
    def merkle_root(self) -> str:
        """The RFC 9162 root of the lines (hex)."""
        ...


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    """What a card commits to: the file digest, the entry count, total bytes and Merkle root.

    Computed by reading a manifest (:attr:`ManifestReader.summary`), or taken from a verified
    card (:meth:`from_card`); a manifest is the one a card commits to when the two are equal.
    """

    digest: str
    entries: int
    total_bytes: int
    root: str

    @classmethod
    def from_card(cls, digest: str, manifest: CommittedManifest) -> ManifestSummary:
        """The commitment of a verified card: its subject ``digest`` and its predicate's
        manifest commitment (``entries``, ``bytes``, ``merkle_root``)."""
        return cls(digest, manifest.entries, manifest.bytes, manifest.merkle_root)

    def differences(self, committed: ManifestSummary) -> list[str]:
        """Say what differs from ``committed``, one phrase per field (empty when equal)."""
        return [
            f"{name} {mine}, card says {theirs}"
            for name, mine, theirs in (
                ("sha256", self.digest, committed.digest),
                ("entries", self.entries, committed.entries),
                ("bytes", self.total_bytes, committed.total_bytes),
                ("Merkle root", self.root, committed.root),
            )
            if mine != theirs
        ]


@dataclass(frozen=True, slots=True)
class Manifest:
    """A loaded manifest: entries in order plus the summary computed while reading them."""

    entries: list[ManifestEntry]
    summary: ManifestSummary


class ManifestBlock(NamedTuple):
    """Checked entries and the exact bytes of their lines."""

    entries: list[ManifestEntry]
    data: bytes
    """The lines of ``entries`` as read, each ending with a newline."""
    offset: int
    """Where ``data`` starts in the file."""
    first: int
    """The position (from 0) of the first entry in the manifest: its line number minus one."""


_READ_BLOCK = 1 << 20
_LINE_WINDOW = MAX_LINE_BYTES // 2


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


class CheckedEntries(list[ManifestEntry]):
    """The entries of a block that passed the fast check, with what the check computed on the
    way, so that whoever matches them need not compute it again: read it, do not change the
    list (a changed list no longer matches it). Matching uses these digests instead of the
    entries' own, so they are decoded only by the exact check (docs/security.md B10)."""

    __slots__ = ("digests", "has_texts", "ids")

    def __init__(
        self,
        entries: list[ManifestEntry],
        *,
        digests: bytes,
        ids: list[str],
        has_texts: bool,
    ) -> None:
        super().__init__(entries)
        self.digests = digests
        """The entries' ``sha256`` digests, 32 bytes each, in order."""
        self.ids = ids
        """The entries' ids, in order: the strings the checker keeps (the ids seen so far) for
        as long as the manifest is read."""
        self.has_texts = has_texts
        """Whether some entry has a ``textSha256``."""


# Of the keys a canonical line may hold, only "textSha256" has an "S" and only "size" a "z",
# and hex digits have neither: a block without the letter has no entry with the key. A
# one-byte search (memchr) spares most blocks of records a pass over their entries.
_MAYBE_TEXT_SHA256 = b"S"
_MAYBE_SIZE = b"z"


def _check_block(block: bytes, state: _OrderState) -> CheckedEntries | None:
    """Decode and check a block of whole lines at C speed; None if any check fails.

    Every check :meth:`BlockChecker.lines` makes per line holds for all lines when this returns
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
    if not entries or _encoder.encode_lines(entries) != block:
        return None
    has_texts = _MAYBE_TEXT_SHA256 in block and any(map(_TEXT_SHA256, entries))
    if has_texts and not _all_hex([t for t in map(_TEXT_SHA256, entries) if t is not None]):
        return None
    shas = list(map(_SHA256, entries))
    digests = sha256_hex_digests(shas)
    if digests is None:
        return None
    listed = list(map(_ID, entries))
    if _ids_suspect(block, listed) and not _ids_fine(listed):
        return None
    if not _in_order(entries, state.previous, shas):
        return None
    seen_ids = state.seen_ids
    if not seen_ids.isdisjoint(listed):
        return None
    known = len(seen_ids)
    seen_ids.update(listed)
    if len(seen_ids) != known + len(listed):  # an id repeats within the block
        seen_ids.difference_update(listed)  # all of them were new: the state is as it was
        return None
    last = entries[-1]
    state.previous = (last.sha256, last.id)
    if _MAYBE_SIZE in block:
        state.total += sum(filter(None, map(_SIZE, entries)))
    return CheckedEntries(entries, digests=digests, ids=listed, has_texts=has_texts)


class BlockChecker:
    """Checks a manifest handed to it in blocks of whole lines, in order. Does no I/O.

    Each line must be a valid entry (the schema's constraints), exactly its canonical form, with
    an id that follows the id rules; keys strictly increase and no id repeats. Errors name the
    line (``what:number``).
    """

    def __init__(self, what: str) -> None:
        """``what`` names the manifest in errors."""
        self._what = what
        self._state = _OrderState()
        self.count = 0
        """Entries checked so far."""

    @property
    def total_bytes(self) -> int:
        """The sum of the sizes of the entries checked so far."""
        return self._state.total

    def block(self, block: bytes) -> CheckedEntries | None:
        """Return the entries of ``block`` if every line passes (at C speed), else None: then
        :meth:`lines` finds the bad line. The state is unchanged when this returns None."""
        entries = _check_block(block, self._state)
        if entries is not None:
            self.count += len(entries)
        return entries

    def lines(self, block: bytes) -> Iterator[ManifestEntry]:
        """Check ``block`` line by line, yielding each good entry, raising at the first bad one.

        Raises:
            FormatError: a line is invalid, not canonical, out of order or too long, an id
                repeats, or the last line has no newline.
        """
        what, state = self._what, self._state
        lines = block.split(b"\n")
        tail = lines.pop()  # b"" when the block ends with a newline
        seen_ids = state.seen_ids
        for line in lines:
            number = self.count + 1
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
            self.count += 1
            yield entry
        if tail:
            number = self.count + 1
            if len(tail) > MAX_LINE_BYTES:
                raise FormatError(f"{what}:{number}: line longer than {MAX_LINE_BYTES} bytes")
            raise FormatError(f"{what}:{number}: last line has no newline (truncated file?)")


def _read_blocks(handle: BinaryIO, file_hash: Any = None) -> Iterator[bytes]:
    """Yield the file in blocks of whole lines; a last block without a final newline, or a
    block that is one line longer than MAX_LINE_BYTES without a newline yet, ends it.

    ``file_hash`` (a hashlib object) is updated with every byte as it is read, so that it holds
    the bytes read so far even when the consumer stops at a bad line.
    """
    rest = b""
    while True:
        data = handle.read(_READ_BLOCK)
        if file_hash is not None:
            file_hash.update(data)
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


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class ManifestReader:
    """One checked read of the manifest file at ``path``.

    Iterate it (entries) or its :meth:`blocks` (entries with their line bytes), once. Every
    line is checked as it is read (:class:`BlockChecker`); the SHA-256 of the file and the
    Merkle root of its lines are computed from the same bytes, so once the file is exhausted
    :attr:`summary` describes exactly the entries yielded. The file is opened when iteration
    starts and closed when it ends (or at :meth:`close`).

    With ``committed`` (the summary a verified card commits to, :meth:`ManifestSummary.from_card`)
    the reader tells a file that is not the committed one apart from a malformed one: a line
    that fails its check in a file whose digest (of the whole file, read on without checking)
    is not the committed one raises :class:`DigestMismatchError` rather than the format error.
    Use what was yielded only after :meth:`check` (or use :func:`read_committed`).
    """

    def __init__(self, path: Path, *, committed: ManifestSummary | None = None) -> None:
        """Prepare to read ``path`` (nothing is opened yet)."""
        self.path = path
        self.committed = committed
        self._summary: ManifestSummary | None = None
        self._blocks: Iterator[ManifestBlock] | None = None
        self._failed = False
        self.changed = False
        """Set once the file is exhausted: it was replaced, or its size or modification time
        changed, while it was read (the summary still describes exactly the bytes read)."""
        self.file_size = 0
        """The bytes read so far (the file's size once it is exhausted)."""

    def blocks(self) -> Iterator[ManifestBlock]:
        """Start the read: yield the checked entries a block at a time (near a bad line, one
        at a time, so that the entries before it are yielded before the error).

        Raises:
            RuntimeError: the reader was iterated before (it reads its file once).
            InputError: the file is missing, not a regular file, or unreadable.
            FormatError: a line is invalid, not canonical, out of order, or an id repeats.
            DigestMismatchError: with ``committed``, such a line in a file that is not the
                committed one.
            LocalIOError: the file cannot be read, or changed while the Merkle root was
                computed from it in another process.
        """
        if self._blocks is not None:
            raise RuntimeError(f"{self.path}: a ManifestReader reads its file once")
        self._blocks = self._read()
        return self._blocks

    def __iter__(self) -> Iterator[ManifestEntry]:
        """Start the read: yield the checked entries (see :meth:`blocks`)."""
        for block in self.blocks():
            yield from block.entries

    @property
    def summary(self) -> ManifestSummary:
        """The digest, entry count, total bytes and Merkle root of the file read.

        Raises:
            RuntimeError: the file has not been read to its end.
        """
        if self._summary is None:
            raise RuntimeError(f"{self.path}: the manifest has not been read to its end")
        return self._summary

    def finish(self) -> ManifestSummary:
        """Read (and check) whatever the consumer left, and return the summary.

        Raises:
            as :meth:`blocks`.
        """
        if self._blocks is None:
            self.blocks()
        assert self._blocks is not None
        if self._summary is None and not self._failed:
            for _ in self._blocks:
                pass
        return self.summary

    def check(self) -> ManifestSummary:
        """Finish the read and hold its summary against ``committed``.

        Returns:
            The summary, equal to ``committed``.

        Raises:
            DigestMismatchError: the bytes read are not the manifest committed to (saying so,
                and that the file changed while it was read when it did).
            ValueError: the reader has no ``committed`` summary.
            as :meth:`blocks`.
        """
        if self.committed is None:
            raise ValueError("ManifestReader.check needs the committed summary")
        summary = self.finish()
        if summary == self.committed:
            return summary
        changed = "changed while it was read: " if self.changed else ""
        if summary.digest != self.committed.digest:
            raise DigestMismatchError(
                f"{self.path}: {changed}sha256 {summary.digest} is not the manifest the card"
                f" commits to ({self.committed.digest})"
            )
        raise DigestMismatchError(
            f"{self.path}: its entry count, bytes or Merkle root differ from the card's"
            f" ({'; '.join(summary.differences(self.committed))})"
        )

    def consume(self, consume: Callable[[Iterator[ManifestEntry]], T]) -> T:
        """Stream the entries into ``consume`` (this read), and return what it returns only if
        the bytes read are the manifest ``committed`` describes.

        ``consume`` sees entries before the commitment can be checked (it is checked once the
        file is exhausted), so it must not act on them beyond computing its result. When it
        raises a :class:`ProvenanceError` (an entry it refuses), the rest of the file is read
        first: an entry of a manifest that is not the committed one is reported as the digest
        mismatch it is. Whatever ``consume`` leaves unread is read and checked too.

        Raises:
            DigestMismatchError: the file's digest, entry count, bytes or Merkle root differ
                from ``committed`` (also when a line is malformed in a file that is not the
                committed one, or ``consume`` refused an entry of one).
            InputError, FormatError, LocalIOError: as :meth:`blocks`; or what ``consume``
                raised, for the committed manifest.
            ValueError: the reader has no ``committed`` summary.
        """
        if self.committed is None:
            raise ValueError("ManifestReader.consume needs the committed summary")
        try:
            try:
                result = consume(iter(self))
            except ProvenanceError as exc:
                if self._failed:
                    raise
                try:
                    self.check()
                except DigestMismatchError as mismatch:
                    raise mismatch from exc
                raise
            self.check()
            return result
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading and close the file (the summary stays unavailable if unfinished)."""
        if self._blocks is not None and hasattr(self._blocks, "close"):
            self._blocks.close()

    def __enter__(self) -> ManifestReader:
        """Use as a context manager that closes the file on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the file."""
        self.close()

    def _read(self) -> Iterator[ManifestBlock]:
        path = self.path
        if path.name == "index.json" or path.is_dir():  # a partitioned manifest
            yield from self._read_partitioned()
            return
        what = str(path)
        try:
            handle = open_input(path, kind="manifest file")
        except BaseException:
            self._failed = True
            raise
        tree: LeafTree | LeafTreeProcess | None = None
        file_hash = hashlib.sha256()
        try:  # the handle is closed in the finally below
            try:
                before = os.fstat(handle.fileno())
                tree = leaf_tree(handle.fileno(), before.st_size, follow=False)
            except OSError as exc:
                raise LocalIOError(f"{what}: cannot read: {exc.strerror}") from None
            checker = BlockChecker(what)
            offset = 0
            try:
                for data in _read_blocks(handle, file_hash):
                    self.file_size += len(data)
                    first = checker.count
                    entries = checker.block(data)
                    if entries is not None:
                        yield ManifestBlock(entries, data, offset, first)
                    else:
                        start = offset
                        for entry in checker.lines(data):
                            # The line's bytes: its canonical form, which the check compared.
                            line = _encoder.encode(entry) + b"\n"
                            yield ManifestBlock([entry], line, start, checker.count - 1)
                            start += len(line)
                    tree.add(data, offset)
                    offset += len(data)
                after = os.fstat(handle.fileno())
            except OSError as exc:
                raise LocalIOError(f"{what}: cannot read: {exc.strerror}") from None
            except FormatError as exc:
                self._failed = True
                self._refuse_malformed(handle, file_hash, exc)
            digest = file_hash.hexdigest()
            count, root = tree.result(digest, what)
            try:
                now = _identity(os.stat(path))
            except OSError:
                now = None
            self.changed = _identity(before) != _identity(after) or now != _identity(after)
            self._summary = ManifestSummary(digest, count, checker.total_bytes, root)
        except BaseException:
            self._failed = True
            raise
        finally:
            if tree is not None:
                tree.close()
            handle.close()

    def _read_partitioned(self) -> Iterator[ManifestBlock]:
        from provenance import partitions

        summaries: list[ManifestSummary] = []
        try:
            for block in partitions.read_blocks(self.path, self.committed, summaries.append):
                self.file_size += len(block.data)
                yield block
        except BaseException:
            self._failed = True
            raise
        self._summary = summaries[0]

    def _refuse_malformed(self, handle: BinaryIO, file_hash: Any, error: FormatError) -> NoReturn:
        """Raise ``error``, or, when its file is not the committed one, a digest mismatch.

        Raises:
            DigestMismatchError, FormatError, LocalIOError: always one of them.
        """
        if self.committed is None:
            raise error
        try:
            while data := handle.read(_READ_BLOCK):
                file_hash.update(data)
        except OSError as exc:
            raise LocalIOError(f"{self.path}: cannot read: {exc.strerror}") from None
        digest = file_hash.hexdigest()
        if digest == self.committed.digest:
            raise error
        raise DigestMismatchError(
            f"{self.path}: sha256 {digest} is not the manifest the card commits to"
            f" ({self.committed.digest})"
        ) from error


def read_committed(
    path: Path, committed: ManifestSummary, consume: Callable[[Iterator[ManifestEntry]], T]
) -> T:
    """Stream the manifest at ``path`` into ``consume`` in one read, and return what it returns
    only if the bytes read are the manifest ``committed`` describes.

    The same as ``ManifestReader(path, committed=committed).consume(consume)`` (see
    :meth:`ManifestReader.consume`).

    Raises:
        DigestMismatchError, InputError, FormatError, LocalIOError: see
            :meth:`ManifestReader.consume`.
    """
    return ManifestReader(path, committed=committed).consume(consume)


def iter_manifest(
    path: Path,
    *,
    on_summary: Callable[[ManifestSummary], None] | None = None,
    on_digest: Callable[[str], None] | None = None,
) -> Iterator[ManifestEntry]:
    """Stream the entries of the manifest at ``path``, checking each line and the order.

    ``on_summary`` is called with the summary once the whole file has been read and checked;
    ``on_digest``, then, with the SHA-256 of the bytes read. To check the file against a card,
    use :class:`ManifestReader` with the card's commitment (or :func:`read_committed`).

    Raises:
        InputError: the file is missing or unreadable.
        FormatError: a line is invalid, not canonical, or out of order, or an id repeats.
        LocalIOError: the file cannot be read, or changed while it was read.
    """
    if on_summary is None and not (path.name == "index.json" or path.is_dir()):
        yield from _iter_without_root(path, on_digest)
        return
    reader = ManifestReader(path)
    yield from reader
    if on_summary is not None:
        on_summary(reader.summary)
    if on_digest is not None:
        on_digest(reader.summary.digest)


def _iter_without_root(
    path: Path, on_digest: Callable[[str], None] | None
) -> Iterator[ManifestEntry]:
    """:func:`iter_manifest` without the Merkle root, and without the digest unless asked."""
    for block in _blocks_without_root(path, on_digest):
        yield from block


def iter_manifest_blocks(path: Path) -> Iterator[list[ManifestEntry]]:
    """Stream the entries of the single-file manifest at ``path`` as :func:`iter_manifest`
    does (each line and the order checked), a block of entries at a time (near a bad line, one
    entry at a time, so that the entries before it are yielded before the error).

    Raises:
        As :func:`iter_manifest`.
    """
    return _blocks_without_root(path, None)


def _blocks_without_root(
    path: Path, on_digest: Callable[[str], None] | None
) -> Iterator[list[ManifestEntry]]:
    for entries, _ in iter_manifest_lines(path, on_digest=on_digest):
        yield entries


def iter_manifest_lines(
    path: Path, *, on_digest: Callable[[str], None] | None = None
) -> Iterator[tuple[list[ManifestEntry], bytes]]:
    """Stream the single-file manifest at ``path`` as :func:`iter_manifest_blocks` does, each
    block of entries with its lines (the bytes read, newlines included: what
    :func:`~provenance.manifest.entry.entry_lines` makes of the entries, as every line was
    checked to be its entry's canonical form). ``on_digest`` is called at the end with the
    SHA-256 of the bytes read.

    Raises:
        As :func:`iter_manifest`.
    """
    checker = BlockChecker(str(path))
    file_hash = hashlib.sha256() if on_digest is not None else None
    with open_input(path, kind="manifest file") as handle:
        try:
            for data in _read_blocks(handle, file_hash):
                entries = checker.block(data)
                if entries is None:
                    for entry in checker.lines(data):
                        yield [entry], entry_lines([entry])
                else:
                    yield entries, data
        except OSError as exc:
            raise LocalIOError(f"{path}: cannot read: {exc.strerror}") from None
    if on_digest is not None and file_hash is not None:
        on_digest(file_hash.hexdigest())


def read_manifest(path: Path) -> Manifest:
    """Load and check the whole manifest at ``path``.

    Raises:
        InputError, FormatError, LocalIOError: as :func:`iter_manifest`.
    """
    reader = ManifestReader(path)
    entries: list[ManifestEntry] = []
    for block in reader.blocks():
        entries.extend(block.entries)
    return Manifest(entries, reader.summary)
