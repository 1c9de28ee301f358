"""The local cache of fetched exclusion lists, and the API other commands read it through.

Public API (used by ``filter``, ``verify`` and ``card build``)::

    load_cached_lists(cache_dir, *, at, names=None, allow_expired=False) -> list[CachedList]
    load_cached_version(cache_dir, name, version, *, at, allow_expired=False) -> CachedList
    cached_versions(cache_dir, name) -> list[int]
    default_cache_dir() -> Path

The cache is **not trusted** (docs/security.md L20): every load re-verifies the cached TUF metadata
(root chain, timestamp, snapshot, targets signatures and thresholds, mix-and-match, expiry at
``at``) and the SHA-256 and length of the list file against the signed targets metadata, before a
single entry is parsed (for a list published with its packed form, those of its index against
the packed form the targets metadata signs: the list file itself is then not read). What it
cannot know is whether the repository's keys are the ones *you* trust for that list:
``CachedList.signers`` names the keys (our SPKI keyids) that signed the targets metadata, and
:func:`check_trusted` (or the caller) holds them against a trust store.

Layout (``lists fetch`` writes it; nothing else does)::

    CACHE/current -> g-<32 hex>            symlink, swapped atomically after a verified fetch
    CACHE/g-<32 hex>/repos/<sha256(url)[:32]>/
        url                                the repository base URL
        metadata/                          python-tuf ngclient metadata (root_history/, root.json,
                                           timestamp.json, snapshot.json, targets.json)
        lists/<name>/v<N>.json             every fetched version, byte-for-byte as published
        lists/<name>/v<N>.index            its binary index (provenance.lists.packed): used only
                                           when it is the signed packed form (a list published
                                           with one) or re-encodes to the signed list bytes,
                                           else rebuilt

A fetch builds a new generation (hard links to the unchanged files plus what it downloads),
verifies it, and only then repoints ``current``; after any failure the old generation is exactly
as it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuf.api.exceptions import LengthOrHashMismatchError
from tuf.api.metadata import TargetFile

from provenance._files import open_input, read_bytes
from provenance._hex import Sha256Hex
from provenance.errors import (
    DigestMismatchError,
    FormatError,
    NotCachedError,
    ProvenanceError,
    SignatureError,
)
from provenance.lists import _metadata
from provenance.lists.model import ExclusionList, check_list_name, is_valid_list_name
from provenance.lists.packed import (
    chunks_digest,
    encode_index,
    index_path,
    is_index_name,
    load_index,
    load_signed_index,
    write_chunks,
)
from provenance.trust import TrustStore, format_time

MAX_ROOT_BYTES = 512_000
MAX_TIMESTAMP_BYTES = 16_384
MAX_SNAPSHOT_BYTES = 2_000_000
MAX_TARGETS_BYTES = 64_000_000
MAX_LIST_BYTES = 4 * 1024**3
"""Upper bound for one list file (a list of ten million hashes is about 1 GB)."""
MAX_ROOT_VERSIONS = 256

_GENERATION_RE = re.compile(r"\Ag-[0-9a-f]{32}\Z")
_REPO_RE = re.compile(r"\A[0-9a-f]{32}\Z")
_LIST_FILE_RE = re.compile(r"\Av([1-9][0-9]{0,15})\.json\Z")
_SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z")
_ROOT_FILE_RE = re.compile(r"\A([1-9][0-9]{0,15})\.root\.json\Z")


@dataclass(frozen=True, slots=True)
class CachedList:
    """One verified version of a list from the cache.

    Attributes:
        list: the parsed list version.
        digest: SHA-256 hex of the list file bytes (what cards cite).
        signers: our SPKI keyids of the keys whose signatures on the repository's targets
            metadata verified (the keys vouching for this list), sorted.
        expires: when the repository metadata this was verified with stops being fresh.
        url: the base URL of the repository the list was fetched from.
        anchor_signers: our SPKI keyids of the keys that signed the repository's first cached
            root (the anchor a trust store must vouch for, as ``lists fetch`` requires).
    """

    list: ExclusionList
    digest: str
    signers: tuple[str, ...]
    expires: dt.datetime
    url: str
    anchor_signers: tuple[str, ...] = ()

    def summary(self) -> dict[str, Any]:
        """Return what ``lists fetch`` and ``lists show`` print of it (JSON): name, version,
        digest, expiry, number of entries, signers and repository URL."""
        return {
            "name": self.list.name,
            "version": self.list.version,
            "digest": self.digest,
            "expires": format_time(self.expires),
            "entries": len(self.list.entries),
            "signers": list(self.signers),
            "url": self.url,
        }


@dataclass(frozen=True, slots=True)
class CachedListStatus:
    """The newest cached version of a list, the versions cached, and whether it is fresh."""

    newest: CachedList
    versions: tuple[int, ...]
    expired: bool

    def to_dict(self) -> dict[str, Any]:
        """Return the ``lists show --json`` item."""
        return {**self.newest.summary(), "versions": list(self.versions), "expired": self.expired}


def default_cache_dir() -> Path:
    """Return ``$PROVENANCE_HOME/lists``, or ``~/.cache/provenance/lists``."""
    home = os.environ.get("PROVENANCE_HOME")
    if home:
        return Path(home) / "lists"
    return Path.home() / ".cache" / "provenance" / "lists"


def target_path(name: str, version: int) -> str:
    """Return the TUF target path of list ``name`` version ``version``: ``lists/NAME/vN.json``."""
    return f"lists/{name}/v{version}.json"


PACKED_FIELD = "provenance-packed"
"""The key, in a list target entry's ``custom`` field, of its packed form's length and SHA-256."""


def packed_form_field(chunks: list[bytes]) -> dict[str, Any]:
    """Return the ``custom`` field of a list target entry that signs the packed form ``chunks``
    (:func:`provenance.lists.packed.encode_index`) of the list."""
    digest, length = chunks_digest(chunks)
    return {PACKED_FIELD: {"length": length, "sha256": digest}}


def signed_packed_form(info: TargetFile, *, what: str) -> tuple[str, int] | None:
    """Return the SHA-256 hex and length of the packed form the list target entry ``info``
    signs, or None for a list published without one.

    Raises:
        FormatError: the entry names a packed form, but not as a length and a SHA-256.
    """
    custom = info.unrecognized_fields.get("custom")
    if not isinstance(custom, dict) or PACKED_FIELD not in custom:
        return None
    field = custom[PACKED_FIELD]
    length = field.get("length") if isinstance(field, dict) else None
    digest = field.get("sha256") if isinstance(field, dict) else None
    if (
        not isinstance(field, dict)
        or sorted(field) != ["length", "sha256"]
        or type(length) is not int
        or length < 0
        or not isinstance(digest, str)
        or not _SHA256_RE.match(digest)
    ):
        raise FormatError(f"{what}: the signed packed form is not a length and a sha256")
    return digest, length


def parse_target_path(path: str) -> tuple[str, int] | None:
    """Return ``(name, version)`` for a list target path, or None for any other path."""
    parts = path.split("/")
    if len(parts) != 3 or parts[0] != "lists" or not is_valid_list_name(parts[1]):
        return None
    match = _LIST_FILE_RE.match(parts[2])
    return (parts[1], int(match.group(1))) if match else None


def repo_key(url: str) -> str:
    """Return the cache directory name of the repository at ``url``."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]


