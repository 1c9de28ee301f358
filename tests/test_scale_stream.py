"""Streaming the sharded build: shards planned as the folders are walked.

The ordered walk (``manifest.walk_files_in_order``) lists what the plain walk lists, in the same
(id) order and with the same counts and errors, on trees whose ids do not sort as their folders
do; the shards cut from it are the plain walk's cut; a build from a stream of shards gives the
bytes of a build from their list, also when the stream crosses the fast path's bounds part way
(the runs held so far are spilled); the Ray executor takes items from an iterator only as it can
start them; a problem the walk finds late wins over a task's failure, as where the walk comes
first; and the compact form of held results gives back the entries.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance import manifest, sharded
from provenance.errors import FormatError, InputError, ProvenanceError, UnsafePathError
from provenance.executors import make_executor
from tests import scale_support
from tests.test_scale import executor_name  # noqa: F401  (the fixture: local, ray)
from tests.test_scale_held import _files, _texts, fails_on_both


def _tree(root: Path) -> Path:
    """Names that sort differently as ids than folder by folder: ``a`` (a folder) against the
    files ``a-b``, ``a.txt``, ``a0`` and ``a`` + a slash's neighbours, nested folders, an empty
    folder, a folder and a file that are one name's prefix of another, non-ASCII NFC names."""
    files = [
        "a/x", "a/y/z", "a/y-z", "a/y0", "a-b", "a.txt", "a0", "a+", "a~", "b", "ba/c", "b-a/c",
        "c/d/e/f/g", "c/d/e/f.txt", "c/d/e-f", "c/d/ef", "c/d.e", "c/\u00e9t\u00e9/x",
        "c/ete", "c/z\u00e9", "Z", "_", "0", "sub dir/with space", "x/.hidden", "x/~", "x/.",
    ]  # fmt: skip
    for name in files:
        if name.endswith("/."):
            continue
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name}\n")
    (root / "empty" / "deeper").mkdir(parents=True)
    (root / "c" / "d" / "link").symlink_to(root / "a.txt")  # skipped, counted
    (root / "c" / "out").symlink_to("/etc/hostname")  # skipped, counted as outside
    (root / "ignored").mkdir()
    (root / "ignored" / "f").write_text("left out\n")
    (root / "c" / "d" / "skip.tmp").write_text("left out\n")
    return root


def _ordered(root: Path, **options: Any) -> list[manifest.FileRef]:
    return list(itertools.chain.from_iterable(manifest.walk_files_in_order(root, **options)))


@pytest.mark.parametrize("stat_files", [0, 5, 10_000])
def test_the_ordered_walk_lists_what_the_walk_lists(tmp_path: Path, stat_files: int) -> None:
    root = _tree(tmp_path / "tree")
    ignore = manifest.exclusion_matcher(["ignored/", "*.tmp"])
    assert ignore is not None
    exclude = {os.path.realpath(root / "b")}  # an output written inside the root
    found: dict[str, Any] = {}
    for name, walk in (("plain", manifest.walk_files), ("ordered", _ordered)):
        stats = manifest.WalkStats()
        refs = walk(root, exclude=exclude, ignore=ignore, stats=stats, stat_files=stat_files)
        found[name] = ([(r.id, r.path) for r in refs], stats, [r.size for r in refs])
    assert found["ordered"][:2] == found["plain"][:2]
    ids = [i for i, _ in found["plain"][0]]
    assert ids == sorted(ids) and "a/x" in ids and "b" not in ids and "c/d/skip.tmp" not in ids
    assert found["plain"][1] == manifest.WalkStats(2, 1, 1, 1)
    # Only the first files listed are stat'ed (by either walk, though not the same ones; a file
    # left out may have been one of them).
    sizes = found["ordered"][2]
    assert min(stat_files, 1) <= len(sizes) - sizes.count(-1) <= stat_files
    if stat_files >= len(sizes):
        assert found["ordered"][2] == found["plain"][2]


