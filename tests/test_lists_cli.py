"""``provenance lists ...`` end to end through subprocesses, against a 127.0.0.1 server:
exit codes 0 / 1 / 2 / 3 and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from lists_support import FaultyServer, serve, shutdown, transform

from provenance.keys import PrivateKey, write_key_pair
from provenance.trust import TrustStore
from tests.conftest import one_error_line, run_cli

T0 = "2026-07-01T00:00:00Z"
T0_PLUS_1H = "2026-07-01T01:00:00Z"
T0_PLUS_8D = "2026-07-09T00:00:00Z"
ENTRIES = "# piracy\n0.0.0.0 1337x.to\n0.0.0.0 3dmgame.com\nexample.org\n"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, FaultyServer]]:
    """An association key, a trust store pinning it for 'piracy', and a served empty repo."""
    (tmp_path / "repo").mkdir()
    (tmp_path / "entries.txt").write_text(ENTRIES)
    # Made with the library to keep the test fast; the CLI for both is tested elsewhere.
    key = PrivateKey.generate()
    write_key_pair(key, tmp_path / "assoc.key")
    store = TrustStore().with_key(
        key.public, name="Association", role="list-publisher", list_name="piracy"
    )
    (tmp_path / "trust.json").write_bytes(store.to_json())
    server, thread = serve(tmp_path / "repo")
    yield tmp_path, server
    shutdown(server, thread)


def _publish(w: Path, *extra: str, now: str = T0) -> object:
    return run_cli(
        "lists",
        "publish",
        w / "entries.txt",
        "--name",
        "piracy",
        "--key",
        w / "assoc.key",
        "--repo",
        w / "repo",
        "--category",
        "piracy",
        "--publisher",
        "Association",
        "--now",
        now,
        *extra,
    )


def _fetch(w: Path, server: FaultyServer, *extra: str, now: str = T0_PLUS_1H) -> object:
    return run_cli(
        "lists",
        "fetch",
        server.url,
        "--trust",
        w / "trust.json",
        "--cache",
        w / "cache",
        "--now",
        now,
        "--read-timeout",
        "0.5",
        "--timeout",
        "1.5",
        *extra,
    )


def test_publish_fetch_show(world: tuple[Path, FaultyServer]) -> None:
    w, server = world
    published = _publish(w, "--json")
    assert published.returncode == 0, published.stderr  # type: ignore[attr-defined]
    summary = json.loads(published.stdout)  # type: ignore[attr-defined]
    assert summary["version"] == 1 and summary["entries"] == 3
    assert summary["timestampExpires"] == "2026-07-08T00:00:00Z"

    fetched = _fetch(w, server)
    assert fetched.returncode == 0, fetched.stderr  # type: ignore[attr-defined]
    assert f"piracy v1 (3 entries, sha256 {summary['digest']}): fetched v1" in fetched.stdout  # type: ignore[attr-defined]

    shown = run_cli(
        "lists", "show", "--cache", w / "cache", "--trust", w / "trust.json", "--json",
        "--now", T0_PLUS_1H,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)["lists"]
    assert {k: row[k] for k in ("name", "version", "digest", "expires", "entries")} == {
        "name": "piracy",
        "version": 1,
        "digest": summary["digest"],
        "expires": "2026-07-08T00:00:00Z",
        "entries": 3,
    }
    human = run_cli(
        "lists", "show", "piracy", "--cache", w / "cache", "--trust", w / "trust.json",
        "--now", T0_PLUS_1H,
    )  # fmt: skip
    assert human.returncode == 0 and "piracy v1  3 entries" in human.stdout

    # A week later the timestamp has expired: freeze refused (1) until the association refreshes.
    frozen = _fetch(w, server, now=T0_PLUS_8D)
    assert frozen.returncode == 1  # type: ignore[attr-defined]
    assert one_error_line(frozen).startswith("error: freeze refused")  # type: ignore[arg-type]
    refreshed = run_cli(
        "lists",
        "refresh",
        "--repo",
        w / "repo",
        "--key",
        w / "assoc.key",
        "--now",
        "2026-07-07T00:00:00Z",
    )
    assert refreshed.returncode == 0 and "re-signed timestamp v2" in refreshed.stdout
    assert _fetch(w, server, now=T0_PLUS_8D).returncode == 0  # type: ignore[attr-defined]


def test_tampered_list_exits_1_and_network_failure_exits_3(
    world: tuple[Path, FaultyServer],
) -> None:
    w, server = world
    assert _publish(w).returncode == 0  # type: ignore[attr-defined]
    server.suffix_faults[".v1.json"] = transform(lambda b: b.replace(b"1337x", b"1338x"))
    tampered = _fetch(w, server)
    assert tampered.returncode == 1  # type: ignore[attr-defined]
    assert "tampered" in one_error_line(tampered)  # type: ignore[arg-type]
    assert not (w / "cache").exists()

    unreachable = run_cli(
        "lists",
        "fetch",
        "http://127.0.0.1:9",
        "--trust",
        w / "trust.json",
        "--cache",
        w / "cache",
        "--now",
        T0_PLUS_1H,
    )
    assert unreachable.returncode == 3
    assert one_error_line(unreachable).startswith("error: cannot download http://127.0.0.1:9/")


def test_untrusted_repository_exits_1(world: tuple[Path, FaultyServer]) -> None:
    w, server = world
    assert run_cli("key", "generate", w / "other.key").returncode == 0
    other = run_cli(
        "lists",
        "publish",
        w / "entries.txt",
        "--name",
        "piracy",
        "--key",
        w / "other.key",
        "--repo",
        w / "repo",
        "--now",
        T0,
    )
    assert other.returncode == 0, other.stderr
    refused = _fetch(w, server)
    assert refused.returncode == 1  # type: ignore[attr-defined]
    assert "not signed by a threshold of the keys" in one_error_line(refused)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "../evil"], "invalid list name '../evil'"),
        (["--name", "piracy", "--threshold", "2"], "--threshold 2: must be between 1"),
        (["--name", "piracy", "--expires-in", "0"], "--expires-in: must be between"),
    ],
)
def test_bad_publish_input_exits_2(
    world: tuple[Path, FaultyServer], args: list[str], message: str
) -> None:
    w, _ = world
    result = run_cli(
        "lists",
        "publish",
        w / "entries.txt",
        "--key",
        w / "assoc.key",
        "--repo",
        w / "repo",
        "--now",
        T0,
        *args,
    )
    assert result.returncode == 2
    assert message in one_error_line(result)
    assert list((w / "repo").iterdir()) == []


def test_public_suffix_exits_2_unless_skipped(world: tuple[Path, FaultyServer]) -> None:
    w, _ = world
    (w / "entries.txt").write_text(ENTRIES + "co.uk\n")
    refused = _publish(w)
    assert refused.returncode == 2  # type: ignore[attr-defined]
    assert "entries.txt:5: 'co.uk' is only a public suffix" in one_error_line(refused)  # type: ignore[arg-type]
    skipped = _publish(w, "--skip-invalid", "--json")
    assert skipped.returncode == 0  # type: ignore[attr-defined]
    assert json.loads(skipped.stdout)["entries"] == 3  # type: ignore[attr-defined]
    assert "warning: skipped" in skipped.stderr  # type: ignore[attr-defined]


def test_encrypted_key_with_passphrase(world: tuple[Path, FaultyServer]) -> None:
    w, _ = world
    env = {"ASSOC_PASS": "correct horse"}
    made = run_cli("key", "generate", w / "locked.key", "--passphrase-env", "ASSOC_PASS", env=env)
    assert made.returncode == 0
    base = [
        "lists",
        "publish",
        w / "entries.txt",
        "--name",
        "p",
        "--key",
        w / "locked.key",
        "--repo",
        w / "repo2",
        "--now",
        T0,
    ]
    assert run_cli(*base, "--passphrase-env", "ASSOC_PASS", env=env).returncode == 0
    missing = run_cli(*base)
    assert missing.returncode == 2 and "encrypted" in one_error_line(missing)


def test_show_empty_cache(tmp_path: Path) -> None:
    store = TrustStore().with_key(
        PrivateKey.generate().public, name="A", role="list-publisher", list_name="piracy"
    )
    (tmp_path / "trust.json").write_bytes(store.to_json())
    trust = ["--trust", tmp_path / "trust.json"]
    shown = run_cli("lists", "show", "--cache", tmp_path / "none", *trust, "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout) == {"lists": []}
    # Asking for a list that is not cached is bad input (2), not "could not answer" (3).
    missing = run_cli("lists", "show", "piracy", "--cache", tmp_path / "none", *trust)
    assert missing.returncode == 2
    assert "not in the cache" in one_error_line(missing)


def test_demo_plays_the_association_part() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "published piracy v1 (8 entries)" in result.stdout
    assert "piracy v1 (8 entries, sha256 " in result.stdout and ": fetched v1;" in result.stdout
    assert "is not the one the signed metadata names (tampered)" in result.stderr
