"""JSON Schemas shipped with the package; the only module that imports jsonschema.

The schemas live in ``provenance/schemas/`` (``schemas/`` at the top of the repository is a link
to it) and are read with importlib.resources, so an installed wheel validates exactly what the
repository documents.
"""

from __future__ import annotations

import difflib
import functools
import json
from importlib import resources
from typing import Any

import jsonschema

from provenance.errors import SchemaError

CARD_PREDICATE = "card-predicate.v1.json"
CARD_STATEMENT = "card-statement.v1.json"
CARD_SPEC = "card-spec.v1.json"
MANIFEST_ENTRY = "manifest-entry.v1.json"
MANIFEST_SHARD = "manifest-shard.v1.json"
MANIFEST_INDEX = "manifest-index.v1.json"
TRUST_STORE = "trust-store.v1.json"
FILTER_REPORT = "filter-report.v1.json"


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the parsed schema ``name`` (a file name in ``provenance/schemas``)."""
    text = resources.files("provenance").joinpath("schemas", name).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = load_schema(name)
    registry: Any = None
    try:
        from referencing import Registry, Resource

        resources_ = []
        for item in resources.files("provenance").joinpath("schemas").iterdir():
            if item.name.endswith(".json"):
                loaded = json.loads(item.read_text("utf-8"))
                if "$id" in loaded:
                    resources_.append((loaded["$id"], Resource.from_contents(loaded)))
        registry = Registry().with_resources(resources_)
    except ImportError:  # pragma: no cover - referencing ships with jsonschema >= 4.18
        registry = None
    cls = jsonschema.validators.validator_for(schema)
    # The schemas ship with the package and tests/test_manifest_perf_invariants.py checks them
    # against their meta-schema; checking again on every run cost ~35 ms of each command.
    if registry is not None:
        return cls(schema, registry=registry)
    return cls(schema)


def validate(document: Any, name: str, *, what: str) -> None:
    """Validate ``document`` against schema ``name``.

    Raises:
        SchemaError: one line naming where the document is wrong and how: an unknown field with
            the closest known one, a value outside an enumeration with the allowed values, or
            else the first violation (in document order).
    """
    errors = list(_validator(name).iter_errors(document))
    if not errors:
        return
    described: list[tuple[int, list[str], str]] = []
    for error in errors:
        location = [str(p) for p in error.absolute_path]
        if error.validator in ("additionalProperties", "unevaluatedProperties"):
            message = _unknown_fields(error, name)
            if message is None:
                # Every field was reported as "unevaluated" because a sibling check failed
                # (unevaluatedProperties drops what a failing subschema saw): that one says why.
                continue
            described.append((0, location, message))
        elif error.validator == "enum" and isinstance(error.validator_value, list):
            allowed = ", ".join(
                v if isinstance(v, str) else json.dumps(v) for v in error.validator_value
            )
            described.append((1, location, f"{error.instance!r} is not one of: {allowed}"))
        else:
            message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
            described.append((1, location, message))
    if not described:  # pragma: no cover - an unevaluated-only report names its fields
        described.append((1, [str(p) for p in errors[0].absolute_path], errors[0].message))
    described.sort(key=lambda item: (item[0], item[1]))
    _, location, message = described[0]
    raise SchemaError(f"{what}: at {'/'.join(location) or '(top level)'}: {message}")


def _unknown_fields(error: jsonschema.ValidationError, root: str) -> str | None:
    """Name the fields of ``error.instance`` that its schema does not know, with suggestions.

    Returns:
        The message, or None when every field is known (the error then only echoes another).
    """
    known = _known_properties(error.schema, root, depth=0)
    if known is None or not isinstance(error.instance, dict):
        return error.message if len(error.message) <= 200 else error.message[:200] + "..."
    unknown = [key for key in error.instance if key not in known]
    if not unknown:
        return None
    parts = []
    for key in unknown[:5]:
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    noun = "field" if len(unknown) == 1 else "fields"
    return f"unknown {noun} {', '.join(parts)}{more}; known fields: {', '.join(sorted(known))}"


def _known_properties(fragment: Any, root: str, *, depth: int) -> set[str] | None:
    """The property names a schema fragment declares, following ``allOf`` and ``$ref``.

    Returns:
        The names, or None if a reference cannot be followed (the caller then keeps the
        validator's own message).
    """
    if not isinstance(fragment, dict) or depth > 16:
        return None
    names = set(fragment.get("properties", {}))
    for sub in fragment.get("allOf", []):
        found = _known_properties(sub, root, depth=depth + 1)
        if found is None:
            return None
        names |= found
    ref = fragment.get("$ref")
    if isinstance(ref, str):
        file_name, _, pointer = ref.partition("#")
        target_root = file_name or root
        try:
            target: Any = load_schema(target_root)
            for token in filter(None, pointer.split("/")):
                target = target[token.replace("~1", "/").replace("~0", "~")]
        except (OSError, KeyError, TypeError, ValueError):
            return None
        found = _known_properties(target, target_root, depth=depth + 1)
        if found is None:
            return None
        names |= found
    return names
