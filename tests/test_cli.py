"""The commands end to end, run as a user runs them (a subprocess), with exit codes and errors."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from tests.conftest import NOW, SAMPLES, one_error_line, run_cli


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys, a trust store, a manifest of the samples, a card, signed."""
    work = tmp_path_factory.mktemp("world")
    shutil.copytree(SAMPLES / "data", work / "data")
    steps = [
        ("key", "generate", work / "dev.key"),
        ("key", "generate", work / "aud.key", "--algorithm", "ecdsa-p256"),
        ("key", "generate", work / "other.key"),
        (
            "trust",
            "add",
            work / "trust.json",
            work / "dev.key.pub",
            "--name",
            "Lab",
            "--role",
            "dataset-publisher",
        ),
        (
            "trust",
            "add",
            work / "trust.json",
            work / "aud.key.pub",
            "--name",
            "Aud",
            "--role",
            "auditor",
        ),
        ("manifest", "build", work / "data", "-o", work / "manifest.jsonl"),
        (
            "card",
            "build",
            SAMPLES / "card-spec.yaml",
            "--manifest",
            work / "manifest.jsonl",
            "-o",
            work / "card.json",
            "--now",
            NOW,
        ),
        ("card", "sign", work / "card.json", "--key", work / "dev.key", "-o", work / "signed.json"),
    ]
    for step in steps:
        result = run_cli(*step)
        assert result.returncode == 0, (step, result.stderr)
    return work


def _verify(
    world: Path, *extra: str | Path, signed: Path | None = None
) -> tuple[int, dict[str, object]]:
    result = run_cli(
        "verify", signed or world / "signed.json", "--trust", world / "trust.json", "--json", *extra
    )
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout) if result.stdout else {}


def test_key_generate(tmp_path: Path) -> None:
    result = run_cli("key", "generate", tmp_path / "k")
    assert result.returncode == 0
    assert result.stdout.startswith("keyid ") and len(result.stdout.split()[1]) == 64
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600
    again = run_cli("key", "generate", tmp_path / "k")
    assert again.returncode == 2
    assert "already exists; use --force" in one_error_line(again)
    assert run_cli("key", "generate", tmp_path / "k", "--force").returncode == 0


def test_key_with_passphrase(tmp_path: Path, world: Path) -> None:
    env = {"PASS": "s3cret"}
    assert (
        run_cli("key", "generate", tmp_path / "k", "--passphrase-env", "PASS", env=env).returncode
        == 0
    )
    ok = run_cli(
        "card",
        "sign",
        world / "card.json",
        "--key",
        tmp_path / "k",
        "--passphrase-env",
        "PASS",
        "-o",
        tmp_path / "s.json",
        env=env,
    )
    assert ok.returncode == 0, ok.stderr
    wrong = run_cli(
        "card",
        "sign",
        world / "card.json",
        "--key",
        tmp_path / "k",
        "--passphrase-env",
        "PASS",
        "-o",
        tmp_path / "s2.json",
        env={"PASS": "nope"},
    )
    assert wrong.returncode == 2 and "wrong passphrase" in one_error_line(wrong)
    assert not (tmp_path / "s2.json").exists()
    unset = run_cli(
        "card",
        "sign",
        world / "card.json",
        "--key",
        tmp_path / "k",
        "--passphrase-env",
        "NOPE_UNSET",
        "-o",
        tmp_path / "s3.json",
    )
    assert unset.returncode == 2 and "NOPE_UNSET is not set" in one_error_line(unset)


def test_verify_ok(world: Path) -> None:
    code, report = _verify(world, "--manifest", world / "manifest.jsonl", "--data", world / "data")
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


def test_co_signing(world: Path, tmp_path: Path) -> None:
    signed = tmp_path / "co.json"
    shutil.copy(world / "signed.json", signed)
    result = run_cli("card", "sign", signed, "--key", world / "aud.key", "-o", signed)
    assert result.returncode == 0 and "2 signature(s)" in result.stdout
    code, report = _verify(world, signed=signed)
    assert code == 0
    assert any(c["name"] == "auditor co-signature" for c in report["checks"])  # type: ignore[union-attr]


