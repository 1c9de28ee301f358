"""The audit of ``verify --lists``: a signed card's exclusion claims held against the one read of
its manifest and against the lists, fetched over HTTP from a real TUF repository on 127.0.0.1.
Violations (on the version the card claims) versus newly listed (only on a later version),
required lists, every way a cited list can fail to verify, and a manifest swapped during the run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from exclusion_support import NOW, T0, Association, entry, served, sha

from provenance import card
from provenance import manifest as manifest_module
from provenance.envelope import Envelope
from provenance.errors import InputError
from provenance.filter import apply_lists, select_lists
from provenance.keys import PrivateKey
from provenance.lists.audit import CacheSource
from provenance.manifest import ManifestEntry
from provenance.normtext import norm_text_sha256
from provenance.trust import TrustStore
from provenance.verify import Report, verify
from tests.card_support import sign_card_for
from tests.conftest import one_error_line, run_cli

AT = dt.datetime(2026, 7, 1, 6, tzinfo=dt.UTC)
LATER = T0 + dt.timedelta(days=2)
PIRATED = "The full text of a pirated novel.\n"
ESSAY = "An essay whose author opted out of training."

PIRACY_V1 = [entry("domain", "01cinema.com"), entry("sha256", sha(PIRATED))]
PIRACY_V2 = [*PIRACY_V1, entry("domain", "news.example")]
OPTOUT_V1 = [
    entry("domain", "opted-out.example", "opt-out"),
    entry("text-sha256", norm_text_sha256(ESSAY.lower().encode()) or "", "opt-out"),
]
RECORDS: list[dict[str, Any]] = [
    {"id": "r1", "url": "https://news.example/today", "text": "news", "source": "web"},
    {"id": "r2", "url": "https://www.01cinema.com/film", "text": "film", "source": "web"},
    {"id": "r3", "url": "https://blog.example/post", "text": "blog", "source": "web"},
    {"id": "r4", "url": "https://mirror.example/book", "text": PIRATED, "source": "web"},
    {"id": "r5", "url": "https://opted-out.example/", "text": "essay", "source": "web"},
]
SPEC: dict[str, Any] = {
    "name": "web-sample",
    "version": "1",
    "description": "test",
    "publisher": {"name": "Lab"},
    "sources": [{"id": "web", "name": "Web", "kind": "web-crawl", "license": "CC-BY-4.0"}],
}


class World:
    """The association's lists (v1 cache, v2 cache), a developer key and the auditor's trust."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.assoc = Association(root / "assoc")
        self.assoc.publish("piracy", PIRACY_V1)
        self.assoc.publish("optout", OPTOUT_V1)
        self.cache_v1 = self.assoc.fetch(cache=root / "cache-v1")
        self.assoc.publish("piracy", PIRACY_V2, at=T0 + dt.timedelta(days=1))
        self.cache_v2 = self.assoc.fetch(at=LATER, cache=root / "cache-v2")
        self.developer = PrivateKey.generate()
        self.trust = self.assoc.store.with_key(
            self.developer.public, name="Lab", role="dataset-publisher"
        )
        self.trust_path = root / "auditor-trust.json"
        self.trust_path.write_bytes(self.trust.to_json())

    def card(
        self,
        name: str,
        entries: Sequence[ManifestEntry],
        exclusions: Sequence[dict[str, Any]],
    ) -> tuple[Path, Path]:
        """Write a manifest of ``entries`` and a card citing ``exclusions``, signed."""
        directory = self.root / name
        directory.mkdir()
        made = sign_card_for(
            directory,
            sorted(entries, key=ManifestEntry.sort_key),
            [self.developer],
            spec=SPEC,
            created=AT,
            exclusions=[card.Exclusion.from_dict(item) for item in exclusions],
        )
        return made.signed, made.manifest

    def filtered_card(self, name: str) -> tuple[Path, Path, dict[str, Any]]:
        """The honest developer: filter with piracy v1 + optout v1, card the kept records."""
        directory = self.root / f"{name}-records"
        directory.mkdir()
        source = directory / "records.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
        cached = select_lists(self.cache_v1, [], at=AT, store=self.assoc.store)
        report = apply_lists(
            source,
            cached,
            kept_path=directory / "kept.jsonl",
            removed_path=None,
            report_path=directory / "report.json",
            at=AT,
        ).to_dict()
        entries = manifest_module.build_from_records(directory / "kept.jsonl")
        signed, manifest_path = self.card(name, entries, report["lists"])
        return signed, manifest_path, report


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return World(tmp_path_factory.mktemp("verify-lists"))


