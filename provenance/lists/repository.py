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
so the versions form a hash chain. The target entry also signs, in its ``custom`` field, the
length and SHA-256 of the list's packed form (:func:`provenance.lists.packed.encode_index`, a
function of the list alone): clients check at fetch that the packed form they compute from the
verified list is that one, then load the list from their cached copy of it, believing it for its
signed hash (docs/security.md L25). Nothing is ever deleted or rewritten: a new version adds a
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuf.api.metadata import TargetFile

from provenance._files import read_bytes
from provenance._hex import Sha256Hex
from provenance.errors import InputError, LocalIOError, ParameterError
from provenance.keys import PrivateKey
from provenance.lists._lock import locked
from provenance.lists._repo import (
    EXPIRES_IN_FIELD,
    LONG_LIVED_DAYS,
    ROLES,
    Repository,
    bump_snapshot_and_timestamp,
    check_threshold,
    list_versions,
    load_repository,
    new_repository,
    read_back,
    renew_root_if_due,
    signers_of,
    target_file,
    write_new_files,
)
from provenance.lists.cache import packed_form_field, target_path, verified_digest
from provenance.lists.model import (
    Category,
    EntryType,
    ExclusionList,
    ListEntry,
    check_list_name,
)
from provenance.lists.packed import encode_index
from provenance.trust import format_time

DEFAULT_TIMESTAMP_DAYS = 7
MAX_EXPIRES_IN_DAYS = 3650


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


def _days(value: int) -> dt.timedelta:
    if not 1 <= value <= MAX_EXPIRES_IN_DAYS:
        raise ParameterError("expires_in", f"must be between 1 and {MAX_EXPIRES_IN_DAYS} days")
    return dt.timedelta(days=value)


def _recorded_days(repo: Repository | None) -> int:
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
    signers = signers_of(keys)
    _check_repo_dir(repo_dir, create=True)
    with locked(repo_dir):
        repo = load_repository(repo_dir, at=at)
        timestamp_days = _days(expires_in if expires_in is not None else _recorded_days(repo))
        if repo is None:
            repo = new_repository(
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
        check_threshold(repo.root.signed, signers, what=f"repository {repo_dir}")

        versions = list_versions(repo.targets.signed, name)
        version = max(versions, default=0) + 1
        if sorted(versions) != list(range(1, version)):
            raise InputError(f"repository {repo_dir}: list {name!r} versions are not 1..N")
        previous_digest: Sha256Hex | None = None
        previous: ExclusionList | None = None
        if version > 1:
            info = versions[version - 1]
            path = target_file(repo_dir, info)
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
        # The digest of its packed form (provenance.lists.packed) is signed with it, so that a
        # client's cached index is believed for that hash instead of being checked against the
        # list on every load (docs/security.md L25).
        digest = hashlib.sha256(data).hexdigest()
        info.unrecognized_fields["custom"] = packed_form_field(
            encode_index(document, digest=digest, length=len(data))
        )
        repo.targets.signed.targets[info.path] = info
        repo.new_files.append((target_file(repo_dir, info), data))
        renew_root_if_due(repo, signers, at=at, timestamp_days=timestamp_days)
        bump_snapshot_and_timestamp(
            repo,
            signers,
            at=at,
            timestamp_days=timestamp_days,
            resign_snapshot=True,
            resign_targets=True,
        )
        write_new_files(repo)
        read_back(repo, at=at, target=info)
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
    signers = signers_of(keys)
    _check_repo_dir(repo_dir, create=False)
    with locked(repo_dir):
        repo = load_repository(repo_dir, at=at)
        if repo is None:
            raise InputError(f"{repo_dir}: not a list repository (no metadata/timestamp.json)")
        timestamp_days = _days(expires_in if expires_in is not None else _recorded_days(repo))
        check_threshold(repo.root.signed, signers, what=f"repository {repo_dir}")
        new_expiry = at + timestamp_days
        resigned = renew_root_if_due(repo, signers, at=at, timestamp_days=timestamp_days)
        resigned.update(
            bump_snapshot_and_timestamp(
                repo,
                signers,
                at=at,
                timestamp_days=timestamp_days,
                resign_snapshot=repo.snapshot.signed.expires <= new_expiry,
                resign_targets=repo.targets.signed.expires <= new_expiry,
            )
        )
        write_new_files(repo)
        read_back(repo, at=at)
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
    "DEFAULT_TIMESTAMP_DAYS",
    "EXPIRES_IN_FIELD",
    "LONG_LIVED_DAYS",
    "MAX_EXPIRES_IN_DAYS",
    "ROLES",
    "PublishResult",
    "PublishRun",
    "RefreshResult",
    "describe",
    "publish",
    "publish_file",
    "refresh",
]
