"""``trust add --role transparency-log``, ``log verify`` and ``log monitor``, as users run them.

The monitor reads a log served over HTTP by a real server on 127.0.0.1 from the static files a
:class:`~provenance.tlog_store.DirectoryTileStore` writes; a split view is a second log signed by
the same key (the registry restarted on another database) served at the same URL.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance._files import read_bytes
from provenance.card import verify_card
from provenance.envelope import Envelope
from provenance.keys import PrivateKey, load_private_key, write_key_pair
from provenance.signednote import Checkpoint, NoteSigner
from provenance.tlog import LogEntry, Receipt
from provenance.tlog_store import DirectoryTileStore, LogWriter
from provenance.trust import TrustStore
from tests.conftest import NOW, SAMPLES, one_error_line, run_cli
from tests.lists_support import FaultyServer, replace_with, serve, shutdown, transform

ORIGIN = "localhost/provenance"
PUBLISHER = "a" * 64
AT = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)


def entry(number: int, *, name: str = "books", version: str | None = None) -> bytes:
    """A registration of a made-up card number ``number`` (its own version unless given)."""
    return LogEntry(
        card=hashlib.sha256(b"statement %d" % number).hexdigest(),
        envelope=hashlib.sha256(b"envelope %d" % number).hexdigest(),
        manifest=hashlib.sha256(b"manifest %d" % number).hexdigest(),
        merkle_root=hashlib.sha256(b"root %d" % number).hexdigest(),
        entries=number,
        name=name,
        version=version if version is not None else f"{number}.0",
        publisher=(PUBLISHER,),
        registered=AT,
    ).to_bytes()


def ok(*args: str | Path) -> str:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A log key trusted as transparency-log, a real signed card, and a log that registered it."""
    work = tmp_path_factory.mktemp("log")
    shutil.copytree(SAMPLES / "data", work / "data")
    for step in [
        ("key", "generate", work / "log.key"),
        ("key", "generate", work / "dev.key"),
        ("trust", "add", work / "trust.json", work / "log.key.pub", "--name", ORIGIN)
        + ("--role", "transparency-log"),
        ("trust", "add", work / "cards.json", work / "dev.key.pub", "--name", "Lab")
        + ("--role", "dataset-publisher"),
        ("manifest", "build", work / "data", "-o", work / "manifest.jsonl"),
        ("card", "build", SAMPLES / "card-spec.yaml", "--manifest", work / "manifest.jsonl")
        + ("-o", work / "card.json", "--now", NOW),
        ("card", "sign", work / "card.json", "--key", work / "dev.key", "-o", work / "signed.json"),
    ]:
        ok(*step)
    # What the registry logs for this card (built from the verified card, as it would).
    envelope_bytes = (work / "signed.json").read_bytes()
    envelope = Envelope.from_json(envelope_bytes, what="card")
    cards = TrustStore.from_json((work / "cards.json").read_bytes(), what="cards")
    verified = verify_card(envelope, cards, at=AT, what="card")
    card_entry = LogEntry.for_card(
        verified,
        statement=envelope.payload,
        envelope_sha256=hashlib.sha256(envelope_bytes).hexdigest(),
        manifest_sha256=hashlib.sha256((work / "manifest.jsonl").read_bytes()).hexdigest(),
        at=AT,
    )
    key = load_private_key(work / "log.key")
    writer = LogWriter(DirectoryTileStore(work / "site" / "log"), key, origin=ORIGIN)
    writer.create()
    writer.append([entry(i) for i in range(3)])
    appended = writer.append([card_entry.to_bytes(), entry(3)])
    (work / "card.tlog-proof").write_bytes(appended.receipts[0].to_bytes())
    (work / "other.tlog-proof").write_bytes(appended.receipts[1].to_bytes())
    return {"work": work, "key": key, "card_entry": card_entry}


# --- trust add --role transparency-log ----------------------------------------------------------


def test_trust_show_lists_the_log_key(world: dict[str, Any]) -> None:
    shown = ok("trust", "show", world["work"] / "trust.json")
    assert "transparency-log" in shown and ORIGIN in shown


