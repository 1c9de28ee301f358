"""Fingerprint sidecars of sharded and partitioned builds (issue 12, item 3; DESIGN §8).

The same corpus (the samples, plus an edited copy, a scraped page quoting a held-out story, and
images) built into one file and into 1, 3 and 16 partitions, on the local executor and on Ray:
the sidecar parts are byte-identical between executors, a one-part build's sidecar is the
single file's, and lookups (exact, normalized, near-duplicate, contained, images, absent) find
the same on every form, against a signed card. Tampered, swapped or missing sidecar parts, and
cards that commit to other fingerprints, are refused; merges carry sidecars across the forms;
format 1 sidecars are still read.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from provenance import fpindex, lookup, manifest, partitions, sharded
from provenance.errors import DigestMismatchError, FormatError, InputError
from provenance.fingerprints import content_prints
from provenance.fpindex import layout
from provenance.fpsidecar import SidecarMismatchError, open_part_sidecars
from provenance.partlookup import PartitionedLookup
from provenance.proofs import CardRef, load_card
from tests.conftest import NOW, SAMPLES, one_error_line, run_cli
from tests.lookup_support import BOOKS, WORKS, edit, scraped_page, sidecar_as_version_1

AT = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)
COUNTS = (1, 3, 16)
Cli = Callable[..., subprocess.CompletedProcess[str]]


def _jpeg(png: bytes, scale: float) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        smaller = image.convert("RGB").resize((int(image.width * scale), int(image.height * scale)))
        buffer = io.BytesIO()
        smaller.save(buffer, "JPEG", quality=60)
        return buffer.getvalue()


WORK_NAMES = [
    "exact",
    "normalized",
    "edited",
    "held-out XI",
    "held-out XII",
    "original of III",
    "image",
    "absent",
]


def _works() -> list[tuple[str, bytes]]:
    two = BOOKS[1].read_text(encoding="utf-8")
    return list(
        zip(
            WORK_NAMES,
            [
                BOOKS[0].read_bytes(),
                ("\ufeff" + two.upper().replace("\n", "\r\n  ")).encode("utf-8"),
                edit(BOOKS[3].read_text(encoding="utf-8"), 4).encode("utf-8"),
                WORKS[0].read_bytes(),
                WORKS[1].read_bytes(),
                BOOKS[2].read_bytes(),
                _jpeg((SAMPLES / "data" / "images" / "camera.png").read_bytes(), 0.5),
                b"not in the dataset at all\n",
            ],
            strict=True,
        )
    )


@dataclasses.dataclass(frozen=True)
class World:
    root: Path
    data: Path
    single: Path

    def parted(self, count: int, executor: str = "local") -> Path:
        return self.root / f"{executor}-p{count}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("fpparts")
    data = root / "data"
    shutil.copytree(SAMPLES / "data", data)
    story = BOOKS[2].read_text(encoding="utf-8")
    (data / "web" / "mirror-case-of-identity.txt").write_text(edit(story, 3), encoding="utf-8")
    (data / "web" / "scraped-anthology.html").write_text(scraped_page(), encoding="utf-8")
    single = root / "single.jsonl"
    # One input into one file on the local executor: the one-machine builder.
    sharded.build_dataset([data], single, workers=2)
    for count in COUNTS:
        sharded.build_dataset(
            [data], root / f"local-p{count}", partitioned=True, partition_count=count, workers=2
        )
    steps: list[tuple[str | Path, ...]] = [
        ("key", "generate", root / "dev.key"),
        ("trust", "add", root / "trust.json", root / "dev.key.pub", "--name", "Dev",
         "--role", "dataset-publisher"),
    ]  # fmt: skip
    for name in ["single.jsonl", *(f"local-p{c}" for c in COUNTS)]:
        steps += [
            ("card", "build", SAMPLES / "card-spec.yaml", "--manifest", root / name, "-o",
             root / f"{name}.card.json", "--now", NOW),
            ("card", "sign", root / f"{name}.card.json", "--key", root / "dev.key", "-o",
             root / f"{name}.signed.json"),
        ]  # fmt: skip
    for step in steps:
        result = run_cli(*step)
        assert result.returncode == 0, result.stderr
    return World(root, data, single)


def _card(world: World, name: str) -> CardRef:
    return load_card(world.root / f"{name}.signed.json", world.root / "trust.json", at=AT)


def _tree(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


Finding = tuple[str, Any, tuple[Any, ...]]


def _look(path: Path, card: CardRef | None) -> tuple[list[Finding], list[str], list[str]]:
    """Findings, proofs' claims (with a card) and warnings of a lookup of every work."""
    warnings: list[str] = []
    with lookup.open_for_lookup(path, card=card, warn=warnings.append) as (index, builder):
        results = lookup.lookup_works(_works(), index)
        claims = []
        if builder is not None:
            proofs = builder.prove_requests(lookup.proof_requests(results))
            claims = [f"{p.claim}:{p.status}" for p in proofs]
    findings = [
        (r.work, r.status, tuple((m.id, m.status, m.score) for m in r.matches)) for r in results
    ]
    return findings, claims, warnings


