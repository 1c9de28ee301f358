"""``verify``: the checks it makes, in order, on the one read of the manifest and on the data."""

from __future__ import annotations

import base64
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from provenance import manifest
from tests.card_support import cli_world, sign_card_for, verify_json
from tests.conftest import one_error_line, run_cli
from tests.manifest_support import mixed_corpus


def _signed_card(tmp_path: Path, data: Path, paths: list[str]) -> tuple[Any, Any, Path]:
    import datetime as dt

    from provenance.keys import PrivateKey
    from provenance.trust import TrustStore

    spec = {
        "name": "t",
        "version": "1",
        "description": "d",
        "publisher": {"name": "P"},
        "sources": [
            {"id": "s", "name": "S", "kind": "synthetic", "license": "CC0-1.0", "paths": paths}
        ],
    }
    key = PrivateKey.generate()
    made = sign_card_for(
        tmp_path / "card",
        manifest.build_from_directory(data, workers=2),
        [key],
        spec=spec,
        created=dt.datetime(2026, 11, 29, tzinfo=dt.UTC),
    )
    trust = TrustStore().with_key(key.public, name="P", role="dataset-publisher")
    return made.envelope, trust, made.manifest


@pytest.mark.usefixtures("small_thresholds")
def test_verify_data_keeps_its_checks_and_their_order(tmp_path: Path) -> None:
    import datetime as dt

    from provenance.verify import verify

    files = mixed_corpus(tmp_path / "data")
    envelope, trust, manifest_path = _signed_card(tmp_path, tmp_path / "data", ["**"])
    at = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    report = verify(
        envelope,
        trust,
        at=at,
        what="c",
        manifest_path=manifest_path,
        data_dir=tmp_path / "data",
        workers=2,
    )
    assert report.ok
    assert [c.name for c in report.checks] == [
        "signature",
        "statement",
        "required lists",
        "manifest digest",
        "manifest entries",
        "manifest bytes",
        "merkle root",
        "sources and licenses",
        "data files",
    ]
    assert report.checks[-1].detail == f"all {len(files)} files match the manifest"
    (tmp_path / "data" / "folder-2" / "file-002.txt").write_bytes(b"changed")
    (tmp_path / "data" / "big" / "blob-1.bin").unlink()
    (tmp_path / "data" / "new.txt").write_text("extra")
    report = verify(
        envelope,
        trust,
        at=at,
        what="c",
        manifest_path=manifest_path,
        data_dir=tmp_path / "data",
        workers=2,
    )
    assert not report.ok
    assert report.checks[-1].detail == f"1 changed, 1 missing, 1 extra of {len(files)}"
    assert report.data is not None
    assert (report.data.changed, report.data.missing, report.data.extra) == (
        ("folder-2/file-002.txt",),
        ("big/blob-1.bin",),
        ("new.txt",),
    )


