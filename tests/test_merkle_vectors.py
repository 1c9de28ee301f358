"""provenance.merkle against every transparency-dev inclusion and consistency probe.

The threats: docs/security.md M3, M4.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from provenance import merkle
from tests.conftest import VECTORS

TRANSPARENCY_DEV = VECTORS / "merkle" / "transparency-dev"
INCLUSION = sorted((TRANSPARENCY_DEV / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((TRANSPARENCY_DEV / "consistency").rglob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _proof(value: list[str] | None) -> list[bytes]:
    return [_b64(item) for item in value or []]


def _name(path: Path) -> str:
    return str(path.relative_to(TRANSPARENCY_DEV))


def test_all_vectors_are_present() -> None:
    assert len(INCLUSION) == 98
    assert len(CONSISTENCY) == 98


@pytest.mark.parametrize("path", INCLUSION, ids=_name)
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)
    args = (case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), _proof(case["proof"]))
    if case["wantErr"]:
        with pytest.raises(
            merkle.ProofError,
            match=(
                r"leads to another root|is not 32 bytes|longer than the tree allows"
                r"|shorter than the tree requires|is outside a tree of size"
            ),
        ):
            merkle.verify_inclusion(*args, _b64(case["root"]))
    else:
        merkle.verify_inclusion(*args, _b64(case["root"]))
        assert merkle.root_from_inclusion(*args) == _b64(case["root"])


@pytest.mark.parametrize("path", CONSISTENCY, ids=_name)
def test_consistency_vector(path: Path) -> None:
    case = _load(path)
    args = (
        case["size1"],
        case["size2"],
        _b64(case["root1"]),
        _b64(case["root2"]),
        _proof(case["proof"]),
    )
    if case["wantErr"]:
        with pytest.raises(
            merkle.ProofError,
            match=(
                r"longer than the trees allow|shorter than the trees require"
                r"|does not link the two roots|no consistency proof exists|is not 32 bytes"
                r"|between equal sizes must be empty|empty consistency proof"
                r"|equal sizes with different roots"
            ),
        ):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_vectors_cover_both_outcomes() -> None:
    outcomes = {_load(p)["wantErr"] for p in [*INCLUSION, *CONSISTENCY]}
    assert outcomes == {True, False}
