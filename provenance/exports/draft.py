"""Card spec drafts from existing Hugging Face or Croissant cards (``provenance card draft``).

A draft holds what the card states: name, description, publisher, sources and licenses, with
license names normalized to SPDX by :mod:`provenance.exports.licenses`. Whatever the card does
not state, or states in a way that names no single SPDX license, is written as a placeholder
(``NOASSERTION`` for a license, ``TODO`` for text) with a ``# TODO:`` comment saying why:
nothing is guessed. The draft is a valid spec, so ``card build`` reads it once the TODOs are
settled.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provenance import _json
from provenance.errors import FormatError
from provenance.exports.licenses import NOASSERTION, Mapped, from_hub_id, from_text

KINDS = ("web-crawl", "licensed", "public-domain", "open-license", "user-contributed",
         "synthetic", "dataset")  # fmt: skip
PLACEHOLDER = "TODO"
MAX_CARD_BYTES = 16 * 1024 * 1024
_ID = re.compile(r"[^A-Za-z0-9._-]+")
_HUB_DATASET_URL = "https://huggingface.co/datasets/{}"


@dataclass
class Value:
    """A spec value with the TODO notes to write above it."""

    value: Any
    todos: list[str] = field(default_factory=list)


@dataclass
class Draft:
    """A spec draft: ordered keys, each a :class:`Value` (sources: a list of such mappings)."""

    origin: str
    fields: dict[str, Value]
    publisher: dict[str, Value]
    sources: list[dict[str, Value]]

    @property
    def todo_count(self) -> int:
        """How many TODO notes the draft carries."""
        values = [*self.fields.values(), *self.publisher.values()]
        values += [v for source in self.sources for v in source.values()]
        return sum(len(v.todos) for v in values)

    def to_spec(self) -> dict[str, Any]:
        """The draft as a spec document (without its comments)."""
        return {
            **{k: v.value for k, v in self.fields.items()},
            "publisher": {k: v.value for k, v in self.publisher.items()},
            "sources": [{k: v.value for k, v in s.items()} for s in self.sources],
        }

    def to_yaml(self) -> str:
        """The draft as YAML with its TODO comments (scalars in JSON form, which YAML reads)."""
        lines = [
            f"# Card spec drafted by 'provenance card draft' from {self.origin}.",
            "# Settle every TODO before 'provenance card build': nothing below was guessed.",
            "# Sources claim manifest entries by 'paths' (globs) or 'domains'; see the README.",
        ]

        def emit(indent: str, key: str, item: Value, first: str = "") -> None:
            for note in item.todos:
                lines.append(f"{indent}# TODO: {' '.join(note.split())}")
            lines.append(f"{first or indent}{key}: {json.dumps(item.value, ensure_ascii=False)}")

        for key, item in self.fields.items():
            emit("", key, item)
        lines.append("publisher:")
        for key, item in self.publisher.items():
            emit("  ", key, item)
        lines.append("sources:")
        for source in self.sources:
            notes = [n for item in list(source.values())[:1] for n in item.todos]
            for note in notes:
                lines.append(f"  # TODO: {' '.join(note.split())}")
            for index, (key, item) in enumerate(source.items()):
                if index == 0:
                    lines.append(f"  - {key}: {json.dumps(item.value, ensure_ascii=False)}")
                else:
                    emit("    ", key, item)
        return "\n".join(lines) + "\n"


def _source_id(text: str, taken: set[str]) -> str:
    base = _ID.sub("-", text).strip("-._")[:90] or "source"
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}-{number}", number + 1
    taken.add(candidate)
    return candidate


def _combine(mapped: Sequence[Mapped], what: str) -> Value:
    """One license value for several mapped licenses of one card or source."""
    if not mapped:
        return Value(NOASSERTION, [f"{what} states no license"])
    unmapped = [m.todo for m in mapped if m.todo]
    if unmapped:
        notes = [f"{what}: {note}" for note in unmapped if note]
        known = [m.expression for m in mapped if m.todo is None]
        if known:
            notes.append(f"{what} also names {', '.join(known)}")
        return Value(NOASSERTION, notes)
    expressions = list(dict.fromkeys(m.expression for m in mapped))
    if len(expressions) == 1:
        return Value(expressions[0])
    return Value(
        " AND ".join(f"({e})" if " " in e else e for e in expressions),
        [
            f"{what} lists several licenses, joined here with AND; if each covers a different"
            " part of the data, split this source in one per license"
        ],
    )


def _text(value: Any) -> str | None:
    """A card's text value, trimmed (runs of blank lines and indentation dropped)."""
    if not isinstance(value, str) or not value.strip():
        return None
    lines = [" ".join(line.split()) for line in value.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# ----------------------------------------------------------------------------------------------
# Hugging Face


def _front_matter(text: str, what: str) -> tuple[dict[str, Any], str]:
    from provenance.card.spec import _StrictLoader

    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}, text
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            try:
                loaded = yaml.load("\n".join(lines[1:index]), Loader=_StrictLoader)  # noqa: S506
            except yaml.YAMLError as exc:
                message = f"{what}: malformed YAML front matter: {exc}".replace("\n", " ")
                raise FormatError(message) from None
            if loaded is None:
                loaded = {}
            if not isinstance(loaded, dict):
                raise FormatError(f"{what}: the YAML front matter is not a mapping")
            return loaded, "\n".join(lines[index + 1 :])
    raise FormatError(f"{what}: the YAML front matter has no closing '---'")


