"""The signed packed form of each list version (docs/security.md L25): its length and SHA-256 signed
in the list's target entry, checked once at fetch against the packed form computed from the
verified list, then the cached index believed on load for that signed hash. Real TUF repositories
served on 127.0.0.1, real keys, real caches."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from exclusion_support import T0, Association
from joins_support import content, make_lists
from lists_support import FaultyServer, serve, shutdown

from provenance.errors import DigestMismatchError, FormatError
from provenance.lists import _repo, client
from provenance.lists import cache as cache_module
from provenance.lists._tufkeys import KeySigner
from provenance.lists.cache import (
    PACKED_FIELD,
    load_cached_lists,
    read_repository,
    signed_packed_form,
)
from provenance.lists.client import FetchOptions, fetch
from provenance.lists.digests import DigestIndex
from provenance.lists.model import ExclusionList, ListEntry
from provenance.lists.packed import PackedList, encode_index, index_path, load_signed_index

AT = T0 + dt.timedelta(hours=1)
PATIENT = FetchOptions(
    connect_timeout=10.0, read_timeout=10.0, total_timeout=60.0, max_bytes=1 << 24
)


@pytest.fixture(scope="module")
def lists() -> tuple[list[ListEntry], list[ListEntry]]:
    return make_lists()


@pytest.fixture
def assoc(tmp_path: Path, lists: tuple[list[ListEntry], list[ListEntry]]) -> Association:
    association = Association(tmp_path / "assoc")
    association.publish("piracy", lists[0])
    association.publish("optout", lists[1])
    return association


@pytest.fixture
def server(assoc: Association) -> Iterator[FaultyServer]:
    running, thread = serve(assoc.repo)
    yield running
    shutdown(running, thread)


def _fetch(assoc: Association, server: FaultyServer, *, at: dt.datetime = AT) -> None:
    fetch(server.url, store=assoc.store, cache_dir=assoc.cache, at=at, options=PATIENT)


def _list_file(cache: Path, name: str, version: int = 1) -> Path:
    (path,) = (cache / "current" / "repos").glob(f"*/lists/{name}/v{version}.json")
    return path


def _packed_of(data: bytes) -> bytes:
    """The packed form of the list file ``data``, computed here from the file alone."""
    the_list = ExclusionList.from_bytes(data, what="test")
    digest = hashlib.sha256(data).hexdigest()
    return b"".join(encode_index(the_list, digest=digest, length=len(data)))


def _resign(assoc: Association, mutate: Callable[[_repo.Repository], None]) -> None:
    """Let the association (holding its key) sign arbitrary targets metadata."""
    repo = _repo.load_repository(assoc.repo, at=T0)
    assert repo is not None
    mutate(repo)
    _repo.bump_snapshot_and_timestamp(
        repo,
        [KeySigner(assoc.key)],
        at=T0,
        timestamp_days=dt.timedelta(days=7),
        resign_snapshot=True,
        resign_targets=True,
    )
    _repo.write_new_files(repo)


def _no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the list path that checks an index against the list file unusable."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index was checked against the list file")

    monkeypatch.setattr(cache_module, "load_index", refuse)


def test_publish_signs_the_packed_form_of_each_version(assoc: Association) -> None:
    repo = _repo.load_repository(assoc.repo, at=T0)
    assert repo is not None
    for name in ("piracy", "optout"):
        info = repo.targets.signed.targets[f"lists/{name}/v1.json"]
        packed = _packed_of(_repo.target_file(assoc.repo, info).read_bytes())
        assert info.custom == {
            PACKED_FIELD: {"length": len(packed), "sha256": hashlib.sha256(packed).hexdigest()}
        }
        assert signed_packed_form(info, what="t") == (
            hashlib.sha256(packed).hexdigest(),
            len(packed),
        )


def test_loading_believes_the_index_for_its_signed_hash(
    assoc: Association, server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fetch(assoc, server)
    _no_fallback(monkeypatch)
    for cached in load_cached_lists(assoc.cache, at=AT):
        path = _list_file(assoc.cache, cached.list.name)
        assert isinstance(cached.list, PackedList)
        assert index_path(path).read_bytes() == _packed_of(path.read_bytes())
        assert cached.list.entries == ExclusionList.from_bytes(path.read_bytes(), what="t").entries
        assert cached.digest == hashlib.sha256(path.read_bytes()).hexdigest()


def _edit_a_digest(index: Path, listed: str) -> None:
    """Replace the digest row of ``listed`` in an index by another digest (same size, header and
    kinds untouched: the index still parses)."""
    data = index.read_bytes()
    row = bytes.fromhex(listed)
    assert data.count(row) == 1
    index.write_bytes(data.replace(row, bytes.fromhex(content(10**7))))


def test_an_edited_packed_cache_file_is_refused_and_rebuilt(
    assoc: Association, server: FaultyServer
) -> None:
    """The attack: remove a listed digest from the cached index, so that a record on the list
    would pass. The index is not the signed packed form: refused, and rebuilt from the list."""
    _fetch(assoc, server)
    path = _list_file(assoc.cache, "piracy")
    signed = index_path(path).read_bytes()
    _edit_a_digest(index_path(path), content(0))
    repo = read_repository(path.parents[2], at=AT)
    info = repo.targetinfo("piracy", 1)
    assert info is not None
    packed_info = signed_packed_form(info, what="t")
    assert packed_info is not None
    refused, why = load_signed_index(
        index_path(path),
        packed_digest=packed_info[0],
        packed_length=packed_info[1],
        digest=info.hashes["sha256"],
        length=info.length,
        name="piracy",
        version=1,
    )
    assert refused is None and "not the signed packed form" in why

    (cached,) = load_cached_lists(assoc.cache, at=AT, names=["piracy"])
    assert any(e.value == content(0) for e in cached.list.entries)
    assert cached.list.entries == ExclusionList.from_bytes(path.read_bytes(), what="t").entries
    assert index_path(path).read_bytes() == signed  # rebuilt: exactly the signed packed form
    (again,) = load_cached_lists(assoc.cache, at=AT, names=["piracy"])
    assert isinstance(again.list, PackedList) and again.list.entries == cached.list.entries


def test_a_stale_packed_cache_file_is_refused_and_rebuilt(
    assoc: Association,
    server: FaultyServer,
    lists: tuple[list[ListEntry], list[ListEntry]],
) -> None:
    """v1's index where v2's belongs (both signed, both well formed): not v2's signed form."""
    _fetch(assoc, server)
    added = ListEntry(type="sha256", value=content(10**7 + 1), category="piracy")
    assoc.publish("piracy", sorted([*lists[0], added], key=ListEntry.sort_key), at=AT)
    _fetch(assoc, server, at=AT + dt.timedelta(hours=1))
    v1, v2 = _list_file(assoc.cache, "piracy", 1), _list_file(assoc.cache, "piracy", 2)
    signed = index_path(v2).read_bytes()
    index_path(v2).write_bytes(index_path(v1).read_bytes())
    (cached,) = load_cached_lists(assoc.cache, at=AT + dt.timedelta(hours=1), names=["piracy"])
    assert cached.list.version == 2 and added in tuple(cached.list.entries)
    assert index_path(v2).read_bytes() == signed


