"""The sharded build's fast path for small outputs (``sharded.holds``): shard tasks return their
entries and the driver writes the parts, where the plain path spills sorted runs and merges them
in tasks. Both paths give the same bytes (manifests, fingerprint sidecars, indexes, cards) on one
and several shards, with fingerprints and without, on both executors; and fail alike, named, with
nothing left behind: a repeated id, a file that changes while hashed, an unreadable file, a
killed worker.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from provenance import manifest, sharded
from provenance.errors import InputError, LocalIOError, ProvenanceError
from provenance.executors import ShardFailedError, make_executor
from tests import scale_support
from tests.conftest import NOW
from tests.test_scale import executor_name  # noqa: F401  (the fixture: local, ray)

Cli = Callable[..., subprocess.CompletedProcess[str]]

WORDS = ["the", "a", "of", "river", "stone", "light", "garden", "winter", "north", "letter"]


def _texts(root: Path, files: int, seed: int) -> Path:
    """Text files (fingerprinted), some with the same content under several ids."""
    rng = random.Random(seed)
    for i in range(files):
        sub = root / f"d{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        words = rng.choices(WORDS, k=rng.randrange(40, 120))
        text = " ".join(words) if i % 9 else f"repeated text {i % 2} " * 30
        (sub / f"f{i:05d}.txt").write_text(text + "\n")
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("held")
    _texts(root / "many", 1300, seed=1)  # two shards of at most 1,024 files
    _texts(root / "few", 40, seed=2)  # one shard
    return root


class Recording:
    """An executor that records which task functions it ran."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner
        self.workers = runner.workers
        self.name = runner.name
        self.ran: list[str] = []

    def map(self, fn: Any, items: Sequence[Any], *, names: Sequence[str]) -> Iterator[Any]:
        self.ran.append(fn.__name__)
        return self.runner.map(fn, items, names=names)


def _build(
    executor: str,
    inputs: list[Path],
    output: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    held: bool,
    count: int | None = None,
    fingerprints: bool = False,
) -> tuple[manifest.ManifestSummary, list[str]]:
    """Build through ``sharded.build``, on the fast path or (``held`` false) the plain one."""
    shards = sharded.plan_shards(inputs)
    with monkeypatch.context() as patch:
        if not held:
            patch.setattr(sharded, "HOLD_ENTRIES", -1)
        assert sharded.holds(shards, fingerprints=fingerprints) is held
        with make_executor(executor, workers=2) as runner:
            recording = Recording(runner)
            summary = sharded.build(
                shards,
                output,
                executor=recording,  # type: ignore[arg-type]
                partition_count=count,
                check_ids=len(inputs) > 1,
                fingerprints=fingerprints,
            )
    return summary, recording.ran


def _files(path: Path) -> dict[str, bytes]:
    """The bytes of a single-file manifest and its sidecar, or of a partitioned one's files."""
    if path.is_dir():
        return {name: (path / name).read_bytes() for name in sorted(os.listdir(path))}
    sidecar = path.with_name(path.name + ".fp")
    found = {"manifest": path.read_bytes()}
    if sidecar.exists():
        found["sidecar"] = sidecar.read_bytes()
    return found


@pytest.mark.parametrize("folder", ["few", "many"])
@pytest.mark.parametrize("count", [None, 3])
@pytest.mark.parametrize("fingerprints", [False, True])
def test_held_build_is_the_plain_build(
    executor_name: str,  # noqa: F811
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    folder: str,
    count: int | None,
    fingerprints: bool,
) -> None:
    shards = sharded.plan_shards([corpus / folder])
    assert (len(shards) == 1) == (folder == "few")
    suffix = "" if count else ".jsonl"
    built = {}
    for held in (True, False):
        out = tmp_path / f"{'held' if held else 'plain'}{suffix}"
        summary, ran = _build(
            executor_name, [corpus / folder], out, monkeypatch, held=held, count=count,
            fingerprints=fingerprints,
        )  # fmt: skip
        # The fast path runs the shard tasks only; the plain one merges parts in tasks.
        assert ran == (["_hash_shard"] if held else ["_hash_shard", "_check_ids", "_merge_part"])
        built[held] = (summary, _files(out))
    assert built[True] == built[False]
    files = built[True][1]
    assert ("sidecar" in files or any(n.endswith(".fp") for n in files)) == fingerprints
    assert built[True][0].entries == (40 if folder == "few" else 1300)
    if count is None:
        # And the one-machine build of the folder (the local executor's own path).
        one = tmp_path / "one.jsonl"
        summary = sharded.build_dataset([corpus / folder], one, fingerprints=fingerprints)
        assert (summary, _files(one)) == built[True]
    # No run files, staging folders or temporary files are left beside the outputs.
    assert [n for n in os.listdir(tmp_path) if n.startswith(".")] == []


