"""Offline verification of a list repository's TUF metadata: bytes in, verified state out.

Used on the repository side (``publish`` and ``refresh`` check the state they extend) and on the
client side (the cache is re-verified every time it is loaded, docs/security.md L20). It applies
the TUF rules that do not need a network (python-tuf's Metadata API does the signature checks):

1. the first root is signed by a threshold of its own root keys (it is the anchor; whether the
   anchor is trusted is decided by the caller against the trust store);
2. each further root has version N+1 and is signed by a threshold of the previous root's and of
   its own root keys;
3. timestamp, snapshot and targets are signed by a threshold of the final root's keys for their
   role; the snapshot version (and hashes, if given) is the one the timestamp names, the targets
   version (and hashes) the one the snapshot names (mix-and-match);
4. no metadata has expired at ``at`` (unless the caller asks to see expired state).

Thresholds are counted over *distinct public keys* (our SPKI keyids), not over TUF keyids, so one
key listed under two keyids counts once (docs/security.md K4, L12).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tuf.api.exceptions import LengthOrHashMismatchError
from tuf.api.metadata import Metadata, Root, Snapshot, Targets, Timestamp
from tuf.api.serialization import DeserializationError

from provenance.errors import DigestMismatchError, ExpiredError, RollbackError, SignatureError
from provenance.lists._tufkeys import our_key
from provenance.trust import format_time

TOP_LEVEL_ROLES = ("root", "targets", "snapshot", "timestamp")

_T = TypeVar("_T", Root, Timestamp, Snapshot, Targets)


@dataclass(frozen=True, slots=True)
class VerifiedRepository:
    """Top-level metadata that passed every offline check, with who signed what.

    ``signers`` maps each role to the distinct SPKI keyids whose signatures verified;
    ``anchor_signers`` are those of the first root (the one a trust store must vouch for).
    """

    root: Metadata[Root]
    timestamp: Metadata[Timestamp]
    snapshot: Metadata[Snapshot]
    targets: Metadata[Targets]
    signers: dict[str, tuple[str, ...]]
    anchor_signers: tuple[str, ...]

    @property
    def expires(self) -> dt.datetime:
        """The earliest expiry of the four top-level roles: when this state stops being fresh."""
        return min(
            self.root.signed.expires,
            self.timestamp.signed.expires,
            self.snapshot.signed.expires,
            self.targets.signed.expires,
        )


def parse(data: bytes, kind: type[_T], *, what: str) -> Metadata[_T]:
    """Parse TUF metadata bytes of ``kind``.

    Raises:
        SignatureError: not TUF metadata of that kind (it cannot be trusted; treat as tampered).
    """
    try:
        metadata: Metadata[Any] = Metadata.from_bytes(data)
    except DeserializationError as exc:
        raise SignatureError(f"{what}: not valid TUF {kind.type} metadata ({exc})") from None
    if not isinstance(metadata.signed, kind):
        raise SignatureError(f"{what}: expected {kind.type} metadata, got {metadata.signed.type}")
    return metadata


def role_signers(
    delegator: Root, role: str, metadata: Metadata[Any], *, what: str
) -> tuple[str, ...]:
    """Return the distinct SPKI keyids of ``role``'s keys that signed ``metadata``.

    Raises:
        SignatureError: fewer distinct keys than the role's threshold signed.
    """
    result = delegator.get_verification_result(role, metadata.signed_bytes, metadata.signatures)
    distinct: dict[str, None] = {}
    for key in result.signed.values():
        public = our_key(key)
        # A key type we cannot map is still a valid TUF key; count it by its TUF keyid so that
        # repositories signed with other tools keep working, but it never matches a trust store.
        distinct[public.keyid if public is not None else f"tuf:{key.keyid}"] = None
    threshold = delegator.roles[role].threshold
    if len(distinct) < threshold:
        raise SignatureError(
            f"{what}: {role} metadata signed by {len(distinct)} of the {threshold} distinct"
            " keys required"
        )
    return tuple(sorted(distinct))


def _check_expiry(metadata: Metadata[Any], at: dt.datetime, *, what: str) -> None:
    if metadata.signed.is_expired(at):
        raise ExpiredError(
            f"{what}: {metadata.signed.type} metadata expired"
            f" {format_time(metadata.signed.expires)} (now {format_time(at)}); run"
            " 'lists refresh' on the repository or fetch again"
        )


def verify_top_level(
    roots: Sequence[bytes],
    timestamp: bytes,
    snapshot: bytes,
    targets: bytes,
    *,
    at: dt.datetime,
    allow_expired: bool = False,
    what: str,
) -> VerifiedRepository:
    """Verify a repository's top-level metadata offline (see the module docstring).

    Args:
        roots: root metadata bytes in version order, the first being the anchor.
        timestamp, snapshot, targets: the current metadata bytes of each role.
        at: the time expiry is checked against.
        allow_expired: skip the expiry checks (to show what a stale cache holds).
        what: names the repository in error messages.

    Returns:
        The verified metadata.

    Raises:
        SignatureError: a threshold is not met, or a file is not TUF metadata.
        RollbackError: root versions are not consecutive.
        DigestMismatchError: snapshot or targets are not the versions or bytes their parent names.
        ExpiredError: a role has expired at ``at``.
    """
    if not roots:
        raise SignatureError(f"{what}: no root metadata")
    root = parse(roots[0], Root, what=f"{what}: root")
    anchor_signers = role_signers(root.signed, "root", root, what=f"{what}: root")
    for data in roots[1:]:
        new = parse(data, Root, what=f"{what}: root")
        if new.signed.version != root.signed.version + 1:
            raise RollbackError(
                f"{what}: root version {new.signed.version} does not follow {root.signed.version}"
            )
        role_signers(
            root.signed, "root", new, what=f"{what}: root v{new.signed.version} (old keys)"
        )
        role_signers(new.signed, "root", new, what=f"{what}: root v{new.signed.version}")
        root = new
    trusted_root: Root = root.signed
    signers = {"root": role_signers(trusted_root, "root", root, what=f"{what}: root")}

    ts = parse(timestamp, Timestamp, what=f"{what}: timestamp")
    signers["timestamp"] = role_signers(trusted_root, "timestamp", ts, what=f"{what}: timestamp")
    snap = parse(snapshot, Snapshot, what=f"{what}: snapshot")
    signers["snapshot"] = role_signers(trusted_root, "snapshot", snap, what=f"{what}: snapshot")
    snapshot_meta = ts.signed.snapshot_meta
    if snap.signed.version != snapshot_meta.version:
        raise DigestMismatchError(
            f"{what}: snapshot is version {snap.signed.version} but the timestamp names version"
            f" {snapshot_meta.version} (mix-and-match)"
        )
    try:
        snapshot_meta.verify_length_and_hashes(snapshot)
    except LengthOrHashMismatchError as exc:
        raise DigestMismatchError(f"{what}: snapshot does not match the timestamp: {exc}") from None

    tgt = parse(targets, Targets, what=f"{what}: targets")
    signers["targets"] = role_signers(trusted_root, "targets", tgt, what=f"{what}: targets")
    targets_meta = snap.signed.meta.get("targets.json")
    if targets_meta is None or tgt.signed.version != targets_meta.version:
        named = "no version" if targets_meta is None else f"version {targets_meta.version}"
        raise DigestMismatchError(
            f"{what}: targets is version {tgt.signed.version} but the snapshot names {named}"
            " (mix-and-match)"
        )
    try:
        targets_meta.verify_length_and_hashes(targets)
    except LengthOrHashMismatchError as exc:
        raise DigestMismatchError(f"{what}: targets do not match the snapshot: {exc}") from None
    if tgt.signed.delegations is not None:
        raise SignatureError(f"{what}: delegated targets are not used by list repositories")

    if not allow_expired:
        for metadata in (root, ts, snap, tgt):
            _check_expiry(metadata, at, what=what)
    return VerifiedRepository(
        root=root,
        timestamp=ts,
        snapshot=snap,
        targets=tgt,
        signers=signers,
        anchor_signers=anchor_signers,
    )
