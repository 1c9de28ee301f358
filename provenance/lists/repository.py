"""``lists publish`` and ``lists refresh``: a TUF repository of exclusion lists in a directory.

Built on python-tuf's Metadata API. Layout of the repository directory (serve it as is from any
static web host; clients use ``<URL>/metadata/`` and ``<URL>/targets/``)::

    metadata/1.root.json ... N.root.json   every root version (clients walk the chain)
    metadata/root.json                     a copy of the newest root
    metadata/<V>.snapshot.json             consistent snapshots: versioned snapshot and targets
    metadata/<V>.targets.json
    metadata/timestamp.json                short-lived (default 7 days), written last
    targets/lists/<name>/<sha256>.v<N>.json  every version of every list, content-addressed

Each list version is the TUF target ``lists/<name>/v<N>.json``; its file is the canonical JSON of
the list (:mod:`provenance.lists.model`), whose ``previous`` is the SHA-256 of version N-1's file,
so the versions form a hash chain. Nothing is ever deleted or rewritten: a new version adds a
target file, then new targets and snapshot metadata, then the timestamp (docs/security.md L15:
a client never sees a timestamp before the files it names). Every file is written atomically.

One key may hold every role, or several keys with a threshold (``--key`` repeated,
``--threshold``): every given key signs every role it holds, and a threshold of distinct keys
must sign or nothing is written.

The timestamp's lifetime in days is recorded in the signed timestamp itself (the field
``x-provenance-expires-in-days``, which TUF clients ignore as the specification allows), so that a
later ``publish`` or ``refresh`` that is not told otherwise keeps the lifetime chosen before.
Publishing exactly the entries (and publisher) of the newest version writes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
from provenance.errors import InputError, LocalIOError, ParameterError
from provenance.keys import PrivateKey
from provenance.lists import _metadata
from provenance.lists._lock import fsync_directory, locked
from provenance.lists._tufkeys import KeySigner
from provenance.lists.cache import (
    MAX_ROOT_BYTES,
    MAX_ROOT_VERSIONS,
    MAX_SNAPSHOT_BYTES,
    MAX_TARGETS_BYTES,
    MAX_TIMESTAMP_BYTES,
    parse_target_path,
    target_path,
    verified_digest,
)
from provenance.lists.model import (
    Category,
    EntryType,
    ExclusionList,
    ListEntry,
    check_list_name,
)
from provenance.trust import format_time

DEFAULT_TIMESTAMP_DAYS = 7
EXPIRES_IN_FIELD = "x-provenance-expires-in-days"
"""Where the timestamp records its own lifetime (an unrecognized field to TUF clients)."""
LONG_LIVED_DAYS = 365
"""Root, targets and snapshot expire after a year; ``refresh`` renews them when due."""
MAX_EXPIRES_IN_DAYS = 3650
ROLES = _metadata.TOP_LEVEL_ROLES

_ROOT_FILE_RE = re.compile(r"\A([1-9][0-9]{0,15})\.root\.json\Z")
_SERIALIZER = JSONSerializer(compact=False)


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What ``publish`` wrote."""

    name: str
    version: int
    digest: str
    entries: int
    target: str
    timestamp_expires: dt.datetime
    signers: tuple[str, ...]
    unchanged: bool = False
    """The entries were those of the newest version: nothing was written, ``version`` is it."""

    def to_dict(self) -> dict[str, Any]:
        """Return the ``lists publish --json`` document."""
        return {
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "entries": self.entries,
            "target": self.target,
            "timestampExpires": format_time(self.timestamp_expires),
            "signers": list(self.signers),
            "unchanged": self.unchanged,
        }


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What ``refresh`` re-signed (role name -> new version) and the new timestamp expiry."""

    resigned: dict[str, int]
    timestamp_expires: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        """Return the ``lists refresh --json`` document."""
        return {"resigned": self.resigned, "timestampExpires": format_time(self.timestamp_expires)}

    def describe(self) -> str:
        """Return the one-line human summary of a refresh."""
        roles = ", ".join(f"{role} v{version}" for role, version in self.resigned.items())
        return f"re-signed {roles}; timestamp expires {format_time(self.timestamp_expires)}"


@dataclass
class _Repository:
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


def _days(value: int) -> dt.timedelta:
    if not 1 <= value <= MAX_EXPIRES_IN_DAYS:
        raise ParameterError("expires_in", f"must be between 1 and {MAX_EXPIRES_IN_DAYS} days")
    return dt.timedelta(days=value)


def _recorded_days(repo: _Repository | None) -> int:
    """The timestamp lifetime the repository recorded, else the default."""
    if repo is None:
        return DEFAULT_TIMESTAMP_DAYS
    value = repo.timestamp.signed.unrecognized_fields.get(EXPIRES_IN_FIELD)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_EXPIRES_IN_DAYS:
        return value
    return DEFAULT_TIMESTAMP_DAYS


def _check_repo_dir(repo_dir: Path, *, create: bool) -> None:
    """Refuse a repository path that is not a directory (and create it when asked).

    Raises:
        InputError: it exists and is not a directory, or (``create`` false) does not exist.
        LocalIOError: it cannot be created.
    """
    if repo_dir.exists() and not repo_dir.is_dir():
        raise InputError(f"{repo_dir}: not a directory (a list repository is a directory)")
    if not create:
        if not repo_dir.is_dir():
            raise InputError(f"{repo_dir}: no such repository directory")
        return
    try:
        repo_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"{repo_dir}: a parent of it is not a directory") from None
    except NotADirectoryError:
        raise InputError(f"{repo_dir}: a parent of it is not a directory") from None
    except OSError as exc:
        raise LocalIOError(f"{repo_dir}: cannot create the repository: {exc.strerror}") from None


def _signers(keys: Sequence[PrivateKey]) -> list[KeySigner]:
    if not keys:
        raise InputError("signing keys: at least one is needed")
    unique: dict[str, KeySigner] = {}
    for key in keys:
        unique.setdefault(key.keyid, KeySigner(key))
    return list(unique.values())


def _sign(
    metadata: Metadata[Any], role: str, root: Root, signers: Sequence[KeySigner], *, what: str
) -> None:
    """Sign ``metadata`` with every given key that holds ``role``; a threshold must sign."""
    metadata.signatures.clear()
    allowed = set(root.roles[role].keyids)
    for signer in signers:
        if signer.public_key.keyid in allowed:
            metadata.sign(signer, append=True)
    _metadata.role_signers(root, role, metadata, what=what)


def _check_threshold(root: Root, signers: Sequence[KeySigner], *, what: str) -> None:
    """Refuse early (before writing anything) when the keys cannot meet every threshold."""
    for role in ROLES:
        holders = [s for s in signers if s.public_key.keyid in root.roles[role].keyids]
        threshold = root.roles[role].threshold
        if len(holders) < threshold:
            raise InputError(
                f"{what}: the {role} role needs {threshold} of its keys; {len(holders)} of the"
                f" given key(s) belong to it (keyids {', '.join(s.keyid for s in signers)})"
            )


def _new_repository(
    directory: Path,
    signers: Sequence[KeySigner],
    *,
    threshold: int,
    at: dt.datetime,
    timestamp_days: dt.timedelta,
) -> _Repository:
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
    _sign(root_md, "root", root, signers, what="new root")
    # Versions start at 0 here: the first publish bumps every role to version 1.
    targets = Metadata(Targets(version=1, expires=long_lived))
    snapshot = Metadata(Snapshot(version=1, expires=long_lived))
    timestamp = Metadata(Timestamp(version=1, expires=at + timestamp_days))
    for unsigned in (targets, snapshot, timestamp):
        unsigned.signed.version = 0
    repo = _Repository(directory, root_md, timestamp, snapshot, targets)
    repo.new_files.append((repo.metadata_dir / "1.root.json", root_md.to_bytes(_SERIALIZER)))
    return repo


def _load_repository(
    directory: Path, *, at: dt.datetime, allow_expired: bool = True
) -> _Repository | None:
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
    return _Repository(directory, state.root, state.timestamp, state.snapshot, state.targets)


def _target_file(directory: Path, info: TargetFile) -> Path:
    parent, _, base = info.path.rpartition("/")
    return directory / "targets" / parent / f"{info.hashes['sha256']}.{base}"


def _versions(targets: Targets, name: str) -> dict[int, TargetFile]:
    result: dict[int, TargetFile] = {}
    for path, info in targets.targets.items():
        parsed = parse_target_path(path)
        if parsed is not None and parsed[0] == name:
            result[parsed[1]] = info
    return result


def _bump_snapshot_and_timestamp(
    repo: _Repository,
    signers: Sequence[KeySigner],
    *,
    at: dt.datetime,
    timestamp_days: dt.timedelta,
    resign_snapshot: bool,
    resign_targets: bool,
) -> dict[str, int]:
    """Re-sign targets (if asked), snapshot (if asked or targets changed) and the timestamp."""
    root = repo.root.signed
    long_lived = at + dt.timedelta(days=LONG_LIVED_DAYS)
    resigned: dict[str, int] = {}
    meta = repo.metadata_dir
    if resign_targets:
        repo.targets.signed.version += 1
        repo.targets.signed.expires = long_lived
        _sign(repo.targets, "targets", root, signers, what="targets")
        data = repo.targets.to_bytes(_SERIALIZER)
        repo.new_files.append((meta / f"{repo.targets.signed.version}.targets.json", data))
        repo.snapshot.signed.meta["targets.json"] = MetaFile.from_data(
            repo.targets.signed.version, data, ["sha256"]
        )
        resigned["targets"] = repo.targets.signed.version
        resign_snapshot = True
    if resign_snapshot:
        repo.snapshot.signed.version += 1
        repo.snapshot.signed.expires = long_lived
        _sign(repo.snapshot, "snapshot", root, signers, what="snapshot")
        data = repo.snapshot.to_bytes(_SERIALIZER)
        repo.new_files.append((meta / f"{repo.snapshot.signed.version}.snapshot.json", data))
        repo.timestamp.signed.snapshot_meta = MetaFile.from_data(
            repo.snapshot.signed.version, data, ["sha256"]
        )
        resigned["snapshot"] = repo.snapshot.signed.version
    repo.timestamp.signed.version += 1
    repo.timestamp.signed.expires = at + timestamp_days
    repo.timestamp.signed.unrecognized_fields[EXPIRES_IN_FIELD] = timestamp_days.days
    _sign(repo.timestamp, "timestamp", root, signers, what="timestamp")
    repo.new_files.append((meta / "timestamp.json", repo.timestamp.to_bytes(_SERIALIZER)))
    resigned["timestamp"] = repo.timestamp.signed.version
    return resigned


def _renew_root_if_due(
    repo: _Repository,
    signers: Sequence[KeySigner],
    *,
    at: dt.datetime,
    timestamp_days: dt.timedelta,
) -> dict[str, int]:
    """Re-sign the root as version N+1 (same keys) if it expires before the new timestamp."""
    root = repo.root.signed
    if root.expires > at + timestamp_days:
        return {}
    root.version += 1
    root.expires = at + max(dt.timedelta(days=LONG_LIVED_DAYS), timestamp_days)
    _sign(repo.root, "root", root, signers, what="root")
    data = repo.root.to_bytes(_SERIALIZER)
    repo.new_files.append((repo.metadata_dir / f"{root.version}.root.json", data))
    return {"root": root.version}


def _write(repo: _Repository) -> None:
    """Write the new files in order (targets, metadata, root.json, timestamp last), atomically."""
    for path, data in repo.new_files:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
        if path.name.endswith(".root.json"):
            atomic_write(path.parent / "root.json", data)
        fsync_directory(path.parent)


def _read_back(repo: _Repository, *, at: dt.datetime, target: TargetFile | None = None) -> None:
    """Re-read and verify what was written (L15): publish fails loudly rather than serve junk.

    Raises:
        VerificationError: the written repository does not verify at ``at``.
    """
    loaded = _load_repository(repo.directory, at=at, allow_expired=False)
    if loaded is None:
        raise InputError(f"repository {repo.directory}: nothing was written")
    if target is not None:
        what = f"repository {repo.directory}: {target.path} (read back)"
        path = _target_file(repo.directory, target)
        verified_digest(read_bytes(path, limit=target.length, what=what), target, what=what)


def publish(
    repo_dir: Path,
    entries: Sequence[ListEntry],
    *,
    name: str,
    keys: Sequence[PrivateKey],
    at: dt.datetime,
    publisher: str | None = None,
    threshold: int | None = None,
    expires_in: int | None = None,
) -> PublishResult:
    """Publish the next version of list ``name`` into the repository in ``repo_dir``.

    Creates the repository (root signed by ``keys``, each role with ``threshold``, default 1) if
    ``repo_dir`` holds none yet. If ``entries`` (and the publisher) are exactly those of the
    newest version, nothing is written and the result says ``unchanged``.

    Args:
        repo_dir: the repository directory (created if missing).
        entries: the entries, already normalized (see :mod:`provenance.lists.entries`).
        name: the list name.
        keys: signing keys; a threshold of each role's keys must be among them.
        at: "now": the ``issued`` time and the base of every expiry.
        publisher: who publishes; defaults to the previous version's publisher.
        threshold: signatures needed per role, for a new repository only.
        expires_in: days until the timestamp expires; default: as the repository recorded
            when it was last published or refreshed, else 7.

    Returns:
        The version written (or the newest one, when unchanged) and its digest.

    Raises:
        InputError: bad name, keys that cannot sign, a threshold out of range, or a repository
            path that is not a directory or not a list repository.
        SignatureError, DigestMismatchError, RollbackError: the existing repository does not
            verify (it would be unsafe to extend).
        LocalIOError: files cannot be written.
    """
    check_list_name(name, what="list name")
    if expires_in is not None:
        _days(expires_in)
    signers = _signers(keys)
    _check_repo_dir(repo_dir, create=True)
    with locked(repo_dir):
        repo = _load_repository(repo_dir, at=at)
        timestamp_days = _days(expires_in if expires_in is not None else _recorded_days(repo))
        if repo is None:
            repo = _new_repository(
                repo_dir,
                signers,
                threshold=threshold if threshold is not None else 1,
                at=at,
                timestamp_days=timestamp_days,
            )
        elif threshold is not None and threshold != repo.root.signed.roles["root"].threshold:
            raise ParameterError(
                "threshold",
                "the repository already exists with threshold"
                f" {repo.root.signed.roles['root'].threshold}; changing keys is not supported",
                value=threshold,
            )
        _check_threshold(repo.root.signed, signers, what=f"repository {repo_dir}")

        versions = _versions(repo.targets.signed, name)
        version = max(versions, default=0) + 1
        if sorted(versions) != list(range(1, version)):
            raise InputError(f"repository {repo_dir}: list {name!r} versions are not 1..N")
        previous_digest: str | None = None
        previous: ExclusionList | None = None
        if version > 1:
            info = versions[version - 1]
            path = _target_file(repo_dir, info)
            what = f"repository {repo_dir}: {info.path}"
            data = read_bytes(path, limit=info.length, what=what)
            previous_digest = verified_digest(data, info, what=what)
            previous = ExclusionList.from_bytes(data, what=what)
        chosen = publisher or (previous.publisher if previous else f"key {signers[0].keyid}")
        if (
            previous is not None
            and previous_digest is not None
            and previous.entries == tuple(entries)
            and previous.publisher == chosen
        ):
            # A new version would announce a change that did not happen; keeping an unchanged
            # list fresh is what refresh is for.
            return PublishResult(
                name=name,
                version=previous.version,
                digest=previous_digest,
                entries=len(previous.entries),
                target=target_path(name, previous.version),
                timestamp_expires=repo.timestamp.signed.expires,
                signers=tuple(sorted(s.keyid for s in signers)),
                unchanged=True,
            )
        document = ExclusionList(
            name=name,
            version=version,
            issued=at,
            publisher=chosen,
            previous=previous_digest,
            entries=tuple(entries),
        )
        data = document.to_bytes()
        info = TargetFile.from_data(target_path(name, version), data, ["sha256"])
        repo.targets.signed.targets[info.path] = info
        repo.new_files.append((_target_file(repo_dir, info), data))
        _renew_root_if_due(repo, signers, at=at, timestamp_days=timestamp_days)
        _bump_snapshot_and_timestamp(
            repo,
            signers,
            at=at,
            timestamp_days=timestamp_days,
            resign_snapshot=True,
            resign_targets=True,
        )
        _write(repo)
        _read_back(repo, at=at, target=info)
    return PublishResult(
        name=name,
        version=version,
        digest=hashlib.sha256(data).hexdigest(),
        entries=len(document.entries),
        target=info.path,
        timestamp_expires=repo.timestamp.signed.expires,
        signers=tuple(sorted(s.keyid for s in signers)),
    )


def refresh(
    repo_dir: Path,
    *,
    keys: Sequence[PrivateKey],
    at: dt.datetime,
    expires_in: int | None = None,
) -> RefreshResult:
    """Re-sign the timestamp (and whatever else expires before it) without changing any list.

    The timestamp gets a new version expiring ``expires_in`` days after ``at`` (default: the
    lifetime the repository recorded, else 7); snapshot, targets and root are re-signed (new
    version, a year's validity) only if they would expire before the new timestamp does.

    Raises:
        InputError: no repository in ``repo_dir``, or keys that cannot sign.
        SignatureError, DigestMismatchError, RollbackError: the repository does not verify.
        LocalIOError: files cannot be written.
    """
    if expires_in is not None:
        _days(expires_in)
    signers = _signers(keys)
    _check_repo_dir(repo_dir, create=False)
    with locked(repo_dir):
        repo = _load_repository(repo_dir, at=at)
        if repo is None:
            raise InputError(f"{repo_dir}: not a list repository (no metadata/timestamp.json)")
        timestamp_days = _days(expires_in if expires_in is not None else _recorded_days(repo))
        _check_threshold(repo.root.signed, signers, what=f"repository {repo_dir}")
        new_expiry = at + timestamp_days
        resigned = _renew_root_if_due(repo, signers, at=at, timestamp_days=timestamp_days)
        resigned.update(
            _bump_snapshot_and_timestamp(
                repo,
                signers,
                at=at,
                timestamp_days=timestamp_days,
                resign_snapshot=repo.snapshot.signed.expires <= new_expiry,
                resign_targets=repo.targets.signed.expires <= new_expiry,
            )
        )
        _write(repo)
        _read_back(repo, at=at)
    return RefreshResult(resigned=resigned, timestamp_expires=new_expiry)


def describe(result: PublishResult) -> str:
    """Return the one-line human summary of a publish."""
    if result.unchanged:
        return (
            f"unchanged: {result.name} v{result.version} already holds these {result.entries}"
            f" entries (sha256 {result.digest}); nothing published (the timestamp expires"
            f" {format_time(result.timestamp_expires)}; 'lists refresh' renews it)"
        )
    return (
        f"published {result.name} v{result.version} ({result.entries} entries) sha256"
        f" {result.digest}; timestamp expires {format_time(result.timestamp_expires)}"
    )


@dataclass(frozen=True, slots=True)
class PublishRun:
    """A publish from an ENTRIES file: what was published, and the lines skipped as invalid."""

    result: PublishResult
    skipped: tuple[InputError, ...] = ()


def publish_file(
    entries_path: Path,
    repo_dir: Path,
    *,
    name: str,
    keys: Sequence[PrivateKey],
    at: dt.datetime,
    category: Category = "other",
    entry_type: EntryType | None = None,
    skip_invalid: bool = False,
    publisher: str | None = None,
    threshold: int | None = None,
    expires_in: int | None = None,
) -> PublishRun:
    """Publish the next version of list ``name`` from the ENTRIES file at ``entries_path``.

    The file is read as :func:`provenance.lists.entries.read_entries` reads it (``category``
    and ``entry_type`` for entries that do not say; with ``skip_invalid``, lines that cannot be
    parsed are skipped and returned instead of failing), its entries deduplicated, then
    published as :func:`publish` does.

    Raises:
        InputError: an unreadable or invalid ENTRIES file, or see :func:`publish`.
        As :func:`publish`.
    """
    from provenance.lists.entries import prepare_entries, read_entries

    skipped: list[InputError] | None = [] if skip_invalid else None
    entries = prepare_entries(
        read_entries(entries_path, category=category, skipped=skipped, entry_type=entry_type),
        what=str(entries_path),
    )
    result = publish(
        repo_dir,
        entries,
        name=name,
        keys=keys,
        at=at,
        publisher=publisher,
        threshold=threshold,
        expires_in=expires_in,
    )
    return PublishRun(result, tuple(skipped or ()))


__all__ = [
    "PublishResult",
    "PublishRun",
    "RefreshResult",
    "describe",
    "publish",
    "publish_file",
    "refresh",
]