def test_an_empty_folder_builds_the_same_on_both_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    for count in (None, 2):
        held = _build("local", [tmp_path / "empty"], tmp_path / f"h{count}", monkeypatch,
                      held=True, count=count, fingerprints=True)  # fmt: skip
        plain = _build("local", [tmp_path / "empty"], tmp_path / f"p{count}", monkeypatch,
                       held=False, count=count, fingerprints=True)  # fmt: skip
        assert held[0] == plain[0] and held[0].entries == 0
        assert _files(tmp_path / f"h{count}") == _files(tmp_path / f"p{count}")


def test_the_bound_of_the_fast_path(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shards = sharded.plan_shards([corpus / "many"])
    assert sharded.holds(shards, fingerprints=True)
    monkeypatch.setattr(sharded, "HOLD_ENTRIES", 1299)
    assert not sharded.holds(shards, fingerprints=False)  # 1300 files
    monkeypatch.setattr(sharded, "HOLD_ENTRIES", 1300)
    assert sharded.holds(shards, fingerprints=False)
    size = sum(s.size for s in shards)
    monkeypatch.setattr(sharded, "HOLD_PRINTS_BYTES", size - 1)
    assert sharded.holds(shards, fingerprints=False)
    assert not sharded.holds(shards, fingerprints=True)  # content fingerprinted: bounded too
    unknown = [*shards[:-1], sharded.Shard(name="x", files=shards[-1].files)]  # size not known
    monkeypatch.setattr(sharded, "HOLD_PRINTS_BYTES", size)
    assert sharded.holds(shards, fingerprints=True)
    assert not sharded.holds(unknown, fingerprints=True)
    # Records files are never held: their entry count is not known before they are read.
    assert not sharded.holds([sharded.Shard(name="r", records="r.jsonl")], fingerprints=False)


# ----------------------------------------------------------------------------------------------
# Shards planned without stat'ing every file (sizes not asked for)


def test_a_walk_that_stats_only_its_first_files_lists_the_same_files(corpus: Path) -> None:
    every = manifest.walk_files(corpus / "many")
    assert all(ref.size >= 0 for ref in every)
    for count in (0, 100):
        some = manifest.walk_files(corpus / "many", stat_files=count)
        assert [(r.id, r.path) for r in some] == [(r.id, r.path) for r in every]
        assert sum(ref.size >= 0 for ref in some) == count
        sized = {r.id: r.size for r in every}
        assert all(ref.size == sized[ref.id] for ref in some if ref.size >= 0)


def test_shards_without_sizes_are_the_shards_with_sizes_unknown(corpus: Path) -> None:
    with_sizes = sharded.plan_shards([corpus / "many"])
    without = sharded.plan_shards([corpus / "many"], sizes=False)
    assert [(s.name, s.files) for s in without] == [(s.name, s.files) for s in with_sizes]
    assert [len(s.files) for s in without] == [1024, 276]
    assert {s.size for s in without} == {-1} and min(s.size for s in with_sizes) > 0
    # Sizes bound the fingerprints the fast path holds: unknown, it is not taken with them.
    assert sharded.holds(without, fingerprints=False)
    assert not sharded.holds(without, fingerprints=True)


def test_large_first_files_get_shards_cut_by_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(40):
        (tmp_path / "big").mkdir(exist_ok=True)
        (tmp_path / "big" / f"f{i:02d}").write_bytes(b"x" * 3000)
    monkeypatch.setattr(sharded, "_STAT_SAMPLE", 10)  # of the 40 files
    # A shard's count of files of the sample's mean size would be more than a shard's bytes:
    # every file is stat'ed, and shards cut by size as with sizes asked for.
    monkeypatch.setattr(sharded, "_BYTES_PER_SHARD", 10_000)
    with_sizes = sharded.plan_shards([tmp_path / "big"])
    assert len(with_sizes) == 10  # of 4 files (12,000 bytes) each
    assert sharded.plan_shards([tmp_path / "big"], sizes=False) == with_sizes
    monkeypatch.setattr(sharded, "_BYTES_PER_SHARD", 64 << 20)
    monkeypatch.setattr(sharded, "_LARGE_FILE", 3000)  # one file hashed alone: also by size
    assert min(s.size for s in sharded.plan_shards([tmp_path / "big"], sizes=False)) > 0
    monkeypatch.setattr(sharded, "_LARGE_FILE", 3001)
    assert {s.size for s in sharded.plan_shards([tmp_path / "big"], sizes=False)} == {-1}


def test_a_build_without_sizes_is_the_one_machine_build(
    executor_name: str,  # noqa: F811
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    planned: list[bool] = []
    plan = sharded.iter_shards

    def recording(*args: Any, **options: Any) -> Iterator[sharded.Shard]:
        planned.append(options["sizes"])
        return plan(*args, **options)

    monkeypatch.setattr(sharded, "iter_shards", recording)
    one = tmp_path / "one.jsonl"
    expected = sharded.build_dataset([corpus / "many"], one, fingerprints=False)
    assert planned == []  # the local executor's one-folder build walks as it hashes
    # Through the sharded build (on the local executor: partitioned), without sizes.
    out = tmp_path / "out.jsonl"
    built = sharded.build_dataset(
        [corpus / "many"], out, fingerprints=False, executor=executor_name
    )
    parts = tmp_path / "parts"
    split = sharded.build_dataset(
        [corpus / "many"], parts, partitioned=True, partition_count=3, fingerprints=False,
        executor=executor_name,
    )  # fmt: skip
    assert planned == ([False, False] if executor_name == "ray" else [False])
    if executor_name == "local":
        built = sharded.build_dataset([corpus / "many"], out, fingerprints=False)
    assert built == expected and out.read_bytes() == one.read_bytes()
    assert split.root == expected.root
    # Sizes are asked for with fingerprints (they bound what the fast path holds) and for a
    # progress total, which is then the bytes of the files.
    totals: list[int] = []
    sharded.build_dataset(
        [corpus / "many"], parts.with_name("p2"), partitioned=True, fingerprints=False,
        executor=executor_name, on_total=totals.append,
    )  # fmt: skip
    assert planned[-1] is True
    assert totals == [sum(os.path.getsize(p) for p in (corpus / "many").rglob("*.txt"))]


def test_a_special_file_fails_alike_without_sizes(
    executor_name: str,  # noqa: F811
    corpus: Path,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    shutil.copytree(corpus / "many", data)
    os.mkfifo(data / "d1" / "pipe.txt")
    messages = fails_on_both(executor_name, data, tmp_path)
    assert messages[0] == messages[1]
    assert messages[0][1].startswith(f"{data / 'd1' / 'pipe.txt'}: ")


def fails_on_both(
    executor: str, data: Path, tmp_path: Path
) -> list[tuple[type[ProvenanceError], str]]:
    """The error of a build of ``data`` on one machine and of a partitioned build on
    ``executor`` (shard by shard), each leaving nothing in ``tmp_path`` beside ``data``."""
    messages = []
    for options in ({}, {"executor": executor, "partitioned": True}):
        with pytest.raises(ProvenanceError) as info:
            sharded.build_dataset([data], tmp_path / "out", fingerprints=False, **options)
        messages.append((type(info.value), str(info.value)))
        assert sorted(os.listdir(tmp_path)) == ["data"]
    return messages


# ----------------------------------------------------------------------------------------------
# Failures: the same error on both paths, nothing left behind


def _same_failure(
    executor: str,
    inputs: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    expected: type[ProvenanceError],
    **options: Any,
) -> list[str]:
    """The messages of the failure on the fast and plain paths, equal (single file, then 3
    partitions), with nothing left in ``tmp_path``."""
    before = sorted(os.listdir(tmp_path))
    found = []
    for count in (None, 3):
        messages = []
        for held in (True, False):
            out = tmp_path / ("out.jsonl" if count is None else "out")
            with pytest.raises(expected) as info:
                _build(executor, inputs, out, monkeypatch, held=held, count=count, **options)
            messages.append((type(info.value), str(info.value)))
            assert sorted(os.listdir(tmp_path)) == before
        assert messages[0] == messages[1]
        found.append(messages[0][1])
    return found


def test_an_id_in_two_folders_fails_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a", "b", "c"):
        _texts(tmp_path / "in" / name, 30, seed=ord(name))
    # Ids are paths under each folder: b and c both hold d1/f00005.txt and d2/f00010.txt.
    for folder in ("a", "b"):
        for sub in ("d0", "d3"):
            shutil.rmtree(tmp_path / "in" / folder / sub)
    inputs = [tmp_path / "in" / n for n in ("a", "b", "c")]
    for message in _same_failure("local", inputs, tmp_path, monkeypatch, InputError):
        assert "appears in two inputs" in message


def test_a_file_changed_while_hashed_fails_alike(
    executor_name: str,  # noqa: F811
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "data"
    shutil.copytree(corpus / "many", data)
    (data / "d2" / "grow.txt").write_text("a text that grows while it is read\n")
    monkeypatch.setattr(sharded, "_hash_shard", scale_support.hash_shard_growing)
    for message in _same_failure(executor_name, [data], tmp_path, monkeypatch, LocalIOError):
        assert message.endswith(
            f"{data / 'd2' / 'grow.txt'}: file changed while it was being hashed"
        )


def test_an_unreadable_file_fails_alike(
    executor_name: str,  # noqa: F811
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "data"
    shutil.copytree(corpus / "many", data)
    shards = sharded.plan_shards([data])
    # Gone between the walk and the hashing (root reads any file whatever its mode).
    gone = Path(shards[1].files[7][1])
    gone.unlink()
    monkeypatch.setattr(sharded, "plan_shards", lambda *a, **k: shards)
    for message in _same_failure(executor_name, [data], tmp_path, monkeypatch, InputError):
        assert message.startswith(f"{shards[1].name}: {gone}: ")


def test_a_killed_worker_fails_alike_naming_its_shard(
    executor_name: str,  # noqa: F811
    corpus: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sharded, "_hash_shard", scale_support.die_on_shard_one)
    shards = sharded.plan_shards([corpus / "many"])
    for message in _same_failure(
        executor_name, [corpus / "many"], tmp_path, monkeypatch, ShardFailedError
    ):
        assert message.startswith(f"{shards[1].name}: the ")
        assert "died" in message


# ----------------------------------------------------------------------------------------------
# Through the CLI: the same manifest, sidecar and card from Ray's fast path and the local build


def test_cli_card_from_ray_is_the_local_card(
    cli: Cli, ray_cluster: str, corpus: Path, tmp_path: Path
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: held-corpus\nversion: '1.0.0'\ndescription: Texts.\npublisher: {name: Lab}\n"
        "sources:\n  - {id: texts, name: Texts, kind: open-license, license: CC0-1.0,"
        " paths: ['**']}\n"
    )
    cards = {}
    for name, extra in (
        ("local", ()),
        ("ray", ("--executor", "ray", "--ray-address", ray_cluster)),
    ):
        # The same file name (a card names its manifest file), in two folders.
        out = tmp_path / name / "m.jsonl"
        out.parent.mkdir()
        built = cli("manifest", "build", corpus / "many", "-o", out, *extra)
        assert built.returncode == 0, built.stderr
        card = cli("card", "build", spec, "--manifest", out, "-o",
                   tmp_path / f"{name}.card.json", "--now", NOW)  # fmt: skip
        assert card.returncode == 0, card.stderr
        cards[name] = (tmp_path / f"{name}.card.json").read_bytes()
    for name in ("m.jsonl", "m.jsonl.fp"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    assert cards["ray"] == cards["local"]
    assert json.loads(cards["ray"])["predicate"]["manifest"]


# ----------------------------------------------------------------------------------------------
# A shard's files hashed in one loop


@pytest.mark.usefixtures("small_thresholds")
@pytest.mark.parametrize("fingerprint", [False, True])
def test_hash_paths_is_hash_file_of_each(tmp_path: Path, fingerprint: bool) -> None:
    # Small files, large ones (each left to be hashed alone), more bytes than one task reads
    # (the rest hashed by the next), a vanished file, a folder, empty files, repeated texts.
    rng = random.Random(3)
    paths = []
    for i in range(60):
        path = tmp_path / f"f{i:03d}"
        kind = i % 6
        if kind == 0:
            path.write_bytes(rng.randbytes(60 * 1024))  # above the large-file threshold
        elif kind == 1:
            path.write_text(" ".join(rng.choices(WORDS, k=300)))
        elif kind == 2:
            path.write_bytes(b"")
        elif kind == 3 and i % 4 == 1:
            path.mkdir()
        elif kind == 4 and i % 8 == 0:
            pass  # never created: vanished
        else:
            path.write_text(f"repeated text {i % 2} " * 40)
        paths.append(str(path))
    expected = [manifest.hash_file(p, fingerprint=fingerprint) for p in paths]
    found = sharded.hash_paths(paths, fingerprint=fingerprint)

    def plain(digest: manifest.FileDigest) -> tuple[Any, ...]:
        prints = digest.prints
        seen = None if prints is None else (prints.text_sha256, list(prints.text), prints.image)
        return (digest.sha256, digest.size, digest.error, seen, digest.linked)

    assert [plain(d) for d in found] == [plain(d) for d in expected]
    assert {d.error.kind for d in found if d.error is not None} == {
        manifest.HashErrorKind.NOT_REGULAR,
        manifest.HashErrorKind.UNREADABLE,
    }
    assert any(d.prints is not None for d in found) == fingerprint
    assert sharded.hash_paths([]) == []
