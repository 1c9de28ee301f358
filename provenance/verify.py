"""Compose the checks of ``provenance verify`` into a :class:`Report`.

Order matters: the envelope's signatures are checked first, and everything after that reads only
the verified statement. A manifest is read once (:class:`provenance.manifest.ManifestReader`): its
digest, entry count, bytes, Merkle root and per-source and per-license counts are held against
the card, and every other check of its entries (the exclusion lists, the data directory) judges
the entries of that same read, released only when the read is the manifest the card commits to.
With a data directory, every file is re-hashed and compared with the manifest
(:mod:`provenance.datadiff`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance import manifest as manifest_module
from provenance._units import format_size
from provenance.card import Tallier, VerifiedCard, verify_card
from provenance.datadiff import DataDiff, DataWalk, diff_data
from provenance.envelope import Envelope
from provenance.errors import (
    DigestMismatchError,
    DocumentTypeError,
    InputError,
    LocalIOError,
    SignatureError,
)
from provenance.fpsidecar import SidecarMismatchError, open_sidecar
from provenance.lists.audit import EntryBlocks, ListFinding
from provenance.manifest import Manifest, ManifestEntry, ManifestReader, ManifestSummary
from provenance.trust import TrustStore

if TYPE_CHECKING:
    from provenance.executors import Executor
    from provenance.lists.audit import Entries, ListAudit, ListSource, Matcher
    from provenance.partitions.parallel import PartsRead

__all__ = ["Check", "DataDiff", "Report", "verify", "verify_file"]


@dataclass(frozen=True, slots=True)
class Check:
    """One named check and its outcome."""

    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Check:
        """Read back the JSON form (``to_dict``'s inverse).

        Raises:
            ValueError: a member is missing or of the wrong type.
        """
        name, ok, detail = data.get("name"), data.get("ok"), data.get("detail")
        if not isinstance(name, str) or not isinstance(ok, bool) or not isinstance(detail, str):
            raise ValueError("a check has a string name and detail and a boolean ok")
        return cls(name, ok, detail)


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Everything ``verify`` found. ``ok`` is False if any check failed or any violation exists."""

    checks: tuple[Check, ...] = ()
    violations: tuple[ListFinding, ...] = ()
    newly_listed: tuple[ListFinding, ...] = ()
    strict: bool = False
    card: VerifiedCard | None = None
    data: DataDiff | None = None
    """With a data directory: how its files differ from the manifest."""
    manifest: Manifest | None = None
    """With ``keep_manifest``: the manifest read, when it is the one the card commits to."""

    @property
    def ok(self) -> bool:
        """Whether the card verified and nothing failed."""
        if self.strict and self.newly_listed:
            return False
        return all(c.ok for c in self.checks) and not self.violations and self.card is not None

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


class _Found:
    """What the checks find, gathered while they run; frozen into a :class:`Report` at the end."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.violations: list[ListFinding] = []
        self.newly_listed: list[ListFinding] = []
        self.data: DataDiff | None = None
        self.manifest: Manifest | None = None

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    def report(self, *, strict: bool, card: VerifiedCard | None) -> Report:
        return Report(
            checks=tuple(self.checks),
            violations=tuple(self.violations),
            newly_listed=tuple(self.newly_listed),
            strict=strict,
            card=card,
            data=self.data,
            manifest=self.manifest,
        )


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
    keep_manifest: bool = False,
    executor: str | None = None,
    ray_address: str | None = None,
) -> Report:
    """Verify a signed card, and optionally its manifest and the data it describes.

    The manifest is read once; the checks of its entries judge the entries of that read, and
    count only when it is the manifest the card commits to (else they are reported as not
    checked, beside the failed commitment).

    With ``lists`` (and a manifest), the exclusion lists the card claims to have applied are
    loaded at exactly the versions it cites and every manifest entry is matched against them
    (see :mod:`provenance.lists.audit`): entries on those versions are violations, entries only
    on later versions are newly listed (failures only when ``strict``).

    ``data_dir`` is walked as ``manifest build`` walks it (:func:`provenance.manifest.walk_files`
    with ``ignore`` and ``symlinks``; the manifest and its sidecars are left out when they lie
    inside it), so files excluded when the manifest was built must be excluded here too.

    ``executor`` (``local`` or ``ray``, with ``ray_address``) is where the data's files are
    hashed (:mod:`provenance.executors`; default local). Given without a data directory, a
    partitioned manifest is read and checked one part per task, and the exclusion lists joined
    per part (:mod:`provenance.partitions.parallel`), with the same findings.

    With ``keep_manifest`` (and a data directory, whose check holds the manifest anyway), the
    report keeps the manifest read (``Report.manifest``) when it is the one the card commits to.

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
    found = _Found()
    try:
        card = verify_card(envelope, trust, at=at, what=what)
    except SignatureError as exc:
        found.add("signature", False, str(exc))
        return found.report(strict=strict, card=None)
    except DocumentTypeError as exc:
        found.add("statement", False, str(exc))
        return found.report(strict=strict, card=None)
    names = ", ".join(f"{trust.name_of(k)} ({k[:16]})" for k in card.publishers)
    found.add("signature", True, f"signed by dataset publisher {names}")
    if card.auditors:
        auditors = ", ".join(f"{trust.name_of(k)} ({k[:16]})" for k in card.auditors)
        found.add("auditor co-signature", True, f"co-signed by auditor {auditors}")
    found.add("statement", True, "in-toto Statement v1 and card predicate match their schemas")
    _check_required_lists(found, card, trust)
    audit = None if lists is None else _ListCheck(card, trust, lists, at, strict)
    if data_dir is not None and manifest_path is not None:
        walk = DataWalk(
            ignore, symlinks, workers, progress, on_total, executor or "local", ray_address
        )
        _check_data(found, card, manifest_path, data_dir, walk, audit, keep=keep_manifest)
    elif manifest_path is not None and executor is not None:
        from provenance.executors import make_executor

        with make_executor(executor, workers=workers, address=ray_address) as runner:
            _check_parts(found, card, manifest_path, audit, runner)
    elif manifest_path is not None:
        _check_manifest_read(found, card, ManifestReader(manifest_path), audit)
    return found.report(strict=strict, card=card)


def _check_required_lists(found: _Found, card: VerifiedCard, trust: TrustStore) -> None:
    """Hold the lists the card says it applied against those the trust store requires.

    This reads only the verified card, so it runs on every verification: a card that did not
    apply a required list fails whether or not the lists themselves are checked.
    """
    required = sorted(name for name, policy in trust.lists.items() if policy.required)
    applied = {claim.name for claim in card.predicate.exclusions}
    missing = [name for name in required if name not in applied]
    found.violations.extend(ListFinding.required_not_applied(name) for name in missing)
    if not required:
        detail = "the trust store requires no list"
    elif missing:
        detail = f"not applied: {', '.join(missing)}"
    else:
        detail = f"the card applied every list the trust store requires ({', '.join(required)})"
    found.add("required lists", not missing, detail)


def _committed(card: VerifiedCard) -> ManifestSummary:
    return ManifestSummary.from_card(card.manifest_digest, card.predicate.manifest)


@dataclass(frozen=True, slots=True)
class _ListCheck:
    """How ``verify --lists`` audits the manifest's entries (:func:`audit_lists`)."""

    card: VerifiedCard
    trust: TrustStore
    source: ListSource
    at: dt.datetime
    strict: bool

    def run(self, entries: Entries, match: Matcher | None = None) -> ListAudit:
        """Audit ``entries`` (streamed once), or the findings of ``match``."""
        from provenance.lists.audit import audit_lists

        return audit_lists(
            self.card.predicate.exclusions,
            self.trust,
            entries,
            self.source,
            at=self.at,
            strict=self.strict,
            match=match,
        )

    def run_matching(self, match: Matcher) -> ListAudit:
        """Audit with the findings of ``match`` (joins run elsewhere)."""
        return self.run((), match)


def _release_audit(
    found: _Found, audit: ListAudit, summary: ManifestSummary, card: VerifiedCard
) -> None:
    """Report the audit of the entries read, if they are the entries the card commits to."""
    if summary != _committed(card):
        found.add(
            "exclusion lists",
            False,
            "not checked: the manifest read is not the one the card commits to",
        )
        return
    for name, ok, detail in audit.checks:
        found.add(name, ok, detail)
    found.violations.extend(audit.violations)
    found.newly_listed.extend(audit.newly_listed)


def _check_manifest_read(
    found: _Found, card: VerifiedCard, reader: ManifestReader, lists: _ListCheck | None
) -> None:
    """Read the manifest once, feeding its entries to the counts and to the list audit, then
    hold what was read against the card (and release the audit only if it matched)."""
    tallier = Tallier(card.predicate.sources, defer_errors=True)

    def blocks() -> Iterator[list[ManifestEntry]]:
        for block in reader.blocks():
            tallier.add(block.entries)
            yield block.entries

    stream = blocks()
    audit = lists.run(EntryBlocks(stream)) if lists is not None else None
    for _ in stream:  # whatever the audit did not read still counts, and completes the read
        pass
    _check_commitment(found, card, reader.summary, tallier, reader.path)
    if audit is not None:
        _release_audit(found, audit, reader.summary, card)


def _check_parts(
    found: _Found,
    card: VerifiedCard,
    manifest_path: Path,
    lists: _ListCheck | None,
    runner: Executor,
) -> None:
    """Read a partitioned manifest one part per task (each part checked against the index
    read, the list joins run in the same tasks), then hold what was read against the card
    (and release the audit only if it matched), as :func:`_check_manifest_read` does.

    Raises:
        InputError: ``manifest_path`` is not a partitioned manifest.
    """
    from provenance.lists.audit import ListAudit
    from provenance.partitions import is_partitioned
    from provenance.partitions.parallel import read_parts

    if not is_partitioned(manifest_path):
        raise InputError(
            f"{manifest_path}: a manifest file is read in one process; tasks read the parts of"
            " a partitioned manifest (or the files of a data directory)"
        )
    read, audit = read_parts(
        manifest_path,
        _committed(card),
        card.predicate.sources,
        executor=runner,
        audit=None if lists is None else lists.run_matching,
    )
    _check_commitment(found, card, read.summary, read, manifest_path)
    if lists is not None:
        _release_audit(found, audit or ListAudit(), read.summary, card)


def _check_commitment(
    found: _Found,
    card: VerifiedCard,
    summary: ManifestSummary,
    counts: Tallier | PartsRead,
    manifest_path: Path,
) -> None:
    """Hold a manifest's summary and counts (of one read) against the card's commitments.

    The counts are looked at only for the card's own manifest: another's entries may name
    sources the card does not define, which is not what is wrong with it."""
    committed = card.predicate.manifest
    found.add(
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
        found.add(name, actual == expected, detail)
    _check_fingerprint_index(found, card, manifest_path)
    if summary != _committed(card):
        found.add("sources and licenses", False, "not counted: the manifest is not the card's")
        return
    tallied = counts.result()
    mismatched = [
        source.id
        for source in card.predicate.sources
        if tallied.by_source.get(source.id) != (source.records, source.bytes)
    ]
    claimed = {e.license: (e.records, e.bytes) for e in card.predicate.licenses}
    licenses_ok = claimed == tallied.by_license
    found.add(
        "sources and licenses",
        not mismatched and licenses_ok,
        "per-source and per-license counts match the manifest"
        if not mismatched and licenses_ok
        else "counts differ from the manifest for "
        + ", ".join([*(f"source {s}" for s in mismatched), *([] if licenses_ok else ["licenses"])]),
    )


def _check_fingerprint_index(found: _Found, card: VerifiedCard, manifest_path: Path) -> None:
    """Hold the sidecar fingerprint index beside the manifest against the card, if both exist.

    The sidecar is optional (lookups without it give exact and normalized matches only), so its
    absence is reported, not failed; a sidecar that differs from the one committed fails.
    """
    from provenance.partitions import is_partitioned

    if is_partitioned(manifest_path):
        _check_part_sidecars(found, card, manifest_path)
        return
    try:
        sidecar = open_sidecar(manifest_path, card)
    except SidecarMismatchError as exc:
        detail = f"{exc.path.name} sha256 {exc.actual}, card says {exc.expected}"
        found.add("fingerprint index", False, detail)
        return
    with sidecar:
        if sidecar.committed is None:
            return
        name = sidecar.path.name
        if not sidecar.used:
            found.add("fingerprint index", True, f"not checked: no {name} beside the manifest")
            return
        found.add("fingerprint index", True, f"{name} sha256 {sidecar.sha256()}")


def _check_part_sidecars(found: _Found, card: VerifiedCard, manifest_path: Path) -> None:
    """:func:`_check_fingerprint_index` for a partitioned manifest: every sidecar part the
    card's index lists is read once and held against the digest listed."""
    from provenance.fpsidecar import open_part_sidecars

    try:
        sidecars = open_part_sidecars(manifest_path, card)
        if sidecars.committed is None:
            return
        if not sidecars.used:
            found.add("fingerprint index", True, f"not checked: {sidecars.note}")
            return
        for k in range(sidecars.index.partitions):
            sidecars.open_part(k).close()
    except SidecarMismatchError as exc:
        detail = f"{exc.path.name} sha256 {exc.actual}, index.json says {exc.expected}"
        found.add("fingerprint index", False, detail)
        return
    except (DigestMismatchError, InputError) as exc:
        found.add("fingerprint index", False, str(exc))
        return
    found.add(
        "fingerprint index",
        True,
        f"{sidecars.index.partitions} sidecar parts match index.json sha256"
        f" {sidecars.index_sha256}",
    )


def _check_data(
    found: _Found,
    card: VerifiedCard,
    manifest_path: Path,
    data_dir: Path,
    walk: DataWalk,
    lists: _ListCheck | None,
    *,
    keep: bool,
) -> None:
    """Check the manifest (as :func:`_check_manifest_read`), then re-hash ``data_dir`` against it.

    The manifest is read once and held: its checks against the card (and the list audit of its
    entries) run in this process while the worker processes hash the files
    (:func:`provenance.datadiff.diff_data`), so they cost no time.
    """
    loaded = manifest_module.read_manifest(manifest_path)
    audits: list[ListAudit] = []

    def check_manifest() -> None:
        tallier = Tallier(card.predicate.sources, defer_errors=True)
        tallier.add(loaded.entries)
        _check_commitment(found, card, loaded.summary, tallier, manifest_path)
        if lists is not None:
            audits.append(lists.run(loaded.entries))

    expected = {e.id: e.sha256 for e in loaded.entries}
    try:
        diff = diff_data(expected, data_dir, manifest_path, walk, while_hashing=check_manifest)
    except (InputError, LocalIOError) as exc:
        if loaded.summary == _committed(card):
            raise
        # The manifest is not the card's, which check_manifest found first: that verdict
        # stands, whatever kept the data from being walked.
        found.add("data files", False, f"not checked: {exc}")
        return
    found.data = diff
    notes = diff.notes()
    found.add("data files", diff.ok, diff.counts() + (f" ({notes})" if notes else ""))
    for audit in audits:
        _release_audit(found, audit, loaded.summary, card)
    if keep and loaded.summary == _committed(card):
        found.manifest = loaded


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
