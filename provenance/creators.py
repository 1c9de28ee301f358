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
from typing import TYPE_CHECKING, Any

from provenance import _json, lookup, proofs
from provenance._files import read_bytes
from provenance._hex import is_sha256_hex
from provenance.errors import FormatError, InputError, VerificationError

BATCH = 256
"""Works read and looked up at a time (each is read whole, up to ``lookup.MAX_WORK_BYTES``)."""

if TYPE_CHECKING:
    from provenance.fingerprints import ContentPrints


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


def _prepare_batch(
    batch: tuple[tuple[str, Path], ...],
) -> list[tuple[str, str, ContentPrints]]:
    """Read and fingerprint a batch of works (a task): ``(label, sha256, prints)`` each."""
    works = [
        (label, read_bytes(path, limit=lookup.MAX_WORK_BYTES, what=label)) for label, path in batch
    ]
    return lookup.prepare_works(works)


def lookup_files(
    works: Sequence[Path],
    manifest_path: Path,
    *,
    warn: Callable[[str], None],
    sidecar: Path | None = None,
    signed: SignedCardFiles | None = None,
    proof_out: Path | None = None,
    executor: str = "local",
    ray_address: str | None = None,
) -> LookupRun:
    """Look up every work of ``works`` (files, or folders of works) in a manifest.

    The works are read and fingerprinted in batches: here with the ``local`` executor, as Ray
    tasks with ``ray`` (on ``ray_address``, or a local instance); matching runs here.

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
        batches = [tuple(collected[i : i + BATCH]) for i in range(0, len(collected), BATCH)]
        if executor == "local":
            for batch in batches:
                results.extend(lookup.lookup_prepared(_prepare_batch(batch), index))
        else:
            from provenance.executors import make_executor

            with make_executor(executor, address=ray_address) as runner:
                names = [f"works {b[0][0]} .." for b in batches]
                for prepared in runner.map(_prepare_batch, batches, names=names):
                    results.extend(lookup.lookup_prepared(prepared, index))
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


def _card_and_receipts(
    signed: SignedCardFiles, receipts: Sequence[Path]
) -> tuple[proofs.CardRef, list[proofs.RegistryReceipt]]:
    """The verified card and its verified registry receipts, the trust store read once."""
    from provenance.logclient import registered_card
    from provenance.trust import MAX_TRUST_STORE_BYTES, TrustStore

    store = TrustStore.from_json(
        read_bytes(signed.trust, limit=MAX_TRUST_STORE_BYTES), what=str(signed.trust)
    )
    if signed.real_time is not None:
        store = store.with_real_time(signed.real_time)
    ref = proofs.load_card(signed.card, store, at=signed.at)
    registered: list[proofs.RegistryReceipt] = [
        registered_card(
            path,
            store,
            at=signed.at,
            card_id=ref.commitment.statement_sha256,
            card_name=str(signed.card),
        )
        for path in receipts
    ]
    return ref, registered


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
    receipts: Sequence[Path] = (),
    accept_publisher_order: bool = False,
) -> ProofCheck:
    """Check the proof at ``proof_path`` against the signed card, without the manifest.

    The card is verified against the trust store, then the proof against the Merkle root and
    size the card commits to, and, with ``work_path``, that the proof is about that file. An
    absence claim also needs someone other than the publisher to vouch for the manifest's
    order: an auditor's co-signature, or a registry's receipt for the card among ``receipts``
    (each verified against the store's transparency-log keys), unless
    ``accept_publisher_order`` (see :func:`provenance.proofs.order_basis`).

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
        if receipts:
            ref, registered = _card_and_receipts(signed, receipts)
        else:
            ref, registered = signed.load(), []
        verified = proofs.check_proof(
            unverified_data,
            ref,
            what=str(proof_path),
            work=work,
            work_label=str(work_path),
            receipts=registered,
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