def test_a_tampered_list_file_is_refused_although_its_index_is_signed(
    assoc: Association, server: FaultyServer
) -> None:
    """A list file edited in the cache (a listed digest replaced) is never what is matched:
    with the signed packed form beside it, the list is its index's (the file is not read); once
    the file must be read (no usable index), it is refused for its signed hash."""
    _fetch(assoc, server)
    path = _list_file(assoc.cache, "piracy")
    data = path.read_bytes()
    listed = content(0).encode()
    path.write_bytes(data.replace(listed, content(10**7).encode()))
    (cached,) = load_cached_lists(assoc.cache, at=AT, names=["piracy"])
    assert isinstance(cached.list, PackedList)
    assert cached.list.entries == ExclusionList.from_bytes(data, what="t").entries
    assert cached.list.to_bytes() == data  # the signed list, not the edited file
    index_path(path).unlink()
    with pytest.raises(DigestMismatchError, match="does not match the signed metadata"):
        load_cached_lists(assoc.cache, at=AT, names=["piracy"])
    assert not index_path(path).exists()  # nothing rebuilt from the edited file


def _sign_packed_field(assoc: Association, change: Callable[[dict[str, object]], None]) -> None:
    """Sign, with the association's key, piracy v1's target entry with its packed-form field
    changed by ``change`` (the list file and its hash untouched)."""

    def mutate(repo: _repo.Repository) -> None:
        info = repo.targets.signed.targets["lists/piracy/v1.json"]
        field = dict(info.unrecognized_fields["custom"][PACKED_FIELD])
        change(field)
        info.unrecognized_fields["custom"] = {PACKED_FIELD: field}

    _resign(assoc, mutate)


