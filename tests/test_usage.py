"""The usage report: figures computed by hand on a small manifest, and the CLI end to end."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provenance import _json, card, proofs
from provenance.envelope import sign_envelope
from provenance.errors import DigestMismatchError, InputError
from provenance.keys import PrivateKey
from provenance.manifest import ManifestEntry, write_manifest
from provenance.manifest import reader as manifest_reader
from provenance.trust import TrustStore
from provenance.usage import csv_text, usage, usage_report
from tests.conftest import one_error_line, run_cli

AT = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)
SOURCES = [
    {
        "id": "press",
        "name": "Alice Press archive",
        "kind": "licensed",
        "license": "CC-BY-4.0",
        "rightsHolder": "Alice Press",
        "paths": ["a/**"],
    },
    {
        "id": "web",
        "name": "Web crawl",
        "kind": "web-crawl",
        "license": "LicenseRef-X",
        "paths": ["b/**"],
    },
]
SPEC = {
    "name": "usage-test",
    "version": "3",
    "description": "four entries",
    "publisher": {"name": "Test Lab"},
    "sources": SOURCES,
}
# Four entries, 1000 bytes: one relies on its source's holder and license, one names its own
# holder, one its own license, and one is empty.
ENTRIES = sorted(
    [
        ManifestEntry(id="a/1.txt", sha256="1" * 64, size=100),
        ManifestEntry(id="a/2.txt", sha256="2" * 64, size=300, rightsHolder="Bob"),
        ManifestEntry(id="b/3.txt", sha256="3" * 64, size=600, license="MIT"),
        ManifestEntry(id="b/4.txt", sha256="4" * 64, size=0),
    ],
    key=ManifestEntry.sort_key,
)


def _rows(report: Any) -> list[tuple[str, int, int, float, float, list[str]]]:
    return [
        (r["group"], r["records"], r["bytes"], r["recordShare"], r["byteShare"], r["sources"])
        for r in report["rows"]
    ]


def test_by_rights_holder_by_hand() -> None:
    report = usage(ENTRIES, SOURCES, by="rights-holder").to_dict()
    assert report["totals"] == {"records": 4, "bytes": 1000}
    assert _rows(report) == [
        ("unknown (source web)", 2, 600, 0.5, 0.6, ["web"]),
        ("Bob", 1, 300, 0.25, 0.3, ["press"]),
        ("Alice Press", 1, 100, 0.25, 0.1, ["press"]),
    ]


def test_by_source_by_hand() -> None:
    report = usage(ENTRIES, SOURCES, by="source").to_dict()
    assert _rows(report) == [
        ("web", 2, 600, 0.5, 0.6, ["web"]),
        ("press", 2, 400, 0.5, 0.4, ["press"]),
    ]


def test_by_license_by_hand() -> None:
    report = usage(ENTRIES, SOURCES, by="license").to_dict()
    assert _rows(report) == [
        ("MIT", 1, 600, 0.25, 0.6, ["web"]),
        ("CC-BY-4.0", 2, 400, 0.5, 0.4, ["press"]),
        ("LicenseRef-X", 1, 0, 0.25, 0.0, ["web"]),
    ]


def test_agrees_with_the_cards_own_tally() -> None:
    counts = card.tally(ENTRIES, SOURCES)
    by_source = {r.group: (r.records, r.bytes) for r in usage(ENTRIES, SOURCES, by="source").rows}
    by_license = {r.group: (r.records, r.bytes) for r in usage(ENTRIES, SOURCES, by="license").rows}
    assert by_source == counts.by_source
    assert by_license == counts.by_license


def test_empty_manifest_and_empty_sources_have_zero_shares() -> None:
    report = usage([], SOURCES, by="source")
    assert [(r.group, r.records, r.record_share, r.byte_share) for r in report.rows] == [
        ("press", 0, 0.0, 0.0),
        ("web", 0, 0.0, 0.0),
    ]
    assert usage([], SOURCES, by="rights-holder").rows == ()


def test_unclaimed_entry_and_bad_grouping() -> None:
    stray = [ManifestEntry(id="c/5.txt", sha256="5" * 64, size=1)]
    with pytest.raises(InputError, match="claimed by no source"):
        usage(stray, SOURCES, by="source")
    with pytest.raises(InputError, match="^grouping"):
        usage(ENTRIES, SOURCES, by="country")  # type: ignore[arg-type]


def test_csv_form() -> None:
    text = usage(ENTRIES, SOURCES, by="rights-holder").to_csv()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["rights_holder", "records", "bytes", "record_share", "byte_share", "sources"]
    assert rows[1] == ["unknown (source web)", "2", "600", "0.500000", "0.600000", "web"]
    assert len(rows) == 4


# ----------------------------------------------------------------------------------------------
# Against a signed card


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("usage")
    key = PrivateKey.generate()
    manifest = directory / "manifest.jsonl"
    summary = write_manifest(ENTRIES, manifest)
    spec = card.load_spec(json.dumps(SPEC).encode(), what="spec")
    statement = card.build_statement(
        spec, ENTRIES, lambda: summary, manifest_name=manifest.name, created=AT
    )
    (directory / "card.signed.json").write_bytes(
        sign_envelope(card.PAYLOAD_TYPE, _json.canonical(statement.to_dict()), [key]).to_json()
    )
    store = TrustStore().with_key(key.public, name="Test Lab", role="dataset-publisher")
    (directory / "trust.json").write_bytes(store.to_json())
    other = PrivateKey.generate()
    stranger = TrustStore().with_key(other.public, name="Other", role="dataset-publisher")
    (directory / "stranger.json").write_bytes(stranger.to_json())
    return {
        "dir": directory,
        "manifest": manifest,
        "card": directory / "card.signed.json",
        "trust": directory / "trust.json",
        "stranger": directory / "stranger.json",
    }


def test_usage_report_checks_the_manifest_against_the_card(signed: dict[str, Path]) -> None:
    ref = proofs.load_card(signed["card"], signed["trust"], at=AT)
    report = usage_report(signed["manifest"], ref, by="source")
    assert report.card["name"] == "usage-test"
    assert report.card["manifestSha256"] == ref.commitment.manifest_sha256
    other = signed["dir"] / "other.jsonl"
    write_manifest(ENTRIES[:3], other)
    with pytest.raises(DigestMismatchError, match="is not the manifest the card commits to"):
        usage_report(other, ref, by="source")


def _usage(signed: dict[str, Path], *extra: str | Path, trust: str = "trust") -> Any:
    return run_cli(
        "report", "usage", "--manifest", signed["manifest"], "--card", signed["card"],
        "--trust", signed[trust], *extra,
    )  # fmt: skip


def test_cli_json_csv_and_table(signed: dict[str, Path]) -> None:
    result = _usage(signed, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["by"] == "rights-holder"
    assert _rows(report)[0] == ("unknown (source web)", 2, 600, 0.5, 0.6, ["web"])
    result = _usage(signed, "--by", "license", "--csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "MIT,1,600,0.250000,0.600000,web"
    result = _usage(signed, "--by", "source")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "usage by source in usage-test 3: 4 records, 1000 bytes"
    assert "60.00%" in result.stdout


def test_cli_refuses_a_wrong_manifest_or_an_untrusted_card(signed: dict[str, Path]) -> None:
    tampered = signed["dir"] / "tampered.jsonl"
    tampered.write_bytes(signed["manifest"].read_bytes().replace(b'"size":600', b'"size":60'))
    result = run_cli(
        "report", "usage", "--manifest", tampered, "--card", signed["card"],
        "--trust", signed["trust"],
    )  # fmt: skip
    assert result.returncode == 1
    assert "is not the manifest the card commits to" in one_error_line(result)
    assert result.stdout == ""
    result = _usage(signed, trust="stranger")
    assert result.returncode == 1
    assert "signed by 0 of the 1 trusted key(s)" in one_error_line(result)
    result = _usage(signed, "--json", "--csv")
    assert result.returncode == 2
    assert "exclude each other" in one_error_line(result)


def _swap_once_open(
    signed: dict[str, Path], monkeypatch: pytest.MonkeyPatch, swap: Callable[[Path, Path], None]
) -> tuple[proofs.CardRef, Path]:
    """A copy of the committed manifest, and a hook: once the read has opened it (before its
    bytes are read), ``swap(other, copy)`` puts a manifest of other entries in its place."""
    ref = proofs.load_card(signed["card"], signed["trust"], at=AT)
    other = signed["dir"] / "other.jsonl"
    write_manifest(ENTRIES[1:], other)
    target = signed["dir"] / "target.jsonl"
    target.write_bytes(signed["manifest"].read_bytes())
    real_read_blocks = manifest_reader._read_blocks

    def swap_then_read(handle: Any, *args: Any) -> Any:
        swap(other, target)
        return real_read_blocks(handle, *args)

    monkeypatch.setattr(manifest_reader, "_read_blocks", swap_then_read)
    return ref, target


def _rewrite_in_place(source: Path, target: Path) -> None:
    with open(target, "r+b") as same_file:
        same_file.truncate(0)
        same_file.write(source.read_bytes())


def test_a_manifest_replaced_between_the_two_reads_is_refused(
    signed: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One read: the file is opened as the committed one, then rewritten in place before its
    # bytes are read. The report counted from those bytes is never returned.
    ref, target = _swap_once_open(signed, monkeypatch, _rewrite_in_place)
    with pytest.raises(DigestMismatchError, match="changed while it was read"):
        usage_report(target, ref, by="rights-holder")


def test_a_manifest_replaced_after_it_was_opened_is_reported_as_read(
    signed: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Replaced by a rename once open: the read goes on with the committed bytes, so the report
    # is the committed manifest's, whatever the path names by the end.
    expected = usage_report(
        signed["manifest"],
        proofs.load_card(signed["card"], signed["trust"], at=AT),
        by="rights-holder",
    )
    ref, target = _swap_once_open(signed, monkeypatch, os.replace)
    assert usage_report(target, ref, by="rights-holder") == expected
    assert target.read_bytes() != signed["manifest"].read_bytes()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("https://evil.example","x")', '\'=HYPERLINK("https://evil.example","x")'),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Alice Press", "Alice Press"),
        ("a=b", "a=b"),
    ],
)
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralized(value: str, expected: str) -> None:
    assert csv_text(value) == expected
    entries = [ManifestEntry(id="a/1.txt", sha256="1" * 64, size=1, rightsHolder=value)]
    rows = list(csv.reader(io.StringIO(usage(entries, SOURCES, by="rights-holder").to_csv())))
    assert rows[1][0] == expected
