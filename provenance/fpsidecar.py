"""The fingerprint sidecar of a manifest: where it lives, and when a reader may use it.

The sidecar (``<manifest>.fp``, see :mod:`provenance.fpindex`) is signed by no one on its own:
a dataset card commits to it by recording its SHA-256 in ``predicate.manifest.fingerprints``.
:func:`open_sidecar` is the one rule every reader follows (``card build``, ``verify
--manifest``, ``lookup``), given the verified card or no card:

- no card (building the card that will commit to it, or a lookup that checks nothing): the
  sidecar named, or else the one beside the manifest, is used if it exists;
- a card that commits to a sidecar: it is used only if it has exactly that digest, computed
  over the very bytes that are then used (a mismatch is a verified "no");
- a card that commits to none: it is never used, since no trusted key signed it and a doctored
  index could hide an exact copy.

A partitioned manifest (DESIGN §8) has one sidecar per part, ``part-NNNNN.jsonl.fp`` beside
``part-NNNNN.jsonl``, and its ``index.json`` lists each one's SHA-256 and size. The card's
subject is ``index.json``, so a card that commits to that index commits to every sidecar part
it lists; the card then records ``fingerprints`` as the index's own digest and name.
:func:`open_part_sidecars` applies the same rule: no card, the parts the index lists are used
if present; a card committing to none, never; a card committing to the index, only if it is the
card's manifest. Either way each part is read once, when a lookup first needs it, and used only
if the bytes read have the digest the index lists (:meth:`PartSidecars.open_part`). A part
missing while others are present is refused, since it would hide its entries from
near-duplicate lookups.

Imports no numpy, so that ``verify`` does not pay for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from provenance import _files
from provenance.errors import DigestMismatchError, InputError, LocalIOError

if TYPE_CHECKING:
    from provenance.card import VerifiedCard
    from provenance.partitions import ManifestIndex

__all__ = [
    "SUFFIX",
    "PartSidecars",
    "Sidecar",
    "SidecarMismatchError",
    "committed_sha256",
    "open_committed",
    "open_part_sidecars",
    "open_sidecar",
    "sidecar_path",
]

SUFFIX = ".fp"
_FIXED_HEADER = 16
"""Bytes before the header (magic and header length): a shorter file is not mapped."""


def sidecar_path(manifest_path: Path) -> Path:
    """Return where the sidecar of ``manifest_path`` lives: the same name plus ``.fp``."""
    return manifest_path.with_name(manifest_path.name + SUFFIX)


def committed_sha256(card: VerifiedCard) -> str | None:
    """Return the SHA-256 of the sidecar that ``card`` commits to (None if it commits to none)."""
    recorded = card.predicate.manifest.fingerprints
    return recorded.sha256 if recorded is not None else None


class SidecarMismatchError(DigestMismatchError):
    """The sidecar's digest is not the one the card commits to."""

    def __init__(
        self, path: Path, actual: str, expected: str, *, by: str = "the card commits to"
    ) -> None:
        super().__init__(f"{path}: sha256 {actual} is not the fingerprint index {by} ({expected})")
        self.path = path
        self.actual = actual
        self.expected = expected


