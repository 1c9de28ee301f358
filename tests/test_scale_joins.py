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
