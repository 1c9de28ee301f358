"""``lists fetch``: a TUF client (python-tuf ngclient) with a fetcher that holds.

Downloads go through :class:`provenance._http.Fetcher` (the only importer of ``requests``): per
download a connect timeout, a read timeout **and** a total deadline (docs/security.md L9), a size
cap on decoded bytes (L8; besides the per-file lengths TUF takes from signed metadata, L7), no
redirect to another origin (H3), nothing taken from the environment (H2, H8); only ``https://``
URLs, except plain ``http://`` to a loopback address (tests, the demo).

Trust: the first fetch of a repository bootstraps from its current root only if that root is
signed by a threshold of the keys the trust store pins for some list (``trust add ... --role
list-publisher --list NAME``). Each list the repository offers is then accepted only if the trust
store has a policy for its name whose threshold of keys signed both that anchor root and the
targets metadata; lists without a policy are skipped, and a list whose policy is not met fails
the fetch. TUF itself refuses rollback, freeze (expired metadata), mix-and-match, fast-forward
(versions that do not verify) and tampered files; on top, every cached list version must still be
offered with the same bytes, and each new version's ``previous`` must be the digest of the
version before it (the hash chain).

The cache is updated as a whole: a new generation is built (hard links to unchanged files plus
the downloads), re-verified, and only then made current by an atomic symlink swap. After any
failure the cache directory is byte-for-byte what it was.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Root
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from provenance import _http
from provenance._files import atomic_write
from provenance._http import FetchOptions
from provenance.errors import (
    DigestMismatchError,
    ExpiredError,
    FetchError,
    InputError,
    LocalIOError,
    RollbackError,
    SignatureError,
    VerificationError,
)
from provenance.lists import _metadata
from provenance.lists._lock import fsync_directory, locked
from provenance.lists.cache import (
    MAX_ROOT_BYTES,
    MAX_SNAPSHOT_BYTES,
    MAX_TARGETS_BYTES,
    MAX_TIMESTAMP_BYTES,
    CachedList,
    CachedRepository,
    check_packed_form,
    checked_list,
    current_generation,
    iter_repositories,
    read_repository,
    repo_key,
    save_index,
    signed_packed_form,
    target_path,
    verified_digest,
)
from provenance.trust import TrustStore, format_time

# --- the fetcher --------------------------------------------------------------------------------


class RequestsFetcher(FetcherInterface):
    """A python-tuf fetcher on :class:`provenance._http.Fetcher` (whose limits hold per download).

    The shared fetcher's exceptions are translated into python-tuf's: an HTTP status becomes
    ``DownloadHTTPError`` (a 404 ends TUF's root walk), a timeout ``SlowRetrievalError``, a size
    cap ``DownloadLengthMismatchError``, anything else ``DownloadError``.
    """

    def __init__(self, options: _http.FetchOptions | None = None) -> None:
        self.http = _http.Fetcher(options or FetchOptions())
        self.options = self.http.options

    def close(self) -> None:
        """Close the HTTP session."""
        self.http.close()

    def _fetch(self, url: str) -> Iterator[bytes]:
        """Start the download of ``url``; return an iterator over its decoded body.

        Raises:
            tuf DownloadHTTPError: an HTTP error status.
            tuf DownloadError: connection failure, timeout, refused redirect, or too large.
        """
        try:
            body = self.http.open(url)
        except FetchError as exc:
            raise _tuf_error(exc) from None
        return _translated(body)


def _translated(body: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from body
    except FetchError as exc:
        raise _tuf_error(exc) from None


def _tuf_error(exc: FetchError) -> tuf_errors.DownloadError:
    if isinstance(exc, _http.HTTPStatusError):
        return tuf_errors.DownloadHTTPError(str(exc), exc.status)
    if isinstance(exc, _http.SlowDownloadError):
        return tuf_errors.SlowRetrievalError(str(exc))
    if isinstance(exc, _http.TooLargeError):
        return tuf_errors.DownloadLengthMismatchError(str(exc))
    return tuf_errors.DownloadError(str(exc))


# --- fetching into the cache --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a fetch brought into the cache."""

    url: str
    lists: tuple[CachedList, ...]
    new_versions: dict[str, tuple[int, ...]]
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """Return the ``lists fetch --json`` document."""
        return {
            "url": self.url,
            "lists": [
                {**item.summary(), "new": list(self.new_versions.get(item.list.name, ()))}
                for item in self.lists
            ],
            "skipped": list(self.skipped),
        }

    def describe(self, item: CachedList) -> str:
        """One line for people about a list of the repository: what was fetched of it."""
        new = self.new_versions.get(item.list.name, ())
        fetched = (
            f"fetched v{new[0]}-v{new[-1]}"
            if len(new) > 1
            else (f"fetched v{new[0]}" if new else "up to date")
        )
        return (
            f"{item.list.name} v{item.list.version} ({len(item.list.entries)} entries,"
            f" sha256 {item.digest}): {fetched}; fresh until {format_time(item.expires)}"
        )


def check_repository_url(url: str) -> str:
    """Return the normalized base URL of a list repository (no trailing slash).

    Raises:
        InputError: not ``https://`` (or ``http://`` to a loopback address), has credentials, a
            query or a fragment.
    """
    return _http.check_base_url(url, what="a list repository")


def _policy_met(signers: tuple[str, ...], store: TrustStore, name: str, at: dt.datetime) -> bool:
    policy = store.lists.get(name)
    if policy is None or not policy.keyids:
        return False
    valid = store.keys_for("list-publisher", at=at)
    trusted = {k for k in signers if k in policy.keyids and k in valid}
    return len(trusted) >= policy.threshold


def _check_anchor(signers: tuple[str, ...], store: TrustStore, url: str, at: dt.datetime) -> None:
    if not any(_policy_met(signers, store, name, at) for name in store.lists):
        shown = ", ".join(s[:16] for s in signers) or "no bridgeable key"
        raise SignatureError(
            f"root metadata of {url} is not signed by a threshold of the keys the trust store"
            f" pins for any list (signed by {shown}); nothing fetched"
        )


def _translate(exc: Exception, url: str) -> Exception:
    """Map python-tuf's exceptions onto ours (exit 1 for verification, 3 for transport)."""
    message = f"{url}: {exc}"
    if isinstance(exc, tuf_errors.DownloadError):
        return FetchError(f"{exc}" if str(exc) else message)
    if isinstance(exc, tuf_errors.BadVersionNumberError):
        return RollbackError(f"rollback refused: {message}")
    if isinstance(exc, tuf_errors.ExpiredMetadataError):
        return ExpiredError(f"freeze refused: {message}")
    if isinstance(exc, tuf_errors.LengthOrHashMismatchError):
        return DigestMismatchError(f"{message} (tampered or mix-and-match)")
    if isinstance(exc, tuf_errors.UnsignedMetadataError):
        return SignatureError(message)
    if isinstance(exc, tuf_errors.RepositoryError):
        return VerificationError(f"{message}; not trusted")
    if isinstance(exc, OSError):
        return LocalIOError(f"cache: {exc.strerror or exc}")
    return exc


class _Staging:
    """A private copy of the cache generation that a fetch may change freely."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self.old = current_generation(cache_dir)
        self.path = cache_dir / f".staging-{secrets.token_hex(16)}"
        if self.old is not None:
            # Hard links: unchanged files cost nothing, and since every write (ours and
            # python-tuf's) replaces a file rather than editing it, the old generation stays
            # byte-for-byte as it was.
            shutil.copytree(self.old, self.path, symlinks=True, copy_function=os.link)
        else:
            self.path.mkdir()

    def commit(self) -> None:
        name = f"g-{secrets.token_hex(16)}"
        os.rename(self.path, self.cache_dir / name)
        link = self.cache_dir / f".current-{secrets.token_hex(8)}"
        os.symlink(name, link)
        os.replace(link, self.cache_dir / "current")
        fsync_directory(self.cache_dir)
        if self.old is not None:
            shutil.rmtree(self.old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _clean_leftovers(cache_dir: Path) -> None:
    """Remove staging directories and generations left behind by a crashed fetch."""
    current = current_generation(cache_dir)
    for item in cache_dir.iterdir():
        stale_generation = item.name.startswith("g-") and item != current
        if item.name.startswith((".staging-", ".current-")) or stale_generation:
            if item.is_symlink() or item.is_file():
                item.unlink()
            else:
                shutil.rmtree(item, ignore_errors=True)


def fetch(
    url: str,
    *,
    store: TrustStore,
    cache_dir: Path,
    at: dt.datetime,
    options: FetchOptions | None = None,
    fetcher: FetcherInterface | None = None,
) -> FetchResult:
    """Fetch every new version of every trusted list from the repository at ``url``.

    Args:
        url: the repository base URL (``<url>/metadata/``, ``<url>/targets/``).
        store: the trust store pinning the list keys.
        cache_dir: the cache directory (created if missing).
        at: "now", for expiry.
        options: download limits.
        fetcher: a python-tuf fetcher to use instead of :class:`RequestsFetcher` (tests).

    Returns:
        The newest version of each list fetched from this repository, and what was new.

    Raises:
        InputError: a bad URL, or a list name already cached from another repository.
        SignatureError: the root is not signed by trusted keys, a list's policy is not met,
            metadata does not verify.
        RollbackError, ExpiredError, DigestMismatchError: TUF's refusals, a list version that is
            no longer offered or has changed, a broken hash chain.
        FetchError: network failure, timeout, size limit, HTTP error, refused redirect.
        LocalIOError: the cache cannot be written.
    """
    base = check_repository_url(url)
    if not store.lists:
        raise InputError(
            "the trust store names no list keys; trust a list-publisher key for a list first"
        )
    created = not cache_dir.exists()
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalIOError(f"{cache_dir}: cannot create the cache: {exc.strerror}") from None
    own_fetcher = fetcher is None
    active = fetcher or RequestsFetcher(options)
    try:
        with locked(cache_dir):
            _clean_leftovers(cache_dir)
            staging = _Staging(cache_dir)
            try:
                result = _fetch_into(staging.path, base, store=store, at=at, fetcher=active)
                staging.commit()
                return result
            except BaseException:
                staging.discard()
                raise
    except Exception as exc:
        if created:
            with contextlib.suppress(OSError):
                cache_dir.rmdir()
        raise _translate(exc, base) from None
    finally:
        if own_fetcher and isinstance(active, RequestsFetcher):
            active.close()


def is_repository_url(value: str) -> bool:
    """Whether ``value`` names a list repository by URL (rather than a cache directory)."""
    return value.startswith(("http://", "https://"))


@contextlib.contextmanager
def temporary_cache(url: str, *, store: TrustStore, at: dt.datetime) -> Iterator[Path]:
    """Fetch the repository at ``url`` into a temporary cache, verified against ``store`` as
    :func:`fetch` does, and yield the cache (removed when the block ends).

    Raises:
        As :func:`fetch`.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="provenance-lists-") as temp:
        fetch(url, store=store, cache_dir=Path(temp), at=at)
        yield Path(temp)