# ----------------------------------------------------------------------------------------------
# Building: the same bytes whatever the executor and the partition count


def test_single_file_findings_cover_every_status(world: World) -> None:
    findings, claims, warnings = _look(world.single, _card(world, "single.jsonl"))
    statuses = {work: status for work, status, _ in findings}
    assert statuses == {
        "exact": "exact",
        "normalized": "normalized",
        "edited": "near-duplicate",
        "held-out XI": "contained",
        "held-out XII": "contained",
        "original of III": "exact",
        "image": "near-duplicate",
        "absent": "absent",
    }
    original = dict((w, m) for w, _, m in findings)["original of III"]
    assert [(i, s) for i, s, _ in original] == [
        ("books/03-a-case-of-identity.txt", "exact"),
        ("web/mirror-case-of-identity.txt", "near-duplicate"),
    ]
    assert len(claims) == len(WORK_NAMES) and warnings == []


@pytest.mark.parametrize("count", COUNTS)
def test_partitioned_sidecars_are_identical_on_ray_and_parts_of_the_single_build(
    world: World, ray_cluster: str, count: int
) -> None:
    local = world.parted(count)
    ray = world.parted(count, "ray")
    sharded.build_dataset(
        [world.data], ray, partitioned=True, partition_count=count, executor="ray"
    )
    assert _tree(ray) == _tree(local)
    names = sorted(os.listdir(local))
    assert names == sorted(
        ["index.json"]
        + [partitions.part_name(k) for k in range(count)]
        + [partitions.sidecar_name(k) for k in range(count)]
    )
    # The parts, concatenated, are the single file; every part's sidecar is listed.
    joined = b"".join((local / partitions.part_name(k)).read_bytes() for k in range(count))
    assert joined == world.single.read_bytes()
    index, _ = partitions.read_index(local)
    for k, part in enumerate(index.parts):
        sidecar = (local / partitions.sidecar_name(k)).read_bytes()
        assert part.fingerprints == partitions.SidecarPart(
            partitions.sidecar_name(k), hashlib.sha256(sidecar).hexdigest(), len(sidecar)
        )
    if count == 1:  # one part is the single file: so is its sidecar
        assert (local / partitions.sidecar_name(0)).read_bytes() == fpindex.sidecar_path(
            world.single
        ).read_bytes()


