"""The usage report: records, bytes and shares per rights holder, source or license.

It is the basis on which a rights holder and a developer can discuss licensing and compensation,
so it is computed only from a manifest that a verified card commits to (same file digest, entry
count, bytes and Merkle root, of the one read that counts), with sources and licenses resolved
exactly as the card's own counts are (:class:`provenance.card.SourceAssigner`; an entry's own
license or rights holder wins over its source's).

Rights holder of an entry: its ``rightsHolder``, else its source's ``rightsHolder`` in the card,
else ``unknown (source <id>)`` so that entries with no stated holder stay apart per source.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from provenance.card import SourceAssigner, SourceLike, entry_license
from provenance.errors import InputError
from provenance.manifest import ManifestEntry, ManifestSummary, read_committed
from provenance.proofs import CardRef

By = Literal["rights-holder", "source", "license"]
BY_CHOICES: tuple[By, ...] = ("rights-holder", "source", "license")
SHARE_DIGITS = 6


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One group: its records and bytes, their shares of the whole, and the sources in it."""

    group: str
    records: int
    bytes: int
    record_share: float
    byte_share: float
    sources: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "group": self.group,
            "records": self.records,
            "bytes": self.bytes,
            "recordShare": self.record_share,
            "byteShare": self.byte_share,
            "sources": list(self.sources),
        }


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Usage grouped by ``by``; rows sorted by bytes, then records (both descending), then name."""

    by: By
    total_records: int
    total_bytes: int
    rows: tuple[UsageRow, ...]
    card: Mapping[str, Any]
    """Which card the numbers rest on: name, version, statementSha256, manifestSha256."""

    def to_dict(self) -> dict[str, Any]:
        """Return the ``--json`` document."""
        return {
            "by": self.by,
            "card": dict(self.card),
            "totals": {"records": self.total_records, "bytes": self.total_bytes},
            "rows": [row.to_dict() for row in self.rows],
        }

    def to_csv(self) -> str:
        """Return the report as CSV (RFC 4180; header row first; shares as decimals).

        Text cells that a spreadsheet would read as a formula are neutralized (see
        :func:`csv_text`): rights holders and source ids come from whoever signed the card.
        """
        out = io.StringIO()
        # RFC 4180 line ends: the writer then quotes any cell holding a CR or LF, which a
        # reader would otherwise take for the end of a row.
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(
            [self.by.replace("-", "_"), "records", "bytes", "record_share", "byte_share", "sources"]
        )
        for row in self.rows:
            writer.writerow(
                [
                    csv_text(row.group),
                    row.records,
                    row.bytes,
                    f"{row.record_share:.{SHARE_DIGITS}f}",
                    f"{row.byte_share:.{SHARE_DIGITS}f}",
                    csv_text(";".join(row.sources)),
                ]
            )
        return out.getvalue()


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    """Return ``value`` safe for a CSV cell that a spreadsheet will open.

    A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read as a
    formula by spreadsheets (CSV injection), so it gets a leading single quote, as OWASP's
    CSV Injection guidance advises; the quote shows that the text was changed.
    """
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _share(part: int, whole: int) -> float:
    return round(part / whole, SHARE_DIGITS) if whole else 0.0


def usage(
    entries: Iterable[ManifestEntry],
    sources: Sequence[SourceLike],
    *,
    by: By,
    card: Mapping[str, Any] | None = None,
) -> UsageReport:
    """Group ``entries`` by rights holder, source or license (``sources`` from the card).

    Returns:
        The report; with ``by="source"`` every source of the card has a row, even if empty.

    Raises:
        InputError: an entry is claimed by no source or names an unknown one.
        FormatError: an entry's license is not a valid SPDX expression.
    """
    if by not in BY_CHOICES:
        raise InputError(f"grouping {by!r}: expected one of {', '.join(BY_CHOICES)}")
    assigner = SourceAssigner(sources)
    counts: dict[str, list[int]] = {}
    members: dict[str, set[str]] = {}
    if by == "source":
        for source in assigner.sources:
            counts[source.id] = [0, 0]
            members[source.id] = {source.id}
    total_records = total_bytes = 0
    for entry in entries:
        source = assigner.source_of(entry)
        source_id = source.id
        if by == "source":
            group = source_id
        elif by == "license":
            group = entry_license(entry, source)
        else:
            group = entry.rightsHolder or source.rights_holder or f"unknown (source {source_id})"
        size = entry.size or 0
        tally = counts.setdefault(group, [0, 0])
        tally[0] += 1
        tally[1] += size
        members.setdefault(group, set()).add(source_id)
        total_records += 1
        total_bytes += size
    rows = [
        UsageRow(
            group,
            records,
            size,
            _share(records, total_records),
            _share(size, total_bytes),
            tuple(sorted(members[group])),
        )
        for group, (records, size) in counts.items()
    ]
    rows.sort(key=lambda r: (-r.bytes, -r.records, r.group))
    return UsageReport(by, total_records, total_bytes, tuple(rows), dict(card or {}))


# ----------------------------------------------------------------------------------------------
# I/O shell


def usage_report(manifest_path: Path, card: CardRef, *, by: By) -> UsageReport:
    """Report usage of the manifest at ``manifest_path``, which ``card`` must commit to.

    The manifest is read once (:meth:`provenance.manifest.ManifestReader.consume`); the report
    counted from its entries is returned only if the digest, entry count, bytes and Merkle root
    of that same read are the card's, so a file replaced during the pass is refused too.

    Raises:
        DigestMismatchError: the manifest is not the one the card commits to.
        InputError, FormatError, LocalIOError: the manifest is missing, unreadable or invalid,
            or an entry is claimed by no source.
    """
    commitment = card.commitment
    predicate = card.card.predicate
    committed = ManifestSummary.from_card(commitment.manifest_sha256, predicate.manifest)
    about = {
        "name": predicate.name,
        "version": predicate.version,
        "statementSha256": commitment.statement_sha256,
        "manifestSha256": commitment.manifest_sha256,
    }
    return read_committed(
        manifest_path,
        committed,
        lambda entries: usage(entries, predicate.sources, by=by, card=about),
    )
