"""The index of a partitioned manifest (``index.json``), the parts' names and hash-prefix
ranges, and the Merkle subtree roots that let the whole root be computed from the parts.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance import merkle
from provenance.errors import FormatError, InputError

INDEX_NAME = "index.json"
MAX_PARTITIONS = 65536
MAX_INDEX_BYTES = 64 << 20
PART_FILE_NAME = re.compile(r"part-[0-9]{5}\.jsonl(\.fp)?")
"""The files a partitioned manifest's directory holds besides its index: parts and their
fingerprint sidecars."""
PARTS_GLOB = "part-*.jsonl"
"""The parts' files as a glob (for readers that take one: Croissant, the Hugging Face Hub)."""
SIDECAR_SUFFIX = ".fp"


def part_name(k: int) -> str:
    """The file name of part ``k``."""
    return f"part-{k:05d}.jsonl"


def sidecar_name(k: int) -> str:
    """The file name of part ``k``'s fingerprint sidecar (the part's name plus ``.fp``)."""
    return part_name(k) + SIDECAR_SUFFIX


def partition_of(sha256: str, partitions: int) -> int:
    """The part (of ``partitions``) that holds an entry with this sha256 (hex)."""
    return (int(sha256[:8], 16) * partitions) >> 32


def first_prefix(k: int, partitions: int) -> str:
    """The smallest 8-digit hex prefix of a sha256 in part ``k`` (of ``partitions``): sha256s
    (lowercase hex) at or above it and below the next part's are exactly the part's."""
    return f"{-((-k << 32) // partitions):08x}"


def is_partitioned(path: Path) -> bool:
    """Whether ``path`` names a partitioned manifest: a directory, or its ``index.json``."""
    return path.name == INDEX_NAME or path.is_dir()


def index_path(path: Path) -> Path:
    """The ``index.json`` of the partitioned manifest at ``path`` (the directory or the file)."""
    return path if path.name == INDEX_NAME else path / INDEX_NAME


def check_partitions(partitions: int) -> None:
    """Raises InputError unless ``1 <= partitions <= MAX_PARTITIONS``."""
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise InputError(f"partitions {partitions}: expected 1 to {MAX_PARTITIONS}")


# ----------------------------------------------------------------------------------------------
# Merkle subtrees of a range of leaves


class OffsetTree:
    """The aligned perfect subtrees over leaves that start at position ``offset`` of a tree.

    Leaves are appended in order; :meth:`blocks` returns the maximal aligned blocks covering
    them (their sizes rise, then fall), as (height, root). Appending each block's root in
    order to a :class:`provenance.merkle.TreeBuilder` holding the ``offset`` leaves before
    gives the same tree as appending the leaves themselves.
    """

    def __init__(self, offset: int = 0) -> None:
        self._stack: list[tuple[int, int, bytes]] = []  # (start, height, root)
        self.offset = offset
        self.end = offset

    def extend(self, leaves: list[bytes]) -> None:
        """Append leaf hashes (a perfect subtree's worth at a time where aligned)."""
        start, count = 0, len(leaves)
        while start < count:
            span = 1 << ((count - start).bit_length() - 1)
            if self.end:
                span = min(span, self.end & -self.end)
            digest = (
                leaves[start] if span == 1 else merkle.perfect_root(leaves[start : start + span])
            )
            self._push(span.bit_length() - 1, digest)
            start += span

    def _push(self, height: int, digest: bytes) -> None:
        start = self.end
        self.end += 1 << height
        stack = self._stack
        while stack and stack[-1][1] == height and not stack[-1][0] % (2 << height):
            start, _, left = stack.pop()
            digest = merkle.node_hash(left, digest)
            height += 1
        stack.append((start, height, digest))

    def blocks(self) -> list[tuple[int, bytes]]:
        """The aligned blocks so far, left to right, as (height, root)."""
        return [(height, digest) for _, height, digest in self._stack]


def block_heights(offset: int, count: int) -> list[int]:
    """The heights of the maximal aligned blocks covering leaves ``offset .. offset+count-1``."""
    heights, position, end = [], offset, offset + count
    while position < end:
        height = (end - position).bit_length() - 1
        if position:
            height = min(height, (position & -position).bit_length() - 1)
        heights.append(height)
        position += 1 << height
    return heights


def leaf_hashes(lines: bytes) -> list[bytes]:
    """The RFC 9162 leaf hashes of newline-terminated ``lines``."""
    parts = lines.split(b"\n")
    parts.pop()
    sha256 = hashlib.sha256
    return [sha256(b"\x00" + line).digest() for line in parts]


# ----------------------------------------------------------------------------------------------
# The index


@dataclass(frozen=True, slots=True)
class SidecarPart:
    """A part's fingerprint sidecar as the index records it (so a card on the index commits
    to it)."""

    file: str
    sha256: str
    bytes: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SidecarPart:
        """Build from the JSON form (already validated against its schema)."""
        return cls(file=data["file"], sha256=data["sha256"], bytes=data["bytes"])

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"file": self.file, "sha256": self.sha256, "bytes": self.bytes}


