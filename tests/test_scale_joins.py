"""``verify --lists --executor`` on a partitioned manifest (issue 12 items 4 and 5): each part
read, checked against the verified index and joined with the lists in its own task, with the
findings of the in-process read; a changed part, an id in two parts, an unreadable part and a
killed worker each fail the command, the part named, and leave no scratch file behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from exclusion_support import T0, Association, entry, sha

from provenance import _json, card, partitions
from provenance import manifest as manifest_module
from provenance.envelope import Envelope
from provenance.errors import DigestMismatchError, FormatError, InputError
from provenance.executors import ShardFailedError, make_executor
from provenance.filter import apply_lists, select_lists
from provenance.keys import PrivateKey
from provenance.lists.audit import CacheSource
from provenance.manifest import ManifestEntry, ManifestSummary
from provenance.normtext import norm_text_sha256
from provenance.partitions import parallel
from provenance.verify import Report, verify
from tests import scale_support
from tests.card_support import sign_envelope
from tests.conftest import one_error_line, run_cli

AT = dt.datetime(2026, 7, 1, 6, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(days=2)
COUNT = 3000
SPEC: dict[str, Any] = {
    "name": "web-sample",
    "version": "1",
    "description": "test",
    "publisher": {"name": "Lab"},
    "sources": [{"id": "web", "name": "Web", "kind": "web-crawl", "license": "CC-BY-4.0"}],
}
HOSTS = [
    "https://news.example/a",  # listed on piracy v2 only: newly listed
    "https://www.01cinema.com/film",  # piracy v1
    "https://blog.example/post",
    "https://opted-out.example/essay",  # optout v1
    "https://bad host.example/x",  # an invalid host: cannot be evaluated
    None,
    "https://blog.example/other",
]


def _text(i: int) -> str:
    return f"text {i % 2500}\n"  # some texts repeat: equal digests under several ids


def _entries() -> list[ManifestEntry]:
    entries = []
    for i in range(COUNT):
        data = _text(i).encode()
        entries.append(
            ManifestEntry(
                id=f"rec-{i:05d}",
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                source="web",
                url=HOSTS[i % 7 if i % 3 else 2],
                textSha256=norm_text_sha256(data.upper()) if i % 5 == 0 else None,
            )
        )
    return sorted(entries, key=ManifestEntry.sort_key)


class Joined:
    """Lists (v1, then v2 in a second cache), a card over both forms of one manifest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        assoc = Association(root / "assoc")
        pirated = [entry("sha256", sha(_text(i))) for i in range(0, COUNT, 97)]
        piracy_v1 = [entry("domain", "01cinema.com"), *pirated]
        opted = [
            entry("text-sha256", norm_text_sha256(_text(i).encode()) or "", "opt-out")
            for i in range(0, COUNT, 35)
        ]
        optout_v1 = [entry("domain", "opted-out.example", "opt-out"), *opted]
        assoc.publish("piracy", piracy_v1)
        assoc.publish("optout", optout_v1)
        self.cache_v1 = assoc.fetch(cache=root / "cache-v1")
        later = [entry("domain", "news.example"), entry("sha256", sha(_text(11)))]
        assoc.publish("piracy", [*piracy_v1, *later], at=T0 + dt.timedelta(days=1))
        self.cache_v2 = assoc.fetch(at=LATER, cache=root / "cache-v2")
        developer = PrivateKey.generate()
        self.trust = assoc.store.with_key(developer.public, name="Lab", role="dataset-publisher")
        self.trust_path = root / "trust.json"
        self.trust_path.write_bytes(self.trust.to_json())
        # The claims as a filter run writes them (name, version, digest, signers, ...).
        records = root / "claims.jsonl"
        records.write_text(json.dumps({"id": "x", "url": "https://a.example/", "text": "x"}) + "\n")
        cached = select_lists(self.cache_v1, [], at=AT, store=assoc.store)
        report = apply_lists(
            records, cached, kept_path=root / "k.jsonl", removed_path=None, report_path=None, at=AT
        ).to_dict()
        claims = [card.Exclusion.from_dict(item) for item in report["lists"]]
        self.entries = _entries()
        self.single = root / "single.jsonl"
        self.parted = root / "parted"
        self.signed: dict[str, Path] = {}
        for name, path in (("single", self.single), ("parted", self.parted)):
            if name == "single":
                summary = manifest_module.write_manifest(self.entries, path)
            else:
                summary = partitions.write_partitioned(self.entries, path, partitions=5)
            statement = card.build_statement(
                SPEC,
                self.entries,
                lambda summary=summary: summary,  # type: ignore[misc]
                manifest_name=path.name if name == "single" else "index.json",
                created=AT,
                exclusions=claims,
            )
            envelope = sign_envelope(
                card.PAYLOAD_TYPE, _json.canonical(statement.to_dict()), [developer]
            )
            self.signed[name] = root / f"{name}.signed.json"
            self.sources = statement.predicate.sources
            self.signed[name].write_bytes(envelope.to_json())

    def verify(
        self, name: str, manifest_path: Path, *, executor: str | None = None, later: bool = True
    ) -> Report:
        envelope = Envelope.from_dict(json.loads(self.signed[name].read_text()), what="card")
        at = LATER if later else AT
        return verify(
            envelope,
            self.trust,
            at=at,
            what="card",
            manifest_path=manifest_path,
            lists=CacheSource(self.cache_v2 if later else self.cache_v1, at),
            executor=executor,
            workers=2,
        )


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory) -> Joined:
    return Joined(tmp_path_factory.mktemp("scale-joins"))


