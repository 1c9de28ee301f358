"""The shipped schemas: valid, anchored the same way in every regex dialect, and agreeing with
the typed decoders that read documents in their place.

Patterns: Python's ``$`` (which jsonschema uses) also matches before a final newline, so ``^x$``
accepts ``"x\\n"``; ECMA-262 does not. Every anchored pattern in the shipped schemas ends in
``$(?!\\n)``, which means "the true end" in both dialects.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provenance import _json, manifest, schema
from provenance.errors import FormatError, SchemaError

SCHEMAS = sorted((Path(schema.__file__).parent / "schemas").glob("*.json"))


def _patterns(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [value["pattern"]] if isinstance(value.get("pattern"), str) else []
        return found + [p for item in value.values() for p in _patterns(item)]
    if isinstance(value, list):
        return [p for item in value for p in _patterns(item)]
    return []


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.name)
def test_anchored_patterns_refuse_a_trailing_newline(path: Path) -> None:
    for pattern in _patterns(json.loads(path.read_text())):
        if pattern.endswith("$") or "$" in pattern:
            assert pattern.endswith("$(?!\\n)"), f"{path.name}: {pattern}"


def test_trailing_newline_is_refused_in_a_trust_store_keyid() -> None:
    document = {
        "version": 1,
        "keys": [{"keyid": "a" * 64 + "\n", "name": "x", "publicKey": "", "roles": ["auditor"]}],
    }
    with pytest.raises(SchemaError, match="keyid"):
        schema.validate(document, schema.TRUST_STORE, what="t")
    document["keys"][0]["keyid"] = "a" * 64
    schema.validate(document, schema.TRUST_STORE, what="t")


# ----------------------------------------------------------------------------------------------
# The typed decoder agrees with schemas/manifest-entry.v1.json

SCHEMA = json.loads(
    (Path(manifest.__file__).parent.parent / "schemas" / "manifest-entry.v1.json").read_text(
        "utf-8"
    )
)


_HEX = "0123456789abcdef"


_texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
    st.sampled_from(["", "x" * 4095, "x" * 4096, "x" * 4097, "\u00e9" * 4096, "\u00e9" * 4097]),
)


_digests = st.one_of(
    st.text(st.sampled_from(_HEX), min_size=64, max_size=64),
    st.text(st.sampled_from(_HEX), min_size=63, max_size=65),
    st.text(st.sampled_from(_HEX + "ABCDEFg"), min_size=64, max_size=64),
    st.text(st.sampled_from(_HEX), min_size=64, max_size=64).map(lambda s: s + "\n"),
    st.text(st.sampled_from(_HEX), min_size=64, max_size=64).map(lambda s: "\n" + s),
)


_sizes = st.one_of(
    st.integers(min_value=-5, max_value=2**53 + 5),
    st.sampled_from([0, 2**53 - 1, 2**53, 2**64, -(2**63), 1.0, 1.5, 1e300, -0.0]),
    st.booleans(),
)


_other_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


_ids = st.one_of(
    _texts,
    st.sampled_from(
        [
            "..", "../a", "a/..", "a/../b", "...", "a..b", "a/...", "/a", "/", "a/", "a//b",
            "a\x00", "a\x1b[2K", "a\x7f", "a\x85", "a\x9f", "\xa0", "a\u2028", "a\u2029",
            "a\u202eb", "a\u2066", "\u061c", "\u200e", "\u200d", "\ufeff", "a/..\n",
            "caf\u00e9", "cafe\u0301", "\u212b", "\u0301",
        ]
    ),
)  # fmt: skip


_FIELDS: dict[str, Any] = {
    "id": _ids,
    "sha256": _digests,
    "size": _sizes,
    "source": _texts,
    "url": _texts,
    "license": _texts,
    "rightsHolder": _texts,
    "textSha256": _digests,
}


_valid_texts = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=20),
    st.sampled_from(["x" * 4096, "\u00e9" * 4096, '\u0000\n\u2028"\\', "/\u007f"]),
)


_valid_digests = st.text(st.sampled_from(_HEX), min_size=64, max_size=64)


_valid_ids = st.one_of(
    st.text(st.characters(exclude_categories=("Cs", "Cc", "Cf", "Zl", "Zp")), min_size=1)
    .map(lambda text: unicodedata.normalize("NFC", text))
    .filter(lambda text: not text.startswith("/") and ".." not in text.split("/")),
    st.sampled_from(["x" * 4096, "\u00e9" * 4096, 'a/"b"\\c', "\u200d\ufeff"]),
)


_VALID: dict[str, Any] = {
    "id": _valid_ids,
    "sha256": _valid_digests,
    "size": st.integers(min_value=0, max_value=2**53 - 1),
    "source": _valid_texts,
    "url": _valid_texts,
    "license": _valid_texts,
    "rightsHolder": _valid_texts,
    "textSha256": _valid_digests,
}


@st.composite
def _documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid entry, then up to two edits that may or may not make it invalid."""
    document: dict[str, Any] = {}
    for name, values in _VALID.items():
        if name in ("id", "sha256") or draw(st.booleans()):
            document[name] = draw(values)
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        name = draw(st.sampled_from(sorted(_FIELDS)))
        edit = draw(st.sampled_from(["drop", "edge", "edge", "mistype", "unknown"]))
        if edit == "drop":
            document.pop(name, None)
        elif edit == "edge":
            document[name] = draw(_FIELDS[name])
        elif edit == "mistype":
            document[name] = draw(_other_values)
        else:
            document[draw(st.sampled_from(["extra", "ID", "sha-256", ""]))] = draw(_other_values)
    return document


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_documents())
def test_entry_decoder_agrees_with_the_schema(document: dict[str, Any]) -> None:
    try:
        line = _json.canonical(document)  # a manifest line is the canonical form of its entry
    except FormatError:  # no canonical form (an integer beyond 2**53): the compact JSON, then
        line = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    decoded = json.loads(line)
    valid = jsonschema.Draft202012Validator(SCHEMA).is_valid(decoded)
    if valid:  # the one id rule beyond the schema
        valid = unicodedata.is_normalized("NFC", decoded["id"])
    try:
        entry = manifest.decode_entry(line, what="line")
    except FormatError:
        assert not valid, f"the decoder refuses what the schema accepts: {line!r}"
        # The block reader's fast path never accepts what the line decoder refuses.
        assert manifest.reader._check_block(line + b"\n", manifest.entry._OrderState()) is None
        return
    assert valid, f"the decoder accepts what the schema refuses: {line!r}"
    assert manifest.entry_bytes(entry) == line
    # The fast path accepts it too, unless the line is long enough to need the exact check.
    fast = manifest.reader._check_block(line + b"\n", manifest.entry._OrderState())
    assert fast == [entry] or (fast is None and len(line) >= manifest.reader._LINE_WINDOW)


def test_every_shipped_schema_is_valid_against_its_meta_schema() -> None:
    """schema.py does not check them at run time (it cost every command ~35 ms): this does."""
    from provenance import schema

    folder = Path(schema.__file__).parent / "schemas"
    names = sorted(p.name for p in folder.glob("*.json"))
    assert len(names) >= 5
    for name in names:
        document = schema.load_schema(name)
        jsonschema.validators.validator_for(document).check_schema(document)
