"""The fingerprint sidecar's commitment rule (``provenance.fpsidecar.open_sidecar``), which
card build, verify and lookup all follow, and the one read of a manifest against a card that
proofs and card-bound lookups take (``provenance.proofs.read_against_card``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance import card, fingerprints, fpindex, manifest, proofs
from provenance.card import VerifiedCard
from provenance.errors import DigestMismatchError, FormatError, InputError
from provenance.fpsidecar import SidecarMismatchError, open_sidecar, sidecar_path
from provenance.manifest import ManifestEntry
from provenance.proofs import CardCommitment, CardRef
from tests.conftest import SAMPLES

AT = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)
BOOKS = sorted((SAMPLES / "data" / "books").glob("*.txt"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of four stories with its sidecar, in a directory of its own."""
    root = tmp_path_factory.mktemp("sidecar")
    data = root / "data"
    data.mkdir()
    for path in BOOKS[:4]:
        shutil.copyfile(path, data / path.name)
    prints: dict[str, fingerprints.ContentPrints] = {}
    entries = manifest.build_from_directory(data, workers=1, prints=prints)
    manifest.write_manifest(entries, root / "manifest.jsonl")
    fpindex.write_sidecar(root / "manifest.jsonl", prints)
    return root / "manifest.jsonl"


def copy(built: Path, directory: Path, *, sidecar: bool = True) -> Path:
    """A copy of the manifest (and its sidecar) in ``directory``."""
    target = directory / built.name
    shutil.copyfile(built, target)
    if sidecar:
        shutil.copyfile(sidecar_path(built), sidecar_path(target))
    return target


def card_for(manifest_path: Path, fingerprints_sha256: str | None) -> VerifiedCard:
    """The card a publisher would build for the manifest, committing to a sidecar digest or
    to none, as ``verify_card`` returns it once its signature has verified."""
    spec = card.load_spec(
        json.dumps(
            {
                "name": "sidecar-test",
                "version": "1",
                "description": "four stories",
                "publisher": {"name": "Test Lab"},
                "sources": [
                    {
                        "id": "s",
                        "name": "All",
                        "kind": "licensed",
                        "license": "MIT",
                        "paths": ["**"],
                    }
                ],
            }
        ).encode(),
        what="spec",
    )
    loaded = manifest.read_manifest(manifest_path)
    statement = card.build_statement(
        spec,
        loaded.entries,
        lambda: loaded.summary,
        manifest_name=manifest_path.name,
        created=AT,
        fingerprints=None
        if fingerprints_sha256 is None
        else card.FingerprintIndexCommitment(
            sha256=fingerprints_sha256, name=sidecar_path(manifest_path).name
        ),
    )
    card.check_statement(statement.to_dict(), what="card")
    return VerifiedCard(statement, ("publisher",), ())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------------------------
# The rule


def test_without_a_card_the_sidecar_beside_the_manifest_is_used(built: Path) -> None:
    with open_sidecar(built, None) as sidecar:
        assert sidecar.used and sidecar.note is None
        assert sidecar.path == sidecar_path(built)
        assert sidecar.sha256() == digest(sidecar_path(built))
        assert bytes(sidecar.data or b"") == sidecar_path(built).read_bytes()


def test_without_a_card_or_a_sidecar_nothing_is_used_and_the_reader_is_told(
    built: Path, tmp_path: Path
) -> None:
    lone = copy(built, tmp_path, sidecar=False)
    sidecar = open_sidecar(lone, None)
    assert not sidecar.used
    assert sidecar.note is not None and "no fingerprint index" in sidecar.note
    with pytest.raises(ValueError, match="not used"):
        sidecar.sha256()
    # A sidecar named explicitly but missing is an error, never silently passed over.
    with pytest.raises(InputError, match="no such fingerprint index"):
        open_sidecar(lone, None, sidecar=tmp_path / "elsewhere.fp")


def test_a_card_that_commits_to_no_sidecar_never_reads_one(built: Path, tmp_path: Path) -> None:
    m = copy(built, tmp_path)
    uncommitted = card_for(m, None)
    sidecar = open_sidecar(m, uncommitted)
    assert not sidecar.used and sidecar.committed is None
    assert sidecar.note is not None and "commits to no fingerprint index" in sidecar.note
    # It is not even opened: a FIFO in its place neither blocks nor fails.
    sidecar_path(m).unlink()
    os.mkfifo(sidecar_path(m))
    assert not open_sidecar(m, uncommitted).used
    # Nothing beside the manifest: nothing to say.
    sidecar_path(m).unlink()
    assert open_sidecar(m, uncommitted).note is None


