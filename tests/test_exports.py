"""provenance export: the card is verified first, the manifest checked, nothing written on failure;
the EU summary's figures computed independently; the license table."""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from publicsuffixlist import PublicSuffixList

from provenance.envelope import sign_envelope
from provenance.exports import FORMATS, modality_of, top_domain_count
from provenance.exports import licenses as lic
from provenance.keys import PrivateKey, load_private_key, write_key_pair
from provenance.licenses import normalize_license
from provenance.manifest import ManifestEntry, iter_manifest
from tests.conftest import one_error_line, run_cli
from tests.exports_support import Sample, build_sample

NON_OMS = [f for f in FORMATS if f != "oms"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    return build_sample(tmp_path_factory.mktemp("exports"))


def _export(sample: Sample, fmt: str, out: Path, *extra: str | Path, card: Path | None = None):
    return run_cli("export", fmt, card or sample.card, "--trust", sample.trust, "-o", out, *extra)


@pytest.mark.parametrize("fmt", NON_OMS)
def test_every_format_exports_the_verified_card(sample: Sample, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    result = _export(sample, fmt, out, "--manifest", sample.manifest)
    assert result.returncode == 0, result.stderr
    text = out.read_text("utf-8")
    statement = json.loads(base64.b64decode(json.loads(sample.card.read_bytes())["payload"]))
    # Every export names the manifest's digest and its Merkle root, from the signed card.
    assert statement["subject"][0]["digest"]["sha256"] in text
    assert statement["predicate"]["manifest"]["merkleRoot"] in text


def _signed(sample: Sample, statement: dict[str, Any], directory: Path) -> Path:
    """``statement`` signed by the sample's trusted key (``card sign``): the signed card."""
    edited = directory / "card.json"
    edited.write_text(json.dumps(statement))
    card = directory / "card.signed.json"
    signed = run_cli("card", "sign", edited, "--key", sample.ed25519_key, "-o", card)
    assert signed.returncode == 0, signed.stderr
    return card


def _forge(sample: Sample, path: Path) -> Path:
    envelope = json.loads(sample.card.read_bytes())
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["predicate"]["sources"][3]["license"] = "CC0-1.0"
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    path.write_text(json.dumps(envelope))
    return path


@pytest.mark.parametrize("fmt", NON_OMS)
def test_a_tampered_card_is_not_exported(sample: Sample, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "out"
    result = _export(sample, fmt, out, card=_forge(sample, tmp_path / "forged.json"))
    assert result.returncode == 1
    assert "signed by 0 of the 1 trusted key(s)" in one_error_line(result)
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "forged.json"]


@pytest.mark.parametrize("fmt", ["spdx3", "croissant", "html"])
def test_a_signed_card_with_a_source_id_used_twice_is_not_exported(
    sample: Sample, tmp_path: Path, fmt: str
) -> None:
    """Signed by a trusted key, but two sources share an id (which ``card build`` never
    writes; before, verified and exported, an SPDX 3 document with two elements of one
    spdxId): refused, nothing written; ``verify`` refuses it too."""
    statement = json.loads((sample.root / "card.json").read_text())
    statement["predicate"]["sources"][1]["id"] = statement["predicate"]["sources"][0]["id"]
    edited = tmp_path / "card.json"
    edited.write_text(json.dumps(statement))
    card = tmp_path / "card.signed.json"
    signed = run_cli("card", "sign", edited, "--key", sample.ed25519_key, "-o", card)
    assert signed.returncode == 2 and "is used twice" in one_error_line(signed)
    # Signed nevertheless (another tool, or a forged statement signed by a careless key).
    envelope = json.loads(sample.card.read_bytes())
    payload = json.dumps(statement).encode()
    forged = sign_envelope(envelope["payloadType"], payload, [load_private_key(sample.ed25519_key)])
    card.write_bytes(forged.to_json())
    out = tmp_path / "out"
    result = _export(sample, fmt, out, card=card)
    assert result.returncode == 2 and "is used twice" in one_error_line(result)
    assert not out.exists()
    verified = run_cli("verify", card, "--trust", sample.trust)
    assert verified.returncode == 2 and "is used twice" in one_error_line(verified)


HOSTILE = "<script>window.pwned=1</script><img src=x onerror=alert(1)>"


@pytest.mark.parametrize("fmt", ["huggingface", "eu-summary"])
def test_a_cards_text_renders_as_text_in_the_markdown_exports(
    sample: Sample, tmp_path: Path, fmt: str
) -> None:
    """Markup in a signed card's plain-text fields (names, publisher, rights holder, exclusion
    names, description, a line break that would start a block) renders as that text: rendered
    with CommonMark (which passes raw HTML through), no element, link or heading comes from
    the card (before: 11 and 15 script tags, a javascript: link, injected lines)."""
    from markdown_it import MarkdownIt

    statement = json.loads((sample.root / "card.json").read_text())
    predicate = statement["predicate"]
    predicate["name"] = f"corpus {HOSTILE}"
    predicate["description"] = f"Line one {HOSTILE}\n# injected heading\n[click](javascript:x)"
    predicate["publisher"]["name"] = f"Lab {HOSTILE}\n---\ninjected: front matter"
    for source in predicate["sources"]:
        source["name"] = f"{source['name']} {HOSTILE} [x](javascript:alert(2)) **bold**"
        source["rightsHolder"] = f"Holder {HOSTILE}"
    for exclusion in predicate["exclusions"]:
        exclusion["name"] = f"{exclusion['name']} {HOSTILE}"
    card = _signed(sample, statement, tmp_path)
    out = tmp_path / "out.md"
    result = _export(sample, fmt, out, "--manifest", sample.manifest, card=card)
    assert result.returncode == 0, result.stderr
    text = out.read_text("utf-8")
    body = text.split("\n---\n", 1)[1] if text.startswith("---\n") else text
    html = MarkdownIt("commonmark").render(body)
    for forbidden in ("<script", "<img", "href=", "<a ", "<strong>bold"):
        assert forbidden not in html, forbidden
    assert "<h1>injected heading" not in html and "injected: front matter</h" not in html
    if fmt == "huggingface":  # the summary does not show the description
        assert "# injected heading" in html
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html  # shown, as text


def test_a_card_signed_by_an_untrusted_key_is_not_exported(sample: Sample, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger.key"
    write_key_pair(PrivateKey.generate(), stranger)
    card = tmp_path / "card.signed.json"
    result = run_cli("card", "sign", sample.root / "card.json", "--key", stranger, "-o", card)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "README.md"
    result = _export(sample, "huggingface", out, card=card)
    assert result.returncode == 1
    one_error_line(result)
    assert not out.exists()


def test_an_unsigned_card_is_refused(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    result = _export(sample, "html", out, card=sample.root / "card.json")
    assert result.returncode == 2
    assert "not signed" in one_error_line(result)
    assert not out.exists()


def test_a_manifest_that_is_not_the_cards_is_refused(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "summary.md"
    result = _export(sample, "eu-summary", out, "--manifest", sample.records_manifest)
    assert result.returncode == 1
    assert "is not the manifest the card commits to" in one_error_line(result)
    assert not out.exists()


def test_an_existing_output_is_left_as_it_was_on_failure(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "card.cdx.json"
    out.write_text("previous")
    result = _export(sample, "cyclonedx", out, card=_forge(sample, tmp_path / "forged.json"))
    assert result.returncode == 1
    assert out.read_text() == "previous"


def test_options_that_do_not_apply_are_refused(sample: Sample, tmp_path: Path) -> None:
    result = _export(sample, "html", tmp_path / "x", "--json")
    assert result.returncode == 2 and "--json applies to eu-summary only" in result.stderr
    result = _export(sample, "oms", tmp_path / "x", "--manifest", sample.manifest)
    assert result.returncode == 2 and "needs --manifest, --data and --key" in result.stderr


# ----------------------------------------------------------------------------------------------
# oms: the data directory is checked against the card's manifest first


def _oms(sample: Sample, out: Path, data: Path, key: Path):
    return _export(sample, "oms", out, "--manifest", sample.manifest, "--data", data, "--key", key)


def test_oms_refuses_a_changed_data_file(sample: Sample, tmp_path: Path) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(sample.data, data)
    target = data / "news" / "2026-04-library-reopens.txt"
    target.write_bytes(target.read_bytes().replace(b"two hours", b"ten hours"))
    out = tmp_path / "data.sig"
    result = _oms(sample, out, data, sample.p256_key)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "changed: news/2026-04-library-reopens.txt" in line
    assert not out.exists()


def test_a_manifest_that_is_not_the_cards_is_a_verified_no_with_the_data_too(
    sample: Sample, tmp_path: Path
) -> None:
    """Another card's manifest, whose entries name sources this card does not define: exit 1
    for what it is (not the card's manifest), with --data (oms) as without; before, its first
    entry's unknown source was reported as bad input (exit 2)."""
    out = tmp_path / "data.sig"
    result = run_cli(
        "export", "oms", sample.card, "--trust", sample.trust, "--manifest",
        sample.records_manifest, "--data", sample.data, "--key", sample.p256_key, "-o", out,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "does not match the card's manifest: manifest digest" in one_error_line(result)
    assert not out.exists()
    verified = run_cli(
        "verify", sample.card, "--trust", sample.trust, "--manifest", sample.records_manifest
    )
    assert verified.returncode == 1, verified.stderr
    assert "not counted: the manifest is not the card's" in verified.stdout


def test_oms_refuses_an_ed25519_key_saying_why(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "data.sig"
    result = _oms(sample, out, sample.data, sample.ed25519_key)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "Ed25519" in line and "ECDSA P-256" in line
    assert not out.exists()


def test_oms_refuses_a_bundle_inside_the_signed_directory(sample: Sample) -> None:
    out = sample.data / "data.sig"
    result = _oms(sample, out, sample.data, sample.p256_key)
    assert result.returncode == 2
    assert "outside" in one_error_line(result)
    assert not out.exists()


def test_oms_refuses_a_tampered_card(sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "data.sig"
    result = _export(
        sample, "oms", out, "--manifest", sample.manifest, "--data", sample.data,
        "--key", sample.p256_key, card=_forge(sample, tmp_path / "forged.json"),
    )  # fmt: skip
    assert result.returncode == 1
    one_error_line(result)
    assert not out.exists()


# ----------------------------------------------------------------------------------------------
# eu-summary: figures computed independently here


CRAWL_SPEC = """\
name: crawl
version: "1"
description: Pages from many sites.
publisher: {name: Example AI Lab}
sources:
  - {id: crawl, name: A crawl, kind: web-crawl, license: CC-BY-4.0,
     collection: {start: "2026-01-01", end: "2026-02-01"}}
"""


@pytest.fixture(scope="module")
def crawl(sample: Sample) -> tuple[Path, Path]:
    """A signed card over 46 records from 25 hosts: subdomains, a co.uk and a github.io site,
    an IP address, a host spelled in capitals with a trailing dot, userinfo and a port."""
    root = sample.root / "crawl"
    root.mkdir()
    urls = [f"https://site{n:02d}.example/page{k}" for n in range(20) for k in range(n % 3 + 1)]
    urls += [
        "https://a.news.example.co.uk/1", "https://b.news.example.co.uk/2",
        "https://alice.github.io/blog", "https://bob.github.io/blog", "http://192.0.2.7/x",
        "http://SITE03.EXAMPLE./caps", "https://user:pw@site05.example:8443/port",
    ]  # fmt: skip
    with (root / "records.jsonl").open("w") as handle:
        for index, url in enumerate(urls):
            text = "x" * (10 + (index * 37) % 200)
            record = {"id": f"r{index:03d}", "url": url, "text": text, "source": "crawl"}
            handle.write(json.dumps(record) + "\n")
    (root / "spec.yaml").write_text(CRAWL_SPEC)
    manifest = root / "manifest.jsonl"
    card = root / "card.signed.json"
    for step in (
        ["manifest", "build", root / "records.jsonl", "-o", manifest],
        ["card", "build", root / "spec.yaml", "--manifest", manifest, "-o", root / "card.json"],
        ["card", "sign", root / "card.json", "--key", sample.ed25519_key, "-o", card],
    ):
        result = run_cli(*step)
        assert result.returncode == 0, result.stderr
    return card, manifest


def _independent_domains(manifest: Path) -> list[tuple[str, int, int]]:
    psl = PublicSuffixList(only_icann=False)
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in manifest.read_text().splitlines():
        entry = json.loads(line)
        if "url" not in entry:
            continue
        host = (urlsplit(entry["url"]).hostname or "").rstrip(".")
        domain = host if host.replace(".", "").isdigit() else psl.privatesuffix(host) or host
        groups[domain][0] += 1
        groups[domain][1] += entry.get("size", 0)
    return sorted(((d, r, b) for d, (r, b) in groups.items()), key=lambda x: (-x[2], -x[1], x[0]))


@pytest.mark.parametrize("sme", [False, True])
def test_eu_summary_top_domains_by_bytes(
    sample: Sample, crawl: tuple[Path, Path], tmp_path: Path, sme: bool
) -> None:
    card, manifest = crawl
    out = tmp_path / "summary.json"
    extra = ["--sme"] if sme else []
    result = run_cli(
        "export", "eu-summary", card, "--trust", sample.trust, "--manifest", manifest,
        "--json", "-o", out, *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    expected = _independent_domains(manifest)
    assert len(expected) == 24  # 20 sites, example.co.uk, two github.io sites, the IP
    assert ("example.co.uk", 2) in [(d, r) for d, r, _ in expected]
    count = 2 if sme else 3  # ceil(5 % of 24), ceil(10 % of 24)
    top = doc["dataSources"]["crawled"]["topDomains"]
    assert top["domains"] == len(expected)
    assert top["entriesWithUrl"] == 46
    assert [(r["domain"], r["records"], r["bytes"]) for r in top["listed"]] == expected[:count]
    total = sum(b for _, _, b in expected)
    assert top["listed"][0]["byteShare"] == round(expected[0][2] / total, 6)


def test_eu_summary_fills_what_the_card_holds_and_marks_the_rest(
    sample: Sample, tmp_path: Path
) -> None:
    out = tmp_path / "summary.json"
    result = _export(
        sample, "eu-summary", out, "--manifest", sample.manifest, "--json",
        "--model", "Example-LM 1.0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    general = doc["generalInformation"]
    assert general["model"]["names"] == "Example-LM 1.0"
    assert general["provider"]["name"] == "Example AI Lab"
    assert general["provider"]["contact"].startswith("[TO FILL")
    assert "generalInformation.provider.contact" in doc["toFill"]
    assert "generalInformation.model.names" not in doc["toFill"]
    assert general["latestCollectionDate"] == "2026-05-31"
    assert general["modalities"] == ["text", "image"]
    licensed = doc["dataSources"]["licensedData"]
    assert licensed["used"] is True
    assert [s["id"] for s in licensed["sources"]] == ["example-news"]
    assert [s["id"] for s in doc["dataSources"]["crawled"]["sources"]] == ["fans-forum"]
    # Markdown carries the same values.
    md = tmp_path / "summary.md"
    assert _export(sample, "eu-summary", md, "--manifest", sample.manifest).returncode == 0
    text = md.read_text()
    assert "### 2.2.1." in text and "Example News Co. archive" in text
    assert "[TO FILL: provider's contact details]" in text


@pytest.mark.parametrize(
    ("domains", "sme", "expected"),
    [(0, False, 0), (1, False, 1), (10, False, 1), (11, False, 2), (100, False, 10),
     (1, True, 1), (19, True, 1), (21, True, 2), (100, True, 5), (30_000, True, 1000)],
)  # fmt: skip
def test_top_domain_count(domains: int, sme: bool, expected: int) -> None:
    assert top_domain_count(domains, sme=sme) == expected


def test_modality_of() -> None:
    digest = "0" * 64
    assert modality_of(ManifestEntry(id="a/b.PNG", sha256=digest)) == "image"
    assert modality_of(ManifestEntry(id="x.flac", sha256=digest)) == "audio"
    assert modality_of(ManifestEntry(id="r-1", sha256=digest, textSha256=digest)) == "text"
    assert modality_of(ManifestEntry(id="r-2", sha256=digest, url="https://a.example/v.mp4")) == (
        "video"
    )
    assert modality_of(ManifestEntry(id="blob", sha256=digest)) == "other"


def test_sample_manifest_modalities(sample: Sample) -> None:
    kinds = {modality_of(e) for e in iter_manifest(sample.manifest)}
    assert kinds == {"text", "image"}


# ----------------------------------------------------------------------------------------------
# License table


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Apache License 2.0", "Apache-2.0"),
        ("apache-2.0", "Apache-2.0"),
        ("CC BY-NC 4.0", "CC-BY-NC-4.0"),
        ("cc-by-nc-sa-4.0", "CC-BY-NC-SA-4.0"),
        ("Creative Commons Attribution 4.0 International", "CC-BY-4.0"),
        ("Creative Commons Attribution Share Alike 3.0", "CC-BY-SA-3.0"),
        ("CC0 1.0", "CC0-1.0"),
        ("MIT License", "MIT"),
        ("odc-by", "ODC-By-1.0"),
        ("c-uda", "C-UDA-1.0"),
        ("https://creativecommons.org/licenses/by/4.0/", "CC-BY-4.0"),
        ("https://choosealicense.com/licenses/apache-2.0/", "Apache-2.0"),
        ("https://choosealicense.com/licenses/odc-by/", "ODC-By-1.0"),
        ("https://spdx.org/licenses/MIT.html", "MIT"),
    ],
)
def test_license_names_normalize_to_spdx(text: str, expected: str) -> None:
    mapped = lic.from_text(text)
    assert (mapped.expression, mapped.todo) == (expected, None)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("other", "other"),
        ("unknown", "unknown"),
        ("gpl-3.0", "GPL-3.0-only or GPL-3.0-or-later"),
        ("bsd", "family"),
        ("llama2", "not on the SPDX License List"),
        ("Public", "names no license"),
        ("https://commoncrawl.org/terms-of-use", "not one of a known license"),
        ("https://choosealicense.com/licenses/undefined/", "undefined"),
        ("My Own Research Licence", "not a license name or id"),
        ("GPL-2.0", "GPL-2.0-only or GPL-2.0-or-later"),
        ("LGPL-2.0", "deprecated"),
    ],
)
def test_unmappable_licenses_are_noassertion_with_a_reason(text: str, reason: str) -> None:
    mapped = lic.from_text(text)
    assert mapped.expression == "NOASSERTION"
    assert mapped.todo is not None and reason in mapped.todo


def test_every_hub_id_maps_to_one_spdx_license_or_says_why() -> None:
    assert len(lic.hub_license_ids()) == 83
    mapped = 0
    for hub in lic.hub_license_ids():
        result = lic.from_hub_id(hub)
        if result.todo is None:
            assert normalize_license(result.expression) == result.expression
            # ... and back: exporting that SPDX id gives the same Hub id.
            assert lic.hub_id(result.expression) == hub
            mapped += 1
        else:
            assert result.expression == "NOASSERTION"
    # 49 of the Hub's 83 ids name exactly one SPDX license; the rest are families, model
    # licenses, ambiguous GNU ids, 'other' and 'unknown'.
    assert mapped == 49


@pytest.mark.parametrize(
    ("spdx", "hub"),
    [("CC-BY-4.0", "cc-by-4.0"), ("GPL-3.0-only", "gpl-3.0"), ("GPL-3.0-or-later", None),
     ("ODbL-1.0", "odbl"), ("LicenseRef-Mine", None), ("0BSD", None)],
)  # fmt: skip
def test_hub_ids_for_spdx_ids(spdx: str, hub: str | None) -> None:
    assert lic.hub_id(spdx) == hub


def test_demo_exports_the_sample_card_to_every_format(tmp_path: Path) -> None:
    import os
    import subprocess

    from tests.exports_support import offline_env, peer_script

    work = tmp_path / "demo"
    result = run_cli("demo", "--keep", work)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "publish the verified card where its readers look" in result.stdout
    for name in ("README.md", "croissant.json", "dataset.spdx3.json", "dataset.cdx.json",
                 "eu-summary.md", "card.html", "data.sig"):  # fmt: skip
        assert (work / "exports" / name).stat().st_size > 500, name
    assert not (work / "exports" / "forged.html").exists()
    verified = subprocess.run(
        [peer_script("model_signing"), "verify", "key", str(work / "data"), "--signature",
         str(work / "exports" / "data.sig"), "--public_key", str(work / "developer-p256.key.pub")],
        capture_output=True, text=True, env={**os.environ, **offline_env()}, timeout=180,
        check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_manifest_whose_count_or_root_differs_from_the_card_is_refused(
    sample: Sample, tmp_path: Path
) -> None:
    # A card signed by a trusted key that names the manifest by its digest but claims another
    # entry count: the digest check alone would pass; the checks after reading must not.
    statement = json.loads((sample.root / "card.json").read_text())
    statement["predicate"]["manifest"]["entries"] += 1
    signed = _signed(sample, statement, tmp_path)
    out = tmp_path / "croissant.json"
    result = _export(sample, "croissant", out, "--manifest", sample.manifest, card=signed)
    assert result.returncode == 1
    assert "entry count, bytes or Merkle root differ from the card's" in one_error_line(result)
    assert not out.exists()