def test_several_inputs_into_one_file_on_ray_give_the_single_build(
    world: World, ray_cluster: str, tmp_path: Path
) -> None:
    out = tmp_path / "ray.jsonl"
    sharded.build_dataset([world.data], out, executor="ray")
    assert out.read_bytes() == world.single.read_bytes()
    assert fpindex.sidecar_path(out).read_bytes() == fpindex.sidecar_path(world.single).read_bytes()
    # Several inputs (records files) into one file, locally: one sidecar, as one input gives.
    rows = [
        {"id": f"r{i}", "text": p.read_text(encoding="utf-8")}
        for i, p in enumerate([*BOOKS[:4], *WORKS])
    ]
    halves = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for path, chunk in zip(halves, (rows[:3], rows[3:]), strict=True):
        path.write_text("".join(json.dumps(r) + "\n" for r in chunk), encoding="utf-8")
    whole = tmp_path / "whole.jsonl"
    whole.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    sharded.build_dataset([whole], tmp_path / "one.jsonl")
    sharded.build_dataset([str(tmp_path / "[ab].jsonl")], tmp_path / "two.jsonl")
    for suffix in ("", ".fp"):
        one = (tmp_path / f"one.jsonl{suffix}").read_bytes()
        assert one == (tmp_path / f"two.jsonl{suffix}").read_bytes()
    assert manifest.read_manifest(tmp_path / "two.jsonl").entries[0].textSha256 is not None


# ----------------------------------------------------------------------------------------------
# Lookups: the same findings on every form


@pytest.mark.parametrize("count", COUNTS)
def test_lookups_find_the_same_on_every_form(world: World, count: int) -> None:
    expected = _look(world.single, _card(world, "single.jsonl"))
    name = world.parted(count).name
    assert _look(world.parted(count), _card(world, name)) == expected
    # Without a card too: the parts' sidecars are used, checked against the index.
    assert _look(world.parted(count), None)[0] == expected[0]


def test_a_lookup_by_digest_reads_one_part_and_no_sidecar(world: World) -> None:
    opened = PartitionedLookup(world.parted(16), _card(world, "local-p16"))
    digest = hashlib.sha256(BOOKS[0].read_bytes()).hexdigest()
    ((number, entry),) = opened.exact_numbered(digest)
    assert entry.id == "books/01-a-scandal-in-bohemia.txt"
    assert opened.parts_read == [partitions.partition_of(digest, 16)]
    assert opened.sidecars_read == []
    # A near-duplicate lookup searches every sidecar part holding text.
    opened.text_candidates(content_prints([BOOKS[3].read_bytes()])[0].text)
    holding = [k for k, p in enumerate(opened.index.parts) if p.text_entries]
    assert opened.sidecars_read == holding and len(holding) > 1
    opened.close()


@pytest.mark.parametrize("limit", [1, 2, 3, 100_000])
def test_boilerplate_is_skipped_by_the_count_over_all_parts(world: World, limit: int) -> None:
    """A fingerprint held by more entries than ``max_postings`` is skipped as one file would
    skip it: the parts add up their counts first (per-part counts would keep it)."""
    # Story III and its edited copy sit in different parts and share fingerprints.
    prints = content_prints([BOOKS[2].read_bytes()])[0].text
    with fpindex.FingerprintIndex.open(world.single) as single:
        want = single.text_candidates(prints, max_postings=limit)
    opened = PartitionedLookup(world.parted(16), None)
    got = opened.text_candidates(prints, max_postings=limit)
    opened.close()
    for a, b in zip(want, got, strict=True):
        assert np.array_equal(a, b)
    if limit == 1:
        assert len(want[0]) == 1  # only the story itself: shared prints are skipped


# ----------------------------------------------------------------------------------------------
# Cards, verify, and what is refused


def test_card_commits_to_the_index_that_lists_the_sidecars(world: World) -> None:
    card = json.loads((world.root / "local-p3.card.json").read_text())
    index = (world.parted(3) / "index.json").read_bytes()
    digest = hashlib.sha256(index).hexdigest()
    assert card["subject"][0]["digest"]["sha256"] == digest
    assert card["predicate"]["manifest"]["fingerprints"] == {"sha256": digest, "name": "index.json"}