def test_a_committed_sidecar_is_used_only_with_the_committed_digest(
    built: Path, tmp_path: Path
) -> None:
    m = copy(built, tmp_path)
    committed = digest(sidecar_path(m))
    with open_sidecar(m, card_for(m, committed)) as sidecar:
        assert sidecar.used and sidecar.committed == committed
        assert hashlib.sha256(sidecar.data or b"").hexdigest() == committed
    altered = bytearray(sidecar_path(m).read_bytes())
    altered[-1] ^= 1
    sidecar_path(m).write_bytes(bytes(altered))
    with pytest.raises(SidecarMismatchError, match="is not the fingerprint index the card") as e:
        open_sidecar(m, card_for(m, committed))
    assert isinstance(e.value, DigestMismatchError)
    assert (e.value.actual, e.value.expected) == (hashlib.sha256(altered).hexdigest(), committed)
    # The same when the sidecar is named explicitly.
    with pytest.raises(
        SidecarMismatchError, match="is not the fingerprint index the card commits to"
    ):
        open_sidecar(m, card_for(m, committed), sidecar=sidecar_path(m))


def test_a_committed_sidecar_that_is_missing_or_not_a_file(built: Path, tmp_path: Path) -> None:
    m = copy(built, tmp_path, sidecar=False)
    committed = card_for(m, digest(sidecar_path(built)))
    missing = open_sidecar(m, committed)
    assert not missing.used
    assert missing.note is not None and "does not exist" in missing.note
    os.mkfifo(sidecar_path(m))
    with pytest.raises(InputError, match="not a regular file"):
        open_sidecar(m, committed)
    # A dangling link where the sidecar should be is reported, not taken for no sidecar.
    sidecar_path(m).unlink()
    sidecar_path(m).symlink_to(tmp_path / "gone.fp")
    for rule in (committed, None):
        with pytest.raises(InputError, match="no such fingerprint index"):
            open_sidecar(m, rule)
    assert not open_sidecar(m, card_for(m, None)).used


# ----------------------------------------------------------------------------------------------
# Card build: what a card commits to


def test_card_build_records_the_digest_of_the_sidecar_it_checked(
    built: Path, tmp_path: Path
) -> None:
    m = copy(built, tmp_path)
    assert fpindex.sidecar_commitment(m) == {
        "sha256": digest(sidecar_path(m)),
        "name": "manifest.jsonl.fp",
    }
    sidecar_path(m).unlink()
    assert fpindex.sidecar_commitment(m) is None


def test_card_build_refuses_a_sidecar_of_another_manifest_or_a_corrupt_one(
    built: Path, tmp_path: Path
) -> None:
    m = copy(built, tmp_path)
    entries = manifest.read_manifest(m).entries
    manifest.write_manifest(entries[1:], m)  # another manifest, the same sidecar beside it
    with pytest.raises(InputError, match="belongs to another manifest"):
        fpindex.sidecar_commitment(m)
    sidecar_path(m).write_bytes(b"PVFPIDX1" + b"\xff" * 64)
    with pytest.raises(FormatError, match="corrupt fingerprint index"):
        fpindex.sidecar_commitment(m)


# ----------------------------------------------------------------------------------------------
# The one read of a manifest against a card


def ref_for(manifest_path: Path) -> CardRef:
    verified = card_for(manifest_path, None)
    return CardRef(verified, CardCommitment.of(verified, "0" * 64))


def test_read_against_card_releases_only_what_the_card_commits_to(
    built: Path, tmp_path: Path
) -> None:
    m = copy(built, tmp_path, sidecar=False)
    ref = ref_for(m)
    ids = proofs.read_against_card(m, ref, lambda entries: [e.id for e in entries])
    assert ids == [e.id for e in manifest.read_manifest(m).entries]
    # A consumer that stops early: the rest is still read, and checked.
    first = proofs.read_against_card(m, ref, lambda entries: next(entries).id)
    assert first == ids[0]
    entries = manifest.read_manifest(m).entries
    manifest.write_manifest(entries[:-1], m)
    for consume in (list, lambda entries: next(entries)):
        with pytest.raises(DigestMismatchError, match="is not the manifest the card commits to"):
            proofs.read_against_card(m, ref, consume)


def test_a_manifest_replaced_during_the_read_is_not_read_twice(built: Path, tmp_path: Path) -> None:
    m = copy(built, tmp_path, sidecar=False)
    ref = ref_for(m)
    original = manifest.read_manifest(m).entries
    other = tmp_path / "other.jsonl"
    manifest.write_manifest(
        [ManifestEntry(id="planted.txt", sha256="0" * 64, size=1), *original[1:]], other
    )

    def swap_after_the_first(entries: Iterator[ManifestEntry]) -> list[str]:
        seen = [next(entries).id]
        os.replace(other, m)  # the path now names another manifest
        return seen + [e.id for e in entries]

    seen = proofs.read_against_card(m, ref, swap_after_the_first)
    # Every entry came from the one read of the file the card commits to (lines read again
    # later are checked against its leaves: test_index_lines_read_after_the_card_check_... and
    # test_builder_detects_a_manifest_changed_after_indexing).
    assert seen == [e.id for e in original]
    assert manifest.read_manifest(m).entries[0].id == "planted.txt"
