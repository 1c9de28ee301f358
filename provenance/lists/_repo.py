"""The state of a list repository that ``publish`` and ``refresh`` extend (private).

:class:`Repository` holds the repository's verified top-level metadata and the files a publish
or refresh adds; the functions here load and verify it (:func:`load_repository`), create a new
one, sign roles with a threshold of the given keys, bump versions, and write the new files in
the order clients rely on, then read them back. :mod:`provenance.lists.repository` composes
them into ``publish`` and ``refresh``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Role,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from provenance._files import atomic_write, read_bytes
from provenance.errors import InputError, ParameterError
from provenance.keys import PrivateKey
from provenance.lists import _metadata
from provenance.lists._lock import fsync_directory
from provenance.lists._tufkeys import KeySigner
from provenance.lists.cache import (
    MAX_ROOT_BYTES,
    MAX_ROOT_VERSIONS,
    MAX_SNAPSHOT_BYTES,
    MAX_TARGETS_BYTES,
    MAX_TIMESTAMP_BYTES,
    parse_target_path,
    verified_digest,
)

EXPIRES_IN_FIELD = "x-provenance-expires-in-days"
"""Where the timestamp records its own lifetime (an unrecognized field to TUF clients)."""
LONG_LIVED_DAYS = 365
"""Root, targets and snapshot expire after a year; ``refresh`` renews them when due."""
ROLES = _metadata.TOP_LEVEL_ROLES
SERIALIZER = JSONSerializer(compact=False)
_ROOT_FILE_RE = re.compile(r"\A([1-9][0-9]{0,15})\.root\.json\Z")


@dataclass
class Repository:
    """The repository's current metadata (verified) and what a publish or refresh changes."""

    directory: Path
    root: Metadata[Root]
    timestamp: Metadata[Timestamp]
    snapshot: Metadata[Snapshot]
    targets: Metadata[Targets]
    new_files: list[tuple[Path, bytes]] = field(default_factory=list)

    @property
    def metadata_dir(self) -> Path:
        return self.directory / "metadata"


def signers_of(keys: Sequence[PrivateKey]) -> list[KeySigner]:
    if not keys:
        raise InputError("signing keys: at least one is needed")
    unique: dict[str, KeySigner] = {}
    for key in keys:
        unique.setdefault(key.keyid, KeySigner(key))
    return list(unique.values())


def sign(
    metadata: Metadata[Any], role: str, root: Root, signers: Sequence[KeySigner], *, what: str
) -> None:
    """Sign ``metadata`` with every given key that holds ``role``; a threshold must sign."""
    metadata.signatures.clear()
    allowed = set(root.roles[role].keyids)
    for signer in signers:
        if signer.public_key.keyid in allowed:
            metadata.sign(signer, append=True)
    _metadata.role_signers(root, role, metadata, what=what)


def check_threshold(root: Root, signers: Sequence[KeySigner], *, what: str) -> None:
    """Refuse early (before writing anything) when the keys cannot meet every threshold."""
    for role in ROLES:
        holders = [s for s in signers if s.public_key.keyid in root.roles[role].keyids]
        threshold = root.roles[role].threshold
        if len(holders) < threshold:
            raise InputError(
                f"{what}: the {role} role needs {threshold} of its keys; {len(holders)} of the"
                f" given key(s) belong to it (keyids {', '.join(s.keyid for s in signers)})"
            )


def new_repository(
    directory: Path,
    signers: Sequence[KeySigner],
    *,
    threshold: int,
    at: dt.datetime,
    timestamp_days: dt.timedelta,
) -> Repository:
    if not 1 <= threshold <= len(signers):
        raise ParameterError(
            "threshold", f"must be between 1 and the {len(signers)} key(s) given", value=threshold
        )
    long_lived = at + dt.timedelta(days=LONG_LIVED_DAYS)
    root = Root(
        version=1,
        expires=long_lived,
        roles={role: Role([], threshold) for role in ROLES},
        consistent_snapshot=True,
    )
    for signer in signers:
        for role in ROLES:
            root.add_key(signer.public_key, role)
    root_md = Metadata(root)
    sign(root_md, "root", root, signers, what="new root")
    # Versions start at 0 here: the first publish bumps every role to version 1.
    targets = Metadata(Targets(version=1, expires=long_lived))
    snapshot = Metadata(Snapshot(version=1, expires=long_lived))
    timestamp = Metadata(Timestamp(version=1, expires=at + timestamp_days))
    for unsigned in (targets, snapshot, timestamp):
        unsigned.signed.version = 0
    repo = Repository(directory, root_md, timestamp, snapshot, targets)
    repo.new_files.append((repo.metadata_dir / "1.root.json", root_md.to_bytes(SERIALIZER)))
    return repo