def test_log_keys_must_be_ed25519_and_named_by_an_origin(tmp_path: Path) -> None:
    ok("key", "generate", tmp_path / "ec.key", "--algorithm", "ecdsa-p256")
    ok("key", "generate", tmp_path / "ed.key")
    add = ("trust", "add", tmp_path / "t.json")
    result = run_cli(*add, tmp_path / "ec.key.pub", "--name", ORIGIN, "--role", "transparency-log")
    assert result.returncode == 2
    assert "must be Ed25519" in one_error_line(result)
    for name in ("has space", "a+b"):
        result = run_cli(
            *add, tmp_path / "ed.key.pub", "--name", name, "--role", "transparency-log"
        )
        assert result.returncode == 2
        assert "cannot be a log origin" in one_error_line(result)
    assert not (tmp_path / "t.json").exists()


def test_a_log_key_is_trusted_for_that_role_alone(tmp_path: Path) -> None:
    ok("key", "generate", tmp_path / "k")
    add = ("trust", "add", tmp_path / "t.json", tmp_path / "k.pub")
    ok(*add, "--name", "Lab", "--role", "dataset-publisher")
    result = run_cli(*add, "--name", ORIGIN, "--role", "transparency-log")
    assert result.returncode == 2
    assert "for one role only" in one_error_line(result)
    ok(
        "trust",
        "add",
        tmp_path / "u.json",
        tmp_path / "k.pub",
        "--name",
        ORIGIN,
        "--role",
        "transparency-log",
    )
    result = run_cli(
        "trust", "add", tmp_path / "u.json", tmp_path / "k.pub", "--name", "X", "--role", "auditor"
    )
    assert result.returncode == 2
    assert "for one role only" in one_error_line(result)


def test_a_hand_edited_store_with_an_ecdsa_log_key_is_refused(
    world: dict[str, Any], tmp_path: Path
) -> None:
    ok("key", "generate", tmp_path / "ec.key", "--algorithm", "ecdsa-p256")
    ok(
        "trust",
        "add",
        tmp_path / "t.json",
        tmp_path / "ec.key.pub",
        "--name",
        ORIGIN,
        "--role",
        "auditor",
    )
    document = json.loads((tmp_path / "t.json").read_text())
    document["keys"][0]["roles"] = ["transparency-log"]
    (tmp_path / "t.json").write_text(json.dumps(document))
    result = run_cli(
        "log", "verify", world["work"] / "card.tlog-proof", "--trust", tmp_path / "t.json"
    )
    assert result.returncode == 2
    assert "must be Ed25519" in one_error_line(result)


# --- log verify ---------------------------------------------------------------------------------


def test_verify_a_receipt(world: dict[str, Any]) -> None:
    work = world["work"]
    out = ok("log", "verify", work / "card.tlog-proof", "--trust", work / "trust.json")
    card: LogEntry = world["card_entry"]
    assert out.startswith(f"verified: entry 3 of log {ORIGIN} (checkpoint of 5 entries)")
    assert card.card in out and card.name in out


def test_verify_a_receipt_json_and_card(world: dict[str, Any]) -> None:
    work = world["work"]
    out = ok(
        "log",
        "verify",
        work / "card.tlog-proof",
        "--trust",
        work / "trust.json",
        "--card",
        work / "signed.json",
        "--json",
    )
    report = json.loads(out)
    statement = Envelope.from_json((work / "signed.json").read_bytes(), what="c").payload
    assert report["ok"] is True and report["cardMatches"] is True
    assert report["entry"]["card"] == hashlib.sha256(statement).hexdigest()
    assert report["index"] == 3 and report["checkpoint"]["size"] == 5


def test_verify_refuses_a_receipt_for_another_card(world: dict[str, Any]) -> None:
    work = world["work"]
    result = run_cli(
        "log",
        "verify",
        work / "other.tlog-proof",
        "--trust",
        work / "trust.json",
        "--card",
        work / "signed.json",
    )
    assert result.returncode == 1
    assert "names card" in one_error_line(result)


