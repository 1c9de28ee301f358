"""``lists fetch``: a TUF client (python-tuf ngclient) with a ``requests`` fetcher that holds.

The only module that imports ``requests``. Per download the fetcher enforces:

- a connect timeout, a read timeout between bytes, **and** a total deadline (defaults 10 s, 30 s,
  60 s): a server dripping one byte per read timeout cannot hold the client (THREATS L9); the
  socket timeout is lowered to whatever is left of the deadline before each read;
- a size cap counted on **decoded** bytes (a gzip bomb is cut off at the cap, L8), besides the
  per-file lengths TUF takes from signed metadata (L7); ``Accept-Encoding: identity`` is sent;
- no redirect to another origin (scheme, host and port must stay the same; at most 3 hops, H3);
- ``trust_env = False``: proxies, ``.netrc`` credentials and ``REQUESTS_CA_BUNDLE`` from the
  environment are ignored (H2, H8); a proxy is only used when given explicitly; TLS is verified;
- only ``https://`` URLs, except plain ``http://`` to a loopback address (tests, the demo).

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
import ipaddress
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Root
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from provenance import __version__
from provenance._files import atomic_write
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
    MAX_LIST_BYTES,
    MAX_ROOT_BYTES,
    MAX_SNAPSHOT_BYTES,
    MAX_TARGETS_BYTES,
    MAX_TIMESTAMP_BYTES,
    CachedList,
    CachedRepository,
    checked_list,
    current_generation,
    iter_repositories,
    read_repository,
    repo_key,
    target_path,
    verified_digest,
)
from provenance.trust import TrustStore

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_TOTAL_TIMEOUT = 60.0
MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """Limits applied to every download (see the module docstring)."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    max_bytes: int = MAX_LIST_BYTES
    proxy: str | None = None

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if not getattr(self, name) > 0:
                raise InputError(
                    f"--{name.replace('_', '-')}: must be a positive number of seconds"
                )
        if self.max_bytes < 1:
            raise InputError("--max-bytes: must be positive")


# --- the fetcher --------------------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