def _same_repository(generation: Path, mirror_root: Root, *, at: dt.datetime) -> Path | None:
    """Return the cached repository whose trusted root has the root keys and threshold that
    ``mirror_root`` (unverified) names: the same repository served from another URL.

    Only chooses where to continue: the update that follows is verified against that cached
    root by TUF, so a mirror that merely copies the key list cannot get anything accepted.
    """
    wanted = (frozenset(mirror_root.roles["root"].keyids), mirror_root.roles["root"].threshold)
    for repo in iter_repositories(generation, at=at, allow_expired=True):
        root = repo.state.root.signed
        if (frozenset(root.roles["root"].keyids), root.roles["root"].threshold) == wanted:
            return repo.directory
    return None


def _fetch_into(
    generation: Path, base: str, *, store: TrustStore, at: dt.datetime, fetcher: FetcherInterface
) -> FetchResult:
    repo_dir = generation / "repos" / repo_key(base)
    old: CachedRepository | None = None
    bootstrap: bytes | None = None
    unverified_root: Any = None
    if not repo_dir.exists():
        bootstrap = fetcher.download_bytes(f"{base}/metadata/root.json", MAX_ROOT_BYTES)
        unverified_root = _metadata.parse(bootstrap, Root, what=f"{base}/metadata/root.json")
        mirrored = _same_repository(generation, unverified_root.signed, at=at)
        if mirrored is not None:
            # A mirror of a repository already cached: continue from its trusted metadata
            # (TUF then refuses rollback and foreign signatures as for the first URL).
            repo_dir, bootstrap = mirrored, None
            # Replaced, never edited: the file is a hard link shared with the current generation.
            atomic_write(repo_dir / "url", base.encode("utf-8"))
    metadata_dir = repo_dir / "metadata"
    if bootstrap is None:
        # The cache is not trusted (docs/security.md L20): re-verify it, and its anchor against
        # the trust store.
        try:
            old = read_repository(repo_dir, at=at, allow_expired=True)
        except VerificationError as exc:
            raise type(exc)(
                f"{exc} (the cached copy of {base} does not verify: was the cache tampered"
                " with? Remove the cache directory to start over)"
            ) from None
        _check_anchor(old.state.anchor_signers, store, base, at)
    else:
        anchor = _metadata.role_signers(
            unverified_root.signed, "root", unverified_root, what=f"{base} root"
        )
        _check_anchor(anchor, store, base, at)
        metadata_dir.mkdir(parents=True)
        (repo_dir / "url").write_text(base, encoding="utf-8")

    config = UpdaterConfig(
        root_max_length=MAX_ROOT_BYTES,
        timestamp_max_length=MAX_TIMESTAMP_BYTES,
        snapshot_max_length=MAX_SNAPSHOT_BYTES,
        targets_max_length=MAX_TARGETS_BYTES,
    )
    updater = Updater(
        str(metadata_dir),
        f"{base}/metadata/",
        target_base_url=f"{base}/targets/",
        fetcher=fetcher,
        config=config,
        bootstrap=bootstrap,
    )
    # python-tuf reads the clock itself; expiry must be judged at the time this command fixed
    # (docs/security.md K8; tests move it with --now). The attribute is the one its own tests set.
    updater._trusted_set.reference_time = at  # noqa: SLF001
    updater.refresh()

    fresh = read_repository(repo_dir, at=at)  # the metadata just accepted, no list files new yet
    signers = fresh.state.signers["targets"]
    offered = fresh.offered()
    cached_files = old.files if old is not None else {}
    new_versions: dict[str, tuple[int, ...]] = {}
    skipped: list[str] = []
    accepted: list[str] = []
    newest: dict[str, CachedList] = {}
    for name in sorted(set(offered) | set(cached_files)):
        versions = offered.get(name, {})
        # Cached versions must still be offered, byte-for-byte (no silent rewrite of history).
        for version in sorted(cached_files.get(name, {})):
            info = versions.get(version)
            if info is None:
                raise RollbackError(
                    f"{base}: list {name!r} v{version}, fetched before, is no longer offered;"
                    " kept the cached lists"
                )
            verified_digest(
                cached_files[name][version].read_bytes(),
                info,
                what=f"{base}: list {name!r} v{version} (offered bytes differ from the cached)",
            )
        if not versions:
            continue
        if not _policy_met(signers, store, name, at) or not _policy_met(
            fresh.state.anchor_signers, store, name, at
        ):
            if name in store.lists:
                policy = store.lists[name]
                raise SignatureError(
                    f"{base}: list {name!r} is not signed by {policy.threshold} of the"
                    f" {len(policy.keyids)} key(s) the trust store pins for it; kept the cached"
                    " lists"
                )
            skipped.append(name)
            continue
        if sorted(versions) != list(range(1, max(versions) + 1)):
            raise DigestMismatchError(
                f"{base}: list {name!r} versions {sorted(versions)} are not 1..N"
            )
        have = max(cached_files.get(name, {}), default=0)
        added = tuple(v for v in sorted(versions) if v > have)
        for version in added:
            newest[name] = _download_version(updater, fresh, name, version, versions, repo_dir)
        new_versions[name] = added
        accepted.append(name)
    if not accepted:
        raise SignatureError(
            f"{base}: the repository offers no list the trust store trusts"
            f" (offered: {', '.join(sorted(offered)) or 'none'})"
        )

    final = read_repository(repo_dir, at=at)
    _check_unique_names(generation, final, at=at)
    # Lists downloaded now were parsed and checked on the way in; only unchanged ones are loaded.
    lists = tuple(
        newest[name] if name in newest else final.load(name, max(final.files[name]))
        for name in accepted
    )
    notes = tuple(f"skipped list {n!r}: the trust store has no key policy for it" for n in skipped)
    return FetchResult(base, lists, new_versions, tuple(skipped), notes)


