"""Records files: JSON Lines, CSV or Parquet with one training record per row.

Columns: ``id``, ``url``, exactly one of ``text`` / ``path`` / ``sha256``, and optional
``source``, ``license``, ``rightsHolder`` and ``size``. The first five may have other names in a
file (:class:`Columns`: a ``link`` column holding the URLs). Other columns are kept (for writing
filtered copies) but otherwise ignored. Rows are streamed: memory does not grow with the file.
JSON Lines are parsed by the strict parser (:func:`provenance._json.loads_lines`); a row of any
format becomes a :class:`Record` one way (a typed msgspec decode, then the rules beyond types).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import itertools
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from provenance import _json
from provenance._files import open_input
from provenance._hex import first_invalid_sha256_hex, is_sha256_hex
from provenance.errors import FormatError, InputError, LocalIOError, UnsafePathError

RecordFormat = Literal["jsonl", "csv", "parquet"]
MAX_RECORD_BYTES = 256 * 1024 * 1024


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


class Record(msgspec.Struct, frozen=True):
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


# ----------------------------------------------------------------------------------------------
# One row to one record. Every format goes through _record: msgspec checks the fields' types
# (_Fields), then the rules types cannot say are checked on the typed values. A refused row is
# named by _problem, which looks at the fields in a fixed order (id, text, path, sha256, one of
# those three, size, url, source, license, rightsHolder) with the same types and rules, so that a
# row with several faults is always named by the same one.

_NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]


class _Fields(msgspec.Struct, frozen=True, rename={"rights_holder": "rightsHolder"}):
    """A row's fields, typed. Other columns are ignored; an empty string or a null is absent."""

    id: _NonEmptyStr
    url: str | None = None
    text: str | None = None
    path: str | None = None
    sha256: str | None = None
    source: str | None = None
    license: str | None = None
    rights_holder: str | None = None
    size: int | str | None = None  # a CSV cell holds the digits as text


_FIELD_TYPES = {field.encode_name: field.type for field in msgspec.structs.fields(_Fields)}
KNOWN_COLUMNS = tuple(_FIELD_TYPES)
"""The columns a records file may have under their own names (in :class:`Columns` order)."""
_STRING_FIELDS = ("text", "path", "sha256")  # in the order _problem looks at them
_METADATA_FIELDS = ("url", "source", "license", "rightsHolder")
_SIZE_PROBLEM = "'size' must be a non-negative integer"


def _project(row: dict[str, Any], columns: Columns) -> dict[str, Any]:
    """The fields of ``row`` under their own names, read from the columns ``columns`` names."""
    named = {"id": columns.id, "url": columns.url, "text": columns.text, "path": columns.path}
    named["sha256"] = columns.sha256
    fields = {name: row.get(column) for name, column in named.items()}
    fields.update((name, row.get(name)) for name in ("source", "license", "rightsHolder", "size"))
    return fields


def _size(value: int | str | None) -> int | None:
    """The size a typed ``size`` field gives; ValueError if it is not a non-negative integer."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if not value.isdecimal():
            raise ValueError(value)
        value = int(value)  # (ValueError too past Python's limit on digits)
    if value < 0:
        raise ValueError(value)
    return value


def _content_problem(
    record_id: str, text: str | None, path: str | None, digest: str | None, columns: Columns
) -> str | None:
    """What is wrong with a record's content fields (absent ones are None), or None."""
    if (text is None) + (path is None) + (digest is None) == 2:
        if digest is None or is_sha256_hex(digest):
            return None
        return f"{columns.sha256!r} must be 64 lowercase hex digits"
    given = [
        name
        for name, value in ((columns.text, text), (columns.path, path), (columns.sha256, digest))
        if value is not None
    ]
    wanted = ", ".join(repr(c) for c in (columns.text, columns.path, columns.sha256))
    return f"record {record_id!r} needs exactly one of {wanted} (has {', '.join(given) or 'none'})"


def _record(
    row: dict[str, Any],
    number: int,
    raw: Any,
    place: str,
    columns: Columns = DEFAULT_COLUMNS,
    *,
    empty_is_missing: bool = False,
) -> Record:
    """Return the record ``row`` holds (its fields in ``columns``; ``raw`` is kept as read).

    With ``empty_is_missing`` (CSV), an empty text is no text: a cell cannot tell them apart.

    Raises:
        FormatError: ``{place}{number}: `` and what is wrong (see :func:`_problem`).
    """
    fields = row if columns is DEFAULT_COLUMNS else _project(row, columns)
    try:
        typed = msgspec.convert(fields, _Fields)
    except msgspec.ValidationError:
        problem = _problem(fields, columns, empty_is_missing)
        raise FormatError(f"{place}{number}: {problem}") from None
    text = typed.text
    if empty_is_missing and text == "":
        text = None
    path = typed.path or None
    digest = typed.sha256 or None
    fault = _content_problem(typed.id, text, path, digest, columns)
    if fault is not None:  # the types are right: this is the row's first fault
        raise FormatError(f"{place}{number}: {fault}")
    try:
        size = _size(typed.size)
    except ValueError:
        raise FormatError(f"{place}{number}: {_SIZE_PROBLEM}") from None
    return Record(
        number,
        typed.id,
        typed.url or None,
        text,
        path,
        digest,
        typed.source or None,
        typed.license or None,
        typed.rights_holder or None,
        size,
        raw,
    )