@pytest.fixture(params=["local", "ray"])
def executor_name(request: pytest.FixtureRequest) -> str:
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return str(request.param)


def _without_digest(document: dict[str, Any]) -> dict[str, Any]:
    checks = [c for c in document["checks"] if c["name"] != "manifest digest"]
    return {**document, "checks": checks}


def test_verify_lists_on_parts_finds_what_one_process_finds(
    joined: Joined, executor_name: str
) -> None:
    in_process = joined.verify("parted", joined.parted).to_dict()
    on_tasks = joined.verify("parted", joined.parted, executor=executor_name).to_dict()
    assert on_tasks == in_process
    single = joined.verify("single", joined.single).to_dict()
    assert _without_digest(on_tasks) == _without_digest(single)
    # Every kind of finding is there: violations by domain, sha256 and text-sha256, newly
    # listed entries (domain and sha256 on v2), and URLs that cannot be evaluated.
    kinds = {v["entry"]["type"] for v in on_tasks["violations"]}
    assert kinds == {"domain", "sha256", "text-sha256"}
    assert {n["entry"]["type"] for n in on_tasks["newly_listed"]} == {"domain", "sha256"}
    failed = {c["name"]: c["detail"] for c in on_tasks["checks"] if not c["ok"]}
    assert "cannot be evaluated" in failed["manifest URLs"]
    assert failed.keys() == {"exclusions", "manifest URLs"}
    ok = {c["name"] for c in on_tasks["checks"] if c["ok"]}
    assert {"manifest entries", "merkle root", "sources and licenses", "newly listed"} <= ok


def test_verify_lists_on_parts_clean_and_with_the_claimed_version_only(joined: Joined) -> None:
    # At the card's time (v1 cache only): no newly listed check, the same violations.
    in_process = joined.verify("parted", joined.parted, later=False).to_dict()
    on_tasks = joined.verify("parted", joined.parted, executor="local", later=False).to_dict()
    assert on_tasks == in_process
    assert on_tasks["newly_listed"] == [] and on_tasks["violations"]


def test_cli_verify_lists_with_executor_prints_the_same(joined: Joined) -> None:
    common = [
        "verify", joined.signed["parted"], "--trust", joined.trust_path, "--manifest",
        joined.parted, "--lists", joined.cache_v2, "--now", "2026-07-03T00:00:00Z", "--json",
    ]  # fmt: skip
    plain = run_cli(*common)
    tasks = run_cli(*common, "--executor", "local", "--workers", "2")
    assert plain.returncode == tasks.returncode == 1, tasks.stderr
    assert tasks.stdout == plain.stdout
    # A manifest file has no parts to give tasks.
    single = run_cli(
        "verify", joined.signed["single"], "--trust", joined.trust_path, "--manifest",
        joined.single, "--executor", "local",
    )  # fmt: skip
    assert single.returncode == 2
    assert "partitioned --manifest" in single.stderr


