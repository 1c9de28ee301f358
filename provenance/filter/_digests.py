"""The digests the lists need of each record's content (``sha256`` and ``text-sha256`` entries).

A record's content is the UTF-8 bytes of its ``text``, the file at its ``path`` (under the
records' directory), or the ``sha256`` it gives; a file in a directory is its own content.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from provenance.errors import FormatError, InputError
from provenance.lists.match import Digest, ListIndex
from provenance.normtext import normalize_batch
from provenance.records import Record, safe_join

MAX_NORMALIZED_FILE_BYTES = 64 * 1024 * 1024
"""Files larger than this are hashed but not text-normalized (``text-sha256`` does not apply)."""
_TEXT = operator.attrgetter("text")
_SHA256 = operator.attrgetter("sha256")
_DIGEST = operator.methodcaller("digest")


def text_digests(texts: Sequence[bytes | None]) -> list[bytes | None]:
    """Return the SHA-256 of the ``norm-text-v1`` form of each text (None where it has none)."""
    present = [t for t in texts if t is not None]
    normalized = normalize_batch(present) if present else None
    result: list[bytes | None] = []
    position = 0
    for text in texts:
        if text is None or normalized is None:
            result.append(None)
            continue
        data = normalized.text(position)
        position += 1
        result.append(None if data is None else hashlib.sha256(data).digest())
    return result


def record_digests(
    records: list[Record], base: Path, index: ListIndex, where: str
) -> tuple[Sequence[Digest | None], Sequence[Digest | None]]:
    """Return the content and ``norm-text-v1`` digests the lists need, per record."""
    need_content = index.has_content_entries
    need_text = index.has_text_entries
    count = len(records)
    if not need_content:
        if not need_text:
            return [None] * count, [None] * count
    else:
        given = list(map(_SHA256, records))
        if None not in given:
            # Records that give their content's digest (and so have no text): the index
            # decodes a batch of hex at once.
            return given, [None] * count
    texts = list(map(_TEXT, records))
    if need_content and not need_text and None not in texts:
        # Only texts, only their SHA-256: a pass in C (a lone surrogate is named below).
        try:
            encoded = list(map(str.encode, cast("list[str]", texts)))
        except UnicodeEncodeError:
            pass
        else:
            return list(map(_DIGEST, map(hashlib.sha256, encoded))), [None] * count
    contents: list[bytes | None] = []
    raw_texts: list[bytes | None] = []
    for record in records:
        content: bytes | None = None
        text: bytes | None = None
        if record.text is not None:
            try:
                data = record.text.encode("utf-8")
            except UnicodeEncodeError:
                raise FormatError(
                    f"{where}: record {record.id!r}: text holds a lone surrogate"
                ) from None
            content = hashlib.sha256(data).digest() if need_content else None
            text = data if need_text else None
        elif record.path is not None:
            target = safe_join(base, record.path, what=f"{where}: record {record.id!r}")
            content, text = read_file(Path(target), need_text, f"record {record.id!r}")
        elif record.sha256 is not None and need_content:
            content = bytes.fromhex(record.sha256)
        contents.append(content)
        raw_texts.append(text)
    if not need_content:
        contents = [None] * count
    return contents, text_digests(raw_texts) if need_text else [None] * count


def read_file(path: Path, need_text: bool, what: str) -> tuple[bytes, bytes | None]:
    """Return the SHA-256 of a file and, when asked and small enough, its bytes for normalizing."""
    from provenance.manifest import hash_file

    if need_text:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"{what}: {path}: {exc.strerror}") from None
        if size <= MAX_NORMALIZED_FILE_BYTES:
            from provenance._files import read_bytes

            data = read_bytes(path, limit=MAX_NORMALIZED_FILE_BYTES, what=f"{what}: {path}")
            return hashlib.sha256(data).digest(), data
    result = hash_file(str(path))
    if result.error is not None:
        raise result.error.exception(f"{what}: {path}")
    return bytes.fromhex(result.sha256), None