def _problem(fields: dict[str, Any], columns: Columns, empty_is_missing: bool) -> str:
    """Name the first fault of a row :func:`_record` refuses (``fields`` by their own names)."""

    def refused(name: str) -> bool:
        try:
            msgspec.convert(fields.get(name), _FIELD_TYPES[name])
        except msgspec.ValidationError:
            return True
        return False

    if refused("id"):
        return f"missing or empty {columns.id!r}"
    for name in _STRING_FIELDS:
        if refused(name):
            return f"column {getattr(columns, name)!r} must be a string"
    text = fields.get("text")
    problem = _content_problem(
        fields["id"],
        None if empty_is_missing and text == "" else text,
        fields.get("path") or None,
        fields.get("sha256") or None,
        columns,
    )
    if problem is not None:
        return problem
    if refused("size"):
        return _SIZE_PROBLEM
    try:
        _size(fields.get("size"))
    except ValueError:
        return _SIZE_PROBLEM
    for name in _METADATA_FIELDS:
        if refused(name):
            column = columns.url if name == "url" else name
            return f"column {column!r} must be a string"
    raise AssertionError(f"no fault found in a refused row: {fields!r}")  # pragma: no cover


def _open(path: Path) -> io.BufferedReader:
    # Opened without blocking and checked to be a regular file (a FIFO would hang the read).
    return open_input(path)


def iter_records(
    path: Path,
    fmt: RecordFormat | None = None,
    *,
    columns: Columns = DEFAULT_COLUMNS,
    unique_ids: bool = False,
    row_groups: tuple[int, int] | None = None,
) -> Iterator[Record]:
    """Stream the records of ``path``, reading each field from its column in ``columns``.

    With ``unique_ids``, a record id seen before is an error naming both lines (this keeps
    every id in memory). ``row_groups`` (a Parquet file only) reads row groups ``first`` to
    ``end - 1`` alone, rows numbered as in the whole file (see :func:`row_group_ranges`).

    Raises:
        InputError: missing or unreadable file, unknown format.
        FormatError: a malformed row, or a repeated id (the line or row number is named).
    """
    fmt = fmt or detect_format(path)
    if columns == DEFAULT_COLUMNS:
        columns = DEFAULT_COLUMNS  # this very object: _record then reads rows as they are
    if fmt == "jsonl":
        records = _iter_jsonl(path, columns)
    elif fmt == "csv":
        records = _iter_csv(path, columns)
    else:
        records = _iter_parquet(path, columns, row_groups)
    if row_groups is not None and fmt != "parquet":
        raise InputError(f"{path}: row groups are read from Parquet files only")
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


# JSON Lines are read in blocks of whole lines; _json.loads_lines parses a block's lines (at C
# speed when it can, always as _json.loads would: the same values, the same error at the same
# line), and each record is yielded before the next line is judged.
_READ_BLOCK = 1 << 20


def _iter_jsonl(path: Path, columns: Columns) -> Iterator[Record]:
    place = f"{path}:"
    with _open(path) as handle:
        try:
            number = 0  # of the line before the block
            for block in _line_blocks(handle):
                lines = block.split(b"\n")
                ended = not lines[-1]  # the block ends with a newline: no line after it
                if ended:
                    lines.pop()
                first = number + 1
                number += len(lines)
                too_long = _too_long(lines, ended) if len(block) > MAX_RECORD_BYTES else None
                if too_long is not None:
                    del lines[too_long:]  # the lines before it are read first
                if b"\r" in block:
                    lines = list(map(bytes.rstrip, lines, itertools.repeat(b"\r\n")))
                numbers: Sequence[int] = range(first, first + len(lines))
                if not all(map(bytes.strip, lines)):  # blank lines hold no record
                    kept = [k for k, line in enumerate(lines) if line.strip()]
                    lines = [lines[k] for k in kept]
                    numbers = [numbers[k] for k in kept]
                # Typed a block at a time where every row is plain (_block_records), else row
                # by row; lines that do not all decode at once go through loads_lines.
                bulk = _json._bulk_objects(lines)
                fast = None if bulk is None else _block_records(bulk, lines, numbers, columns)
                if fast is not None:
                    yield from fast
                else:
                    values: Iterable[Any] = bulk if bulk is not None else ()
                    if bulk is None:
                        where = functools.partial(_where, place, numbers)
                        values = _json.loads_lines(lines, what=where)
                    for value, line, line_number in zip(values, lines, numbers, strict=True):
                        if value.__class__ is not dict:
                            raise FormatError(
                                f"{place}{line_number}: each line must be a JSON object"
                            )
                        yield _record(value, line_number, line, place, columns)
                if too_long is not None:
                    raise FormatError(
                        f"{place}{first + too_long}: record larger than {MAX_RECORD_BYTES} bytes"
                    )
        except OSError as exc:
            raise LocalIOError(f"{path}: cannot read: {exc.strerror}") from None


