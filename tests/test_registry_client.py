"""The clients believe a registry only as far as its log key signed: a registry (the real app,
served in process) whose answers are altered on the way is caught.

- ``registry push``: a receipt that does not verify with the trusted log key, or that is for
  another card, is refused (exit 1) and not written;
- ``registry lookup``: a card named in an answer must have a receipt that verifies, and its log
  entry must carry the name, version and publishers the answer gave; its matches are computed
  again from the card's own bytes, each checked against what its log entry binds, so a match the
  registry made up, or a manifest it swapped, is caught.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provenance.keys import load_private_key
from provenance.registry.app import Settings, create_app
from provenance.registry.db import Database
from provenance.registry.server import background
from provenance.trust import TrustStore
from tests.conftest import one_error_line, run_cli
from tests.registry_support import Card, Keys, http, make_card, make_keys, ok, sample_data

pytestmark = pytest.mark.timeout(300)

Rewrite = Callable[[str, bytes], bytes]


class _Rewriting:
    """ASGI middleware: passes each answer body through ``rewrite(path, body)`` when set."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.rewrite: Rewrite | None = None
        self.status: int | None = None
        """When set (with ``rewrite``), every rewritten answer gets this status instead."""
        self.headers: list[tuple[bytes, bytes]] = []
        """Added to every rewritten answer."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        rewrite = self.rewrite
        if scope["type"] != "http" or rewrite is None:
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        body = bytearray()

        async def collect(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body"):
                    new = rewrite(scope["path"], bytes(body))
                    headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
                    headers.append((b"content-length", str(len(new)).encode()))
                    # Read now: ``rewrite`` may have set them for this answer.
                    answer = {**start, "headers": headers + self.headers}
                    if self.status is not None:
                        answer["status"] = self.status
                    await send(answer)
                    await send({"type": "http.response.body", "body": new})

        await self.app(scope, receive, collect)


@dataclass
class World:
    keys: Keys
    example: Card
    other: Card
    url: str
    proxy: _Rewriting


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("client")
    keys = make_keys(work / "keys")
    example = make_card(keys, sample_data(work), "example")
    (work / "other").mkdir()
    (work / "other" / "a.txt").write_text("the other card's only text\n")
    other = make_card(keys, work / "other", "other")
    database = Database.open(f"sqlite:///{work / 'registry.db'}")
    store = TrustStore.from_json(keys.cards_trust.read_bytes(), what="trust")
    app = create_app(database, store, load_private_key(keys.log_key), Settings(lookup_rate=0))
    proxy = _Rewriting(app)
    try:
        with background(proxy) as url:
            ok(*other.push_args(url, keys.trust))
            yield World(keys, example, other, url, proxy)
    finally:
        app.state.search.close()
        database.close()


def test_a_receipt_for_another_card_is_refused_and_not_written(
    world: World, tmp_path: Path
) -> None:
    stored = tmp_path / "other.tlog-proof"
    ok(*world.other.push_args(world.url, world.keys.trust), "-o", stored)

    def swap(path: str, body: bytes) -> bytes:
        if path != "/v1/cards":
            return body
        document = json.loads(body)
        document["receipt"] = stored.read_text()
        return json.dumps(document).encode()

    world.proxy.rewrite = swap
    try:
        out = tmp_path / "example.tlog-proof"
        result = run_cli(*world.example.push_args(world.url, world.keys.trust), "-o", out)
    finally:
        world.proxy.rewrite = None
    assert result.returncode == 1
    line = one_error_line(result)
    assert "is not for this push" in line and "names card" in line
    assert not out.exists()


def test_a_receipt_signed_by_an_untrusted_log_key_is_refused(world: World, tmp_path: Path) -> None:
    ok("key", "generate", tmp_path / "stranger.key")
    trust = tmp_path / "trust.json"
    ok("trust", "add", trust, tmp_path / "stranger.key.pub", "--name", "localhost/provenance",
       "--role", "transparency-log")  # fmt: skip
    out = tmp_path / "r.tlog-proof"
    result = run_cli(*world.other.push_args(world.url, trust), "-o", out)
    assert result.returncode == 1 and not out.exists()
    assert "receipt" in one_error_line(result)


def test_lookup_refuses_an_answer_that_misnames_a_card(world: World, tmp_path: Path) -> None:
    work = tmp_path / "a.txt"
    work.write_text("the other card's only text\n")
    good = run_cli("registry", "lookup", work, "--registry", world.url, "--trust", world.keys.trust)
    assert good.returncode == 0 and good.stdout.startswith("exact"), good.stderr

    def rename(path: str, body: bytes) -> bytes:
        if path != "/v1/lookup":
            return body
        return body.replace(b'"name":"other"', b'"name":"a-famous-dataset"')

    result = _lookup_through(world, rename, work)
    assert result.returncode == 1
    assert "otherwise than its log entry" in one_error_line(result)


def _lookup_answer(world: World, work: Path) -> Any:
    result = run_cli(
        "registry", "lookup", work, "--registry", world.url, "--trust", world.keys.trust, "--json"
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["results"][0]


def _lookup_through(world: World, rewrite: Rewrite, work: Path) -> Any:
    """``registry lookup`` of ``work`` with the registry's answers passed through ``rewrite``
    (and the proxy's status and headers as set); the proxy is reset afterwards."""
    world.proxy.rewrite = rewrite
    try:
        return run_cli(
            "registry", "lookup", work, "--registry", world.url, "--trust", world.keys.trust
        )
    finally:
        world.proxy.rewrite, world.proxy.status, world.proxy.headers = None, None, []


def test_lookup_refuses_a_match_the_card_does_not_hold(world: World, tmp_path: Path) -> None:
    """The registry adds, to the answer for a work in no dataset, a match naming a real logged
    card and a real entry of it (its receipt verifies, its name and version are right): the
    card's own manifest does not hold the work, so the answer is refused (before the check:
    reported as exact, exit 0)."""
    genuine = tmp_path / "a.txt"
    genuine.write_text("the other card's only text\n")
    real = _lookup_answer(world, genuine)
    assert real["status"] == "exact"
    mine = tmp_path / "mine.txt"
    mine.write_text("my own poem, in no dataset at all\n")
    assert _lookup_answer(world, mine)["status"] == "absent"
    forged = {key: real["matches"][0][key] for key in ("card", "name", "version", "entry")}
    forged["publisher"] = real["matches"][0]["publisher"]

    def add_match(path: str, body: bytes) -> bytes:
        if path != "/v1/lookup":
            return body
        document = json.loads(body)
        document["results"][0]["matches"] = [forged]
        return json.dumps(document).encode()

    result = _lookup_through(world, add_match, mine)
    assert result.returncode == 1, result.stdout
    line = one_error_line(result)
    assert "as exact of entry 'a.txt'" in line and "do not match" in line


@pytest.mark.parametrize("part", ["manifest", "envelope"])
def test_lookup_refuses_a_card_file_other_than_the_logged_one(
    world: World, tmp_path: Path, part: str
) -> None:
    """The registry serves, for the card it names, a manifest or an envelope other than the
    bytes its log entry binds: refused, whatever the answer said."""
    work = tmp_path / "a.txt"
    work.write_text("the other card's only text\n")

    def swap(path: str, body: bytes) -> bytes:
        return body + b"\n" if path.endswith(f"/{part}") else body

    result = _lookup_through(world, swap, work)
    assert result.returncode == 1, result.stdout
    assert "another envelope" in one_error_line(result) or "its log entry binds" in one_error_line(
        result
    )


def test_push_reports_the_registration_as_logged_not_as_the_registry_describes_it(
    world: World, tmp_path: Path
) -> None:
    """The registry's answer misdescribes the card (name, version, publisher, id, count); the
    receipt is genuine: what push prints, and its JSON, are the verified log entry's."""

    def misdescribe(path: str, body: bytes) -> bytes:
        if path != "/v1/cards":
            return body
        document = json.loads(body)
        document.update(
            {"id": "0" * 64, "name": "a-famous-dataset", "version": "9.9.9", "entries": 123456}
        )
        document["publisher"] = ["someone-else"]
        return json.dumps(document).encode()

    world.proxy.rewrite = misdescribe
    try:
        shown = ok(*world.other.push_args(world.url, world.keys.trust))
        as_json = json.loads(ok(*world.other.push_args(world.url, world.keys.trust), "--json"))
    finally:
        world.proxy.rewrite = None
    assert "already registered: other 1.0.0 as entry" in shown
    assert "a-famous-dataset" not in shown and "9.9.9" not in shown
    card = as_json["card"]
    assert (card["id"], card["name"], card["version"]) == (world.other.id, "other", "1.0.0")
    assert card["entries"] == 1 and card["publisher"] != ["someone-else"]


def test_push_checks_where_the_receipt_goes_before_sending(world: World, tmp_path: Path) -> None:
    """A receipt path in a missing directory, or a directory: exit 2 before anything is sent
    (the card stays unregistered), not after the registration."""
    (tmp_path / "fresh").mkdir()
    (tmp_path / "fresh" / "b.txt").write_text("a text nobody has pushed\n")
    fresh = make_card(world.keys, tmp_path / "fresh", "fresh-corpus")
    for out in (tmp_path / "missing" / "r.tlog-proof", tmp_path / "fresh"):
        result = run_cli(*fresh.push_args(world.url, world.keys.trust), "-o", out)
        assert result.returncode == 2, result.stdout
        assert "directory" in one_error_line(result)
    status, _, _ = http("GET", f"{world.url}/v1/cards/{fresh.id}")
    assert status == 404


_DEEP = b'{"results": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        (_DEEP, "nesting deeper"),
        (b'{"results": [], "results": [], "fingerprints": []}', "duplicate key"),
        ("card", "without a card id"),
        ("entry", "without a card id"),
        ("score-text", "not in 0..1"),
        ("score-nan", "NaN"),
        ("score-huge", "integer literal too long"),
        ("score-out", "not in 0..1"),
    ],
)
def test_lookup_refuses_a_malformed_answer_in_one_line(
    world: World, tmp_path: Path, answer: bytes | str, complaint: str
) -> None:
    """Strict JSON (no duplicate keys, no NaN, bounded nesting) and typed matches: a hostile
    answer is exit 3 with one line, never a traceback (before: RecursionError, TypeError,
    ValueError, and NaN printed as JSON)."""
    genuine = tmp_path / "a.txt"
    genuine.write_text("the other card's only text\n")
    real = _lookup_answer(world, genuine)
    match = {k: real["matches"][0][k] for k in ("card", "name", "version", "publisher", "entry")}
    # A work long enough to have text fingerprints, so that its answer has a fingerprint part.
    work = tmp_path / "long.txt"
    work.write_text(" ".join(f"word{n} of a poem nobody pushed" for n in range(400)) + "\n")

    def hostile(path: str, body: bytes) -> bytes:
        if path != "/v1/lookup":
            return body
        if isinstance(answer, bytes):
            return answer
        document = json.loads(body)
        if answer == "card":
            document["results"][0]["matches"] = [{**match, "card": None}]
        elif answer == "entry":
            document["results"][0]["matches"] = [{**match, "entry": 7}]
        else:
            score = {
                "score-text": '"high"',
                "score-nan": "NaN",
                "score-huge": "1" + "0" * 400,
                "score-out": "2.5",
            }
            assert len(document["fingerprints"]) == 1  # the work's
            fake = json.dumps({**match, "status": "contained", "score": 0.5})
            document["fingerprints"] = ["MARK"]
            return (
                json.dumps(document)
                .replace('"MARK"', '{"matches": [' + fake.replace("0.5", score[answer]) + "]}")
                .encode()
            )
        return json.dumps(document).encode()

    result = _lookup_through(world, hostile, work)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert complaint in one_error_line(result)


