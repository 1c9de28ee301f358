"""The HTTP API's documents, as pydantic models: the OpenAPI schema at ``/openapi.json``.

Requests are validated against these; answers are built as plain JSON (faster) and documented
here, and the schemathesis tests hold the two together.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from provenance._kernels import hex_digest_rows
from provenance.errors import FormatError

MAX_DIGESTS = 1000
MAX_FINGERPRINT_SETS = 100
MAX_TEXT_PRINTS = 200_000
"""Text fingerprints in one lookup, over all its fingerprint sets."""

Hex64 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Hex16 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
Kind = Literal["sha256", "textSha256"]
FingerprintStatus = Literal["near-duplicate", "contained"]


class Error(BaseModel):
    """Every error answer."""

    error: str


class Card(BaseModel):
    """A registered card, as its first push answered (without the receipt in lists)."""

    id: Hex64 = Field(description="SHA-256 of the card's statement (the DSSE payload).")
    name: str
    version: str
    publisher: list[Hex64] = Field(description="keyids of its trusted dataset-publisher keys.")
    entries: int = Field(ge=0)
    logIndex: int = Field(ge=0)  # noqa: N815 - the JSON field name
    registered: str
    fingerprints: bool = Field(description="Whether its fingerprint sidecar is stored.")
    receipt: str | None = Field(
        default=None, description="The c2sp.org/tlog-proof@v1 receipt of its log entry."
    )


class CardList(BaseModel):
    """``GET /v1/cards``: every registered card, newest first."""

    cards: list[Card]


class Match(BaseModel):
    """A registered manifest entry with the digest asked about."""

    card: Hex64
    name: str
    version: str
    publisher: list[Hex64]
    entry: str = Field(description="The manifest entry's id.")


class DigestResult(BaseModel):
    """The registered entries with one digest."""

    digest: Hex64
    kind: Kind
    matches: list[Match]


class FingerprintSet(BaseModel):
    """One work's fingerprints: its winnowed text fingerprints and its image pHash."""

    model_config = ConfigDict(extra="forbid")

    text: list[Hex16] = Field(default_factory=list, max_length=MAX_TEXT_PRINTS)
    image: Hex16 | None = None


class LookupRequest(BaseModel):
    """``POST /v1/lookup``: at most 1,000 digests in all, and up to 100 fingerprint sets."""

    model_config = ConfigDict(extra="forbid")

    sha256: list[Hex64] = Field(default_factory=list, max_length=MAX_DIGESTS)
    textSha256: list[Hex64] = Field(  # noqa: N815 - the JSON field name
        default_factory=list, max_length=MAX_DIGESTS
    )
    fingerprints: list[FingerprintSet] = Field(
        default_factory=list, max_length=MAX_FINGERPRINT_SETS
    )


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {k: _inline(v, definitions) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema


def lookup_request_schema() -> dict[str, Any]:
    """The JSON Schema of a lookup request (:class:`LookupRequest`), self-contained."""
    schema = LookupRequest.model_json_schema()
    inlined: dict[str, Any] = _inline(schema, schema.get("$defs", {}))
    return inlined


# The request as it is decoded at run time (msgspec: several times faster than the pydantic
# model); the same constraints as LookupRequest, which documents it. Python's "$" also matches
# before a final newline, hence "\Z".
_Hex64 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")]
_Hex16 = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{16}\Z")]


class FingerprintBody(msgspec.Struct, forbid_unknown_fields=True):
    """:class:`FingerprintSet`, decoded."""

    text: Annotated[list[_Hex16], msgspec.Meta(max_length=MAX_TEXT_PRINTS)] = []
    image: _Hex16 | None = None


class LookupBody(msgspec.Struct, forbid_unknown_fields=True):
    """:class:`LookupRequest`, decoded."""

    sha256: Annotated[list[_Hex64], msgspec.Meta(max_length=MAX_DIGESTS)] = []
    textSha256: Annotated[list[_Hex64], msgspec.Meta(max_length=MAX_DIGESTS)] = []  # noqa: N815
    fingerprints: Annotated[
        list[FingerprintBody], msgspec.Meta(max_length=MAX_FINGERPRINT_SETS)
    ] = []


LOOKUP_DECODER = msgspec.json.Decoder(LookupBody)


class _LooseLookupBody(msgspec.Struct, forbid_unknown_fields=True):
    """:class:`LookupBody` with its digests' pattern left to a check in bulk."""

    sha256: Annotated[list[str], msgspec.Meta(max_length=MAX_DIGESTS)] = []
    textSha256: Annotated[list[str], msgspec.Meta(max_length=MAX_DIGESTS)] = []  # noqa: N815
    fingerprints: Annotated[
        list[FingerprintBody], msgspec.Meta(max_length=MAX_FINGERPRINT_SETS)
    ] = []


_LOOSE_DECODER = msgspec.json.Decoder(_LooseLookupBody)
_HEX64 = re.compile("[0-9a-f]{64}")
_BULK_FROM = 16
"""From this many digests, they are checked in bulk (numpy); fewer, each by the regex."""


def decode_lookup(data: bytes | bytearray) -> LookupBody:
    """Decode a lookup request as :data:`LOOKUP_DECODER` does (the same documents accepted,
    the same errors), faster: the digests are checked in bulk rather than each by a regex.

    Raises:
        msgspec.DecodeError: as :data:`LOOKUP_DECODER` (``ValidationError`` included).
    """
    try:
        loose = _LOOSE_DECODER.decode(data)
        for digests in (loose.sha256, loose.textSha256):
            if len(digests) > _BULK_FROM:
                hex_digest_rows(digests)
            elif not all(map(_HEX64.fullmatch, digests)):
                raise FormatError("not 64 lowercase hex digits")
    except (msgspec.DecodeError, FormatError):
        # Refused: the strict decoder says why (a looser one cannot accept less).
        LOOKUP_DECODER.decode(data)
        raise AssertionError(
            "the strict lookup decoder accepted what the loose one refused"
        ) from None
    return LookupBody(loose.sha256, loose.textSha256, loose.fingerprints)


class FingerprintMatch(Match):
    """A registered entry that is an edited copy of the work, or holds part of it."""

    status: FingerprintStatus
    score: float = Field(ge=0, le=1)


class FingerprintResult(BaseModel):
    """The near-duplicate and contained entries of one fingerprint set."""

    matches: list[FingerprintMatch]


class LookupAnswer(BaseModel):
    """Results in request order: sha256 digests, then textSha256 ones; fingerprint sets."""

    results: list[DigestResult]
    fingerprints: list[FingerprintResult]


class RangeAnswer(BaseModel):
    """``GET /v1/range/{prefix}``: every registered digest starting with the prefix."""

    prefix: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{5}$")]
    digests: list[DigestResult]


__all__ = [
    "MAX_DIGESTS",
    "MAX_FINGERPRINT_SETS",
    "MAX_TEXT_PRINTS",
    "Card",
    "CardList",
    "DigestResult",
    "Error",
    "FingerprintMatch",
    "FingerprintBody",
    "FingerprintResult",
    "FingerprintSet",
    "LOOKUP_DECODER",
    "decode_lookup",
    "LookupAnswer",
    "LookupBody",
    "LookupRequest",
    "Match",
    "RangeAnswer",
    "lookup_request_schema",
]
