"""The filter report (``schemas/filter-report.v1.json``): the lists ``filter`` applied and what
they removed, as a frozen typed value.

Each item of :attr:`FilterReport.lists` is exactly the :class:`~provenance.card.Exclusion` that
``card build --filter-report`` copies into the card. ``from_dict`` reads a report that matches
the schema (use :func:`parse_filter_report` for one not checked yet) without changing it, and
``to_dict`` gives it back: for every valid report ``d`` and every value ``x``,
``FilterReport.from_dict(d).to_dict() == d`` and ``FilterReport.from_dict(x.to_dict()) == x``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from provenance.card.model import Exclusion, present
from provenance.errors import FormatError

MAX_REPORT_BYTES = 16 * 1024 * 1024

MissingUrlPolicy = Literal["removed", "kept"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordCounts:
    """What happened to the input's records.

    ``missing_url``: records without a URL that nothing matched while domain or URL entries
    were applied (removed or kept, see :attr:`FilterReport.missing_url_policy`); None in
    reports that do not count them.
    """

    input: int
    kept: int
    removed: int
    """Records an entry of a list matched."""
    unevaluable: int
    """Records whose URL could not be evaluated (removed)."""
    missing_url: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RecordCounts:
        """Return the counts of a report's ``records`` object."""
        return cls(
            input=data["input"],
            kept=data["kept"],
            removed=data["removed"],
            unevaluable=data["unevaluable"],
            missing_url=data.get("missingUrl"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the ``records`` object."""
        return present(
            {
                "input": self.input,
                "kept": self.kept,
                "removed": self.removed,
                "unevaluable": self.unevaluable,
                "missingUrl": self.missing_url,
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class UnevaluableExample:
    """A record whose URL could not be evaluated, and why."""

    id: str
    reason: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UnevaluableExample:
        """Return the example of an ``unevaluableExamples`` item."""
        return cls(id=data["id"], reason=data["reason"])

    def to_dict(self) -> dict[str, Any]:
        """Return the ``unevaluableExamples`` item."""
        return {"id": self.id, "reason": self.reason}


_KNOWN = frozenset(
    {"lists", "records", "missingUrlPolicy", "unevaluableExamples", "missingUrlExamples", "notes"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FilterReport:
    """The lists applied, the record counts, and examples of what could not be checked.

    The optional members are None when a report does not hold them (``notes`` is absent when
    there is nothing to note).
    """

    lists: tuple[Exclusion, ...]
    records: RecordCounts
    missing_url_policy: MissingUrlPolicy | None = None
    unevaluable_examples: tuple[UnevaluableExample, ...] | None = None
    missing_url_examples: tuple[str, ...] | None = None
    """Ids of records without a URL (the first ones; all are counted)."""
    notes: tuple[str, ...] | None = None
    unrecognized_fields: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clash = _KNOWN.intersection(self.unrecognized_fields)
        if clash:
            raise ValueError(f"unrecognized_fields holds known members: {sorted(clash)}")

    @property
    def missing_url_kept(self) -> bool:
        """Whether records without a URL were kept (rather than removed)."""
        return self.missing_url_policy == "kept"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FilterReport:
        """Return the report of a document that matches the filter report schema."""
        examples = data.get("unevaluableExamples")
        missing = data.get("missingUrlExamples")
        notes = data.get("notes")
        return cls(
            lists=tuple(Exclusion.from_dict(item) for item in data["lists"]),
            records=RecordCounts.from_dict(data["records"]),
            missing_url_policy=data.get("missingUrlPolicy"),
            unevaluable_examples=(
                None if examples is None else tuple(map(UnevaluableExample.from_dict, examples))
            ),
            missing_url_examples=None if missing is None else tuple(missing),
            notes=None if notes is None else tuple(notes),
            unrecognized_fields={k: v for k, v in data.items() if k not in _KNOWN},
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the report document."""
        examples = self.unevaluable_examples
        return {
            **self.unrecognized_fields,
            **present(
                {
                    "lists": [item.to_dict() for item in self.lists],
                    "records": self.records.to_dict(),
                    "missingUrlPolicy": self.missing_url_policy,
                    "unevaluableExamples": (
                        None if examples is None else [e.to_dict() for e in examples]
                    ),
                    "missingUrlExamples": (
                        None
                        if self.missing_url_examples is None
                        else list(self.missing_url_examples)
                    ),
                    "notes": None if self.notes is None else list(self.notes),
                }
            ),
        }


def parse_filter_report(document: Any, *, what: str) -> FilterReport:
    """Check a filter report document and return it typed.

    Raises:
        FormatError: it has no ``lists`` array of objects, or names a list twice.
        SchemaError: it does not match ``schemas/filter-report.v1.json`` (whose ``lists`` items
            are the card predicate's ``exclusions`` items).
    """
    from provenance import schema

    lists = document.get("lists") if isinstance(document, dict) else None
    if not isinstance(lists, list) or not all(isinstance(item, dict) for item in lists):
        raise FormatError(f"{what}: a filter report needs a 'lists' array")
    schema.validate(document, schema.FILTER_REPORT, what=f"{what} (filter report)")
    names = [item["name"] for item in lists]
    if len(set(names)) != len(names):
        raise FormatError(f"{what}: the filter report names a list twice")
    return FilterReport.from_dict(document)


def read_filter_report(path: Path) -> FilterReport:
    """Read and check the filter report at ``path`` (see :func:`parse_filter_report`).

    Raises:
        InputError: missing, unreadable, or larger than :data:`MAX_REPORT_BYTES`.
        FormatError, SchemaError: see :func:`parse_filter_report`.
    """
    from provenance import _json
    from provenance._files import read_bytes

    document = _json.loads_object(read_bytes(path, limit=MAX_REPORT_BYTES), what=str(path))
    return parse_filter_report(document, what=str(path))
