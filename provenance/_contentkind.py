"""What a content can be, told from its first bytes and a NUL scan, without numpy.

The hashing processes use it to skip fingerprinting (and importing numpy for it) for contents
that can have no fingerprint: :func:`provenance.fingerprints.content_prints` fingerprints images
(by their magic number) and text (no NUL byte), nothing else.
"""

from __future__ import annotations

IMAGE_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF
    b"MM\x00*",
)
IMAGE_FIRST_BYTES = frozenset(m[:1] for m in (*IMAGE_MAGIC, b"RIFF"))


def is_image(data: bytes) -> bool:
    """True if ``data`` starts like a PNG, JPEG, GIF, BMP, TIFF or WebP file."""
    return data.startswith(IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def may_have_prints(data: bytes) -> bool:
    """False only when ``data`` can have no fingerprint: it holds a NUL byte (so it is not
    text) and cannot start like an image."""
    return data[:1] in IMAGE_FIRST_BYTES or b"\x00" not in data
