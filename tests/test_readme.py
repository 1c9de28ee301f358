"""The README walkthrough works as written: sign a card for a folder, then verify it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def _walkthrough() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Sign a card for your own folder, and verify it", 1)[1]
    return section.split("```sh", 1)[1].split("```", 1)[0]


def test_readme_walkthrough(tmp_path: Path) -> None:
    (tmp_path / "my-data" / "sub").mkdir(parents=True)
    (tmp_path / "my-data" / "a.txt").write_text("hello\n")
    (tmp_path / "my-data" / "sub" / "b.md").write_text("world\n")
    script = _walkthrough().replace("\nprovenance ", f"\n{sys.executable} -m provenance ")
    assert script.count("-m provenance") >= 6
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("verified")
    assert "NOT verified" not in result.stdout
