"""Records files: JSON Lines, CSV or Parquet with one training record per row.

Columns: ``id``, ``url``, exactly one of ``text`` / ``path`` / ``sha256``, and optional
``source``, ``license``, ``rightsHolder`` and ``size``. The first five may have other names in a
file (:class:`Columns`: a ``link`` column holding the URLs). Other columns are kept (for writing
filtered copies) but otherwise ignored. Rows are streamed: memory does not grow with the file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from provenance import _json
from provenance._files import open_input
from provenance._hex import is_sha256_hex
from provenance.errors import FormatError, InputError, LocalIOError, UnsafePathError

RecordFormat = Literal["jsonl", "csv", "parquet"]
MAX_RECORD_BYTES = 256 * 1024 * 1024
_KNOWN = ("id", "url", "text", "path", "sha256", "source", "license", "rightsHolder", "size")


@dataclass(frozen=True, slots=True)
class Columns:
    """Which column of a records file holds each field (names match exactly, case included)."""

    id: str = "id"
    url: str = "url"
    text: str = "text"
    path: str = "path"
    sha256: str = "sha256"

    def __post_init__(self) -> None:
        names = {"id": self.id, "url": self.url, "text": self.text, "path": self.path}
        names["sha256"] = self.sha256
        for field_name, column in names.items():
            if not column:
                raise InputError(f"the {field_name} column name is empty")
        seen: dict[str, str] = {}
        for field_name, column in names.items():
            if column in seen:
                raise InputError(
                    f"the {seen[column]} and {field_name} columns are both {column!r};"
                    " each field needs its own column"
                )
            seen[column] = field_name

    def describe(self) -> str:
        """Name the columns that differ from the defaults (empty when none do)."""
        return ", ".join(
            f"{name} in {getattr(self, name)!r}"
            for name in ("id", "url", "text", "path", "sha256")
            if getattr(self, name) != name
        )


DEFAULT_COLUMNS = Columns()


@dataclass(frozen=True, slots=True)
class Record:
    """One row. ``raw`` is the row as read (the JSON line's bytes, or a dict for CSV/Parquet)."""

    number: int
    id: str
    url: str | None
    text: str | None
    path: str | None
    sha256: str | None
    source: str | None
    license: str | None
    rights_holder: str | None
    size: int | None
    raw: Any


def detect_format(path: Path) -> RecordFormat:
    """Return the records format implied by ``path``'s suffix.

    Raises:
        InputError: an unknown suffix.
    """
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise InputError(
        f"{path}: unknown records format {suffix!r}; use .jsonl, .csv or .parquet (or a directory)"
    )


def _optional_str(row: dict[str, Any], key: str, where: str) -> str | None:
    value = row.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise FormatError(f"{where}: column {key!r} must be a string")
    return value


def _to_record(
    row: dict[str, Any],
    number: int,
    where: str,
    raw: Any,
    *,
    empty_is_missing: bool = False,
    columns: Columns = DEFAULT_COLUMNS,
) -> Record:
    record_id = row.get(columns.id)
    if not isinstance(record_id, str) or not record_id:
        raise FormatError(f"{where}: missing or empty {columns.id!r}")
    text = row.get(columns.text)
    if empty_is_missing and text == "":
        # A CSV cell cannot tell an empty text from a missing one: treat it as missing.
        text = None
    if text is not None and not isinstance(text, str):
        raise FormatError(f"{where}: column {columns.text!r} must be a string")
    path = _optional_str(row, columns.path, where)
    digest = _optional_str(row, columns.sha256, where)
    given = [
        name
        for name, value in ((columns.text, text), (columns.path, path), (columns.sha256, digest))
        if value is not None
    ]
    if len(given) != 1:
        wanted = ", ".join(repr(c) for c in (columns.text, columns.path, columns.sha256))
        raise FormatError(
            f"{where}: record {record_id!r} needs exactly one of {wanted}"
            f" (has {', '.join(given) or 'none'})"
        )
    if digest is not None and not is_sha256_hex(digest):
        raise FormatError(f"{where}: {columns.sha256!r} must be 64 lowercase hex digits")
    size = row.get("size")
    if size == "" or size is None:
        size = None
    elif isinstance(size, str) and size.isdigit():
        size = int(size)
    elif not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise FormatError(f"{where}: 'size' must be a non-negative integer")
    return Record(
        number=number,
        id=record_id,
        url=_optional_str(row, columns.url, where),
        text=text,
        path=path,
        sha256=digest,
        source=_optional_str(row, "source", where),
        license=_optional_str(row, "license", where),
        rights_holder=_optional_str(row, "rightsHolder", where),
        size=size,
        raw=raw,
    )


def _open(path: Path) -> io.BufferedReader:
    # Opened without blocking and checked to be a regular file (a FIFO would hang the read).
    return open_input(path)


def iter_records(
    path: Path,
    fmt: RecordFormat | None = None,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    unique_ids: bool = False,
) -> Iterator[Record]:
    """Stream the records of ``path``, reading each field from its column in ``columns``.

    With ``unique_ids``, a record id seen before is an error naming both lines (this keeps
    every id in memory).

    Raises:
        InputError: missing or unreadable file, unknown format.
        FormatError: a malformed row, or a repeated id (the line or row number is named).
    """
    fmt = fmt or detect_format(path)
    if fmt == "jsonl":
        records = _iter_jsonl(path, columns)
    elif fmt == "csv":
        records = _iter_csv(path, columns)
    else:
        records = _iter_parquet(path, columns)
    if not unique_ids:
        yield from records
        return
    seen: dict[str, int] = {}
    unit, separator = ("row", ": row ") if fmt == "parquet" else ("line", ":")
    for record in records:
        first = seen.setdefault(record.id, record.number)
        if first != record.number:
            raise FormatError(
                f"{path}{separator}{record.number}: record id {record.id!r} appears twice"
                f" (first on {unit} {first})"
            )
        yield record


def file_columns(path: Path, fmt: RecordFormat | None = None, *, sample: int = 100) -> list[str]:
    """Return the column names of a records file, for messages.

    CSV: the header; Parquet: the schema; JSON Lines: the keys of the first ``sample`` objects,
    in the order first seen. A file that cannot be read gives what could be read.
    """
    fmt = fmt or detect_format(path)
    names: dict[str, None] = {}
    try:
        if fmt == "csv":
            with open(path, encoding="utf-8", newline="") as handle:
                names.update(dict.fromkeys(next(csv.reader(handle), [])))
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            names.update(dict.fromkeys(pq.ParquetFile(path).schema_arrow.names))
        else:
            with open(path, "rb") as binary:
                for line in itertools.islice(binary, sample * 2):
                    if len(names) > 1000:
                        break
                    try:
                        row = _json.loads(line.strip(), what=str(path))
                    except FormatError:
                        continue
                    if isinstance(row, dict):
                        names.update(dict.fromkeys(row))
                        sample -= 1
                        if not sample:
                            break
    except (OSError, ValueError, csv.Error, ImportError):
        pass
    return list(names)


# JSON Lines are read in blocks of whole lines. A block whose lines are all objects is decoded
# in bulk by _json.loads_objects, which answers only when _json.loads would give the same dicts;
# any other block (a blank line, a line loads_objects leaves to loads) is read line by line as
# before, which also finds and names a bad line. Each record is yielded before the next line is
# judged.
_READ_BLOCK = 1 << 20
_FIELDS = (
    "number", "id", "url", "text", "path", "sha256", "source", "license", "rights_holder",
    "size", "raw",
)  # fmt: skip


def _iter_jsonl(path: Path, columns: Columns) -> Iterator[Record]:
    flat = columns == DEFAULT_COLUMNS  # the usual names: the fast constructor applies
    with _open(path) as handle:
        try:
            number = 0
            for block in _line_blocks(handle):
                lines = block.split(b"\n")
                ended = not lines[-1]  # the block ends with a newline: no line after it
                if ended:
                    lines.pop()
                rows = None
                if len(block) <= MAX_RECORD_BYTES:  # then no line is longer
                    if b"\r" in block:
                        lines = list(map(bytes.rstrip, lines, itertools.repeat(b"\r\n")))
                    rows = _json.loads_objects(lines)
                if rows is None:
                    yield from _jsonl_lines(lines, number, path, ended, columns)
                elif flat:
                    for row, line in zip(rows, lines, strict=True):
                        number += 1
                        yield _flat_record(row, number, line) or _to_record(
                            row, number, f"{path}:{number}", line
                        )
                    continue
                else:
                    for row, line in zip(rows, lines, strict=True):
                        number += 1
                        yield _to_record(row, number, f"{path}:{number}", line, columns=columns)
                    continue
                number += len(lines)
        except OSError as exc:
            raise LocalIOError(f"{path}: cannot read: {exc.strerror}") from None


def _jsonl_lines(
    lines: list[bytes],
    number: int,
    path: Path,
    ended: bool,
    columns: Columns = DEFAULT_COLUMNS,
) -> Iterator[Record]:
    """Read ``lines`` (numbered after ``number``) one at a time; the last one ended with a
    newline if ``ended``."""
    last = len(lines) - 1
    for position, line in enumerate(lines):
        number += 1
        where = f"{path}:{number}"
        if len(line) + (position < last or ended) > MAX_RECORD_BYTES:
            raise FormatError(f"{where}: record larger than {MAX_RECORD_BYTES} bytes")
        stripped = line.rstrip(b"\r\n")
        if not stripped.strip():
            continue
        bulk = _json.loads_objects([stripped])  # the same answer when it gives one
        row = bulk[0] if bulk is not None else _json.loads(stripped, what=where)
        if not isinstance(row, dict):
            raise FormatError(f"{where}: each line must be a JSON object")
        yield _to_record(row, number, where, stripped, columns=columns)


def _line_blocks(handle: io.BufferedReader) -> Iterator[bytes]:
    """Yield the file in blocks of whole lines (the last block may lack its final newline).

    A line growing past MAX_RECORD_BYTES is yielded as it is so far (without a newline) and
    reading stops: the caller refuses it without the file's memory ever holding more of it.
    """
    pieces: list[bytes] = []
    pending = 0
    while True:
        data = handle.read(_READ_BLOCK)
        if not data:
            if pieces:
                yield b"".join(pieces)
            return
        cut = data.rfind(b"\n") + 1
        if not cut:
            pieces.append(data)
            pending += len(data)
            if pending > MAX_RECORD_BYTES:
                yield b"".join(pieces)
                return
            continue
        if pieces:
            pieces.append(data[:cut])
            yield b"".join(pieces)
        else:
            yield data if cut == len(data) else data[:cut]
        pieces = [data[cut:]] if cut < len(data) else []
        pending = len(data) - cut


_NEW_RECORD = object.__new__
(
    _SET_NUMBER, _SET_ID, _SET_URL, _SET_TEXT, _SET_PATH, _SET_SHA256, _SET_SOURCE,
    _SET_LICENSE, _SET_RIGHTS_HOLDER, _SET_SIZE, _SET_RAW,
) = (getattr(Record, name).__set__ for name in _FIELDS)  # fmt: skip


def _flat_record(row: dict[str, Any], number: int, raw: bytes) -> Record | None:
    """The Record :func:`_to_record` makes of a JSON Lines row in the usual case, or None for
    anything unusual, which :func:`_to_record` then judges (and names what is wrong).

    The Record's slots are set directly: the frozen dataclass's ``__init__`` would cost more
    than everything else done per record while reading.
    """
    get = row.get
    record_id, text, url, path = get("id"), get("text"), get("url"), get("path")
    digest, source, license_, holder = get("sha256"), get("source"), get("license"), None
    if type(record_id) is not str or not record_id:
        return None
    if text is not None and type(text) is not str:
        return None
    # The optional strings: absent, null or "" is None; anything but a string is an error.
    if url is not None:
        if type(url) is not str:
            return None
        url = url or None
    if path is not None:
        if type(path) is not str:
            return None
        path = path or None
    if digest is not None:
        if type(digest) is not str:
            return None
        digest = digest or None
    if source is not None:
        if type(source) is not str:
            return None
        source = source or None
    if license_ is not None:
        if type(license_) is not str:
            return None
        license_ = license_ or None
    if "rightsHolder" in row:
        holder = row["rightsHolder"]
        if holder is not None:
            if type(holder) is not str:
                return None
            holder = holder or None
    if (text is not None) + (path is not None) + (digest is not None) != 1:
        return None
    if digest is not None and not is_sha256_hex(digest):
        return None
    size = get("size")
    if size is not None and (type(size) is not int or size < 0):
        return None
    record = _NEW_RECORD(Record)
    _SET_NUMBER(record, number)
    _SET_ID(record, record_id)
    _SET_URL(record, url)
    _SET_TEXT(record, text)
    _SET_PATH(record, path)
    _SET_SHA256(record, digest)
    _SET_SOURCE(record, source)
    _SET_LICENSE(record, license_)
    _SET_RIGHTS_HOLDER(record, holder)
    _SET_SIZE(record, size)
    _SET_RAW(record, raw)
    return record


def _iter_csv(path: Path, columns: Columns) -> Iterator[Record]:
    csv.field_size_limit(min(sys.maxsize, MAX_RECORD_BYTES))
    with _open(path) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="", errors="strict")
        try:
            reader = csv.DictReader(text, strict=True)
            if reader.fieldnames is None or columns.id not in reader.fieldnames:
                raise FormatError(f"{path}: CSV header must name an {columns.id!r} column")
            if len(set(reader.fieldnames)) != len(reader.fieldnames):
                raise FormatError(f"{path}: CSV header repeats a column name")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                if None in row:
                    raise FormatError(f"{where}: more fields than the header names")
                yield _to_record(
                    dict(row),
                    reader.line_num,
                    where,
                    dict(row),
                    empty_is_missing=True,
                    columns=columns,
                )
        except csv.Error as exc:
            raise FormatError(f"{path}: malformed CSV: {exc}") from None
        except UnicodeDecodeError:
            raise FormatError(f"{path}: not valid UTF-8") from None


