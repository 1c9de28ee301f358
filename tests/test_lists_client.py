"""``lists fetch`` against a real HTTP server on 127.0.0.1: the L and H threats of docs/security.md
staged one by one, each refused with the right error and the cache left byte-for-byte as it was."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lists_support import (
    DAY,
    DOMAINS_V1,
    DOMAINS_V2,
    FAST,
    HOUR,
    T0,
    Association,
    FaultyServer,
    Timer,
    drip,
    endless,
    gzip_bomb,
    hang,
    redirect_to,
    replace_with,
    serve,
    shutdown,
    transform,
    tree,
    truncate,
)
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, Root, TargetFile

from provenance.errors import (
    DigestMismatchError,
    ExpiredError,
    FetchError,
    InputError,
    NotCachedError,
    RollbackError,
    SignatureError,
    VerificationError,
)
from provenance.keys import PrivateKey
from provenance.lists import _metadata, _repo
from provenance.lists import repository as repo_module
from provenance.lists._tufkeys import KeySigner, tuf_key
from provenance.lists.cache import (
    cached_versions,
    load_cached_lists,
    load_cached_version,
    trusted_signers,
)
from provenance.lists.client import FetchOptions, RequestsFetcher, check_repository_url, fetch
from provenance.lists.model import ExclusionList
from provenance.trust import TrustStore


@pytest.fixture
def assoc(tmp_path: Path) -> Association:
    association = Association(tmp_path / "assoc")
    association.publish()
    return association


@pytest.fixture
def server(assoc: Association) -> Iterator[FaultyServer]:
    running, thread = serve(assoc.repo)
    yield running
    shutdown(running, thread)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


# For fetches that must succeed: limits no loaded machine reaches (the attacks use FAST).
PATIENT = FetchOptions(
    connect_timeout=10.0, read_timeout=10.0, total_timeout=60.0, max_bytes=1 << 20
)


def do_fetch(
    server: FaultyServer,
    store: TrustStore,
    cache: Path,
    *,
    at: dt.datetime = T0 + HOUR,
    options: FetchOptions = FAST,
) -> object:
    return fetch(server.url, store=store, cache_dir=cache, at=at, options=options)


def resign(
    assoc: Association, mutate: Callable[[_repo.Repository], None], *, at: dt.datetime
) -> None:
    """Let the association (holding its keys) publish arbitrary, validly signed metadata."""
    repo = _repo.load_repository(assoc.repo, at=at)
    assert repo is not None
    mutate(repo)
    _repo.bump_snapshot_and_timestamp(
        repo,
        [KeySigner(k) for k in assoc.keys],
        at=at,
        timestamp_days=dt.timedelta(days=7),
        resign_snapshot=True,
        resign_targets=True,
    )
    _repo.write_new_files(repo)


def add_list_file(repo: _repo.Repository, path: str, data: bytes) -> None:
    info = TargetFile.from_data(path, data, ["sha256"])
    repo.targets.signed.targets[path] = info
    repo.new_files.append((_repo.target_file(repo.directory, info), data))


# --- the normal path --------------------------------------------------------------------------


def test_fetch_caches_and_reverifies(assoc: Association, server: FaultyServer, cache: Path) -> None:
    store = assoc.trust()
    result = do_fetch(server, store, cache)
    assert result.new_versions == {"piracy": (1,)}  # type: ignore[attr-defined]
    (cached,) = load_cached_lists(cache, at=T0 + HOUR)
    file = next((assoc.repo / "targets/lists/piracy").glob("*.v1.json"))
    assert cached.digest == hashlib.sha256(file.read_bytes()).hexdigest()
    assert file.name.startswith(cached.digest)
    assert cached.list.name == "piracy" and cached.list.version == 1
    assert [e.value for e in cached.list.entries] == [
        "1337x.to",
        "3dmgame.com",
        "4realtorrentz.com",
    ]
    assert cached.signers == (assoc.keys[0].keyid,)
    assert cached.url == server.url
    assert cached.expires == T0 + 7 * DAY
    assert trusted_signers(cached, store, at=T0) == (assoc.keys[0].keyid,)


def test_new_versions_are_fetched_and_chained(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    store = assoc.trust()
    first = assoc.publish(DOMAINS_V1 + b"0.0.0.0 v2.example\n", at=T0)  # the fixture made v1
    do_fetch(server, store, cache)
    assoc.publish(DOMAINS_V2, at=T0 + 2 * HOUR)  # v3
    result = do_fetch(server, store, cache, at=T0 + 3 * HOUR)
    assert result.new_versions == {"piracy": (3,)}  # type: ignore[attr-defined]
    assert cached_versions(cache, "piracy", at=T0) == [1, 2, 3]
    v1 = load_cached_version(cache, "piracy", 1, at=T0 + 3 * HOUR)
    v2 = load_cached_version(cache, "piracy", 2, at=T0 + 3 * HOUR)
    v3 = load_cached_version(cache, "piracy", 3, at=T0 + 3 * HOUR)
    assert v2.digest == first
    assert v1.list.previous is None
    assert v2.list.previous == v1.digest and v3.list.previous == v2.digest
    assert "0daycn.net" in {e.value for e in v3.list.entries}
    (newest,) = load_cached_lists(cache, at=T0 + 3 * HOUR, names=["piracy"])
    assert newest.list.version == 3
    with pytest.raises(NotCachedError, match="version 4 is not in the cache"):
        load_cached_version(cache, "piracy", 4, at=T0 + 3 * HOUR)
    with pytest.raises(NotCachedError, match="list 'optout' is not in the cache"):
        load_cached_lists(cache, at=T0, names=["optout"])


def test_refetch_without_changes_is_a_no_op(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    do_fetch(server, assoc.trust(), cache)
    result = do_fetch(server, assoc.trust(), cache, at=T0 + 2 * HOUR)
    assert result.new_versions == {"piracy": ()}  # type: ignore[attr-defined]
    assert len(list(cache.iterdir())) == 2  # one generation and the 'current' link


def test_lists_without_a_policy_are_skipped(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    assoc.publish(name="optout")
    result = do_fetch(server, assoc.trust(name="piracy"), cache)
    assert result.skipped == ("optout",)  # type: ignore[attr-defined]
    assert [c.list.name for c in load_cached_lists(cache, at=T0 + HOUR)] == ["piracy"]


def test_threshold_two_of_three(tmp_path: Path, cache: Path) -> None:
    assoc = Association(tmp_path / "a3", keys=[PrivateKey.generate() for _ in range(3)])
    assoc.threshold = 2
    assoc.publish()
    running, thread = serve(assoc.repo)
    try:
        (cached,) = do_fetch(running, assoc.trust(threshold=2), cache).lists  # type: ignore[attr-defined]
        assert len(cached.signers) == 3
    finally:
        shutdown(running, thread)


# --- TUF's refusals: rollback, freeze, mix-and-match, fast-forward, tampering -----------------


def test_rollback_is_refused(assoc: Association, server: FaultyServer, cache: Path) -> None:
    old_copy = assoc.snapshot_repo(assoc.directory / "repo-v1")
    assoc.publish(DOMAINS_V2, at=T0 + HOUR)
    do_fetch(server, assoc.trust(), cache, at=T0 + 2 * HOUR)
    before = tree(cache)
    server.root = old_copy  # a mirror (or attacker) replays the older, validly signed repository
    with pytest.raises(RollbackError, match="rollback"):
        do_fetch(server, assoc.trust(), cache, at=T0 + 3 * HOUR)
    assert tree(cache) == before
    (cached,) = load_cached_lists(cache, at=T0 + 3 * HOUR)
    assert cached.list.version == 2


def test_freeze_expired_timestamp_is_refused(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    do_fetch(server, assoc.trust(), cache, at=T0 + 6 * DAY)  # still fresh after 6 days
    before = tree(cache)
    with pytest.raises(ExpiredError, match="expired"):
        do_fetch(server, assoc.trust(), cache, at=T0 + 8 * DAY)
    assert tree(cache) == before
    with pytest.raises(ExpiredError, match="timestamp metadata expired"):
        load_cached_lists(cache, at=T0 + 8 * DAY)
    (stale,) = load_cached_lists(cache, at=T0 + 8 * DAY, allow_expired=True)
    assert stale.expires == T0 + 7 * DAY
    # The association refreshes the timestamp; the same list is fresh again.
    repo_module.refresh(assoc.repo, keys=assoc.keys, at=T0 + 7 * DAY + HOUR)
    do_fetch(server, assoc.trust(), cache, at=T0 + 8 * DAY)
    assert load_cached_lists(cache, at=T0 + 8 * DAY)[0].expires == T0 + 14 * DAY + HOUR


def test_first_fetch_of_an_expired_repository_is_refused(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    with pytest.raises(ExpiredError, match=r"freeze refused: .*timestamp\.json is expired"):
        do_fetch(server, assoc.trust(), cache, at=T0 + 30 * DAY)
    assert not cache.exists()


def test_mix_and_match_is_refused(assoc: Association, server: FaultyServer, cache: Path) -> None:
    assoc.publish(DOMAINS_V2, at=T0 + HOUR)  # snapshot and targets v2
    old_snapshot = (assoc.repo / "metadata/1.snapshot.json").read_bytes()
    server.faults["/metadata/2.snapshot.json"] = replace_with(old_snapshot)
    with pytest.raises(DigestMismatchError, match="mix-and-match"):
        do_fetch(server, assoc.trust(), cache, at=T0 + 2 * HOUR)
    assert not cache.exists()


def test_unsigned_fast_forward_is_refused_and_does_not_poison(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    do_fetch(server, assoc.trust(), cache)
    before = tree(cache)

    def bump(data: bytes) -> bytes:
        document = json.loads(data)
        document["signed"]["version"] = 999_999
        return json.dumps(document).encode()

    server.faults["/metadata/timestamp.json"] = transform(bump)
    with pytest.raises(SignatureError, match="timestamp"):
        do_fetch(server, assoc.trust(), cache, at=T0 + 2 * HOUR)
    assert tree(cache) == before
    server.faults.clear()
    assoc.publish(DOMAINS_V2, at=T0 + 2 * HOUR)
    result = do_fetch(server, assoc.trust(), cache, at=T0 + 3 * HOUR)
    assert result.new_versions == {"piracy": (2,)}  # type: ignore[attr-defined]


def test_tampered_list_file_is_refused(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    server.suffix_faults[".v1.json"] = transform(lambda b: b.replace(b"1337x.to", b"1338x.to"))
    with pytest.raises(
        DigestMismatchError,
        match=r"the served file is not the one the signed metadata names \(tampered\)",
    ):
        do_fetch(server, assoc.trust(), cache)
    assert not cache.exists()


def test_root_signed_by_an_untrusted_key_is_refused(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    stranger = Association(assoc.directory / "x", keys=[PrivateKey.generate()])
    with pytest.raises(SignatureError, match="not signed by a threshold of the keys"):
        do_fetch(server, stranger.trust(), cache)
    assert not cache.exists()
    assert server.requests == ["/metadata/root.json"]  # nothing else was even downloaded


def test_key_trusted_only_for_another_list_is_refused(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    with pytest.raises(SignatureError, match="offers no list the trust store trusts"):
        do_fetch(server, assoc.trust(name="optout"), cache)
    assert not cache.exists()


def test_key_trusted_for_another_role_is_refused(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    other = PrivateKey.generate()
    # The list policy names a different key; the repository's key is only an auditor key.
    store = TrustStore()
    store = store.with_key(other.public, name="o", role="list-publisher", list_name="piracy")
    store = store.with_key(assoc.keys[0].public, name="a", role="auditor")
    with pytest.raises(
        SignatureError, match="is not signed by a threshold of the keys the trust store pins"
    ):
        do_fetch(server, store, cache)


def test_threshold_not_met_one_of_two(tmp_path: Path, cache: Path) -> None:
    assoc = Association(tmp_path / "a3", keys=[PrivateKey.generate() for _ in range(3)])
    assoc.threshold = 2
    assoc.publish()
    running, thread = serve(assoc.repo)

    def keep_one_signature(data: bytes) -> bytes:
        document = json.loads(data)
        document["signatures"] = document["signatures"][:1]
        return json.dumps(document).encode()

    running.faults["/metadata/root.json"] = transform(keep_one_signature)
    try:
        with pytest.raises(SignatureError, match="1 of the 2"):
            do_fetch(running, assoc.trust(threshold=2), cache)
    finally:
        shutdown(running, thread)
    assert not cache.exists()


def test_repository_threshold_below_the_trust_store_threshold(tmp_path: Path, cache: Path) -> None:
    keys = [PrivateKey.generate() for _ in range(3)]
    assoc = Association(tmp_path / "a1", keys=keys[:1])  # one key signs, threshold 1
    assoc.publish()
    demanding = Association(tmp_path / "a3", keys=keys).trust(threshold=2)
    running, thread = serve(assoc.repo)
    try:
        with pytest.raises(SignatureError, match="not signed by a threshold"):
            do_fetch(running, demanding, cache)
    finally:
        shutdown(running, thread)


def test_duplicate_signatures_do_not_count_twice(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    def duplicate(data: bytes) -> bytes:
        document = json.loads(data)
        document["signatures"] = document["signatures"] * 2
        return json.dumps(document).encode()

    server.faults["/metadata/root.json"] = transform(duplicate)
    with pytest.raises(VerificationError, match="not valid TUF root metadata"):
        do_fetch(server, assoc.trust(), cache)
    assert not cache.exists()


def test_one_key_under_two_keyids_counts_once() -> None:
    """go-tuf PR #733: TUF counts keyids; we count distinct public keys.

    docs/security.md K4, L12.
    """
    key = PrivateKey.generate()
    signer = KeySigner(key)
    alias = tuf_key(key.public)
    alias.keyid = "ab" * 32
    root = Root(expires=T0 + 365 * DAY)
    for role in _metadata.TOP_LEVEL_ROLES:
        root.add_key(signer.public_key, role)
        root.add_key(alias, role)
        root.roles[role].threshold = 2
    metadata = Metadata(root)
    signature = metadata.sign(signer)
    metadata.signatures[alias.keyid] = type(signature)(alias.keyid, signature.signature)
    root.verify_delegate("root", metadata.signed_bytes, metadata.signatures)  # TUF: 2 of 2
    with pytest.raises(SignatureError, match="1 of the 2 distinct keys"):
        _metadata.role_signers(root, "root", metadata, what="root")


def test_broken_hash_chain_is_refused(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    do_fetch(server, assoc.trust(), cache)
    before = tree(cache)
    forged = ExclusionList(
        name="piracy",
        version=2,
        issued=T0,
        publisher="Example Rights Association",
        previous="0" * 64,
        entries=(),
    )
    resign(assoc, lambda r: add_list_file(r, "lists/piracy/v2.json", forged.to_bytes()), at=T0)
    with pytest.raises(DigestMismatchError, match="hash chain is broken"):
        do_fetch(server, assoc.trust(), cache, at=T0 + 2 * HOUR)
    assert tree(cache) == before


def test_rewritten_history_is_refused(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    do_fetch(server, assoc.trust(), cache)
    before = tree(cache)
    rewritten = ExclusionList(
        name="piracy", version=1, issued=T0, publisher="X", previous=None, entries=()
    )
    resign(assoc, lambda r: add_list_file(r, "lists/piracy/v1.json", rewritten.to_bytes()), at=T0)
    with pytest.raises(DigestMismatchError, match="differ from the cached"):
        do_fetch(server, assoc.trust(), cache, at=T0 + 2 * HOUR)
    assert tree(cache) == before


def test_withdrawn_version_is_refused(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    do_fetch(server, assoc.trust(), cache)
    resign(assoc, lambda r: r.targets.signed.targets.clear(), at=T0)
    with pytest.raises(RollbackError, match="no longer offered"):
        do_fetch(server, assoc.trust(), cache, at=T0 + 2 * HOUR)


def test_hostile_target_names_are_ignored(
    assoc: Association, server: FaultyServer, cache: Path, tmp_path: Path
) -> None:
    evil = ExclusionList(
        name="evil", version=1, issued=T0, publisher="X", previous=None, entries=()
    )
    for path in ("lists/../evil/v1.json", "lists/Evil/v1.json", "lists/evil/v01.json"):
        resign(assoc, lambda r, p=path: add_list_file(r, p, evil.to_bytes()), at=T0)  # type: ignore[misc]
    do_fetch(server, assoc.trust(), cache)
    assert [c.list.name for c in load_cached_lists(cache, at=T0 + HOUR)] == ["piracy"]
    assert not any("evil" in name.lower() for name in tree(cache))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assoc", "cache"]


# --- transport faults (exit 3): each capped, each leaves the cache as it was -----------------


def test_hanging_server_times_out(assoc: Association, server: FaultyServer, cache: Path) -> None:
    server.faults["/metadata/root.json"] = hang
    timer = Timer()
    with pytest.raises(FetchError, match="no response"):
        do_fetch(server, assoc.trust(), cache)
    assert timer.elapsed < 2


def test_slow_drip_hits_the_total_deadline(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    # One byte every 0.1 s never trips the 0.5 s read timeout; only the 1.5 s deadline stops it.
    server.faults["/metadata/root.json"] = drip(100, 0.1)
    timer = Timer()
    with pytest.raises(FetchError, match="in total"):
        do_fetch(server, assoc.trust(), cache)
    assert timer.elapsed < 2


def test_endless_body_is_capped(assoc: Association, server: FaultyServer, cache: Path) -> None:
    server.faults["/metadata/root.json"] = endless
    with pytest.raises(FetchError, match="exceed"):
        do_fetch(server, assoc.trust(), cache)


def test_size_cap_counts_decoded_bytes(server: FaultyServer) -> None:
    """Our own cap, independent of TUF's lengths: the fetcher stops a gzip bomb at 1 MiB."""
    server.faults["/bomb"] = gzip_bomb
    server.faults["/endless"] = endless
    fetcher = RequestsFetcher(FAST)
    try:
        for path in ("/bomb", "/endless"):
            with pytest.raises(tuf_errors.DownloadLengthMismatchError, match="after decoding"):
                fetcher.download_bytes(f"{server.url}{path}", 10**12)
        small = RequestsFetcher(FetchOptions(max_bytes=10))
        with pytest.raises(tuf_errors.DownloadLengthMismatchError, match="announces"):
            small.download_bytes(f"{server.url}/metadata/root.json", 10**12)
    finally:
        fetcher.close()