def run_verify(
    world: World,
    signed: Path,
    manifest_path: Path,
    cache: Path,
    *,
    at: dt.datetime = AT,
    trust: TrustStore | None = None,
    strict: bool = False,
) -> Report:
    envelope = Envelope.from_dict(json.loads(signed.read_text()), what="card")
    return verify(
        envelope,
        trust or world.trust,
        at=at,
        what=str(signed),
        manifest_path=manifest_path,
        lists=CacheSource(cache, at),
        strict=strict,
    )


def failed(report: Report) -> dict[str, str]:
    return {c.name: c.detail for c in report.checks if not c.ok}


def violations(report: Report) -> list[dict[str, Any]]:
    return [v.to_dict() for v in report.violations]


def newly_listed(report: Report) -> list[dict[str, Any]]:
    return [n.to_dict() for n in report.newly_listed]


def test_honest_card_verifies_clean(world: World) -> None:
    signed, manifest_path, report = world.filtered_card("honest")
    assert report["records"]["kept"] == 2
    result = run_verify(world, signed, manifest_path, world.cache_v1)
    assert result.ok, failed(result)
    assert violations(result) == [] and newly_listed(result) == []
    names = [c.name for c in result.checks]
    assert "list piracy v1" in names and "list optout v1" in names and "exclusions" in names


def test_entry_listed_later_is_newly_listed_not_a_violation(world: World) -> None:
    signed, manifest_path, _ = world.filtered_card("later")
    result = run_verify(world, signed, manifest_path, world.cache_v2, at=LATER)
    assert result.ok, failed(result)
    assert violations(result) == []
    assert newly_listed(result) == [
        {
            "id": "r1",
            "list": "piracy",
            "version": 2,
            "entry": {"type": "domain", "value": "news.example", "category": "piracy"},
        }
    ]
    strict = run_verify(world, signed, manifest_path, world.cache_v2, at=LATER, strict=True)
    assert not strict.ok
    assert "newly listed" in failed(strict)


def test_entries_on_the_claimed_version_are_violations(world: World) -> None:
    """A card that claims the lists were applied, over a manifest that was never filtered."""
    directory = world.root / "dishonest-records"
    directory.mkdir()
    source = directory / "records.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    _, _, honest = world.filtered_card("for-claims")
    entries = list(manifest_module.build_from_records(source))
    # The essay is a re-wrapped copy: only its normalized-text digest is listed.
    essay = ManifestEntry(
        id="r6",
        sha256=sha("AN ESSAY whose author\nopted out of training. "),
        textSha256=norm_text_sha256(b"AN ESSAY whose author\nopted out of training. "),
        source="web",
        size=10,
    )
    signed, manifest_path = world.card("dishonest", [*entries, essay], honest["lists"])
    result = run_verify(world, signed, manifest_path, world.cache_v2, at=LATER)
    assert not result.ok
    assert "exclusions" in failed(result)
    got = sorted((v["id"], v["list"], v["version"], v["entry"]["type"]) for v in violations(result))
    assert got == [
        ("r2", "piracy", 1, "domain"),
        ("r4", "piracy", 1, "sha256"),
        ("r5", "optout", 1, "domain"),
        ("r6", "optout", 1, "text-sha256"),
    ]
    # r1 is only on v2: newly listed, reported alongside.
    assert [(n["id"], n["version"]) for n in newly_listed(result)] == [("r1", 2)]


def test_required_list_not_applied_is_a_violation(world: World) -> None:
    signed, manifest_path, report = world.filtered_card("required")
    only_piracy = [item for item in report["lists"] if item["name"] == "piracy"]
    signed, manifest_path = world.card(
        "required-card", manifest_module.read_manifest(manifest_path).entries, only_piracy
    )
    trust = world.trust.with_required("optout")
    result = run_verify(world, signed, manifest_path, world.cache_v1, trust=trust)
    assert not result.ok
    assert failed(result)["required lists"] == "not applied: optout"
    assert violations(result) == [
        {
            "id": None,
            "list": "optout",
            "version": None,
            "entry": None,
            "reason": "the trust store requires this list; the card did not apply it",
        }
    ]
    # The same card passes when the store does not require it.
    assert run_verify(world, signed, manifest_path, world.cache_v1).ok


