"""The registry end to end, on SQLite and on PostgreSQL: ``registry serve`` in a subprocess on
127.0.0.1, driven through the CLI (``registry push``, ``registry lookup``, ``log verify``, ``log
monitor``) and raw HTTP.

Admission (signature, manifest against the card, its order, the sidecar rule, 409, idempotent
re-push, nothing stored on failure), the exact bytes served back, lookups and range queries, and
the log served from SQL tiles. Limits and bad input are in test_registry_limits.py.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provenance.keys import load_public_key
from provenance.signednote import NoteVerifier, verify_checkpoint
from tests.conftest import SAMPLES, one_error_line, run_cli
from tests.registry_support import (
    ORIGIN,
    Card,
    Keys,
    RegistryServer,
    get_json,
    http,
    make_card,
    make_keys,
    ok,
    post_json,
    push_raw,
    sample_data,
)

pytestmark = pytest.mark.timeout(300)

CHANSON = (
    "Au café de la gare, l'été dernier,\nChloé écrivit une chanson :\n"
    "« Où êtes-vous, mes amis ? »\nElle la chantait à l'aube, près du théâtre.\n"
)


@dataclass
class World:
    work: Path
    keys: Keys
    example: Card
    web: Card


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """Keys, and two real signed cards: the samples, and a web crawl holding story I again."""
    work = tmp_path_factory.mktemp("registry")
    keys = make_keys(work / "keys")
    example = make_card(keys, sample_data(work), "example", spec=SAMPLES / "card-spec.yaml")
    pages = work / "web" / "pages"
    pages.mkdir(parents=True)
    shutil.copy(SAMPLES / "data/books/01-a-scandal-in-bohemia.txt", pages / "scandal.txt")
    (pages / "chanson.txt").write_text(CHANSON, encoding="utf-8")
    web = make_card(keys, work / "web", "classic-fiction-web", version="2.1.0")
    return World(work, keys, example, web)


def _checkpoint(url: str, keys: Keys) -> Any:
    status, _, body = http("GET", f"{url}/log/checkpoint")
    assert status == 200
    verifier = NoteVerifier.ed25519(ORIGIN, load_public_key(Path(f"{keys.log_key}.pub")))
    return verify_checkpoint(body, [verifier], what="checkpoint").checkpoint


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def registry(
    request: pytest.FixtureRequest, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path_factory.mktemp('db') / 'registry.db'}"
    else:
        database = request.getfixturevalue("pg_cluster").database("registry")
    server = RegistryServer(
        ["--trust", str(world.keys.cards_trust), "--log-key", str(world.keys.log_key)]
        + ["--db", database, "--lookup-rate", "0"]
    )
    with server:
        server.initial = _checkpoint(server.url, world.keys)  # type: ignore[attr-defined]
        yield server


def _push(card: Card, registry: RegistryServer, world: World, *extra: str | Path) -> Any:
    result = run_cli(*card.push_args(registry.url, world.keys.trust), *extra, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _state(registry: RegistryServer, world: World) -> tuple[int, list[str]]:
    """What is stored: the log's size and the registered card ids."""
    cards = get_json(f"{registry.url}/v1/cards")["cards"]
    return _checkpoint(registry.url, world.keys).size, [card["id"] for card in cards]


# --- the log before and after pushes -------------------------------------------------------------


def test_a_size_0_checkpoint_is_served_before_the_first_push(
    registry: RegistryServer, world: World
) -> None:
    initial = registry.initial  # type: ignore[attr-defined]
    assert initial.size == 0 and initial.origin == ORIGIN
    assert initial.root == hashlib.sha256(b"").digest()


