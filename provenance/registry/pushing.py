"""``registry push``: a signed card, its manifest and sidecar streamed to a registry, and the
receipt believed only once verified (see :mod:`provenance.registry.client`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from provenance._files import atomic_write, check_output_path, read_bytes
from provenance.envelope import MAX_ENVELOPE_BYTES, Envelope
from provenance.errors import InputError, VerificationError
from provenance.logclient import log_verifiers
from provenance.registry._answers import MAX_ANSWER_BYTES, json_object, refused, verified_entry
from provenance.signednote import Checkpoint
from provenance.tlog import LogEntry
from provenance.trust import TrustStore

if TYPE_CHECKING:
    from provenance._http import FetchOptions


class MultipartBody:
    """A ``multipart/form-data`` body (length known upfront): parts given as bytes are sent as
    they are, parts given as files are read as they are sent, and hashed on the way
    (:attr:`digests`), so that what was sent is what is checked."""

    def __init__(
        self,
        parts: Sequence[tuple[str, Path | bytes, str]],
        *,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """``parts``: (name, content or file, content type) each."""
        self.boundary = f"provenance-{secrets.token_hex(16)}"
        self._segments: list[bytes | tuple[str, Path, int]] = []
        for name, content, content_type in parts:
            head = (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}";'
                f' filename="{name}"\r\nContent-Type: {content_type}\r\n\r\n'
            )
            if isinstance(content, bytes):
                self._segments += [head.encode("ascii") + content + b"\r\n"]
                continue
            try:
                size = os.stat(content).st_size
            except OSError as exc:
                raise InputError(f"{content}: cannot read: {exc.strerror}") from None
            self._segments += [head.encode("ascii"), (name, content, size), b"\r\n"]
        self._segments.append(f"--{self.boundary}--\r\n".encode("ascii"))
        self.length = sum(_size(s) for s in self._segments)
        self.on_progress = on_progress
        self.digests: dict[str, str] = {}
        """The SHA-256 of each file part, once it was sent whole."""
        self._chunks: Iterator[bytes] | None = None
        self._buffer = b""
        self.sent = 0

    @property
    def content_type(self) -> str:
        """The body's Content-Type, with its boundary."""
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        for segment in self._segments:
            if isinstance(segment, bytes):
                yield self._count(segment)
                continue
            name, path, size = segment
            digest = hashlib.sha256()
            handle: BinaryIO
            with path.open("rb") as handle:
                read = 0
                while chunk := handle.read(1 << 20):
                    read += len(chunk)
                    if read > size:
                        raise InputError(f"{path}: grew while it was being sent")
                    digest.update(chunk)
                    yield self._count(chunk)
            if read != size:
                raise InputError(f"{path}: changed size while it was being sent")
            self.digests[name] = digest.hexdigest()

    def read(self, amount: int = -1) -> bytes:
        """Read up to ``amount`` bytes of the body (all that is left when negative)."""
        if self._chunks is None:
            self._chunks = iter(self)
        while amount < 0 or len(self._buffer) < amount:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if amount < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:amount], self._buffer[amount:]
        return data

    def _count(self, chunk: bytes) -> bytes:
        self.sent += len(chunk)
        if self.on_progress is not None:
            self.on_progress(self.sent, self.length)
        return chunk


def _size(segment: bytes | tuple[str, Path, int]) -> int:
    return len(segment) if isinstance(segment, bytes) else segment[2]