def test_the_ordered_walk_yields_before_it_lists_everything(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        (root / folder / "f").write_text(folder)
    runs = manifest.walk_files_in_order(root)
    assert [r.id for r in next(runs)] == ["a/f"]
    # A folder made now, after "a" but before "b", is listed: "b" is listed only now.
    (root / "b" / "g").write_text("late")
    assert [r.id for run in runs for r in run] == ["b/f", "b/g"]


@pytest.mark.parametrize(
    "make",
    [
        lambda root: os.mkfifo(root / "c" / "d" / "pipe"),
        lambda root: (root / "c" / "\u0065\u0301te").write_text("x"),  # NFD
        lambda root: (root / "c" / "d" / "evil").symlink_to("/etc"),
        lambda root: (root / "x" / "bad\x1bname").write_text("x"),
    ],
)
def test_the_ordered_walk_fails_as_the_walk_fails(tmp_path: Path, make: Any) -> None:
    root = _tree(tmp_path / "tree")
    (root / "c" / "out").unlink()  # the one problem is the one made
    make(root)
    messages = []
    for walk in (manifest.walk_files, _ordered):
        with pytest.raises(UnsafePathError) as info:
            walk(root, symlinks="error")
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    with pytest.raises(InputError, match="no such directory"):
        _ordered(tmp_path / "missing")


@pytest.mark.parametrize("sizes", [False, True])
def test_shards_are_cut_from_the_walk_across_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sizes: bool
) -> None:
    root = _tree(tmp_path / "tree")
    monkeypatch.setattr(sharded, "_FILES_PER_SHARD", 3)  # boundaries inside folders
    monkeypatch.setattr(sharded, "_STAT_SAMPLE", 4)
    files = manifest.walk_files(root)
    stats = manifest.WalkStats()
    shards = list(sharded.iter_shards([root, root / "a"], sizes=sizes, stats=stats))
    expected = [files[i : i + 3] for i in range(0, len(files), 3)]
    inner = manifest.walk_files(root / "a")
    expected += [inner[i : i + 3] for i in range(0, len(inner), 3)]
    assert [s.files for s in shards] == [tuple((r.id, r.path) for r in c) for c in expected]
    first = expected[0]
    assert shards[0].name == f"{root} ({first[0].id} .. {first[-1].id})"
    assert shards[-1].name == f"{root / 'a'}/y0"
    assert stats == manifest.WalkStats(2, 1)  # counted once (the sample's walk goes on)
    known = [s.size for s in shards]
    assert (min(known) > 0) if sizes else (-1 in known)