@pytest.fixture
def copy3(world: World, tmp_path: Path) -> Path:
    out = tmp_path / "p3"
    shutil.copytree(world.parted(3), out)
    return out


def _text_part(path: Path) -> int:
    """A part that holds text entries (its sidecar is read by a near-duplicate lookup)."""
    index, _ = partitions.read_index(path)
    return next(k for k, p in enumerate(index.parts) if p.text_entries)


def _cli_refuses(cli: Cli, world: World, copy3: Path, k: int, *, exit_code: int) -> str:
    """Run lookup (which must exit ``exit_code`` naming part ``k``'s sidecar) and verify (which
    must say no) on ``copy3`` against its card; return verify's output."""
    signed = ["--card", world.root / "local-p3.signed.json", "--trust", world.root / "trust.json"]
    result = cli("lookup", WORKS[0], "--manifest", copy3, *signed, "--now", NOW)
    assert result.returncode == exit_code
    assert partitions.sidecar_name(k) in one_error_line(result)
    verified = cli("verify", signed[1], "--trust", signed[3], "--manifest", copy3, "--now", NOW)
    assert verified.returncode == 1
    return verified.stdout


def test_a_tampered_sidecar_part_is_a_verified_no(world: World, copy3: Path, cli: Cli) -> None:
    k = _text_part(copy3)
    sidecar = copy3 / partitions.sidecar_name(k)
    altered = bytearray(sidecar.read_bytes())
    altered[-1] ^= 1
    sidecar.write_bytes(bytes(altered))
    card = _card(world, "local-p3")
    with pytest.raises(SidecarMismatchError, match="is not the fingerprint index the card") as e:
        _look(copy3, card)
    assert e.value.path == sidecar
    # Without a card, the index's own listing still refuses it.
    with pytest.raises(SidecarMismatchError, match="index.json lists"):
        _look(copy3, None)
    verified = _cli_refuses(cli, world, copy3, k, exit_code=1)
    assert f"FAIL  fingerprint index: {partitions.sidecar_name(k)} sha256" in verified
    # A card cannot be built on it either.
    built = cli(
        "card", "build", SAMPLES / "card-spec.yaml", "--manifest", copy3, "-o",
        copy3.parent / "c.json", "--now", NOW,
    )  # fmt: skip
    assert built.returncode == 1 and "index.json lists" in one_error_line(built)


def test_swapped_sidecar_parts_are_refused(world: World, copy3: Path) -> None:
    a, b = (copy3 / partitions.sidecar_name(k) for k in (0, 2))
    first, second = a.read_bytes(), b.read_bytes()
    a.write_bytes(second)
    b.write_bytes(first)
    with pytest.raises(SidecarMismatchError):
        _look(copy3, _card(world, "local-p3"))
    # Swapped in the index too (no card to hold it): each sidecar names the part it was built
    # for, so it is still refused.
    index = json.loads((copy3 / "index.json").read_text())
    parts = index["parts"]
    parts[0]["fingerprints"]["sha256"], parts[2]["fingerprints"]["sha256"] = (
        parts[2]["fingerprints"]["sha256"],
        parts[0]["fingerprints"]["sha256"],
    )
    parts[0]["fingerprints"]["bytes"], parts[2]["fingerprints"]["bytes"] = (
        parts[2]["fingerprints"]["bytes"],
        parts[0]["fingerprints"]["bytes"],
    )
    (copy3 / "index.json").write_text(json.dumps(index))
    with pytest.raises(InputError, match="belongs to another manifest"):
        _look(copy3, None)