def current_generation(cache_dir: Path) -> Path | None:
    """Return the directory ``CACHE/current`` points to, or None for an empty cache.

    Raises:
        FormatError: ``current`` exists but does not point to a generation inside the cache.
    """
    link = cache_dir / "current"
    if not os.path.lexists(link):
        return None
    try:
        target = os.readlink(link)
    except OSError:
        raise FormatError(f"{link}: not a symbolic link (the cache is damaged)") from None
    if not _GENERATION_RE.match(target) or not (cache_dir / target).is_dir():
        raise FormatError(f"{link}: points to {target!r}, not a cache generation (damaged)")
    return cache_dir / target


# --- one cached repository ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CachedRepository:
    """A cached repository whose metadata verified, with the list files it holds."""

    directory: Path
    url: str
    state: _metadata.VerifiedRepository
    files: dict[str, dict[int, Path]]
    """List name -> version -> cached file."""

    def targetinfo(self, name: str, version: int) -> TargetFile | None:
        """Return the signed target entry of ``name`` ``version``, if the targets name it."""
        return self.state.targets.signed.targets.get(target_path(name, version))

    def offered(self) -> dict[str, dict[int, TargetFile]]:
        """Return every list version the signed targets metadata names."""
        result: dict[str, dict[int, TargetFile]] = {}
        for path, info in self.state.targets.signed.targets.items():
            parsed = parse_target_path(path)
            if parsed is not None:
                result.setdefault(parsed[0], {})[parsed[1]] = info
        return result

    def load(self, name: str, version: int) -> CachedList:
        """Read, check and parse one cached list version.

        Raises:
            NotCachedError: that version is not cached.
            DigestMismatchError: the file differs from what the signed metadata names, or the
                signed packed form of the list is not the packed form of the signed list.
            FormatError: the (authentic) file is not a valid list of that name and version.
        """
        path = self.files.get(name, {}).get(version)
        if path is None:
            raise NotCachedError(f"list {name!r} version {version} is not in the cache")
        info = self.targetinfo(name, version)
        what = f"cached list {name!r} v{version} ({path})"
        if info is None:
            raise DigestMismatchError(
                f"{what}: not named by the cached targets metadata (cache tampered?); fetch again"
            )
        packed_info = signed_packed_form(info, what=what)
        if packed_info is not None and "sha256" in info.hashes and info.length <= MAX_LIST_BYTES:
            signed = self._load_signed_index(path, info, packed_info, name, version)
            if signed is not None:
                return signed
        elif "sha256" in info.hashes and info.length <= MAX_LIST_BYTES:
            # The binary index, used only if the list file has the signed digest and the index
            # re-encodes to exactly its bytes; otherwise the file is loaded as it is.
            packed = None
            with contextlib.suppress(ProvenanceError), open_input(path, what=what) as unverified:
                packed, _ = load_index(
                    index_path(path),
                    unverified,
                    digest=info.hashes["sha256"],
                    length=info.length,
                    name=name,
                    version=version,
                )
            if packed is not None:
                return self._cached(packed, info)
        data = read_bytes(path, limit=min(info.length, MAX_LIST_BYTES), what=what)
        cached = checked_list(data, info, name=name, version=version, what=what, repo=self)
        rebuilt = save_index(path, cached, length=len(data))
        if packed_info is not None:
            check_packed_form(rebuilt, packed_info, what=what)
        return cached

    def _cached(self, the_list: ExclusionList, info: TargetFile) -> CachedList:
        return CachedList(
            list=the_list,
            digest=info.hashes["sha256"],
            signers=self.state.signers["targets"],
            expires=self.state.expires,
            url=self.url,
            anchor_signers=self.state.anchor_signers,
        )

    def _load_signed_index(
        self, path: Path, info: TargetFile, packed_info: tuple[str, int], name: str, version: int
    ) -> CachedList | None:
        """The list from its index, when the index is exactly the signed packed form; None to
        load the file instead (which names what is wrong with it, and rebuilds the index)."""
        # The list file is not read: every byte of the list used here is a byte of the index,
        # which is believed for its own signed hash (and the signed packed form is the packed
        # form of the signed list file: L25). A list file that differs from the signed one is
        # refused whenever it is read (an index missing, stale or edited).
        packed, _ = load_signed_index(
            index_path(path),
            packed_digest=packed_info[0],
            packed_length=packed_info[1],
            digest=info.hashes["sha256"],
            length=info.length,
            name=name,
            version=version,
        )
        return None if packed is None else self._cached(packed, info)