def _download_version(
    updater: Updater,
    repo: CachedRepository,
    name: str,
    version: int,
    versions: dict[int, Any],
    repo_dir: Path,
) -> CachedList:
    info = updater.get_targetinfo(target_path(name, version))
    if info is None or info != versions[version]:
        raise DigestMismatchError(f"{repo.url}: list {name!r} v{version} vanished from targets")
    destination = repo_dir / "lists" / name / f"v{version}.json"
    destination.parent.mkdir(parents=True, exist_ok=True)
    what = f"{repo.url}: list {name!r} v{version}"
    try:
        updater.download_target(info, filepath=str(destination))
    except tuf_errors.LengthOrHashMismatchError as exc:
        raise DigestMismatchError(
            f"{what}: the served file is not the one the signed metadata names (tampered): {exc}"
        ) from None
    data = destination.read_bytes()
    cached = checked_list(data, info, name=name, version=version, what=what, repo=repo)
    parsed = cached.list
    if version > 1:
        expected = versions[version - 1].hashes["sha256"]
        if parsed.previous != expected:
            raise DigestMismatchError(
                f"{what}: 'previous' is {parsed.previous}, but v{version - 1} has sha256"
                f" {expected} (the hash chain is broken); kept the cached lists"
            )
    packed = save_index(destination, cached, length=len(data))
    packed_info = signed_packed_form(info, what=what)
    if packed_info is not None:
        # Checked once, here: loading then believes the index for its signed hash alone.
        check_packed_form(packed, packed_info, what=what)
    return cached


def _check_unique_names(generation: Path, fetched: CachedRepository, *, at: dt.datetime) -> None:
    for other in iter_repositories(generation, at=at, allow_expired=True):
        if other.directory == fetched.directory:
            continue
        clash = sorted(set(other.files) & set(fetched.files))
        if clash:
            raise InputError(
                f"{fetched.url}: list {clash[0]!r} is already cached from {other.url}; use"
                " another cache directory for this repository"
            )


__all__ = [
    "FetchOptions",
    "FetchResult",
    "RequestsFetcher",
    "check_repository_url",
    "fetch",
    "is_repository_url",
    "temporary_cache",
]