def test_a_missing_sidecar_part_is_refused_and_none_present_is_said(
    world: World, copy3: Path, cli: Cli
) -> None:
    card = _card(world, "local-p3")
    k = _text_part(copy3)
    (copy3 / partitions.sidecar_name(k)).unlink()
    with pytest.raises(InputError, match="missing, while .* lists it"):
        _look(copy3, card)
    assert "FAIL  fingerprint index:" in _cli_refuses(cli, world, copy3, k, exit_code=2)
    # None present: looked up without them, and said so (as for a missing single sidecar).
    for name in os.listdir(copy3):
        if name.endswith(".fp"):
            (copy3 / name).unlink()
    findings, _, warnings = _look(copy3, card)
    statuses = {work: status for work, status, _ in findings}
    assert statuses["held-out XI"] == "absent" and statuses["normalized"] == "normalized"
    assert warnings == [
        "the card commits to fingerprint sidecars but none is in"
        f" {copy3}: near-duplicate and contained statuses are unavailable"
    ]


def _resign(world: World, name: str, change: Callable[[dict[str, Any]], None], out: Path) -> Path:
    card = json.loads((world.root / f"{name}.card.json").read_text())
    change(card)
    (out / "card.json").write_text(json.dumps(card))
    result = run_cli(
        "card", "sign", out / "card.json", "--key", world.root / "dev.key", "-o", out / "s.json"
    )
    assert result.returncode == 0, result.stderr
    return out / "s.json"


def _load(world: World, signed: Path) -> CardRef:
    return load_card(signed, world.root / "trust.json", at=AT)


def test_a_card_committing_to_no_fingerprints_never_uses_the_parts(
    world: World, tmp_path: Path
) -> None:
    def drop(card: dict[str, Any]) -> None:
        del card["predicate"]["manifest"]["fingerprints"]

    card = _load(world, _resign(world, "local-p3", drop, tmp_path))
    findings, _, warnings = _look(world.parted(3), card)
    statuses = {work: status for work, status, _ in findings}
    # Normalized copies are still found, by reading every part; near-duplicates are not.
    assert statuses["normalized"] == "normalized"
    assert statuses["edited"] == "absent" and statuses["held-out XII"] == "absent"
    assert len(warnings) == 1 and "commits to no fingerprint index" in warnings[0]


def test_a_card_committing_to_other_fingerprints_is_a_verified_no(
    world: World, tmp_path: Path, cli: Cli
) -> None:
    def other(card: dict[str, Any]) -> None:
        card["predicate"]["manifest"]["fingerprints"]["sha256"] = "ab" * 32

    signed = _resign(world, "local-p3", other, tmp_path)
    with pytest.raises(DigestMismatchError, match="commits to the fingerprint sidecars of index"):
        _look(world.parted(3), _load(world, signed))
    verified = cli(
        "verify", signed, "--trust", world.root / "trust.json", "--manifest", world.parted(3),
        "--now", NOW,
    )  # fmt: skip
    assert verified.returncode == 1 and "FAIL  fingerprint index:" in verified.stdout


def test_an_index_listing_sidecars_for_only_some_parts_is_refused(copy3: Path) -> None:
    index = json.loads((copy3 / "index.json").read_text())
    del index["parts"][1]["fingerprints"]
    (copy3 / "index.json").write_text(json.dumps(index))
    with pytest.raises(FormatError, match="not listed as the other parts' are"):
        partitions.read_index(copy3)