def save_index(list_path: Path, cached: CachedList, *, length: int) -> tuple[str, int]:
    """(Re)write the binary index of a verified cached list file, or leave it if the cache
    cannot be written (loading then parses the list file, as without an index).

    Returns:
        The SHA-256 hex and length of the index (its packed form), written or not.
    """
    chunks = encode_index(cached.list, digest=cached.digest, length=length)
    with contextlib.suppress(ProvenanceError):
        write_chunks(index_path(list_path), chunks)
    return chunks_digest(chunks)


def check_packed_form(computed: tuple[str, int], signed: tuple[str, int], *, what: str) -> None:
    """Check that the packed form ``computed`` from a verified list (SHA-256 hex and length) is
    the one ``signed`` for it in its target entry (:func:`signed_packed_form`).

    Raises:
        DigestMismatchError: it is not: the publisher signed the packed form of another list.
    """
    if computed != signed:
        raise DigestMismatchError(
            f"{what}: the signed packed form (sha256 {signed[0]}, {signed[1]} bytes) is not the"
            " packed form of the signed list (the repository signs two different lists)"
        )


def checked_list(
    data: bytes,
    info: TargetFile,
    *,
    name: str,
    version: int,
    what: str,
    repo: CachedRepository,
) -> CachedList:
    """Check list file bytes against their signed target entry and parse them.

    Raises:
        DigestMismatchError: length or hashes differ, or the entry carries no SHA-256.
        FormatError: not a valid list, or its name or version is not the one its path says.
    """
    digest = verified_digest(data, info, what=what)
    parsed = ExclusionList.from_bytes(data, what=what)
    if parsed.name != name or parsed.version != version:
        raise FormatError(
            f"{what}: the file holds list {parsed.name!r} v{parsed.version},"
            f" not {name!r} v{version}"
        )
    return CachedList(
        list=parsed,
        digest=digest,
        signers=repo.state.signers["targets"],
        expires=repo.state.expires,
        url=repo.url,
        anchor_signers=repo.state.anchor_signers,
    )


