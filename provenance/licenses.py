"""SPDX license expressions, validated offline with ``license-expression``.

``LicenseRef-*`` (and ``DocumentRef-*:LicenseRef-*``) ids are accepted, as SPDX allows; so is the
whole expression ``NOASSERTION``. The library raises odd exception types on some malformed
expressions (AttributeError on ``"MIT OR"``), so every failure is turned into one InputError.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from provenance.errors import FormatError

_CUSTOM_ID = re.compile(r"^(DocumentRef-[A-Za-z0-9.\-]+:)?LicenseRef-[A-Za-z0-9.\-]+$")
MAX_EXPRESSION_LENGTH = 1000


@functools.cache
def _licensing() -> Any:
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@functools.cache
def normalize_license(expression: str) -> str:
    """Return the normalized form of an SPDX license expression.

    Raises:
        FormatError: not a valid expression, or it names an id that is neither on the SPDX
            license list nor a ``LicenseRef-`` id.
    """
    text = expression.strip()
    if not text or len(text) > MAX_EXPRESSION_LENGTH:
        raise FormatError(f"license {expression!r}: empty or too long")
    if text == "NOASSERTION":
        return text
    licensing = _licensing()
    try:
        parsed = licensing.parse(text, validate=False, strict=True)
        unknown = [
            key for key in licensing.unknown_license_keys(parsed) if not _CUSTOM_ID.match(key)
        ]
    except Exception as exc:  # noqa: BLE001 - the library raises several unrelated types
        detail = str(exc) or type(exc).__name__
        raise FormatError(
            f"license {expression!r} is not a valid SPDX expression: {detail}"
        ) from None
    if parsed is None:
        raise FormatError(f"license {expression!r} is not a valid SPDX expression")
    if unknown:
        raise FormatError(
            f"license {expression!r}: unknown SPDX id(s) {', '.join(unknown)}"
            " (use an id from the SPDX license list, or LicenseRef-<name> for your own)"
        )
    rendered: str = parsed.render()
    return rendered


def license_ids(expression: str) -> list[str]:
    """Return the license ids in ``expression`` (a valid expression), in order, without repeats.

    ``NOASSERTION`` has none.

    Raises:
        FormatError: not a valid SPDX expression.
    """
    text = normalize_license(expression)
    if text == "NOASSERTION":
        return []
    keys: list[str] = _licensing().license_keys(_licensing().parse(text, validate=False))
    return keys
