"""The README's exports section works as written, after its walkthrough."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.exports_support import offline_env, peer_script


def _block(heading: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(heading, 1)[1]
    return section.split("```sh", 1)[1].split("```", 1)[0]


def test_readme_exports_section(tmp_path: Path) -> None:
    (tmp_path / "my-data" / "sub").mkdir(parents=True)
    (tmp_path / "my-data" / "a.txt").write_text("hello\n")
    (tmp_path / "my-data" / "sub" / "b.md").write_text("world\n")
    script = _block("## Sign a card for your own folder, and verify it") + _block(
        "## Exports and imports"
    )
    script = script.replace("\nprovenance ", f"\n{sys.executable} -m provenance ")
    script = script.replace("\nmodel_signing ", f"\n{peer_script('model_signing')} ")
    assert script.count("-m provenance export") == 7
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, **offline_env(), "PYTHONPATH": str(ROOT)},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("Verification succeeded")
    for name in ("README.md", "croissant.json", "dataset.spdx3.json", "dataset.cdx.json",
                 "eu-summary.md", "card.html", "my-data.sig"):  # fmt: skip
        assert (tmp_path / name).stat().st_size > 500, name
    assert "My-LM 1.0" in (tmp_path / "eu-summary.md").read_text()
