"""``provenance filter`` and ``manifest build`` through the CLI, as a new user meets them: records
files whose columns have other names, records without a URL, unknown list names, IPv4-mapped IPv6
hosts, and lists that must be vouched for by the user's trust store (the cache is not trusted)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from exclusion_support import NOW, Association, entry, sha

from provenance.errors import SignatureError
from provenance.lists._serve import serving
from provenance.lists.cache import CachedList, load_cached_lists, trusted_signers
from tests.conftest import one_error_line, run_cli

PIRATED = "The full text of a pirated novel.\n"
LISTED = [
    entry("domain", "01cinema.com"),
    entry("domain", "93.184.216.34", "illegal"),
    entry("sha256", sha(PIRATED)),
]
# Crawl records as a user's pipeline writes them: the URL in "link", the text in "body".
ROWS: list[dict[str, Any]] = [
    {"key": "a", "link": "https://news.example/a", "body": "fine"},
    {"key": "b", "link": "http://www.01cinema.com/film", "body": "film"},
    {"key": "c", "link": "https://not01cinema.com/", "body": "look-alike, fine"},
    {"key": "d", "link": "https://mirror.example/x", "body": PIRATED},
]
KEPT = ["a", "c"]
LISTED_RECORD = {"id": "b", "url": "http://www.01cinema.com/", "text": "t"}
CLEAN_RECORD = {"id": "a", "url": "https://a.example/", "text": "t"}
SPEC = {
    "name": "crawl",
    "version": "1",
    "description": "test",
    "publisher": {"name": "Lab"},
    "sources": [
        {"id": "web", "name": "Web", "kind": "web-crawl", "license": "MIT", "paths": ["**"]}
    ],
}


@pytest.fixture(scope="module")
def assoc(tmp_path_factory: pytest.TempPathFactory) -> Association:
    association = Association(tmp_path_factory.mktemp("filter-cli") / "assoc", names=["piracy"])
    association.publish("piracy", LISTED)
    association.fetch()
    return association


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def ids_of(path: Path, column: str = "key") -> list[str]:
    if path.suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as handle:
            return [row[column] for row in csv.DictReader(handle)]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return [str(v) for v in pq.read_table(path).column(column).to_pylist()]
    return [json.loads(line)[column] for line in path.read_text("utf-8").splitlines()]


def run_filter(assoc: Association, source: Path, *args: str | Path) -> Any:
    return run_cli(
        "filter", source, "--lists", assoc.cache, "--trust", assoc.trust_path, "--now", NOW, *args
    )


def test_url_column_named_otherwise_is_refused_naming_the_columns(
    assoc: Association, tmp_path: Path
) -> None:
    """Issue 7.1: with URLs in 'link' (or 'URL'), filtering used to keep everything, silently."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    jsonl = write_jsonl(tmp_path / "in.jsonl", ROWS)
    upper = [{"key": r["key"], "URL": r["link"], "body": r["body"]} for r in ROWS]
    as_csv = write_csv(tmp_path / "in.csv", upper)
    parquet = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), parquet)
    for source, url_column in ((jsonl, "link"), (as_csv, "URL"), (parquet, "link")):
        kept = tmp_path / f"kept{source.suffix}"
        columns = ["--id-column", "key", "--text-column", "body"]
        refused = run_filter(assoc, source, "-o", kept, *columns)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        message = one_error_line(refused)
        assert "no record has a URL in column 'url'" in message
        assert f"'key', '{url_column}', 'body'" in message, message
        assert not kept.exists()
        done = run_filter(assoc, source, "-o", kept, *columns, "--url-column", url_column)
        assert done.returncode == 0, done.stderr
        assert ids_of(kept) == KEPT
        assert "kept 2 of 4 record(s)" in done.stdout