_MORE = re.compile(r"\[More Information Needed\](?:\([^)]*\))?")


def _section(body: str, heading: str) -> str | None:
    """The text under a Markdown heading (any level), up to the next heading."""
    match = re.search(
        rf"^#+\s*{re.escape(heading)}\s*$\n(.*?)(?=^#+\s|\Z)", body, re.MULTILINE | re.DOTALL
    )
    if not match:
        return None
    text = _MORE.sub("", match[1]).strip()
    return text or None


def _bullet(body: str, label: str) -> str | None:
    """The value of a ``- **Label:** value`` line (or ``- [**Label:**](value)``)."""
    match = re.search(rf"^\s*[-*]\s*\*\*{re.escape(label)}:?\*\*:?\s*(.*)$", body, re.MULTILINE)
    if not match:
        match = re.search(
            rf"^\s*[-*]\s*\[\*\*{re.escape(label)}:?\*\*:?\]\(([^)\s]+)\)", body, re.MULTILINE
        )
    if not match:
        return None
    value = _MORE.sub("", match[1]).strip()
    return value or None


def _link_target(text: str) -> str:
    match = re.search(r"\[[^\]]*\]\(([^)]+)\)", text)
    return match[1] if match else text


def from_huggingface(data: bytes, *, what: str) -> Draft:
    """Draft a spec from a Hugging Face dataset card (README.md).

    Raises:
        FormatError: not UTF-8, or malformed front matter.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{what}: not valid UTF-8 at byte {exc.start}") from None
    meta, body = _front_matter(text, what)
    title = re.search(r"^#\s+Dataset Card for\s+(.+?)\s*$", body, re.MULTILINE)
    name = _text(meta.get("pretty_name")) or (title[1] if title else None)
    fields: dict[str, Value] = {
        "name": Value(name or PLACEHOLDER, [] if name else ["the card names no dataset"]),
        "version": Value(PLACEHOLDER, ["a Hub card has no version: give the dataset's"]),
    }
    description = _section(body, "Dataset Summary") or _section(body, "Dataset Description")
    fields["description"] = Value(
        description or "", [] if description else ["the card has no dataset summary"]
    )
    curator = _bullet(body, "Curated by") or _section(body, "Dataset Curators")
    publisher: dict[str, Value] = {
        "name": Value(
            PLACEHOLDER,
            [
                "who publishes the dataset; the card's curators section says: "
                + (curator[:300] if curator else "nothing")
            ],
        )
        if not curator or len(curator) > 200 or "\n" in curator
        else Value(curator)
    }
    homepage = _bullet(body, "Homepage")
    if homepage:
        publisher["url"] = Value(_link_target(homepage))
    contact = _bullet(body, "Point of Contact")
    if contact:
        target = _link_target(contact)
        contact_value = target.removeprefix("mailto:") if target else contact
        publisher["contact"] = Value(contact_value[:200])
    licenses = meta.get("license")
    values = [licenses] if isinstance(licenses, str) else licenses or []
    mapped = [from_hub_id(str(v)) for v in values]
    license_value = _combine(mapped, "the card's license")
    if any(str(v).lower() == "other" for v in values):
        details = [
            f"{key}: {meta[key]}"
            for key in ("license_name", "license_link", "license_details")
            if meta.get(key)
        ]
        if details:
            license_value.todos.append("the card says " + "; ".join(details))
    taken: set[str] = set()
    origins = meta.get("source_datasets") or ["original"]
    if isinstance(origins, str):
        origins = [origins]
    sources: list[dict[str, Value]] = []
    for origin in origins:
        origin = str(origin)
        if origin.startswith("extended|"):
            upstream = origin.split("|", 1)[1]
            source = {
                "id": Value(_source_id(upstream, taken)),
                "name": Value(upstream),
                "kind": Value("dataset"),
                "license": Value(
                    license_value.value,
                    list(license_value.todos)
                    + ["the license is the card's, for the whole dataset: check this source's own"],
                ),
            }
            if "/" in upstream:
                source["homepage"] = Value(_HUB_DATASET_URL.format(upstream))
        else:
            label = name or "this dataset"
            source = {
                "id": Value(_source_id(origin if origin != "original" else "original", taken)),
                "name": Value(label if origin == "original" else origin),
                "kind": Value(
                    "dataset",
                    [f"the card does not say how the data was obtained: one of {', '.join(KINDS)}"],
                ),
                "license": Value(license_value.value, list(license_value.todos)),
            }
            if homepage:
                source["homepage"] = Value(_link_target(homepage))
        sources.append(source)
    _add_paths(sources)
    return Draft(f"the Hugging Face card {what}", fields, publisher, sources)


def _add_paths(sources: list[dict[str, Value]]) -> None:
    if len(sources) == 1:
        sources[0]["paths"] = Value(["**"])
        return
    for source in sources:
        source["paths"] = Value(
            [], ["which files or records come from this source (path globs, or 'domains')"]
        )


# ----------------------------------------------------------------------------------------------
# Croissant


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _croissant_license(value: Any) -> Mapped:
    if isinstance(value, Mapping):
        name = _text(value.get("name"))
        if name and re.fullmatch(r"LicenseRef-[A-Za-z0-9.-]+", name):
            return Mapped(name)
        for candidate in (name, _text(value.get("url")), _text(value.get("@id"))):
            if candidate:
                mapped = from_text(candidate)
                if mapped.todo is None:
                    return mapped
        return Mapped(NOASSERTION, f"license {json.dumps(value)[:200]} names no SPDX license")
    if isinstance(value, str):
        return from_text(value)
    return Mapped(NOASSERTION, f"license {json.dumps(value)[:200]} is not a name or URL")


def _agent_name(value: Any) -> str | None:
    for item in _as_list(value):
        if isinstance(item, Mapping):
            name = _text(item.get("name")) or _text(item.get("prov:label"))
            if name:
                return name
        elif isinstance(item, str) and item.strip():
            return item.strip()
    return None


_COLLECTION_KINDS = {"web scraping": "web-crawl", "web api": "web-crawl"}


def from_croissant(data: bytes, *, what: str) -> Draft:
    """Draft a spec from a Croissant JSON-LD file.

    Raises:
        FormatError: not strict JSON, or not a JSON object.
    """
    doc = _json.loads_object(data, what=what)
    name = _text(doc.get("name"))
    version = doc.get("version")
    fields: dict[str, Value] = {
        "name": Value(name or PLACEHOLDER, [] if name else ["the card names no dataset"]),
        "version": Value(str(version))
        if isinstance(version, str | int | float) and str(version).strip()
        else Value(PLACEHOLDER, ["the card gives no version"]),
    }
    description = _text(doc.get("description"))
    fields["description"] = Value(
        description or "", [] if description else ["the card has no description"]
    )
    agents = _as_list(doc.get("publisher")) or _as_list(doc.get("creator"))
    publisher_name = _agent_name(agents)
    publisher: dict[str, Value] = {
        "name": Value(publisher_name)
        if publisher_name
        else Value(PLACEHOLDER, ["the card names no publisher or creator"])
    }
    first = next((a for a in agents if isinstance(a, Mapping)), None)
    if first is not None and _text(first.get("url")):
        publisher["url"] = Value(_text(first.get("url")))
    if first is not None and _text(first.get("email")):
        publisher["contact"] = Value(_text(first.get("email")))
    others = [_agent_name(a) for a in agents[1:]]
    if [o for o in others if o]:
        publisher["name"].todos.append("the card also names: " + ", ".join(o for o in others if o))
    dataset_license = _combine(
        [_croissant_license(v) for v in _as_list(doc.get("license"))], "the card's license"
    )
    taken: set[str] = set()
    sources: list[dict[str, Value]] = []
    for entity in _as_list(doc.get("prov:wasDerivedFrom")):
        if not isinstance(entity, Mapping):
            continue
        label = (
            _text(entity.get("name"))
            or _text(entity.get("prov:label"))
            or _text(entity.get("identifier"))
            or _text(entity.get("@id"))
            or "source"
        )
        raw_id = _text(entity.get("identifier")) or _text(entity.get("@id")) or label
        raw_id = raw_id.removeprefix("urn:provenance:source:")
        kind = _text(entity.get("additionalType"))
        source: dict[str, Value] = {
            "id": Value(_source_id(raw_id, taken)),
            "name": Value(label),
            "kind": Value(kind)
            if kind in KINDS
            else Value(
                "dataset",
                [f"the card does not say how this source was obtained: one of {', '.join(KINDS)}"],
            ),
        }
        own = _as_list(entity.get("license"))
        if own:
            source["license"] = _combine(
                [_croissant_license(v) for v in own], "the source's license"
            )
        else:
            source["license"] = Value(
                dataset_license.value,
                list(dataset_license.todos)
                + ["the source states no license; this is the dataset's: check the source's own"],
            )
        location = (
            _text(entity.get("url"))
            or _text(entity.get("prov:atLocation"))
            or _text(entity.get("prov:locatedAt"))
        )
        if location:
            source["homepage"] = Value(location)
        holder = _agent_name(entity.get("copyrightHolder"))
        if holder:
            source["rightsHolder"] = Value(holder)
        activity = entity.get("prov:wasGeneratedBy")
        if isinstance(activity, Mapping):
            window = {
                key: _date(activity.get(prop))
                for key, prop in (("start", "prov:startedAtTime"), ("end", "prov:endedAtTime"))
                if _date(activity.get(prop))
            }
            if window:
                source["collection"] = Value(window)
        sources.append(source)
    if not sources:
        types = [str(t).lower() for t in _as_list(doc.get("rai:dataCollectionType"))]
        kinds = {_COLLECTION_KINDS.get(t) for t in types}
        kind_value = (
            Value(next(iter(kinds)))
            if len(kinds) == 1 and None not in kinds
            else Value(
                "dataset",
                [
                    "the card does not say how the data was obtained"
                    + (f" (its RAI collection types: {', '.join(types)})" if types else "")
                    + f": one of {', '.join(KINDS)}"
                ],
            )
        )
        source = {
            "id": Value(_source_id(name or "dataset", taken)),
            "name": Value(name or PLACEHOLDER),
            "kind": kind_value,
            "license": dataset_license,
        }
        url = _text(doc.get("url"))
        if url:
            source["homepage"] = Value(url)
        sources.append(source)
    _add_paths(sources)
    return Draft(f"the Croissant file {what}", fields, publisher, sources)


def _date(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("@value")
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}", value):
        return value[:10]
    return None


def draft(kind: str, data: bytes, *, what: str) -> Draft:
    """Draft a spec from a card of ``kind`` (``huggingface`` or ``croissant``).

    Raises:
        FormatError: the card cannot be read.
    """
    if len(data) > MAX_CARD_BYTES:
        raise FormatError(f"{what}: larger than {MAX_CARD_BYTES} bytes")
    if kind == "huggingface":
        return from_huggingface(data, what=what)
    if kind == "croissant":
        return from_croissant(data, what=what)
    raise FormatError(f"unknown card kind {kind!r}: expected huggingface or croissant")


def draft_spec(kind: str, data: bytes, *, what: str) -> tuple[str, int]:
    """Draft a spec from a card of ``kind`` and check that the draft is a valid spec.

    Returns:
        The YAML text of the draft (with its TODO comments) and how many TODOs it holds.

    Raises:
        FormatError: the card cannot be read.
        SchemaError: a value taken from the card does not fit the spec (too long, ...).
    """
    from provenance.card import load_spec

    result = draft(kind, data, what=what)
    text = result.to_yaml()
    load_spec(text.encode("utf-8"), what=f"spec drafted from {what}")
    return text, result.todo_count


def draft_spec_file(kind: str, card_path: Path, *, output: Path) -> int:
    """Draft a spec from the card file at ``card_path`` and write it (YAML) to ``output``.

    Returns:
        How many TODOs the draft holds.

    Raises:
        InputError: the card file is missing or unreadable.
        FormatError, SchemaError: see :func:`draft_spec`.
        LocalIOError: the draft cannot be written.
    """
    from provenance._files import atomic_write, read_bytes

    text, todos = draft_spec(kind, read_bytes(card_path, limit=MAX_CARD_BYTES), what=str(card_path))
    atomic_write(output, text.encode("utf-8"))
    return todos