def _copy(joined: Joined, tmp_path: Path) -> Path:
    copy = tmp_path / "parted"
    shutil.copytree(joined.parted, copy)
    return copy


def test_a_part_changed_after_the_card_fails_in_its_task(
    joined: Joined, executor_name: str, tmp_path: Path
) -> None:
    # Part 2 without its listed entries: still a valid part file, but not the one the verified
    # index names. The task that reads it must refuse it (else the joins would judge it).
    copy = _copy(joined, tmp_path)
    part = copy / partitions.part_name(2)
    listed = {sha(_text(i)) for i in range(0, COUNT, 97)}
    lines = [x for x in part.read_bytes().splitlines(True) if json.loads(x)["sha256"] not in listed]
    assert len(lines) < len(part.read_bytes().splitlines())
    part.write_bytes(b"".join(lines))
    with pytest.raises(DigestMismatchError) as info:
        joined.verify("parted", copy, executor=executor_name)
    assert str(info.value) == (
        f"{partitions.part_name(2)}: {copy / 'index.json'}: {partitions.part_name(2)} is not the"
        " part the index describes"
    )


def test_cli_a_changed_part_is_a_verified_no(joined: Joined, tmp_path: Path) -> None:
    copy = _copy(joined, tmp_path)
    part = copy / partitions.part_name(4)
    part.write_bytes(part.read_bytes().replace(b'"size":', b'"size":1', 1))
    result = run_cli(
        "verify", joined.signed["parted"], "--trust", joined.trust_path, "--manifest", copy,
        "--lists", joined.cache_v1, "--now", "2026-07-01T06:00:00Z", "--executor", "local",
    )  # fmt: skip
    assert result.returncode == 1
    assert partitions.part_name(4) in one_error_line(result)


def test_another_index_is_not_joined(joined: Joined, tmp_path: Path) -> None:
    # An index that is not the card's (a valid manifest of other entries): the counts and root
    # are reported as they are, the lists not checked, as in one process.
    other = tmp_path / "other"
    partitions.write_partitioned(joined.entries[:-1], other, partitions=5)
    in_process = joined.verify("parted", other).to_dict()
    on_tasks = joined.verify("parted", other, executor="local").to_dict()
    assert on_tasks == in_process
    failed = {c["name"]: c["detail"] for c in on_tasks["checks"] if not c["ok"]}
    assert failed["exclusion lists"].startswith("not checked")
    assert on_tasks["violations"] == []


def _duplicated(tmp_path: Path) -> Path:
    """A partitioned manifest whose parts are each valid but share an id."""
    out = tmp_path / "dup"
    out.mkdir()
    entries = _entries()[:40]
    twice = ManifestEntry(id=entries[3].id, sha256="ff" * 32, size=1, source="web")
    parts, offset = [], 0
    for k, chunk in enumerate(
        ([e for e in entries if partitions.partition_of(e.sha256, 2) == 0], [
            *[e for e in entries if partitions.partition_of(e.sha256, 2) == 1], twice,
        ])
    ):  # fmt: skip
        part = partitions.write_part(chunk, out / partitions.part_name(k), offset=offset, k=k,
                                     partitions=2)  # fmt: skip
        parts.append(part)
        offset += part.entries
    (out / "index.json").write_bytes(partitions.index_bytes(partitions.make_index(parts)))
    return out