class RequestsFetcher(FetcherInterface):
    """A python-tuf fetcher on ``requests`` that enforces :class:`FetchOptions` per download."""

    def __init__(self, options: FetchOptions | None = None) -> None:
        self.options = options or FetchOptions()
        self._session = requests.Session()
        # Decided explicitly: nothing from the environment (proxies, .netrc, CA bundle overrides).
        self._session.trust_env = False
        self._session.headers.update(
            {"User-Agent": f"provenance/{__version__}", "Accept-Encoding": "identity"}
        )
        if self.options.proxy:
            self._session.proxies = {"http": self.options.proxy, "https": self.options.proxy}

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()

    def _fetch(self, url: str) -> Iterator[bytes]:
        """Start the download of ``url``; return an iterator over its decoded body.

        Raises:
            tuf DownloadHTTPError: an HTTP error status (404 ends TUF's root walk).
            tuf DownloadError: connection failure, timeout, refused redirect, or too large.
        """
        options = self.options
        deadline = time.monotonic() + options.total_timeout
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise tuf_errors.SlowRetrievalError(
                    f"download of {url} exceeded {options.total_timeout:g} s in total"
                )
            try:
                response = self._session.get(
                    current,
                    stream=True,
                    allow_redirects=False,
                    verify=True,
                    timeout=(
                        min(options.connect_timeout, remaining),
                        min(options.read_timeout, remaining),
                    ),
                )
            except requests.exceptions.ConnectTimeout:
                raise tuf_errors.SlowRetrievalError(
                    f"connect timeout to {current} ({options.connect_timeout:g} s)"
                ) from None
            except requests.exceptions.Timeout:
                raise tuf_errors.SlowRetrievalError(
                    f"no response from {current} within {options.read_timeout:g} s"
                ) from None
            except requests.exceptions.RequestException as exc:
                raise tuf_errors.DownloadError(
                    f"cannot download {current}: {_reason(exc)}"
                ) from None
            if response.status_code in _REDIRECTS:
                location = response.headers.get("Location", "")
                response.close()
                target = urljoin(current, location)
                if _origin(target) != _origin(current):
                    raise tuf_errors.DownloadError(
                        f"refusing redirect from {current} to another origin: {target}"
                    )
                current = target
                continue
            if response.status_code != 200:
                response.close()
                raise tuf_errors.DownloadHTTPError(
                    f"GET {current}: HTTP {response.status_code}", response.status_code
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > options.max_bytes:
                response.close()
                raise tuf_errors.DownloadLengthMismatchError(
                    f"download of {current} announces {declared} bytes, more than the"
                    f" {options.max_bytes}-byte limit"
                )
            return self._body(response, current, deadline)
        raise tuf_errors.DownloadError(f"download of {url}: more than {MAX_REDIRECTS} redirects")

    def _body(self, response: requests.Response, url: str, deadline: float) -> Iterator[bytes]:
        options = self.options
        raw: urllib3.HTTPResponse = response.raw
        received = 0
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise tuf_errors.SlowRetrievalError(
                        f"download of {url} exceeded {options.total_timeout:g} s in total"
                        f" (received {received} bytes); aborted"
                    )
                _set_read_timeout(raw, min(options.read_timeout, remaining))
                try:
                    # read1 returns after one socket read, so the deadline is checked between
                    # reads; decoded output is bounded by the amount asked for (urllib3 >= 2.7).
                    chunk = raw.read1(_CHUNK, decode_content=True)
                except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
                    if deadline - time.monotonic() <= 0:
                        raise tuf_errors.SlowRetrievalError(
                            f"download of {url} exceeded {options.total_timeout:g} s in total"
                            f" (received {received} bytes); aborted"
                        ) from None
                    raise tuf_errors.SlowRetrievalError(
                        f"download of {url}: no data for {options.read_timeout:g} s"
                        f" (received {received} bytes); aborted"
                    ) from None
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise tuf_errors.DownloadError(
                        f"download of {url} broke off after {received} bytes: {_reason(exc)}"
                    ) from None
                if not chunk:
                    return
                received += len(chunk)
                if received > options.max_bytes:
                    raise tuf_errors.DownloadLengthMismatchError(
                        f"download of {url} exceeded the {options.max_bytes}-byte limit"
                        " (counted after decoding); aborted"
                    )
                yield chunk
        finally:
            response.close()


def _set_read_timeout(raw: urllib3.HTTPResponse, seconds: float) -> None:
    connection: Any = raw.connection
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(max(seconds, 0.001))


def _reason(exc: BaseException) -> str:
    """A short reason for a transport error (the innermost message, without addresses' noise)."""
    text = str(exc)
    for inner in (exc.__cause__, exc.__context__, *getattr(exc, "args", ())):
        if isinstance(inner, BaseException) and str(inner):
            text = str(inner)
    return text.splitlines()[0][:300] if text else type(exc).__name__


# --- fetching into the cache --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a fetch brought into the cache."""

    url: str
    lists: tuple[CachedList, ...]
    new_versions: dict[str, tuple[int, ...]]
    skipped: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def check_repository_url(url: str) -> str:
    """Return the normalized base URL of a list repository (no trailing slash).

    Raises:
        InputError: not ``https://`` (or ``http://`` to a loopback address), has credentials, a
            query or a fragment.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InputError(f"{url}: not an http(s) URL of a list repository")
    if parts.username or parts.password:
        raise InputError(f"{url}: credentials in the URL are not allowed")
    if parts.query or parts.fragment:
        raise InputError(f"{url}: a repository URL has no query or fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise InputError(f"{url}: use https:// (plain http is allowed only to loopback addresses)")
    return parts.geturl().rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
        raise InputError("the trust store names no list keys; add one with 'trust add ... --list'")
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
        # The cache is not trusted (L20): re-verify it, and its anchor against the trust store.
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
    # (THREATS K8, and --now in tests). The attribute is the one its own tests set.
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
    return cached


def _check_unique_names(generation: Path, fetched: CachedRepository, *, at: dt.datetime) -> None:
    for other in iter_repositories(generation, at=at, allow_expired=True):
        if other.directory == fetched.directory:
            continue
        clash = sorted(set(other.files) & set(fetched.files))
        if clash:
            raise InputError(
                f"{fetched.url}: list {clash[0]!r} is already cached from {other.url}; use"
                " another --cache directory for this repository"
            )


__all__ = ["FetchOptions", "FetchResult", "RequestsFetcher", "check_repository_url", "fetch"]