def _block_records(
    values: list[dict[str, Any]], lines: list[bytes], numbers: Sequence[int], columns: Columns
) -> list[Record] | None:
    """The records of a block of JSON Lines rows (``values``, decoded exactly as
    :func:`_json.loads_lines` decodes them), typed in one msgspec call; None when any row may
    be refused (those blocks go row by row through :func:`_record`, which names the fault).

    The same records as :func:`_record` on each row: the same typed decode, the same content
    and size rules, checked for the block at once.
    """
    if columns is not DEFAULT_COLUMNS:
        return None
    try:
        typed = msgspec.convert(values, list[_Fields])
    except msgspec.ValidationError:
        return None
    records = []
    digests = []
    for fields, line, number in zip(typed, lines, numbers, strict=True):
        text, path, digest = fields.text, fields.path or None, fields.sha256 or None
        if (text is None) + (path is None) + (digest is None) != 2:
            return None
        if digest is not None:
            digests.append(digest)
        size = fields.size
        if size.__class__ is not int or size < 0:
            if size is not None and size != "":
                return None
            size = None
        records.append(
            Record(
                number,
                fields.id,
                fields.url or None,
                text,
                path,
                digest,
                fields.source or None,
                fields.license or None,
                fields.rights_holder or None,
                size,
                line,
            )
        )
    if digests and first_invalid_sha256_hex(digests) is not None:
        return None
    return records


def _where(place: str, numbers: Sequence[int], position: int) -> str:
    return f"{place}{numbers[position]}"


def _too_long(lines: list[bytes], ended: bool) -> int | None:
    """The position of the first line longer than MAX_RECORD_BYTES (its newline counted; the
    last line ended with one if ``ended``), or None."""
    last = len(lines) - 1
    for position, line in enumerate(lines):
        if len(line) + (position < last or ended) > MAX_RECORD_BYTES:
            return position
    return None


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
            place = f"{path}:"
            for row in reader:
                if None in row:
                    where = f"{place}{reader.line_num}"
                    raise FormatError(f"{where}: more fields than the header names")
                yield _record(row, reader.line_num, row, place, columns, empty_is_missing=True)
        except csv.Error as exc:
            raise FormatError(f"{path}: malformed CSV: {exc}") from None
        except UnicodeDecodeError:
            raise FormatError(f"{path}: not valid UTF-8") from None


def _parquet_file(path: Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(
            "reading Parquet needs pyarrow: pip install 'provenance[parquet]'"
        ) from None
    try:
        return pq.ParquetFile(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for corrupt files
        raise FormatError(f"{path}: not a readable Parquet file: {exc}") from None


def row_group_ranges(path: Path, rows: int) -> list[tuple[int, int]]:
    """Cut the Parquet file ``path`` into ranges ``(first, end)`` of consecutive row groups,
    each of at least ``rows`` rows (the last may hold fewer), in file order.

    Raises:
        InputError: pyarrow is missing, or the file is.
        FormatError: not a readable Parquet file.
    """
    metadata = _parquet_file(path).metadata
    ranges: list[tuple[int, int]] = []
    first = held = 0
    for group in range(metadata.num_row_groups):
        held += metadata.row_group(group).num_rows
        if held >= rows:
            ranges.append((first, group + 1))
            first, held = group + 1, 0
    if first < metadata.num_row_groups or not ranges:
        ranges.append((first, metadata.num_row_groups))
    return ranges


def _iter_parquet(
    path: Path, columns: Columns, row_groups: tuple[int, int] | None = None
) -> Iterator[Record]:
    parquet = _parquet_file(path)
    number = 0
    place = f"{path}: row "
    groups: Any = None
    if row_groups is not None:
        groups = range(*row_groups)
        # Rows are numbered as in the whole file, so that errors name the same row.
        number = sum(parquet.metadata.row_group(g).num_rows for g in range(row_groups[0]))
    try:
        for batch in parquet.iter_batches(batch_size=8192, row_groups=groups):
            for row in batch.to_pylist():
                number += 1
                yield _record(row, number, row, place, columns)
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