def test_an_id_in_two_parts_is_found_by_the_id_pass(
    joined: Joined, executor_name: str, tmp_path: Path
) -> None:
    out = _duplicated(tmp_path)
    with pytest.raises(FormatError) as plain:
        manifest_module.read_manifest(out)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    committed = ManifestSummary("0" * 64, 0, 0, "0" * 64)
    with make_executor(executor_name, workers=2) as runner, pytest.raises(FormatError) as info:
        parallel.read_parts(out, committed, joined.sources, executor=runner, scratch=scratch)
    assert str(info.value) == str(plain.value)
    assert "appears twice" in str(info.value)
    assert os.listdir(scratch) == []


def test_an_unreadable_part_fails_naming_it(
    joined: Joined, executor_name: str, tmp_path: Path
) -> None:
    copy = _copy(joined, tmp_path)
    part = copy / partitions.part_name(3)
    part.unlink()
    part.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    committed = ManifestSummary("0" * 64, 0, 0, "0" * 64)
    with make_executor(executor_name, workers=2) as runner, pytest.raises(InputError) as info:
        parallel.read_parts(copy, committed, joined.sources, executor=runner, scratch=scratch)
    assert str(info.value).startswith(f"{partitions.part_name(3)}: ")
    assert os.listdir(scratch) == []


def test_a_killed_worker_fails_naming_its_part(
    joined: Joined, executor_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "_check_part", scale_support.die_on_part_one)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    committed = ManifestSummary("0" * 64, 0, 0, "0" * 64)
    with make_executor(executor_name, workers=2) as runner, pytest.raises(ShardFailedError) as info:
        parallel.read_parts(
            joined.parted, committed, joined.sources, executor=runner, scratch=scratch
        )
    assert str(info.value).startswith(f"{partitions.part_name(1)}: the ")
    assert "died" in str(info.value)
    assert os.listdir(scratch) == []


# ----------------------------------------------------------------------------------------------
# Parquet row-group shards: manifest build and filter


def _parquet(path: Path, rows: list[dict[str, Any]], group: int = 150) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=group)
    return path


def _rows(count: int = 1000) -> list[dict[str, Any]]:
    return [
        {"id": f"rec-{i:05d}", "url": HOSTS[i % 7 if i % 3 else 2], "text": _text(i)}
        for i in range(count)
    ]


def test_a_parquet_file_is_cut_into_row_group_ranges(tmp_path: Path) -> None:
    from provenance import sharded

    path = _parquet(tmp_path / "big.parquet", _rows(), group=150)  # 7 row groups
    shards = sharded.plan_shards([path], rows=300)
    assert [s.row_groups for s in shards] == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert shards[1].name == f"{path} (row groups 2-3)"
    assert [s.row_groups for s in sharded.plan_shards([path])] == [None]
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("")
    assert [s.row_groups for s in sharded.plan_shards([jsonl], rows=1)] == [None]


def test_build_from_row_group_shards_gives_the_same_bytes(
    executor_name: str, tmp_path: Path
) -> None:
    from provenance import sharded

    path = _parquet(tmp_path / "big.parquet", _rows(), group=150)
    whole = tmp_path / "whole.jsonl"
    sharded.build_dataset([path], whole, fingerprints=False)  # one process, the file whole
    cut = tmp_path / f"cut-{executor_name}.jsonl"
    summary = sharded.build_dataset(
        [path], cut, fingerprints=False, executor=executor_name, workers=2, rows_per_shard=300
    )
    assert cut.read_bytes() == whole.read_bytes()
    assert summary == manifest_module.read_manifest(whole).summary
    parted = {}
    for rows in (300, 1 << 20):
        out = tmp_path / f"parted-{rows}"
        sharded.build_dataset(
            [path], out, partitioned=True, partition_count=3, fingerprints=False,
            executor=executor_name, workers=2, rows_per_shard=rows,
        )  # fmt: skip
        parted[rows] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert parted[300] == parted[1 << 20]


