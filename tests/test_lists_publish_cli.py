"""``lists publish`` and ``lists diff`` through the CLI: plain one-value-per-line files of any
entry type (UT1's ``urls``), the timestamp lifetime kept across publishes, unchanged entries,
FIFOs and files where a directory belongs, and the difference between two versions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance.keys import PrivateKey, write_key_pair
from provenance.lists._serve import serving
from provenance.trust import TrustStore
from tests.conftest import ROOT, VECTORS, one_error_line, run_cli

T0 = "2026-07-01T00:00:00Z"
UT1_URLS = VECTORS / "blocklists" / "ut1-warez-urls.txt"


@pytest.fixture
def w(tmp_path: Path) -> Iterator[Path]:
    """A working directory with the association's key and a trust store pinning it."""
    key = PrivateKey.generate()
    write_key_pair(key, tmp_path / "assoc.key")
    store = TrustStore()
    for name in ("warez", "piracy", "hashes"):
        store = store.with_key(key.public, name="Assoc", role="list-publisher", list_name=name)
    (tmp_path / "trust.json").write_bytes(store.to_json())
    yield tmp_path


def publish(w: Path, entries: Path, name: str, *args: str, now: str = T0) -> Any:
    return run_cli(
        "lists", "publish", entries, "--name", name, "--key", w / "assoc.key",
        "--repo", w / "repo", "--publisher", "Assoc", "--now", now, *args,
    )  # fmt: skip


def fetch(w: Path, now: str = T0) -> Any:
    with serving(w / "repo") as url:
        return run_cli(
            "lists", "fetch", url, "--trust", w / "trust.json", "--cache", w / "cache",
            "--now", now,
        )  # fmt: skip


