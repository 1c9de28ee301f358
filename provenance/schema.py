"""JSON Schemas shipped with the package; the only module that imports jsonschema.

The schemas live in ``provenance/schemas/`` (``schemas/`` at the top of the repository is a link
to it) and are read with importlib.resources, so an installed wheel validates exactly what the
repository documents.
"""

from __future__ import annotations

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
        SchemaError: naming the first (deepest-path) violation and where it is.
    """
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        location = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        message = error.message if len(error.message) <= 200 else error.message[:200] + "..."
        raise SchemaError(f"{what}: at {location}: {message}")
