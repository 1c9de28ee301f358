"""Schema patterns are anchored the same way in every regex dialect.

Python's ``$`` (which jsonschema uses) also matches before a final newline, so ``^x$`` accepts
``"x\\n"``; ECMA-262 does not. Every anchored pattern in the shipped schemas ends in
``$(?!\\n)``, which means "the true end" in both dialects.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provenance import schema
from provenance.errors import SchemaError

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
