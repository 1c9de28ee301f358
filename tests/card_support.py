"""Signed cards for the tests, made one way each and shared by the test modules.

- :func:`cli_world`: a card made as a user makes it, every step a ``provenance`` command.
- :func:`sign_card_for`: a card over given manifest entries, made through the library, signed by
  given keys.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provenance import _json, card
from provenance import manifest as manifest_module
from provenance.envelope import Envelope, sign_envelope
from provenance.keys import PrivateKey
from provenance.manifest import ManifestEntry
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


@dataclass(frozen=True)
class SignedCard:
    """A manifest and the card that commits to it, signed, written in one directory."""

    manifest: Path
    """The manifest file (``manifest.jsonl``)."""
    signed: Path
    """The signed card (``card.signed.json``)."""
    envelope: Envelope
    statement: card.CardStatement
    summary: manifest_module.ManifestSummary
    """The manifest's digest, entry count, bytes and Merkle root, as written."""


def sign_card_for(
    directory: Path,
    entries: Sequence[ManifestEntry],
    signers: Sequence[PrivateKey],
    *,
    spec: Mapping[str, Any],
    created: dt.datetime,
    exclusions: Sequence[card.Exclusion] = (),
) -> SignedCard:
    """Write ``entries`` as ``directory/manifest.jsonl``, build the card statement of ``spec``
    over it, and sign it with every key of ``signers`` (the first as the publisher, the others
    co-signing) into ``directory/card.signed.json``.

    ``spec`` goes to :func:`provenance.card.build_statement` as given (a document that
    :func:`provenance.card.load_spec` returned, or one written to match it). No trust store is
    written: which keys a test trusts, for which role, is what the test is about.
    """
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path = directory / "manifest.jsonl"
    summary = manifest_module.write_manifest(entries, manifest_path)
    statement = card.build_statement(
        spec,
        entries,
        lambda: summary,
        manifest_name=manifest_path.name,
        created=created,
        exclusions=exclusions,
    )
    envelope = sign_envelope(card.PAYLOAD_TYPE, _json.canonical(statement.to_dict()), signers)
    signed = directory / "card.signed.json"
    signed.write_bytes(envelope.to_json())
    return SignedCard(manifest_path, signed, envelope, statement, summary)