def test_a_co_signed_card_has_the_same_id(world: dict[str, Any], tmp_path: Path) -> None:
    work = world["work"]
    ok("key", "generate", tmp_path / "aud.key")
    ok("card", "sign", work / "signed.json", "--key", tmp_path / "aud.key", "-o", tmp_path / "co")
    assert (tmp_path / "co").read_bytes() != (work / "signed.json").read_bytes()
    args = ("log", "verify", work / "card.tlog-proof", "--trust", work / "trust.json")
    ok(*args, "--card", tmp_path / "co")


@pytest.mark.parametrize("position", ["extra", "proof", "index", "checkpoint", "signature"])
def test_a_damaged_receipt_does_not_verify(
    world: dict[str, Any], tmp_path: Path, position: str
) -> None:
    text = (world["work"] / "card.tlog-proof").read_bytes()
    lines = text.split(b"\n")
    target = {
        "extra": 1,
        "index": 2,
        "proof": 3,
        "checkpoint": lines.index(b"", 3) + 3,  # the root hash line
        "signature": len(lines) - 2,
    }[position]
    line = bytearray(lines[target])
    line[-6] = ord("A") if line[-6] != ord("A") else ord("B")
    lines[target] = bytes(line)
    (tmp_path / "r").write_bytes(b"\n".join(lines))
    result = run_cli("log", "verify", tmp_path / "r", "--trust", world["work"] / "trust.json")
    assert result.returncode == 1, result.stderr
    assert one_error_line(result).startswith("error: receipt does not verify")


def test_a_receipt_from_another_log_key_does_not_verify(
    world: dict[str, Any], tmp_path: Path
) -> None:
    ok("key", "generate", tmp_path / "k")
    ok(
        "trust",
        "add",
        tmp_path / "t.json",
        tmp_path / "k.pub",
        "--name",
        ORIGIN,
        "--role",
        "transparency-log",
    )
    result = run_cli(
        "log", "verify", world["work"] / "card.tlog-proof", "--trust", tmp_path / "t.json"
    )
    assert result.returncode == 1
    assert "not signed by a trusted key" in one_error_line(result)


def test_verify_input_errors(world: dict[str, Any], tmp_path: Path) -> None:
    work = world["work"]
    receipt = ("log", "verify", work / "card.tlog-proof")
    missing = run_cli("log", "verify", tmp_path / "nope", "--trust", work / "trust.json")
    assert missing.returncode == 2 and "no such file" in one_error_line(missing)
    no_card = run_cli(*receipt, "--trust", work / "trust.json", "--card", tmp_path / "nope")
    assert no_card.returncode == 2
    not_envelope = run_cli(*receipt, "--trust", work / "trust.json", "--card", work / "card.json")
    assert not_envelope.returncode == 2
    no_log_key = run_cli(*receipt, "--trust", work / "cards.json")
    assert no_log_key.returncode == 2
    assert "no key is trusted for the role 'transparency-log'" in one_error_line(no_log_key)


# --- log monitor --------------------------------------------------------------------------------


@pytest.fixture
def site(world: dict[str, Any], tmp_path: Path) -> Iterator[tuple[FaultyServer, Path, LogWriter]]:
    """A copy of the world's log, served over HTTP, with a writer to grow it."""
    root = tmp_path / "site"
    shutil.copytree(world["work"] / "site", root)
    server, thread = serve(root)
    writer = LogWriter(DirectoryTileStore(root / "log"), world["key"], origin=ORIGIN)
    try:
        yield server, root, writer
    finally:
        shutdown(server, thread)


def monitor(world: dict[str, Any], url: str, state: Path, *extra: str) -> Any:
    trust = world["work"] / "trust.json"
    return run_cli("log", "monitor", url, "--trust", trust, "--state", state, *extra)


