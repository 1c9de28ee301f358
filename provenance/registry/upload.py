"""Receiving a push: a ``multipart/form-data`` body streamed to files, within limits.

The body is parsed as it arrives (python-multipart's streaming parser) and each part written
straight to its own file in a directory the caller owns: nothing is held whole in memory. The
limits are enforced while streaming, before the rest is read: a body announced or found larger
than the upload limit, or a ``card`` part larger than a card may be, stops with 413 at the
first byte over; a client that stays silent for ``idle_timeout`` seconds gets 408. A body that
is not well-formed multipart, names an unknown or repeated part, or lacks ``card`` or
``manifest`` is refused with 400. The caller removes the directory whatever happens (a client
that disconnects mid-upload leaves nothing behind). Each part's SHA-256 is computed as it is
written, so that a manifest that is not the card's can be refused before the registry reads it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from provenance.card import MAX_CARD_BYTES

PARTS = ("card", "manifest", "fingerprints")
REQUIRED = ("card", "manifest")
_PART_LIMITS = {"card": MAX_CARD_BYTES}


class UploadError(Exception):
    """A push refused while it was received, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _State:
    directory: Path
    limit: int
    parts: dict[str, Path] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    digests: dict[str, Any] = field(default_factory=dict)  # hashlib SHA-256 objects
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    disposition: bytes | None = None
    current: str | None = None
    handle: IO[bytes] | None = None
    ended: bool = False
    error: UploadError | None = None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None


def _callbacks(state: _State) -> dict[str, object]:
    def fail(status: int, message: str) -> None:
        state.error = UploadError(status, message)
        raise state.error

    def on_part_begin() -> None:
        state.disposition = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        if bytes(state.header_field).strip().lower() == b"content-disposition":
            state.disposition = bytes(state.header_value)
        state.header_field.clear()
        state.header_value.clear()

    def on_headers_finished() -> None:
        kind, options = parse_options_header(state.disposition or b"")
        name = options.get(b"name", b"").decode("latin-1")
        if kind != b"form-data" or not name:
            fail(400, "multipart: a part without 'Content-Disposition: form-data; name=...'")
        if name not in PARTS:
            fail(400, f"multipart: unknown part {name!r} (expected {', '.join(PARTS)})")
        if name in state.parts:
            fail(400, f"multipart: part {name!r} is given twice")
        path = state.directory / name
        state.parts[name] = path
        state.sizes[name] = 0
        state.digests[name] = hashlib.sha256()
        state.current = name
        state.handle = path.open("wb")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        assert state.current is not None and state.handle is not None
        size = state.sizes[state.current] + end - start
        limit = _PART_LIMITS.get(state.current)
        if limit is not None and size > limit:
            fail(413, f"multipart: part {state.current!r} is larger than {limit} bytes")
        state.sizes[state.current] = size
        piece = data[start:end]
        state.digests[state.current].update(piece)
        state.handle.write(piece)

    def on_part_end() -> None:
        state.close()
        state.current = None

    def on_end() -> None:
        state.ended = True

    return {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
        "on_end": on_end,
    }


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a ``multipart/form-data`` content type.

    Raises:
        UploadError: not multipart/form-data with a boundary (400).
    """
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary or len(boundary) > 70:
        raise UploadError(400, "the body must be multipart/form-data with a boundary")
    return boundary


@dataclass(frozen=True)
class Received:
    """The parts of a push, each in its own file, by name (``card``, ``manifest``,
    ``fingerprints``), with the SHA-256 (hex) of the bytes written to each."""

    paths: dict[str, Path]
    sha256: dict[str, str]


async def receive(
    chunks: AsyncIterator[bytes],
    *,
    content_type: str | None,
    content_length: str | None,
    directory: Path,
    limit: int,
    idle_timeout: float = 60.0,
) -> Received:
    """Stream a push's body into one file per part under ``directory``.

    Returns:
        The files of the parts received and their digests.

    Raises:
        UploadError: 400 malformed, 408 the client stopped sending, 413 too large.
        starlette.requests.ClientDisconnect: the client went away (the caller cleans up).
    """
    boundary = boundary_of(content_type)
    if content_length is not None:
        if not content_length.isdigit():
            raise UploadError(400, "Content-Length is not a number")
        if int(content_length) > limit:
            raise UploadError(
                413, f"the upload announces {content_length} bytes, more than the {limit} allowed"
            )
    state = _State(directory, limit)
    parser = MultipartParser(boundary, _callbacks(state))  # type: ignore[arg-type]
    received = 0
    iterator = chunks.__aiter__()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(iterator.__anext__(), idle_timeout)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise UploadError(
                    408, f"no data from the client for {idle_timeout:g} s; upload abandoned"
                ) from None
            received += len(chunk)
            if received > limit:
                raise UploadError(413, f"the upload is larger than the {limit} bytes allowed")
            try:
                parser.write(chunk)
            except UploadError:
                raise
            except FormParserError as exc:
                raise UploadError(400, f"multipart: malformed body ({exc})") from None
        try:
            parser.finalize()
        except FormParserError as exc:
            raise UploadError(400, f"multipart: malformed body ({exc})") from None
    finally:
        state.close()
    if not state.ended:
        raise UploadError(400, "multipart: the body ends before its closing boundary")
    missing = [name for name in REQUIRED if name not in state.parts]
    if missing:
        raise UploadError(400, f"multipart: missing part(s) {', '.join(missing)}")
    return Received(
        dict(state.parts), {name: digest.hexdigest() for name, digest in state.digests.items()}
    )


async def drain(chunks: AsyncIterator[bytes], *, max_bytes: int, timeout: float) -> bool:
    """Read and discard what is left of a refused body, at most ``max_bytes`` for ``timeout``
    seconds, so that the answer is not lost to a connection reset by the client's unread bytes.

    Returns:
        True if the body ended, False if more was left (the connection must then be closed).
    """
    iterator = chunks.__aiter__()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    drained = 0
    try:
        while drained <= max_bytes:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            chunk = await asyncio.wait_for(iterator.__anext__(), remaining)
            drained += len(chunk)
    except StopAsyncIteration:
        return True
    except Exception:  # a client gone, a stalled one: the body did not end
        return False
    return False


__all__ = ["PARTS", "UploadError", "boundary_of", "drain", "receive"]
