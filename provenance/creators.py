"""The I/O shell of the creators' commands: ``lookup`` and ``proof verify``.

:func:`lookup_files` looks up a portfolio of work files in a manifest (checked against a signed
card when one is given) and writes a proof for each work; :func:`check_proof_file` checks a
proof file against a signed card, without the manifest. Both read every input once and return
a typed result whose ``to_dict`` is the command's ``--json`` document.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance import _json, lookup, proofs
from provenance._files import read_bytes
from provenance._hex import is_sha256_hex
from provenance.errors import FormatError, InputError, VerificationError

BATCH = 256
"""Works read and looked up at a time (each is read whole, up to ``lookup.MAX_WORK_BYTES``)."""


def collect_works(paths: Sequence[Path]) -> list[tuple[str, Path]]:
    """Return ``(label, path)`` per work: files as given, a directory's files in sorted order.

    A directory of works is the creator's own folder, not a dataset: its file names need not
    follow the manifest's id rules (they must still be UTF-8, and labels are printed escaped).

    Raises:
        InputError: a work is missing, or a directory holds no file.
        UnsafePathError: a directory holds a symlink out of it or a special file.
    """
    from provenance.manifest import walk_files

    works: list[tuple[str, Path]] = []
    for path in paths:
        if path.is_dir():
            files = walk_files(path, check_ids=False)
            if not files:
                raise InputError(f"{path}: directory holds no work")
            works.extend((str(path / ref.id), Path(ref.path)) for ref in files)
        elif path.exists() or path.is_symlink():
            works.append((str(path), path))
        else:
            raise InputError(f"{path}: no such work file")
    return works


@dataclass(frozen=True, slots=True)
class WrittenProof:
    """A proof written for one work."""

    work: str
    path: Path
    proof: proofs.Proof

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form: the work, the file, and what the proof claims."""
        return {
            "work": self.work,
            "path": str(self.path),
            "claim": self.proof.claim,
            "status": self.proof.work_status,
            "digest": self.proof.digest,
        }


