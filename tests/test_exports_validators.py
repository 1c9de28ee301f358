"""Each export checked by its readers' own validator, offline: huggingface_hub's card parser and the
Hub's license ids, mlcroissant, spdx3-validate and spdx-python-model, cyclonedx-python-lib, the
model_signing CLI, and Chromium (pip Playwright driving /usr/bin/chromium) for the HTML page.

In-process validators run with every non-loopback connection refused; subprocesses get a proxy
on a closed loopback port, so any download fails at once.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from provenance.exports.licenses import hub_license_ids
from tests.conftest import NOW, SAMPLES, run_cli
from tests.exports_support import (
    Sample,
    build_sample,
    no_network,
    offline_env,
    peer_script,
    spdx_model_roundtrip,
    validate_spdx3,
)

CHROMIUM = "/usr/bin/chromium"
SIZE_CATEGORIES = {
    "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
    "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T", "other",
}  # fmt: skip


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return build_sample(tmp_path_factory.mktemp("validators"))


def _export(sample: Sample, fmt: str, out: Path, *extra: str | Path, card: Path | None = None):
    result = run_cli(
        "export", fmt, card or sample.card, "--trust", sample.trust, "--manifest",
        sample.records_manifest if card == sample.records_card else sample.manifest,
        "-o", out, *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out


def _statement_sha256(card: Path) -> str:
    import hashlib

    return hashlib.sha256(base64.b64decode(json.loads(card.read_bytes())["payload"])).hexdigest()


def _run_peer(*args: str | Path, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **offline_env()},
        timeout=timeout,
        check=False,
    )


# ----------------------------------------------------------------------------------------------
# Hugging Face


@pytest.mark.parametrize("which", ["card", "records_card"])
def test_huggingface_card_parses_with_the_hubs_rules(
    sample: Sample, tmp_path: Path, which: str
) -> None:
    from huggingface_hub import DatasetCard

    card_path = getattr(sample, which)
    text = _export(sample, "huggingface", tmp_path / "README.md", card=card_path).read_text()
    with no_network() as attempts:
        card = DatasetCard(text)
        data = card.data.to_dict()
        again = DatasetCard(str(card)).data.to_dict()
    assert attempts == []
    assert again == data
    hub_ids = set(hub_license_ids())
    assert isinstance(data["license"], list) and data["license"]
    assert set(data["license"]) <= hub_ids
    if "other" in data["license"]:
        assert re.fullmatch(r"[a-z0-9.-]+", data["license_name"])
        assert data["license_link"]
    assert set(data["size_categories"]) <= SIZE_CATEGORIES
    assert data["configs"][0]["data_files"][0]["path"].endswith("manifest.jsonl")
    # Our own block survives the Hub's parser (it keeps keys it does not know).
    assert data["provenance"]["card_sha256"] == _statement_sha256(card_path)
    assert "## Exclusion lists applied" in card.text


def test_huggingface_license_ids_from_the_card(sample: Sample, tmp_path: Path) -> None:
    from huggingface_hub import DatasetCard

    text = _export(sample, "huggingface", tmp_path / "README.md").read_text()
    data = DatasetCard(text).data.to_dict()
    # CC0-1.0 has a Hub id; the card's three LicenseRef ids do not.
    assert data["license"] == ["cc0-1.0", "other"]
    assert data["license_name"] == "custom-licenses"


# ----------------------------------------------------------------------------------------------
# Croissant


@pytest.mark.parametrize("which", ["card", "records_card"])
def test_croissant_passes_mlcroissant_validate(sample: Sample, tmp_path: Path, which: str) -> None:
    card = getattr(sample, which)
    out = _export(sample, "croissant", tmp_path / "croissant.json", card=card)
    result = _run_peer(peer_script("mlcroissant"), "validate", "--jsonld", out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Done." in result.stderr
    assert "error" not in result.stderr.lower().replace("errors", "")
    doc = json.loads(out.read_text())
    assert doc["@context"]["@vocab"] == "https://schema.org/"
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.1"
    timeframe = doc.get("rai:dataCollectionTimeframe")
    assert isinstance(timeframe, list) and len(timeframe) == 2


def test_croissant_makes_the_manifest_loadable(sample: Sample, tmp_path: Path) -> None:
    out = _export(sample, "croissant", tmp_path / "croissant.json")
    shutil.copy(sample.manifest, tmp_path / "manifest.jsonl")
    result = _run_peer(
        peer_script("mlcroissant"), "load", "--jsonld", out, "--record_set", "manifest",
        "--num_records", "100",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    ids = re.findall(r"'manifest/id': b'([^']+)'", result.stdout)
    assert sorted(ids) == sorted(
        json.loads(line)["id"] for line in sample.manifest.read_text().splitlines()
    )


@pytest.mark.parametrize("name", ["my manifest.jsonl", "manifest"])
def test_croissant_of_a_manifest_of_any_name_validates_and_loads(
    sample: Sample, tmp_path: Path, name: str
) -> None:
    """The manifest's FileObject has a fixed id, whatever the file is named: a name with a space
    (mlcroissant refuses such ids) or "manifest" (the RecordSet's id) validated badly or made
    the validator fail before; its contentUrl is the name, which mlcroissant loads as it is."""
    manifest = tmp_path / name
    shutil.copy(sample.manifest, manifest)
    card = _card_over(sample, manifest, tmp_path)
    out = _export(sample, "croissant", tmp_path / "croissant.json", card=card)
    ids = _validated_and_loaded(out)
    assert len(ids) == len(sample.manifest.read_text().splitlines())


def _card_over(sample: Sample, manifest: Path, directory: Path) -> Path:
    """The sample spec's card over ``manifest``, signed by the sample's trusted key."""
    built = run_cli(
        "card", "build", SAMPLES / "card-spec.yaml", "--manifest", manifest,
        "-o", directory / "card.json", "--now", NOW,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    card = directory / "card.signed.json"
    signed = run_cli(
        "card", "sign", directory / "card.json", "--key", sample.ed25519_key, "-o", card
    )
    assert signed.returncode == 0, signed.stderr
    return card


def _validated_and_loaded(croissant: Path) -> list[str]:
    """``mlcroissant validate`` of ``croissant`` (no error), then the ids ``mlcroissant load``
    reads from its manifest RecordSet."""
    result = _run_peer(peer_script("mlcroissant"), "validate", "--jsonld", croissant)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "error" not in result.stderr.lower().replace("errors", "")
    result = _run_peer(
        peer_script("mlcroissant"), "load", "--jsonld", croissant, "--record_set", "manifest",
        "--num_records", "1000",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return re.findall(r"'manifest/id': b'([^']+)'", result.stdout)


def test_the_exports_of_a_partitioned_manifest_read_its_parts(
    sample: Sample, tmp_path: Path
) -> None:
    """A card over a partitioned manifest commits to its index.json (DESIGN §8): Croissant
    describes the index and the parts (a FileSet) and mlcroissant loads every entry from the
    parts; the Hub card's data files are the parts (before, both pointed at index.json as if
    it were the JSON Lines manifest: validated, but no record could be loaded)."""
    parts = tmp_path / "parts"
    built = run_cli(
        "manifest", "build", sample.data, "-o", f"{parts}/", "--partitions", "4", "--workers", "1"
    )
    assert built.returncode == 0, built.stderr
    assert len(list(parts.glob("part-*.jsonl"))) == 4
    card = _card_over(sample, parts, tmp_path)
    out = _export(sample, "croissant", parts / "croissant.json", "--manifest", parts, card=card)
    ids = _validated_and_loaded(out)
    expected = [
        json.loads(line)["id"]
        for part in sorted(parts.glob("part-*.jsonl"))
        for line in part.read_text().splitlines()
    ]
    assert sorted(ids) == sorted(expected) and len(expected) == 19
    from huggingface_hub import DatasetCard

    readme = _export(sample, "huggingface", tmp_path / "README.md", "--manifest", parts, card=card)
    data = DatasetCard(readme.read_text()).data.to_dict()
    assert data["configs"][0]["data_files"] == [{"split": "train", "path": "part-*.jsonl"}]


def test_mlcroissant_rejects_a_broken_export(sample: Sample, tmp_path: Path) -> None:
    out = _export(sample, "croissant", tmp_path / "croissant.json")
    doc = json.loads(out.read_text())
    del doc["distribution"][0]["sha256"]
    out.write_text(json.dumps(doc))
    result = _run_peer(peer_script("mlcroissant"), "validate", "--jsonld", out)
    assert result.returncode != 0


# ----------------------------------------------------------------------------------------------
# SPDX 3


@pytest.mark.parametrize("which", ["card", "records_card"])
def test_spdx3_passes_spdx3_validate_and_the_model(
    sample: Sample, tmp_path: Path, which: str
) -> None:
    out = _export(sample, "spdx3", tmp_path / "dataset.spdx3.json", card=getattr(sample, which))
    code, printed = validate_spdx3(out)
    assert code == 0, printed
    with no_network() as attempts:
        missing, serialized = spdx_model_roundtrip(out)
    assert attempts == [] and missing == set()
    graph = json.loads(serialized)["@graph"]
    datasets = [e for e in graph if e.get("type") == "dataset_DatasetPackage"]
    payload = json.loads(
        base64.b64decode(json.loads(getattr(sample, which).read_bytes())["payload"])
    )
    # One package for the dataset and one per source, each with its dataset type.
    assert len(datasets) == 1 + len(payload["predicate"]["sources"])
    assert all(e["dataset_datasetType"] for e in datasets)


def test_spdx3_validate_catches_a_broken_export(sample: Sample, tmp_path: Path) -> None:
    out = _export(sample, "spdx3", tmp_path / "dataset.spdx3.json")
    doc = json.loads(out.read_text())
    for element in doc["@graph"]:
        if element.get("type") == "dataset_DatasetPackage":
            del element["dataset_datasetType"]
    out.write_text(json.dumps(doc))
    code, _ = validate_spdx3(out)
    assert code != 0


# ----------------------------------------------------------------------------------------------
# CycloneDX


def test_cyclonedx_passes_the_strict_json_validator(sample: Sample, tmp_path: Path) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    out = _export(sample, "cyclonedx", tmp_path / "dataset.cdx.json")
    text = out.read_text()
    with no_network() as attempts:
        errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True)
    assert attempts == [] and errors is None
    component = json.loads(text)["metadata"]["component"]
    assert component["type"] == "data" and component["data"][0]["type"] == "dataset"
    assert [list(entry) for entry in component["licenses"]] == [["expression"]]
    # A license id outside the SPDX list is refused by the schema: the exporter uses names.
    broken = json.loads(text)
    broken["metadata"]["component"]["pedigree"]["ancestors"][0]["licenses"] = [
        {"license": {"id": "LicenseRef-Public-Domain"}}
    ]
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(broken)) is not None


# ----------------------------------------------------------------------------------------------
# model_signing


def test_oms_bundle_verifies_with_model_signing(sample: Sample, tmp_path: Path) -> None:
    bundle = tmp_path / "data.sig"
    result = run_cli(
        "export", "oms", sample.card, "--trust", sample.trust, "--manifest", sample.manifest,
        "--data", sample.data, "--key", sample.p256_key, "-o", bundle,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    public = Path(f"{sample.p256_key}.pub")
    verify = [peer_script("model_signing"), "verify", "key", sample.data, "--signature", bundle,
              "--public_key", public]  # fmt: skip
    result = _run_peer(*verify)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification succeeded" in result.stdout
    payload = json.loads(
        base64.b64decode(json.loads(bundle.read_text())["dsseEnvelope"]["payload"])
    )
    assert payload["predicate"]["provenance_card"]["statementSha256"] == _statement_sha256(
        sample.card
    )
    # model_signing itself notices a file changed after signing.
    changed = tmp_path / "data"
    shutil.copytree(sample.data, changed)
    (changed / "legislation" / "senate-bills.txt").write_text("changed\n")
    verify[3] = str(changed)
    assert _run_peer(*verify).returncode != 0


# ----------------------------------------------------------------------------------------------
# HTML in Chromium


def _artifacts() -> Path:
    root = Path(tempfile.gettempdir()) / "provenance-test-artifacts"
    root.mkdir(exist_ok=True)
    return root


def test_html_page_renders_in_chromium_without_any_request(sample: Sample, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), "Chromium is needed: apt-get install -y chromium"
    page_path = _export(sample, "html", tmp_path / "card.html", card=sample.records_card)
    html = page_path.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    requests: list[str] = []
    screenshot = _artifacts() / "export-html.png"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            heading = page.inner_text("h1")
            charts = page.locator("svg").count()
            bars = page.locator("svg rect").count()
            tables = page.locator("table").count()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    print(f"screenshot: {screenshot}", file=sys.stderr)
    print(f"screenshot: {screenshot}")
    assert requests == [page_path.as_uri()]
    assert heading == "example-web-records 2026.06"
    # sources, licenses, manifest commitment, signers (no exclusion list in this card)
    assert charts == 5 and bars > 10 and tables == 4
    assert screenshot.stat().st_size > 10_000


def test_html_escapes_what_the_card_says(sample: Sample, tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: '<script>alert(1)</script>'\nversion: '1'\n"
        "description: '<img src=\"http://127.0.0.1:9/x\" onerror=alert(2)>'\n"
        "publisher: {name: 'A & B <Lab>'}\n"
        "sources: [{id: s, name: '</td><b>x</b>', kind: dataset, license: MIT, paths: ['**']}]\n"
    )
    card = tmp_path / "card.json"
    signed = tmp_path / "card.signed.json"
    for step in (
        ["card", "build", spec, "--manifest", sample.manifest, "-o", card],
        ["card", "sign", card, "--key", sample.ed25519_key, "-o", signed],
    ):
        result = run_cli(*step)
        assert result.returncode == 0, result.stderr
    out = tmp_path / "card.html"
    result = run_cli("export", "html", signed, "--trust", sample.trust, "-o", out)
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert "<script>" not in html and "<img" not in html and "<b>x</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "A &amp; B &lt;Lab&gt;" in html