def test_push_writes_a_receipt_that_verifies_and_the_exact_bytes_come_back(
    registry: RegistryServer, world: World, tmp_path: Path
) -> None:
    size, _ = _state(registry, world)
    receipt = tmp_path / "example.tlog-proof"
    answer = _push(world.example, registry, world, "-o", receipt)
    assert answer["created"] is True and answer["receiptPath"] == str(receipt)
    card = answer["card"]
    assert card["id"] == world.example.id and card["logIndex"] == size
    assert (card["name"], card["version"], card["entries"]) == ("example-corpus", "1.0.0", 19)
    assert get_json(f"{registry.url}/v1/cards/{card['id']}")["fingerprints"] is True
    assert _checkpoint(registry.url, world.keys).size == size + 1
    shown = ok(
        "log", "verify", receipt, "--trust", world.keys.trust, "--card", world.example.signed
    )
    assert f"verified: entry {size} of log {ORIGIN}" in shown
    # The exact bytes pushed, and the same receipt, are served back.
    base = f"{registry.url}/v1/cards/{world.example.id}"
    for part, path in [
        ("envelope", world.example.signed),
        ("manifest", world.example.manifest),
        ("fingerprints", world.example.sidecar),
    ]:
        assert path is not None
        status, headers, body = http("GET", f"{base}/{part}")
        assert status == 200 and body == path.read_bytes(), part
        assert headers["etag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    document = get_json(base)
    assert document["receipt"].encode() == receipt.read_bytes()
    assert document["logIndex"] == size
    # The web card, pushed next, is listed first (newest first).
    _push(world.web, registry, world)
    listed = get_json(f"{registry.url}/v1/cards")["cards"]
    assert [c["id"] for c in listed[:2]] == [world.web.id, world.example.id]
    assert "receipt" not in listed[0] and listed[0]["registered"].endswith("Z")


def test_pushing_again_is_idempotent_even_co_signed(
    registry: RegistryServer, world: World, tmp_path: Path
) -> None:
    first = _push(world.example, registry, world)
    size, ids = _state(registry, world)
    again = _push(world.example, registry, world)
    assert again["created"] is False and again["card"] == first["card"]
    ok("key", "generate", tmp_path / "auditor.key")
    cosigned = tmp_path / "cosigned.json"
    ok("card", "sign", world.example.signed, "--key", tmp_path / "auditor.key", "-o", cosigned)
    assert cosigned.read_bytes() != world.example.signed.read_bytes()
    card = Card(cosigned, world.example.manifest, world.example.sidecar)
    assert card.id == world.example.id  # co-signing does not change the statement
    result = run_cli(*card.push_args(registry.url, world.keys.trust))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("already registered: example-corpus 1.0.0 as entry")
    assert _state(registry, world) == (size, ids)
    # The envelope served is still the first one pushed.
    status, _, body = http("GET", f"{registry.url}/v1/cards/{card.id}/envelope")
    assert status == 200 and body == world.example.signed.read_bytes()


# --- refusals: nothing is stored -----------------------------------------------------------------


def test_another_card_under_one_publisher_name_and_version_is_refused_409(
    registry: RegistryServer, world: World
) -> None:
    _push(world.example, registry, world)
    before = _state(registry, world)
    other = world.work / "other-data"
    (other / "books").mkdir(parents=True, exist_ok=True)
    (other / "books" / "new.txt").write_text("a new text, released under the old version\n")
    clash = make_card(world.keys, other, "clash", spec=SAMPLES / "card-spec.yaml")
    result = run_cli(*clash.push_args(registry.url, world.keys.trust))
    assert result.returncode == 1
    line = one_error_line(result)
    assert "HTTP 409" in line and "a re-release needs a new version" in line
    assert _state(registry, world) == before
    digest = hashlib.sha256((other / "books" / "new.txt").read_bytes()).hexdigest()
    status, answer = post_json(f"{registry.url}/v1/lookup", {"sha256": [digest]})
    assert status == 200 and answer["results"][0]["matches"] == []


def test_an_untrusted_signer_or_an_unsigned_card_is_refused_403(
    registry: RegistryServer, world: World, tmp_path: Path
) -> None:
    before = _state(registry, world)
    ok("key", "generate", tmp_path / "stranger.key")
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("a text\n")
    stranger = make_card(world.keys, data, "stranger", key=tmp_path / "stranger.key")
    result = run_cli(*stranger.push_args(registry.url, world.keys.trust))
    assert result.returncode == 1
    assert "HTTP 403" in one_error_line(result)
    unsigned = stranger.signed.parent / "card.json"
    status, answer = push_raw(
        registry.url,
        [("card", unsigned.read_bytes()), ("manifest", stranger.manifest.read_bytes())],
    )
    assert status == 403 and "not signed" in answer["error"]
    assert _state(registry, world) == before


def test_a_manifest_that_is_not_the_cards_is_refused_422(
    registry: RegistryServer, world: World
) -> None:
    before = _state(registry, world)
    fresh = make_card(world.keys, world.work / "web", "fresh-web", version="9")
    swapped = Card(fresh.signed, world.example.manifest, None)
    status, answer = push_raw(registry.url, swapped.parts())
    # Without the sidecar the card commits to: refused for that first.
    assert status == 422 and "fingerprints" in answer["error"]
    parts = [*swapped.parts(), ("fingerprints", fresh.sidecar.read_bytes())]  # type: ignore[union-attr]
    status, answer = push_raw(registry.url, parts)
    assert status == 422 and "not the one the card commits to" in answer["error"]
    # A manifest cut short: one line fewer.
    lines = fresh.manifest.read_bytes().splitlines(keepends=True)
    parts = [("card", fresh.signed.read_bytes()), ("manifest", b"".join(lines[:-1]))]
    parts.append(("fingerprints", fresh.sidecar.read_bytes()))  # type: ignore[union-attr]
    status, answer = push_raw(registry.url, parts)
    assert status == 422 and "manifest" in answer["error"]
    # A manifest that is not the card's is refused on its digest as received, before a line of
    # it is read (and before the write lock that other pushes wait for), not for its first bad
    # line.
    bogus = b"\xff" * 100_000
    parts = [("card", fresh.signed.read_bytes()), ("manifest", bogus)]
    parts.append(("fingerprints", fresh.sidecar.read_bytes()))  # type: ignore[union-attr]
    status, answer = push_raw(registry.url, parts)
    assert status == 422
    committed = hashlib.sha256(fresh.manifest.read_bytes()).hexdigest()
    assert answer["error"].endswith(
        f"sha256 {hashlib.sha256(bogus).hexdigest()}, card says {committed}"
    )
    assert _state(registry, world) == before
    # Through the CLI: exit 1, one line.
    result = run_cli(
        "registry", "push", fresh.signed, "--manifest", world.example.manifest,
        "--fingerprints", fresh.sidecar, "--registry", registry.url, "--trust", world.keys.trust,
    )  # fmt: skip
    assert result.returncode == 1 and "HTTP 422" in one_error_line(result)
    assert _state(registry, world) == before
    # The genuine push of the same card then succeeds.
    assert _push(fresh, registry, world)["created"] is True


@pytest.mark.parametrize(("field", "value"), [("name", "name\x00with-nul"), ("version", "1\n2")])
def test_a_name_or_version_with_a_control_character_is_refused_422(
    registry: RegistryServer, world: World, tmp_path: Path, field: str, value: str
) -> None:
    """Alike on SQLite and PostgreSQL (which cannot store NUL in text: before, 503 on every
    push there, 201 on SQLite): 422, nothing stored."""
    base = make_card(world.keys, world.work / "web", f"control-{field}", version="7")
    statement = json.loads((base.signed.parent / "card.json").read_text())
    statement["predicate"][field] = value
    edited = tmp_path / "card.json"
    edited.write_text(json.dumps(statement))
    signed = tmp_path / "signed.json"
    ok("card", "sign", edited, "--key", world.keys.dev_key, "-o", signed)
    before = _state(registry, world)
    parts = [("card", signed.read_bytes()), ("manifest", base.manifest.read_bytes())]
    parts.append(("fingerprints", base.sidecar.read_bytes()))  # type: ignore[union-attr]
    status, answer = push_raw(registry.url, parts)
    assert status == 422 and f"the card's {field}" in answer["error"], answer
    assert "control character" in answer["error"]
    assert _state(registry, world) == before


def test_the_fingerprint_sidecar_is_taken_only_if_the_card_commits_to_it(
    registry: RegistryServer, world: World, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "poem.txt").write_text("Roses are red,\nthe registry is strict.\n" * 20)
    bare = make_card(world.keys, data, "no-commitment", fingerprints=False)
    assert bare.sidecar is None
    aside = bare.signed.parent / "aside.fp"
    before = _state(registry, world)
    status, answer = push_raw(registry.url, [*bare.parts(), ("fingerprints", aside.read_bytes())])
    assert status == 422 and "commits to no fingerprint index" in answer["error"]
    committed = make_card(world.keys, data, "with-commitment")
    assert committed.sidecar is not None
    other = world.web.sidecar
    assert other is not None
    status, answer = push_raw(
        registry.url,
        [("card", committed.signed.read_bytes()), ("manifest", committed.manifest.read_bytes())]
        + [("fingerprints", other.read_bytes())],
    )
    assert status == 422 and "fingerprint index the card commits to" in answer["error"]
    assert _state(registry, world) == before
    # Without a commitment and without a sidecar: registered, with no fingerprints stored.
    card_id = _push(bare, registry, world)["card"]["id"]
    assert get_json(f"{registry.url}/v1/cards/{card_id}")["fingerprints"] is False
    status, _, _ = http("GET", f"{registry.url}/v1/cards/{bare.id}/fingerprints")
    assert status == 404


# --- lookups and ranges --------------------------------------------------------------------------


def test_lookup_answers_every_digest_in_order_with_its_kind(
    registry: RegistryServer, world: World
) -> None:
    _push(world.example, registry, world)
    _push(world.web, registry, world)
    story = (SAMPLES / "data/books/01-a-scandal-in-bohemia.txt").read_bytes()
    entries = [json.loads(line) for line in world.web.manifest.read_text().splitlines()]
    chanson = next(e for e in entries if e["id"] == "pages/chanson.txt")
    unknown = "0" * 64
    status, answer = post_json(
        f"{registry.url}/v1/lookup",
        {
            "sha256": [unknown, hashlib.sha256(story).hexdigest()],
            "textSha256": [chanson["textSha256"]],
        },
    )
    assert status == 200
    results = answer["results"]
    assert [(r["digest"], r["kind"]) for r in results] == [
        (unknown, "sha256"),
        (hashlib.sha256(story).hexdigest(), "sha256"),
        (chanson["textSha256"], "textSha256"),
    ]
    assert results[0]["matches"] == []
    found = {(m["card"], m["entry"]) for m in results[1]["matches"]}
    assert found >= {
        (world.example.id, "books/01-a-scandal-in-bohemia.txt"),
        (world.web.id, "pages/scandal.txt"),
    }
    match = next(m for m in results[1]["matches"] if m["card"] == world.web.id)
    assert (match["name"], match["version"]) == ("classic-fiction-web", "2.1.0")
    assert results[2]["matches"][0]["entry"] == "pages/chanson.txt"
    assert answer["fingerprints"] == []


def test_range_gives_every_full_digest_under_a_prefix(
    registry: RegistryServer, world: World
) -> None:
    _push(world.example, registry, world)
    entries = [json.loads(line) for line in world.example.manifest.read_text().splitlines()]
    for entry in entries[:5]:
        prefix = entry["sha256"][:5]
        answer = get_json(f"{registry.url}/v1/range/{prefix}")
        assert answer["prefix"] == prefix
        assert all(item["digest"].startswith(prefix) for item in answer["digests"])
        item = next(
            i for i in answer["digests"] if i["digest"] == entry["sha256"] and i["kind"] == "sha256"
        )
        assert {"card": world.example.id, "entry": entry["id"]}.items() <= item["matches"][
            0
        ].items()
    for bad in ["ABCDE", "abcd", "abcdef", "abcdg"]:
        status, _, body = http("GET", f"{registry.url}/v1/range/{bad}")
        assert status in (400, 404) and "error" in json.loads(body), bad
    status, _, _ = http("GET", f"{registry.url}/v1/range/abcde")
    assert status == 200


def _edited(text: str) -> str:
    """An edited copy: every fifth sentence reworded."""
    sentences = text.split(". ")
    return ". ".join(
        s if i % 5 else "And so the matter rested for a while" for i, s in enumerate(sentences)
    )


def test_registry_lookup_gives_the_statuses_of_lookup_across_cards(
    registry: RegistryServer, world: World, tmp_path: Path
) -> None:
    from PIL import Image

    _push(world.example, registry, world)
    _push(world.web, registry, world)
    works = tmp_path / "works"
    works.mkdir()
    books = SAMPLES / "data" / "books"
    shutil.copy(books / "01-a-scandal-in-bohemia.txt", works / "scandal.txt")
    identity = (books / "03-a-case-of-identity.txt").read_text("utf-8")
    (works / "identity-crlf.txt").write_bytes(identity.upper().replace("\n", "\r\n").encode())
    pips = (books / "05-the-five-orange-pips.txt").read_text("utf-8")
    (works / "pips-edited.txt").write_text(_edited(pips), encoding="utf-8")
    for name in (
        "11-the-adventure-of-the-beryl-coronet.txt",
        "12-the-adventure-of-the-copper-beeches.txt",
    ):
        shutil.copy(SAMPLES / "works" / name, works / name)
    with Image.open(SAMPLES / "data/images/camera.png") as image:
        image.convert("L").point(lambda v: min(255, v + 6)).save(works / "camera-brighter.png")
    result = run_cli(
        "registry",
        "lookup",
        works,
        "--registry",
        registry.url,
        "--trust",
        world.keys.trust,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    answer = {Path(r["work"]).name: r for r in json.loads(result.stdout)["results"]}
    # The same statuses as 'provenance lookup' against each registered card's manifest (and
    # sidecar), as the registry serves them, strongest kept.
    rank = ["exact", "normalized", "near-duplicate", "contained", "absent"]
    expected: dict[str, str] = {}
    for card in get_json(f"{registry.url}/v1/cards")["cards"]:
        folder = tmp_path / card["id"]
        folder.mkdir()
        manifest = folder / "manifest.jsonl"
        manifest.write_bytes(http("GET", f"{registry.url}/v1/cards/{card['id']}/manifest")[2])
        sidecar: list[str | Path] = []
        if card["fingerprints"]:
            sidecar = ["--fingerprints", folder / "fp"]
            (folder / "fp").write_bytes(
                http("GET", f"{registry.url}/v1/cards/{card['id']}/fingerprints")[2]
            )
        local = run_cli("lookup", works, "--manifest", manifest, *sidecar, "--json")
        assert local.returncode == 0, local.stderr
        for item in json.loads(local.stdout)["results"]:
            name = Path(item["work"]).name
            best = expected.get(name, "absent")
            expected[name] = min(best, item["status"], key=rank.index)
    assert {name: r["status"] for name, r in answer.items()} == expected
    assert set(expected.values()) == set(rank)  # every status is exercised
    scandal = {(m["card"], m["entry"], m["status"]) for m in answer["scandal.txt"]["matches"]}
    assert scandal >= {
        (world.example.id, "books/01-a-scandal-in-bohemia.txt", "exact"),
        (world.web.id, "pages/scandal.txt", "exact"),
    }
    assert all(m["logIndex"] >= 0 for r in answer.values() for m in r["matches"])
    text = run_cli("registry", "lookup", works / "scandal.txt", "--registry", registry.url)
    assert text.returncode == 2 and "--trust" in text.stderr  # the log key is required
    shown = ok("registry", "lookup", works / "pips-edited.txt", "--registry", registry.url,
               "--trust", world.keys.trust)  # fmt: skip
    assert shown.startswith("near-duplicate  ") and "in example-corpus 1.0.0 (card " in shown


def test_an_empty_datasets_card_keeps_its_empty_manifest_and_lookups_work(
    registry: RegistryServer, world: World, tmp_path: Path
) -> None:
    """A card of no entries (its manifest 0 bytes) is registered with that manifest stored: it
    is served back (200, no bytes), and lookups with fingerprints, which read every card's
    manifest, still answer (before the fix: 404 for the manifest, 503 for every such lookup)."""
    empty = tmp_path / "nothing"
    empty.mkdir()
    card = make_card(world.keys, empty, "empty-corpus")
    assert card.manifest.read_bytes() == b""
    answer = _push(card, registry, world)
    assert answer["card"]["entries"] == 0
    status, headers, body = http("GET", f"{registry.url}/v1/cards/{card.id}/manifest")
    assert (status, body) == (200, b"")
    assert headers["etag"] == f'"{hashlib.sha256(b"").hexdigest()}"'
    _push(world.example, registry, world)
    assert "exact" in _look_up_a_story(registry, world, tmp_path)


def _look_up_a_story(registry: RegistryServer, world: World, directory: Path) -> str:
    """``registry lookup`` of a story the example card holds (with fingerprints, which read
    every card's manifest); its output."""
    work = directory / "work.txt"
    shutil.copy(SAMPLES / "data/books/01-a-scandal-in-bohemia.txt", work)
    result = run_cli(
        "registry", "lookup", work, "--registry", registry.url, "--trust", world.keys.trust
    )
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def test_sigterm_stops_the_server_with_its_cleanup(world: World, tmp_path: Path) -> None:
    """SIGTERM, how service managers stop a server: exit 0 after the cleanup, which removes the
    fingerprint cache's temporary copies (before, uvicorn raised SIGTERM again under the default
    handler once it had shut down, and the process died before any cleanup)."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    database = f"sqlite:///{tmp_path / 'registry.db'}"
    server = RegistryServer(
        ["--trust", str(world.keys.cards_trust), "--log-key", str(world.keys.log_key)]
        + ["--db", database, "--lookup-rate", "0"],
        tmpdir=tmpdir,
    )
    with server:
        _push(world.example, server, world)
        _look_up_a_story(server, world, tmp_path)
        assert list(tmpdir.glob("provenance-registry-*"))  # the cache, in use
        assert server.process is not None
        server.process.terminate()
        assert server.process.wait(30) == 0, "".join(server.stderr)
    assert list(tmpdir.iterdir()) == []


def test_a_card_id_is_64_hex_and_an_unknown_one_is_404(registry: RegistryServer) -> None:
    status, _, body = http("GET", f"{registry.url}/v1/cards/{'a' * 64}")
    assert status == 404 and "no card" in json.loads(body)["error"]
    for bad in ["A" * 64, "a" * 63, "g" * 64]:
        status, _, body = http("GET", f"{registry.url}/v1/cards/{bad}")
        assert status == 400 and json.loads(body)["error"], bad


# --- the log, served from SQL tiles --------------------------------------------------------------


def test_log_monitor_reads_every_registration(
    registry: RegistryServer, world: World, tmp_path: Path
) -> None:
    _push(world.example, registry, world)
    state = tmp_path / "monitor.json"
    result = run_cli(
        "log", "monitor", registry.url, "--trust", world.keys.trust, "--state", state, "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    size = report["checkpoint"]["size"]
    cards = get_json(f"{registry.url}/v1/cards")["cards"]
    assert report["ok"] and report["newEntries"] == size == len(cards)
    logged = {r["card"] for r in report["registrations"]}
    assert logged == {card["id"] for card in cards}
    _push(world.web, registry, world)  # idempotent: the log does not grow
    again = json.loads(
        ok("log", "monitor", registry.url, "--trust", world.keys.trust, "--state", state, "--json")
    )
    assert again["previous"]["size"] == size and again["ok"]
    # Tiles are immutable static resources; an unknown tile is 404.
    status, headers, body = http("GET", f"{registry.url}/log/tile/entries/000.p/{size}")
    assert status == 200 and "immutable" in headers["cache-control"] and len(body) > 100
    status, _, _ = http("GET", f"{registry.url}/log/tile/0/999")
    assert status == 404
    # So is a tile whose index no database integer holds, or of thousands of digits: a JSON 404,
    # not a 500 (the database refused the first; int() the second).
    for path in ("0/x009/x223/x372/x036/x854/x775/808", "0/" + "x999/" * 1500 + "999"):
        status, headers, body = http("GET", f"{registry.url}/log/tile/{path}")
        assert status == 404 and headers["content-type"] == "application/json", path
        assert "not a tile" in json.loads(body)["error"]


def test_the_page_and_its_assets_carry_a_content_security_policy(
    registry: RegistryServer,
) -> None:
    status, headers, body = http("GET", f"{registry.url}/")
    assert status == 200 and b"Is my work in a training dataset?" in body
    policy = headers["content-security-policy"]
    assert "default-src 'none'" in policy and "'wasm-unsafe-eval'" in policy
    assert "connect-src 'self'" in policy and "http" not in policy
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, _ = http("GET", f"{registry.url}/static/app.js")
    assert status == 200 and "javascript" in headers["content-type"]
    assert "content-security-policy" in headers
    status, _, body = http("GET", f"{registry.url}/openapi.json")
    schema = json.loads(body)
    assert set(schema["paths"]) >= {"/v1/cards", "/v1/lookup", "/v1/range/{prefix}"}