def test_every_byte_of_the_signed_payload_matters(world: Path, tmp_path: Path) -> None:
    envelope = json.loads((world / "signed.json").read_text())
    payload = bytearray(base64.b64decode(envelope["payload"]))
    position = payload.index(b'"records":') + len(b'"records":')
    payload[position] = ord("9") if payload[position] != ord("9") else ord("8")
    envelope["payload"] = base64.b64encode(bytes(payload)).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(envelope))
    code, report = _verify(world, signed=forged)
    assert code == 1 and report["ok"] is False
    assert "signed by 0 of the 1" in report["checks"][0]["detail"]  # type: ignore[index]


def test_untrusted_and_wrong_role_keys(world: Path, tmp_path: Path) -> None:
    other = run_cli(
        "card", "sign", world / "card.json", "--key", world / "other.key", "-o", tmp_path / "o.json"
    )
    assert other.returncode == 0
    assert _verify(world, signed=tmp_path / "o.json")[0] == 1
    # The auditor's key is trusted, but not to publish datasets.
    aud = run_cli(
        "card", "sign", world / "card.json", "--key", world / "aud.key", "-o", tmp_path / "a.json"
    )
    assert aud.returncode == 0
    assert _verify(world, signed=tmp_path / "a.json")[0] == 1


def test_empty_trust_store_is_an_error(world: Path, tmp_path: Path) -> None:
    (tmp_path / "trust.json").write_text(json.dumps({"version": 1, "keys": []}))
    result = run_cli("verify", world / "signed.json", "--trust", tmp_path / "trust.json")
    assert result.returncode == 2
    assert "no key is trusted for the role 'dataset-publisher'" in one_error_line(result)