def _claims(world: World, change: Any) -> tuple[Path, Path]:
    _, manifest_path, report = world.filtered_card(f"claims-{id(change)}")
    claims = json.loads(json.dumps(report["lists"]))
    change(claims)
    return world.card(
        f"card-{id(change)}", manifest_module.read_manifest(manifest_path).entries, claims
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c[0].update(digest="0" * 64), "the card cites digest 0000"),
        (lambda c: c[1].update(version=7), "version 7 is not in the cache"),
        (lambda c: c[0].update(name="unknown"), "not in the cache"),
        (lambda c: c.append(dict(c[0])), "more than once"),
    ],
)
def test_a_cited_list_that_cannot_be_verified_fails(
    world: World, change: Any, message: str
) -> None:
    signed, manifest_path = _claims(world, change)
    result = run_verify(world, signed, manifest_path, world.cache_v1)
    assert not result.ok
    assert any(message in detail for detail in failed(result).values()), failed(result)


def test_lists_signed_by_untrusted_keys_or_expired_fail(world: World) -> None:
    signed, manifest_path, _ = world.filtered_card("untrusted")
    # The auditor trusts the developer but names other keys for the lists.
    stranger = PrivateKey.generate()
    trust = TrustStore().with_key(world.developer.public, name="Lab", role="dataset-publisher")
    for name in ("piracy", "optout"):
        trust = trust.with_key(stranger.public, name="Other", role="list-publisher", list_name=name)
    result = run_verify(world, signed, manifest_path, world.cache_v1, trust=trust)
    assert not result.ok
    assert "trusted key" in failed(result)["list piracy v1"]
    # Untrusted keys fail even when the cached metadata has expired (checked offline).
    stale = run_verify(
        world, signed, manifest_path, world.cache_v1, at=T0 + dt.timedelta(days=60), trust=trust
    )
    assert not stale.ok
    assert "trusted key" in failed(stale)["list piracy v1"]


def test_old_card_verifies_offline_after_the_timestamp_expires(world: World) -> None:
    """A card checked against the cached versions it cites, long after the repository's
    timestamp expired: the versions were verified when fetched and never change."""
    signed, manifest_path, _ = world.filtered_card("offline")
    year_later = T0 + dt.timedelta(days=365)
    result = run_verify(world, signed, manifest_path, world.cache_v1, at=year_later)
    assert result.ok, failed(result)
    detail = {c.name: c.detail for c in result.checks}["list piracy v1"]
    assert "expired 2026-07-08T00:00:00Z (358 day(s) ago)" in detail
    assert "checked offline" in detail
    # --strict asks for a current answer: stale metadata cannot give one.
    strict = run_verify(world, signed, manifest_path, world.cache_v1, at=year_later, strict=True)
    assert not strict.ok
    assert "fresh metadata" in failed(strict)["list piracy v1"]
    # Tampering with the cached list is still caught offline: the signatures are re-verified.
    # Beside its signed packed form (hashed as signed) the list file is not read, so what is
    # matched is the signed list whatever the file holds; once the file is read, it is refused.
    copy = world.root / "offline-tampered-cache"
    shutil.copytree(world.cache_v1, copy, symlinks=True)
    (target,) = (copy / "current").resolve().glob("repos/*/lists/piracy/v1.json")
    target.write_bytes(target.read_bytes().replace(b"01cinema", b"01cinemb"))
    beside = run_verify(world, signed, manifest_path, copy, at=year_later)
    assert beside.checks == result.checks
    target.with_suffix(".index").unlink()
    tampered = run_verify(world, signed, manifest_path, copy, at=year_later)
    assert not tampered.ok
    assert "does not match the signed metadata" in failed(tampered)["list piracy v1"]


def test_unevaluable_manifest_urls_fail(world: World) -> None:
    _, manifest_path, report = world.filtered_card("unevaluable")
    entries = [
        *manifest_module.read_manifest(manifest_path).entries,
        ManifestEntry(id="bad", sha256=sha("x"), url="http://exa mple.com/", source="web"),
    ]
    signed, manifest_path = world.card("unevaluable-card", entries, report["lists"])
    result = run_verify(world, signed, manifest_path, world.cache_v1)
    assert not result.ok
    assert "bad: URL 'http://exa mple.com/' cannot be parsed" in failed(result)["manifest URLs"]


def test_lists_need_a_manifest(world: World) -> None:
    signed, _, _ = world.filtered_card("no-manifest")
    envelope = Envelope.from_dict(json.loads(signed.read_text()), what="card")
    with pytest.raises(InputError, match="^exclusion lists need a manifest"):
        verify(envelope, world.trust, at=AT, what="card", lists=CacheSource(world.cache_v1, AT))