def test_ut1_urls_as_url_prefix_entries_remove_their_pages(w: Path) -> None:
    """Issue 7.6: UT1's 'urls' (host/path per line) was refused as 'not a valid domain'."""
    refused = publish(w, UT1_URLS, "warez", "--category", "piracy")
    assert refused.returncode == 2
    assert "ut1-warez-urls.txt:1: '109.238.9.3/torrent' is not a valid domain" in one_error_line(
        refused
    )
    done = publish(w, UT1_URLS, "warez", "--type", "url-prefix", "--category", "piracy", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["entries"] == 15
    assert fetch(w).returncode == 0
    records = [
        ("r1", "http://abclan.com/hack/tools.zip"),  # abclan.com/hack/
        ("r2", "https://membres.lycos.fr/lucasferrand/index.html"),
        ("r3", "http://109.238.9.3/torrent"),
        ("r4", "http://megagames.com/pc-fixes/game"),
        ("r5", "http://membres.lycos.fr/lucasferrand-other/"),  # not at a segment boundary
        ("r6", "http://abclan.com/about"),  # same host, another path
        ("r7", "http://www.abclan.com/hack/x"),  # url-prefix entries do not cover subdomains
    ]
    source = w / "crawl.jsonl"
    source.write_text(
        "".join(json.dumps({"id": i, "url": u, "text": i}) + "\n" for i, u in records)
    )
    filtered = run_cli(
        "filter", source, "--lists", w / "cache", "--trust", w / "trust.json",
        "-o", w / "kept.jsonl", "--removed", w / "removed.jsonl", "--now", T0,
    )  # fmt: skip
    assert filtered.returncode == 0, filtered.stderr
    removed = [json.loads(line)["id"] for line in (w / "removed.jsonl").read_text().splitlines()]
    assert removed == ["r1", "r2", "r3", "r4"]


@pytest.mark.parametrize(
    ("kind", "good", "bad", "message"),
    [
        ("sha256", "AB" * 32, "12345", "must be 64 lower-case hex digits"),
        ("text-sha256", "cd" * 32, "xyz", "must be 64 lower-case hex digits"),
        ("url", "https://example.org/page?id=1", "ftp://example.org/x", "only http and https"),
        ("url-prefix", "example.org/books/", "exa mple.org/x", "expected one url-prefix value"),
        ("domain", "example.org", "co.uk", "only a public suffix"),
    ],
)
def test_plain_files_of_each_type(w: Path, kind: str, good: str, bad: str, message: str) -> None:
    entries = w / "entries.txt"
    entries.write_text(f"# {kind} values\n{good}\n")
    done = publish(w, entries, "hashes", "--type", kind, "--json")
    assert done.returncode == 0, done.stderr
    entries.write_text(f"{good}\n{bad}\n")
    refused = publish(w, entries, "hashes", "--type", kind)
    assert refused.returncode == 2
    line = one_error_line(refused)
    assert "entries.txt:2:" in line and message in line, line


def test_publish_keeps_the_lifetime_set_by_refresh(w: Path) -> None:
    """Issue 7.10: a publish without --expires-in used to reset a 30-day timestamp to 7 days."""
    entries = w / "entries.txt"
    entries.write_text("one.example\n")
    first = publish(w, entries, "piracy", "--expires-in", "10", "--json")
    assert json.loads(first.stdout)["timestampExpires"] == "2026-07-11T00:00:00Z"
    refreshed = run_cli(
        "lists", "refresh", "--repo", w / "repo", "--key", w / "assoc.key",
        "--expires-in", "30", "--now", "2026-07-02T00:00:00Z", "--json",
    )  # fmt: skip
    assert refreshed.returncode == 0, refreshed.stderr
    assert json.loads(refreshed.stdout)["timestampExpires"] == "2026-08-01T00:00:00Z"
    entries.write_text("one.example\ntwo.example\n")
    second = publish(w, entries, "piracy", "--json", now="2026-07-03T00:00:00Z")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["timestampExpires"] == "2026-08-02T00:00:00Z"  # 30 days
    again = run_cli(
        "lists", "refresh", "--repo", w / "repo", "--key", w / "assoc.key",
        "--now", "2026-07-04T00:00:00Z", "--json",
    )  # fmt: skip
    assert json.loads(again.stdout)["timestampExpires"] == "2026-08-03T00:00:00Z"
    entries.write_text("three.example\n")
    given = publish(w, entries, "piracy", "--json", "--expires-in", "2", now="2026-07-05T00:00:00Z")
    assert json.loads(given.stdout)["timestampExpires"] == "2026-07-07T00:00:00Z"


def test_publishing_identical_entries_is_unchanged(w: Path) -> None:
    """Issue 7.10: identical entries made a new version; now 'unchanged', exit 0, nothing new."""
    entries = w / "entries.txt"
    entries.write_text("0.0.0.0 one.example\n0.0.0.0 two.example\n")
    first = publish(w, entries, "piracy", "--json")
    assert first.returncode == 0
    before = sorted(str(p.relative_to(w)) for p in (w / "repo").rglob("*"))
    # The same entries in another order and spelling are the same list.
    entries.write_text("TWO.example.\n# a comment\none.example\n")
    again = publish(w, entries, "piracy", now="2026-07-02T00:00:00Z")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("unchanged: piracy v1 already holds these 2 entries")
    assert sorted(str(p.relative_to(w)) for p in (w / "repo").rglob("*")) == before
    as_json = publish(w, entries, "piracy", "--json", now="2026-07-02T00:00:00Z")
    document = json.loads(as_json.stdout)
    assert document["unchanged"] is True and document["version"] == 1
    assert document["digest"] == json.loads(first.stdout)["digest"]
    entries.write_text("one.example\n")
    changed = publish(w, entries, "piracy", "--json", now="2026-07-02T00:00:00Z")
    assert json.loads(changed.stdout)["version"] == 2


def test_publish_from_a_fifo_does_not_hang(w: Path) -> None:
    """Issue 8.8: ENTRIES that is a FIFO with no writer used to block for ever."""
    fifo = w / "entries.fifo"
    os.mkfifo(fifo)
    command = [
        sys.executable, "-m", "provenance", "lists", "publish", str(fifo), "--name", "piracy",
        "--key", str(w / "assoc.key"), "--repo", str(w / "repo"), "--now", T0,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=20, env=env, check=False
    )
    assert result.returncode == 2
    assert "not a regular file" in one_error_line(result)  # type: ignore[arg-type]
    assert not (w / "repo").exists() or not any((w / "repo").rglob("*.json"))


def test_publish_repo_that_is_a_file(w: Path) -> None:
    """Issue 8.14: '--repo FILE' gave a traceback."""
    entries = w / "entries.txt"
    entries.write_text("one.example\n")
    (w / "repo").write_text("not a directory\n")
    result = publish(w, entries, "piracy")
    assert result.returncode == 2
    assert (
        one_error_line(result)
        == f"error: {w / 'repo'}: not a directory (a list repository is a directory)"
    )
    refreshed = run_cli(
        "lists", "refresh", "--repo", w / "repo", "--key", w / "assoc.key", "--now", T0
    )
    assert refreshed.returncode == 2
    assert "not a directory" in one_error_line(refreshed)
    nested = run_cli(
        "lists", "publish", entries, "--name", "piracy", "--key", w / "assoc.key",
        "--repo", w / "repo" / "sub", "--now", T0,
    )  # fmt: skip
    assert nested.returncode == 2
    one_error_line(nested)
    assert (w / "repo").read_text() == "not a directory\n"


def test_lists_diff(w: Path) -> None:
    """Issue 7.11: added and removed entries per category between two cached versions."""
    entries = w / "entries.jsonl"
    entries.write_text(
        '{"type": "domain", "value": "one.example", "category": "piracy"}\n'
        '{"type": "domain", "value": "two.example", "category": "piracy"}\n'
        '{"type": "url-prefix", "value": "three.example/x", "category": "opt-out"}\n'
    )
    assert publish(w, entries, "piracy").returncode == 0
    entries.write_text(
        '{"type": "domain", "value": "one.example", "category": "piracy"}\n'
        '{"type": "domain", "value": "four.example", "category": "piracy"}\n'
        '{"type": "url-prefix", "value": "three.example/x", "category": "illegal"}\n'
        '{"type": "sha256", "value": "' + "ab" * 32 + '", "category": "opt-out"}\n'
    )
    assert publish(w, entries, "piracy", now="2026-07-02T00:00:00Z").returncode == 0
    assert fetch(w, now="2026-07-02T01:00:00Z").returncode == 0
    base = [
        "lists",
        "diff",
        "piracy",
        "1",
        "2",
        "--cache",
        w / "cache",
        "--now",
        "2026-07-02T01:00:00Z",
    ]
    trusted = [*base, "--trust", w / "trust.json"]
    human = run_cli(*trusted)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0].startswith("piracy v1 (")
    assert "3 added, 2 removed" in lines[0]
    assert lines[1:] == [
        "piracy:",
        "- domain two.example",
        "+ domain four.example",
        "opt-out:",
        "- url-prefix three.example/x",
        "+ sha256 " + "ab" * 32,
        "illegal:",
        "+ url-prefix three.example/x",
    ]
    as_json = run_cli(*trusted, "--json")
    document = json.loads(as_json.stdout)
    assert document["from"]["version"] == 1 and document["to"]["version"] == 2
    assert [(e["category"], e["value"]) for e in document["added"]] == [
        ("piracy", "four.example"),
        ("opt-out", "ab" * 32),
        ("illegal", "three.example/x"),
    ]
    assert [(e["category"], e["value"]) for e in document["removed"]] == [
        ("piracy", "two.example"),
        ("opt-out", "three.example/x"),
    ]
    assert document["categories"]["piracy"] == {"added": 1, "removed": 1}
    # Reversed, added and removed swap; without --trust a note says what was checked.
    back = json.loads(
        run_cli("lists", "diff", "piracy", "2", "1", "--cache", w / "cache", "--json").stdout
    )
    assert back["added"] == document["removed"] and back["removed"] == document["added"]
    untrusted = run_cli(*base)
    assert untrusted.returncode == 0 and "give --trust" in untrusted.stderr
    missing = run_cli("lists", "diff", "piracy", "1", "3", "--cache", w / "cache")
    assert missing.returncode == 2
    assert "version 3 is not in the cache" in one_error_line(missing)
    stranger = TrustStore().with_key(
        PrivateKey.generate().public, name="X", role="list-publisher", list_name="piracy"
    )
    (w / "other-trust.json").write_bytes(stranger.to_json())
    refused = run_cli(*base, "--trust", w / "other-trust.json")
    assert refused.returncode == 1
    assert "list 'piracy' v1" in one_error_line(refused)