@pytest.mark.parametrize(("status", "code"), [(403, 3), (409, 3), (422, 3), (408, 3), (400, 2)])
def test_a_refused_lookup_is_not_a_verdict(
    world: World, tmp_path: Path, status: int, code: int
) -> None:
    """A lookup the registry refuses says nothing about the work: 'could not answer' (3), or
    bad input (2) for 400; never the verified 'no' (1) of a refused push."""
    work = tmp_path / "a.txt"
    work.write_text("a work\n")
    world.proxy.status = status
    result = _lookup_through(
        world, lambda path, body: b'{"error": "no"}' if path == "/v1/lookup" else body, work
    )
    assert result.returncode == code, result.stderr
    assert f"HTTP {status}" in one_error_line(result)


def test_a_retry_after_that_is_not_ascii_digits_is_waited_as_one_second(
    world: World, tmp_path: Path
) -> None:
    """429 with ``Retry-After: ³`` (a digit to str.isdigit, not to int): retried after a
    second, then the answer (before: a ValueError traceback)."""
    work = tmp_path / "a.txt"
    work.write_text("the other card's only text\n")
    calls = []

    def limited(path: str, body: bytes) -> bytes:
        if path == "/v1/lookup":
            calls.append(path)
            if len(calls) == 1:
                world.proxy.status = 429
                return b'{"error": "too many lookups"}'
        world.proxy.status = None
        return body

    world.proxy.headers = [(b"retry-after", "³".encode())]
    result = _lookup_through(world, limited, work)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("exact") and len(calls) == 2


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1",
        "http://[zz]/",
        "http://127.0.0.1:abc",
        "http://127.0.0.1:99999",
        "https://a b/",
    ],
)
def test_a_registry_url_that_is_not_one_is_bad_input(
    tmp_path: Path, world: World, url: str
) -> None:
    work = tmp_path / "a.txt"
    work.write_text("a work\n")
    result = run_cli("registry", "lookup", work, "--registry", url, "--trust", world.keys.trust)
    assert result.returncode == 2, result.stderr
    assert "not a URL of a registry" in one_error_line(result)