def test_monitor_reads_new_registrations_once(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    server, _, writer = site
    state = tmp_path / "state.json"
    first = monitor(world, server.url, state)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == ["#0", "#1", "#2", "#3", "#4"]
    assert world["card_entry"].name in lines[3]
    assert "checkpoint of 5 entries verified; 5 new registration(s)" in lines[-1]
    assert json.loads(state.read_text())["checkpoint"].startswith(f"{ORIGIN}\n5\n")

    again = monitor(world, server.url, state)
    assert again.returncode == 0
    assert again.stdout.splitlines() == [
        f"log {ORIGIN} at {server.url}: checkpoint of 5 entries verified, consistent with 5"
        " verified before; 0 new registration(s)"
    ]

    writer.append([entry(i) for i in range(10, 310)])
    grown = monitor(world, server.url, state, "--json")
    assert grown.returncode == 0, grown.stderr
    report = json.loads(grown.stdout)
    assert report["ok"] and report["stateWritten"]
    assert report["previous"]["size"] == 5 and report["checkpoint"]["size"] == 305
    assert [r["index"] for r in report["registrations"]] == list(range(5, 305))
    assert report["registrations"][0]["version"] == "10.0"


def _fork(world: dict[str, Any], tmp_path: Path, entries: list[bytes]) -> Path:
    """The same log key, a fresh store: the registry restarted on another database."""
    root = tmp_path / "fork"
    writer = LogWriter(DirectoryTileStore(root / "log"), world["key"], origin=ORIGIN)
    writer.create()
    if entries:
        writer.append(entries)
    return root


def _empty_of_another_root(world: dict[str, Any], directory: Path) -> Path:
    """A log of 0 entries whose checkpoint, signed by the log key, has a root that is not
    SHA-256 of nothing (a tree's own check refuses it, without the evidence of a split view)."""
    root = directory / "other"
    (root / "log").mkdir(parents=True)
    checkpoint = Checkpoint(ORIGIN, 0, hashlib.sha256(b"not empty").digest())
    (root / "log" / "checkpoint").write_bytes(
        checkpoint.sign([NoteSigner.ed25519(ORIGIN, world["key"])])
    )
    return root


@pytest.mark.parametrize(
    ("start", "count", "reason"),
    [
        (5, 9, "the tree of 9 entries does not extend the tree of 5"),
        (5, 5, "two different trees of 5 entries"),
        (5, 2, "the log's tree shrank from 5 to 2 entries"),
        (5, None, "the log's tree shrank from 5 to 0 entries"),
        (0, None, "two different trees of 0 entries"),
    ],
)
def test_monitor_detects_a_split_view(
    world: dict[str, Any],
    site: tuple[FaultyServer, Path, LogWriter],
    tmp_path: Path,
    start: int,
    count: int | None,
    reason: str,
) -> None:
    """The log key signs a checkpoint the one verified before (of ``start`` entries) cannot
    become: another log of ``count`` entries, or (None) an empty tree of another root."""
    server, root, _ = site
    if start == 0:
        server.root = _fork(world, tmp_path / "empty", [])
    state = tmp_path / "state.json"
    assert monitor(world, server.url, state).returncode == 0
    before = state.read_bytes()
    previous = (server.root / "log" / "checkpoint").read_bytes()
    assert f"\n{start}\n" in previous.decode()
    if count is None:
        server.root = _empty_of_another_root(world, tmp_path)
    else:
        server.root = _fork(world, tmp_path, [entry(100 + i) for i in range(count)])
    result = monitor(world, server.url, state)
    assert result.returncode == 1
    assert reason in one_error_line(result) and "split view" in one_error_line(result)
    current = (server.root / "log" / "checkpoint").read_bytes()
    assert previous.decode() in result.stdout and current.decode() in result.stdout
    assert state.read_bytes() == before
    # The evidence holds: two checkpoints, both signed by the trusted log key.
    as_json = json.loads(monitor(world, server.url, state, "--json").stdout)
    assert as_json["ok"] is False and as_json["stateWritten"] is False
    assert as_json["splitView"]["previous"] == previous.decode()
    assert as_json["splitView"]["current"] == current.decode()


def test_monitor_accepts_a_fork_that_is_a_true_extension(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    """Control for the test above: the same entries replayed into a new store are consistent."""
    server, root, _ = site
    state = tmp_path / "state.json"
    assert monitor(world, server.url, state).returncode == 0
    served = DirectoryTileStore(root / "log")
    from provenance.tlog import TiledTree

    checkpoint = LogWriter(served, world["key"], origin=ORIGIN).checkpoint().checkpoint
    same = [e for _, e in TiledTree(checkpoint.size, served).entries(0, checkpoint.size)]
    server.root = _fork(world, tmp_path, [*same, entry(200)])
    result = monitor(world, server.url, state)
    assert result.returncode == 0, result.stderr
    assert "1 new registration(s)" in result.stdout


def test_monitor_detects_two_cards_under_one_name_and_version(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    server, _, writer = site
    state = tmp_path / "state.json"
    assert monitor(world, server.url, state).returncode == 0
    before = state.read_bytes()
    writer.append(
        [entry(50, name="atlas", version="1"), entry(51), entry(52, name="atlas", version="1")]
    )
    result = monitor(world, server.url, state, "--json")
    assert result.returncode == 1
    assert "different cards under one (publisher, name, version)" in one_error_line(result)
    assert state.read_bytes() == before
    report = json.loads(result.stdout)
    (conflict,) = report["conflicts"]
    assert (conflict["name"], conflict["version"], conflict["publisher"]) == (
        "atlas",
        "1",
        PUBLISHER,
    )
    assert [item["index"] for item in conflict["entries"]] == [5, 7]
    # Each piece of evidence is a receipt anyone can check offline.
    for item in conflict["entries"]:
        path = tmp_path / f"evidence-{item['index']}.tlog-proof"
        path.write_text(item["receipt"])
        checked = ok("log", "verify", path, "--trust", world["work"] / "trust.json", "--json")
        assert json.loads(checked)["entry"]["card"] == item["card"]


def test_monitor_remembers_cards_across_runs(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    server, _, writer = site
    state = tmp_path / "state.json"
    assert monitor(world, server.url, state).returncode == 0
    writer.append([entry(60, name="atlas", version="2")])
    assert monitor(world, server.url, state).returncode == 0
    writer.append([entry(61, name="atlas", version="2")])  # another card under atlas 2
    result = monitor(world, server.url, state)
    assert result.returncode == 1
    assert "#5" in result.stdout and "#6" in result.stdout


def test_monitor_refuses_tiles_that_do_not_match_the_checkpoint(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    server, _, _ = site
    state = tmp_path / "state.json"

    def flip(data: bytes) -> bytes:
        return bytes([data[0] ^ 1]) + data[1:]

    server.faults["/log/tile/0/000.p/5"] = transform(flip)
    result = monitor(world, server.url, state)
    assert result.returncode == 1
    message = one_error_line(result)
    assert "do not hash to the checkpoint's root" in message and "split view" not in message
    assert not state.exists()


def test_monitor_refuses_entries_that_do_not_match_their_leaves(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    server, _, _ = site

    def swap(data: bytes) -> bytes:
        return data.replace(b'"version":"1.0"', b'"version":"9.0"')

    server.faults["/log/tile/entries/000.p/5"] = transform(swap)
    result = monitor(world, server.url, tmp_path / "state.json")
    assert result.returncode == 1
    assert "does not match its leaf hash" in one_error_line(result)


def test_monitor_refuses_an_untrusted_checkpoint(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    server, _, _ = site
    stranger = LogWriter(
        DirectoryTileStore(tmp_path / "s" / "log"), PrivateKey.generate(), origin=ORIGIN
    )
    stranger.create()
    server.faults["/log/checkpoint"] = replace_with(stranger.checkpoint().note)
    result = monitor(world, server.url, tmp_path / "state.json")
    assert result.returncode == 1
    assert "not signed by a trusted key" in one_error_line(result)


def test_monitor_refuses_a_non_card_entry(world: dict[str, Any], tmp_path: Path) -> None:
    writer = LogWriter(DirectoryTileStore(tmp_path / "site" / "log"), world["key"], origin=ORIGIN)
    writer.create()
    writer.append([entry(1), b'{"type":"something-else"}'])
    server, thread = serve(tmp_path / "site")
    try:
        result = monitor(world, server.url, tmp_path / "state.json")
    finally:
        shutdown(server, thread)
    assert result.returncode == 1
    assert "entry 1" in one_error_line(result) and "not a provenance.card/v1" in result.stderr


def test_monitor_network_failures_exit_3(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    server, _, _ = site
    state = tmp_path / "state.json"
    missing = monitor(world, f"{server.url}/nowhere", state)
    assert missing.returncode == 3 and "HTTP 404" in one_error_line(missing)

    def elsewhere(handler: Any) -> None:
        handler.send_body(b"", status=302, headers={"Location": "http://127.0.0.2:1/log/x"})

    server.faults["/log/checkpoint"] = elsewhere
    redirected = monitor(world, server.url, state)
    assert redirected.returncode == 3
    assert "another origin" in one_error_line(redirected)
    server.faults["/log/checkpoint"] = replace_with(b"x" * (1024 * 1024 + 1))
    too_big = monitor(world, server.url, state)
    assert too_big.returncode == 3 and "limit" in one_error_line(too_big)
    assert not state.exists()


def test_monitor_input_errors(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    server, _, _ = site
    plain = monitor(world, "http://example.org", tmp_path / "s.json")
    assert plain.returncode == 2 and "https://" in one_error_line(plain)
    (tmp_path / "bad.json").write_text("{")
    assert monitor(world, server.url, tmp_path / "bad.json").returncode == 2
    # A state file of another log (another origin) is refused, not overwritten.
    other = tmp_path / "other"
    key = PrivateKey.generate()
    other.mkdir()
    write_key_pair(key, other / "k")
    writer = LogWriter(DirectoryTileStore(other / "site" / "log"), key, origin="other.example/log")
    writer.create()
    ok(
        "trust",
        "add",
        other / "t.json",
        other / "k.pub",
        "--name",
        "other.example/log",
        "--role",
        "transparency-log",
    )
    trust = json.loads((world["work"] / "trust.json").read_text())
    trust["keys"] += json.loads((other / "t.json").read_text())["keys"]
    (other / "both.json").write_text(json.dumps(trust))
    other_server, thread = serve(other / "site")
    try:
        state = tmp_path / "state.json"
        args = ("log", "monitor", "--trust", other / "both.json", "--state", state)
        first = run_cli(*args[:2], other_server.url, *args[2:])
        assert first.returncode == 0, first.stderr
        saved = state.read_bytes()
        wrong = run_cli(*args[:2], server.url, *args[2:])
        assert wrong.returncode == 2 and "is the state of the log" in one_error_line(wrong)
        assert state.read_bytes() == saved
    finally:
        shutdown(other_server, thread)


def test_monitor_refuses_an_edited_state(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    server, _, _ = site
    state = tmp_path / "state.json"
    assert monitor(world, server.url, state).returncode == 0
    document = json.loads(state.read_text())
    document["checkpoint"] = document["checkpoint"].replace(f"{ORIGIN}\n5\n", f"{ORIGIN}\n4\n")
    state.write_text(json.dumps(document))
    result = monitor(world, server.url, state)
    assert result.returncode == 1
    assert "no longer verifies" in one_error_line(result)


def test_receipts_written_by_the_writer_verify_with_the_cli(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    _, _, writer = site
    appended = writer.append([entry(i) for i in range(70, 75)])
    path = tmp_path / "r.tlog-proof"
    path.write_bytes(appended.receipts[-1].to_bytes())
    out = json.loads(ok("log", "verify", path, "--trust", world["work"] / "trust.json", "--json"))
    assert out["index"] == 9 and out["checkpoint"]["size"] == 10
    parsed = Receipt.parse(read_bytes(path, limit=1 << 20), what="r")
    assert parsed.index == 9


def test_monitor_reads_gzip_encoded_bundles(
    world: dict[str, Any], site: tuple[FaultyServer, Path, LogWriter], tmp_path: Path
) -> None:
    """tlog-tiles lets a log gzip entry bundles unasked; the size cap counts decoded bytes."""
    server, _, _ = site

    def gzipped(handler: Any) -> None:
        body = gzip.compress(handler.original())
        handler.send_body(body, headers={"Content-Encoding": "gzip"})

    server.faults["/log/tile/entries/000.p/5"] = gzipped
    result = monitor(world, server.url, tmp_path / "state.json")
    assert result.returncode == 0, result.stderr
    assert "5 new registration(s)" in result.stdout
