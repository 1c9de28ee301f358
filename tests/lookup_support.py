"""Works and datasets for the lookup and fingerprint index tests: real stories, edited copies,
generated images, and a manifest built with its sidecar as ``manifest build`` builds it."""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

from provenance import fingerprints, fpindex, manifest
from provenance.fpindex import layout
from tests.conftest import SAMPLES

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


def image_png(seed: int, size: int = 256) -> bytes:
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


def make_corpus(root: Path) -> Path:
    """Build, in ``root``, a manifest with its sidecar of stories I-X, the forum page quoting
    story XI, and an edited copy of story III; return the manifest's path."""
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
    (data / "web" / "scraped-anthology.html").write_text(scraped_page(), encoding="utf-8")
    return build(data, root / "manifest.jsonl")


def scraped_page() -> str:
    """A scraped page holding one fifth of story XII amid unrelated text (stories VI and VII)."""
    twelve = WORKS[1].read_text(encoding="utf-8")
    chapter = twelve[len(twelve) // 3 : len(twelve) // 3 + len(twelve) // 5]
    return (
        BOOKS[5].read_text(encoding="utf-8")[:15000]
        + "\n<div class='excerpt'>\n"
        + edit(chapter, 12, drop=0.05, change=0.05)
        + "\n</div>\n"
        + BOOKS[6].read_text(encoding="utf-8")[:15000]
    )


def sidecar_as_version_1(sidecar: Path, manifest_path: Path) -> bytes:
    """The bytes of ``sidecar`` (format 2, of ``manifest_path``) in format 1: the same content
    as the first implementation wrote it."""
    data = sidecar.read_bytes()
    header, arrays = layout.parse(sidecar, data, len(data))
    layout.check_prints(sidecar, arrays, header)  # unpacks fpEntry, counts textFpCount
    # Format 1 keeps 8-byte digest prefixes: from the manifest itself.
    scan = fpindex.scan_manifest(manifest_path)
    fp_hash, fp_entry = arrays["fpKeys"].by_hash(arrays["fpEntry"])
    arrays = dict(
        arrays,
        shaPrefix=scan.sha_prefix,
        textShaPrefix=scan.text_prefix,
        fpHash=fp_hash,
        fpEntry=fp_entry,
    )
    count = header["manifest"]["entries"]
    return b"".join(layout.encode(header["manifest"]["sha256"], count, arrays, version=1))
