"""The command line as a thin layer over the library: what reaches the terminal is escaped, a
creator's own folder is not held to dataset id rules, nothing is skipped silently, a moved clock
never revives an expired key, and library messages name no command-line option."""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest
from exclusion_support import NOW as LISTS_NOW
from exclusion_support import Association, entry, sha

from tests.conftest import ROOT, SAMPLES, one_error_line, run_cli

BOOK = SAMPLES / "data" / "books" / "01-a-scandal-in-bohemia.txt"


def _ok(*args: str | Path) -> str:
    result = run_cli(*args)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A signed (and auditor co-signed) card over the sample books, and a proof for one."""
    work = tmp_path_factory.mktemp("story")
    shutil.copytree(SAMPLES / "data" / "books", work / "data")
    for name in ("dev", "aud"):
        _ok("key", "generate", work / f"{name}.key")
    _ok("trust", "add", work / "trust.json", work / "dev.key.pub", "--name", "Lab",
        "--role", "dataset-publisher")  # fmt: skip
    _ok("trust", "add", work / "trust.json", work / "aud.key.pub", "--name", "Aud",
        "--role", "auditor")  # fmt: skip
    _ok("manifest", "build", work / "data", "-o", work / "manifest.jsonl")
    spec = {
        "name": "books",
        "version": "1",
        "description": "Stories.",
        "publisher": {"name": "Lab"},
        "sources": [
            {"id": "books", "name": "Books", "kind": "public-domain", "license": "CC0-1.0",
             "paths": ["**"]},
        ],
    }  # fmt: skip
    (work / "spec.json").write_text(json.dumps(spec))
    _ok("card", "build", work / "spec.json", "--manifest", work / "manifest.jsonl",
        "-o", work / "card.json")  # fmt: skip
    _ok("card", "sign", work / "card.json", "--key", work / "dev.key", "-o", work / "signed.json")
    _ok("card", "sign", work / "signed.json", "--key", work / "aud.key", "-o", work / "signed.json")
    _ok("lookup", BOOK, "--manifest", work / "manifest.jsonl", "--card", work / "signed.json",
        "--trust", work / "trust.json", "--proof-out", work / "book.proof.json")  # fmt: skip
    return work


def _trust_expired_yesterday(story: Path, path: Path) -> tuple[Path, str]:
    """The story's trust store with the publisher's trust ended a day ago on the real clock, and
    a time a month before that."""
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    document = json.loads((story / "trust.json").read_text())
    for item in document["keys"]:
        if item["roles"] == ["dataset-publisher"]:
            item["notAfter"] = yesterday.strftime("%Y-%m-%dT%H:%M:%SZ")
    path.write_text(json.dumps(document))
    return path, (yesterday - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- issue 8.13: a moved clock never revives an expired key (lookup --card, proof verify) ------


def test_a_moved_clock_never_revives_an_expired_key_in_lookup(story: Path, tmp_path: Path) -> None:
    trust, before = _trust_expired_yesterday(story, tmp_path / "trust.json")
    card = ("--manifest", story / "manifest.jsonl", "--card", story / "signed.json")
    # At the time asked about the key was trusted: only the real clock refuses it.
    trusted = run_cli("lookup", BOOK, *card, "--trust", story / "trust.json", "--now", before)
    assert trusted.returncode == 0, trusted.stderr
    moved = run_cli("lookup", BOOK, *card, "--trust", trust, "--now", before)
    assert moved.returncode == 1, moved.stderr
    assert "trust expired at" in one_error_line(moved)
    assert "on the real clock" in one_error_line(moved)
    assert run_cli("lookup", BOOK, *card, "--trust", trust).returncode == 1


def test_a_moved_clock_never_revives_an_expired_key_in_proof_verify(
    story: Path, tmp_path: Path
) -> None:
    trust, before = _trust_expired_yesterday(story, tmp_path / "trust.json")
    proof = ("proof", "verify", story / "book.proof.json", "--card", story / "signed.json")
    assert run_cli(*proof, "--trust", story / "trust.json", "--now", before).returncode == 0
    moved = run_cli(*proof, "--trust", trust, "--now", before, "--json")
    assert moved.returncode == 1, moved.stderr
    assert "on the real clock" in one_error_line(moved)
    document = json.loads(moved.stdout)
    assert document["ok"] is False and "on the real clock" in document["error"]
    # What the damaged or refused proof claims is reported, marked as unverified by 'ok'.
    assert document["claim"] == "present" and document["status"] == "exact"


def test_a_moved_clock_never_revives_an_expired_key_in_export(story: Path, tmp_path: Path) -> None:
    trust, before = _trust_expired_yesterday(story, tmp_path / "trust.json")
    export = ("export", "html", story / "signed.json", "-o", tmp_path / "card.html")
    trusted = run_cli(*export, "--trust", story / "trust.json", "--now", before)
    assert trusted.returncode == 0, trusted.stderr
    (tmp_path / "card.html").unlink()
    moved = run_cli(*export, "--trust", trust, "--now", before)
    assert moved.returncode == 1, moved.stderr
    assert "on the real clock" in one_error_line(moved)
    assert not (tmp_path / "card.html").exists()


# -- issues 8.6 and 8.10: a creator's own folder of works ---------------------------------------


def test_a_works_folder_is_not_held_to_manifest_id_rules(story: Path, tmp_path: Path) -> None:
    """An NFD name (as macOS writes them) and a name with a terminal escape are a creator's own
    files: looked up, and printed escaped, never refused as dataset ids would be."""
    works = tmp_path / "portfolio"
    works.mkdir()
    nfd = "cafe\u0301.txt"
    shutil.copyfile(BOOK, works / nfd)
    (works / "x\x1b[2Kfake.txt").write_text("A story that is in no dataset at all.\n")
    result = run_cli("lookup", works, "--manifest", story / "manifest.jsonl")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("exact") and line.endswith(f"{works / nfd}") for line in lines)
    assert any(line.startswith("absent") and line.endswith("x\\x1b[2Kfake.txt") for line in lines)
    as_json = run_cli("lookup", works, "--manifest", story / "manifest.jsonl", "--json")
    statuses = {Path(r["work"]).name: r["status"] for r in json.loads(as_json.stdout)["results"]}
    assert statuses == {nfd: "exact", "x\x1b[2Kfake.txt": "absent"}
    # With the card, proofs are written for both, under printable file names.
    signed = ("--card", story / "signed.json", "--trust", story / "trust.json")
    out = tmp_path / "proofs"
    written = run_cli("lookup", works, "--manifest", story / "manifest.jsonl", *signed,
                      "--proof-out", out)  # fmt: skip
    assert written.returncode == 0, written.stderr
    assert len(list(out.iterdir())) == 2 and "\x1b" not in written.stdout


def test_card_show_escapes_what_the_card_says(story: Path, tmp_path: Path) -> None:
    spec = json.loads((story / "spec.json").read_text())
    spec["sources"][0]["name"] = "Books\x1b[2K\rok    everything verified"
    spec["description"] = "Right\u202eto left"
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    _ok("card", "build", tmp_path / "spec.json", "--manifest", story / "manifest.jsonl",
        "-o", tmp_path / "card.json")  # fmt: skip
    _ok("card", "sign", tmp_path / "card.json", "--key", story / "dev.key",
        "-o", tmp_path / "signed.json")  # fmt: skip
    shown = run_cli("card", "show", tmp_path / "signed.json", "--trust", story / "trust.json")
    assert shown.returncode == 0, shown.stderr
    for raw in ("\x1b", "\r", "\u202e"):
        assert raw not in shown.stdout
    assert "Books\\x1b[2K\\x0dok    everything verified" in shown.stdout
    assert "Right\\u202eto left" in shown.stdout


# -- a silent no-op is a bug: filter says what it skipped ---------------------------------------


def test_filter_of_a_folder_says_how_many_symlinks_it_skipped(tmp_path: Path) -> None:
    assoc = Association(tmp_path / "assoc")
    assoc.publish("piracy", [entry("sha256", sha("A pirated book.\n"))])
    assoc.fetch()
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("A pirated book.\n")
    (data / "b.txt").write_text("Fine.\n")
    (tmp_path / "outside.txt").write_text("A pirated book.\n")
    (data / "inside-link.txt").symlink_to("b.txt")
    (data / "outside-link.txt").symlink_to(tmp_path / "outside.txt")
    result = run_cli(
        "filter", data, "--lists", assoc.cache, "--trust", assoc.trust_path,
        "-o", tmp_path / "kept.txt", "--removed", tmp_path / "removed.txt",
        "--report", tmp_path / "report.json", "--now", LISTS_NOW,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    note = f"skipped 2 symlink(s) in {data}, 1 pointing outside it (never followed)"
    assert f"note: {note}" in result.stderr.splitlines()
    assert (tmp_path / "kept.txt").read_text().splitlines() == ["b.txt"]
    assert (tmp_path / "removed.txt").read_text().splitlines() == ["a.txt"]
    assert note in json.loads((tmp_path / "report.json").read_text())["notes"]


# -- library messages do not name command-line options ---------------------------------------

_FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _message_strings(node: ast.AST) -> list[ast.Constant]:
    return [
        sub
        for sub in ast.walk(node)
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str)
    ]


def test_library_messages_name_no_command_line_option() -> None:
    """Errors and warnings of the library are for any caller: they name parameters, files and
    values, never an option of the command line (the CLI names its options itself)."""
    found: list[str] = []
    for path in sorted((ROOT / "provenance").rglob("*.py")):
        if "cli" in path.relative_to(ROOT / "provenance").parts:
            continue
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            strings: list[ast.Constant] = []
            if isinstance(node, ast.Raise) and node.exc is not None:
                strings += _message_strings(node.exc)
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", ""))
                if name in ("warn", "warning"):
                    strings += _message_strings(node)
                for keyword in node.keywords:
                    if keyword.arg in ("what", "label", "where"):
                        strings += _message_strings(keyword.value)
            found += [
                f"{path.relative_to(ROOT)}:{s.lineno}: {s.value!r}"
                for s in strings
                if _FLAG.search(s.value)
            ]
    assert found == []


def test_the_cli_names_the_option_of_a_parameter_the_library_refuses(tmp_path: Path) -> None:
    _ok("key", "generate", tmp_path / "k")
    (tmp_path / "entries.txt").write_text("example.com\n")
    common = ("lists", "publish", tmp_path / "entries.txt", "--name", "piracy",
              "--key", tmp_path / "k", "--repo", tmp_path / "repo")  # fmt: skip
    result = run_cli(*common, "--threshold", "2")
    assert result.returncode == 2
    assert one_error_line(result) == (
        "error: --threshold 2: must be between 1 and the 1 key(s) given"
    )
    result = run_cli(*common, "--expires-in", "0")
    assert one_error_line(result) == "error: --expires-in: must be between 1 and 3650 days"


# -- the demo is one list of steps, not an import-order side effect ----------------------------


def test_demo_steps_are_listed_in_one_place() -> None:
    import importlib

    from provenance.cli import _demo

    before = [step.__name__ for step in _demo.steps()]
    for module in ("_lists", "_filter", "_lookup", "_proof", "_export", "_card", "_registry"):
        importlib.import_module(f"provenance.cli.{module}")
    assert (
        [step.__name__ for step in _demo.steps()]
        == before
        == [
            "export_step",
            "association_step",
            "filter_step",
            "creator_lookup_step",
            "creator_proofs_step",
            "registry_step",
        ]
    )