def test_manifest_mismatch(world: Path, tmp_path: Path) -> None:
    lines = (world / "manifest.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "short.jsonl").write_bytes(b"".join(lines[:-1]))
    code, report = _verify(world, "--manifest", tmp_path / "short.jsonl")
    assert code == 1
    failed = {c["name"] for c in report["checks"] if not c["ok"]}  # type: ignore[union-attr]
    assert {"manifest digest", "manifest entries", "merkle root"} <= failed


def test_data_changes_are_named(world: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(world / "data", data)
    (data / "books" / "01-a-scandal-in-bohemia.txt").write_text("changed")
    (data / "images" / "horse.png").unlink()
    (data / "news" / "extra.txt").write_text("new")
    code, report = _verify(world, "--manifest", world / "manifest.jsonl", "--data", data)
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


def test_card_build_errors_leave_no_output(world: Path, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    text = (
        (SAMPLES / "card-spec.yaml")
        .read_text()
        .replace('paths: ["images/*.png"]', 'paths: ["images/*.jpg"]')
    )
    spec.write_text(text)
    result = run_cli(
        "card", "build", spec, "--manifest", world / "manifest.jsonl", "-o", tmp_path / "c.json"
    )
    assert result.returncode == 2
    assert re.search(r"entry 'images/\w+\.png' is claimed by no source", one_error_line(result))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_manifest_build_errors(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "d" / "pipe")
    result = run_cli("manifest", "build", tmp_path / "d", "-o", tmp_path / "m.jsonl")
    assert result.returncode == 2 and "pipe: not a regular file" in one_error_line(result)
    assert not (tmp_path / "m.jsonl").exists()
    missing = run_cli("manifest", "build", tmp_path / "nope.jsonl", "-o", tmp_path / "m.jsonl")
    assert missing.returncode == 2 and "no such file" in one_error_line(missing)
    nodir = run_cli("manifest", "build", tmp_path / "d", "-o", tmp_path / "no" / "m.jsonl")
    assert nodir.returncode == 2


def test_manifest_workers_and_shards_give_the_same_bytes(tmp_path: Path) -> None:
    outputs = []
    for workers in ("1", "2"):
        out = tmp_path / f"m{workers}.jsonl"
        assert (
            run_cli(
                "manifest", "build", SAMPLES / "data", "-o", out, "--workers", workers
            ).returncode
            == 0
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    shards = []
    for index in range(3):
        out = tmp_path / f"s{index}.jsonl"
        assert (
            run_cli(
                "manifest", "build", SAMPLES / "data", "-o", out, "--shard", f"{index}/3"
            ).returncode
            == 0
        )
        shards.append(out)
    assert run_cli("manifest", "merge", *shards, "-o", tmp_path / "merged.jsonl").returncode == 0
    assert (tmp_path / "merged.jsonl").read_bytes() == outputs[0]
    bad = run_cli(
        "manifest", "build", SAMPLES / "data", "-o", tmp_path / "x.jsonl", "--shard", "3/3"
    )
    assert bad.returncode == 2 and "expected K/N" in one_error_line(bad)


def test_trust_cli(tmp_path: Path, world: Path) -> None:
    trust = tmp_path / "t.json"
    result = run_cli(
        "trust", "add", trust, world / "dev.key", "--name", "x", "--role", "dataset-publisher"
    )
    assert result.returncode == 2 and "is a private key" in one_error_line(result)
    assert not trust.exists()
    ok = run_cli(
        "trust",
        "add",
        trust,
        world / "aud.key.pub",
        "--name",
        "A",
        "--role",
        "list-publisher",
        "--list",
        "piracy",
    )
    assert ok.returncode == 0
    assert run_cli("trust", "require", trust, "piracy").returncode == 0
    shown = run_cli("trust", "show", trust, "--json")
    document = json.loads(shown.stdout)
    assert document["lists"]["piracy"]["required"] is True
    bad_role = run_cli(
        "trust", "add", trust, world / "aud.key.pub", "--name", "A", "--role", "root"
    )
    assert bad_role.returncode == 2


def test_help_and_usage_errors() -> None:
    assert run_cli("--help").returncode == 0
    usage = run_cli("verify")
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


def test_demo_runs() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "FAIL  data files: 1 changed, 1 missing, 1 extra of 19" in result.stdout
    assert "changed:    news/2026-04-library-reopens.txt" in result.stdout
    # The registry part: pushed, looked up across datasets, the receipt a basis for absence.
    assert "registered: example-corpus 1.0.0 as entry 0 of log" in result.stdout
    assert "the manifest's order was checked by registry localhost/provenance" in result.stdout
    assert "1 new registration(s)" in result.stdout
    assert "every party's check behaved as expected" in result.stdout


def test_signing_with_a_world_readable_key_is_refused(world: Path, tmp_path: Path) -> None:
    shutil.copy(world / "dev.key", tmp_path / "dev.key")
    (tmp_path / "dev.key").chmod(0o644)
    result = run_cli(
        "card",
        "sign",
        world / "card.json",
        "--key",
        tmp_path / "dev.key",
        "-o",
        tmp_path / "s.json",
    )
    assert result.returncode == 2
    assert "readable by other users" in one_error_line(result)
    assert not (tmp_path / "s.json").exists()


def _check(report: dict[str, object], name: str) -> dict[str, object]:
    return next(c for c in report["checks"] if c["name"] == name)  # type: ignore[attr-defined, union-attr, index, no-any-return]


def test_verify_checks_the_fingerprint_index(world: Path, tmp_path: Path) -> None:
    assert (world / "manifest.jsonl.fp").exists()
    code, report = _verify(world, "--manifest", world / "manifest.jsonl")
    check = _check(report, "fingerprint index")
    assert code == 0 and check["ok"] and "manifest.jsonl.fp sha256" in str(check["detail"])
    shutil.copy(world / "manifest.jsonl", tmp_path / "manifest.jsonl")
    changed = bytearray((world / "manifest.jsonl.fp").read_bytes())
    changed[-1] ^= 1
    (tmp_path / "manifest.jsonl.fp").write_bytes(bytes(changed))
    code, report = _verify(world, "--manifest", tmp_path / "manifest.jsonl")
    check = _check(report, "fingerprint index")
    assert code == 1 and not check["ok"] and "card says" in str(check["detail"])
    (tmp_path / "manifest.jsonl.fp").unlink()
    code, report = _verify(world, "--manifest", tmp_path / "manifest.jsonl")
    check = _check(report, "fingerprint index")
    assert code == 0 and check["ok"] and "not checked" in str(check["detail"])
