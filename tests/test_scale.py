"""Web scale (DESIGN §8): executors, several inputs, partitioned manifests.

The same corpus through the local executor and Ray gives the same bytes; single-file and
partitioned manifests of the same data have the same root whatever the partition count; verify
and lookup give the same findings on both forms; a failing shard fails the command, named, and
leaves nothing behind. The Ray tests share one local Ray instance (``ray_cluster``).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from exclusion_support import NOW as LISTS_NOW

from provenance import manifest, merkle, partitions, sharded
from provenance.errors import DigestMismatchError, FormatError, InputError
from provenance.executors import LocalExecutor, ShardFailedError, make_executor
from provenance.manifest import _leaves, _system
from tests import scale_support
from tests.conftest import NOW, SAMPLES, one_error_line, run_cli

Cli = Callable[..., subprocess.CompletedProcess[str]]

NAMES = [f"shard-{i}" for i in range(12)]


@pytest.fixture(params=["local", "ray"])
def executor_name(request: pytest.FixtureRequest) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return str(request.param)


# ----------------------------------------------------------------------------------------------
# Executors


def test_map_streams_results_in_input_order(executor_name: str) -> None:
    items = list(range(12))
    with make_executor(executor_name, workers=2) as runner:
        assert list(runner.map(scale_support.square, items, names=NAMES)) == [i * i for i in items]
        assert list(runner.map(scale_support.square, [], names=[])) == []


def _sizes(folder: Path) -> dict[str, int]:
    return {name: (folder / name).stat().st_size for name in os.listdir(folder)}


def _assert_no_more_writes(folder: Path, written: dict[str, int]) -> None:
    """No task writes into ``folder`` any more (each wrote every 5 ms while it ran)."""
    time.sleep(0.3)
    assert _sizes(folder) == written


def _assert_killed(pids: list[int]) -> None:
    """Each process is gone or a zombie (a killed one may take the kernel a moment to reap)."""
    for pid in pids:
        status = Path(f"/proc/{pid}/status")
        deadline = time.monotonic() + 10
        while status.exists() and "\nState:\tZ" not in status.read_text():
            assert time.monotonic() < deadline, f"{pid} still runs"
            time.sleep(0.05)


def _assert_stopped_at_once(folder: Path, started: float) -> None:
    """The map returned within 30 s of ``started``, and the tasks that wrote into ``folder``
    were killed before they ended (none wrote its final "!")."""
    assert time.monotonic() - started < 30
    written = _sizes(folder)
    assert written
    _assert_no_more_writes(folder, written)
    _assert_killed([int(name.split("-")[0]) for name in written])
    assert not any((folder / name).read_bytes().endswith(b"!") for name in written)


def test_a_failed_map_returns_only_once_its_other_tasks_have_ended(
    executor_name: str, tmp_path: Path
) -> None:
    # A task still running after the map failed could write into what the caller removes next
    # (a build's temporary files: seen once as a run folder left behind). The local executor
    # stops its workers; Ray's tasks are left to end (cancelling one at the moment it ends can
    # abort the driver: ray_executor._end_tasks), so each other task wrote its final "!".
    items = [(i, str(tmp_path), 1.5) for i in range(3)]
    with make_executor(executor_name, workers=2) as runner, pytest.raises(FormatError):
        list(runner.map(scale_support.fail_first_while_others_run, items, names=NAMES[:3]))
    written = _sizes(tmp_path)
    assert written  # another task ran
    _assert_no_more_writes(tmp_path, written)
    if executor_name == "ray":
        assert all((tmp_path / name).read_bytes().endswith(b"!") for name in written)


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit])
def test_an_interrupted_ray_map_stops_its_tasks_at_once(
    ray_cluster: str, tmp_path: Path, interruption: type[BaseException]
) -> None:
    # Ctrl-C (or SIGTERM, which ray.init's handler turns into SystemExit) while the items are
    # made: the tasks in flight are cancelled, not waited for.
    def items() -> Iterator[tuple[int, str, float]]:
        yield from [(1, str(tmp_path), 60.0), (2, str(tmp_path), 60.0)]
        deadline = time.monotonic() + 20
        while not os.listdir(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.01)
        raise interruption

    started = time.monotonic()
    with make_executor("ray", workers=2) as runner, pytest.raises(interruption):
        list(runner.map(scale_support.fail_first_while_others_run, items(), names=NAMES[1:]))
    _assert_stopped_at_once(tmp_path, started)


def test_a_ctrl_c_while_a_failed_ray_map_waits_stops_its_tasks_at_once(
    ray_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A failed map lets its other tasks end (up to a minute); Ctrl-C during that wait cancels
    # them then, instead of leaving them to run on. The wait is interrupted as it starts.
    import ray

    from provenance.executors import ray_executor

    real_wait = ray.wait

    def wait(refs: list[Any], **options: Any) -> Any:
        if options.get("timeout") == ray_executor._END_WAIT:
            raise KeyboardInterrupt
        return real_wait(refs, **options)

    monkeypatch.setattr(ray, "wait", wait)
    items = [(i, str(tmp_path), 60.0) for i in range(3)]
    started = time.monotonic()
    with make_executor("ray", workers=2) as runner, pytest.raises(KeyboardInterrupt):
        list(runner.map(scale_support.fail_first_while_others_run, items, names=NAMES[:3]))
    _assert_stopped_at_once(tmp_path, started)


def test_ray_tasks_still_running_after_their_cancellation_are_reported(
    ray_cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cancelled task that has not ended when the map gives up waiting for it may still
    # write where the caller cleans up: said, not passed over in silence. (Cancelling is made
    # to do nothing here, and the wait short; the tasks then end by themselves.)
    import ray

    from provenance.errors import ProvenanceWarning
    from provenance.executors import ray_executor

    monkeypatch.setattr(ray_executor, "_END_WAIT", 0.1)
    monkeypatch.setattr(ray_executor, "_CANCEL_WAIT", 0.1)
    monkeypatch.setattr(ray, "cancel", lambda ref, **options: None)
    items = [(i, str(tmp_path), 3.0) for i in range(3)]
    warned = pytest.warns(ProvenanceWarning, match=r"^[12] Ray task\(s\) still ran 0 s after")
    with make_executor("ray", workers=2) as runner, warned, pytest.raises(FormatError):
        list(runner.map(scale_support.fail_first_while_others_run, items, names=NAMES[:3]))
    deadline = time.monotonic() + 30  # both other tasks end by themselves
    while not (
        len(list(tmp_path.iterdir())) == 2
        and all(p.read_bytes().endswith(b"!") for p in tmp_path.iterdir())
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_failing_task_names_its_shard_and_keeps_its_type(executor_name: str) -> None:
    items = [0, 1, 2, 3, -4, 5, 6]
    with make_executor(executor_name, workers=2) as runner, pytest.raises(FormatError) as info:
        list(runner.map(scale_support.fail_on_negative, items, names=NAMES[: len(items)]))
    assert str(info.value) == "shard-4: negative value -4"


def test_tasks_run_at_the_drivers_niceness(executor_name: str) -> None:
    # Ray's default (niceness 15) starves its tasks behind every other process on a busy
    # machine; both executors' tasks run as the driver does.
    with make_executor(executor_name, workers=2) as runner:
        found = list(runner.map(scale_support.niceness, list(range(4)), names=NAMES[:4]))
    assert found == [os.nice(0)] * 4


def test_no_worker_is_forked_from_a_driver_running_ray(ray_cluster: str, tmp_path: Path) -> None:
    # Ray's own threads may hold a lock at the moment of a fork, and the child then hangs
    # before it runs its task (seen in CI: a local pool worker that never answered). With Ray
    # initialised in this process, pool workers come from a clean server process and a big
    # file's Merkle tree is computed here, not in a forked child.
    assert _system.pool_context().get_start_method() == "forkserver"
    with LocalExecutor(2) as runner:
        parents = set(runner.map(scale_support.parent_pid, list(range(4)), names=NAMES[:4]))
    assert parents and os.getpid() not in parents
    big = tmp_path / "big.jsonl"
    big.write_bytes(b"{}\n" * (_leaves.MERKLE_PROCESS_BYTES // 3 + 1))
    with big.open("rb") as file:
        assert type(_leaves.leaf_tree(file.fileno(), big.stat().st_size, follow=False)) is (
            _leaves.LeafTree
        )


def test_workers_are_forked_where_no_ray_runs() -> None:
    # The same calls in an interpreter that never started Ray: forked workers and child.
    code = (
        "import os\n"
        "from provenance.manifest import _system, _leaves\n"
        "assert _system.pool_context().get_start_method() == 'fork'\n"
        "r, w = os.pipe()\n"
        "tree = _leaves.leaf_tree(r, _leaves.MERKLE_PROCESS_BYTES, follow=True)\n"
        "assert type(tree) is _leaves.LeafTreeProcess\n"
        "tree.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_killed_worker_fails_naming_its_shard(executor_name: str) -> None:
    items = [0, 1, 2, -3, 4, 5]
    with make_executor(executor_name, workers=2) as runner:
        with pytest.raises(ShardFailedError) as info:
            list(runner.map(scale_support.die_on_negative, items, names=NAMES[: len(items)]))
        assert str(info.value).startswith("shard-3: the ")
        assert "died" in str(info.value)
        # The executor is still usable afterwards (a new pool; Ray replaces the worker).
        assert list(runner.map(scale_support.square, [3], names=["again"])) == [9]


def test_a_pool_broken_before_a_submit_names_the_dead_workers_shard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A worker may die between one result and the next submit: the pool then refuses the
    # submit itself (seen in CI once, as a raw BrokenProcessPool). Here the pool's workers are
    # killed at the third submit, once the pool knows, so that the submit meets a broken pool.
    import signal
    import time
    from concurrent.futures import ProcessPoolExecutor

    from provenance.executors import local

    class KilledAtThirdSubmit(ProcessPoolExecutor):
        submits = 0

        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            KilledAtThirdSubmit.submits += 1
            if KilledAtThirdSubmit.submits == 3:
                for pid in list(self._processes):  # type: ignore[attr-defined]
                    os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 30
                while not self._broken and time.monotonic() < deadline:  # type: ignore[attr-defined]
                    time.sleep(0.01)
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(local, "_IN_FLIGHT_PER_WORKER", 1)
    monkeypatch.setattr(local, "ProcessPoolExecutor", KilledAtThirdSubmit)
    with pytest.raises(ShardFailedError) as info:
        list(LocalExecutor(2).map(scale_support.slow_square, list(range(6)), names=NAMES[:6]))
    assert re.fullmatch(
        r"shard-\d: the worker process running this shard died \(.*\)", str(info.value)
    )
    assert KilledAtThirdSubmit.submits == 3


def test_local_executor_with_one_worker_runs_in_process() -> None:
    runner = LocalExecutor(1)
    assert list(runner.map(scale_support.square, [2, 3], names=["a", "b"])) == [4, 9]
    with pytest.raises(FormatError, match="^b: negative value -1$"):
        list(runner.map(scale_support.fail_on_negative, [1, -1], names=["a", "b"]))


# ----------------------------------------------------------------------------------------------
# The Merkle subtrees of a part


def test_offset_tree_blocks_rebuild_the_whole_root() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(70)]
    for offset in range(0, 37):
        for count in (0, 1, 2, 3, 5, 8, 13, 33):
            tree = partitions.OffsetTree(offset)
            # In uneven pieces, as a part is written block by block.
            cut = offset + min(3, count)
            tree.extend(leaves[offset:cut])
            tree.extend(leaves[cut : offset + count])
            blocks = tree.blocks()
            assert [h for h, _ in blocks] == partitions.block_heights(offset, count)
            whole = merkle.TreeBuilder()
            whole.extend(leaves[:offset])
            for height, digest in blocks:
                whole.append_subtree(height, digest)
            assert whole.root() == merkle.root(leaves[: offset + count])


def test_append_subtree_refuses_an_unaligned_subtree() -> None:
    tree = merkle.TreeBuilder()
    tree.add(merkle.leaf_hash(b"a"))
    with pytest.raises(ValueError, match="cannot follow 1 leaves"):
        tree.append_subtree(1, b"\x00" * 32)


def test_merge_runs_is_heapq_merge_of_the_runs() -> None:
    # The build's merge (batches sorted at C speed) against heapq.merge, over runs read in
    # chunks of uneven sizes, some sharing digests (the same content under several ids),
    # some empty or of one entry.
    rng = random.Random(5)
    digests = [hashlib.sha256(bytes([i])).hexdigest() for i in range(40)]
    for trial in range(60):
        pool = [
            manifest.ManifestEntry(id=f"r{n}", sha256=rng.choice(digests))
            for n in range(rng.randrange(0, 300))
        ]
        runs: list[list[manifest.ManifestEntry]] = [[] for _ in range(rng.randrange(1, 9))]
        for entry in pool:
            rng.choice(runs).append(entry)
        for run in runs:
            run.sort(key=manifest.ManifestEntry.sort_key)

        def chunked(run: list[manifest.ManifestEntry]) -> Iterator[list[manifest.ManifestEntry]]:
            start = 0
            while start < len(run):
                size = rng.randrange(1, 40)
                yield run[start : start + size]
                start += size

        expected = list(heapq.merge(*runs, key=manifest.ManifestEntry.sort_key))
        batches = list(sharded.merge_runs([chunked(run) for run in runs]))
        assert [e for batch in batches for e in batch] == expected, trial
        assert all(batches)


# ----------------------------------------------------------------------------------------------
# Corpora


def _records(path: Path, prefix: str, count: int, seed: int) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            # Some texts repeat, across files too: equal digests under different ids.
            text = f"text {rng.randrange(count)}"
            handle.write(json.dumps({"id": f"{prefix}-{i}", "text": text}) + "\n")
    return path


def _folder(root: Path, files: int) -> Path:
    rng = random.Random(7)
    for i in range(files):
        sub = root / f"d{i % 5}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05d}.txt").write_bytes(b"x" * rng.randrange(0, 300) + str(i % 400).encode())
    return root


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crawl")
    for k in range(4):
        _records(root / f"part-{k}.jsonl", f"r{k}", 700, seed=k)
    _folder(root / "files", 1300)
    return root


def _build(inputs: list[str], output: Path, **options: object) -> manifest.ManifestSummary:
    return sharded.build_dataset(inputs, output, fingerprints=False, **options)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# Several inputs, partitions, same root


@pytest.mark.parametrize("count", [1, 3, 16])
def test_partitioned_manifest_is_the_single_file_cut_by_prefix(
    crawl: Path, tmp_path: Path, count: int
) -> None:
    single = _build([str(crawl / "part-*.jsonl")], tmp_path / "single.jsonl")
    out = tmp_path / "parted"
    summary = _build(
        [str(crawl / "part-*.jsonl")], out, partitioned=True, partition_count=count, workers=2
    )
    assert summary.root == single.root
    assert (
        (summary.entries, summary.total_bytes)
        == (single.entries, single.total_bytes)
        == (
            2800,
            summary.total_bytes,
        )
    )
    names = sorted(os.listdir(out))
    assert names == ["index.json", *(partitions.part_name(k) for k in range(count))]
    joined = b"".join((out / partitions.part_name(k)).read_bytes() for k in range(count))
    assert joined == (tmp_path / "single.jsonl").read_bytes()
    assert summary.digest == hashlib.sha256((out / "index.json").read_bytes()).hexdigest()
    index = json.loads((out / "index.json").read_text())
    assert index["merkleRoot"] == single.root and index["partitions"] == count
    for k, part in enumerate(index["parts"]):
        lines = (out / part["file"]).read_bytes().splitlines()
        assert part["entries"] == len(lines)
        assert all(partitions.partition_of(json.loads(x)["sha256"], count) == k for x in lines)
    # Read back (manifest show, card build, verify and lookup all read through this).
    loaded = manifest.read_manifest(out)
    assert loaded.summary == summary
    assert manifest.read_manifest(out / "index.json").summary == summary
    # And no temporary files are left beside the output.
    assert sorted(os.listdir(tmp_path)) == ["parted", "single.jsonl"]


def test_sharded_build_equals_the_one_machine_build(
    crawl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One folder through today's builder, and the same folder cut into shards.
    plain = _build([str(crawl / "files")], tmp_path / "plain.jsonl", workers=2)
    monkeypatch.setattr(sharded, "_FILES_PER_SHARD", 512)
    shards = sharded.plan_shards([crawl / "files"])
    assert len(shards) >= 3  # 1300 files in shards of at most 512
    with LocalExecutor(2) as runner:
        cut = sharded.build(shards, tmp_path / "cut.jsonl", executor=runner, partition_count=None)
    assert cut == plain
    assert (tmp_path / "cut.jsonl").read_bytes() == (tmp_path / "plain.jsonl").read_bytes()


def test_merge_reads_smaller_chunks_of_many_runs_with_the_same_result(
    crawl: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With many shards a merge reads each run in smaller chunks (its memory stays near a
    # budget); at the smallest chunk (a few lines each) the bytes are the same.
    single = _build([str(crawl / "part-*.jsonl")], tmp_path / "single.jsonl")
    monkeypatch.setattr(sharded, "_MERGE_CHUNKS_BYTES", 1)
    monkeypatch.setattr(sharded, "_MIN_RUN_CHUNK", 200)
    small = _build([str(crawl / "part-*.jsonl")], tmp_path / "small.jsonl", workers=1)
    assert small == single
    assert (tmp_path / "small.jsonl").read_bytes() == (tmp_path / "single.jsonl").read_bytes()


def test_same_bytes_through_both_executors(ray_cluster: str, crawl: Path, tmp_path: Path) -> None:
    inputs = [str(crawl / "part-*.jsonl"), str(crawl / "files")]
    outputs = {}
    for name in ("local", "ray"):
        out = tmp_path / name
        outputs[name] = _build(inputs, out, partitioned=True, partition_count=3, executor=name)
        _build(inputs, tmp_path / f"{name}.jsonl", executor=name)
    assert outputs["local"] == outputs["ray"]
    for item in ["index.json", *(partitions.part_name(k) for k in range(3))]:
        assert (tmp_path / "local" / item).read_bytes() == (tmp_path / "ray" / item).read_bytes()
    assert (tmp_path / "local.jsonl").read_bytes() == (tmp_path / "ray.jsonl").read_bytes()
    assert manifest.read_manifest(tmp_path / "ray.jsonl").summary.root == outputs["ray"].root


def test_cli_build_on_a_ray_cluster_by_address(
    cli: Cli, ray_cluster: str, crawl: Path, tmp_path: Path
) -> None:
    common = [str(crawl / "part-*.jsonl"), "--no-fingerprints", "--json"]
    local = cli("manifest", "build", *common, "-o", tmp_path / "local.jsonl")
    ray = cli(
        "manifest", "build", *common, "-o", tmp_path / "ray.jsonl",
        "--executor", "ray", "--ray-address", ray_cluster,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr
    assert ray.returncode == 0, ray.stderr
    assert json.loads(ray.stdout)["merkleRoot"] == json.loads(local.stdout)["merkleRoot"]
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()


def test_a_duplicate_id_across_inputs_names_both(crawl: Path, tmp_path: Path) -> None:
    other = tmp_path / "in" / "again.jsonl"
    other.parent.mkdir()
    other.write_text(json.dumps({"id": "r2-5", "text": "another text"}) + "\n")
    out = tmp_path / "out"
    with pytest.raises(InputError) as info:
        _build([str(crawl / "part-2.jsonl"), str(other)], out, partitioned=True, workers=2)
    assert str(info.value).endswith(
        f"id 'r2-5' appears in two inputs: {crawl / 'part-2.jsonl'} and {other}"
    )
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_globs_that_match_nothing_or_inputs_given_twice_are_refused(
    crawl: Path, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="matches no file"):
        _build([str(crawl / "*.parquet")], tmp_path / "m.jsonl")
    with pytest.raises(InputError, match="given twice"):
        _build([str(crawl / "part-*.jsonl"), str(crawl / "part-1.jsonl")], tmp_path / "m.jsonl")
    assert os.listdir(tmp_path) == []


def test_unreadable_shard_fails_naming_it_and_leaves_nothing(
    executor_name: str, crawl: Path, tmp_path: Path
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for k in range(3):
        shutil.copy(crawl / f"part-{k}.jsonl", inputs / f"part-{k}.jsonl")
    with (inputs / "part-1.jsonl").open("a") as handle:
        handle.write('{"id": "broken", "text": \n')
    for output, partitioned in ((tmp_path / "out", True), (tmp_path / "m.jsonl", False)):
        with pytest.raises(FormatError) as info:
            _build(
                [str(inputs / "*.jsonl")], output, partitioned=partitioned, executor=executor_name
            )
        assert str(info.value).startswith(f"{inputs / 'part-1.jsonl'}:701: malformed JSON")
    assert os.listdir(tmp_path) == ["in"]


def test_cli_killed_or_failing_shard_exits_with_one_error_line(
    cli: Cli, crawl: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "a"}\n{"id": "x", "text": "b"}\n')
    result = cli(
        "manifest", "build", crawl / "part-0.jsonl", bad, "-o", tmp_path / "out/",
        "--no-fingerprints", "--workers", "2",
    )  # fmt: skip
    assert result.returncode == 2
    assert str(bad) in one_error_line(result)
    assert sorted(os.listdir(tmp_path)) == ["bad.jsonl"]


# ----------------------------------------------------------------------------------------------
# Merging between the forms, and reading a partitioned manifest


def test_merge_turns_one_form_into_the_other(cli: Cli, crawl: Path, tmp_path: Path) -> None:
    single = tmp_path / "m.jsonl"
    _build([str(crawl / "part-*.jsonl")], single)
    steps = [
        ("manifest", "merge", single, "-o", f"{tmp_path / 'p5'}/", "--partitions", "5"),
        ("manifest", "merge", tmp_path / "p5", "-o", tmp_path / "back.jsonl"),
        ("manifest", "merge", tmp_path / "p5" / "index.json", "-o", f"{tmp_path / 'p16'}/"),
    ]
    for step in steps:
        result = cli(*step, "--json")
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "back.jsonl").read_bytes() == single.read_bytes()
    roots = {manifest.read_manifest(p).summary.root for p in (single, tmp_path / "p5")}
    assert roots == {manifest.read_manifest(tmp_path / "p16").summary.root}
    assert len(os.listdir(tmp_path / "p16")) == 17
    shown = cli("manifest", "show", tmp_path / "p5", "--json")
    assert json.loads(shown.stdout)["merkleRoot"] == roots.pop()


def test_output_directory_with_other_files_is_refused(crawl: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not part of a partitioned manifest"):
        _build([str(crawl / "part-0.jsonl")], out, partitioned=True)
    assert os.listdir(out) == ["notes.txt"]


@pytest.fixture
def parted(crawl: Path, tmp_path: Path) -> Path:
    out = tmp_path / "parted"
    _build([str(crawl / "part-*.jsonl")], out, partitioned=True, partition_count=3)
    return out


def test_a_changed_part_is_refused(parted: Path) -> None:
    part = parted / partitions.part_name(1)
    lines = part.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:-1]))  # still a valid manifest file, one entry short
    with pytest.raises(DigestMismatchError, match="is not the part the index describes"):
        manifest.read_manifest(parted)


def test_an_entry_in_the_wrong_part_is_refused(parted: Path) -> None:
    first = (parted / partitions.part_name(0)).read_bytes().splitlines(keepends=True)
    second = parted / partitions.part_name(1)
    second.write_bytes(first[-1] + second.read_bytes())
    with pytest.raises(FormatError, match="does not belong to part 1"):
        manifest.read_manifest(parted)


def test_an_index_whose_root_does_not_fit_its_parts_is_refused(parted: Path) -> None:
    index = json.loads((parted / "index.json").read_text())
    index["merkleRoot"] = "0" * 64
    (parted / "index.json").write_text(json.dumps(index))
    with pytest.raises(FormatError, match="merkleRoot is not the root"):
        manifest.read_manifest(parted)


def test_an_id_repeated_across_parts_is_refused(tmp_path: Path) -> None:
    entries = [
        manifest.ManifestEntry(id="same", sha256="00" * 32),
        manifest.ManifestEntry(id="same", sha256="ff" * 32),
    ]
    with pytest.raises(FormatError, match="appears twice"):
        partitions.write_partitioned(entries, tmp_path / "out", partitions=2)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# Cards, verify, lookup and usage on both forms


@pytest.fixture(scope="module")
def both_forms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("forms")
    steps: list[tuple[str | Path, ...]] = [
        ("key", "generate", work / "dev.key"),
        ("trust", "add", work / "trust.json", work / "dev.key.pub", "--name", "Dev",
         "--role", "dataset-publisher"),
        ("manifest", "build", SAMPLES / "data", "-o", work / "single.jsonl", "--no-fingerprints"),
        ("manifest", "build", SAMPLES / "data", "-o", f"{work / 'parted'}/", "--partitions",
         "3", "--no-fingerprints"),
    ]  # fmt: skip
    for name in ("single.jsonl", "parted"):
        steps += [
            ("card", "build", SAMPLES / "card-spec.yaml", "--manifest", work / name, "-o",
             work / f"{name}.card.json", "--now", NOW),
            ("card", "sign", work / f"{name}.card.json", "--key", work / "dev.key", "-o",
             work / f"{name}.signed.json"),
        ]  # fmt: skip
    for step in steps:
        result = run_cli(*step)
        assert result.returncode == 0, result.stderr
    return work


def test_card_of_a_partitioned_manifest_names_its_index(both_forms: Path) -> None:
    card = json.loads((both_forms / "parted.card.json").read_text())
    index = (both_forms / "parted" / "index.json").read_bytes()
    assert card["subject"] == [
        {"name": "index.json", "digest": {"sha256": hashlib.sha256(index).hexdigest()}}
    ]
    single = json.loads((both_forms / "single.jsonl.card.json").read_text())
    assert (
        card["predicate"]["manifest"]["merkleRoot"] == single["predicate"]["manifest"]["merkleRoot"]
    )


def _findings(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Verify's findings, with the manifest's own digest (the file's or the index's) left out."""
    lines = [line for line in result.stdout.splitlines() if line.startswith(("ok", "FAIL"))]
    return [re.sub(r"manifest digest: sha256 [0-9a-f]{64}", "manifest digest", x) for x in lines]