@dataclass(frozen=True, slots=True, eq=False)
class Sidecar:
    """What :func:`open_sidecar` decided, with the sidecar's bytes when it is to be used.

    Close it (or use it as a context manager) unless its bytes are handed on, e.g. to
    :meth:`provenance.fpindex.FingerprintIndex.from_sidecar`, which then owns them.
    """

    path: Path
    """The sidecar considered: the one named, or the one beside the manifest."""
    committed: str | None = None
    """The SHA-256 the card commits to (None without a card, or when it commits to none)."""
    data: mmap.mmap | bytes | None = None
    """The bytes to use (mapped, unless shorter than the fixed header); None: not used."""
    note: str | None = None
    """Why no sidecar is used, as one sentence for a lookup's user (None when one is used or
    when there is nothing to say)."""

    @property
    def used(self) -> bool:
        """True when the sidecar may be used (its bytes are in :attr:`data`)."""
        return self.data is not None

    def sha256(self) -> str:
        """Return the SHA-256 of :attr:`data` (the committed digest when there is one, since
        :func:`open_sidecar` checked it on these bytes).

        Raises:
            ValueError: the sidecar is not used.
        """
        if self.data is None:
            raise ValueError(f"{self.path}: not used, so it has no digest here")
        if self.committed is not None:
            return self.committed
        return hashlib.sha256(self.data).hexdigest()

    def close(self) -> None:
        """Release the mapping (a no-op for bytes, or when numpy views still hold it)."""
        if isinstance(self.data, mmap.mmap):
            # Arrays made from the mapping may still live; it then goes with them.
            with contextlib.suppress(BufferError):
                self.data.close()

    def __enter__(self) -> Sidecar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_sidecar(
    manifest_path: Path, card: VerifiedCard | None, *, sidecar: Path | None = None
) -> Sidecar:
    """Decide whether a fingerprint sidecar of ``manifest_path`` may be used given ``card`` (a
    verified card, or None), and if so read it, once.

    ``sidecar`` names the file (default: :func:`sidecar_path`); a named file counts as present
    even if it does not exist, so that it is reported rather than silently passed over.

    Returns:
        The decision: :attr:`Sidecar.data` holds the bytes to use, or is None with
        :attr:`Sidecar.note` saying why.

    Raises:
        InputError: the sidecar to be used is missing, not a regular file, or unreadable.
        LocalIOError: it cannot be read.
        SidecarMismatchError: the card commits to a sidecar and this one has another digest.
    """
    if sidecar is None and _is_partitioned(manifest_path):
        # Its sidecars are parts (see open_part_sidecars); none of them is this one file.
        decided = open_part_sidecars(manifest_path, card)
        return Sidecar(manifest_path, decided.committed, note=decided.note)
    path = sidecar or sidecar_path(manifest_path)
    present = sidecar is not None or os.path.lexists(path)
    if card is None:
        if not present:
            return Sidecar(
                path,
                note=f"no fingerprint index ({path}): only exact and normalized matches can be"
                " found",
            )
        return Sidecar(path, data=_read(path))
    committed = committed_sha256(card)
    if committed is None:
        note = (
            f"the card commits to no fingerprint index, so {path} is not used (no trusted key"
            " signed it): only exact and normalized matches can be found"
        )
        return Sidecar(path, note=note if present else None)
    if not present:
        return Sidecar(
            path,
            committed,
            note=f"the card commits to a fingerprint index but {path} does not exist:"
            " near-duplicate and contained statuses are unavailable",
        )
    return open_committed(path, committed)


def _is_partitioned(path: Path) -> bool:
    from provenance.partitions import is_partitioned

    return is_partitioned(path)


@dataclass(frozen=True, slots=True, eq=False)
class PartSidecars:
    """What :func:`open_part_sidecars` decided for a partitioned manifest's sidecar parts."""

    directory: Path
    index: ManifestIndex
    index_sha256: str
    """The SHA-256 of the ``index.json`` read, which lists the parts' digests."""
    committed: str | None = None
    """The digest the card records as its fingerprints (the index's; None without a card or
    when it commits to none)."""
    used: bool = False
    """True when the parts may be used (each is still checked when read)."""
    note: str | None = None
    """Why they are not used, as one sentence (None when used or nothing to say)."""

    def part_path(self, k: int) -> Path:
        """The sidecar file of part ``k``, as the index names it.

        Raises:
            ValueError: the index lists no sidecar for part ``k``.
        """
        listed = self.index.parts[k].fingerprints
        if listed is None:
            raise ValueError(f"{self.directory}: part {k} has no fingerprint sidecar")
        return self.directory / listed.file

    def open_part(self, k: int) -> Sidecar:
        """Read part ``k``'s sidecar, once, and check it has the SHA-256 and size the index
        lists (the index being the card's, when there is a card).

        Raises:
            ValueError: the parts are not to be used.
            InputError: the file is missing, not a regular file, or unreadable.
            LocalIOError: it cannot be read.
            SidecarMismatchError: its digest is not the one the index lists.
        """
        if not self.used:
            raise ValueError(f"{self.directory}: its fingerprint sidecars are not used")
        listed = self.index.parts[k].fingerprints
        assert listed is not None  # used: the index lists every part's (check_index)
        by = "index.json lists" if self.committed is None else "the card commits to"
        return open_committed(self.directory / listed.file, listed.sha256, by=by)


