"""Compose the checks of ``provenance verify`` into a :class:`Report`.

Order matters: the envelope's signatures are checked first, and everything after that reads only
the verified statement. With a manifest, its digest, entry count, bytes, Merkle root and per-source
and per-license counts are held against the card; with a data directory, every file is re-hashed
and compared with the manifest: changed, missing, extra and moved files (a file whose content is
the manifest's under another path) are counted and listed by path (:class:`DataDiff`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance import manifest as manifest_module
from provenance._units import format_size
from provenance.card import VerifiedCard, tally, verify_card
from provenance.envelope import Envelope
from provenance.errors import DocumentTypeError, InputError, ProvenanceError, SignatureError
from provenance.fpsidecar import SidecarMismatchError, open_sidecar
from provenance.lists.audit import ListFinding
from provenance.manifest import ManifestSummary
from provenance.trust import TrustStore

if TYPE_CHECKING:
    from provenance.lists.audit import ListSource


@dataclass(frozen=True, slots=True)
class Check:
    """One named check and its outcome."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(slots=True)
class Report:
    """Everything ``verify`` found. ``ok`` is False if any check failed or any violation exists."""

    checks: list[Check] = field(default_factory=list)
    violations: list[ListFinding] = field(default_factory=list)
    newly_listed: list[ListFinding] = field(default_factory=list)
    strict: bool = False
    card: VerifiedCard | None = None
    data: DataDiff | None = None
    """With a data directory: how its files differ from the manifest."""

    @property
    def ok(self) -> bool:
        """Whether the card verified and nothing failed."""
        if self.strict and self.newly_listed:
            return False
        return all(c.ok for c in self.checks) and not self.violations and self.card is not None

    def add(self, name: str, ok: bool, detail: str) -> None:
        """Record a check."""
        self.checks.append(Check(name, ok, detail))

    def to_dict(self) -> dict[str, Any]:
        """Return the ``--json`` document."""
        document: dict[str, Any] = {
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
            "violations": [v.to_dict() for v in self.violations],
            "newly_listed": [n.to_dict() for n in self.newly_listed],
        }
        if self.data is not None:
            document["data"] = self.data.to_dict()
        return document


def verify(
    envelope: Envelope,
    trust: TrustStore,
    *,
    at: dt.datetime,
    what: str,
    manifest_path: Path | None = None,
    data_dir: Path | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: manifest_module.SymlinkPolicy = "skip",
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    lists: ListSource | None = None,
    strict: bool = False,
) -> Report:
    """Verify a signed card, and optionally its manifest and the data it describes.

    With ``lists`` (and a manifest), the exclusion lists the card claims to have applied are
    loaded at exactly the versions it cites and every manifest entry is matched against them
    (see :mod:`provenance.lists.audit`): entries on those versions are violations, entries only
    on later versions are newly listed (failures only when ``strict``).

    ``data_dir`` is walked as ``manifest build`` walks it (:func:`provenance.manifest.walk_files`
    with ``ignore`` and ``symlinks``; the manifest and its sidecars are left out when they lie
    inside it), so files excluded when the manifest was built must be excluded here too.

    Returns:
        A :class:`Report`; a failed signature or commitment is a failed check, not an exception.

    Raises:
        InputError: an empty trust store for the role, ``data_dir`` or ``lists`` without
            ``manifest_path``, or a missing or malformed manifest.
        FormatError: the verified payload is not a valid card.
    """
    if data_dir is not None and manifest_path is None:
        raise InputError("a data directory needs a manifest: its files are checked against it")
    if lists is not None and manifest_path is None:
        raise InputError("exclusion lists need a manifest: its entries are checked against them")
    report = Report(strict=strict)
    try:
        card = verify_card(envelope, trust, at=at, what=what)
    except SignatureError as exc:
        report.add("signature", False, str(exc))
        return report
    except DocumentTypeError as exc:
        report.add("statement", False, str(exc))
        return report
    report.card = card
    names = ", ".join(f"{trust.name_of(k)} ({k[:16]})" for k in card.publishers)
    report.add("signature", True, f"signed by dataset publisher {names}")
    if card.auditors:
        auditors = ", ".join(f"{trust.name_of(k)} ({k[:16]})" for k in card.auditors)
        report.add("auditor co-signature", True, f"co-signed by auditor {auditors}")
    report.add("statement", True, "in-toto Statement v1 and card predicate match their schemas")
    _check_required_lists(report, card, trust)
    if data_dir is not None and manifest_path is not None:
        # Checks the manifest too (the same checks, in the same order), while files are hashed.
        _check_data(
            report,
            card,
            manifest_path,
            data_dir,
            _DataWalk(ignore, symlinks, workers, progress, on_total),
        )
    elif manifest_path is not None:
        _check_manifest(report, card, manifest_path)
    if lists is not None and manifest_path is not None:
        _check_lists(report, card, trust, manifest_path, lists, at)
    return report