def test_verify_finds_the_same_on_both_forms(cli: Cli, both_forms: Path, tmp_path: Path) -> None:
    runs = {}
    for name in ("single.jsonl", "parted"):
        runs[name] = cli(
            "verify", both_forms / f"{name}.signed.json", "--trust", both_forms / "trust.json",
            "--manifest", both_forms / name, "--data", SAMPLES / "data", "--now", NOW,
        )  # fmt: skip
        assert runs[name].returncode == 0, runs[name].stderr
    assert _findings(runs["single.jsonl"]) == _findings(runs["parted"])
    assert len(_findings(runs["parted"])) >= 4
    # A part changed after the card: verify says no.
    copy = tmp_path / "parted"
    shutil.copytree(both_forms / "parted", copy)
    part = copy / partitions.part_name(2)
    part.write_bytes(part.read_bytes().replace(b'"size":', b'"size":1', 1))
    changed = cli(
        "verify", both_forms / "parted.signed.json", "--trust", both_forms / "trust.json",
        "--manifest", copy, "--now", NOW,
    )  # fmt: skip
    assert changed.returncode != 0


def test_lookup_and_usage_find_the_same_on_both_forms(
    cli: Cli, both_forms: Path, tmp_path: Path
) -> None:
    work = next(iter(sorted((SAMPLES / "data" / "books").iterdir())))
    outside = tmp_path / "outside.txt"
    outside.write_text("not in the dataset\n")
    found = {}
    for name in ("single.jsonl", "parted"):
        card = ["--card", both_forms / f"{name}.signed.json", "--trust", both_forms / "trust.json"]
        looked = cli(
            "lookup", work, outside, "--manifest", both_forms / name, *card,
            "--proof-out", tmp_path / f"proofs-{name}", "--now", NOW, "--json",
        )  # fmt: skip
        assert looked.returncode == 0, looked.stderr
        document = json.loads(looked.stdout)
        usage = cli("report", "usage", "--manifest", both_forms / name, *card, "--json")
        assert usage.returncode == 0, usage.stderr
        usage_doc = json.loads(usage.stdout)
        usage_doc.pop("card")
        found[name] = (
            [(r["status"], r.get("matches")) for r in document["results"]],
            [p["claim"] for p in document["proofs"]],
            usage_doc,
        )
        present = document["proofs"][0]["path"]
        checked = cli("proof", "verify", present, *card, "--now", NOW, "--json")
        assert checked.returncode == 0, checked.stderr
    assert found["single.jsonl"] == found["parted"]
    assert found["parted"][1] == ["present", "absent"]