def test_gzip_bomb_through_fetch(assoc: Association, server: FaultyServer, cache: Path) -> None:
    server.faults["/metadata/root.json"] = gzip_bomb
    with pytest.raises(FetchError, match="exceeding the maximum allowed length"):
        do_fetch(server, assoc.trust(), cache)
    assert not cache.exists()


def test_cross_host_redirect_is_refused(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    port = server.server_address[1]
    server.faults["/metadata/root.json"] = redirect_to(
        lambda h: f"http://localhost:{port}/metadata/root.json"
    )
    with pytest.raises(FetchError, match="refusing redirect"):
        do_fetch(server, assoc.trust(), cache)
    assert server.requests == ["/metadata/root.json"]


def test_same_origin_redirect_is_followed(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    server.faults["/metadata/root.json"] = redirect_to(lambda h: "/metadata/root.json?moved")
    do_fetch(server, assoc.trust(), cache)
    assert "/metadata/root.json?moved" in server.requests


def test_truncated_body_is_refused(assoc: Association, server: FaultyServer, cache: Path) -> None:
    server.suffix_faults[".v1.json"] = truncate
    with pytest.raises(FetchError, match="broke off"):
        do_fetch(server, assoc.trust(), cache)


def test_unreachable_server(assoc: Association, cache: Path) -> None:
    with pytest.raises(FetchError, match="cannot download http://127.0.0.1:9/"):
        fetch("http://127.0.0.1:9", store=assoc.trust(), cache_dir=cache, at=T0, options=FAST)
    assert not cache.exists()


def _flip_targets(data: bytes) -> bytes:
    # Same length, so that it is the hash pinned by the snapshot, not the length, that fails.
    return data.replace(b'"expires": "2027', b'"expires": "2028')


FAULTS: dict[str, tuple[Callable[[FaultyServer, Path], None], type[Exception]]] = {
    "tampered list file": (
        lambda s, r: s.suffix_faults.__setitem__(".v2.json", transform(lambda b: b[:-1] + b" ")),
        DigestMismatchError,
    ),
    "tampered targets metadata": (
        lambda s, r: s.faults.__setitem__("/metadata/2.targets.json", transform(_flip_targets)),
        DigestMismatchError,
    ),
    "fast-forwarded timestamp (unsigned)": (
        lambda s, r: s.faults.__setitem__(
            "/metadata/timestamp.json",
            transform(lambda b: b.replace(b'"version": 2', b'"version": 9')),
        ),
        SignatureError,
    ),
    "hanging server": (
        lambda s, r: s.faults.__setitem__("/metadata/timestamp.json", hang),
        FetchError,
    ),
    "slow drip": (
        lambda s, r: s.faults.__setitem__("/metadata/timestamp.json", drip(100, 0.1)),
        FetchError,
    ),
    "endless body": (
        lambda s, r: s.faults.__setitem__("/metadata/2.snapshot.json", endless),
        FetchError,
    ),
    "gzip bomb": (lambda s, r: s.suffix_faults.__setitem__(".v2.json", gzip_bomb), FetchError),
    "cross-host redirect": (
        lambda s, r: s.faults.__setitem__(
            "/metadata/timestamp.json",
            redirect_to(lambda h: f"http://localhost:{s.server_address[1]}/x"),
        ),
        FetchError,
    ),
    "truncated body": (lambda s, r: s.suffix_faults.__setitem__(".v2.json", truncate), FetchError),
    "HTTP 500": (
        lambda s, r: s.faults.__setitem__(
            "/metadata/timestamp.json", lambda h: h.send_body(b"oops", status=500)
        ),
        FetchError,
    ),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_cache_is_unchanged_after_any_failure(
    fault: str, assoc: Association, server: FaultyServer, cache: Path, tmp_path: Path
) -> None:
    # The fetches before and after the fault are clean: generous limits, so that a loaded machine
    # cannot fail them; only the faulty fetch runs under the tight FAST limits.
    do_fetch(server, assoc.trust(), cache, options=PATIENT)
    shutil.copy(assoc.repo / "metadata/timestamp.json", tmp_path / "timestamp-v1.json")
    assoc.publish(DOMAINS_V2, at=T0 + HOUR)
    before = tree(cache)
    inject, expected = FAULTS[fault]
    inject(server, tmp_path)
    with pytest.raises(
        expected,
        match=(
            r"HTTP 500|refusing redirect|exceeding the maximum allowed length"
            r"|signed by 0/1 keys|no response from|in total \(received"
            r"|not the one the signed metadata names|does not match expected hash|broke off"
        ),
    ):
        do_fetch(server, assoc.trust(), cache, at=T0 + 2 * HOUR)
    assert tree(cache) == before
    assert load_cached_lists(cache, at=T0 + 2 * HOUR)[0].list.version == 1
    server.faults.clear()
    server.suffix_faults.clear()
    result = do_fetch(server, assoc.trust(), cache, at=T0 + 2 * HOUR, options=PATIENT)
    assert result.new_versions == {"piracy": (2,)}  # type: ignore[attr-defined]


# --- the cache is not trusted (docs/security.md L20) ---------------------------------------------


def _cached_file(cache: Path, pattern: str) -> Path:
    (path,) = (cache / "current").resolve().glob(pattern)
    return path


def test_tampered_cached_list_is_detected(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    do_fetch(server, assoc.trust(), cache)
    path = _cached_file(cache, "repos/*/lists/piracy/v1.json")
    signed = path.read_bytes()
    path.write_bytes(signed.replace(b"1337x.to", b"1338x.to"))
    # Beside the list's signed packed form the file is not read: the signed list is loaded.
    loaded = {c.list.name: c.list for c in load_cached_lists(cache, at=T0 + HOUR)}
    assert loaded["piracy"].to_bytes() == signed
    # Read (its index gone), the edited file is refused.
    path.with_suffix(".index").unlink()
    with pytest.raises(DigestMismatchError, match="does not match the signed metadata"):
        load_cached_lists(cache, at=T0 + HOUR)


def test_tampered_cached_metadata_is_detected(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    do_fetch(server, assoc.trust(), cache)
    path = _cached_file(cache, "repos/*/metadata/targets.json")
    document = json.loads(path.read_bytes())
    document["signed"]["targets"]["lists/piracy/v1.json"]["length"] += 1
    path.write_bytes(json.dumps(document).encode())
    with pytest.raises(
        VerificationError, match="targets metadata signed by 0 of the 1 distinct keys"
    ):
        load_cached_lists(cache, at=T0 + HOUR)
    with pytest.raises(VerificationError, match="Remove the cache directory"):
        do_fetch(server, assoc.trust(), cache, at=T0 + 2 * HOUR)


def test_cache_anchor_is_rechecked_against_the_trust_store(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    do_fetch(server, assoc.trust(), cache)
    stranger = Association(assoc.directory / "x", keys=[PrivateKey.generate()])
    with pytest.raises(SignatureError, match="not signed by a threshold"):
        do_fetch(server, stranger.trust(), cache, at=T0 + 2 * HOUR)


def test_leftovers_of_a_crashed_fetch_are_cleaned(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    do_fetch(server, assoc.trust(), cache)
    (cache / ".staging-deadbeef").mkdir()
    (cache / ".staging-deadbeef" / "junk").write_text("x")
    do_fetch(server, assoc.trust(), cache, at=T0 + 2 * HOUR)
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) == []


# --- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://lists.example.org/piracy/", True),
        ("http://127.0.0.1:8000", True),
        ("http://[::1]:8000/repo", True),
        ("http://lists.example.org/", False),
        ("https://user:pw@lists.example.org/", False),
        ("https://lists.example.org/?x=1", False),
        ("file:///etc/passwd", False),
        ("ftp://lists.example.org/", False),
    ],
)
def test_repository_urls(url: str, ok: bool) -> None:
    if ok:
        assert not check_repository_url(url).endswith("/")
    else:
        with pytest.raises(
            InputError,
            match=(
                r"use https://|credentials in the URL are not allowed|has no query or fragment"
                r"|not an http\(s\) URL of a list repository"
            ),
        ):
            check_repository_url(url)


def test_fetcher_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent.pem")
    fetcher = RequestsFetcher()
    assert fetcher.http.session.trust_env is False
    fetcher.close()


def test_requests_is_imported_only_by_the_shared_fetcher() -> None:
    package = Path(__file__).resolve().parents[1] / "provenance"
    importers = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if re.search(r"^\s*(import requests|from requests\b)", path.read_text(), re.M)
    )
    assert importers == ["_http.py"]
    source = (package / "_http.py").read_text()
    assert "verify=False" not in source and "verify=True" in source


def test_client_walks_a_new_root_version(
    assoc: Association, server: FaultyServer, cache: Path
) -> None:
    do_fetch(server, assoc.trust(), cache)
    later = T0 + 362 * DAY  # refresh re-signs the root (version 2) before it expires
    assert repo_module.refresh(assoc.repo, keys=assoc.keys, at=later).resigned["root"] == 2
    do_fetch(server, assoc.trust(), cache, at=later + HOUR)
    history = sorted(p.name for p in _cached_file(cache, "repos/*/metadata/root_history").iterdir())
    assert history == ["1.root.json", "2.root.json"]
    assert load_cached_lists(cache, at=later + HOUR)[0].list.version == 1
