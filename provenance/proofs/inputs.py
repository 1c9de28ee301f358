"""The I/O shell of checking proofs: the verified card proofs are checked against, and proof
files."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from provenance._files import read_bytes
from provenance.card import VerifiedCard, read_signed_card
from provenance.card import verify_card as _verify_card
from provenance.proofs.model import MAX_PROOF_BYTES, CardCommitment
from provenance.trust import TrustStore, read_trust_store


@dataclass(frozen=True, slots=True)
class CardRef:
    """A verified card and the commitment proofs are checked against."""

    card: VerifiedCard
    commitment: CardCommitment
    names: Mapping[str, str] = field(default_factory=dict)
    """Trust-store names of the keys that signed, by keyid."""


def load_card(
    signed_path: Path,
    trust_path: Path | TrustStore,
    *,
    at: dt.datetime,
    real_time: dt.datetime | None = None,
) -> CardRef:
    """Read ``signed_path`` and verify it as a dataset card against the trust store.

    ``trust_path`` is the trust store's file, or the store already read (by a caller that
    needs it for more than the card: it is read once). Keys are judged at ``at`` and, when the
    clock was moved (``real_time`` given, see :attr:`provenance.trust.TrustStore.real_time`),
    at the real time too.

    Returns:
        The verified card and its commitment (identity = SHA-256 of the verified payload).

    Raises:
        InputError: a file is missing or malformed, the card is unsigned, or no key is trusted
            as dataset-publisher.
        SignatureError: no trusted dataset-publisher key signed the card.
    """
    trust = trust_path if isinstance(trust_path, TrustStore) else read_trust_store(trust_path)
    if real_time is not None:
        trust = trust.with_real_time(real_time)
    document = read_signed_card(signed_path)
    card = _verify_card(document, trust, at=at, what=str(signed_path))
    # verify_card succeeded, so document.payload is exactly the verified bytes.
    statement_sha256 = hashlib.sha256(document.payload).hexdigest()
    names = {k: trust.name_of(k) for k in (*card.publishers, *card.auditors)}
    return CardRef(card, CardCommitment.of(card, statement_sha256), names)


def read_proof(path: Path) -> bytes:
    """Return the unverified bytes of the proof file at ``path``.

    Raises:
        InputError: missing, unreadable, or larger than :data:`MAX_PROOF_BYTES`.
    """
    return read_bytes(path, limit=MAX_PROOF_BYTES, what=str(path))