def test_cli_exit_codes_and_json(world: World) -> None:
    signed, manifest_path, _ = world.filtered_card("cli")
    args = ["verify", signed, "--trust", world.trust_path, "--manifest", manifest_path]
    clean = run_cli(*args, "--lists", world.cache_v1, "--now", NOW)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "verified" in clean.stdout.splitlines()[-1]

    later = "2026-07-03T00:00:00Z"
    newly = run_cli(*args, "--lists", world.cache_v2, "--now", later, "--json")
    assert newly.returncode == 0, newly.stdout + newly.stderr
    document = json.loads(newly.stdout)
    assert document["ok"] is True and document["violations"] == []
    assert [(n["id"], n["list"], n["version"]) for n in document["newly_listed"]] == [
        ("r1", "piracy", 2)
    ]
    strict = run_cli(*args, "--lists", world.cache_v2, "--now", later, "--strict")
    assert strict.returncode == 1
    assert "newly listed  r1: on piracy v2 (domain news.example, piracy)" in strict.stdout

    # The lists straight from the repository URL (fetched into a temporary cache).
    with served(world.assoc.repo) as url:
        fetched = run_cli(*args, "--lists", url, "--now", later, "--json")
    assert fetched.returncode == 0, fetched.stderr
    assert json.loads(fetched.stdout)["newly_listed"] == document["newly_listed"]

    no_manifest = run_cli("verify", signed, "--trust", world.trust_path, "--lists", world.cache_v1)
    assert no_manifest.returncode == 2
    assert "--lists needs --manifest" in one_error_line(no_manifest)


def test_cli_verifies_an_old_card_offline_after_expiry(world: World) -> None:
    """Issue 7.4 through the CLI: last year's card against the cached versions it cites."""
    signed, manifest_path, _ = world.filtered_card("cli-offline")
    args = ["verify", signed, "--trust", world.trust_path, "--manifest", manifest_path]
    year_later = "2027-07-01T00:00:00Z"
    offline = run_cli(*args, "--lists", world.cache_v1, "--now", year_later)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "ok    list piracy v1: signed by" in offline.stdout
    assert "expired 2026-07-08T00:00:00Z (358 day(s) ago)" in offline.stdout
    assert offline.stdout.splitlines()[-1] == "verified"
    strict = run_cli(*args, "--lists", world.cache_v1, "--now", year_later, "--strict")
    assert strict.returncode == 1
    assert "FAIL  list piracy v1:" in strict.stdout
    # Fetching new versions still needs fresh metadata: a frozen repository is refused.
    with served(world.assoc.repo) as url:
        frozen = run_cli(*args, "--lists", url, "--now", year_later)
    assert frozen.returncode == 1
    assert "freeze refused" in one_error_line(frozen)


# ----------------------------------------------------------------------------------------------
# One read: the entries matched against the lists are the entries the card commits to


def _dishonest_and_clean(world: World, name: str) -> tuple[Path, Path, Path]:
    """A signed card over a manifest with listed entries, and a clean manifest to swap in."""
    signed, honest_manifest, report = world.filtered_card(f"{name}-honest")
    directory = world.root / f"{name}-records"
    directory.mkdir()
    source = directory / "records.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    entries = manifest_module.build_from_records(source)
    signed, manifest_path = world.card(name, entries, report["lists"])
    clean = world.root / f"{name}-clean.jsonl"
    shutil.copyfile(honest_manifest, clean)
    return signed, manifest_path, clean


class _SwappingSource:
    """Lists from a cache; loading the first one replaces the manifest with ``clean``.

    That is the moment, in a verify that read the manifest twice, between the read held against
    the card and the read matched against the lists."""

    def __init__(self, cache: Path, at: dt.datetime, manifest_path: Path, clean: Path) -> None:
        self._source = CacheSource(cache, at)
        self._swap = (clean, manifest_path)

    def _swap_once(self) -> None:
        if self._swap is not None:
            clean, target = self._swap
            shutil.copyfile(clean, target)  # in place: the same file, other bytes
            self._swap = None  # type: ignore[assignment]

    def load_version(self, name: str, version: int) -> Any:
        self._swap_once()
        return self._source.load_version(name, version)

    def load_newest(self, name: str) -> Any:
        self._swap_once()
        return self._source.load_newest(name)


def _verify_swapping(
    world: World, signed: Path, manifest_path: Path, clean: Path, data_dir: Path | None = None
) -> Report:
    envelope = Envelope.from_dict(json.loads(signed.read_text()), what="card")
    return verify(
        envelope,
        world.trust,
        at=AT,
        what=str(signed),
        manifest_path=manifest_path,
        data_dir=data_dir,
        lists=_SwappingSource(world.cache_v1, AT, manifest_path, clean),
    )