def test_verify_data_reports_another_manifest_before_a_walk_error(tmp_path: Path) -> None:
    import datetime as dt

    from provenance.errors import InputError
    from provenance.verify import verify

    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "x.txt").write_text("x")
    envelope, trust, manifest_path = _signed_card(tmp_path, tmp_path / "data", ["a/**"])
    original = manifest_path.read_bytes()
    # Another manifest, which the card's sources do not cover, and a data directory that
    # cannot be walked: the manifest is not the card's, the verdict (exit 1), and the walk's
    # error says why the data was not checked; the card's own manifest with the walk error
    # raises it (bad input).
    (tmp_path / "data" / "b").mkdir()
    (tmp_path / "data" / "b" / "y.txt").write_text("y")
    manifest.write_manifest(
        manifest.build_from_directory(tmp_path / "data", workers=1), manifest_path
    )
    os.symlink(tmp_path, tmp_path / "data" / "up")
    checks = {
        "at": dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
        "what": "c",
        "data_dir": tmp_path / "data",
        "symlinks": "error",
        "workers": 2,
    }
    report = verify(envelope, trust, manifest_path=manifest_path, **checks)  # type: ignore[arg-type]
    assert not report.ok
    shown = {check.name: (check.ok, check.detail) for check in report.checks}
    assert shown["manifest digest"][0] is False
    assert shown["sources and licenses"] == (False, "not counted: the manifest is not the card's")
    assert shown["data files"][0] is False and "symlink points out" in shown["data files"][1]
    own = tmp_path / "own.jsonl"
    own.write_bytes(original)
    with pytest.raises(InputError, match="symlink points out"):
        verify(envelope, trust, manifest_path=own, **checks)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# verify as a user runs it: signatures, the manifest, the data, the fingerprint index


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys, a trust store, a manifest of the samples, a card, signed."""
    return cli_world(tmp_path_factory.mktemp("world"))


def test_verify_ok(world: Path) -> None:
    code, report = verify_json(
        world, "--manifest", world / "manifest.jsonl", "--data", world / "data"
    )
    assert code == 0
    assert report["ok"] is True
    assert report["violations"] == [] and report["newly_listed"] == []
    names = [c["name"] for c in report["checks"]]  # type: ignore[union-attr]
    assert (
        names[:2] == ["signature", "statement"] and "merkle root" in names and "data files" in names
    )


def test_verify_human_output(world: Path) -> None:
    result = run_cli(
        "verify",
        world / "signed.json",
        "--trust",
        world / "trust.json",
        "--manifest",
        world / "manifest.jsonl",
    )
    assert result.returncode == 0
    assert "ok    signature: signed by dataset publisher Lab" in result.stdout
    assert result.stdout.strip().endswith("verified")


def test_every_byte_of_the_signed_payload_matters(world: Path, tmp_path: Path) -> None:
    envelope = json.loads((world / "signed.json").read_text())
    payload = bytearray(base64.b64decode(envelope["payload"]))
    position = payload.index(b'"records":') + len(b'"records":')
    payload[position] = ord("9") if payload[position] != ord("9") else ord("8")
    envelope["payload"] = base64.b64encode(bytes(payload)).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(envelope))
    code, report = verify_json(world, signed=forged)
    assert code == 1 and report["ok"] is False
    assert "signed by 0 of the 1" in report["checks"][0]["detail"]  # type: ignore[index]


def test_untrusted_and_wrong_role_keys(world: Path, tmp_path: Path) -> None:
    other = run_cli(
        "card", "sign", world / "card.json", "--key", world / "other.key", "-o", tmp_path / "o.json"
    )
    assert other.returncode == 0
    assert verify_json(world, signed=tmp_path / "o.json")[0] == 1
    # The auditor's key is trusted, but not to publish datasets.
    aud = run_cli(
        "card", "sign", world / "card.json", "--key", world / "aud.key", "-o", tmp_path / "a.json"
    )
    assert aud.returncode == 0
    assert verify_json(world, signed=tmp_path / "a.json")[0] == 1


def test_empty_trust_store_is_an_error(world: Path, tmp_path: Path) -> None:
    (tmp_path / "trust.json").write_text(json.dumps({"version": 1, "keys": []}))
    result = run_cli("verify", world / "signed.json", "--trust", tmp_path / "trust.json")
    assert result.returncode == 2
    assert "no key is trusted for the role 'dataset-publisher'" in one_error_line(result)


def test_manifest_mismatch(world: Path, tmp_path: Path) -> None:
    lines = (world / "manifest.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "short.jsonl").write_bytes(b"".join(lines[:-1]))
    code, report = verify_json(world, "--manifest", tmp_path / "short.jsonl")
    assert code == 1
    failed = {c["name"] for c in report["checks"] if not c["ok"]}  # type: ignore[union-attr]
    assert {"manifest digest", "manifest entries", "merkle root"} <= failed


def test_data_changes_are_named(world: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(world / "data", data)
    (data / "books" / "01-a-scandal-in-bohemia.txt").write_text("changed")
    (data / "images" / "horse.png").unlink()
    (data / "news" / "extra.txt").write_text("new")
    code, report = verify_json(world, "--manifest", world / "manifest.jsonl", "--data", data)
    assert code == 1
    detail = next(c["detail"] for c in report["checks"] if c["name"] == "data files")  # type: ignore[union-attr]
    assert detail == "1 changed, 1 missing, 1 extra of 19"
    assert report["data"] == {
        "entries": 19,
        "changed": ["books/01-a-scandal-in-bohemia.txt"],
        "missing": ["images/horse.png"],
        "extra": ["news/extra.txt"],
        "moved": [],
        "unreadable": [],
        "symlinksSkipped": 0,
        "symlinksOutside": 0,
        "excludedFiles": 0,
        "excludedFolders": 0,
        "hardLinked": 0,
    }


@pytest.mark.parametrize(
    ("make", "code", "message"),
    [
        (lambda p: p.write_text("{not json"), 2, "malformed JSON"),
        (lambda p: p.write_text('{"payloadType": "x", "payloadType": "y"}'), 2, "duplicate key"),
        (lambda p: p.write_text('{"a": 1}'), 2, "neither a card statement nor a DSSE envelope"),
        (lambda p: p.mkdir(), 2, "is a directory"),
        (lambda p: None, 2, "no such file"),
    ],
)
def test_bad_card_files(world: Path, tmp_path: Path, make: object, code: int, message: str) -> None:
    path = tmp_path / "card.json"
    make(path)  # type: ignore[operator]
    result = run_cli("verify", path, "--trust", world / "trust.json")
    assert result.returncode == code
    line = one_error_line(result)
    assert line.startswith("error: ") and message in line and str(path) in line


def test_unsigned_card_cannot_be_verified(world: Path) -> None:
    result = run_cli("verify", world / "card.json", "--trust", world / "trust.json")
    assert result.returncode == 2 and "not signed" in one_error_line(result)


def test_data_without_manifest(world: Path) -> None:
    result = run_cli(
        "verify", world / "signed.json", "--trust", world / "trust.json", "--data", world / "data"
    )
    assert result.returncode == 2 and "--data needs --manifest" in one_error_line(result)


def _check(report: dict[str, object], name: str) -> dict[str, object]:
    return next(c for c in report["checks"] if c["name"] == name)  # type: ignore[attr-defined, union-attr, index, no-any-return]


def test_verify_checks_the_fingerprint_index(world: Path, tmp_path: Path) -> None:
    assert (world / "manifest.jsonl.fp").exists()
    code, report = verify_json(world, "--manifest", world / "manifest.jsonl")
    check = _check(report, "fingerprint index")
    assert code == 0 and check["ok"] and "manifest.jsonl.fp sha256" in str(check["detail"])
    shutil.copy(world / "manifest.jsonl", tmp_path / "manifest.jsonl")
    changed = bytearray((world / "manifest.jsonl.fp").read_bytes())
    changed[-1] ^= 1
    (tmp_path / "manifest.jsonl.fp").write_bytes(bytes(changed))
    code, report = verify_json(world, "--manifest", tmp_path / "manifest.jsonl")
    check = _check(report, "fingerprint index")
    assert code == 1 and not check["ok"] and "card says" in str(check["detail"])
    (tmp_path / "manifest.jsonl.fp").unlink()
    code, report = verify_json(world, "--manifest", tmp_path / "manifest.jsonl")
    check = _check(report, "fingerprint index")
    assert code == 0 and check["ok"] and "not checked" in str(check["detail"])