def verified_digest(data: bytes, info: TargetFile, *, what: str) -> Sha256Hex:
    """Return the SHA-256 hex of ``data`` after checking it against ``info``.

    Raises:
        DigestMismatchError: length or hashes differ, or ``info`` names no SHA-256.
    """
    if "sha256" not in info.hashes:
        raise DigestMismatchError(f"{what}: the signed target entry carries no sha256 hash")
    try:
        info.verify_length_and_hashes(data)
    except LengthOrHashMismatchError as exc:
        raise DigestMismatchError(f"{what}: does not match the signed metadata: {exc}") from None
    return Sha256Hex(hashlib.sha256(data).hexdigest())


def read_repository(
    directory: Path, *, at: dt.datetime, allow_expired: bool = False
) -> CachedRepository:
    """Re-verify one cached repository directory.

    Raises:
        SignatureError, RollbackError, DigestMismatchError, ExpiredError: the cached metadata
            does not verify (see :func:`provenance.lists._metadata.verify_top_level`).
        FormatError: the directory is damaged (missing or misnamed files).
    """
    what = f"cache {directory}"
    url = read_bytes(directory / "url", limit=4096, what=f"{what}/url").decode("utf-8", "replace")
    metadata = directory / "metadata"
    roots = _root_history(metadata / "root_history", what=what)
    state = _metadata.verify_top_level(
        roots,
        read_bytes(metadata / "timestamp.json", limit=MAX_TIMESTAMP_BYTES),
        read_bytes(metadata / "snapshot.json", limit=MAX_SNAPSHOT_BYTES),
        read_bytes(metadata / "targets.json", limit=MAX_TARGETS_BYTES),
        at=at,
        allow_expired=allow_expired,
        what=f"{what} ({url})",
    )
    files: dict[str, dict[int, Path]] = {}
    lists_dir = directory / "lists"
    if lists_dir.is_dir():
        for list_dir in sorted(lists_dir.iterdir()):
            if not is_valid_list_name(list_dir.name) or not list_dir.is_dir():
                raise FormatError(f"{what}: unexpected entry {list_dir.name!r} in lists/")
            for item in sorted(list_dir.iterdir()):
                if is_index_name(item.name):
                    continue  # the binary index of a list file, checked when it is used
                match = _LIST_FILE_RE.match(item.name)
                if match is None:
                    raise FormatError(f"{what}: unexpected file {item}")
                files.setdefault(list_dir.name, {})[int(match.group(1))] = item
    return CachedRepository(directory=directory, url=url, state=state, files=files)


