"""The fingerprint sidecar index: where it lives, identical whatever the workers and shards, and
refused when damaged, unsorted or of another manifest."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from provenance import fpindex, lookup, manifest
from provenance.errors import FormatError, InputError
from tests.lookup_support import BOOKS, STORIES, build, edit, image_png, make_corpus


def test_sidecar_path_without_fpindex_is_fpindex_s(tmp_path: Path) -> None:
    from provenance import fpindex, manifest_files

    for name in ("m.jsonl", "manifest", ".hidden.jsonl"):
        assert manifest_files.sidecar_path(tmp_path / name) == fpindex.sidecar_path(tmp_path / name)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stories I-X, the forum page quoting story XI, and an edited copy of story III."""
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def _text_tree(root: Path, files: int = 240) -> Path:
    """Enough text (about 10 MiB) that --workers 2 really runs two processes."""
    root.mkdir()
    texts = [p.read_text(encoding="utf-8") for p in STORIES]
    for number in range(files):
        story = texts[number % len(texts)]
        (root / f"doc-{number:04}.txt").write_text(edit(story, number, drop=0.02, change=0.02))
    (root / "img.png").write_bytes(image_png(1))
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
        keys = index._arrays["fpKeys"]
        start = (
            keys.raw.__array_interface__["data"][0]
            - np.frombuffer(index._keep[0], dtype=np.uint8).__array_interface__["data"][0]
        )
        width, bits = keys.width, keys.bits
        assert int(keys.buckets[1]) >= 2  # the first bucket holds more than one key
        del keys
    # The smallest key becomes the largest of its bucket (every bit its remainder has set).
    raw[start : start + width] = ((1 << (64 - bits)) - 1).to_bytes(8, "little")[:width]
    fpindex.sidecar_path(copy).write_bytes(bytes(raw))
    with (
        fpindex.FingerprintIndex.open(copy) as index,
        pytest.raises(FormatError, match="fpKeys is not sorted"),
    ):
        lookup.lookup_works([("x", BOOKS[0].read_bytes())], index)


def test_sidecar_of_another_manifest_is_refused(corpus: Path, tmp_path: Path) -> None:
    copy = tmp_path / "manifest.jsonl"
    entries = manifest.read_manifest(corpus).entries[1:]
    manifest.write_manifest(entries, copy)
    fpindex.sidecar_path(copy).write_bytes(fpindex.sidecar_path(corpus).read_bytes())
    with pytest.raises(InputError, match="belongs to another manifest"):
        fpindex.FingerprintIndex.open(copy)