def _forge_packed_form(assoc: Association) -> None:
    """Sign, as piracy v1's packed form, the packed form of that list with a listed digest
    replaced (the same length)."""

    def change(field: dict[str, object]) -> None:
        repo = _repo.load_repository(assoc.repo, at=T0)
        assert repo is not None
        info = repo.targets.signed.targets["lists/piracy/v1.json"]
        honest = _packed_of(_repo.target_file(assoc.repo, info).read_bytes())
        forged = honest.replace(bytes.fromhex(content(0)), bytes.fromhex(content(10**7)))
        assert forged != honest and len(forged) == len(honest)
        field["sha256"] = hashlib.sha256(forged).hexdigest()

    _sign_packed_field(assoc, change)


def test_a_packed_target_that_is_not_its_list_is_refused_at_fetch(
    assoc: Association, server: FaultyServer
) -> None:
    """The publisher signs a list and, as its packed form, another list: what is cited (the
    list file's digest) would not be what is matched. The fetch refuses; nothing is cached."""
    _forge_packed_form(assoc)
    with pytest.raises(DigestMismatchError, match="is not the packed form of the signed list"):
        _fetch(assoc, server)
    assert not assoc.cache.exists()


def test_a_packed_target_that_is_not_its_list_is_refused_on_load(
    assoc: Association, server: FaultyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache whose fetch did not make the check (an older client): loading rebuilds the index
    from the list, finds that it is not the signed packed form, and refuses the list."""
    _forge_packed_form(assoc)
    with monkeypatch.context() as patched:
        patched.setattr(client, "check_packed_form", lambda *args, **kwargs: None)
        _fetch(assoc, server)
    with pytest.raises(DigestMismatchError, match="is not the packed form of the signed list"):
        load_cached_lists(assoc.cache, at=AT, names=["piracy"])
    (optout,) = load_cached_lists(assoc.cache, at=AT, names=["optout"])
    assert isinstance(optout.list, PackedList)


def test_a_list_published_without_its_packed_form_loads_as_before(
    assoc: Association, server: FaultyServer
) -> None:
    """Lists published before packed forms were signed: the index is checked against the list
    file on every load (provenance.lists.packed.load_index), and still used."""

    def drop(repo: _repo.Repository) -> None:
        for name in ("piracy", "optout"):
            del repo.targets.signed.targets[f"lists/{name}/v1.json"].unrecognized_fields["custom"]

    _resign(assoc, drop)
    _fetch(assoc, server)
    loaded: list[str] = []
    original = cache_module.load_index

    def counting(*args: object, **kwargs: object) -> object:
        result = original(*args, **kwargs)  # type: ignore[arg-type]
        loaded.append(result[1])
        return result

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(cache_module, "load_index", counting)
        results = load_cached_lists(assoc.cache, at=AT)
    assert loaded == ["", ""]
    for cached in results:
        path = _list_file(assoc.cache, cached.list.name)
        assert isinstance(cached.list, PackedList)
        assert cached.list.to_bytes() == path.read_bytes()


def test_a_tampered_list_file_is_refused_when_its_packed_form_is_not_signed(
    assoc: Association, server: FaultyServer
) -> None:
    """Without a signed packed form the list file is read on every load: an edited one is
    refused for its signed hash, although the index beside it is the list's own."""

    def drop(repo: _repo.Repository) -> None:
        del repo.targets.signed.targets["lists/piracy/v1.json"].unrecognized_fields["custom"]

    _resign(assoc, drop)
    _fetch(assoc, server)
    path = _list_file(assoc.cache, "piracy")
    index = index_path(path).read_bytes()
    assert index == _packed_of(path.read_bytes())
    path.write_bytes(path.read_bytes().replace(content(0).encode(), content(10**7).encode()))
    with pytest.raises(DigestMismatchError, match="does not match the signed metadata"):
        load_cached_lists(assoc.cache, at=AT, names=["piracy"])


def test_a_malformed_packed_form_field_is_refused(assoc: Association, server: FaultyServer) -> None:
    """A signed entry that names a packed form, but not as a length and a SHA-256: refused, not
    taken for a list published without one."""
    _fetch(assoc, server)
    _sign_packed_field(assoc, lambda field: field.__setitem__("length", "12"))
    with pytest.raises(FormatError, match="not a length and a sha256"):
        _fetch(assoc, server, at=AT + dt.timedelta(hours=1))


def test_digest_index_over_rows_already_in_order_agrees_with_a_set() -> None:
    """Rows of a published list come in byte order, and the index then searches them in place
    (no sorted keys): its answers are those of a set, as for the same rows shuffled."""
    rng = np.random.default_rng(11)
    rows = rng.integers(0, 256, size=(4000, 32), dtype=np.uint8)
    rows[:40, :8] = rows[40:80, :8]  # shared 8-byte prefixes, different digests
    rows = np.concatenate([rows, rows[:5]])  # the same digest twice
    ordered = rows[np.lexsort(rows.T[::-1])]
    shuffled_order = rng.permutation(ordered.shape[0])
    queries = np.concatenate(
        [ordered[::9], ordered[:40] ^ np.uint8(1), rng.integers(0, 256, (300, 32), np.uint8)]
    )
    by_digest: dict[bytes, list[int]] = {}
    for number, digest in enumerate(ordered):
        by_digest.setdefault(digest.tobytes(), []).append(number)
    want = sorted(
        (q, n) for q, digest in enumerate(queries) for n in by_digest.get(digest.tobytes(), [])
    )
    in_order = DigestIndex(ordered)
    numbers, found = in_order.lookup(queries)
    assert sorted(zip(numbers.tolist(), found.tolist(), strict=True)) == want
    shuffled = DigestIndex(ordered[shuffled_order], shuffled_order.astype(np.int64))
    numbers, found = shuffled.lookup(queries)
    assert sorted(zip(numbers.tolist(), found.tolist(), strict=True)) == want
    assert in_order._sample is not None and in_order._keys is None  # searched in place
    assert shuffled._keys is not None and shuffled._sample is None


@pytest.mark.parametrize("size", [1, 2, 7, 8, 9, 17, 1000])
def test_digest_index_in_place_agrees_with_a_set_on_shared_prefixes(size: int) -> None:
    """Rows in order searched in place: long runs of one 8-byte prefix (more rows than a
    stride, as a publisher may list on purpose), duplicates, queries before the first row and
    after the last, and near misses; the same answers as a set and as the sorted keys."""
    rng = np.random.default_rng(size)
    rows = rng.integers(0, 256, size=(size, 32), dtype=np.uint8)
    if size > 20:
        rows[100:130, :8] = rows[100, :8]  # one prefix on 30 rows
        rows[500:510] = rows[500]  # one digest ten times
    rows = rows[np.lexsort(rows.T[::-1])]
    edges = np.stack([np.zeros(32, np.uint8), np.full(32, 255, np.uint8)])
    near = rows.copy()
    near[:, 31] ^= 1
    queries = np.concatenate([rows, near, edges, rng.integers(0, 256, (50, 32), np.uint8)])
    by_digest: dict[bytes, list[int]] = {}
    for number, digest in enumerate(rows):
        by_digest.setdefault(digest.tobytes(), []).append(number)
    want = sorted(
        (q, n) for q, digest in enumerate(queries) for n in by_digest.get(digest.tobytes(), [])
    )
    in_place = DigestIndex(rows)
    assert in_place._sample is not None and in_place._keys is None
    by_key = DigestIndex(rows[::-1], np.arange(size, dtype=np.int64)[::-1].copy())
    assert size == 1 or by_key._keys is not None
    for index in (in_place, by_key):
        numbers, found = index.lookup(queries)
        assert sorted(zip(numbers.tolist(), found.tolist(), strict=True)) == want
