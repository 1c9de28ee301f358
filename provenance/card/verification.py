"""Verifying a signed card against a trust store, and showing a card to people.

:func:`verify_card` checks the DSSE envelope against the keys trusted as ``dataset-publisher``
and parses only the verified payload; :func:`show_card` decodes a card for people, verified
when a trust store is given and marked as unverified otherwise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from provenance import _json
from provenance.card.model import PAYLOAD_TYPE, PREDICATE_TYPE, CardPredicate, CardStatement
from provenance.card.statement import parse_statement, unverified_statement
from provenance.envelope import Envelope, VerifiedPayload, verified_signers, verify_envelope
from provenance.errors import DocumentTypeError, InputError, SignatureError
from provenance.trust import TrustStore, format_time

CARD_ROLES = ("dataset-publisher", "auditor")
"""The roles whose signatures on a card mean something: the publisher's and co-signers'."""


@dataclass(frozen=True, slots=True)
class VerifiedCard:
    """A card whose signature verified: the statement parsed from the verified bytes only."""

    statement: CardStatement
    publishers: tuple[str, ...]
    """keyids of trusted dataset-publisher keys that signed."""
    auditors: tuple[str, ...]
    """keyids of trusted auditor keys that co-signed."""

    @property
    def predicate(self) -> CardPredicate:
        """The card predicate."""
        return self.statement.predicate

    @property
    def manifest_digest(self) -> str:
        """The manifest file digest the card commits to."""
        return self.statement.manifest_sha256


def verify_card(
    envelope: Envelope, trust: TrustStore, *, at: dt.datetime, what: str
) -> VerifiedCard:
    """Verify a signed card against ``trust`` and parse it.

    The signature is checked against the keys trusted as ``dataset-publisher`` at ``at``; only
    the verified payload bytes are then parsed and validated. Auditor co-signatures are
    reported, not required.

    Raises:
        InputError: no key in ``trust`` is a dataset-publisher (vacuous trust is refused).
        SignatureError: no publisher key trusted at ``at`` signed (naming a listed key that did
            sign outside its validity window), or the payload type is wrong.
        DocumentTypeError: a trusted key signed a statement that is not a dataset card.
        FormatError, SchemaError: the verified payload is not a valid card.
    """
    listed = trust.keys_with_role("dataset-publisher")
    if not listed:
        raise InputError("trust store: no key is trusted for the role 'dataset-publisher'")
    keys = trust.keys_for("dataset-publisher", at=at)
    try:
        if not keys:
            raise SignatureError(
                f"{what}: no dataset-publisher key of the trust store is valid at {format_time(at)}"
            )
        verified: VerifiedPayload = verify_envelope(envelope, keys, payload_type=PAYLOAD_TYPE)
    except SignatureError:
        # Say so when a listed publisher key signed, but outside its validity window.
        for keyid in verified_signers(envelope, {k: v for k, v in listed.items() if k not in keys}):
            reason = trust.why_not_valid(trust.keys[keyid], at=at)
            raise SignatureError(
                f"{what}: signed by dataset-publisher {trust.name_of(keyid)} ({keyid[:16]}),"
                f" whose {reason}"
            ) from None
        raise
    document = _json.loads_object(verified.payload, what=f"{what}: payload")
    if document.get("predicateType") != PREDICATE_TYPE:
        raise DocumentTypeError(
            f"{what}: the signed statement's predicateType is"
            f" {document.get('predicateType')!r}, not a dataset card ({PREDICATE_TYPE})"
        )
    statement = parse_statement(document, what=f"{what}: payload")
    auditors = verified_signers(envelope, trust.keys_for("auditor", at=at))
    return VerifiedCard(statement, verified.signers, auditors)


# ----------------------------------------------------------------------------------------------
# Showing a card to people


@dataclass(frozen=True, slots=True)
class SignatureView:
    """What one signature of a card is, as far as the trust store says.

    ``status`` is ``verified`` (a key trusted now for ``role`` made it), ``not-valid-now`` (a
    key the store lists for ``role`` made it, outside its validity window), ``untrusted`` (no
    key of the store made it) or ``unchecked`` (no trust store was given). ``keyid`` is the
    key that made it when one of the store's keys verifies it, else the envelope's unverified
    hint.
    """

    keyid: str
    status: str
    role: str | None = None
    name: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "keyid": self.keyid,
            "status": self.status,
            "role": self.role,
            "name": self.name,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class CardView:
    """A card as ``card show`` presents it.

    ``statement`` is the verified statement when ``verified``; otherwise it is only what the
    file claims (``unverified``), and must be presented as such.
    """

    verified: bool
    trust_given: bool
    problem: str | None
    statement: CardStatement
    signatures: tuple[SignatureView, ...]
    signed: bool

    def to_dict(self) -> dict[str, Any]:
        """Return the ``--json`` document; an unverified card is under ``unverifiedCard``."""
        return {
            "verified": self.verified,
            "trustStore": self.trust_given,
            "problem": self.problem,
            "signatures": [s.to_dict() for s in self.signatures],
            ("card" if self.verified else "unverifiedCard"): self.statement.to_dict(),
        }


def show_card(
    document: Envelope | CardStatement,
    trust: TrustStore | None,
    *,
    at: dt.datetime,
    what: str,
) -> CardView:
    """Decode a card for people and, given a trust store, verify its signatures.

    Without ``trust`` nothing is verified: the statement is decoded from the unverified
    payload, and every signature is ``unchecked``. With ``trust`` the card is verified as
    :func:`verify_card` does; when that fails, the statement shown is the unverified one and
    ``problem`` says why.

    Returns:
        A :class:`CardView`.

    Raises:
        InputError: ``trust`` has no dataset-publisher key.
        FormatError, SchemaError: the (verified or unverified) payload is not a card.
    """
    if isinstance(document, CardStatement):
        return CardView(
            verified=False,
            trust_given=trust is not None,
            problem="the card is not signed",
            statement=document,
            signatures=(),
            signed=False,
        )
    problem: str | None = None
    statement: CardStatement
    if trust is not None:
        try:
            statement = verify_card(document, trust, at=at, what=what).statement
        except (SignatureError, DocumentTypeError) as exc:
            problem = str(exc)
            statement = unverified_statement(document, what=what)
    else:
        problem = "no trust store was given: nothing was verified"
        statement = unverified_statement(document, what=what)
    return CardView(
        verified=problem is None,
        trust_given=trust is not None,
        problem=problem,
        statement=statement,
        signatures=tuple(_signature_views(document, trust, at=at)),
        signed=True,
    )


def _signature_views(
    envelope: Envelope, trust: TrustStore | None, *, at: dt.datetime
) -> list[SignatureView]:
    views: list[SignatureView] = []
    for signature in envelope.signatures:
        hint = signature.keyid or "(none)"
        if trust is None:
            views.append(SignatureView(hint, "unchecked", detail="no trust store given"))
            continue
        signers = verified_signers(
            Envelope(envelope.payload_type, envelope.payload, (signature,)),
            {k: t.key for k, t in trust.keys.items()},
        )
        if not signers:
            views.append(
                SignatureView(hint, "untrusted", detail="no key of the trust store made it")
            )
            continue
        trusted = trust.keys[signers[0]]
        reason = trust.why_not_valid(trusted, at=at)
        status = "verified" if reason is None else "not-valid-now"
        if trusted.role not in CARD_ROLES:
            status, reason = "wrong-role", f"trusted as {trusted.role}, which does not sign cards"
        views.append(
            SignatureView(
                trusted.keyid,
                status,
                role=trusted.role,
                name=trusted.name,
                detail=reason or "",
            )
        )
    return views