def _iter_parquet(path: Path, columns: Columns) -> Iterator[Record]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            "reading Parquet needs pyarrow: pip install 'provenance[parquet]'"
        ) from None
    try:
        parquet = pq.ParquetFile(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for corrupt files
        raise FormatError(f"{path}: not a readable Parquet file: {exc}") from None
    number = 0
    try:
        for batch in parquet.iter_batches(batch_size=8192):
            for row in batch.to_pylist():
                number += 1
                yield _to_record(row, number, f"{path}: row {number}", row, columns=columns)
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: cannot read Parquet rows: {exc}") from None


def safe_join(base: Path, relative: str, *, what: str) -> str:
    """Resolve ``relative`` under ``base``, refusing anything that escapes it.

    Raises:
        UnsafePathError: absolute, ``..``, backslashes, or a symlink out of ``base``.
    """
    if (
        not relative
        or relative.startswith(("/", "\\"))
        or "\\" in relative
        or "\x00" in relative
        or re.match(r"^[A-Za-z]:", relative)
        or any(part in ("..",) for part in relative.split("/"))
    ):
        raise UnsafePathError(f"{what}: path {relative!r} escapes the records' directory")
    real_base = os.path.realpath(base)
    target = os.path.realpath(os.path.join(real_base, relative))
    if os.path.commonpath([real_base, target]) != real_base:
        raise UnsafePathError(f"{what}: path {relative!r} leads out of the records' directory")
    return target


def text_digest(text: str) -> tuple[str, int]:
    """Return the SHA-256 hex and byte size of ``text`` encoded as UTF-8.

    Raises:
        FormatError: the text holds lone surrogates.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        raise FormatError("text holds a lone surrogate") from None
    return hashlib.sha256(data).hexdigest(), len(data)


KNOWN_COLUMNS = _KNOWN