# ----------------------------------------------------------------------------------------------
# filter over several inputs


@pytest.fixture(scope="module")
def association(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from exclusion_support import Association, entry, sha

    association = Association(tmp_path_factory.mktemp("scale-lists") / "assoc", names=["piracy"])
    association.publish(
        "piracy", [entry("domain", "01cinema.com"), entry("sha256", sha("pirated\n"))]
    )
    association.fetch()
    return association


def _crawl_rows(count: int) -> list[dict[str, str]]:
    hosts = ["news.example", "www.01cinema.com", "not01cinema.com", "cdn.01cinema.com"]
    return [
        {
            "id": f"rec-{i}",
            "url": f"https://{hosts[i % 4 if i % 7 else 0]}/{i}",
            "text": "pirated\n" if i % 11 == 0 else f"text {i}",
        }
        for i in range(count)
    ]


def _write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows), path)
        return path
    if path.suffix == ".csv":
        import csv

        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "url", "text"])
            writer.writeheader()
            writer.writerows(rows)
        return path
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def _filter(association: Any, inputs: list[str | Path], out: Path, *args: str) -> Any:
    return run_cli(
        "filter", *inputs, "--lists", association.cache, "--trust", association.trust_path,
        "--now", LISTS_NOW, "-o", out / f"kept{out.suffix}", "--removed",
        out / f"removed{out.suffix}", "--report", out / "report.json", "--json", *args,
    )  # fmt: skip


