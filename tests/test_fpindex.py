"""The fingerprint sidecar index: where it lives, its format, and refusing what it cannot use."""

from __future__ import annotations

from pathlib import Path


def test_sidecar_path_without_fpindex_is_fpindex_s(tmp_path: Path) -> None:
    from provenance import fpindex, manifest_files

    for name in ("m.jsonl", "manifest", ".hidden.jsonl"):
        assert manifest_files.sidecar_path(tmp_path / name) == fpindex.sidecar_path(tmp_path / name)