def open_part_sidecars(manifest_path: Path, card: VerifiedCard | None) -> PartSidecars:
    """Decide whether the sidecar parts of the partitioned manifest at ``manifest_path`` may be
    used given ``card`` (a verified card, or None). Nothing but the index is read here: each
    part is read and checked when first used (:meth:`PartSidecars.open_part`).

    Raises:
        InputError, FormatError, SchemaError: the index is missing or malformed; some sidecar
            parts are missing while others are present.
        DigestMismatchError: the card's manifest is not this index, or the card commits to
            fingerprints this index does not list (or to others).
    """
    from provenance.partitions import index_path, read_index

    file = index_path(manifest_path)
    index, digest = read_index(manifest_path)
    decided = PartSidecars(file.parent, index, digest)
    listed = index.has_fingerprints
    committed = None
    if card is not None:
        if digest != card.manifest_digest:
            raise DigestMismatchError(
                f"{file}: sha256 {digest} is not the manifest the card commits to"
                f" ({card.manifest_digest})"
            )
        committed = committed_sha256(card)
        if committed is None:
            note = (
                f"the card commits to no fingerprint index, so the sidecar parts in {file.parent}"
                " are not used (no trusted key signed them): only exact and normalized matches"
                " can be found"
            )
            return dataclasses.replace(decided, note=note if listed else None)
        if committed != digest or not listed:
            raise DigestMismatchError(
                f"{file}: the card commits to the fingerprint sidecars of index sha256"
                f" {committed}, but this index (sha256 {digest})"
                + (" lists none" if not listed else " is another")
            )
    if not listed:
        return dataclasses.replace(
            decided,
            note=f"no fingerprint index ({file} lists no sidecar parts): only exact and"
            " normalized matches can be found",
        )
    present = [os.path.lexists(decided.part_path(k)) for k in range(index.partitions)]
    if not any(present):
        unavailable = (
            "the card commits to fingerprint sidecars" if committed else "index.json lists sidecars"
        )
        return dataclasses.replace(
            decided,
            committed=committed,
            note=f"{unavailable} but none is in {file.parent}: near-duplicate and contained"
            " statuses are unavailable",
        )
    if not all(present):
        missing = decided.part_path(present.index(False))
        raise InputError(
            f"{missing}: missing, while {file} lists it and other sidecar parts are present"
            " (its entries would escape near-duplicate lookups)"
        )
    return dataclasses.replace(decided, committed=committed, used=True)


def open_committed(path: Path, committed: str, *, by: str = "the card commits to") -> Sidecar:
    """Read the sidecar at ``path``, once, and check it has the SHA-256 ``committed`` (which a
    verified card commits to, e.g. as a registry recorded it when it admitted the card).

    ``by`` says who committed to it, for the error.

    Returns:
        The sidecar, to be used.

    Raises:
        InputError, LocalIOError: as :func:`open_sidecar`.
        SidecarMismatchError: its digest is not ``committed``.
    """
    data = _read(path)
    # The digest of the bytes read, which are the bytes every later use reads.
    actual = hashlib.sha256(data).hexdigest()
    if actual != committed:
        Sidecar(path, data=data).close()
        raise SidecarMismatchError(path, actual, committed, by=by)
    return Sidecar(path, committed, data)


def _read(path: Path) -> mmap.mmap | bytes:
    """Map the sidecar at ``path`` (regular files only, opened without blocking: a FIFO here
    would otherwise wait forever); a file shorter than the fixed header is read instead."""
    with _files.open_input(path, kind="fingerprint index") as handle:
        size = os.fstat(handle.fileno()).st_size
        try:
            if size >= _FIXED_HEADER:
                return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            return handle.read(_FIXED_HEADER)
        except (OSError, ValueError) as exc:
            raise LocalIOError(f"{path}: cannot read: {exc}") from None