def test_filter_of_several_files_equals_the_filter_of_their_concatenation(
    association: Any, tmp_path: Path
) -> None:
    rows = _crawl_rows(300)
    whole = _write_rows(tmp_path / "whole.jsonl", rows)
    shards = tmp_path / "crawl"
    shards.mkdir()
    for k in range(3):
        _write_rows(shards / f"part-{k}.jsonl", rows[k * 100 : (k + 1) * 100])
    (tmp_path / "one").mkdir()
    (tmp_path / "many").mkdir()
    one = _filter(association, [whole], tmp_path / "one")
    many = _filter(association, [str(shards / "*.jsonl")], tmp_path / "many", "--workers", "2")
    assert one.returncode == 0, one.stderr
    assert many.returncode == 0, many.stderr
    for name in ("kept", "removed"):
        assert (tmp_path / "many" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    report_one = json.loads((tmp_path / "one" / "report.json").read_text())
    report_many = json.loads((tmp_path / "many" / "report.json").read_text())
    assert report_many == report_one
    assert 0 < report_one["records"]["removed"] < report_one["records"]["input"] == 300
    assert sorted(os.listdir(tmp_path / "many")) == ["kept", "removed", "report.json"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_filter_of_several_files_keeps_the_format(
    association: Any, tmp_path: Path, suffix: str
) -> None:
    pytest.importorskip("pyarrow")
    rows = _crawl_rows(90)
    for k in range(3):
        _write_rows(tmp_path / f"part-{k}{suffix}", rows[k * 30 : (k + 1) * 30])
    out = tmp_path / f"out{suffix}"
    out.mkdir()
    done = run_cli(
        "filter", *(tmp_path / f"part-{k}{suffix}" for k in range(3)), "--lists",
        association.cache, "--trust", association.trust_path, "--now", LISTS_NOW,
        "-o", out / f"kept{suffix}", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    kept = out / f"kept{suffix}"
    if suffix == ".csv":
        import csv

        with kept.open(encoding="utf-8", newline="") as handle:
            ids = [row["id"] for row in csv.DictReader(handle)]
    else:
        import pyarrow.parquet as pq

        ids = [str(v) for v in pq.read_table(kept).column("id").to_pylist()]
    assert len(ids) == report["records"]["kept"] < 90
    assert ids == sorted(ids, key=lambda i: int(i.split("-")[1]))


def test_filter_gives_the_same_bytes_on_ray(
    ray_cluster: str, association: Any, tmp_path: Path
) -> None:
    rows = _crawl_rows(200)
    for k in range(4):
        _write_rows(tmp_path / f"part-{k}.jsonl", rows[k * 50 : (k + 1) * 50])
    outputs = {}
    for name in ("local", "ray"):
        out = tmp_path / name
        out.mkdir()
        extra = ["--executor", "ray", "--ray-address", ray_cluster] if name == "ray" else []
        result = _filter(association, [str(tmp_path / "part-*.jsonl")], out, *extra)
        assert result.returncode == 0, result.stderr
        outputs[name] = [(out / n).read_bytes() for n in ("kept", "removed", "report.json")]
    assert outputs["local"] == outputs["ray"]


def test_filter_of_several_files_fails_on_a_bad_file_naming_it(
    association: Any, tmp_path: Path
) -> None:
    rows = _crawl_rows(60)
    _write_rows(tmp_path / "part-0.jsonl", rows[:30])
    bad = _write_rows(tmp_path / "part-1.jsonl", rows[30:])
    with bad.open("a") as handle:
        handle.write("{not json\n")
    out = tmp_path / "out"
    out.mkdir()
    result = _filter(association, [str(tmp_path / "part-*.jsonl")], out)
    assert result.returncode == 2
    assert one_error_line(result).startswith(f"error: {bad}:31")
    assert os.listdir(out) == []


# ----------------------------------------------------------------------------------------------
# Lookups that read only the parts they need


@pytest.fixture(scope="module")
def carded_parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """600 records in 16 parts, carded and signed: (manifest directory, verified CardRef)."""
    import datetime as dt

    import yaml

    from provenance import proofs

    work = tmp_path_factory.mktemp("carded")
    _records(work / "records.jsonl", "w", 600, seed=3)
    spec = {
        "name": "crawl", "version": "1", "description": "test", "publisher": {"name": "Lab"},
        "sources": [{"id": "web", "name": "Web", "kind": "web-crawl", "license": "MIT",
                     "paths": ["**"]}],
    }  # fmt: skip
    (work / "spec.yaml").write_text(yaml.safe_dump(spec))
    steps: list[tuple[str | Path, ...]] = [
        ("manifest", "build", work / "records.jsonl", "-o", f"{work / 'parted'}/",
         "--partitions", "16", "--no-fingerprints"),
        ("key", "generate", work / "dev.key"),
        ("trust", "add", work / "trust.json", work / "dev.key.pub", "--name", "Dev",
         "--role", "dataset-publisher"),
        ("card", "build", work / "spec.yaml", "--manifest", work / "parted", "-o",
         work / "card.json", "--now", NOW),
        ("card", "sign", work / "card.json", "--key", work / "dev.key", "-o", work / "signed.json"),
    ]  # fmt: skip
    for step in steps:
        result = run_cli(*step)
        assert result.returncode == 0, result.stderr
    at = dt.datetime.fromisoformat(NOW.replace("Z", "+00:00"))
    return work / "parted", proofs.load_card(work / "signed.json", work / "trust.json", at=at)


def test_a_lookup_of_one_work_reads_one_part(carded_parts: tuple[Path, Any]) -> None:
    from provenance.partlookup import open_partitioned

    parted, card = carded_parts
    single = list(manifest.iter_manifest(parted))
    target = single[len(single) // 2]
    opened = open_partitioned(parted, card)
    assert opened is not None
    found = opened.exact_numbered(target.sha256)
    assert [e for _, e in found] == [e for e in single if e.sha256 == target.sha256]
    assert all(single[n] == e for n, e in found)
    assert opened.parts_read == [partitions.partition_of(target.sha256, 16)]


def test_proofs_from_parts_are_the_whole_trees_proofs(carded_parts: tuple[Path, Any]) -> None:
    from provenance.partlookup import PartitionedLookup
    from provenance.proofs import ProofRequest, WorkDigests

    parted, card = carded_parts
    single = list(manifest.iter_manifest(parted))
    leaves = [merkle.leaf_hash(manifest.entry_bytes(e)) for e in single]
    # Presence of every entry: the audit path equals the one from all leaves, and verifies.
    opened = PartitionedLookup(parted, card)
    requests = [
        ProofRequest("exact", WorkDigests(e.sha256), leaf=i, entry_id=e.id)
        for i, e in enumerate(single)
    ]
    for number, proof in enumerate(opened.prove_requests(requests)):
        (leaf,) = proof.leaves
        assert leaf.index == number
        assert list(leaf.audit_path) == merkle.inclusion_proof(number, leaves)
    # Absence, at the edges of parts too (a neighbour in the next part is read then).
    rng = random.Random(5)
    absent = [f"{k:02x}" + "0" * 62 for k in range(0, 256, 16)]
    absent += [f"{rng.getrandbits(256):064x}" for _ in range(40)]
    read = []
    for work in absent:
        fresh = PartitionedLookup(parted, card)
        (proof,) = fresh.prove_requests([ProofRequest.by_digest(work)])
        assert proof.claim == "absent"
        read.append(len(fresh.parts_read))
        for leaf in proof.leaves:
            assert list(leaf.audit_path) == merkle.inclusion_proof(leaf.index, leaves)
    # One part for a digest inside a part, two for one before a part's first entry.
    assert set(read) == {1, 2}


def test_verify_data_on_ray_finds_what_local_finds(
    cli: Cli, ray_cluster: str, both_forms: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLES / "data", data)
    files = sorted(p for p in data.rglob("*") if p.is_file())
    files[0].write_bytes(files[0].read_bytes() + b"changed")
    files[1].unlink()
    (data / "extra.txt").write_text("not in the manifest\n")
    reports = {}
    on_ray = ["--executor", "ray", "--ray-address", ray_cluster]
    for name, extra in (("local", []), ("ray", on_ray)):
        result = cli(
            "verify", both_forms / "parted.signed.json", "--trust", both_forms / "trust.json",
            "--manifest", both_forms / "parted", "--data", data, "--now", NOW, "--json", *extra,
        )  # fmt: skip
        assert result.returncode == 1, result.stderr
        reports[name] = json.loads(result.stdout)
    assert reports["ray"] == reports["local"]
    diff = reports["local"]["data"]
    assert (len(diff["changed"]), len(diff["missing"]), diff["extra"]) == (1, 1, ["extra.txt"])


def test_lookup_on_ray_finds_what_local_finds(cli: Cli, ray_cluster: str, tmp_path: Path) -> None:
    # The samples with their fingerprint sidecar: every status a lookup can give.
    built = cli("manifest", "build", SAMPLES / "data", "-o", tmp_path / "m.jsonl")
    assert built.returncode == 0, built.stderr
    works = sorted((SAMPLES / "data" / "books").iterdir())[:3]
    edited = tmp_path / "edited.txt"
    edited.write_bytes(works[0].read_bytes().replace(b"\n", b"\r\n"))
    found = {}
    on_ray = ["--executor", "ray", "--ray-address", ray_cluster]
    for name, extra in (("local", []), ("ray", on_ray)):
        result = cli("lookup", *works, edited, "--manifest", tmp_path / "m.jsonl", "--json", *extra)
        assert result.returncode == 0, result.stderr
        found[name] = json.loads(result.stdout)
    assert found["ray"] == found["local"]
    assert [r["status"] for r in found["local"]["results"]][-1] == "normalized"
