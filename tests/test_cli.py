"""The commands end to end, run as a user runs them (a subprocess), with exit codes and errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
from pathlib import Path

import pytest

from tests.card_support import cli_world, verify_json
from tests.conftest import SAMPLES, one_error_line, run_cli


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys, a trust store, a manifest of the samples, a card, signed."""
    return cli_world(tmp_path_factory.mktemp("world"))


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


def test_co_signing(world: Path, tmp_path: Path) -> None:
    signed = tmp_path / "co.json"
    shutil.copy(world / "signed.json", signed)
    result = run_cli("card", "sign", signed, "--key", world / "aud.key", "-o", signed)
    assert result.returncode == 0 and "2 signature(s)" in result.stdout
    code, report = verify_json(world, signed=signed)
    assert code == 0
    assert any(c["name"] == "auditor co-signature" for c in report["checks"])  # type: ignore[union-attr]


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