def test_verify_checks_every_sidecar_part(world: World, cli: Cli) -> None:
    result = cli(
        "verify", world.root / "local-p16.signed.json", "--trust", world.root / "trust.json",
        "--manifest", world.parted(16), "--now", NOW,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok    fingerprint index: 16 sidecar parts match index.json sha256" in result.stdout
    decided = open_part_sidecars(world.parted(16), _card(world, "local-p16").card)
    assert decided.used and decided.committed == decided.index_sha256


# ----------------------------------------------------------------------------------------------
# Merging between the forms


def test_merge_carries_sidecars_across_the_forms(world: World, tmp_path: Path) -> None:
    parted = tmp_path / "p3"
    sharded.merge_to_partitioned([world.single], parted, partition_count=3)
    assert _tree(parted) == _tree(world.parted(3))
    from provenance.manifest_files import merge_manifest_files

    back = tmp_path / "back.jsonl"
    merge_manifest_files([world.parted(16)], back)
    assert back.read_bytes() == world.single.read_bytes()
    assert (
        fpindex.sidecar_path(back).read_bytes() == fpindex.sidecar_path(world.single).read_bytes()
    )
    sharded.merge_to_partitioned([world.parted(3)], tmp_path / "p16", partition_count=16)
    assert _tree(tmp_path / "p16") == _tree(world.parted(16))


def test_merge_refuses_a_partitioned_input_whose_sidecars_are_gone(
    copy3: Path, tmp_path: Path
) -> None:
    for name in os.listdir(copy3):
        if name.endswith(".fp"):
            (copy3 / name).unlink()
    from provenance.manifest_files import merge_manifest_files

    with pytest.raises(InputError, match="none is in"):
        merge_manifest_files([copy3], tmp_path / "m.jsonl")
    with pytest.raises(InputError, match="none is in"):
        sharded.merge_to_partitioned([copy3], tmp_path / "out", partition_count=2)
    assert sorted(os.listdir(tmp_path)) == ["p3"]


# ----------------------------------------------------------------------------------------------
# The format: version 2 is smaller; version 1 is still read


def test_format_1_sidecars_are_still_read_with_the_same_findings(
    world: World, tmp_path: Path
) -> None:
    m = tmp_path / "m.jsonl"
    shutil.copy(world.single, m)
    old = sidecar_as_version_1(fpindex.sidecar_path(world.single), world.single)
    fpindex.sidecar_path(m).write_bytes(old)
    raw = fpindex.sidecar_path(m).read_bytes()
    header, _ = layout.parse(m, raw, len(raw))
    assert header["version"] == 1
    assert len(raw) > fpindex.sidecar_path(world.single).stat().st_size
    assert _look(m, None)[0] == _look(world.single, None)[0]


def test_format_2_header_fields_are_checked(world: World, tmp_path: Path) -> None:
    data = fpindex.sidecar_path(world.single).read_bytes()
    for field, wrong in (
        (b'"entryBytes":1', b'"entryBytes":3'),
        (b'"lineBytes":2', b'"lineBytes":3'),
    ):
        assert field in data
        with pytest.raises(FormatError, match=field[1:10].decode()):
            layout.parse("x", data.replace(field, wrong, 1), len(data))
    version_9 = data.replace(b'"version":2', b'"version":9', 1)
    with pytest.raises(FormatError, match="version 1 or 2"):
        layout.parse("x", version_9, len(data))


@pytest.mark.parametrize("count", [0, 1, 255, 256, 257, 65536, 65537, 2**24, 2**24 + 1])
def test_entry_numbers_take_the_fewest_bytes_and_round_trip(count: int) -> None:
    width = layout.entry_bytes(count)
    assert count <= 1 or (count - 1) < 256**width
    assert width == 1 or (count - 1) >= 256 ** (width - 1)
    values = np.array(sorted({0, max(count - 1, 0), count // 2}), dtype=np.uint32)
    packed = np.frombuffer(layout.pack_entries(values, width), dtype=np.uint8)
    assert np.array_equal(layout.unpack_entries(packed, width), values)


def test_cli_lookup_on_ray_finds_what_local_finds_on_the_parts(
    world: World, ray_cluster: str, cli: Cli, tmp_path: Path
) -> None:
    works = tmp_path / "works"
    works.mkdir()
    for name, data in _works():
        (works / name.replace(" ", "-")).write_bytes(data)
    signed = ["--card", world.root / "local-p3.signed.json", "--trust", world.root / "trust.json"]
    runs = {}
    for executor in ("local", "ray"):
        options = ["--executor", executor]
        if executor == "ray":
            options += ["--ray-address", ray_cluster]
        runs[executor] = cli(
            "lookup", works, "--manifest", world.parted(3), *signed, *options, "--now", NOW,
            "--json",
        )  # fmt: skip
        assert runs[executor].returncode == 0, runs[executor].stderr
    local = json.loads(runs["local"].stdout)
    assert json.loads(runs["ray"].stdout) == local
    statuses = {Path(r["work"]).name: r["status"] for r in local["results"]}
    assert statuses["held-out-XII"] == "contained" and statuses["edited"] == "near-duplicate"


def test_a_named_sidecar_is_refused_for_a_partitioned_manifest(world: World) -> None:
    named = world.parted(3) / partitions.sidecar_name(0)
    with (
        pytest.raises(InputError, match="sidecars are its parts'"),
        lookup.open_for_lookup(world.parted(3), sidecar=named, warn=print),
    ):
        pass  # pragma: no cover - refused on opening


@pytest.mark.parametrize("count", [0, 1, 40, 5_000, 300_000])
def test_packed_keys_find_what_a_search_of_the_sorted_hashes_finds(count: int) -> None:
    """Version 2's bucketed keys against version 1's plain search of the hashes, sorted."""
    rng = np.random.default_rng(count)
    # Window minima crowd at small values; some hashes are held by several entries.
    hashes = (rng.integers(0, 2**63, size=count, dtype=np.uint64) >> np.uint64(5)) + np.uint64(1)
    if count > 10:
        hashes[: count // 10] = hashes[count // 10 : 2 * (count // 10)]
    entries = rng.integers(0, 1000, size=count).astype(np.uint32)
    order = np.lexsort((entries, hashes))
    hashes, entries = hashes[order], entries[order]
    table, raw, keyed_entries, bits, width = layout.pack_keys(hashes, entries)
    assert (bits, width) == layout.key_layout(count)
    keys = layout.PackedKeys(table, np.frombuffer(raw, dtype=np.uint8), bits, width)
    keys.check("x")
    assert len(keys) == count
    back, back_entries = keys.by_hash(keyed_entries)
    assert np.array_equal(back, hashes) and np.array_equal(back_entries, entries)
    queries = np.concatenate(
        [hashes[:: max(1, count // 50)], rng.integers(1, 2**58, size=50, dtype=np.uint64)]
    )
    first, lengths = keys.postings(queries)
    lo = np.searchsorted(hashes, queries, side="left")
    hi = np.searchsorted(hashes, queries, side="right")
    assert np.array_equal(lengths, hi - lo)
    for q, start, length in zip(queries.tolist(), first.tolist(), lengths.tolist(), strict=True):
        held = keyed_entries[start : start + length]
        assert sorted(held.tolist()) == sorted(entries[hashes == np.uint64(q)].tolist())


def test_packed_keys_out_of_order_or_too_wide_are_refused() -> None:
    hashes = np.arange(1, 41, dtype=np.uint64) * np.uint64(2**57)
    table, raw, _, bits, width = layout.pack_keys(hashes, np.zeros(40, dtype=np.uint32))
    assert bits and (64 - bits) % 8, "the test needs spare bits in each key's top byte"
    wide = bytearray(raw)
    wide[width - 1] = 0xFF
    with pytest.raises(FormatError, match="wider than its bits"):
        layout.PackedKeys(table, np.frombuffer(bytes(wide), np.uint8), bits, width).check("x")
    swapped = bytearray(raw)
    swapped[:width], swapped[width : 2 * width] = raw[width : 2 * width], raw[:width]
    keys = layout.PackedKeys(table, np.frombuffer(bytes(swapped), np.uint8), bits, width)
    assert int(table[1]) >= 2  # both in the first bucket: out of order within it
    with pytest.raises(FormatError, match="fpKeys is not sorted"):
        keys.check("x")
    short = table.copy()
    short[-1] -= 1
    with pytest.raises(FormatError, match="does not cover"):
        layout.PackedKeys(short, np.frombuffer(raw, np.uint8), bits, width).check("x")