def test_a_manifest_swapped_while_the_lists_load_cannot_pass(world: World) -> None:
    # The first batch of the manifest (here all of it) is read before the lists load, and the
    # rest while they load: the entries judged are the ones read, which are the committed ones.
    signed, manifest_path, clean = _dishonest_and_clean(world, "swap-lists")
    result = _verify_swapping(world, signed, manifest_path, clean)
    assert manifest_path.read_bytes() == clean.read_bytes()  # the swap happened
    _judged_as_read(result)


def _judged_as_read(result: Report) -> None:
    """The committed manifest, as read, was judged: its listed entries are the violations."""
    assert not result.ok
    problems = failed(result)
    assert "manifest digest" not in problems
    assert "exclusions" in problems
    assert sorted(v["id"] for v in violations(result)) == ["r2", "r4", "r5"]


def test_a_manifest_changed_during_its_read_cannot_pass(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Changed in place after its first block was read (while the lists load, for a big one):
    # the bytes read are not the committed ones, and the list findings are not released.
    from provenance.manifest import reader as manifest_reader

    signed, manifest_path, clean = _dishonest_and_clean(world, "swap-during")
    real_read_blocks = manifest_reader._read_blocks

    def change_after_first_line(handle: Any, file_hash: Any = None) -> Any:
        first = handle.readline()
        if file_hash is not None:
            file_hash.update(first)
        shutil.copyfile(clean, manifest_path)  # in place: the same file, other bytes
        handle.seek(0, os.SEEK_END)  # drops what was buffered of the old bytes
        handle.seek(len(first))
        yield first
        yield from real_read_blocks(handle, file_hash)

    monkeypatch.setattr(manifest_reader, "_read_blocks", change_after_first_line)
    result = run_verify(world, signed, manifest_path, world.cache_v1)
    assert not result.ok
    problems = failed(result)
    assert "card says" in problems["manifest digest"]
    assert problems["exclusion lists"] == (
        "not checked: the manifest read is not the one the card commits to"
    )
    assert "exclusions" not in {c.name for c in result.checks if c.ok}
    assert violations(result) == []


def test_with_data_the_lists_judge_the_manifest_read_once(world: World, tmp_path: Path) -> None:
    # With --data the manifest is read (once) before the files are hashed and the lists load:
    # swapping it then changes nothing; the committed entries are the ones found listed.
    signed, manifest_path, clean = _dishonest_and_clean(world, "swap-data")
    result = _verify_swapping(world, signed, manifest_path, clean, data_dir=tmp_path)
    assert manifest_path.read_bytes() == clean.read_bytes()
    _judged_as_read(result)


def test_a_manifest_replaced_once_open_is_judged_as_read(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renamed over once the read has opened it: the read goes on with the committed file, and
    # its listed entries are found.
    from provenance.manifest import reader as manifest_reader

    signed, manifest_path, clean = _dishonest_and_clean(world, "swap-open")
    real_read_blocks = manifest_reader._read_blocks

    def replace_then_read(handle: Any, *args: Any) -> Any:
        replacement = manifest_path.with_name("replacement.jsonl")
        shutil.copyfile(clean, replacement)
        replacement.replace(manifest_path)
        return real_read_blocks(handle, *args)

    monkeypatch.setattr(manifest_reader, "_read_blocks", replace_then_read)
    result = run_verify(world, signed, manifest_path, world.cache_v1)
    assert manifest_path.read_bytes() == clean.read_bytes()
    assert "manifest digest" not in failed(result)
    assert sorted(v["id"] for v in violations(result)) == ["r2", "r4", "r5"]


def test_report_is_frozen_and_its_document_reads_back(world: World) -> None:
    import dataclasses

    from provenance.lists.audit import ListFinding
    from provenance.verify import Check

    signed, manifest_path, _ = world.filtered_card("document")
    result = run_verify(
        world, signed, manifest_path, world.cache_v1, trust=world.trust.with_required("x")
    )
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'strict'"):
        result.strict = True  # type: ignore[misc]
    document = result.to_dict()
    assert [Check.from_dict(c) for c in document["checks"]] == list(result.checks)
    assert document["violations"] == [ListFinding.required_not_applied("x").to_dict()]
    assert document["ok"] is False and result.ok is False
    with pytest.raises(ValueError, match="boolean ok"):
        Check.from_dict({"name": "n", "ok": "yes", "detail": "d"})
