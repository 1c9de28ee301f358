"""What the clients of a registry make of its answers: refusals, JSON objects, receipts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from provenance import _json
from provenance.errors import FetchError, FormatError, InputError, VerificationError
from provenance.signednote import Checkpoint, NoteVerifier
from provenance.tlog import LogEntry, Receipt, verify_receipt

if TYPE_CHECKING:
    from provenance._http import Answer

MAX_ANSWER_BYTES = 256 * 1024 * 1024


def error_message(answer: Answer) -> str:
    """The error the registry gave (its JSON ``error``), else the start of its answer."""
    try:
        document = _json.loads(answer.body, what="the registry's answer")
    except FormatError:
        return answer.body[:200].decode("utf-8", "replace")
    error = document.get("error") if isinstance(document, dict) else None
    return str(error) if error else answer.body[:200].decode("utf-8", "replace")


def refused(answer: Answer, what: str, *, verdicts: bool = True) -> Exception:
    """The error for a refusal of a push (``verdicts``: the registry's verdict on a card, 1),
    or of a question (a lookup, where no answer is a verdict): bad input (2), else unavailable
    (3)."""
    message = f"{what}: HTTP {answer.status}: {error_message(answer)}"
    if verdicts and answer.status in (403, 409, 422):
        return VerificationError(f"the registry refused it: {message}")
    if answer.status in ((400, 404, 413) if verdicts else (400, 413)):
        return InputError(message)
    return FetchError(message)


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """``data`` (an answer's body) as a JSON object (strict JSON: no duplicate keys, no NaN).

    Raises:
        FetchError: it is not one.
    """
    try:
        document = _json.loads(data, what=f"{what}: the registry's answer")
    except FormatError as exc:
        raise FetchError(f"{exc}") from None
    if not isinstance(document, dict):
        raise FetchError(f"{what}: the registry's answer is not a JSON object")
    return document


def verified_entry(
    receipt_bytes: bytes, verifiers: Sequence[NoteVerifier], *, what: str
) -> tuple[int, Checkpoint, LogEntry]:
    """Verify a receipt the registry sent and parse its log entry.

    Returns:
        The entry's index, the checkpoint and the entry.

    Raises:
        VerificationError: the receipt does not verify, or its entry is not a card entry.
    """
    receipt = Receipt.parse(receipt_bytes, what=what)
    verified = verify_receipt(receipt, verifiers, what=what)
    try:
        entry = LogEntry.from_bytes(verified.entry, what=f"{what}: entry")
    except FormatError as exc:
        raise VerificationError(f"{exc} (not a provenance.card/v1 log entry)") from None
    return verified.index, verified.checkpoint.checkpoint, entry


__all__ = [
    "MAX_ANSWER_BYTES",
    "error_message",
    "json_object",
    "refused",
    "verified_entry",
]