def test_a_bad_row_in_a_row_group_shard_is_named_as_in_the_whole_file(tmp_path: Path) -> None:
    from provenance import sharded

    rows = _rows(600)
    rows[470]["text"] = None  # no content at all: a malformed row in row groups 3-3
    path = _parquet(tmp_path / "bad.parquet", rows, group=150)
    with pytest.raises(FormatError) as whole:
        sharded.build_dataset([path], tmp_path / "whole.jsonl", fingerprints=False)
    with pytest.raises(FormatError) as cut:
        sharded.build_dataset(
            [path], tmp_path / "out", partitioned=True, fingerprints=False, workers=2,
            rows_per_shard=150,
        )  # fmt: skip
    assert str(cut.value) == f"{path} (row groups 3-3): {whole.value}"
    assert "row 471" in str(whole.value)
    # A repeated id across two ranges of one file is found too.
    rows = _rows(600)
    rows[500]["id"] = rows[10]["id"]
    path = _parquet(tmp_path / "twice.parquet", rows, group=150)
    with pytest.raises(InputError, match="appears in two inputs") as info:
        sharded.build_dataset(
            [path], tmp_path / "out", partitioned=True, fingerprints=False, rows_per_shard=150
        )
    assert "(row groups 0-0)" in str(info.value) and "(row groups 3-3)" in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["bad.parquet", "twice.parquet"]


def _filter_both(
    joined: Joined, path: Path, tmp_path: Path, executor: str, **options: Any
) -> dict[str, bytes]:
    from provenance.filter import filter_file
    from provenance.filter.shards import filter_inputs

    outputs = {}
    for name in ("whole", "cut"):
        out = tmp_path / name
        out.mkdir(parents=True)
        common: dict[str, Any] = {
            "at": AT,
            "kept_path": out / f"kept{path.suffix}",
            "removed_path": out / f"removed{path.suffix}",
            "report_path": out / "report.json",
        }
        if name == "whole":
            filter_file(path, str(joined.cache_v1), joined.trust, **common)
        else:
            filter_inputs(
                [path], str(joined.cache_v1), joined.trust, executor=executor, workers=2,
                **common, **options,
            )  # fmt: skip
        outputs[name] = b"|".join(p.read_bytes() for p in sorted(out.iterdir()))
    return outputs


