"""Who vouches that a manifest is in ``(sha256, id)`` order, which an absence claim rests on.

The Merkle root does not show the order: the card's signer could sign a mis-ordered manifest and
so "prove" the absence of a work it holds. An absence claim is accepted only when someone other
than the publisher checked the order: a trusted auditor (a key other than the publisher signers')
who co-signed the card, or a registry whose receipt for the card is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from provenance.errors import DigestMismatchError, VerificationError
from provenance.proofs.inputs import CardRef


class UnattestedOrderError(VerificationError):
    """An absence claim that rests on the publisher's word alone: no one else vouches that the
    manifest is in the order the claim needs."""


@dataclass(frozen=True, slots=True)
class OrderBasis:
    """Who vouches that the manifest is in ``(sha256, id)`` order, which absence rests on."""

    auditors: tuple[str, ...] = ()
    """keyids of trusted auditors, other than the publisher signers, who co-signed the card."""
    registries: tuple[str, ...] = ()
    """Registries whose receipt for the card was given."""
    names: Mapping[str, str] = field(default_factory=dict)
    """Names from the trust store, by keyid."""

    @property
    def publisher_only(self) -> bool:
        """True when only the publisher's word stands behind the order."""
        return not self.auditors and not self.registries

    def describe(self) -> str:
        """Return a phrase naming who checked the manifest's order."""
        if self.publisher_only:
            return (
                "on the publisher's word alone (no independent auditor co-signed the card and no"
                " registry receipt was given; accepted as asked)"
            )
        who = [f"auditor {self.names.get(k, 'unnamed')} ({k[:16]})" for k in self.auditors]
        who += [f"registry {name}" for name in self.registries]
        return "the manifest's order was checked by " + ", ".join(who)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form ``{"publisherOnly", "auditors", "registries"}``."""
        return {
            "publisherOnly": self.publisher_only,
            "auditors": [{"keyid": k, "name": self.names.get(k, "unnamed")} for k in self.auditors],
            "registries": list(self.registries),
        }


class RegistryReceipt(Protocol):
    """A registry's receipt for a card, already verified against the registry's trusted key.

    The registry checks a manifest's order when it takes a card in, so its receipt for the
    card is a basis for absence claims (:func:`provenance.logclient.registered_card` verifies
    one and returns this).
    """

    @property
    def registry(self) -> str:
        """The registry's name, as the trust store gives it."""
        ...

    @property
    def statement_sha256(self) -> str:
        """SHA-256 of the card payload (in-toto Statement bytes) the receipt is for."""
        ...


def order_basis(
    card: CardRef,
    *,
    receipts: Sequence[RegistryReceipt] = (),
    accept_publisher_order: bool = False,
) -> OrderBasis:
    """Return who vouches that the card's manifest is in ``(sha256, id)`` order.

    An auditor co-signature counts only if the auditor's key is not one of the keys that
    signed as dataset publisher (one key holding both roles is the publisher vouching for
    itself). A receipt counts only if it is for this card.

    Raises:
        DigestMismatchError: a receipt is for another card.
        UnattestedOrderError: no independent auditor co-signed and no receipt was given, and
            ``accept_publisher_order`` is false.
    """
    publishers = set(card.card.publishers)
    auditors = tuple(sorted(set(card.card.auditors) - publishers))
    for receipt in receipts:
        if receipt.statement_sha256 != card.commitment.statement_sha256:
            raise DigestMismatchError(
                f"the receipt of registry {receipt.registry} is for another card (statement"
                f" sha256 {receipt.statement_sha256}, this card's is"
                f" {card.commitment.statement_sha256})"
            )
    basis = OrderBasis(auditors, tuple(r.registry for r in receipts), card.names)
    if basis.publisher_only and not accept_publisher_order:
        own = sorted(set(card.card.auditors) & publishers)
        note = (
            f" (the auditor signature by {', '.join(k[:16] for k in own)} is by a key that"
            " signed as publisher, so it does not count)"
            if own
            else ""
        )
        raise UnattestedOrderError(
            "the absence rests on the publisher's word alone: it holds only if the manifest is"
            " in (sha256, id) order, and no trusted auditor other than the publisher"
            f" co-signed the card{note} and no registry receipt for it was given"
        )
    return basis