def _check_required_lists(report: Report, card: VerifiedCard, trust: TrustStore) -> None:
    """Hold the lists the card says it applied against those the trust store requires.

    This reads only the verified card, so it runs on every verification: a card that did not
    apply a required list fails whether or not the lists themselves are checked.
    """
    required = sorted(name for name, policy in trust.lists.items() if policy.required)
    applied = {claim.name for claim in card.predicate.exclusions}
    missing = [name for name in required if name not in applied]
    report.violations.extend(ListFinding.required_not_applied(name) for name in missing)
    if not required:
        detail = "the trust store requires no list"
    elif missing:
        detail = f"not applied: {', '.join(missing)}"
    else:
        detail = f"the card applied every list the trust store requires ({', '.join(required)})"
    report.add("required lists", not missing, detail)


def _check_lists(
    report: Report,
    card: VerifiedCard,
    trust: TrustStore,
    manifest_path: Path,
    lists: ListSource,
    at: dt.datetime,
) -> None:
    from provenance.lists.audit import audit_lists

    audit = audit_lists(
        card.predicate.exclusions,
        trust,
        manifest_module.iter_manifest(manifest_path),
        lists,
        at=at,
        strict=report.strict,
    )
    for name, ok, detail in audit.checks:
        report.add(name, ok, detail)
    report.violations.extend(audit.violations)
    report.newly_listed.extend(audit.newly_listed)


def _check_manifest(
    report: Report,
    card: VerifiedCard,
    manifest_path: Path,
    loaded: manifest_module.Manifest | None = None,
) -> None:
    """Hold the manifest (read now, or already ``loaded``) against the card's commitments."""
    summaries: list[ManifestSummary] = []
    counts = tally(
        loaded.entries
        if loaded is not None
        else manifest_module.iter_manifest(manifest_path, on_summary=summaries.append),
        card.predicate.sources,
    )
    summary = loaded.summary if loaded is not None else summaries[0]
    committed = card.predicate.manifest
    report.add(
        "manifest digest",
        summary.digest == card.manifest_digest,
        f"sha256 {summary.digest}"
        + ("" if summary.digest == card.manifest_digest else f", card says {card.manifest_digest}"),
    )
    for name, actual, expected, shown, said in (
        ("manifest entries", summary.entries, committed.entries, None, None),
        (
            "manifest bytes",
            summary.total_bytes,
            committed.bytes,
            format_size(summary.total_bytes),
            format_size(committed.bytes),
        ),
        ("merkle root", summary.root, committed.merkle_root, None, None),
    ):
        shown = shown or f"{actual}"
        detail = shown if actual == expected else f"{shown}, card says {said or expected}"
        report.add(name, actual == expected, detail)
    mismatched = [
        source.id
        for source in card.predicate.sources
        if counts.by_source.get(source.id) != (source.records, source.bytes)
    ]
    _check_fingerprint_index(report, card, manifest_path)
    claimed = {e.license: (e.records, e.bytes) for e in card.predicate.licenses}
    licenses_ok = claimed == counts.by_license
    report.add(
        "sources and licenses",
        not mismatched and licenses_ok,
        "per-source and per-license counts match the manifest"
        if not mismatched and licenses_ok
        else "counts differ from the manifest for "
        + ", ".join([*(f"source {s}" for s in mismatched), *([] if licenses_ok else ["licenses"])]),
    )


def _check_fingerprint_index(report: Report, card: VerifiedCard, manifest_path: Path) -> None:
    """Hold the sidecar fingerprint index beside the manifest against the card, if both exist.

    The sidecar is optional (lookups without it give exact and normalized matches only), so its
    absence is reported, not failed; a sidecar that differs from the one committed fails.
    """
    try:
        sidecar = open_sidecar(manifest_path, card)
    except SidecarMismatchError as exc:
        detail = f"{exc.path.name} sha256 {exc.actual}, card says {exc.expected}"
        report.add("fingerprint index", False, detail)
        return
    with sidecar:
        if sidecar.committed is None:
            return
        name = sidecar.path.name
        if not sidecar.used:
            report.add("fingerprint index", True, f"not checked: no {name} beside the manifest")
            return
        report.add("fingerprint index", True, f"{name} sha256 {sidecar.sha256()}")