def test_a_stream_of_shards_builds_the_list_s_bytes(
    executor_name: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _texts(tmp_path / "data", 300, seed=5)
    _tree(data / "tree")
    monkeypatch.setattr(sharded, "_FILES_PER_SHARD", 64)
    shards = sharded.plan_shards([data])
    assert len(shards) > 4
    for fingerprints in (False, True):
        for count in (None, 3):
            # The fast path's bound crossed by the fourth shard of the stream: three runs held,
            # then spilled by the driver; and not crossed at all.
            for bound in (200, 10_000):
                outputs = {}
                for kind in ("list", "stream"):
                    out = tmp_path / f"{kind}-{bound}" / ("m.jsonl" if count is None else "m")
                    out.parent.mkdir()
                    given = shards if kind == "list" else iter(shards)
                    with monkeypatch.context() as patch:
                        patch.setattr(sharded, "HOLD_ENTRIES", bound)
                        with make_executor(executor_name, workers=2) as runner:
                            sharded.build(given, out, executor=runner, partition_count=count,
                                          check_ids=False, fingerprints=fingerprints)  # fmt: skip
                    outputs[kind] = _files(out)
                    assert (
                        sorted(os.listdir(out.parent))
                        == [out.name, out.name + ".fp"][: 1 + (fingerprints and count is None)]
                    )
                assert outputs["stream"] == outputs["list"]
                shutil.rmtree(tmp_path / f"list-{bound}")
                shutil.rmtree(tmp_path / f"stream-{bound}")


def test_a_stream_that_crosses_the_bound_spills_what_it_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _texts(tmp_path / "data", 200, seed=6)
    monkeypatch.setattr(sharded, "_FILES_PER_SHARD", 64)
    monkeypatch.setattr(sharded, "HOLD_ENTRIES", 130)
    shards = sharded.plan_shards([data])
    stream = sharded._TaskStream(iter(shards), str(tmp_path), 1, False, False)
    assert [t.hold for t in stream] == [True, True, False, False]
    assert not stream.held_all
    spilled: list[int] = []
    original = sharded._spill
    monkeypatch.setattr(sharded, "_spill", lambda task, *a: (spilled.append(task.index),
                                                             original(task, *a)))  # fmt: skip
    with make_executor("local", workers=2) as runner:
        sharded.build(iter(shards), tmp_path / "m.jsonl", executor=runner, partition_count=None,
                      check_ids=False)  # fmt: skip
    assert spilled == [0, 1]  # by this process: the tasks of shards 2 and 3 spilled their own
    one = sharded.build_dataset([data], tmp_path / "one.jsonl", fingerprints=False)
    assert (tmp_path / "m.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert one.entries == 200


def test_ray_takes_items_as_it_can_start_them(ray_cluster: str) -> None:
    taken: list[int] = []

    def items() -> Iterator[int]:
        for i in range(40):
            taken.append(i)
            yield i

    with make_executor("ray", workers=2) as runner:
        results = runner.map(scale_support.square, items(), names=lambda i: f"item {i}")
        assert next(results) == 0
        assert len(taken) <= 2 * 2 + 1  # a window of two tasks a worker, not all 40
        assert list(results) == [i * i for i in range(1, 40)]
    with make_executor("local", workers=2) as runner:  # which takes them all first
        taken.clear()
        assert next(runner.map(scale_support.square, items(), names=str)) == 0
        assert len(taken) == 40


def test_an_iterator_s_error_ends_the_map_as_it_is(
    executor_name: str,  # noqa: F811
) -> None:
    def items() -> Iterator[int]:
        yield from range(6)
        raise UnsafePathError("the walk found something")

    with make_executor(executor_name, workers=2) as runner, pytest.raises(UnsafePathError) as info:
        list(runner.map(scale_support.square, items(), names=lambda i: f"item {i}"))
    assert str(info.value) == "the walk found something"
    with make_executor(executor_name, workers=2) as runner, pytest.raises(FormatError) as failed:
        list(runner.map(scale_support.fail_on_negative, iter([1, -2, 3]), names=lambda i: f"#{i}"))
    assert str(failed.value) == "#-2: negative value -2"


def test_a_problem_the_walk_finds_late_wins_over_a_failed_task(
    executor_name: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _texts(tmp_path / "data", 1300, seed=7)
    (data / "zz").mkdir()
    os.mkfifo(data / "zz" / "pipe")  # the last folder walked
    # Shard 1's worker dies while the walk is far from the pipe (21 shards before it).
    monkeypatch.setattr(sharded, "_FILES_PER_SHARD", 64)
    monkeypatch.setattr(sharded, "_hash_shard", scale_support.die_on_shard_one)
    messages = fails_on_both(executor_name, data, tmp_path)
    assert messages[0] == messages[1] == (UnsafePathError, f"{data / 'zz' / 'pipe'}: "
                                          f"{manifest.walk.NOT_REGULAR}")  # fmt: skip


def test_held_runs_give_back_their_entries() -> None:
    files = tuple((f"f{i}", f"/data/f{i}") for i in range(6))
    shard = sharded.Shard(name="s", files=files)
    entries = sorted(
        (
            manifest.ManifestEntry(
                id=entry_id,
                sha256=f"{(i * 7919) % 97:064x}",
                size=i * 1000 if i else 0,
                textSha256=None if i % 2 else f"{i + 1:064x}",
            )
            for i, (entry_id, _) in enumerate(files)
        ),
        key=manifest.ManifestEntry.sort_key,
    )
    for run in (entries, [e for e in entries if e.textSha256 is None]):
        held = sharded._hold_run(shard, run, None)
        assert len(held.digests) == 32 * len(run) and (held.texts is None) == (run != entries)
        done = sharded._ShardDone((), 0, held)
        assert sharded._held_run(done, shard, None) == run
    cut = sharded._ShardDone((), 0, sharded._HeldRun(held.order, held.digests[:-32], held.sizes))
    with pytest.raises(ProvenanceError, match="s: a task's entries are not whole"):
        sharded._held_run(cut, shard, None)


def test_a_missing_input_is_refused_before_any_shard(tmp_path: Path) -> None:
    data = _texts(tmp_path / "data", 10, seed=8)
    with pytest.raises(InputError, match="missing: no such file or directory"):
        sharded.iter_shards([data, tmp_path / "missing"])  # not iterated: refused at once
    assert len(list(sharded.iter_shards([data]))) == 1
