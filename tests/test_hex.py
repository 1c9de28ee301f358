"""The one SHA-256 hex check (``provenance._hex``): single, typed and bulk forms agree."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance._hex import (
    SHA256_HEX_PATTERN,
    first_invalid_sha256_hex,
    is_sha256_hex,
    sha256_hex,
    sha256_hex_digests,
)
from provenance.errors import FormatError

GOOD = hashlib.sha256(b"x").hexdigest()


def _plain(value: object) -> bool:
    """The rule written out: a str of length 64, every character one of 0-9 a-f."""
    return (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    )


@pytest.mark.parametrize(
    "value",
    [
        GOOD,
        "0" * 64,
        "f" * 64,
        GOOD.upper(),
        GOOD[:-1],
        GOOD + "0",
        GOOD + "\n",
        " " + GOOD[1:],
        GOOD[:-1] + "g",
        GOOD[:-1] + "\u0660",  # ARABIC-INDIC DIGIT ZERO: a digit to str.isdigit, not hex
        GOOD[:-1] + "\uff41",  # FULLWIDTH a
        "",
        None,
        b"0" * 64,
        64,
    ],
)
def test_is_sha256_hex_follows_the_rule(value: object) -> None:
    assert is_sha256_hex(value) == _plain(value)
    if _plain(value):
        assert sha256_hex(value, what="x") == value
    else:
        with pytest.raises(FormatError, match=r"^here: .* is not a SHA-256 \(64 lower-case hex"):
            sha256_hex(value, what="here")


def test_every_character_is_checked_at_every_position() -> None:
    for code in range(256):
        char = chr(code)
        for position in (0, 31, 63):
            value = GOOD[:position] + char + GOOD[position + 1 :]
            assert is_sha256_hex(value) == (char in "0123456789abcdef")
    assert re.fullmatch(SHA256_HEX_PATTERN.strip("^$"), GOOD)


_VALUES = st.lists(
    st.sampled_from([GOOD, "0" * 64, GOOD.upper(), GOOD[:63], GOOD + "a", GOOD[:63] + "\xe9"])
    | st.text(alphabet="0123456789abcdefABG \n\xe9", min_size=0, max_size=70),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(_VALUES)
def test_bulk_check_equals_the_single_check(values: list[str]) -> None:
    first = next((n for n, v in enumerate(values) if not is_sha256_hex(v)), None)
    assert first_invalid_sha256_hex(values) == first
    # The check that decodes says the same, and decodes each value on its own.
    decoded = sha256_hex_digests(values)
    if first is None:
        assert decoded == b"".join(bytes.fromhex(v) for v in values)
    else:
        assert decoded is None


def test_bulk_check_names_the_first_bad_value() -> None:
    assert first_invalid_sha256_hex([]) is None
    assert first_invalid_sha256_hex([GOOD] * 1000) is None
    # Lengths that add up (63 + 65) are still refused, and the first of them named.
    assert first_invalid_sha256_hex([GOOD, GOOD[:63], GOOD + "0", GOOD]) == 1
    assert first_invalid_sha256_hex([GOOD] * 5 + [GOOD.upper()]) == 5
    # Newlines inside values where the separators of 64-digit values would stand.
    assert first_invalid_sha256_hex([GOOD[:63], "\n" + GOOD]) == 0
    assert first_invalid_sha256_hex([GOOD, GOOD[:63] + "\n", GOOD[1:]]) == 1
    assert first_invalid_sha256_hex([GOOD, GOOD + "\n" + GOOD[1:]]) == 1


def test_decoding_check_refuses_what_fromhex_alone_would_take() -> None:
    assert sha256_hex_digests([]) == b""
    assert sha256_hex_digests([GOOD, "0" * 64]) == hashlib.sha256(b"x").digest() + bytes(32)
    for values in (
        [GOOD.upper()],  # fromhex takes upper case
        [GOOD[:62] + " 0"],  # and skips spaces between digit pairs
        [GOOD[:63], GOOD + "0"],  # lengths that add up to 128 (one digit moves across)
        [GOOD[:63] + "\u0660"],  # a digit to str.isdigit, not hex
        [GOOD, GOOD[:63] + "\n"],
    ):
        assert sha256_hex_digests(values) is None, values
        assert first_invalid_sha256_hex(values) is not None