def _root_history(directory: Path, *, what: str) -> list[bytes]:
    versions: dict[int, Path] = {}
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        raise SignatureError(f"{what}: no cached root metadata; fetch again") from None
    for name in names:
        match = _ROOT_FILE_RE.match(name)
        if match is None:
            raise FormatError(f"{what}: unexpected file {directory / name}")
        versions[int(match.group(1))] = directory / name
    if not versions:
        raise SignatureError(f"{what}: no cached root metadata; fetch again")
    first, last = min(versions), max(versions)
    if last - first + 1 != len(versions) or len(versions) > MAX_ROOT_VERSIONS:
        raise FormatError(f"{what}: cached root versions {sorted(versions)} are not consecutive")
    return [read_bytes(versions[v], limit=MAX_ROOT_BYTES) for v in range(first, last + 1)]


def iter_repositories(
    generation: Path, *, at: dt.datetime, allow_expired: bool = False
) -> Iterator[CachedRepository]:
    """Yield every repository of a cache generation, each re-verified.

    Raises:
        The errors of :func:`read_repository`.
    """
    repos = generation / "repos"
    if not repos.is_dir():
        return
    for directory in sorted(repos.iterdir()):
        if not _REPO_RE.match(directory.name):
            raise FormatError(f"cache {generation}: unexpected entry {directory.name!r} in repos/")
        yield read_repository(directory, at=at, allow_expired=allow_expired)


def _repositories_by_list(
    cache_dir: Path, *, at: dt.datetime, allow_expired: bool
) -> dict[str, CachedRepository]:
    generation = current_generation(cache_dir)
    if generation is None:
        return {}
    result: dict[str, CachedRepository] = {}
    for repo in iter_repositories(generation, at=at, allow_expired=allow_expired):
        for name in repo.files:
            if name in result:
                raise FormatError(
                    f"cache {cache_dir}: list {name!r} is cached from two repositories"
                    f" ({result[name].url} and {repo.url})"
                )
            result[name] = repo
    return result


# --- public API ---------------------------------------------------------------------------------


def load_cached_lists(
    cache_dir: Path,
    *,
    at: dt.datetime,
    names: Iterable[str] | None = None,
    allow_expired: bool = False,
    store: TrustStore | None = None,
) -> list[CachedList]:
    """Return the newest cached version of each list (or of each of ``names``), sorted by name.

    Everything is re-verified from the cached metadata first (the cache is not trusted).

    Args:
        cache_dir: the cache directory (see :func:`default_cache_dir`).
        at: the time freshness is judged at.
        names: only these lists; each must be cached.
        allow_expired: return lists whose repository metadata has expired at ``at`` (for
            display); by default expired metadata is refused.
        store: if given, every list returned must be vouched for by it (see
            :func:`trusted_signers`); one that is not is an error naming it, never skipped.

    Returns:
        The lists; empty if the cache is empty and ``names`` is None.

    Raises:
        InputError: a name in ``names`` is not a valid list name.
        NotCachedError: a list in ``names`` is not cached.
        ExpiredError: the metadata vouching for a list expired (freeze); fetch again.
        SignatureError, RollbackError, DigestMismatchError: the cache does not verify, or a list
            is not signed by the keys ``store`` pins for it.
        FormatError: the cache is damaged, or a cached list is malformed.
    """
    wanted = None if names is None else [check_list_name(n) for n in names]
    repos = _repositories_by_list(cache_dir, at=at, allow_expired=allow_expired)
    selected = sorted(repos) if wanted is None else sorted(dict.fromkeys(wanted))
    result = []
    for name in selected:
        repo = repos.get(name)
        if repo is None:
            raise NotCachedError(
                f"list {name!r} is not in the cache {cache_dir}; run 'provenance lists fetch'"
            )
        result.append(repo.load(name, max(repo.files[name])))
    if store is not None:
        for cached in result:
            trusted_signers(cached, store, at=at)
    return result