@dataclass(frozen=True, slots=True)
class DataDiff:
    """How the files under a data directory differ from the manifest.

    Paths are manifest ids (paths relative to the directory), each list sorted. A file whose
    content is a missing entry's, found under a path the manifest does not list, is ``moved``
    (from the entry's id to that path) rather than one missing plus one extra.
    """

    entries: int
    """Entries in the manifest."""
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    moved: tuple[tuple[str, str], ...] = ()
    unreadable: tuple[tuple[str, str], ...] = ()
    """(path, why) for files that could not be hashed."""
    stats: manifest_module.WalkStats = field(default_factory=manifest_module.WalkStats)
    """What the walk skipped (symlinks, exclusions) and saw (hard links)."""

    @property
    def ok(self) -> bool:
        """True when the files are exactly those of the manifest."""
        return not (self.changed or self.missing or self.extra or self.moved or self.unreadable)

    def counts(self) -> str:
        """One line of counts: ``222 changed, 75 missing, 75 extra of 11,984``."""
        if self.ok:
            return f"all {self.entries:,} files match the manifest"
        parts = [
            f"{len(self.changed):,} changed",
            f"{len(self.missing):,} missing",
            f"{len(self.extra):,} extra",
        ]
        if self.moved:
            parts.append(f"{len(self.moved):,} moved")
        if self.unreadable:
            parts.append(f"{len(self.unreadable):,} unreadable")
        return f"{', '.join(parts)} of {self.entries:,}"

    def examples(self, limit: int = 3) -> str:
        """The first ``limit`` paths of each kind that differs, e.g. ``changed: a.txt, b.txt``."""
        kinds: list[tuple[str, list[str]]] = [
            ("changed", list(self.changed)),
            ("missing", list(self.missing)),
            ("extra", list(self.extra)),
            ("moved", [f"{old} -> {new}" for old, new in self.moved]),
            ("unreadable", [path for path, _ in self.unreadable]),
        ]
        parts = []
        for kind, paths in kinds:
            if paths:
                more = f" and {len(paths) - limit:,} more" if len(paths) > limit else ""
                parts.append(f"{kind}: {', '.join(paths[:limit])}{more}")
        return "; ".join(parts)

    def notes(self) -> str:
        """What the walk skipped or saw, for the check's detail ("" when nothing)."""
        stats = self.stats
        notes = []
        if stats.symlinks:
            outside = (
                f", {stats.symlinks_outside:,} pointing outside" if stats.symlinks_outside else ""
            )
            notes.append(f"{stats.symlinks:,} symlink(s) skipped{outside}")
        if stats.excluded_files or stats.excluded_dirs:
            notes.append(
                f"{stats.excluded_files:,} file(s) and {stats.excluded_dirs:,} folder(s) excluded"
            )
        if stats.hard_linked:
            notes.append(f"{stats.hard_linked:,} file(s) with other hard links")
        return "; ".join(notes)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: every path of every kind, and the walk's counts."""
        stats = self.stats
        return {
            "entries": self.entries,
            "changed": list(self.changed),
            "missing": list(self.missing),
            "extra": list(self.extra),
            "moved": [{"from": old, "to": new} for old, new in self.moved],
            "unreadable": [{"id": path, "error": error} for path, error in self.unreadable],
            "symlinksSkipped": stats.symlinks,
            "symlinksOutside": stats.symlinks_outside,
            "excludedFiles": stats.excluded_files,
            "excludedFolders": stats.excluded_dirs,
            "hardLinked": stats.hard_linked,
        }


@dataclass(frozen=True, slots=True)
class _DataWalk:
    """How ``verify --data`` walks and hashes the data directory."""

    ignore: Callable[[str], bool] | None
    symlinks: manifest_module.SymlinkPolicy
    workers: int
    progress: Callable[[int], None] | None
    on_total: Callable[[int], None] | None