@dataclass(frozen=True, slots=True)
class PartInfo:
    """One part as the index describes it."""

    file: str
    sha256: str
    entries: int
    bytes: int
    data_bytes: int
    first: str | None
    last: str | None
    subtrees: tuple[str, ...]
    text_entries: int = 0
    """Entries with a ``textSha256`` (a lookup of a normalized copy needs every part only then)."""
    fingerprints: SidecarPart | None = None
    """The part's fingerprint sidecar (None: built without fingerprints)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PartInfo:
        """Build from the JSON form (already validated against its schema)."""
        return cls(
            file=data["file"],
            sha256=data["sha256"],
            entries=data["entries"],
            bytes=data["bytes"],
            data_bytes=data["dataBytes"],
            first=data["first"],
            last=data["last"],
            subtrees=tuple(data["subtrees"]),
            text_entries=data["textEntries"],
            fingerprints=(
                SidecarPart.from_dict(data["fingerprints"]) if "fingerprints" in data else None
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (``fingerprints`` only when there is a sidecar, so that an
        index without one is the same bytes as before sidecars were partitioned)."""
        data: dict[str, Any] = {
            "file": self.file,
            "sha256": self.sha256,
            "entries": self.entries,
            "bytes": self.bytes,
            "dataBytes": self.data_bytes,
            "first": self.first,
            "last": self.last,
            "subtrees": list(self.subtrees),
            "textEntries": self.text_entries,
        }
        if self.fingerprints is not None:
            data["fingerprints"] = self.fingerprints.to_dict()
        return data


@dataclass(frozen=True, slots=True)
class ManifestIndex:
    """A partitioned manifest's ``index.json``."""

    partitions: int
    entries: int
    data_bytes: int
    merkle_root: str
    parts: tuple[PartInfo, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestIndex:
        """Build from the JSON form (already validated against its schema)."""
        return cls(
            partitions=data["partitions"],
            entries=data["entries"],
            data_bytes=data["dataBytes"],
            merkle_root=data["merkleRoot"],
            parts=tuple(PartInfo.from_dict(p) for p in data["parts"]),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "version": 1,
            "partitions": self.partitions,
            "entries": self.entries,
            "dataBytes": self.data_bytes,
            "merkleRoot": self.merkle_root,
            "parts": [p.to_dict() for p in self.parts],
        }

    @property
    def has_fingerprints(self) -> bool:
        """True when the parts have fingerprint sidecars (all of them: see :func:`check_index`)."""
        return any(p.fingerprints is not None for p in self.parts)

    def offsets(self) -> list[int]:
        """The position of each part's first leaf in the whole tree."""
        return list(itertools.accumulate((p.entries for p in self.parts), initial=0))[:-1]


def root_of_parts(parts: Iterable[PartInfo]) -> str:
    """The RFC 9162 root of the concatenated parts, from their subtree roots alone.

    Raises:
        FormatError: a part lists subtrees that do not fit its position and entry count.
    """
    tree = merkle.TreeBuilder()
    for part in parts:
        heights = block_heights(tree.size, part.entries)
        if len(heights) != len(part.subtrees):
            raise FormatError(
                f"{part.file}: {len(part.subtrees)} subtree roots listed, {len(heights)} expected"
                f" for {part.entries} entries at position {tree.size}"
            )
        for height, digest in zip(heights, part.subtrees, strict=True):
            tree.append_subtree(height, bytes.fromhex(digest))
    return tree.root().hex()


def check_index(index: ManifestIndex, *, what: str) -> None:
    """Check what the index says of itself: part names, counts, ranges, order, root.

    Raises:
        FormatError: naming the first inconsistency.
    """
    if len(index.parts) != index.partitions:
        raise FormatError(f"{what}: {index.partitions} partitions but {len(index.parts)} parts")
    previous: str | None = None
    with_prints = index.has_fingerprints
    for k, part in enumerate(index.parts):
        if part.file != part_name(k):
            raise FormatError(f"{what}: part {k} is {part.file!r}, expected {part_name(k)!r}")
        if with_prints and (part.fingerprints is None or part.fingerprints.file != sidecar_name(k)):
            # All or none: a part without its sidecar would hide its entries from lookups.
            raise FormatError(
                f"{what}: {part.file}: fingerprint sidecar {sidecar_name(k)!r} not listed as"
                " the other parts' are"
            )
        if (part.entries == 0) != (part.first is None) or (part.first is None) != (
            part.last is None
        ):
            raise FormatError(f"{what}: {part.file}: first/last do not fit {part.entries} entries")
        if part.first is not None and part.last is not None:
            for digest in (part.first, part.last):
                if partition_of(digest, index.partitions) != k:
                    raise FormatError(f"{what}: {part.file}: {digest} belongs to another part")
            if part.first > part.last or (previous is not None and part.first < previous):
                raise FormatError(f"{what}: {part.file}: parts are not in sha256 order")
            previous = part.last
    if sum(p.entries for p in index.parts) != index.entries:
        raise FormatError(f"{what}: the parts' entries do not add up to {index.entries}")
    if sum(p.data_bytes for p in index.parts) != index.data_bytes:
        raise FormatError(f"{what}: the parts' dataBytes do not add up to {index.data_bytes}")
    if root_of_parts(index.parts) != index.merkle_root:
        raise FormatError(f"{what}: merkleRoot is not the root of the parts' subtrees")


def read_index(path: Path) -> tuple[ManifestIndex, str]:
    """Read and check the index of the partitioned manifest at ``path``.

    Returns:
        The index and the SHA-256 of its bytes (the manifest's digest).

    Raises:
        InputError: missing or unreadable.
        FormatError, SchemaError: malformed, or inconsistent (see :func:`check_index`).
    """
    from provenance import _json, schema
    from provenance._files import read_bytes

    file = index_path(path)
    data = read_bytes(file, limit=MAX_INDEX_BYTES)
    document = _json.loads_object(data, what=str(file))
    schema.validate(document, schema.MANIFEST_INDEX, what=str(file))
    index = ManifestIndex.from_dict(document)
    check_index(index, what=str(file))
    return index, hashlib.sha256(data).hexdigest()
