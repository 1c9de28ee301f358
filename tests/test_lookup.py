"""Creators' lookups: every status on real text and generated images, the false-positive
control across distinct works by one author, the fingerprint sidecar, and the CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import numpy as np
import pytest

from provenance import fingerprints, fpindex, lookup, manifest
from provenance.errors import DigestMismatchError, FormatError, InputError
from provenance.fingerprints import MIN_TOKENS, content_prints, text_fingerprints
from provenance.normtext import norm_text_sha256
from tests.conftest import NOW, ROOT, SAMPLES, one_error_line

Cli = Callable[..., subprocess.CompletedProcess[str]]
AT = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)

BOOKS = sorted((SAMPLES / "data" / "books").glob("*.txt"))
WORKS = sorted((SAMPLES / "works").glob("*.txt"))
STORIES = BOOKS + WORKS  # the twelve Adventures of Sherlock Holmes, in order


def edit(text: str, seed: int, *, drop: float = 0.15, change: float = 0.15) -> str:
    """An edited copy: sentences dropped or changed, curly quotes, re-wrapped with CRLF."""
    rng = random.Random(seed)
    kept = []
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        roll = rng.random()
        if roll < drop:
            continue
        if roll < drop + change:
            words = sentence.split()
            if words:
                words[rng.randrange(len(words))] = rng.choice(["very", "quite", "truly", "the"])
            sentence = " ".join(words)
        kept.append(sentence)
    joined = re.sub(r'(^|(?<=\s))"', "\u201c", " ".join(kept)).replace('"', "\u201d")
    words, lines = joined.split(), []
    while words:
        width = rng.randint(6, 14)
        lines.append(" ".join(words[:width]))
        words = words[width:]
    return "\r\n".join(lines)


def build(root: Path, output: Path, *, workers: int = 1, shard: str | None = None) -> Path:
    """Build a manifest with fingerprints and its sidecar, as 'manifest build' does."""
    prints: dict[str, fingerprints.ContentPrints] = {}
    entries = manifest.build_from_directory(
        root,
        workers=workers,
        shard=manifest.parse_shard(shard) if shard else None,
        prints=prints,
    )
    manifest.write_manifest(entries, output)
    fpindex.write_sidecar(output, prints)
    return output


def look(manifest_path: Path, works: list[tuple[str, bytes]]) -> list[lookup.WorkResult]:
    with fpindex.FingerprintIndex.open(manifest_path) as index:
        return lookup.lookup_works(works, index)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stories I-X, the forum page quoting story XI, and an edited copy of story III."""
    root = tmp_path_factory.mktemp("corpus")
    data = root / "data"
    (data / "books").mkdir(parents=True)
    for path in BOOKS:
        (data / "books" / path.name).write_bytes(path.read_bytes())
    (data / "web").mkdir()
    for path in (SAMPLES / "data" / "web").iterdir():
        (data / "web" / path.name).write_bytes(path.read_bytes())
    (data / "mirror").mkdir()
    story = BOOKS[2].read_text(encoding="utf-8")
    (data / "mirror" / "case-of-identity.txt").write_text(edit(story, 3), encoding="utf-8")
    # A scraped page holding one fifth of story XII amid unrelated text (stories VI and VII).
    twelve = WORKS[1].read_text(encoding="utf-8")
    chapter = twelve[len(twelve) // 3 : len(twelve) // 3 + len(twelve) // 5]
    page = (
        BOOKS[5].read_text(encoding="utf-8")[:15000]
        + "\n<div class='excerpt'>\n"
        + edit(chapter, 12, drop=0.05, change=0.05)
        + "\n</div>\n"
        + BOOKS[6].read_text(encoding="utf-8")[:15000]
    )
    (data / "web" / "scraped-anthology.html").write_text(page, encoding="utf-8")
    return build(data, root / "manifest.jsonl")


# ----------------------------------------------------------------------------------------------
# Fingerprints


def test_tokens_ignore_quotes_case_and_wrapping() -> None:
    a = "“Holmes,” said I, ‘THIS is too much.’ " * 20
    b = "\"holmes,\" said\r\ni, 'this is too much.' " * 20
    assert np.array_equal(text_fingerprints(a.encode()), text_fingerprints(b.encode()))
    assert len(text_fingerprints(a.encode())) > 0


def test_cjk_characters_are_tokens() -> None:
    text = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。" * 3
    prints = text_fingerprints(text.encode())
    assert len(prints) > 0
    data = fingerprints.normalize_batch([text.encode()]).text(0)
    assert data is not None
    starts, ends = fingerprints._tokens(data)
    assert all(e - s == 3 for s, e in zip(starts.tolist(), ends.tolist(), strict=True))


def test_short_texts_have_no_fingerprints() -> None:
    words = " ".join(f"w{i}" for i in range(MIN_TOKENS - 1))
    assert len(text_fingerprints(words.encode())) == 0
    assert len(text_fingerprints((words + " last").encode())) == 1


def test_shared_passage_of_the_guaranteed_length_is_always_found() -> None:
    rng = random.Random(7)
    for _ in range(30):
        passage = " ".join(f"p{rng.randrange(10**6)}" for _ in range(MIN_TOKENS))
        left = " ".join(f"a{rng.randrange(10**6)}" for _ in range(rng.randrange(200)))
        right = " ".join(f"b{rng.randrange(10**6)}" for _ in range(rng.randrange(200)))
        host = text_fingerprints(f"{left} {passage} {right}".encode())
        alone = text_fingerprints(passage.encode())
        assert len(np.intersect1d(host, alone)) >= 1


def test_batch_does_not_change_fingerprints() -> None:
    texts = [p.read_bytes()[i * 3000 : i * 3000 + 9000] for i, p in enumerate(STORIES)]
    texts += [b"", b"\xff\xfe not utf-8", "東京 ".encode() * 40]
    together = fingerprints.text_fingerprints_batch(texts)
    for text, prints in zip(texts, together, strict=True):
        assert np.array_equal(prints, text_fingerprints(text))


def test_content_prints_kinds() -> None:
    png = _image(1)
    text, binary, image, invalid = content_prints(
        [STORIES[0].read_bytes(), b"abc\x00def", png, b"\xff\xfe\xfd"]
    )
    assert text.text_sha256 == norm_text_sha256(STORIES[0].read_bytes())
    assert len(text.text) > 100 and text.image is None
    assert binary.text_sha256 is None and len(binary.text) == 0
    assert image.image is not None and image.text_sha256 is None
    assert invalid.text_sha256 is None and invalid.image is None


# ----------------------------------------------------------------------------------------------
# Statuses on real text


def test_every_text_status(corpus: Path) -> None:
    two = BOOKS[1].read_text(encoding="utf-8")
    works = [
        ("exact", BOOKS[0].read_bytes()),
        ("normalized", ("\ufeff" + two.upper().replace("\n", "\r\n  ")).encode("utf-8")),
        ("edited", edit(BOOKS[3].read_text(encoding="utf-8"), 4).encode("utf-8")),
        ("held-out XI", WORKS[0].read_bytes()),
        ("held-out XII", WORKS[1].read_bytes()),
        ("edited copy of III", BOOKS[2].read_bytes()),
        ("not text", _image(5)),
    ]
    results = {r.work: r for r in look(corpus, works)}
    assert results["exact"].status == "exact"
    assert results["exact"].matches[0].id == "books/01-a-scandal-in-bohemia.txt"
    assert results["exact"].matches[0].score == 1.0
    assert results["normalized"].status == "normalized"
    assert [m.id for m in results["normalized"].matches] == ["books/02-the-red-headed-league.txt"]
    edited = results["edited"]
    assert edited.status == "near-duplicate"
    assert [m.id for m in edited.matches] == ["books/04-the-boscombe-valley-mystery.txt"]
    assert 0.4 < edited.matches[0].score < 1
    # Story XI is quoted (edited) in the forum page; story XII in part in a scraped page.
    assert results["held-out XI"].status == "contained"
    assert [m.id for m in results["held-out XI"].matches] == [
        "web/fans-forum-favourite-passages-3.html"
    ]
    assert results["held-out XII"].status == "contained"
    assert [m.id for m in results["held-out XII"].matches] == ["web/scraped-anthology.html"]
    assert 0.1 < results["held-out XII"].matches[0].score < 0.3
    # The original of an edited copy: exact with itself, near-duplicate with the copy.
    original = results["edited copy of III"]
    assert original.status == "exact"
    assert [(m.id, m.status) for m in original.matches] == [
        ("books/03-a-case-of-identity.txt", "exact"),
        ("mirror/case-of-identity.txt", "near-duplicate"),
    ]
    assert results["not text"].status == "absent" and results["not text"].matches == ()


def test_absent_work(corpus: Path) -> None:
    (result,) = look(
        corpus, [("news", (SAMPLES / "data" / "news").iterdir().__next__().read_bytes())]
    )
    assert result.status == "absent"
    assert result.matches == ()


def test_distinct_works_by_one_author_do_not_match(tmp_path: Path) -> None:
    """The false-positive control: 12 stories, whole and in 1,500-word chunks."""
    data = tmp_path / "data"
    data.mkdir()
    for path in STORIES:
        (data / path.name).write_bytes(path.read_bytes())
    index = build(data, tmp_path / "m.jsonl")
    works: list[tuple[str, bytes]] = []
    for path in STORIES:
        words = path.read_text(encoding="utf-8").split()
        works += [
            (f"{path.name}#{k}", " ".join(words[k : k + 1500]).encode())
            for k in range(0, len(words) - 1500, 1500)
        ]
        works.append((f"{path.name}#edited", edit(" ".join(words), len(works)).encode()))
    false_positives = 0
    for result in look(index, works):
        own = result.work.split("#")[0]
        assert result.status in ("near-duplicate", "contained"), result
        false_positives += sum(1 for m in result.matches if m.id != own)
    assert len(works) == 76  # 64 chunks of 1,500 words and 12 edited stories
    assert false_positives == 0


def test_distinct_senate_bill_lists_do_not_match(tmp_path: Path) -> None:
    titles = (SAMPLES / "data" / "legislation" / "senate-bills.txt").read_text().splitlines()
    blocks = ["\n".join(titles[i : i + 150]) for i in range(0, len(titles) - 150, 150)]
    data = tmp_path / "data"
    data.mkdir()
    for number, block in enumerate(blocks[::2]):
        (data / f"block-{number:03}.txt").write_text(block)
    index = build(data, tmp_path / "m.jsonl")
    results = look(index, [(f"odd-{i}", b.encode()) for i, b in enumerate(blocks[1::2])])
    assert len(results) >= 5
    assert all(r.status == "absent" for r in results), [r for r in results if r.matches]


# ----------------------------------------------------------------------------------------------
# Images


def _image(seed: int, size: int = 256) -> bytes:
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        box = (
            sorted(rng.randrange(size) for _ in range(2)),
            sorted(rng.randrange(size) for _ in range(2)),
        )
        shape = [box[0][0], box[1][0], box[0][1], box[1][1]]
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.ellipse(shape, fill=colour)
        else:
            draw.rectangle(shape, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _resized_jpeg(png: bytes, scale: float, quality: int = 60) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        smaller = image.resize((int(image.width * scale), int(image.height * scale)))
        buffer = io.BytesIO()
        smaller.save(buffer, "JPEG", quality=quality)
        return buffer.getvalue()


def test_image_statuses(tmp_path: Path) -> None:
    pytest.importorskip("imagehash")
    data = tmp_path / "data"
    data.mkdir()
    for seed in range(6):
        (data / f"img-{seed}.png").write_bytes(_image(seed))
    index = build(data, tmp_path / "m.jsonl")
    works = [
        ("exact", _image(0)),
        ("half, jpeg q60", _resized_jpeg(_image(1), 0.5)),
        ("larger, jpeg q60", _resized_jpeg(_image(2), 1.7)),
        ("other", _image(99)),
    ]
    results = {r.work: r for r in look(index, works)}
    assert results["exact"].status == "exact"
    assert results["half, jpeg q60"].status == "near-duplicate"
    assert [m.id for m in results["half, jpeg q60"].matches] == ["img-1.png"]
    assert results["half, jpeg q60"].matches[0].score >= 1 - 10 / 64
    assert results["larger, jpeg q60"].status == "near-duplicate"
    assert [m.id for m in results["larger, jpeg q60"].matches] == ["img-2.png"]
    assert results["other"].status == "absent"


def test_distinct_generated_images_are_far_apart() -> None:
    pytest.importorskip("imagehash")
    hashes = [fingerprints.image_fingerprint(_image(seed)) for seed in range(40)]
    distances = [
        bin(a ^ b).count("1")
        for i, a in enumerate(hashes)
        for b in hashes[i + 1 :]
        if a is not None and b is not None
    ]
    assert len(distances) == 40 * 39 // 2
    assert min(distances) > lookup.Thresholds().image_distance


def test_corrupt_image_has_no_fingerprint() -> None:
    pytest.importorskip("imagehash")
    assert fingerprints.image_fingerprint(_image(3)[:100]) is None


# ----------------------------------------------------------------------------------------------
# Manifest entries and the sidecar


def test_entries_carry_text_sha256(corpus: Path) -> None:
    entries = manifest.read_manifest(corpus).entries
    by_id = {e.id: e for e in entries}
    one = by_id["books/01-a-scandal-in-bohemia.txt"]
    assert one.textSha256 == norm_text_sha256(BOOKS[0].read_bytes())
    assert all(e.textSha256 is not None for e in entries)


def _text_tree(root: Path, files: int = 240) -> Path:
    """Enough text (about 10 MiB) that --workers 2 really runs two processes."""
    root.mkdir()
    texts = [p.read_text(encoding="utf-8") for p in STORIES]
    for number in range(files):
        story = texts[number % len(texts)]
        (root / f"doc-{number:04}.txt").write_text(edit(story, number, drop=0.02, change=0.02))
    (root / "img.png").write_bytes(_image(1))
    return root


def test_sidecar_is_identical_across_workers_and_shards(tmp_path: Path) -> None:
    data = _text_tree(tmp_path / "data")
    one = build(data, tmp_path / "one.jsonl", workers=1)
    two = build(data, tmp_path / "two.jsonl", workers=2)
    assert one.read_bytes() == two.read_bytes()
    assert fpindex.sidecar_path(one).read_bytes() == fpindex.sidecar_path(two).read_bytes()
    shards = [build(data, tmp_path / f"s{k}.jsonl", shard=f"{k}/3") for k in range(3)]
    merged = tmp_path / "merged.jsonl"
    manifest.merge_manifests(shards, merged)
    fpindex.merge_sidecars(shards, merged)
    assert merged.read_bytes() == one.read_bytes()
    assert fpindex.sidecar_path(merged).read_bytes() == fpindex.sidecar_path(one).read_bytes()


def test_merge_needs_every_sidecar(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(BOOKS[0].read_bytes())
    a = build(data, tmp_path / "a.jsonl", shard="0/2")
    b = build(data, tmp_path / "b.jsonl", shard="1/2")
    fpindex.sidecar_path(b).unlink()
    with pytest.raises(InputError, match="has no fingerprint index"):
        fpindex.merge_sidecars([a, b], tmp_path / "m.jsonl")


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _upper_manifest_digest(path: Path) -> None:
    """Write the header's manifest digest in upper case (same length: the layout holds)."""
    data = path.read_bytes()
    digest = re.search(rb'"manifest":\{"entries":[0-9]+,"sha256":"([0-9a-f]{64})"', data)
    assert digest is not None
    path.write_bytes(data.replace(digest[1], digest[1].upper(), 1))


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        (lambda p: _flip(p, 0), FormatError, "bad magic"),
        (lambda p: _flip(p, 8), FormatError, "header length"),
        (lambda p: _flip(p, 20), FormatError, "corrupt fingerprint index"),
        (_upper_manifest_digest, FormatError, "lacks a valid 'manifest'"),
        (lambda p: p.write_bytes(p.read_bytes()[:-8]), FormatError, "past the end"),
        (lambda p: p.write_bytes(p.read_bytes() + b"\0" * 8), FormatError, "unexpected bytes"),
        (lambda p: p.write_bytes(b"PVFP"), FormatError, "shorter than"),
    ],
)
def test_corrupt_sidecar_is_refused(
    corpus: Path,
    tmp_path: Path,
    damage: Callable[[Path], None],
    error: type[Exception],
    message: str,
) -> None:
    copy = tmp_path / "manifest.jsonl"
    copy.write_bytes(corpus.read_bytes())
    sidecar = fpindex.sidecar_path(copy)
    sidecar.write_bytes(fpindex.sidecar_path(corpus).read_bytes())
    damage(sidecar)
    with pytest.raises(error, match=message):
        fpindex.FingerprintIndex.open(copy)


def test_unsorted_fingerprints_are_refused_on_use(corpus: Path, tmp_path: Path) -> None:
    copy = tmp_path / "manifest.jsonl"
    copy.write_bytes(corpus.read_bytes())
    raw = bytearray(fpindex.sidecar_path(corpus).read_bytes())
    with fpindex.FingerprintIndex.open(corpus) as index:
        hashes = index._arrays["fpHash"]
        start = (
            hashes.__array_interface__["data"][0]
            - np.frombuffer(index._keep[0], dtype=np.uint8).__array_interface__["data"][0]
        )
        del hashes
    raw[start : start + 8] = b"\xff" * 8  # the smallest hash becomes the largest
    fpindex.sidecar_path(copy).write_bytes(bytes(raw))
    with (
        fpindex.FingerprintIndex.open(copy) as index,
        pytest.raises(FormatError, match="fpHash is not sorted"),
    ):
        lookup.lookup_works([("x", BOOKS[0].read_bytes())], index)


def test_sidecar_of_another_manifest_is_refused(corpus: Path, tmp_path: Path) -> None:
    copy = tmp_path / "manifest.jsonl"
    entries = manifest.read_manifest(corpus).entries[1:]
    manifest.write_manifest(entries, copy)
    fpindex.sidecar_path(copy).write_bytes(fpindex.sidecar_path(corpus).read_bytes())
    with pytest.raises(InputError, match="belongs to another manifest"):
        fpindex.FingerprintIndex.open(copy)


def test_without_sidecar_exact_and_normalized_still_work(corpus: Path, tmp_path: Path) -> None:
    copy = tmp_path / "manifest.jsonl"
    copy.write_bytes(corpus.read_bytes())
    works = [
        ("exact", BOOKS[0].read_bytes()),
        ("normalized", BOOKS[1].read_text(encoding="utf-8").upper().encode()),
        ("edited", edit(BOOKS[3].read_text(encoding="utf-8"), 4).encode()),
    ]
    results = look(copy, works)
    assert [r.status for r in results] == ["exact", "normalized", "absent"]


def test_records_get_fingerprints(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    story = BOOKS[4].read_text(encoding="utf-8")
    with records.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "r1", "text": story, "source": "s"}) + "\n")
        handle.write(json.dumps({"id": "r2", "text": "short text", "source": "s"}) + "\n")
        handle.write(json.dumps({"id": "r3", "sha256": "a" * 64, "source": "s"}) + "\n")
    prints: dict[str, fingerprints.ContentPrints] = {}
    entries = manifest.build_from_records(records, prints=prints)
    by_id = {e.id: e for e in entries}
    assert by_id["r1"].textSha256 == norm_text_sha256(story.encode())
    assert by_id["r2"].textSha256 == norm_text_sha256(b"short text")
    assert by_id["r3"].textSha256 is None
    assert set(prints) == {"r1"}
    out = tmp_path / "m.jsonl"
    manifest.write_manifest(entries, out)
    fpindex.write_sidecar(out, prints)
    (result,) = look(out, [("edited", edit(story, 1).encode())])
    assert result.status == "near-duplicate"
    assert [m.id for m in result.matches] == ["r1"]