def load_cached_version(
    cache_dir: Path,
    name: str,
    version: int,
    *,
    at: dt.datetime,
    allow_expired: bool = False,
    store: TrustStore | None = None,
) -> CachedList:
    """Return exactly version ``version`` of list ``name`` from the cache, re-verified.

    With ``store``, the version must be vouched for by it (see :func:`trusted_signers`).

    Raises:
        InputError: ``name`` is not a valid list name.
        NotCachedError: the list or that version is not cached.
        Otherwise as :func:`load_cached_lists`.
    """
    check_list_name(name)
    repo = _repositories_by_list(cache_dir, at=at, allow_expired=allow_expired).get(name)
    if repo is None:
        raise NotCachedError(
            f"list {name!r} is not in the cache {cache_dir}; run 'provenance lists fetch'"
        )
    if version not in repo.files[name]:
        have = sorted(repo.files[name])
        raise NotCachedError(
            f"list {name!r} version {version} is not in the cache {cache_dir} (cached versions"
            f" {have[0]}-{have[-1]}); run 'provenance lists fetch {repo.url}'"
        )
    cached = repo.load(name, version)
    if store is not None:
        trusted_signers(cached, store, at=at)
    return cached


def cached_versions(cache_dir: Path, name: str, *, at: dt.datetime) -> list[int]:
    """Return the cached versions of list ``name`` in increasing order (empty if not cached).

    Raises:
        InputError: ``name`` is not a valid list name.
        Otherwise as :func:`load_cached_lists` (expired metadata is allowed here).
    """
    check_list_name(name)
    repo = _repositories_by_list(cache_dir, at=at, allow_expired=True).get(name)
    return sorted(repo.files[name]) if repo is not None else []


def cached_list_status(
    cache_dir: Path, *, at: dt.datetime, store: TrustStore, names: Iterable[str] | None = None
) -> list[CachedListStatus]:
    """Return the newest cached version of each list (or of each of ``names``), with the
    versions cached and whether its metadata has expired (expired lists are shown, not refused).

    Every list must be vouched for by ``store`` as ``lists fetch`` requires.

    Raises:
        As :func:`load_cached_lists` with ``store``.
    """
    return [
        CachedListStatus(
            item,
            tuple(cached_versions(cache_dir, item.list.name, at=at)),
            expired=item.expires <= at,
        )
        for item in load_cached_lists(
            cache_dir, at=at, names=names, allow_expired=True, store=store
        )
    ]


def trusted_signers(cached: CachedList, store: TrustStore, *, at: dt.datetime) -> tuple[str, ...]:
    """Return the signers of ``cached`` that ``store`` trusts for that list at ``at``.

    The check ``lists fetch`` makes before accepting a list (docs/security.md L20: the cache is not
    trusted): a threshold of the keys ``store`` pins for the list must have signed both the
    repository's targets metadata and the root the cache was anchored on.

    Raises:
        SignatureError: the store has no key policy for the list, or fewer than its threshold of
            the list's trusted keys signed the repository's targets metadata or its root.
    """
    name = cached.list.name
    policy = store.lists.get(name)
    if policy is None or not policy.keyids:
        raise SignatureError(
            f"list {name!r}: the trust store names no key for this list"
            " (trust a list-publisher key for it first)"
        )
    valid = store.keys_for("list-publisher", at=at)
    trusted = tuple(k for k in cached.signers if k in policy.keyids and k in valid)
    if len(trusted) < policy.threshold:
        raise SignatureError(
            f"list {name!r} v{cached.list.version} (cached from {cached.url}): signed by"
            f" {len(trusted)} of the {policy.threshold} trusted key(s) required"
        )
    anchored = {k for k in cached.anchor_signers if k in policy.keyids and k in valid}
    if len(anchored) < policy.threshold:
        raise SignatureError(
            f"list {name!r} v{cached.list.version} (cached from {cached.url}): the repository's"
            f" root is signed by {len(anchored)} of the {policy.threshold} key(s) the trust"
            " store pins for this list"
        )
    return trusted


def check_trusted(cached: CachedList, store: TrustStore, *, at: dt.datetime) -> None:
    """Raise unless ``store`` trusts the keys that signed ``cached`` (see :func:`trusted_signers`).

    Raises:
        SignatureError: as :func:`trusted_signers`.
    """
    trusted_signers(cached, store, at=at)


__all__ = [
    "CachedList",
    "cached_versions",
    "check_trusted",
    "default_cache_dir",
    "load_cached_lists",
    "load_cached_version",
    "trusted_signers",
]
