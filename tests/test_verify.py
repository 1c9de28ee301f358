"""``verify``: the checks it makes, in order, on the one read of the manifest and on the data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from provenance import _json, manifest
from tests.manifest_support import mixed_corpus


def _signed_card(tmp_path: Path, data: Path, paths: list[str]) -> tuple[Any, Any, Path]:
    import datetime as dt

    from provenance import card
    from provenance.envelope import sign_envelope
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
    manifest_path = tmp_path / "m.jsonl"
    manifest.write_manifest(manifest.build_from_directory(data, workers=2), manifest_path)
    summaries: list[manifest.ManifestSummary] = []
    statement = card.build_statement(
        spec,
        manifest.iter_manifest(manifest_path, on_summary=summaries.append),
        lambda: summaries[0],
        manifest_name=manifest_path.name,
        created=dt.datetime(2026, 11, 29, tzinfo=dt.UTC),
    )
    key = PrivateKey.generate()
    trust = TrustStore().with_key(key.public, name="P", role="dataset-publisher")
    envelope = sign_envelope(card.PAYLOAD_TYPE, _json.canonical(statement.to_dict()), [key])
    return envelope, trust, manifest_path


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


def test_verify_data_reports_the_manifest_error_before_a_walk_error(tmp_path: Path) -> None:
    import datetime as dt

    from provenance.errors import InputError
    from provenance.verify import verify

    (tmp_path / "data" / "a").mkdir(parents=True)
    (tmp_path / "data" / "a" / "x.txt").write_text("x")
    envelope, trust, manifest_path = _signed_card(tmp_path, tmp_path / "data", ["a/**"])
    # Another manifest, which the card's sources do not cover, and a data directory that
    # cannot be walked: the manifest's error is the one reported, as when it was checked first.
    (tmp_path / "data" / "b").mkdir()
    (tmp_path / "data" / "b" / "y.txt").write_text("y")
    manifest.write_manifest(
        manifest.build_from_directory(tmp_path / "data", workers=1), manifest_path
    )
    os.symlink(tmp_path, tmp_path / "data" / "up")
    with pytest.raises(InputError, match="claimed by no source"):
        verify(
            envelope,
            trust,
            at=dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
            what="c",
            manifest_path=manifest_path,
            data_dir=tmp_path / "data",
            symlinks="error",
            workers=2,
        )
