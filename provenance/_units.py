"""Sizes for people: exact byte counts with thousands separators, and binary units beside them."""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def format_size(size: int) -> str:
    """Return ``size`` as exact bytes, with IEC binary units from 1 KiB on.

    ``format_size(713)`` is ``"713 bytes"``; ``format_size(1003605)`` is
    ``"1,003,605 bytes (980.1 KiB)"``.
    """
    text = f"{size:,} byte{'' if size == 1 else 's'}"
    if size < 1024:
        return text
    value = size / 1024
    index = 0
    while round(value, 1) >= 1024 and index < len(_UNITS) - 1:
        value /= 1024
        index += 1
    return f"{text} ({value:.1f} {_UNITS[index]})"