@dataclass(frozen=True, slots=True)
class PushReport:
    """A push the registry accepted, with its verified receipt."""

    created: bool
    """False when the card was registered before (the first registration's answer)."""
    receipt: bytes
    index: int
    checkpoint: Checkpoint
    entry: LogEntry
    """The registration as logged (the receipt verified): what is reported, never the
    registry's own description of it."""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: the registration as its verified log entry says."""
        return {
            "ok": True,
            "created": self.created,
            "card": {
                "id": self.entry.card,
                "name": self.entry.name,
                "version": self.entry.version,
                "publisher": list(self.entry.publisher),
                "entries": self.entry.entries,
                "logIndex": self.index,
            },
            "index": self.index,
            "checkpoint": {"origin": self.checkpoint.origin, "size": self.checkpoint.size},
        }


def push(
    url: str,
    signed: Path,
    manifest: Path,
    store: TrustStore,
    *,
    at: dt.datetime,
    fingerprints: Path | None = None,
    output: Path | None = None,
    options: FetchOptions | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> PushReport:
    """Push a signed card with its manifest (and sidecar) to the registry at ``url``; with
    ``output``, write the receipt there once it verified (nothing is written otherwise).

    The card is read once and sent as read; the manifest is hashed as it is sent, and the
    receipt must name those bytes.

    Returns:
        The registration and its receipt, verified against the trust store's log keys.

    Raises:
        InputError: a bad URL, a missing file, a card that is not a DSSE envelope, no
            transparency-log key in ``store``, or the registry found the push malformed or
            too large (400, 413).
        VerificationError: the registry refused the card (403 untrusted signer, 409 another
            card under this name and version, 422 the manifest or sidecar is not the card's),
            or its receipt does not verify or names another card or manifest.
        FetchError: the registry could not be reached or could not answer.
    """
    from provenance._http import Fetcher, check_base_url

    base = check_base_url(url, what="a registry")
    verifiers = log_verifiers(store, at=at)
    if output is not None:  # before the push: a registration whose receipt cannot be kept
        check_output_path(output)
    envelope_bytes = read_bytes(signed, limit=MAX_ENVELOPE_BYTES, what=str(signed))
    envelope = Envelope.from_json(envelope_bytes, what=str(signed))
    card_id = hashlib.sha256(envelope.payload).hexdigest()
    parts: list[tuple[str, Path | bytes, str]] = [
        ("card", envelope_bytes, "application/json"),
        ("manifest", manifest, "application/x-ndjson"),
    ]
    if fingerprints is not None:
        parts.append(("fingerprints", fingerprints, "application/octet-stream"))
    body = MultipartBody(parts, on_progress=on_progress)
    with Fetcher(options) as fetcher:
        answer = fetcher.post(
            f"{base}/v1/cards",
            data=body,
            headers={"Content-Type": body.content_type, "Accept": "application/json"},
            max_bytes=MAX_ANSWER_BYTES,
        )
    if answer.status not in (200, 201):
        raise refused(answer, f"push to {base}")
    document = json_object(answer.body, f"push to {base}")
    receipt = document.get("receipt")
    if not isinstance(receipt, str):
        raise VerificationError(f"push to {base}: the registry's answer holds no receipt")
    receipt_bytes = receipt.encode("utf-8")
    index, checkpoint, entry = verified_entry(
        receipt_bytes, verifiers, what=f"the receipt from {base}"
    )
    manifest_sha256 = body.digests.get("manifest")
    if manifest_sha256 is None:  # the registry answered before the whole manifest was sent
        raise VerificationError(f"push to {base}: answered before the manifest was sent whole")
    problems = []
    if entry.card != card_id:
        problems.append(f"it names card {entry.card}, not this card ({card_id})")
    if entry.manifest != manifest_sha256:
        problems.append(f"it names manifest {entry.manifest}, not {manifest} ({manifest_sha256})")
    envelope_sha256 = hashlib.sha256(envelope_bytes).hexdigest()
    if answer.status == 201 and entry.envelope != envelope_sha256:
        problems.append(f"it names envelope {entry.envelope}, not {signed} ({envelope_sha256})")
    if problems:
        raise VerificationError(
            f"the receipt from {base} is not for this push: " + "; ".join(problems)
        )
    if output is not None:
        atomic_write(output, receipt_bytes)
    return PushReport(answer.status == 201, receipt_bytes, index, checkpoint, entry)


__all__ = ["MultipartBody", "PushReport", "push"]
