"""The documents the code cites ship with it, and say only what is true of the tests.

Code and tests cite ``docs/security.md <ID>`` (a threat or property) and ``docs/design.md §N``
(a section). Every such citation must name an entry that exists; nothing may cite a file that
does not ship (the team's working notes outside the repository); and every test that
``docs/security.md`` or ``docs/design.md`` names as covering something must exist.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from tests.conftest import ROOT

DOCS = ROOT / "docs"
SECURITY = DOCS / "security.md"
DESIGN = DOCS / "design.md"

# Where citations may appear: the package (Python and the page's assets), the tests and the
# benchmarks (not the vectors, which are third-party data), and the README.
_SUFFIXES = {".py", ".js", ".html", ".css", ".md", ".toml"}
_ID = r"[A-Z][0-9]{1,2}"
_SECURITY_CITE = re.compile(rf"docs/security\.md((?:(?:\s*,\s*|\s+and\s+|\s+){_ID}\b)+)")
_SECTION = r"§([0-9]+(?:\.[0-9]+)*)"
_DESIGN_CITE = re.compile(rf"docs/design\.md((?:(?:\s*,\s*|\s+and\s+|\s+){_SECTION})+)")
_FORBIDDEN = re.compile(r"THREATS|DESIGN\.md|PERFORMANCE\.md|\.\./shared|shared/(?:data|vectors)")
_TEST_REF = re.compile(r"\b(test_[a-z0-9_]+)\.py::(test_[A-Za-z0-9_]+)\b")


def _cited_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for top in ("provenance", "tests", "benchmarks"):
        for path in sorted((ROOT / top).rglob("*")):
            relative = path.relative_to(ROOT).parts
            if relative[:2] == ("tests", "vectors") or "vendor" in relative:
                continue
            if path.is_file() and path.suffix in _SUFFIXES:
                files.append(path)
    return files


@cache
def _texts() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in _cited_files()
    }


def _security_ids() -> set[str]:
    """Every id that a heading of docs/security.md defines (``### K4 ...``, ``### J2 ..., J3``)."""
    ids: set[str] = set()
    for line in SECURITY.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            ids.update(re.findall(rf"\b{_ID}\b", line))
    return ids


def _design_sections() -> set[str]:
    """Every section number of docs/design.md (``## 2. Formats`` is 2, ``### 2.1 ...`` is 2.1)."""
    text = DESIGN.read_text(encoding="utf-8")
    return set(re.findall(r"^#{2,4} ([0-9]+(?:\.[0-9]+)*)\.? ", text, re.M))


@cache
def _test_names() -> dict[str, set[str]]:
    """Test functions per test module, by parsing tests/test_*.py (not by importing them)."""
    names: dict[str, set[str]] = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names[path.stem] = {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")
        }
    return names


def test_the_documents_ship_and_are_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "](docs/security.md)" in readme
    assert "](docs/design.md)" in readme
    ids = _security_ids()
    # The families and the ids the code has cited since before this catalogue existed.
    assert {"K4", "K8", "L9", "L12", "L17", "L20", "H3", "P1", "B2", "A1", "T5"} <= ids
    assert {"2", "2.1", "2.9", "5", "6", "7"} <= _design_sections()


def test_every_cited_threat_exists() -> None:
    ids = _security_ids()
    cited = {
        (name, found)
        for name, text in _texts().items()
        for match in _SECURITY_CITE.finditer(text)
        for found in re.findall(_ID, match.group(1))
    }
    assert cited, "no citation found: the pattern no longer matches how code cites"
    assert sorted((name, found) for name, found in cited if found not in ids) == []


def test_every_cited_design_section_exists() -> None:
    sections = _design_sections()
    cited = {
        (name, found)
        for name, text in _texts().items()
        for match in _DESIGN_CITE.finditer(text)
        for found in re.findall(_SECTION, match.group(1))
    }
    assert cited, "no citation found: the pattern no longer matches how code cites"
    assert sorted((name, found) for name, found in cited if found not in sections) == []


def test_nothing_cites_a_file_that_does_not_ship() -> None:
    offending = [
        f"{name}:{number}: {line.strip()}"
        for name, text in _texts().items()
        if name != "tests/test_docs.py"
        for number, line in enumerate(text.splitlines(), 1)
        if _FORBIDDEN.search(line)
    ]
    assert offending == []


@pytest.mark.parametrize("document", [SECURITY, DESIGN], ids=lambda p: p.name)
def test_every_test_the_documents_name_exists(document: Path) -> None:
    names = _test_names()
    refs = _TEST_REF.findall(document.read_text(encoding="utf-8"))
    assert len(refs) > (100 if document == SECURITY else 20)
    missing = sorted(
        f"{module}.py::{test}" for module, test in refs if test not in names.get(module, set())
    )
    assert missing == []


def test_the_citation_patterns_read_what_they_should() -> None:
    """The checks above are only as good as these patterns: they find every id of a citation."""
    text = "see docs/security.md K4, L12 and T5; docs/design.md §2.1, §7 and docs/design.md §3."
    assert [re.findall(_ID, m.group(1)) for m in _SECURITY_CITE.finditer(text)] == [
        ["K4", "L12", "T5"]
    ]
    assert [re.findall(_SECTION, m.group(1)) for m in _DESIGN_CITE.finditer(text)] == [
        ["2.1", "7"],
        ["3"],
    ]
    assert _FORBIDDEN.search("(THREATS L9)") and _FORBIDDEN.search("see ../shared/x")
    assert not _FORBIDDEN.search("a shared task; the invariants of the layout")