def test_path_and_sha256_columns(assoc: Association, tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "book.txt").write_text(PIRATED)
    (tmp_path / "files" / "ok.txt").write_text("fine")
    rows = [
        {"key": "p1", "link": "https://a.example/1", "file": "files/book.txt"},
        {"key": "p2", "link": "https://a.example/2", "file": "files/ok.txt"},
        {"key": "s1", "link": "https://a.example/3", "digest": sha(PIRATED)},
        {"key": "s2", "link": "https://a.example/4", "digest": sha("other")},
    ]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    columns = ["--id-column", "key", "--url-column", "link"]
    columns += ["--path-column", "file", "--sha256-column", "digest"]
    done = run_filter(assoc, source, "-o", tmp_path / "k.jsonl", *columns)
    assert done.returncode == 0, done.stderr
    assert ids_of(tmp_path / "k.jsonl") == ["p2", "s2"]
    # Two fields cannot share one column.
    clash = run_filter(assoc, source, "-o", tmp_path / "k.jsonl", "--url-column", "id")
    assert clash.returncode == 2
    assert "the id and url columns are both 'id'" in one_error_line(clash)


def test_manifest_build_column_options(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", ROWS)
    manifest = tmp_path / "m.jsonl"
    refused = run_cli("manifest", "build", source, "-o", manifest, "--no-fingerprints")
    assert refused.returncode == 2
    assert "missing or empty 'id'" in one_error_line(refused)
    built = run_cli(
        "manifest", "build", source, "-o", manifest, "--no-fingerprints",
        "--id-column", "key", "--url-column", "link", "--text-column", "body",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    by_id = {line["id"]: line for line in lines}
    assert sorted(by_id) == ["a", "b", "c", "d"]
    assert by_id["b"]["url"] == "http://www.01cinema.com/film"
    assert by_id["d"]["sha256"] == sha(PIRATED)
    # A directory has no columns: naming one is a mistake, said as such.
    folder = run_cli("manifest", "build", tmp_path, "-o", tmp_path / "d.jsonl", "--url-column", "x")
    assert folder.returncode == 2
    assert "column names (url in 'x') apply only to records files" in one_error_line(folder)


def test_duplicate_record_id_names_file_and_line(tmp_path: Path) -> None:
    rows = [{"id": "x", "text": "one"}, {"id": "y", "text": "two"}, {"id": "x", "text": "three"}]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    result = run_cli("manifest", "build", source, "-o", tmp_path / "m.jsonl", "--no-fingerprints")
    assert result.returncode == 2
    assert one_error_line(result) == (
        f"error: {source}:3: record id 'x' appears twice (first on line 1)"
    )
    as_csv = write_csv(tmp_path / "in.csv", rows)
    result = run_cli("manifest", "build", as_csv, "-o", tmp_path / "m.jsonl", "--no-fingerprints")
    assert result.returncode == 2
    assert f"{as_csv}:4: record id 'x' appears twice (first on line 2)" in one_error_line(result)


def test_records_without_a_url_are_counted_and_removed(assoc: Association, tmp_path: Path) -> None:
    """Among records with URLs, one whose URL is empty, null or missing is never passed as clean."""
    rows = [
        *ROWS,
        {"key": "e", "link": "", "body": "empty url"},
        {"key": "f", "link": None, "body": "null url"},
        {"key": "g", "body": "no url at all"},
        {"key": "h", "body": PIRATED},  # no URL, but matched by content: removed as matched
    ]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    columns = ["--id-column", "key", "--url-column", "link", "--text-column", "body"]
    report_path = tmp_path / "report.json"
    done = run_filter(
        assoc, source, "-o", tmp_path / "k.jsonl", "--removed", tmp_path / "r.jsonl",
        "--report", report_path, *columns,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ids_of(tmp_path / "k.jsonl") == KEPT
    assert ids_of(tmp_path / "r.jsonl") == ["b", "d", "e", "f", "g", "h"]
    assert "removed 3 matched and 3 without a URL" in done.stdout
    assert "without a URL: 'e', 'f', 'g'" in done.stdout
    report = json.loads(report_path.read_text())
    assert report["records"] == {
        "input": 8,
        "kept": 2,
        "removed": 3,
        "unevaluable": 0,
        "missingUrl": 3,
    }
    assert report["missingUrlPolicy"] == "removed"
    assert "missingUrl" not in report["lists"][0]  # nothing kept went unchecked

    # Kept knowingly: the report and the card built from it say how many went unchecked.
    kept_report = tmp_path / "kept-report.json"
    keep = run_filter(
        assoc, source, "-o", tmp_path / "k2.jsonl", "--report", kept_report, "--keep-missing-url",
        *columns,
    )  # fmt: skip
    assert keep.returncode == 0, keep.stderr
    assert ids_of(tmp_path / "k2.jsonl") == ["a", "c", "e", "f", "g"]
    assert "kept 3 record(s) without a URL: not checked by domain or URL" in keep.stdout
    assert "note: 3 record(s) without a URL in column 'link' were kept" in keep.stderr
    document = json.loads(kept_report.read_text())
    assert document["missingUrlPolicy"] == "kept"
    assert document["lists"][0]["missingUrl"] == 3

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(SPEC))
    manifest = tmp_path / "m.jsonl"
    built = run_cli(
        "manifest", "build", tmp_path / "k2.jsonl", "-o", manifest, "--no-fingerprints", *columns
    )
    assert built.returncode == 0, built.stderr
    card = run_cli(
        "card", "build", spec, "--manifest", manifest, "--filter-report", kept_report,
        "-o", tmp_path / "card.json", "--now", NOW,
    )  # fmt: skip
    assert card.returncode == 0, card.stderr
    exclusions = json.loads((tmp_path / "card.json").read_text())["predicate"]["exclusions"]
    assert exclusions == document["lists"] and exclusions[0]["missingUrl"] == 3


def test_unknown_list_is_bad_input(assoc: Association, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [CLEAN_RECORD])
    for selector in ("nosuch", "piracy@9"):
        result = run_filter(assoc, source, "-o", tmp_path / "k.jsonl", "--list", selector)
        assert result.returncode == 2, result.stderr
        assert "is not in the cache" in one_error_line(result)
    shown = run_cli(
        "lists", "show", "nosuch", "--cache", assoc.cache, "--trust", assoc.trust_path,
        "--now", NOW,
    )  # fmt: skip
    assert shown.returncode == 2
    assert "'nosuch' is not in the cache" in one_error_line(shown)


def test_ipv4_mapped_ipv6_urls_are_removed(assoc: Association, tmp_path: Path) -> None:
    """Issue 8.11: '[::ffff:93.184.216.34]' is the host 93.184.216.34."""
    rows = [
        {"id": "v4", "url": "http://93.184.216.34/", "text": "t"},
        {"id": "mapped", "url": "http://[::ffff:93.184.216.34]/", "text": "t"},
        {"id": "hex", "url": "https://[::ffff:5db8:d822]/page", "text": "t"},
        {"id": "other", "url": "http://[2001:db8::1]/", "text": "t"},
    ]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    done = run_filter(assoc, source, "-o", tmp_path / "k.jsonl", "--removed", tmp_path / "r.jsonl")
    assert done.returncode == 0, done.stderr
    assert ids_of(tmp_path / "r.jsonl", "id") == ["v4", "mapped", "hex"]
    assert ids_of(tmp_path / "k.jsonl", "id") == ["other"]


def test_filter_needs_a_trust_store(assoc: Association, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [CLEAN_RECORD])
    result = run_cli("filter", source, "--lists", assoc.cache, "-o", tmp_path / "k.jsonl")
    assert result.returncode == 2
    assert "--trust" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "k.jsonl").exists()


def test_a_repository_swapped_into_the_cache_is_refused(assoc: Association, tmp_path: Path) -> None:
    """Issue 8.4: the cache is not trusted. Another association's 'piracy' list (signed by its
    own key, without 01cinema.com) replaces the cached repository: filter must not apply it."""
    other = Association(tmp_path / "other", names=["piracy"])
    other.publish("piracy", [entry("domain", "elsewhere.example")])
    other.fetch()
    cache = tmp_path / "cache"
    shutil.copytree(other.cache, cache, symlinks=True)
    source = write_jsonl(tmp_path / "in.jsonl", [LISTED_RECORD])
    kept = tmp_path / "k.jsonl"
    result = run_cli(
        "filter", source, "--lists", cache, "--trust", assoc.trust_path, "-o", kept, "--now", NOW
    )
    assert result.returncode == 1, result.stdout + result.stderr
    message = one_error_line(result)
    assert "list 'piracy' v1" in message and "trusted key" in message
    assert not kept.exists()
    shown = run_cli("lists", "show", "--cache", cache, "--trust", assoc.trust_path, "--now", NOW)
    assert shown.returncode == 1
    assert "list 'piracy' v1" in one_error_line(shown)
    # The same cache, with the trust store that pins the other association's key, works.
    fine = run_cli(
        "filter", source, "--lists", cache, "--trust", other.trust_path, "-o", kept, "--now", NOW
    )
    assert fine.returncode == 0, fine.stderr


def test_the_repository_root_must_be_pinned_too(assoc: Association) -> None:
    """The same check as 'lists fetch': the targets' signers and the anchoring root's."""
    (cached,) = load_cached_lists(assoc.cache, at=dt.datetime(2026, 7, 1, 6, tzinfo=dt.UTC))
    at = dt.datetime(2026, 7, 1, 6, tzinfo=dt.UTC)
    assert trusted_signers(cached, assoc.store, at=at) == (assoc.key.keyid,)
    stranger = "f" * 64
    forged = CachedList(
        list=cached.list,
        digest=cached.digest,
        signers=cached.signers,
        expires=cached.expires,
        url=cached.url,
        anchor_signers=(stranger,),
    )
    with pytest.raises(SignatureError, match="root is signed by 0 of the 1 key"):
        trusted_signers(forged, assoc.store, at=at)


def test_filter_lists_from_a_repository_url(assoc: Association, tmp_path: Path) -> None:
    """Issue 7.10: 'filter --lists URL --trust TRUST', as 'verify' accepts."""
    source = write_jsonl(tmp_path / "in.jsonl", [LISTED_RECORD])
    kept = tmp_path / "k.jsonl"
    with serving(assoc.repo) as url:
        done = run_cli(
            "filter", source, "--lists", url, "--trust", assoc.trust_path, "-o", kept,
            "--now", NOW, "--json",
        )  # fmt: skip
        stranger = Association(tmp_path / "stranger", names=["piracy"])
        refused = run_cli(
            "filter", source, "--lists", url, "--trust", stranger.trust_path, "-o", kept,
            "--now", NOW,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records"]["removed"] == 1
    assert kept.read_text() == ""
    assert refused.returncode == 1
    assert "not signed by a threshold of the keys" in one_error_line(refused)


def test_a_mirror_of_the_same_repository_shares_the_cache(
    assoc: Association, tmp_path: Path
) -> None:
    """Issue 7.10: a cache is not tied to one URL; a mirror with the same root keys is accepted,
    and a repository with other keys still is not."""
    cache = tmp_path / "cache"
    mirror = tmp_path / "mirror"
    shutil.copytree(assoc.repo, mirror)
    fetch = ["--trust", assoc.trust_path, "--cache", cache, "--now", NOW]
    with serving(assoc.repo) as url:
        first = run_cli("lists", "fetch", url, *fetch)
    assert first.returncode == 0, first.stderr
    with serving(mirror) as mirror_url:
        again = run_cli("lists", "fetch", mirror_url, *fetch)
    assert again.returncode == 0, again.stderr
    assert "piracy v1" in again.stdout and "up to date" in again.stdout
    shown = run_cli(
        "lists", "show", "--cache", cache, "--trust", assoc.trust_path, "--json", "--now", NOW
    )
    (row,) = json.loads(shown.stdout)["lists"]
    assert row["url"] == mirror_url and row["versions"] == [1]
    # A repository signed by other keys, claiming the same list, is not a mirror.
    other = Association(tmp_path / "other", names=["piracy"])
    other.publish("piracy", [entry("domain", "elsewhere.example")])
    with serving(other.repo) as other_url:
        refused = run_cli("lists", "fetch", other_url, *fetch)
    assert refused.returncode == 1
    assert "not signed by a threshold of the keys" in one_error_line(refused)