@dataclass(frozen=True, slots=True)
class LookupRun:
    """What a lookup found for each work, and the proofs written (in the order of the works)."""

    results: tuple[lookup.WorkResult, ...]
    proofs: tuple[WrittenProof, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the ``lookup --json`` document (``proofs`` only when some were written)."""
        document: dict[str, Any] = {"results": [r.to_dict() for r in self.results]}
        if self.proofs:
            document["proofs"] = [p.to_dict() for p in self.proofs]
        return document


@dataclass(frozen=True, slots=True)
class SignedCardFiles:
    """A signed card and the trust store to verify it with, and when to judge its keys: at
    ``at`` and, when the clock was moved, at ``real_time`` too."""

    card: Path
    trust: Path
    at: dt.datetime
    real_time: dt.datetime | None = None

    def load(self) -> proofs.CardRef:
        """Read and verify the card (see :func:`provenance.proofs.load_card`)."""
        return proofs.load_card(self.card, self.trust, at=self.at, real_time=self.real_time)


def lookup_files(
    works: Sequence[Path],
    manifest_path: Path,
    *,
    warn: Callable[[str], None],
    sidecar: Path | None = None,
    signed: SignedCardFiles | None = None,
    proof_out: Path | None = None,
) -> LookupRun:
    """Look up every work of ``works`` (files, or folders of works) in a manifest.

    With a ``signed`` card, the card is verified and the manifest (and the fingerprint sidecar,
    when the card commits to one) is checked against it (see
    :func:`provenance.lookup.open_for_lookup`). With ``proof_out``, a proof is written for each
    work: a file when one work file is asked about, else a directory of files (see
    :func:`provenance.proofs.write_proofs`).

    Raises:
        InputError: ``proof_out`` without a signed card; a work is missing or unreadable.
        SignatureError: the card does not verify.
        As :func:`provenance.lookup.open_for_lookup` and :func:`provenance.proofs.write_proofs`.
    """
    if proof_out is not None and signed is None:
        raise InputError("proofs are made against a signed card: give the card to check")
    collected = collect_works(works)
    card = signed.load() if signed is not None else None
    results: list[lookup.WorkResult] = []
    with lookup.open_for_lookup(manifest_path, sidecar=sidecar, card=card, warn=warn) as (
        index,
        builder,
    ):
        for start in range(0, len(collected), BATCH):
            batch = [
                (label, read_bytes(path, limit=lookup.MAX_WORK_BYTES, what=label))
                for label, path in collected[start : start + BATCH]
            ]
            results.extend(lookup.lookup_works(batch, index))
    if proof_out is None or builder is None:
        return LookupRun(tuple(results))
    requests = lookup.proof_requests(results)
    written = proofs.write_proofs(
        builder,
        [(r.work, q) for r, q in zip(results, requests, strict=True)],
        proof_out,
        single=len(works) == 1 and not works[0].is_dir(),
    )
    return LookupRun(
        tuple(results),
        tuple(
            WrittenProof(r.work, path, proof)
            for r, (path, proof) in zip(results, written, strict=True)
        ),
    )


@dataclass(frozen=True, slots=True)
class ProofCheck:
    """The outcome of checking a proof file: verified, or the reason it is not.

    ``problem`` is set when the card or the proof does not verify (a verified "no"); then
    ``claimed`` is what the proof file says of itself (claim, status, work), for the report
    only, and ``unattested_order`` says whether the only reason is that nobody but the
    publisher vouches for the manifest's order.
    """

    proof: proofs.VerifiedProof | None
    card: proofs.CardRef | None
    problem: str | None = None
    unattested_order: bool = False
    claimed: Mapping[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """Whether the proof holds."""
        return self.problem is None

    def to_dict(self, *, advice: str = "") -> dict[str, Any]:
        """Return the ``proof verify --json`` document; ``advice`` is added to the problem."""
        if self.proof is None or self.card is None:
            return {"ok": False, **(self.claimed or {}), "error": f"{self.problem}{advice}"}
        document = self.proof.to_dict()
        predicate = self.card.card.predicate
        document["card"] = {
            **document["card"],
            "name": predicate.name,
            "version": predicate.version,
            "publishers": list(self.card.card.publishers),
        }
        return document


def _unverified_claim(unverified_data: bytes) -> dict[str, Any]:
    """The claim, status and work a proof file states (it did not verify: for the report only)."""
    try:
        document = _json.loads_object(unverified_data, what="proof")
    except FormatError:
        return {"claim": None, "work": None}
    claim = document.get("claim")
    work = document.get("work")
    digest = work.get("sha256") if isinstance(work, dict) else None
    claimed: dict[str, Any] = {
        "claim": claim if claim in ("present", "absent") else None,
        "work": digest if is_sha256_hex(digest) else None,
    }
    status = document.get("status")
    if status in proofs.STATUSES:
        claimed["status"] = status
    return claimed


def check_proof_file(
    proof_path: Path,
    signed: SignedCardFiles,
    *,
    work_path: Path | None = None,
    accept_publisher_order: bool = False,
) -> ProofCheck:
    """Check the proof at ``proof_path`` against the signed card, without the manifest.

    The card is verified against the trust store, then the proof against the Merkle root and
    size the card commits to, and, with ``work_path``, that the proof is about that file. An
    absence claim also needs someone other than the publisher to vouch for the manifest's
    order, unless ``accept_publisher_order`` (see :func:`provenance.proofs.order_basis`).

    Returns:
        The check; a card or proof that does not verify is a :class:`ProofCheck` with a
        ``problem``, not an exception.

    Raises:
        InputError: a file is missing, unreadable or malformed; the card is not signed; no key
            of the trust store is a dataset publisher.
    """
    unverified_data = proofs.read_proof(proof_path)
    work = None
    if work_path is not None:
        content = read_bytes(work_path, limit=lookup.MAX_WORK_BYTES, what=str(work_path))
        work = proofs.WorkDigests.of(content)
    try:
        ref = signed.load()
        verified = proofs.check_proof(
            unverified_data,
            ref,
            what=str(proof_path),
            work=work,
            work_label=str(work_path),
            accept_publisher_order=accept_publisher_order,
        )
    except VerificationError as exc:
        return ProofCheck(
            None,
            None,
            problem=str(exc),
            unattested_order=isinstance(exc, proofs.UnattestedOrderError),
            claimed=_unverified_claim(unverified_data),
        )
    return ProofCheck(verified, ref)
