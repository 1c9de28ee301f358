"""Card specs: the developer-written part of a dataset card (YAML or JSON).

A spec names the dataset, its publisher and its sources; :func:`load_spec` reads and checks it
(``schemas/card-spec.v1.json``). YAML is read restricted to JSON's data model: no aliases, no
duplicate keys, nesting bounded as JSON's is, and the result round-trips through strict JSON.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from provenance import _json, schema
from provenance.errors import FormatError
from provenance.globs import GlobSet
from provenance.licenses import normalize_license

MAX_SPEC_BYTES = 16 * 1024 * 1024


def load_spec(data: bytes, *, what: str) -> dict[str, Any]:
    """Parse a card spec (JSON, or YAML restricted to JSON's data model) and validate it.

    Raises:
        FormatError, SchemaError: malformed, or not matching ``schemas/card-spec.v1.json``, or a
            license that is not a valid SPDX expression, or a source id used twice.
    """
    if len(data) > MAX_SPEC_BYTES:
        raise FormatError(f"{what}: larger than {MAX_SPEC_BYTES} bytes")
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        document = _json.loads(data, what=what)
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{what}: not valid UTF-8 at byte {exc.start}") from None
        try:
            document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader subclass
        except _YAMLLimitError as exc:
            raise FormatError(f"{what}: {exc}") from None
        except yaml.YAMLError as exc:
            raise FormatError(f"{what}: malformed YAML: {exc}".replace("\n", " ")) from None
        except RecursionError:  # pragma: no cover - the depth limit stops nesting long before
            raise FormatError(f"{what}: nesting deeper than {_json.MAX_DEPTH} levels") from None
        # Round-trip through strict JSON so that YAML cannot smuggle in what JSON refuses.
        document = _json.loads(_json.canonical(_plain(document, what)), what=what)
    schema.validate(document, schema.CARD_SPEC, what=what)
    seen: set[str] = set()
    for index, source in enumerate(document["sources"]):
        if source["id"] in seen:
            raise FormatError(f"{what}: sources/{index}: id {source['id']!r} is used twice")
        seen.add(source["id"])
        try:
            source["license"] = normalize_license(source["license"])
        except FormatError as exc:
            raise FormatError(f"{what}: sources/{index}: {exc}") from None
        if not source.get("paths") and not source.get("domains"):
            source.setdefault("paths", [])
        try:
            GlobSet(source.get("paths", ()))
        except FormatError as exc:
            raise FormatError(f"{what}: sources/{index}: paths: {exc}") from None
    return dict(document)


class _YAMLLimitError(yaml.YAMLError):
    """YAML that the spec reader refuses before building it: aliases, or too deep nesting."""


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate mapping keys, aliases and deep nesting.

    Aliases are refused outright: a few hundred bytes of nested aliases expand to gigabytes
    ("billion laughs"), and a spec has no need of them. Nesting is bounded as JSON's is
    (:data:`provenance._json.MAX_DEPTH`) while the document is composed, before PyYAML's
    recursive composer and constructor could run out of stack.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _YAMLLimitError(
                f"YAML aliases (*{event.anchor}) are not allowed, at line"
                f" {event.start_mark.line + 1}"
            )
        if self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            if self._depth >= _json.MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _YAMLLimitError(
                    f"nesting deeper than {_json.MAX_DEPTH} levels, at line {mark.line + 1}"
                )
            self._depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _plain(value: Any, what: str) -> Any:
    """Turn YAML values into JSON ones; dates become ISO strings, other types are refused."""
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise FormatError(f"{what}: mapping key {key!r} is not a string")
        return {key: _plain(item, what) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, what) for item in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:  # NaN
        raise FormatError(f"{what}: NaN is not allowed")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise FormatError(f"{what}: value of type {type(value).__name__} is not allowed")
