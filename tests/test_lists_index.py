"""The binary index of cached list versions (``lists/NAME/vN.index``): written on fetch, used on
load, refused and rebuilt when it is stale, damaged or edited, and the same findings either way.
Real TUF repositories served on 127.0.0.1, real caches."""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from exclusion_support import T0, Association
from joins_support import content, make_lists, make_records, text

from provenance.card.model import Exclusion
from provenance.errors import DigestMismatchError, FormatError
from provenance.lists import audit as audit_module
from provenance.lists import packed as packed_module
from provenance.lists.audit import CacheSource, EntryBlocks, audit_lists
from provenance.lists.cache import (
    CachedList,
    checked_list,
    load_cached_lists,
    load_cached_version,
    read_repository,
)
from provenance.lists.match import ListIndex
from provenance.lists.model import ExclusionList, ListEntry
from provenance.lists.packed import PackedList, index_path, load_index, write_index
from provenance.manifest import CheckedEntries, ManifestEntry, write_manifest
from provenance.manifest import reader as reader_module
from provenance.manifest.reader import iter_manifest_blocks

AT = dt.datetime(2026, 7, 1, 6, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(hours=2)


def _list_file(cache: Path, name: str, version: int) -> Path:
    (path,) = (cache / "current" / "repos").glob(f"*/lists/{name}/v{version}.json")
    return path


@pytest.fixture(scope="module")
def lists() -> tuple[list[ListEntry], list[ListEntry]]:
    return make_lists()


@pytest.fixture
def world(tmp_path: Path, lists: tuple[list[ListEntry], list[ListEntry]]) -> Association:
    assoc = Association(tmp_path / "assoc")
    assoc.publish("piracy", lists[0])
    assoc.publish("optout", lists[1])
    assoc.fetch()
    return assoc


def _plain(path: Path) -> ExclusionList:
    return ExclusionList.from_bytes(path.read_bytes(), what=str(path))


def test_fetch_writes_the_index_and_loading_uses_it(world: Association) -> None:
    for cached in load_cached_lists(world.cache, at=AT):
        path = _list_file(world.cache, cached.list.name, 1)
        assert index_path(path).is_file()
        assert isinstance(cached.list, PackedList)
        plain = _plain(path)
        assert cached.list.entries == plain.entries
        assert tuple(cached.list.entries) == plain.entries
        assert [cached.list.entries[i] for i in range(len(plain.entries))] == list(plain.entries)
        assert cached.list.to_bytes() == path.read_bytes()
        assert cached.list.counts() == plain.counts()
        same = ("name", "version", "issued", "publisher", "previous")
        assert [getattr(cached.list, f) for f in same] == [getattr(plain, f) for f in same]


def test_a_missing_index_is_rebuilt_on_load(world: Association) -> None:
    path = _list_file(world.cache, "piracy", 1)
    written = index_path(path).read_bytes()
    index_path(path).unlink()
    (first,) = load_cached_lists(world.cache, at=AT, names=["piracy"])
    assert not isinstance(first.list, PackedList)  # parsed from the file, as without indexes
    assert index_path(path).read_bytes() == written
    (second,) = load_cached_lists(world.cache, at=AT, names=["piracy"])
    assert isinstance(second.list, PackedList)
    assert second.list.entries == first.list.entries and second.digest == first.digest


def _forge(path: Path, entries: Sequence[ListEntry]) -> None:
    """Write, with the library's own writer, an index of ``entries`` that claims to be the
    index of the list file at ``path``: its header names that file's digest and length."""
    plain = _plain(path)
    digest = packed_module.hashlib.sha256(path.read_bytes()).hexdigest()
    forged = ExclusionList(
        name=plain.name,
        version=plain.version,
        issued=plain.issued,
        publisher=plain.publisher,
        previous=plain.previous,
        entries=tuple(entries),
    )
    write_index(index_path(path), forged, digest=digest, length=path.stat().st_size)


def test_an_edited_index_is_refused_and_rebuilt(world: Association) -> None:
    """The attack: remove a listed digest from the index (header and sizes all consistent),
    so that a record on the list would pass. The index does not re-encode to the signed file:
    it is refused, and rebuilt from the file."""
    path = _list_file(world.cache, "piracy", 1)
    written = index_path(path).read_bytes()
    plain = _plain(path)
    listed = content(0)
    assert any(e.value == listed for e in plain.entries)
    # Replaced by another digest, so that the index keeps its exact size.
    edited = [
        ListEntry(type="sha256", value=content(1), category="piracy") if e.value == listed else e
        for e in plain.entries
    ]
    _forge(path, sorted(edited, key=ListEntry.sort_key))
    assert index_path(path).read_bytes() != written
    assert len(index_path(path).read_bytes()) == len(written)

    with open(path, "rb") as unverified:
        refused, why = load_index(
            index_path(path),
            unverified,
            digest=packed_module.hashlib.sha256(path.read_bytes()).hexdigest(),
            length=path.stat().st_size,
            name="piracy",
            version=1,
        )
    assert refused is None and "does not reproduce the list file" in why

    (cached,) = load_cached_lists(world.cache, at=AT, names=["piracy"])
    index = ListIndex([cached.list])
    assert index.match_digests([listed, content(1)]) != [(), ()]
    assert index.match_digests([listed])[0], "the listed digest must still match"
    assert not index.match_digests([content(1)])[0]
    assert index_path(path).read_bytes() == written, "rebuilt from the list file"


def test_an_index_with_an_entry_removed_is_refused(world: Association) -> None:
    path = _list_file(world.cache, "optout", 1)
    written = index_path(path).read_bytes()
    plain = _plain(path)
    _forge(path, [e for e in plain.entries if e.value != text(0)])
    (cached,) = load_cached_lists(world.cache, at=AT, names=["optout"])
    assert ListIndex([cached.list]).match_digests([text(0)], text=True)[0]
    assert index_path(path).read_bytes() == written


def test_a_stale_index_is_refused_and_rebuilt(
    world: Association, lists: tuple[list[ListEntry], list[ListEntry]]
) -> None:
    newer = [e for e in lists[0] if e.value != content(0)]
    world.publish("piracy", newer, at=T0 + dt.timedelta(hours=1))
    world.fetch(at=LATER)
    v1, v2 = _list_file(world.cache, "piracy", 1), _list_file(world.cache, "piracy", 2)
    written = index_path(v2).read_bytes()
    shutil.copyfile(index_path(v1), index_path(v2))  # another version's index
    cached = load_cached_version(world.cache, "piracy", 2, at=LATER)
    assert cached.list.version == 2
    assert cached.list.entries == _plain(v2).entries
    assert index_path(v2).read_bytes() == written
    with open(v2, "rb") as unverified:
        _, why = load_index(
            index_path(v1), unverified, digest=cached.digest, length=v2.stat().st_size,
            name="piracy", version=2,
        )  # fmt: skip
    assert "stale" in why


@pytest.mark.parametrize("damage", ["truncate", "flip-header", "garbage"])
def test_a_damaged_index_is_rebuilt(world: Association, damage: str) -> None:
    path = _list_file(world.cache, "optout", 1)
    written = index_path(path).read_bytes()
    data = bytearray(written)
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "flip-header":
        data[30] ^= 0x20
    else:
        data = bytearray(b"\0" * 100)
    index_path(path).write_bytes(bytes(data))
    (cached,) = load_cached_lists(world.cache, at=AT, names=["optout"])
    assert cached.list.entries == _plain(path).entries
    assert index_path(path).read_bytes() == written


def test_a_tampered_list_file_is_refused_even_with_a_valid_index(world: Association) -> None:
    """The index is the signed packed form here: the edited file is not what is matched (the
    signed list is), and once it is read (the index gone) it is refused."""
    path = _list_file(world.cache, "piracy", 1)
    assert index_path(path).is_file()
    signed = _plain(path)
    path.write_bytes(path.read_bytes().replace(b"01cinema.com", b"01cinema.con"))
    (cached,) = load_cached_lists(world.cache, at=AT, names=["piracy"])
    assert cached.list.entries == signed.entries
    index_path(path).unlink()
    with pytest.raises(DigestMismatchError, match="does not match the signed metadata"):
        load_cached_lists(world.cache, at=AT, names=["piracy"])


class _PlainSource:
    """Every list version parsed from its file, as without indexes."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache

    def _load(self, name: str, version: int) -> CachedList:
        (repo_dir,) = (self.cache / "current" / "repos").iterdir()
        repo = read_repository(repo_dir, at=AT, allow_expired=True)
        info = repo.targetinfo(name, version)
        assert info is not None
        data = repo.files[name][version].read_bytes()
        return checked_list(data, info, name=name, version=version, what="plain", repo=repo)

    def load_version(self, name: str, version: int) -> CachedList:
        return self._load(name, version)

    def load_newest(self, name: str) -> CachedList:
        (repo_dir,) = (self.cache / "current" / "repos").iterdir()
        repo = read_repository(repo_dir, at=AT, allow_expired=True)
        return self._load(name, max(repo.files[name]))


def test_findings_are_the_same_with_and_without_the_index(
    world: Association,
    lists: tuple[list[ListEntry], list[ListEntry]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    urls, contents, texts = make_records(2000, *lists)
    entries = [
        ManifestEntry(id=f"r{n}", sha256=c or content(10**6 + n), url=u, textSha256=t)
        for n, (u, c, t) in enumerate(zip(urls, contents, texts, strict=True))
    ]
    source = CacheSource(world.cache, AT)
    assert all(isinstance(source.load_version(n, 1).list, PackedList) for n in ("optout", "piracy"))
    claims = _claims(source)
    store = world.store
    indexed = audit_lists(claims, store, entries, source, at=AT)
    plain = audit_lists(claims, store, entries, _PlainSource(world.cache), at=AT)
    assert indexed.violation_count > 500 and indexed.unevaluable > 0
    assert indexed.violations == plain.violations
    assert indexed.violation_count == plain.violation_count
    assert (indexed.unevaluable, indexed.unevaluable_example) == (
        plain.unevaluable,
        plain.unevaluable_example,
    )
    assert [c[:2] for c in indexed.checks] == [c[:2] for c in plain.checks]
    # However the entries come (a list, one at a time, or blocks of any size, read while the
    # lists load on another thread), the findings are the same, in manifest order.
    blocks = [entries[n : n + size] for n, size in _block_sizes(len(entries))]
    monkeypatch.setattr(audit_module, "BATCH_SIZE", 128)  # many batches, some read ahead
    for given in (
        entries,
        iter(entries),
        EntryBlocks(iter(blocks)),
        EntryBlocks([[e] for e in entries]),
    ):
        streamed = audit_lists(claims, store, given, source, at=AT)
        assert streamed.violations == indexed.violations
        assert streamed.violation_count == indexed.violation_count
        assert streamed.checks == indexed.checks
        assert (streamed.unevaluable, streamed.unevaluable_example) == (
            indexed.unevaluable,
            indexed.unevaluable_example,
        )
    # Read from a manifest file: blocks the reader checked, whose digests the check decoded
    # and hands on with them (matched instead of the entries' own), give the same findings.
    ordered = sorted(entries, key=ManifestEntry.sort_key)
    path = tmp_path / "m.jsonl"
    write_manifest(ordered, path)
    monkeypatch.setattr(reader_module, "_READ_BLOCK", 20_000)
    blocks_read = list(iter_manifest_blocks(path))
    assert len(blocks_read) > 10
    assert all(isinstance(b, CheckedEntries) for b in blocks_read)
    from_file = audit_lists(claims, store, EntryBlocks(iter(blocks_read)), source, at=AT)
    in_memory = audit_lists(claims, store, ordered, source, at=AT)
    assert from_file.violation_count == in_memory.violation_count > 500
    assert from_file.violations == in_memory.violations
    assert from_file.checks == in_memory.checks
    assert (from_file.unevaluable, from_file.unevaluable_example) == (
        in_memory.unevaluable,
        in_memory.unevaluable_example,
    )


def _block_sizes(count: int) -> list[tuple[int, int]]:
    """Where blocks of uneven sizes (1 to 700 entries) start, and their sizes."""
    result, start, size = [], 0, 1
    while start < count:
        result.append((start, size))
        start += size
        size = size * 7 % 701 or 1
    return result


def _indexed_copy(the_list: ExclusionList, directory: Path) -> PackedList:
    data = the_list.to_bytes()
    path = directory / f"{the_list.name}-v{the_list.version}.json"
    path.write_bytes(data)
    digest = packed_module.hashlib.sha256(data).hexdigest()
    write_index(index_path(path), the_list, digest=digest, length=len(data))
    with open(path, "rb") as unverified:
        loaded, why = load_index(
            index_path(path), unverified, digest=digest, length=len(data),
            name=the_list.name, version=the_list.version,
        )  # fmt: skip
    assert loaded is not None, why
    return loaded


def _list(name: str, entries: Sequence[ListEntry]) -> ExclusionList:
    return ExclusionList(
        name=name, version=1, issued=T0, publisher="P", previous=None, entries=tuple(entries)
    )


def test_a_packed_list_indexes_exactly_as_its_entries(
    tmp_path: Path, lists: tuple[list[ListEntry], list[ListEntry]]
) -> None:
    empty = _list("empty", [])
    only_hashes = _list("hashes", [e for e in lists[0] if e.type == "sha256"])
    # Digests of one type and nothing else: indexed from the kinds' range alone.
    only_texts = _list("texts", [e for e in lists[0] + lists[1] if e.type == "text-sha256"])
    assert only_hashes.entries and only_texts.entries
    plain = [_list("piracy", lists[0]), empty, _list("optout", lists[1]), only_hashes, only_texts]
    packed = [_indexed_copy(the_list, tmp_path) for the_list in plain]
    urls, contents, texts = make_records(3000, *lists)
    expected = ListIndex(plain)
    got = ListIndex(packed)
    assert got.match_records(urls, contents, texts) == expected.match_records(urls, contents, texts)
    for text_kind in (False, True):
        queries = texts if text_kind else contents
        assert got.match_digests(queries, text=text_kind) == expected.match_digests(
            queries, text=text_kind
        )
    assert got.match_urls(urls) == expected.match_urls(urls)
    hits = [h for m in got.match_records(urls, contents, texts) for h in m.hits]
    assert {got.entry(h) for h in hits} == {expected.entry(h) for h in hits}
    for lists_of_one in ([empty], [only_hashes], [only_texts], [plain[2]]):
        one, packed_one = (
            ListIndex(lists_of_one),
            ListIndex([_indexed_copy(the_list, tmp_path) for the_list in lists_of_one]),
        )
        flags = ("has_url_entries", "has_content_entries", "has_text_entries", "entry_count")
        assert [getattr(packed_one, f) for f in flags] == [getattr(one, f) for f in flags]


def test_an_unindexable_packed_list_raises_as_the_plain_list(tmp_path: Path) -> None:
    """A URL entry the list format accepts but matching refuses: the same error, naming the
    same entry, whether the list came from its index or not."""
    entries = [ListEntry(type="sha256", value=content(n), category="piracy") for n in range(5)] + [
        ListEntry(type="url-prefix", value="ftp://files.example/x", category="piracy")
    ]
    plain = _list("odd", sorted(entries, key=ListEntry.sort_key))
    packed = _indexed_copy(plain, tmp_path)
    with pytest.raises(FormatError) as expected:
        ListIndex([plain])
    with pytest.raises(FormatError) as got:
        ListIndex([packed])
    assert str(got.value) == str(expected.value)


class _CountingSource:
    """A cache source that counts how often the newest version is loaded."""

    def __init__(self, cache: Path, at: dt.datetime) -> None:
        self.inner = CacheSource(cache, at)
        self.newest_loads = 0

    def load_version(self, name: str, version: int) -> CachedList:
        return self.inner.load_version(name, version)

    def newest_version(self, name: str) -> int:
        return self.inner.newest_version(name)

    def load_newest(self, name: str) -> CachedList:
        self.newest_loads += 1
        return self.inner.load_newest(name)


def test_the_claimed_version_is_loaded_once_when_it_is_the_newest(
    world: Association, lists: tuple[list[ListEntry], list[ListEntry]]
) -> None:
    entries = [ManifestEntry(id="r0", sha256=content(0)), ManifestEntry(id="r1", sha256=content(1))]
    cached = CacheSource(world.cache, AT).load_version("piracy", 1)
    claim = Exclusion(
        name="piracy", version=1, digest=cached.digest, signers=cached.signers,
        matched={}, removed=0, applied="2026-07-01T00:00:00Z",
    )  # fmt: skip
    source = _CountingSource(world.cache, AT)
    audit = audit_lists([claim], world.store, entries, source, at=AT)
    assert source.newest_loads == 0 and audit.violation_count == 1
    # A later version is loaded, and what is only on it is newly listed.
    world.publish("piracy", [*lists[0], ListEntry(type="sha256", value=content(1),
                                                   category="piracy")],
                  at=T0 + dt.timedelta(hours=1))  # fmt: skip
    world.fetch(at=LATER)
    source = _CountingSource(world.cache, LATER)
    audit = audit_lists([claim], world.store, entries, source, at=LATER)
    assert source.newest_loads == 1
    assert (audit.violation_count, audit.newly_listed_count) == (1, 1)


def _claims(source: CacheSource) -> list[Exclusion]:
    """Claims that v1 of both lists was applied, citing their digests."""
    claims = []
    for name in ("optout", "piracy"):
        cached = source.load_version(name, 1)
        claims.append(
            Exclusion(
                name=name,
                version=1,
                digest=cached.digest,
                signers=cached.signers,
                matched={},
                removed=0,
                applied="2026-07-01T00:00:00Z",
            )  # fmt: skip
        )
    return claims


class _HeldSource(_CountingSource):
    """A cache source whose lists load only once ``release`` is set (or ``wait`` seconds have
    passed), noting how many manifest entries had been read by then."""

    def __init__(self, cache: Path, read: list[int], wait: float) -> None:
        super().__init__(cache, AT)
        self.release = threading.Event()
        self.read = read
        self.wait = wait
        self.read_when_loaded: list[int] = []

    def load_version(self, name: str, version: int) -> CachedList:
        self.release.wait(self.wait)
        self.read_when_loaded.append(self.read[0])
        return super().load_version(name, version)


def _streamed(entries: list[ManifestEntry], read: list[int], source: _HeldSource) -> EntryBlocks:
    """``entries`` in blocks of 50, counting in ``read`` the entries taken, and releasing
    ``source`` once the last block is taken."""

    def blocks() -> Iterator[list[ManifestEntry]]:
        for start in range(0, len(entries), 50):
            read[0] += len(entries[start : start + 50])
            yield entries[start : start + 50]
        source.release.set()

    return EntryBlocks(blocks())


def test_entries_read_while_the_lists_load_are_matched_as_read(
    world: Association,
    lists: tuple[list[ListEntry], list[ListEntry]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the lists load, every batch read is held in the compact form matching needs
    (digests decoded, ids joined): the findings are those of matching each record itself."""
    urls, contents, texts = make_records(2000, *lists)
    entries = [
        ManifestEntry(id=f"r{n}", sha256=c or content(10**6 + n), url=u, textSha256=t)
        for n, (u, c, t) in enumerate(zip(urls, contents, texts, strict=True))
    ]
    # An id that breaks the id rules (these entries were not read from a manifest) still
    # names its finding as it is.
    listed = 250
    entries[listed] = ManifestEntry(id="odd\nid", sha256=content(300))  # on the piracy list
    monkeypatch.setattr(audit_module, "BATCH_SIZE", 128)
    claims = _claims(CacheSource(world.cache, AT))
    read = [0]
    source = _HeldSource(world.cache, read, wait=30)
    audit = audit_lists(claims, world.store, _streamed(entries, read, source), source, at=AT)
    # The whole manifest was read and held before the lists were there.
    assert source.read_when_loaded[0] == len(entries)
    index = ListIndex([CacheSource(world.cache, AT).load_version(c.name, 1).list for c in claims])
    matches = index.match_records(
        [e.url for e in entries], [e.sha256 for e in entries], [e.textSha256 for e in entries]
    )
    expected = [
        (e.id, index.lists[h.list_number].name, index.entry(h).value)
        for e, m in zip(entries, matches, strict=True)
        for h in m.hits
    ]
    assert ("odd\nid", "piracy", entries[listed].sha256) in expected and len(expected) > 500
    assert [(v.id, v.list, v.entry and v.entry.value) for v in audit.violations] == expected
    assert audit.violation_count == sum(bool(m.hits) for m in matches)
    assert audit.unevaluable == sum(m.unevaluable is not None for m in matches)


@pytest.mark.parametrize("helper", ["looks-up", "fails"])
def test_the_reader_helps_to_match_what_waits_once_it_has_read_all(
    world: Association,
    lists: tuple[list[ListEntry], list[ListEntry]],
    monkeypatch: pytest.MonkeyPatch,
    helper: str,
) -> None:
    """Once the manifest is read, the reading thread looks up batches that wait, from the last,
    while the other thread matches from the first: the findings are those of one thread, in
    manifest order; a batch whose lookup fails on the helper is looked up by the other."""
    urls, contents, texts = make_records(2000, *lists)
    entries = [
        ManifestEntry(id=f"r{n}", sha256=c or content(10**6 + n), url=u, textSha256=t)
        for n, (u, c, t) in enumerate(zip(urls, contents, texts, strict=True))
    ]
    monkeypatch.setattr(audit_module, "BATCH_SIZE", 128)
    claims = _claims(CacheSource(world.cache, AT))
    expected = audit_lists(claims, world.store, entries, CacheSource(world.cache, AT), at=AT)
    assert expected.violation_count > 500
    reading_thread = threading.current_thread()
    looked_up_by: list[str] = []
    look_up = audit_module._look_up

    def spied(batch: Any, matched: Any) -> Any:
        if threading.current_thread() is reading_thread:
            looked_up_by.append("reader")
            if helper == "fails":
                raise RuntimeError("the helper's lookup broke")
        else:
            looked_up_by.append("matcher")
            time.sleep(0.02)  # the reader gets to help
        return look_up(batch, matched)

    monkeypatch.setattr(audit_module, "_look_up", spied)
    read = [0]
    source = _HeldSource(world.cache, read, wait=30)
    audit = audit_lists(claims, world.store, _streamed(entries, read, source), source, at=AT)
    assert source.read_when_loaded[0] == len(entries)
    assert audit.violations == expected.violations
    assert audit.violation_count == expected.violation_count
    assert audit.checks == expected.checks
    batches = len(entries) // 100  # blocks of 50 gathered into batches of at least 64
    if helper == "looks-up":
        assert 0 < looked_up_by.count("reader") < batches
        assert len(looked_up_by) == batches  # each batch looked up once
    else:  # the helper stops at its first failure; that batch is looked up by the matcher
        assert looked_up_by.count("reader") == 1
        assert len(looked_up_by) == batches + 1


def test_what_is_read_while_the_lists_load_is_bounded(
    world: Association, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read-ahead stops at READ_AHEAD_BYTES: a manifest longer than that waits for the lists
    instead of being held whole."""
    entries = [ManifestEntry(id=f"r{n}", sha256=content(n)) for n in range(1000)]
    claims = _claims(CacheSource(world.cache, AT))
    monkeypatch.setattr(audit_module, "BATCH_SIZE", 128)
    expected = audit_lists(claims, world.store, entries, CacheSource(world.cache, AT), at=AT)
    assert expected.violation_count >= len(range(0, 1000, 3))
    for limit, held in ((1, 100), (10**9, 1000)):
        monkeypatch.setattr(audit_module, "READ_AHEAD_BYTES", limit)
        read = [0]
        source = _HeldSource(world.cache, read, wait=0.5)
        audit = audit_lists(claims, world.store, _streamed(entries, read, source), source, at=AT)
        # Blocks of 50 gathered into batches of at least 64: the first batch is 100 entries.
        assert source.read_when_loaded[0] == held
        assert audit.violations == expected.violations


class _BrokenSource(_CountingSource):
    """A cache source that fails as no list source should (not a ProvenanceError)."""

    def load_version(self, name: str, version: int) -> CachedList:
        raise RuntimeError("the source broke")


def test_a_failure_on_either_side_ends_the_audit(
    world: Association, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest that fails while read, or lists that fail to load while the reader waits for
    room, end the audit with that error (neither thread waits for the other forever)."""
    entries = [ManifestEntry(id=f"r{n}", sha256=content(n)) for n in range(1000)]
    claims = _claims(CacheSource(world.cache, AT))
    monkeypatch.setattr(audit_module, "BATCH_SIZE", 128)
    monkeypatch.setattr(audit_module, "READ_AHEAD_BYTES", 1)  # the reader waits for room

    def failing() -> Iterator[list[ManifestEntry]]:
        yield from (entries[n : n + 50] for n in range(0, 500, 50))
        raise FormatError("m.jsonl:501: entries are not ordered by (sha256, id)")

    source = CacheSource(world.cache, AT)
    with pytest.raises(FormatError, match="m.jsonl:501"):
        audit_lists(claims, world.store, EntryBlocks(failing()), source, at=AT)
    read = [0]
    blocks = _streamed(entries, read, _HeldSource(world.cache, read, wait=0))
    broken = _BrokenSource(world.cache, AT)
    with pytest.raises(RuntimeError, match="the source broke"):
        audit_lists(claims, world.store, blocks, broken, at=AT)
    assert read[0] < len(entries)  # the reader stopped