def _check_data(
    report: Report,
    card: VerifiedCard,
    manifest_path: Path,
    data_dir: Path,
    walk: _DataWalk,
) -> None:
    """Check the manifest (:func:`_check_manifest`), then re-hash ``data_dir`` against it.

    The manifest is read once; its checks against the card run in this process while the
    worker processes hash the files (only those the manifest lists), so they cost no time.
    Files the manifest does not list are hashed only when entries are missing, to tell moved
    files from missing and extra ones.
    """
    loaded = manifest_module.read_manifest(manifest_path)
    expected = {e.id: e.sha256 for e in loaded.entries}
    checked: list[bool] = []
    stats = manifest_module.WalkStats()

    def check_manifest() -> None:
        checked.append(True)
        _check_manifest(report, card, manifest_path, loaded)

    # The manifest and the sidecars written beside it are not data, as 'manifest build' skips
    # them when it writes them into the folder it hashes.
    beside = [manifest_path.with_name(manifest_path.name + s) for s in (".fp", ".shard.json")]
    try:
        hashed = manifest_module.hash_tree(
            data_dir,
            workers=walk.workers,
            select=expected.__contains__,
            exclude={os.path.realpath(p) for p in (manifest_path, *beside)},
            ignore=walk.ignore,
            symlinks=walk.symlinks,
            stats=stats,
            progress=walk.progress,
            on_total=walk.on_total,
            while_hashing=check_manifest,
        )
    except ProvenanceError:
        if not checked:  # the walk failed: the manifest's own errors still come first
            check_manifest()
        raise
    hashed.sort(key=lambda item: item[0].id)
    on_disk = {ref.id for ref, _ in hashed}
    changed: list[str] = []
    unreadable: list[tuple[str, str]] = []
    for ref, digest in hashed:
        if digest is None:
            continue
        if digest.error is not None:
            unreadable.append((ref.id, digest.error))
        elif digest.sha256 != expected[ref.id]:
            changed.append(ref.id)
    missing = sorted(set(expected) - on_disk)
    extra_refs = [ref for ref, digest in hashed if digest is None]
    moved: list[tuple[str, str]] = []
    if missing and extra_refs:
        missing, extra_refs, moved = _find_moves(missing, extra_refs, expected, walk.workers)
    diff = DataDiff(
        entries=len(expected),
        changed=tuple(changed),
        missing=tuple(missing),
        extra=tuple(ref.id for ref in extra_refs),
        moved=tuple(moved),
        unreadable=tuple(unreadable),
        stats=stats,
    )
    report.data = diff
    notes = diff.notes()
    report.add("data files", diff.ok, diff.counts() + (f" ({notes})" if notes else ""))


def _find_moves(
    missing: list[str],
    extra_refs: list[Any],
    expected: dict[str, str],
    workers: int,
) -> tuple[list[str], list[Any], list[tuple[str, str]]]:
    """Pair missing entries with extra files of the same content (both in id order).

    Returns:
        The missing ids and extra files left unpaired, and the (from, to) pairs.
    """
    by_digest: dict[str, list[str]] = {}
    for entry_id in missing:
        by_digest.setdefault(expected[entry_id], []).append(entry_id)
    digests = manifest_module.hash_files(extra_refs, workers=workers)
    moved: list[tuple[str, str]] = []
    left: list[Any] = []
    for ref, digest in zip(extra_refs, digests, strict=True):
        candidates = by_digest.get(digest.sha256) if digest.error is None else None
        if candidates:
            moved.append((candidates.pop(0), ref.id))
        else:
            left.append(ref)
    paired = {old for old, _ in moved}
    return [m for m in missing if m not in paired], left, moved



def verify_file(
    signed_path: Path,
    trust: TrustStore,
    *,
    at: dt.datetime,
    lists: str | None = None,
    **checks: Any,
) -> Report:
    """Read the signed card at ``signed_path`` and :func:`verify` it.

    ``lists`` is where the exclusion lists come from: a list cache directory, or a list
    repository URL (fetched into a temporary cache, verified against ``trust``; see
    :func:`provenance.lists.audit.open_list_source`). ``checks`` are :func:`verify`'s other
    keyword arguments (``manifest_path``, ``data_dir``, ``strict``, ...).

    Raises:
        InputError, FormatError: the card file is missing, malformed or not signed; and as
            :func:`verify`.
        FetchError, SignatureError, ...: fetching the lists from a URL failed.
    """
    from provenance.card import read_signed_card
    from provenance.lists.audit import open_list_source

    envelope = read_signed_card(signed_path)
    with contextlib.ExitStack() as stack:
        if lists is not None:
            checks["lists"] = stack.enter_context(open_list_source(lists, trust, at=at))
        return verify(envelope, trust, at=at, what=str(signed_path), **checks)
