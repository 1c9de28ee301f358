"""``provenance filter``: lists fetched over HTTP from a real TUF repository on 127.0.0.1, applied
to JSON Lines, CSV, Parquet and directories; the report and ``card build --filter-report``."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from exclusion_support import NOW, T0, Association, entry, sha

from provenance import schema
from provenance.errors import ExpiredError, FormatError, InputError, NotCachedError
from provenance.filter import apply_lists, parse_list_selector, select_lists
from provenance.normtext import norm_text_sha256
from tests.conftest import one_error_line, run_cli

AT = dt.datetime(2026, 7, 1, 6, tzinfo=dt.UTC)
PIRATED = "The full text of a pirated novel.\n"
OPTED_OUT_TEXT = "An  essay whose author\nopted OUT of training."

PIRACY_V1 = [
    entry("domain", "01cinema.com"),
    entry("domain", "127.0.0.1", "illegal"),
    entry("url-prefix", "archive.example/piracy"),
    entry("sha256", sha(PIRATED)),
]
OPTOUT_V1 = [
    entry("domain", "opted-out.example", "opt-out"),
    entry(
        "text-sha256",
        norm_text_sha256(b"an essay whose author opted out of training.") or "",
        "opt-out",
    ),
    entry("domain", "01cinema.com", "opt-out"),
]

RECORDS: list[dict[str, Any]] = [
    {"id": "r01", "url": "https://news.example/a", "text": "kept 1", "source": "web"},
    {"id": "r02", "url": "http://WWW.01Cinema.com./film", "text": "x", "source": "web"},
    {"id": "r03", "url": "https://not01cinema.com/", "text": "kept 2", "source": "web"},
    {"id": "r04", "url": "http://0x7f.1/page", "text": "y", "source": "web"},
    {"id": "r05", "url": "https://archive.example/piracy/book", "text": "z", "source": "web"},
    {
        "id": "r06",
        "url": "https://archive.example/piracy-report",
        "text": "kept 3",
        "source": "web",
    },
    {"id": "r07", "url": "https://mirror.example/x", "text": PIRATED, "source": "web"},
    {"id": "r08", "url": "https://blog.example/e", "text": OPTED_OUT_TEXT, "source": "web"},
    {"id": "r09", "url": "http://exa mple.com/", "text": "unparseable", "source": "web"},
    {"id": "r10", "url": "http://evil.com\\@opted-out.example/", "text": "kept 4", "source": "web"},
    {"id": "r11", "url": "http://user@opted-out.example:8080/", "text": "w", "source": "web"},
    {"id": "r12", "text": "no url, kept 5", "source": "web"},
]
KEPT = ["r01", "r03", "r06", "r10"]
# r12 has no URL while domain and URL entries are applied: removed (missingUrl) by default.
REMOVED = ["r02", "r04", "r05", "r07", "r08", "r09", "r11", "r12"]


@pytest.fixture(scope="module")
def assoc(tmp_path_factory: pytest.TempPathFactory) -> Association:
    association = Association(tmp_path_factory.mktemp("filter") / "assoc")
    association.publish("piracy", PIRACY_V1)
    association.publish("optout", OPTOUT_V1)
    association.publish("piracy", [*PIRACY_V1, entry("domain", "news.example")])
    association.fetch()
    return association


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
    return path


def ids_jsonl(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text("utf-8").splitlines()]


def test_jsonl_kept_removed_and_report(assoc: Association, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    cached = select_lists(assoc.cache, ["piracy@1", "optout"], at=AT, store=assoc.store)
    report = apply_lists(
        source,
        cached,
        kept_path=tmp_path / "kept.jsonl",
        removed_path=tmp_path / "removed.jsonl",
        report_path=tmp_path / "report.json",
        at=AT,
    ).to_dict()
    assert ids_jsonl(tmp_path / "kept.jsonl") == KEPT
    assert ids_jsonl(tmp_path / "removed.jsonl") == REMOVED
    # Kept lines are the input lines, byte for byte.
    lines = source.read_text("utf-8").splitlines()
    assert (tmp_path / "kept.jsonl").read_text("utf-8").splitlines() == [
        lines[int(i[1:]) - 1] for i in KEPT
    ]
    assert report["records"] == {
        "input": 12,
        "kept": 4,
        "removed": 6,
        "unevaluable": 1,
        "missingUrl": 1,
    }
    assert report["missingUrlPolicy"] == "removed"
    assert report["missingUrlExamples"] == ["r12"]
    assert report["unevaluableExamples"][0]["id"] == "r09"
    by_name = {item["name"]: item for item in report["lists"]}
    # r02 is on both lists (counted in each); r04 illegal; r05 url-prefix; r07 sha256.
    assert by_name["piracy"]["version"] == 1
    assert by_name["piracy"]["matched"] == {"illegal": 1, "piracy": 3}
    assert by_name["piracy"]["removed"] == 4
    assert by_name["optout"]["matched"] == {"opt-out": 3}
    assert by_name["optout"]["removed"] == 3
    for item in report["lists"]:
        assert item["signers"] == [assoc.key.keyid]
        assert item["applied"] == "2026-07-01T06:00:00Z"
        assert len(item["digest"]) == 64
    assert [c.digest for c in cached] == [by_name["optout"]["digest"], by_name["piracy"]["digest"]]
    on_disk = json.loads((tmp_path / "report.json").read_text("utf-8"))
    assert on_disk == report
    schema.validate(on_disk, schema.FILTER_REPORT, what="report")


def test_newest_version_by_default(assoc: Association, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    cached = select_lists(assoc.cache, [], at=AT, store=assoc.store)
    assert [(c.list.name, c.list.version) for c in cached] == [("optout", 1), ("piracy", 2)]
    report = apply_lists(
        source, cached, kept_path=tmp_path / "k.jsonl", removed_path=None, report_path=None, at=AT
    ).to_dict()
    assert "r01" not in ids_jsonl(tmp_path / "k.jsonl")  # news.example was added in v2
    assert report["records"]["kept"] == 3


def test_csv_and_parquet_keep_format_and_order(assoc: Association, tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    columns = ["id", "url", "text", "source"]
    rows = [{c: r.get(c, "") for c in columns} for r in RECORDS]
    csv_in = tmp_path / "in.csv"
    with open(csv_in, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    cached = select_lists(assoc.cache, ["piracy@1", "optout@1"], at=AT, store=assoc.store)
    apply_lists(
        csv_in,
        cached,
        kept_path=tmp_path / "k.csv",
        removed_path=tmp_path / "r.csv",
        report_path=None,
        at=AT,
    )
    with open(tmp_path / "k.csv", encoding="utf-8", newline="") as handle:
        kept_rows = list(csv.DictReader(handle))
    assert [r["id"] for r in kept_rows] == KEPT
    assert kept_rows[0] == rows[0]
    with open(tmp_path / "r.csv", encoding="utf-8", newline="") as handle:
        assert [r["id"] for r in csv.DictReader(handle)] == REMOVED

    parquet_in = tmp_path / "in.parquet"
    pq.write_table(
        pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in RECORDS]), parquet_in
    )
    apply_lists(
        parquet_in,
        cached,
        kept_path=tmp_path / "k.parquet",
        removed_path=tmp_path / "r.parquet",
        report_path=None,
        at=AT,
    )
    kept_table = pq.read_table(tmp_path / "k.parquet")
    assert kept_table.column("id").to_pylist() == KEPT
    assert kept_table.schema == pq.read_table(parquet_in).schema
    assert pq.read_table(tmp_path / "r.parquet").column("id").to_pylist() == REMOVED


def test_directory_by_content_and_normalized_text(assoc: Association, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.txt").write_text("fine\n")
    (data / "sub" / "pirated.txt").write_text(PIRATED)
    # A re-wrapped, re-cased copy of the opted-out essay: only the normalized text matches.
    (data / "sub" / "essay.txt").write_text("AN ESSAY whose\r\n author opted out of training.  ")
    (data / "image.bin").write_bytes(bytes(range(256)))
    cached = select_lists(assoc.cache, ["piracy@1", "optout"], at=AT, store=assoc.store)
    report = apply_lists(
        data,
        cached,
        kept_path=tmp_path / "kept.txt",
        removed_path=tmp_path / "removed.txt",
        report_path=None,
        at=AT,
    ).to_dict()
    assert (tmp_path / "kept.txt").read_text().splitlines() == ["a.txt", "image.bin"]
    assert (tmp_path / "removed.txt").read_text().splitlines() == [
        "sub/essay.txt",
        "sub/pirated.txt",
    ]
    assert report["records"] == {
        "input": 4,
        "kept": 2,
        "removed": 2,
        "unevaluable": 0,
        "missingUrl": 0,
    }
    # Files have no URL: the lists' domain entries cannot apply, and the report says so.
    assert "files in a directory have no URL" in report["notes"][0]


def test_records_with_path_and_sha256_columns(assoc: Association, tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "book.txt").write_text(PIRATED)
    (tmp_path / "files" / "ok.txt").write_text("fine")
    records = [
        {"id": "p1", "path": "files/book.txt"},
        {"id": "p2", "path": "files/ok.txt"},
        {"id": "s1", "sha256": sha(PIRATED)},
        {"id": "s2", "sha256": sha("other")},
    ]
    source = write_jsonl(tmp_path / "in.jsonl", records)
    cached = select_lists(assoc.cache, ["piracy@1"], at=AT, store=assoc.store)
    # No record has a URL while the list holds domain entries: refused unless chosen knowingly.
    with pytest.raises(InputError, match="no record has a URL in column 'url'"):
        apply_lists(
            source, cached, kept_path=tmp_path / "k.jsonl", removed_path=None, report_path=None,
            at=AT,
        )  # fmt: skip
    assert not (tmp_path / "k.jsonl").exists()
    report = apply_lists(
        source, cached, kept_path=tmp_path / "k.jsonl", removed_path=None, report_path=None,
        at=AT, keep_missing_url=True,
    ).to_dict()  # fmt: skip
    assert ids_jsonl(tmp_path / "k.jsonl") == ["p2", "s2"]
    # The matched ones were removed by content; the two kept are counted as unchecked by URL.
    assert report["records"]["missingUrl"] == 2
    assert report["missingUrlPolicy"] == "kept"
    assert report["lists"][0]["missingUrl"] == 2
    assert "no record has a URL" in report["notes"][0]
    write_jsonl(source, [{"id": "x", "path": "../outside.txt"}])
    with pytest.raises(InputError, match="escapes"):
        apply_lists(
            source,
            cached,
            kept_path=tmp_path / "k.jsonl",
            removed_path=None,
            report_path=None,
            at=AT,
            keep_missing_url=True,
        )


def test_outputs_are_atomic(assoc: Association, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps(RECORDS[0]) + "\n" + "{not json\n")
    kept = tmp_path / "kept.jsonl"
    kept.write_text("previous\n")
    cached = select_lists(assoc.cache, ["piracy"], at=AT, store=assoc.store)
    with pytest.raises(FormatError, match="in.jsonl:2"):
        apply_lists(
            source,
            cached,
            kept_path=kept,
            removed_path=tmp_path / "r.jsonl",
            report_path=tmp_path / "rep.json",
            at=AT,
        )
    assert kept.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "kept.jsonl"]


def test_list_selection(assoc: Association) -> None:
    assert parse_list_selector("piracy@2") == ("piracy", 2)
    assert parse_list_selector("piracy") == ("piracy", None)
    for bad in ("@1", "piracy@0", "piracy@x", "piracy@"):
        with pytest.raises(
            InputError,
            match=(
                r"^list selector '.*': (expected NAME or NAME@VERSION"
                r"|VERSION must be a positive integer)"
            ),
        ):
            parse_list_selector(bad)
    with pytest.raises(InputError, match="twice"):
        select_lists(assoc.cache, ["piracy@1", "piracy@2"], at=AT, store=assoc.store)
    with pytest.raises(NotCachedError, match="list 'piracy' version 9 is not in the cache"):
        select_lists(assoc.cache, ["piracy@9"], at=AT, store=assoc.store)
    with pytest.raises(NotCachedError, match="list 'other' is not in the cache"):
        select_lists(assoc.cache, ["other"], at=AT, store=assoc.store)
    # Freeze: lists whose signed metadata expired are not applied.
    with pytest.raises(ExpiredError, match="timestamp metadata expired"):
        select_lists(assoc.cache, [], at=T0 + dt.timedelta(days=30), store=assoc.store)


def test_cli_filter_then_card_build(assoc: Association, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS)
    result = run_cli(
        "filter",
        source,
        "--lists",
        assoc.cache,
        "--trust",
        assoc.trust_path,
        "-o",
        tmp_path / "kept.jsonl",
        "--removed",
        tmp_path / "removed.jsonl",
        "--report",
        tmp_path / "report.json",
        "--list",
        "piracy@1",
        "--list",
        "optout",
        "--now",
        NOW,
    )
    assert result.returncode == 0, result.stderr
    assert "kept 4 of 12 record(s)" in result.stdout
    assert "removed 6 matched, 1 unevaluable and 1 without a URL" in result.stdout
    assert ids_jsonl(tmp_path / "kept.jsonl") == KEPT
    report = json.loads((tmp_path / "report.json").read_text())

    spec = tmp_path / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "name": "web-sample",
                "version": "1",
                "description": "test",
                "publisher": {"name": "Lab"},
                "sources": [
                    {"id": "web", "name": "Web crawl", "kind": "web-crawl", "license": "CC-BY-4.0"}
                ],
            }
        )
    )
    manifest = tmp_path / "manifest.jsonl"
    assert run_cli("manifest", "build", tmp_path / "kept.jsonl", "-o", manifest).returncode == 0
    built = run_cli(
        "card",
        "build",
        spec,
        "--manifest",
        manifest,
        "--filter-report",
        tmp_path / "report.json",
        "-o",
        tmp_path / "card.json",
        "--now",
        NOW,
    )
    assert built.returncode == 0, built.stderr
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["predicate"]["exclusions"] == report["lists"]

    # A report whose list items are not what a card records is refused, naming the problem.
    for change, message in (
        (lambda r: r["lists"][0].update(version=0), "version"),
        (lambda r: r["lists"][0].pop("digest"), "digest"),
        (lambda r: r["lists"][0].update(signers=["not-a-keyid"]), "signers"),
        (lambda r: r["lists"].append(dict(r["lists"][0])), "twice"),
    ):
        broken = json.loads(json.dumps(report))
        change(broken)
        (tmp_path / "bad.json").write_text(json.dumps(broken))
        refused = run_cli(
            "card",
            "build",
            spec,
            "--manifest",
            manifest,
            "--filter-report",
            tmp_path / "bad.json",
            "-o",
            tmp_path / "card2.json",
            "--now",
            NOW,
        )
        assert refused.returncode == 2, refused.stderr
        assert message in one_error_line(refused)
        assert not (tmp_path / "card2.json").exists()


def test_cli_errors_are_one_line(assoc: Association, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", RECORDS[:2])
    wrong_suffix = run_cli(
        "filter", source, "--lists", assoc.cache, "--trust", assoc.trust_path,
        "-o", tmp_path / "k.csv", "--now", NOW,
    )  # fmt: skip
    assert wrong_suffix.returncode == 2
    assert "input's format" in one_error_line(wrong_suffix)
    empty = run_cli(
        "filter", source, "--lists", tmp_path / "none", "--trust", assoc.trust_path,
        "-o", tmp_path / "k.jsonl", "--now", NOW,
    )  # fmt: skip
    assert empty.returncode == 2
    assert "lists fetch" in one_error_line(empty)
    expired = run_cli(
        "filter",
        source,
        "--lists",
        assoc.cache,
        "--trust",
        assoc.trust_path,
        "-o",
        tmp_path / "k.jsonl",
        "--now",
        "2026-09-01T00:00:00Z",
    )
    assert expired.returncode == 1
    one_error_line(expired)
    assert not (tmp_path / "k.jsonl").exists()


def test_demo_plays_the_filter_and_newly_listed_part() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "kept 20 of 30 record(s)" in out and "removed 9 matched and 1 unevaluable" in out
    assert "1 exclusion list(s) applied" in out
    assert "ok    list piracy v1: signed by Example Rights Association" in out
    assert "newly listed  ebook-0017: on piracy v2 (domain ebookdirectory.com, piracy)" in out
    assert "FAIL  newly listed: 2 manifest entries" in out