def load_repository(
    directory: Path, *, at: dt.datetime, allow_expired: bool = True
) -> Repository | None:
    """Read and verify the repository in ``directory``; None if there is none yet."""
    metadata = directory / "metadata"
    if not (metadata / "timestamp.json").exists() and not (metadata / "1.root.json").exists():
        return None
    what = f"repository {directory}"
    versions = sorted(
        int(m.group(1)) for n in os.listdir(metadata) if (m := _ROOT_FILE_RE.match(n))
    )
    if not versions or versions != list(range(1, len(versions) + 1)):
        raise InputError(f"{what}: root versions {versions} in metadata/ are not 1..N")
    if len(versions) > MAX_ROOT_VERSIONS:
        raise InputError(f"{what}: more than {MAX_ROOT_VERSIONS} root versions")
    roots = [read_bytes(metadata / f"{v}.root.json", limit=MAX_ROOT_BYTES) for v in versions]
    timestamp = read_bytes(metadata / "timestamp.json", limit=MAX_TIMESTAMP_BYTES)
    ts = _metadata.parse(timestamp, Timestamp, what=f"{what}: timestamp")
    snapshot_version = ts.signed.snapshot_meta.version
    snapshot = read_bytes(metadata / f"{snapshot_version}.snapshot.json", limit=MAX_SNAPSHOT_BYTES)
    snap = _metadata.parse(snapshot, Snapshot, what=f"{what}: snapshot")
    targets_meta = snap.signed.meta.get("targets.json")
    if targets_meta is None:
        raise InputError(f"{what}: snapshot names no targets metadata")
    targets = read_bytes(metadata / f"{targets_meta.version}.targets.json", limit=MAX_TARGETS_BYTES)
    # Re-verify what we are about to extend: signing on top of tampered metadata would give the
    # tampering our signature. Expired metadata is fine here (refresh exists to renew it).
    state = _metadata.verify_top_level(
        roots, timestamp, snapshot, targets, at=at, allow_expired=allow_expired, what=what
    )
    return Repository(directory, state.root, state.timestamp, state.snapshot, state.targets)


def target_file(directory: Path, info: TargetFile) -> Path:
    parent, _, base = info.path.rpartition("/")
    return directory / "targets" / parent / f"{info.hashes['sha256']}.{base}"


def list_versions(targets: Targets, name: str) -> dict[int, TargetFile]:
    result: dict[int, TargetFile] = {}
    for path, info in targets.targets.items():
        parsed = parse_target_path(path)
        if parsed is not None and parsed[0] == name:
            result[parsed[1]] = info
    return result


def _next_version(
    repo: Repository,
    metadata: Metadata[Any],
    role: str,
    signers: Sequence[KeySigner],
    *,
    expires: dt.datetime,
) -> MetaFile:
    """Sign ``metadata`` (role ``role``) as its next version, expiring at ``expires``, and add
    its file ``<version>.<role>.json``; return what the role above it records of that file."""
    metadata.signed.version += 1
    metadata.signed.expires = expires
    sign(metadata, role, repo.root.signed, signers, what=role)
    data = metadata.to_bytes(SERIALIZER)
    version = metadata.signed.version
    repo.new_files.append((repo.metadata_dir / f"{version}.{role}.json", data))
    return MetaFile.from_data(version, data, ["sha256"])


def bump_snapshot_and_timestamp(
    repo: Repository,
    signers: Sequence[KeySigner],
    *,
    at: dt.datetime,
    timestamp_days: dt.timedelta,
    resign_snapshot: bool,
    resign_targets: bool,
) -> dict[str, int]:
    """Re-sign targets (if asked), snapshot (if asked or targets changed) and the timestamp."""
    long_lived = at + dt.timedelta(days=LONG_LIVED_DAYS)
    resigned: dict[str, int] = {}
    if resign_targets:
        repo.snapshot.signed.meta["targets.json"] = _next_version(
            repo, repo.targets, "targets", signers, expires=long_lived
        )
        resigned["targets"] = repo.targets.signed.version
        resign_snapshot = True
    if resign_snapshot:
        repo.timestamp.signed.snapshot_meta = _next_version(
            repo, repo.snapshot, "snapshot", signers, expires=long_lived
        )
        resigned["snapshot"] = repo.snapshot.signed.version
    repo.timestamp.signed.version += 1
    repo.timestamp.signed.expires = at + timestamp_days
    repo.timestamp.signed.unrecognized_fields[EXPIRES_IN_FIELD] = timestamp_days.days
    sign(repo.timestamp, "timestamp", repo.root.signed, signers, what="timestamp")
    repo.new_files.append(
        (repo.metadata_dir / "timestamp.json", repo.timestamp.to_bytes(SERIALIZER))
    )
    resigned["timestamp"] = repo.timestamp.signed.version
    return resigned


def renew_root_if_due(
    repo: Repository,
    signers: Sequence[KeySigner],
    *,
    at: dt.datetime,
    timestamp_days: dt.timedelta,
) -> dict[str, int]:
    """Re-sign the root as version N+1 (same keys) if it expires before the new timestamp."""
    if repo.root.signed.expires > at + timestamp_days:
        return {}
    expires = at + max(dt.timedelta(days=LONG_LIVED_DAYS), timestamp_days)
    _next_version(repo, repo.root, "root", signers, expires=expires)
    return {"root": repo.root.signed.version}


def write_new_files(repo: Repository) -> None:
    """Write the new files in order (targets, metadata, root.json, timestamp last), atomically."""
    for path, data in repo.new_files:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
        if path.name.endswith(".root.json"):
            atomic_write(path.parent / "root.json", data)
        fsync_directory(path.parent)


def read_back(repo: Repository, *, at: dt.datetime, target: TargetFile | None = None) -> None:
    """Re-read and verify what was written (L15): publish fails loudly rather than serve junk.

    Raises:
        VerificationError: the written repository does not verify at ``at``.
    """
    loaded = load_repository(repo.directory, at=at, allow_expired=False)
    if loaded is None:
        raise InputError(f"repository {repo.directory}: nothing was written")
    if target is not None:
        what = f"repository {repo.directory}: {target.path} (read back)"
        path = target_file(repo.directory, target)
        verified_digest(read_bytes(path, limit=target.length, what=what), target, what=what)
