"""``lists publish`` / ``lists refresh``: the TUF repository they write, thresholds, refusals."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from lists_support import DAY, DOMAINS_V2, HOUR, T0, Association, entries, tree
from tuf.api.metadata import Metadata

from provenance._files import atomic_write
from provenance.errors import InputError, LocalIOError, SignatureError, VerificationError
from provenance.keys import PrivateKey
from provenance.lists import _metadata, _repo
from provenance.lists.model import ExclusionList
from provenance.lists.repository import publish, refresh


def _state(repo: Path, *, at: dt.datetime) -> _metadata.VerifiedRepository:
    loaded = _repo.load_repository(repo, at=at, allow_expired=False)
    assert loaded is not None
    return _metadata.VerifiedRepository(
        loaded.root, loaded.timestamp, loaded.snapshot, loaded.targets, {}, ()
    )


def test_new_repository_layout(tmp_path: Path) -> None:
    assoc = Association(tmp_path)
    digest = assoc.publish()
    meta = assoc.repo / "metadata"
    assert sorted(p.name for p in meta.iterdir()) == [
        "1.root.json",
        "1.snapshot.json",
        "1.targets.json",
        "root.json",
        "timestamp.json",
    ]
    assert (meta / "root.json").read_bytes() == (meta / "1.root.json").read_bytes()
    root = Metadata.from_bytes((meta / "root.json").read_bytes()).signed
    assert root.consistent_snapshot is True
    assert sorted(root.roles) == ["root", "snapshot", "targets", "timestamp"]
    (target,) = (assoc.repo / "targets/lists/piracy").iterdir()
    assert target.name == f"{digest}.v1.json"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    listed = ExclusionList.from_bytes(target.read_bytes(), what="t")
    assert listed.version == 1 and listed.previous is None and listed.issued == T0
    assert listed.entries == entries()
    state = _state(assoc.repo, at=T0)
    assert state.timestamp.signed.expires == T0 + 7 * DAY
    assert state.targets.signed.expires == T0 + 365 * DAY


def test_versions_chain_and_stay_available(tmp_path: Path) -> None:
    assoc = Association(tmp_path)
    first = assoc.publish()
    second = assoc.publish(DOMAINS_V2, at=T0 + DAY)
    third = assoc.publish(b"", at=T0 + 2 * DAY)  # an empty version is a valid version
    files = {p.name for p in (assoc.repo / "targets/lists/piracy").iterdir()}
    assert files == {f"{first}.v1.json", f"{second}.v2.json", f"{third}.v3.json"}
    v2 = ExclusionList.from_bytes(
        (assoc.repo / f"targets/lists/piracy/{second}.v2.json").read_bytes(), what="v2"
    )
    v3 = ExclusionList.from_bytes(
        (assoc.repo / f"targets/lists/piracy/{third}.v3.json").read_bytes(), what="v3"
    )
    assert v2.previous == first and v3.previous == second
    assert v3.publisher == "Example Rights Association"
    targets = _state(assoc.repo, at=T0 + 2 * DAY).targets.signed.targets
    assert sorted(targets) == [f"lists/piracy/v{n}.json" for n in (1, 2, 3)]
    assert targets["lists/piracy/v1.json"].hashes == {"sha256": first}


def test_publisher_defaults_to_the_previous_version(tmp_path: Path) -> None:
    assoc = Association(tmp_path)
    assoc.publish()
    result = publish(assoc.repo, entries(), name="piracy", keys=assoc.keys, at=T0 + DAY)
    data = next((assoc.repo / "targets/lists/piracy").glob(f"{result.digest}.*")).read_bytes()
    assert ExclusionList.from_bytes(data, what="v2").publisher == "Example Rights Association"


def test_several_lists_share_one_repository(tmp_path: Path) -> None:
    assoc = Association(tmp_path)
    assoc.publish(name="piracy")
    assoc.publish(name="optout", at=T0 + HOUR)
    targets = _state(assoc.repo, at=T0 + HOUR).targets.signed.targets
    assert sorted(targets) == ["lists/optout/v1.json", "lists/piracy/v1.json"]


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256"])
def test_both_key_algorithms(tmp_path: Path, algorithm: str) -> None:
    assoc = Association(tmp_path, keys=[PrivateKey.generate(algorithm)])  # type: ignore[arg-type]
    assoc.publish()
    loaded = _repo.load_repository(assoc.repo, at=T0)
    assert loaded is not None
    signers = _metadata.role_signers(loaded.root.signed, "targets", loaded.targets, what="targets")
    assert signers == (assoc.keys[0].keyid,)


def test_threshold_of_keys(tmp_path: Path) -> None:
    keys = [PrivateKey.generate() for _ in range(3)]
    assoc = Association(tmp_path, keys=keys, threshold=2)
    assoc.publish()
    state = _state(assoc.repo, at=T0)
    assert state.root.signed.roles["targets"].threshold == 2
    assert len(state.targets.signatures) == 3
    before = tree(assoc.repo)
    with pytest.raises(InputError, match="needs 2 of its keys; 1 of the given"):
        publish(assoc.repo, entries(), name="piracy", keys=keys[:1], at=T0 + DAY)
    assert tree(assoc.repo) == before
    publish(assoc.repo, entries(DOMAINS_V2), name="piracy", keys=keys[1:], at=T0 + DAY)
    state = _state(assoc.repo, at=T0 + DAY)
    assert len(state.targets.signatures) == 2


def test_a_stranger_key_cannot_publish(tmp_path: Path) -> None:
    assoc = Association(tmp_path)
    assoc.publish()
    before = tree(assoc.repo)
    with pytest.raises(InputError, match="needs 1 of its keys; 0 of the given"):
        publish(assoc.repo, entries(), name="piracy", keys=[PrivateKey.generate()], at=T0)
    assert tree(assoc.repo) == before


@pytest.mark.parametrize(
    ("threshold", "keys"), [(0, 1), (2, 1), (4, 3)], ids=["zero", "above one key", "above three"]
)
def test_threshold_out_of_range(tmp_path: Path, threshold: int, keys: int) -> None:
    with pytest.raises(InputError, match="^threshold"):
        publish(
            tmp_path / "repo",
            entries(),
            name="piracy",
            keys=[PrivateKey.generate() for _ in range(keys)],
            at=T0,
            threshold=threshold,
        )
    assert not (tmp_path / "repo" / "metadata").exists()


@pytest.mark.parametrize("name", ["../evil", "Piracy", "a/b", ""])
def test_hostile_names_write_nothing(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError, match="invalid list name"):
        publish(tmp_path / "repo", entries(), name=name, keys=[PrivateKey.generate()], at=T0)
    assert tree(tmp_path) == {}


def test_a_tampered_repository_is_not_extended(tmp_path: Path) -> None:
    """Signing on top of edited metadata would give the edit our signature."""
    assoc = Association(tmp_path)
    assoc.publish()
    path = assoc.repo / "metadata/1.targets.json"
    document = json.loads(path.read_bytes())
    document["signed"]["targets"]["lists/piracy/v1.json"]["length"] += 1
    path.write_text(json.dumps(document))
    before = tree(assoc.repo)
    with pytest.raises(VerificationError):
        assoc.publish(at=T0 + DAY)
    assert tree(assoc.repo) == before


def test_interrupted_publish_leaves_the_old_state_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files are written targets first and timestamp last (L15), each atomically."""
    assoc = Association(tmp_path)
    assoc.publish()
    timestamp = (assoc.repo / "metadata/timestamp.json").read_bytes()

    def failing(path: Path, data: bytes, *, mode: int = 0o644) -> None:
        if path.name == "timestamp.json":
            raise LocalIOError(f"{path}: cannot write: No space left on device")
        atomic_write(path, data, mode=mode)

    monkeypatch.setattr(_repo, "atomic_write", failing)
    with pytest.raises(LocalIOError):
        assoc.publish(DOMAINS_V2, at=T0 + DAY)
    assert (assoc.repo / "metadata/timestamp.json").read_bytes() == timestamp
    state = _state(assoc.repo, at=T0 + DAY)
    assert sorted(state.targets.signed.targets) == ["lists/piracy/v1.json"]
    assert not list(assoc.repo.rglob("*.tmp"))