def test_filter_of_row_group_shards_gives_the_same_bytes(
    joined: Joined, executor_name: str, tmp_path: Path
) -> None:
    path = _parquet(tmp_path / "big.parquet", _rows(9000), group=1500)
    outputs = _filter_both(joined, path, tmp_path, executor_name, rows_per_shard=3000, buckets=4)
    assert outputs["cut"] == outputs["whole"]
    report = json.loads((tmp_path / "cut" / "report.json").read_text())
    matched = {k: v for item in report["lists"] for k, v in item["matched"].items() if v}
    assert matched.keys() == {"piracy", "opt-out"}
    assert report["records"]["unevaluable"] and report["records"]["missingUrl"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_filter_on_tasks_joins_digests_by_bucket_as_the_index_matches(
    joined: Joined, tmp_path: Path, suffix: str
) -> None:
    import csv

    rows = _rows(2000)
    path = tmp_path / f"records{suffix}"
    if suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "url", "text"])
            writer.writeheader()
            writer.writerows({**r, "url": r["url"] or ""} for r in rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    for buckets in (1, 7):
        outputs = _filter_both(joined, path, tmp_path / str(buckets), "local", buckets=buckets)
        assert outputs["cut"] == outputs["whole"]


def test_a_killed_filter_task_names_its_row_groups_and_writes_nothing(
    joined: Joined, executor_name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provenance.filter import shards
    from provenance.filter.shards import filter_inputs

    path = _parquet(tmp_path / "big.parquet", _rows(900), group=150)
    monkeypatch.setattr(shards, "_filter_one", scale_support.die_on_row_groups_two)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ShardFailedError) as info:
        filter_inputs(
            [path], str(joined.cache_v1), joined.trust, at=AT, kept_path=out / "kept.parquet",
            removed_path=out / "removed.parquet", report_path=out / "report.json",
            executor=executor_name, workers=2, rows_per_shard=300,
        )  # fmt: skip
    assert str(info.value).startswith(f"{path} (row groups 2-3): the ")
    assert os.listdir(out) == []
    assert sorted(os.listdir(tmp_path)) == ["big.parquet", "out"]


def test_cli_filter_with_an_executor_gives_the_same_bytes(joined: Joined, tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in _rows(500)))
    folder = tmp_path / "folder"
    folder.mkdir()
    for i in (0, 1, 97):  # 0 and 97 are listed by sha256
        (folder / f"f{i}.txt").write_text(_text(i))
    for source, suffix in ((records, ".jsonl"), (folder, ".txt")):
        outputs = []
        for extra in ([], ["--executor", "local", "--workers", "2"]):
            out = tmp_path / f"out-{source.name}-{len(extra)}"
            out.mkdir()
            result = run_cli(
                "filter", source, "--lists", joined.cache_v1, "--trust", joined.trust_path,
                "--now", "2026-07-01T06:00:00Z", "-o", out / f"kept{suffix}", "--removed",
                out / f"removed{suffix}", "--report", out / "report.json", *extra,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            outputs.append([(out / n).read_bytes() for n in sorted(os.listdir(out))])
        assert outputs[0] == outputs[1]
        assert len(outputs[0]) == 3 and outputs[0][1]  # something was removed


@pytest.mark.parametrize("count", [1, 3, 16])
def test_parts_read_in_tasks_sum_to_the_whole(joined: Joined, tmp_path: Path, count: int) -> None:
    out = tmp_path / "parted"
    written = partitions.write_partitioned(joined.entries, out, partitions=count)
    with make_executor("local", workers=2) as runner:
        read, audit = parallel.read_parts(out, written, joined.sources, executor=runner)
    assert audit is None
    assert read.summary == written == manifest_module.read_manifest(out).summary
    assert read.tally.by_source == {"web": (COUNT, sum(e.size or 0 for e in joined.entries))}


def test_cli_verify_lists_on_a_ray_cluster_by_address(joined: Joined, ray_cluster: str) -> None:
    common = [
        "verify", joined.signed["parted"], "--trust", joined.trust_path, "--manifest",
        joined.parted, "--lists", joined.cache_v2, "--now", "2026-07-03T00:00:00Z", "--json",
    ]  # fmt: skip
    plain = run_cli(*common)
    on_ray = run_cli(*common, "--executor", "ray", "--ray-address", ray_cluster)
    assert plain.returncode == on_ray.returncode == 1, on_ray.stderr
    assert on_ray.stdout == plain.stdout


def test_a_worker_connection_runs_the_next_task_after_the_id_pass(tmp_path: Path) -> None:
    # A Ray worker runs many tasks on one DuckDB connection: the id pass must leave no
    # unfinished result behind, or the next task's join fails.
    import numpy as np

    from provenance.lists import joins

    ids = tmp_path / "ids.parquet"
    rows = np.zeros((3, 32), dtype=np.uint8)
    joins.write_keyed(ids, np.array([1, 1, 1]), rows, np.array([5, 9, 12]), ["a", "b", "a"])
    assert joins.first_repeated([str(ids)], 1) == (12, "a")
    (bucket,) = joins.write_buckets(rows[:2], np.array([0, 1]), tmp_path, side="x", buckets=1)
    mine, listed = joins.join_rows(rows[:1], np.array([7]), str(bucket))
    assert (mine.tolist(), sorted(listed.tolist())) == ([7, 7], [0, 1])


def test_a_forked_worker_does_not_touch_its_parents_duckdb_connection(tmp_path: Path) -> None:
    # This process joins first (its thread's connection is made), then forks a pool whose
    # workers join too: an inherited connection, used or closed, would hang them.
    import numpy as np

    from provenance.executors import LocalExecutor
    from provenance.lists import joins

    rows = np.zeros((2, 32), dtype=np.uint8)
    (bucket,) = joins.write_buckets(rows, np.array([0, 1]), tmp_path, side="x", buckets=1)
    assert scale_support.join_in_task(str(bucket)) == 2
    with LocalExecutor(2) as runner:
        found = list(runner.map(scale_support.join_in_task, [str(bucket)] * 4, names=list("abcd")))
    assert found == [2, 2, 2, 2]
