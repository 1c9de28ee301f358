"""Signed cards for the tests: one way to make each kind, shared by the test modules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import NOW, SAMPLES, run_cli


def cli_world(work: Path) -> Path:
    """Make, in ``work``, keys, a trust store, a manifest of the samples, a card, signed, as a
    user does (each step a ``provenance`` command); return ``work``.

    ``dev.key`` signed ``signed.json`` (``card.json`` unsigned) and is trusted as
    ``dataset-publisher``; ``aud.key`` (ECDSA P-256) is trusted as ``auditor``; ``other.key`` is
    not trusted. ``manifest.jsonl`` (with its ``.fp``) is the manifest of ``data/``.
    """
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


def verify_json(
    world: Path, *extra: str | Path, signed: Path | None = None
) -> tuple[int, dict[str, object]]:
    """Run ``verify --json`` on the world's signed card (or ``signed``); return the exit code and
    the report."""
    result = run_cli(
        "verify", signed or world / "signed.json", "--trust", world / "trust.json", "--json", *extra
    )
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout) if result.stdout else {}
