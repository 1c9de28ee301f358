"""Compose the checks of ``provenance verify`` into a :class:`Report`.

Order matters: the envelope's signatures are checked first, and everything after that reads only
the verified statement. With a manifest, its digest, entry count, bytes, Merkle root and per-source
and per-license counts are held against the card; with a data directory, every file is re-hashed
and compared with the manifest (changed, missing and extra files reported by path).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provenance import manifest as manifest_module
from provenance._files import file_sha256
from provenance.card import VerifiedCard, tally, verify_card
from provenance.envelope import Envelope
from provenance.errors import DocumentTypeError, InputError, ProvenanceError, SignatureError
from provenance.manifest import ManifestSummary
from provenance.trust import TrustStore

if TYPE_CHECKING:
    from provenance.lists.audit import ListSource

MAX_LISTED_PATHS = 1000


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
    violations: list[dict[str, Any]] = field(default_factory=list)
    newly_listed: list[dict[str, Any]] = field(default_factory=list)
    strict: bool = False
    card: VerifiedCard | None = None

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
        return {
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
            "violations": self.violations,
            "newly_listed": self.newly_listed,
        }


def verify(
    envelope: Envelope,
    trust: TrustStore,
    *,
    at: dt.datetime,
    what: str,
    manifest_path: Path | None = None,
    data_dir: Path | None = None,
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

    Returns:
        A :class:`Report`; a failed signature or commitment is a failed check, not an exception.

    Raises:
        InputError: an empty trust store for the role, ``data_dir`` or ``lists`` without
            ``manifest_path``, or a missing or malformed manifest.
        FormatError: the verified payload is not a valid card.
    """
    if data_dir is not None and manifest_path is None:
        raise InputError("--data needs --manifest: the files are checked against the manifest")
    if lists is not None and manifest_path is None:
        raise InputError(
            "--lists needs --manifest: the manifest entries are checked against the lists"
        )
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
        _check_data(report, card, manifest_path, data_dir, workers, progress, on_total)
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
    applied = {claim["name"] for claim in card.predicate["exclusions"]}
    missing = [name for name in required if name not in applied]
    for name in missing:
        report.violations.append(
            {
                "id": None,
                "list": name,
                "version": None,
                "entry": None,
                "reason": "the trust store requires this list; the card did not apply it",
            }
        )
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
        card.predicate["exclusions"],
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
        card.predicate["sources"],
    )
    summary = loaded.summary if loaded is not None else summaries[0]
    committed = card.predicate["manifest"]
    report.add(
        "manifest digest",
        summary.digest == card.manifest_digest,
        f"sha256 {summary.digest}"
        + ("" if summary.digest == card.manifest_digest else f", card says {card.manifest_digest}"),
    )
    for name, actual, expected in (
        ("manifest entries", summary.entries, committed["entries"]),
        ("manifest bytes", summary.total_bytes, committed["bytes"]),
        ("merkle root", summary.root, committed["merkleRoot"]),
    ):
        detail = f"{actual}" if actual == expected else f"{actual}, card says {expected}"
        report.add(name, actual == expected, detail)
    mismatched = [
        source["id"]
        for source in card.predicate["sources"]
        if counts.by_source.get(source["id"]) != (source["records"], source["bytes"])
    ]
    _check_fingerprint_index(report, committed.get("fingerprints"), manifest_path)
    claimed = {e["license"]: (e["records"], e["bytes"]) for e in card.predicate["licenses"]}
    licenses_ok = claimed == counts.by_license
    report.add(
        "sources and licenses",
        not mismatched and licenses_ok,
        "per-source and per-license counts match the manifest"
        if not mismatched and licenses_ok
        else "counts differ from the manifest for "
        + ", ".join([*(f"source {s}" for s in mismatched), *([] if licenses_ok else ["licenses"])]),
    )


def _check_fingerprint_index(
    report: Report, committed: dict[str, Any] | None, manifest_path: Path
) -> None:
    """Hold the sidecar fingerprint index beside the manifest against the card, if both exist.

    The sidecar is optional (lookups without it give exact and normalized matches only), so its
    absence is reported, not failed; a sidecar that differs from the one committed fails.
    """
    if committed is None:
        return
    # The name fpindex.sidecar_path gives, without importing numpy for it.
    sidecar = manifest_path.with_name(manifest_path.name + ".fp")
    if not sidecar.exists():
        report.add("fingerprint index", True, f"not checked: no {sidecar.name} beside the manifest")
        return
    digest = file_sha256(sidecar)
    ok = digest == committed["sha256"]
    detail = f"{sidecar.name} sha256 {digest}"
    report.add(
        "fingerprint index", ok, detail if ok else f"{detail}, card says {committed['sha256']}"
    )


def _check_data(
    report: Report,
    card: VerifiedCard,
    manifest_path: Path,
    data_dir: Path,
    workers: int,
    progress: Callable[[int], None] | None,
    on_total: Callable[[int], None] | None,
) -> None:
    """Check the manifest (:func:`_check_manifest`), then re-hash ``data_dir`` against it.

    The manifest is read once; its checks against the card run in this process while the
    worker processes hash the files (only those the manifest lists), so they cost no time.
    """
    loaded = manifest_module.read_manifest(manifest_path)
    expected = {e.id: e.sha256 for e in loaded.entries}
    checked: list[bool] = []

    def check_manifest() -> None:
        checked.append(True)
        _check_manifest(report, card, manifest_path, loaded)

    try:
        hashed = manifest_module.hash_tree(
            data_dir,
            workers=workers,
            select=expected.__contains__,
            exclude={os.path.realpath(manifest_path)},
            progress=progress,
            on_total=on_total,
            while_hashing=check_manifest,
        )
    except ProvenanceError:
        if not checked:  # the walk failed: the manifest's own errors still come first
            check_manifest()
        raise
    hashed.sort(key=lambda item: item[0].id)
    on_disk = {ref.id for ref, _ in hashed}
    present = [(ref, digest) for ref, digest in hashed if digest is not None]
    changed: list[str] = []
    unreadable: list[str] = []
    for ref, digest in present:
        if digest.error is not None:
            unreadable.append(f"{ref.id} ({digest.error})")
        elif digest.sha256 != expected[ref.id]:
            changed.append(ref.id)
    missing = sorted(set(expected) - on_disk)
    extra = sorted(on_disk - set(expected))
    problems = [
        ("changed", changed),
        ("missing", missing),
        ("extra", extra),
        ("unreadable", unreadable),
    ]
    ok = not any(paths for _, paths in problems)
    if ok:
        detail = f"all {len(present)} files match the manifest"
    else:
        detail = "; ".join(
            f"{label}: {', '.join(paths[:MAX_LISTED_PATHS])}"
            + (
                f" (and {len(paths) - MAX_LISTED_PATHS} more)"
                if len(paths) > MAX_LISTED_PATHS
                else ""
            )
            for label, paths in problems
            if paths
        )
    report.add("data files", ok, detail)