# ----------------------------------------------------------------------------------------------
# CLI end to end


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The samples built, carded and signed through the CLI, with a trust store."""
    from tests.conftest import run_cli

    work = tmp_path_factory.mktemp("signed")
    steps = [
        ("manifest", "build", SAMPLES / "data", "-o", work / "manifest.jsonl", "--workers", "1"),
        ("key", "generate", work / "dev.key"),
        (
            "trust",
            "add",
            work / "trust.json",
            work / "dev.key.pub",
            "--name",
            "Dev",
            "--role",
            "dataset-publisher",
        ),
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
        # An independent auditor co-signs (after verify --manifest), so absence proofs count.
        ("key", "generate", work / "auditor.key"),
        ("trust", "add", work / "trust.json", work / "auditor.key.pub", "--name", "Auditor",
         "--role", "auditor"),
        ("verify", work / "signed.json", "--trust", work / "trust.json", "--manifest",
         work / "manifest.jsonl", "--now", NOW),
        ("card", "sign", work / "signed.json", "--key", work / "auditor.key", "-o",
         work / "signed.json"),
    ]  # fmt: skip
    for step in steps:
        result = run_cli(*step)
        assert result.returncode == 0, result.stderr
    return work


def test_cli_manifest_build_writes_sidecar_and_card_records_it(signed: Path) -> None:
    sidecar = signed / "manifest.jsonl.fp"
    assert sidecar.exists()
    card_doc = json.loads((signed / "card.json").read_text())
    recorded = card_doc["predicate"]["manifest"]["fingerprints"]
    assert recorded == {"name": "manifest.jsonl.fp", "sha256": fpindex.file_sha256(sidecar)}


def test_cli_lookup_portfolio_json(cli: Cli, signed: Path, tmp_path: Path) -> None:
    portfolio = tmp_path / "portfolio"
    portfolio.mkdir()
    for path in (BOOKS[0], *WORKS):
        (portfolio / path.name).write_bytes(path.read_bytes())
    single = tmp_path / "single.txt"
    single.write_bytes(BOOKS[1].read_bytes().replace(b"\n", b"\r\n"))
    result = cli("lookup", single, portfolio, "--manifest", signed / "manifest.jsonl", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    summary = [(Path(r["work"]).name, r["status"]) for r in document["results"]]
    assert summary == [
        ("single.txt", "normalized"),
        ("01-a-scandal-in-bohemia.txt", "exact"),
        ("11-the-adventure-of-the-beryl-coronet.txt", "contained"),
        ("12-the-adventure-of-the-copper-beeches.txt", "absent"),
    ]
    contained = document["results"][2]
    assert contained["matches"] == [
        {
            "id": "web/fans-forum-favourite-passages-3.html",
            "score": contained["matches"][0]["score"],
            "status": "contained",
        }
    ]
    assert set(document["results"][0]) == {"work", "sha256", "status", "matches"}


def test_cli_lookup_against_signed_card_with_proofs(cli: Cli, signed: Path, tmp_path: Path) -> None:
    out = tmp_path / "proofs"
    result = cli(
        "lookup",
        BOOKS[0],
        WORKS[1],
        "--manifest",
        signed / "manifest.jsonl",
        "--card",
        signed / "signed.json",
        "--trust",
        signed / "trust.json",
        "--proof-out",
        out,
        "--now",
        NOW,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [p["claim"] for p in document["proofs"]] == ["present", "absent"]
    for proof in document["proofs"]:
        check = cli(
            "proof",
            "verify",
            proof["path"],
            "--card",
            signed / "signed.json",
            "--trust",
            signed / "trust.json",
            "--now",
            NOW,
            "--json",
        )
        assert check.returncode == 0, check.stderr
        assert json.loads(check.stdout)["ok"] is True


def test_cli_lookup_refuses_a_sidecar_the_card_does_not_commit_to(
    cli: Cli, signed: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "manifest.jsonl"
    copy.write_bytes((signed / "manifest.jsonl").read_bytes())
    # A sidecar for the same manifest, but not the one the card records (one entry dropped).
    prints = fpindex.read_entry_prints(signed / "manifest.jsonl", signed / "manifest.jsonl.fp")
    prints.pop(sorted(prints)[0])
    fpindex.write_sidecar(copy, prints)
    result = cli(
        "lookup",
        BOOKS[0],
        "--manifest",
        copy,
        "--card",
        signed / "signed.json",
        "--trust",
        signed / "trust.json",
        "--now",
        NOW,
    )
    assert result.returncode == 1
    assert "is not the fingerprint index the card commits to" in one_error_line(result)


def test_cli_lookup_bad_inputs(cli: Cli, signed: Path, tmp_path: Path) -> None:
    m = signed / "manifest.jsonl"
    missing = cli("lookup", tmp_path / "nope.txt", "--manifest", m)
    assert missing.returncode == 2
    assert "nope.txt: no such work file" in one_error_line(missing)

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    special = cli("lookup", fifo, "--manifest", m)
    assert special.returncode == 2
    assert "fifo" in one_error_line(special)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("lookup", empty, "--manifest", m).returncode == 2

    no_manifest = cli("lookup", BOOKS[0], "--manifest", tmp_path / "none.jsonl")
    assert no_manifest.returncode == 2
    assert "no such" in one_error_line(no_manifest)

    corrupt = tmp_path / "manifest.jsonl"
    corrupt.write_bytes(m.read_bytes())
    (tmp_path / "manifest.jsonl.fp").write_bytes(b"PVFPIDX1" + b"\xff" * 64)
    bad = cli("lookup", BOOKS[0], "--manifest", corrupt)
    assert bad.returncode == 2
    assert "corrupt fingerprint index" in one_error_line(bad)

    proofs_alone = cli("lookup", BOOKS[0], "--manifest", m, "--proof-out", tmp_path / "p")
    assert proofs_alone.returncode == 2
    assert "--proof-out needs --card" in one_error_line(proofs_alone)


def test_cli_manifest_build_without_fingerprints(cli: Cli, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(BOOKS[0].read_bytes())
    out = tmp_path / "m.jsonl"
    assert cli("manifest", "build", data, "-o", out).returncode == 0
    assert fpindex.sidecar_path(out).exists()
    assert b"textSha256" in out.read_bytes()
    result = cli("manifest", "build", data, "-o", out, "--no-fingerprints")
    assert result.returncode == 0, result.stderr
    assert not fpindex.sidecar_path(out).exists()
    assert b"textSha256" not in out.read_bytes()


def _cli(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The CLI as users run it, with a short timeout (a hang fails the test, not the suite)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PROVENANCE_NOW", None)
    return subprocess.run(
        [sys.executable, "-m", "provenance", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_cli_lookup_never_writes_an_absence_proof_for_a_work_found(
    signed: Path, tmp_path: Path
) -> None:
    portfolio = tmp_path / "portfolio"
    portfolio.mkdir()
    two = BOOKS[1].read_text(encoding="utf-8")
    works = {
        "a-exact.txt": BOOKS[0].read_bytes(),
        "b-normalized.txt": ("\ufeff" + two.upper().replace("\n", "\r\n  ")).encode(),
        "c-edited.txt": edit(BOOKS[3].read_text(encoding="utf-8"), 4).encode(),
        "d-quoted.txt": WORKS[0].read_bytes(),
        "e-absent.txt": WORKS[1].read_bytes(),
    }
    for name, data in works.items():
        (portfolio / name).write_bytes(data)
    card = ("--card", signed / "signed.json", "--trust", signed / "trust.json", "--now", NOW)
    out = tmp_path / "proofs"
    result = _cli(
        "lookup", portfolio, "--manifest", signed / "manifest.jsonl", *card, "--proof-out", out,
        "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    statuses = [r["status"] for r in document["results"]]
    assert statuses == ["exact", "normalized", "near-duplicate", "contained", "absent"]
    written = document["proofs"]
    assert [(p["claim"], p["status"], p["digest"]) for p in written] == [
        ("present", "exact", "sha256"),
        ("present", "normalized", "textSha256"),
        ("present", "near-duplicate", "sha256"),
        ("present", "contained", "sha256"),
        ("absent", "absent", "sha256"),
    ]
    expected_entries = [
        "books/01-a-scandal-in-bohemia.txt",
        "books/02-the-red-headed-league.txt",
        "books/04-the-boscombe-valley-mystery.txt",
        "web/fans-forum-favourite-passages-3.html",
    ]
    for result_doc, entry_id in zip(document["results"], expected_entries, strict=False):
        assert result_doc["matches"][0]["id"] == entry_id
    reports = []
    for item, name in zip(written, works, strict=True):
        checked = _cli("proof", "verify", item["path"], *card, "--work", portfolio / name, "--json")
        assert checked.returncode == 0, (name, checked.stderr)
        reports.append(json.loads(checked.stdout))
    assert [(r["claim"], r["status"], r["digest"]) for r in reports] == [
        (p["claim"], p["status"], p["digest"]) for p in written
    ]
    assert [r["leaves"][0]["id"] for r in reports[:4]] == expected_entries
    normalized = reports[1]
    assert normalized["value"] == normalized["workDigests"]["textSha256"]
    assert normalized["value"] == normalized["leaves"][0]["textSha256"]
    assert normalized["value"] == norm_text_sha256(works["b-normalized.txt"])
    assert reports[0]["value"] == reports[0]["leaves"][0]["sha256"]
    # Human output names the digest the claim is about.
    human = _cli("proof", "verify", written[1]["path"], *card)
    assert "PRESENT as normalized text (textSha256" in human.stdout
    assert "claim about the work's textSha256" in human.stdout
    human = _cli("proof", "verify", written[3]["path"], *card)
    assert "the lookup found it a contained match" in human.stdout
    # --work recomputes the digest the claim is about: another copy of the same text checks
    # against the normalized proof; a different text does not.
    other_copy = tmp_path / "two.txt"
    other_copy.write_bytes(BOOKS[1].read_bytes())
    assert _cli("proof", "verify", written[1]["path"], *card, "--work", other_copy).returncode == 0
    wrong = _cli("proof", "verify", written[1]["path"], *card, "--work", BOOKS[0])
    assert wrong.returncode == 1
    assert "textSha256" in one_error_line(wrong)
    wrong = _cli("proof", "verify", written[0]["path"], *card, "--work", BOOKS[2])
    assert wrong.returncode == 1
    assert "not " + str(BOOKS[2]) in one_error_line(wrong)


def _doctored_sidecar(manifest_path: Path, hide: str) -> None:
    """Write a sidecar beside ``manifest_path`` that a lookup accepts but that hides the entry
    whose sha256 is ``hide`` (its digest prefix is changed to its neighbour's)."""
    entries = manifest.read_manifest(manifest_path).entries
    position = next(i for i, e in enumerate(entries) if e.sha256 == hide)
    neighbour = entries[position - 1 if position else position + 1]
    doctored = list(entries)
    doctored[position] = msgspec.structs.replace(entries[position], sha256=neighbour.sha256)
    digest = fpindex.file_sha256(manifest_path)
    fpindex.write_sidecar_for(doctored, digest, {}, fpindex.sidecar_path(manifest_path))


def test_cli_lookup_with_card_ignores_a_sidecar_the_card_does_not_commit_to(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for path in BOOKS[:4]:
        (data / path.name).write_bytes(path.read_bytes())
    m = tmp_path / "manifest.jsonl"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: t\nversion: '1'\ndescription: d\npublisher: {name: P}\nsources:\n"
        "  - {id: all, name: All, kind: dataset, license: CC0-1.0, paths: ['**']}\n"
    )
    steps = [
        ("manifest", "build", data, "-o", m, "--no-fingerprints", "--workers", "1"),
        ("key", "generate", tmp_path / "k"),
        ("trust", "add", tmp_path / "t.json", tmp_path / "k.pub", "--name", "P", "--role",
         "dataset-publisher"),
        ("card", "build", spec, "--manifest", m, "-o", tmp_path / "c.json", "--now", NOW),
        ("card", "sign", tmp_path / "c.json", "--key", tmp_path / "k", "-o", tmp_path / "s.json"),
    ]  # fmt: skip
    for step in steps:
        assert _cli(*step).returncode == 0, step
    assert not fpindex.sidecar_path(m).exists()
    _doctored_sidecar(m, hashlib.sha256(BOOKS[2].read_bytes()).hexdigest())
    # Without a card the sidecar is all there is: it answers (wrongly, being doctored).
    alone = _cli("lookup", BOOKS[2], "--manifest", m, "--json")
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["results"][0]["status"] == "absent"
    # With the card, which commits to no sidecar, the answer comes from the signed manifest.
    card = ("--card", tmp_path / "s.json", "--trust", tmp_path / "t.json", "--now", NOW)
    result = _cli("lookup", BOOKS[2], "--manifest", m, *card, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["results"][0]["status"] == "exact"
    assert "commits to no fingerprint index" in result.stderr
    assert "is not used" in result.stderr
    # The same with the sidecar named explicitly.
    explicit = _cli(
        "lookup", BOOKS[2], "--manifest", m, "--fingerprints", fpindex.sidecar_path(m), *card,
        "--json",
    )  # fmt: skip
    assert json.loads(explicit.stdout)["results"][0]["status"] == "exact"


def test_index_lines_read_after_the_card_check_are_checked_against_it(
    signed: Path, tmp_path: Path
) -> None:
    from provenance import proofs

    m = tmp_path / "manifest.jsonl"
    m.write_bytes((signed / "manifest.jsonl").read_bytes())
    ref = proofs.load_card(signed / "signed.json", signed / "trust.json", at=AT)
    warnings: list[str] = []
    with lookup.open_for_lookup(m, card=ref, warn=warnings.append) as (index, builder):
        assert builder is not None
        assert "does not exist" in warnings[0]
        first = index.entry(0)
        # The file is changed in place after it was checked: same length, another id.
        lines = m.read_bytes().split(b"\n")
        lines[0] = lines[0].replace(first.id.encode(), first.id[::-1].encode())
        m.write_bytes(b"\n".join(lines))
        with pytest.raises(DigestMismatchError, match="not the one checked against the card"):
            index.entry(0)


def test_cli_lookup_fifo_inputs_exit_2(signed: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "manifest.fifo"
    os.mkfifo(fifo)
    result = _cli("lookup", BOOKS[0], "--manifest", fifo, timeout=20)
    assert result.returncode == 2
    assert "not a regular file" in one_error_line(result)
    card = ("--card", signed / "signed.json", "--trust", signed / "trust.json", "--now", NOW)
    result = _cli("lookup", BOOKS[0], "--manifest", fifo, *card, timeout=20)
    assert result.returncode == 2
    assert "not a regular file" in one_error_line(result)
    # A FIFO where the sidecar should be: alone, and with a card that commits to a sidecar.
    beside = tmp_path / "m"
    beside.mkdir()
    m = beside / "manifest.jsonl"
    m.write_bytes((signed / "manifest.jsonl").read_bytes())
    os.mkfifo(fpindex.sidecar_path(m))
    for extra in ((), card):
        result = _cli("lookup", BOOKS[0], "--manifest", m, *extra, timeout=20)
        assert result.returncode == 2, (extra, result.stderr)
        line = one_error_line(result)
        assert "manifest.jsonl.fp: not a regular file" in line


def _bomb_png() -> bytes:
    """A small PNG with more pixels than Pillow's decompression-bomb warning limit."""
    from PIL import Image

    pixels = 10_000 * 10_000
    assert pixels > Image.MAX_IMAGE_PIXELS  # the warning's threshold (the error's is twice)
    buffer = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buffer, "PNG")
    return buffer.getvalue()


def test_image_library_warnings_never_reach_stderr(tmp_path: Path) -> None:
    pytest.importorskip("imagehash")
    data = tmp_path / "data"
    data.mkdir()
    bomb = data / "huge.png"
    bomb.write_bytes(_bomb_png())
    (data / "ok.png").write_bytes(_image(7))
    m = tmp_path / "manifest.jsonl"
    for workers in ("1", "2"):
        result = _cli("manifest", "build", data, "-o", m, "--workers", workers)
        assert result.returncode == 0, result.stderr
        assert "Warning" not in result.stderr and "warn" not in result.stderr.lower()
    result = _cli("lookup", bomb, data / "ok.png", "--manifest", m, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert [r["status"] for r in json.loads(result.stdout)["results"]] == ["exact", "exact"]