def test_refresh_renews_only_the_timestamp(tmp_path: Path) -> None:
    assoc = Association(tmp_path)
    assoc.publish()
    result = refresh(assoc.repo, keys=assoc.keys, at=T0 + 6 * DAY)
    assert result.resigned == {"timestamp": 2}
    assert result.timestamp_expires == T0 + 13 * DAY
    state = _state(assoc.repo, at=T0 + 12 * DAY)  # would have expired on day 7 without it
    assert state.snapshot.signed.version == 1 and state.targets.signed.version == 1


def test_refresh_renews_what_is_about_to_expire(tmp_path: Path) -> None:
    assoc = Association(tmp_path)
    assoc.publish()
    at = T0 + 362 * DAY  # root, targets and snapshot expire on day 365
    result = refresh(assoc.repo, keys=assoc.keys, at=at)
    assert result.resigned == {"root": 2, "targets": 2, "snapshot": 2, "timestamp": 2}
    state = _state(assoc.repo, at=at + 6 * DAY)
    assert state.root.signed.version == 2
    assert (assoc.repo / "metadata/root.json").read_bytes() == (
        assoc.repo / "metadata/2.root.json"
    ).read_bytes()
    # The list itself is unchanged: same single version, same digest.
    assert sorted(state.targets.signed.targets) == ["lists/piracy/v1.json"]


def test_refresh_needs_a_repository_and_its_keys(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such repository"):
        refresh(tmp_path / "nothing", keys=[PrivateKey.generate()], at=T0)
    assoc = Association(tmp_path)
    assoc.publish()
    with pytest.raises(InputError, match="needs 1 of its keys"):
        refresh(assoc.repo, keys=[PrivateKey.generate()], at=T0)


@pytest.mark.parametrize("days", [0, -1, 3651])
def test_expires_in_bounds(tmp_path: Path, days: int) -> None:
    with pytest.raises(InputError, match="^expires_in: must be between"):
        publish(
            tmp_path / "r",
            entries(),
            name="p",
            keys=[PrivateKey.generate()],
            at=T0,
            expires_in=days,
        )


def test_signature_on_tampered_target_metadata_fails_verification(tmp_path: Path) -> None:
    assoc = Association(tmp_path)
    assoc.publish()
    meta = assoc.repo / "metadata"
    state = _state(assoc.repo, at=T0)
    targets = state.targets
    targets.signed.targets["lists/piracy/v1.json"].length += 1
    with pytest.raises(SignatureError, match="targets metadata signed by 0 of the 1"):
        _metadata.role_signers(state.root.signed, "targets", targets, what="targets")
    assert (meta / "1.targets.json").exists()
