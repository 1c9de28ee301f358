"""provenance card draft: spec drafts from real Hugging Face and Croissant cards
(tests/vectors/cards; origins in tests/vectors/NOTES.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from provenance.card import load_spec
from provenance.exports.draft import draft, draft_spec
from tests.conftest import VECTORS, one_error_line, run_cli

HF = sorted((VECTORS / "cards" / "hf").glob("*.README.md"))
CROISSANT = sorted((VECTORS / "cards" / "croissant").glob("*.json"))


def _todos_above(text: str, key: str, value: str) -> list[str]:
    """The TODO comments written just above the line ``key: "value"``."""
    lines = text.splitlines()
    target = f"{key}: {json.dumps(value)}"
    for index, line in enumerate(lines):
        if line.strip().removeprefix("- ") == target:
            notes = []
            back = index - 1
            while back >= 0 and lines[back].strip().startswith("# TODO:"):
                notes.append(lines[back].strip())
                back -= 1
            return notes
    raise AssertionError(f"{target} not in the draft")


def test_the_real_cards_are_all_here() -> None:
    assert len(HF) == 49 and len(CROISSANT) == 46


@pytest.mark.parametrize("path", HF + CROISSANT, ids=lambda p: p.name)
def test_every_real_card_drafts_a_valid_spec(path: Path) -> None:
    kind = "huggingface" if path.name.endswith(".README.md") else "croissant"
    text, todos = draft_spec(kind, path.read_bytes(), what=path.name)
    spec = load_spec(text.encode(), what=path.name)
    # Every NOASSERTION and every placeholder carries a TODO comment saying why.
    for source in spec["sources"]:
        if source["license"] == "NOASSERTION":
            assert _todos_above(text, "license", "NOASSERTION")
    assert text.count("# TODO:") == todos
    assert yaml.safe_load(text) == json.loads(json.dumps(yaml.safe_load(text)))


@pytest.mark.parametrize(
    ("name", "license_", "reason"),
    [
        ("c4", "ODC-By-1.0", None),
        ("glue", "CC-BY-4.0", None),
        ("pg19", "Apache-2.0", None),
        ("lj_speech", "Unlicense", None),
        ("mnist", "MIT", "check this source's own"),
        ("common_voice", "CC0-1.0", "check this source's own"),
        ("code_x_glue_cc_clone_detection_big_clone_bench", "C-UDA-1.0", None),
        ("py_ast", "BSD-2-Clause AND MIT", "several licenses"),
        ("fever", "NOASSERTION", "GPL-3.0-only or GPL-3.0-or-later"),
        ("wikipedia", "NOASSERTION", "family"),
        ("the_pile", "NOASSERTION", "the card says 'other'"),
        ("ag_news", "NOASSERTION", "'unknown'"),
        ("biosses", "NOASSERTION", "GPL-3.0-only or GPL-3.0-or-later"),
        ("cbt", "NOASSERTION", "family"),
        ("multi_nli", "NOASSERTION", "also names CC-BY-3.0, CC-BY-SA-3.0, MIT"),
    ],
)
def test_hub_licenses_map_to_spdx_or_noassertion(
    name: str, license_: str, reason: str | None
) -> None:
    path = VECTORS / "cards" / "hf" / f"{name}.README.md"
    text, _ = draft_spec("huggingface", path.read_bytes(), what=name)
    spec = load_spec(text.encode(), what=name)
    assert {s["license"] for s in spec["sources"]} == {license_}
    notes = " ".join(_todos_above(text, "license", license_))
    if reason is None:
        assert notes == ""
    else:
        assert reason in notes


def test_hub_card_fields() -> None:
    path = VECTORS / "cards" / "hf" / "ambig_qa.README.md"
    result = draft("huggingface", path.read_bytes(), what="ambig_qa")
    spec = result.to_spec()
    assert spec["name"] == "AmbigQA: Answering Ambiguous Open-domain Questions"
    assert spec["description"].startswith("AmbigNQ, a dataset covering 14,042 questions")
    assert spec["publisher"]["url"] == "https://nlp.cs.washington.edu/ambigqa/"
    assert spec["version"] == "TODO" and result.fields["version"].todos
    # extended|natural_questions and original: two sources, the files of each to be named.
    assert [(s["id"], s["kind"]) for s in spec["sources"]] == [
        ("natural_questions", "dataset"),
        ("original", "dataset"),
    ]
    assert all(s["paths"] == [] for s in spec["sources"])
    assert result.sources[1]["kind"].todos  # 'original' does not say how it was obtained


@pytest.mark.parametrize(
    ("name", "license_", "reason"),
    [
        ("1.0-huggingface-rag-dataset", "CC-BY-3.0", None),
        ("1.1-huggingface-pollen-robotics-apple-storage", "Apache-2.0", None),
        ("1.0-simple-join", "CC-BY-4.0", None),
        ("1.0-huggingface-c4", "ODC-By-1.0", None),
        ("1.0-credit-g", "NOASSERTION", "names no license"),
        ("1.1-commoncrawl-CC-MAIN-2025-43-draft", "NOASSERTION", "commoncrawl.org/terms-of-use"),
        ("1.1-huggingface-recipe_RL_data_roberta-base", "NOASSERTION", "undefined"),
        ("1.0-huggingface-squad", "NOASSERTION", "states no license"),
    ],
)
def test_croissant_licenses_map_to_spdx_or_noassertion(
    name: str, license_: str, reason: str | None
) -> None:
    path = VECTORS / "cards" / "croissant" / f"{name}.json"
    text, _ = draft_spec("croissant", path.read_bytes(), what=name)
    spec = load_spec(text.encode(), what=name)
    assert {s["license"] for s in spec["sources"]} == {license_}
    notes = " ".join(_todos_above(text, "license", license_))
    assert (reason is None and notes == "") or (reason is not None and reason in notes)


def test_croissant_fields_and_rai_collection_type() -> None:
    path = VECTORS / "cards" / "croissant" / "1.0-bigcode-the-stack.json"
    result = draft("croissant", path.read_bytes(), what="the-stack")
    spec = result.to_spec()
    assert spec["name"] == "bigcode-the-stack"
    assert spec["publisher"]["name"] == "Harm de Vries"
    assert spec["publisher"]["contact"] == "harm.devries@servicenow.com"
    assert any("Leandro von Werra" in n for n in result.publisher["name"].todos)
    # Its RAI collection types are "Web Scraping" and "Others": not one kind, so a TODO.
    assert spec["sources"][0]["kind"] == "dataset"
    assert "web scraping, others" in " ".join(result.sources[0]["kind"].todos)


def test_croissant_prov_sources() -> None:
    path = VECTORS / "cards" / "croissant" / "1.1-huggingface-wildchat.json"
    spec = draft("croissant", path.read_bytes(), what="wildchat").to_spec()
    assert [(s["id"], s["homepage"]) for s in spec["sources"]] == [
        ("wildChat-1m-full", "https://huggingface.co/datasets/allenai/WildChat-1M-Full")
    ]


def test_our_croissant_export_drafts_back_to_the_cards_sources(tmp_path: Path) -> None:
    from tests.exports_support import build_sample

    sample = build_sample(tmp_path / "s")
    out = tmp_path / "croissant.json"
    result = run_cli("export", "croissant", sample.card, "--trust", sample.trust, "-o", out)
    assert result.returncode == 0, result.stderr
    spec_path = tmp_path / "spec.yaml"
    result = run_cli("card", "draft", "--from", "croissant", out, "-o", spec_path)
    assert result.returncode == 0, result.stderr
    assert "TODO(s)" in result.stdout
    drafted = load_spec(spec_path.read_bytes(), what="draft")
    original = load_spec((Path(__file__).parents[1] / "samples" / "card-spec.yaml").read_bytes(),
                         what="spec")  # fmt: skip
    keys = ("id", "name", "kind", "license", "rightsHolder", "homepage", "collection")
    assert [{k: s.get(k) for k in keys} for s in drafted["sources"]] == [
        {k: s.get(k) for k in keys} for s in original["sources"]
    ]
    assert drafted["name"] == original["name"] and drafted["version"] == original["version"]


def test_draft_cli_errors(tmp_path: Path) -> None:
    bad = tmp_path / "README.md"
    bad.write_text("---\nlicense: [mit\n---\n# x\n")
    out = tmp_path / "spec.yaml"
    result = run_cli("card", "draft", "--from", "huggingface", bad, "-o", out)
    assert result.returncode == 2
    assert "malformed YAML front matter" in one_error_line(result)
    assert not out.exists()
    bad.write_text('{"name": "x", "name": "y"}')
    result = run_cli("card", "draft", "--from", "croissant", bad, "-o", out)
    assert result.returncode == 2
    one_error_line(result)
    assert not out.exists()
