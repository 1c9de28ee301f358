"""The fast route of ``POST /v1/lookup`` (``lookup_route.FastLookup``) answers byte for byte
as FastAPI's route does: two apps over one database, one with the fast route and one without,
served on 127.0.0.1 and sent the same raw requests (hits and misses, both kinds, duplicates,
batches that take the in-memory index, fingerprints, bad JSON, upper-case hex, wrong lengths,
too many digests or fingerprints, content types, a chunked body, a stalled one (408), bodies
too large (413, announced and streamed), a client that goes away, the rate limit (429)), on
SQLite and PostgreSQL. Every answer's status line, headers (but ``date``) and body must be
equal, and the fast app's FastAPI route must never have been reached.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provenance.fingerprints import content_prints
from provenance.keys import load_private_key
from provenance.registry.app import Settings, create_app
from provenance.registry.db import Database
from provenance.registry.lookup_route import MAX_LOOKUP_BODY
from provenance.registry.server import background
from provenance.trust import TrustStore
from tests.registry_support import Card, Keys, make_card, make_keys, push_raw, sample_data

pytestmark = pytest.mark.timeout(300)

IDLE = 1.0
BURST = 100
"""Lookups before the rate limit refuses: more than the tests before the last one make."""
JSON = {"Content-Type": "application/json"}


@dataclass
class World:
    keys: Keys
    card: Card
    data: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    work = tmp_path_factory.mktemp("route")
    keys = make_keys(work / "keys")
    data = sample_data(work)
    return World(keys, make_card(keys, data, "route"), data)


@dataclass
class Pair:
    fast: str
    plain: str
    reached: dict[str, int]
    """How often each app's FastAPI lookup route ran."""


def _count_route(app: Any, name: str, reached: dict[str, int]) -> None:
    route = next(r for r in app.router.routes if getattr(r, "path", None) == "/v1/lookup")
    inner = route.app

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        reached[name] += 1
        await inner(scope, receive, send)

    route.app = counting


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def pair(
    request: pytest.FixtureRequest, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'registry.db'}"
    else:
        url = request.getfixturevalue("pg_cluster").database("route")
    database = Database.open(url)
    trust = TrustStore.from_json(world.keys.cards_trust.read_bytes(), what="trust")
    key = load_private_key(world.keys.log_key)
    # A stopped clock: the buckets never refill, so both apps refuse at the same request.
    settings = Settings(lookup_rate=1.0, lookup_burst=BURST, idle_timeout=IDLE)
    fast = create_app(database, trust, key, settings, monotonic=lambda: 0.0)
    plain = create_app(database, trust, key, settings, monotonic=lambda: 0.0, fast_lookup=False)
    reached = {"fast": 0, "plain": 0}
    _count_route(fast, "fast", reached)
    _count_route(plain, "plain", reached)
    try:
        with background(fast) as fast_url, background(plain) as plain_url:
            status, _ = push_raw(fast_url, world.card.parts())
            assert status == 201
            for app in (fast, plain):
                assert app.state.storage.wait_for_index(60)
            yield Pair(fast_url, plain_url, reached)
    finally:
        fast.state.search.close()
        plain.state.search.close()
        database.close()


# -- raw HTTP -------------------------------------------------------------------------------------


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _read_answer(sock: socket.socket) -> tuple[bytes, list[bytes], bytes]:
    """The status line, the header lines but ``date``, and the body of one answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in lines if line.startswith(b"content-"
                  b"length:"))  # fmt: skip
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed in the middle of the body"
        body += chunk
    return status, [line for line in lines if not line.startswith(b"date:")], body


def _request(
    body: bytes | None,
    headers: dict[str, str] | None = None,
    *,
    method: str = "POST",
    path: str = "/v1/lookup",
    chunks: int = 0,
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body is None:
        return ("\r\n".join(lines) + "\r\n\r\n").encode()
    if not chunks:
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    lines.append("Transfer-Encoding: chunked")
    size = max(1, len(body) // chunks)
    encoded = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + encoded + b"0\r\n\r\n"


def _exchange(url: str, raw: bytes) -> tuple[bytes, list[bytes], bytes]:
    with socket.create_connection(("127.0.0.1", _port(url)), timeout=60) as sock:
        sock.sendall(raw)
        return _read_answer(sock)


def _both(pair: Pair, raw: bytes) -> tuple[bytes, list[bytes], bytes]:
    fast = _exchange(pair.fast, raw)
    plain = _exchange(pair.plain, raw)
    assert fast == plain, raw[:300]
    return fast


# -- the request shapes ---------------------------------------------------------------------------


def _hex(n: int) -> str:
    return hashlib.sha256(b"not registered %d" % n).hexdigest()


def _shapes(world: World) -> list[tuple[str, bytes]]:
    """(what, raw request) pairs; every one is a lookup that takes a token of the rate limit."""
    entries = [json.loads(line) for line in world.card.manifest.read_bytes().splitlines()]
    sha = [e["sha256"] for e in entries]
    text = [e["textSha256"] for e in entries if e.get("textSha256")]
    books = sorted((world.data / "books").iterdir())
    book = books[0].read_bytes()
    edited = book.replace(b"Holmes", b"Homes").replace(b"the ", b"a ")
    part = book[len(book) // 3 : len(book) // 3 + 6000]
    prints = []
    for found in content_prints([edited, part, b"nothing like any registered work at all"]):
        image = None if found.image is None else f"{found.image:016x}"
        prints.append({"text": [f"{int(v):016x}" for v in found.text], "image": image})

    def post(document: Any, headers: dict[str, str] | None = None, chunks: int = 0) -> bytes:
        return _request(json.dumps(document).encode(), JSON if headers is None else headers,
                        chunks=chunks)  # fmt: skip

    def raw(body: bytes, headers: dict[str, str] | None = None) -> bytes:
        return _request(body, JSON if headers is None else headers)

    many = [sha[i % len(sha)] if i % 3 else _hex(i) for i in range(40)]
    return [
        ("one hit", post({"sha256": [sha[0]]})),
        ("one miss", post({"sha256": [_hex(0)]})),
        ("a text hit", post({"textSha256": [text[0]]})),
        ("a sha256 asked as text", post({"textSha256": [sha[1]]})),
        ("hits, misses, duplicates", post({"sha256": [sha[2], _hex(1), sha[2], sha[3]]})),
        ("both kinds", post({"sha256": sha[:5], "textSha256": [*text[:3], _hex(2)]})),
        ("a batch (the index)", post({"sha256": many, "textSha256": text[:20]})),
        ("1000 digests", post({"sha256": [_hex(i) for i in range(999)] + [sha[0]]})),
        ("empty object", post({})),
        ("empty lists", post({"sha256": [], "textSha256": [], "fingerprints": []})),
        ("fingerprints", post({"sha256": [sha[0]], "fingerprints": prints})),
        ("an image print only", post({"fingerprints": [{"image": "00ff00ff00ff00ff"}]})),
        ("a chunked body", post({"sha256": sha[:3]}, chunks=5)),
        (
            "a charset",
            post({"sha256": [sha[0]]}, {"Content-Type": "application/json; charset=utf-8"}),
        ),
        ("upper-case type", post({"sha256": [sha[0]]}, {"Content-Type": "Application/JSON"})),
        ("upper-case hex", post({"sha256": [sha[0].upper()]})),
        ("upper-case hex in a batch", post({"sha256": [*sha[:20], sha[0].upper()]})),
        ("63 hex", post({"sha256": [sha[0][:63]]})),
        ("65 hex", post({"sha256": [sha[0] + "0"]})),
        ("a final newline", post({"sha256": [sha[0] + "\n"]})),
        ("not hex", post({"sha256": ["g" * 64]})),
        ("a number", post({"sha256": [5]})),
        ("not a list", post({"sha256": sha[0]})),
        ("an unknown field", post({"sha256": [], "other": 1})),
        ("a list", post([sha[0]])),
        ("1001 digests", post({"sha256": [_hex(i) for i in range(1001)]})),
        (
            "1001 over both kinds",
            post(
                {
                    "sha256": [_hex(i) for i in range(600)],
                    "textSha256": [_hex(i) for i in range(401)],
                }
            ),
        ),  # fmt: skip
        ("101 fingerprint sets", post({"fingerprints": [{"image": "0" * 16}] * 101})),
        ("a bad print", post({"fingerprints": [{"text": ["xyz"]}]})),
        ("an upper-case print", post({"fingerprints": [{"text": ["ABCDEF0123456789"]}]})),
        (
            "too many prints",
            post(
                {
                    "fingerprints": [
                        {"text": [f"{i:016x}" for i in range(100_001)]},
                        {"text": [f"{i:016x}" for i in range(100_000)]},
                    ]
                }
            ),
        ),  # fmt: skip
        ("an unknown print field", post({"fingerprints": [{"text": [], "x": 1}]})),
        ("not JSON", raw(b"{not json")),
        ("empty body", raw(b"")),
        ("JSON then junk", raw(json.dumps({"sha256": [sha[0]]}).encode() + b"x")),
        ("not UTF-8", raw(b'{"sha256": ["\xff"]}')),
        ("no content type", raw(json.dumps({"sha256": [sha[0]]}).encode(), {})),
        ("text/plain", raw(b"{}", {"Content-Type": "text/plain"})),
        (
            "two content types",
            raw(b"{}", {"Content-Type": "text/plain", "content-type": "application/json"}),
        ),  # fmt: skip
    ]


def test_every_shape_is_answered_alike(pair: Pair, world: World) -> None:
    shapes = _shapes(world)
    statuses = {}
    for what, raw in shapes:
        status, headers, body = _both(pair, raw)
        statuses[what] = int(status.split()[1])
        assert b"content-type: application/json" in headers, what
        assert json.loads(body), what
    # The shapes mean what they say (a shape refused by both for another reason proves little).
    assert statuses["one hit"] == statuses["fingerprints"] == statuses["a batch (the index)"] == 200
    assert statuses["a chunked body"] == statuses["a charset"] == statuses["1000 digests"] == 200
    refused = [what for what, status in statuses.items() if status == 400]
    assert {"upper-case hex", "63 hex", "1001 digests", "too many prints", "not JSON"} <= set(
        refused
    )
    assert statuses["two content types"] == 400  # the first Content-Type counts
    assert pair.reached == {"fast": 0, "plain": len(shapes)}
    # The lookups found what is registered, through the same answers.
    hit = json.loads(_both(pair, shapes[0][1])[2])
    assert hit["results"][0]["matches"][0]["card"] == world.card.id
    found = json.loads(_both(pair, dict(shapes)["fingerprints"])[2])["fingerprints"]
    statuses_found = [{m["status"] for m in work["matches"]} for work in found]
    assert "near-duplicate" in statuses_found[0] and "contained" in statuses_found[1]
    assert statuses_found[2] == set()


def test_other_methods_and_paths_fall_through(pair: Pair) -> None:
    before = dict(pair.reached)
    for raw in [
        _request(None, method="GET"),
        _request(None, method="HEAD"),
        _request(b"{}", JSON, method="PUT"),
        _request(b"{}", JSON, path="/v1/lookup/"),
        _request(b"{}", JSON, path="/v1/lookup?x=1"),
        _request(b"{}", JSON, path="/v1/Lookup"),
    ]:
        if raw.startswith(b"HEAD"):
            with socket.create_connection(("127.0.0.1", _port(pair.fast)), timeout=30) as sock:
                sock.sendall(raw)
                fast_head = sock.recv(65536).split(b"\r\n\r\n")[0]
            with socket.create_connection(("127.0.0.1", _port(pair.plain)), timeout=30) as sock:
                sock.sendall(raw)
                plain_head = sock.recv(65536).split(b"\r\n\r\n")[0]
            strip = [line for line in fast_head.split(b"\r\n") if not line.startswith(b"date:")]
            assert strip == [ln for ln in plain_head.split(b"\r\n") if not ln.startswith(b"date:")]
            continue
        _both(pair, raw)
    # Only the lookup with a query string is a lookup (the fast route answered it in one app).
    assert pair.reached == {"fast": before["fast"], "plain": before["plain"] + 1}


def test_limits_while_streaming_are_answered_alike(pair: Pair) -> None:
    # Announced too large: 413 before any of the body is read.
    head = _request(None, {**JSON, "Content-Length": str(MAX_LOOKUP_BODY + 1)})
    status, headers, body = _both(pair, head)
    assert status.split()[1] == b"413" and b"connection: close" in headers
    # Streamed too large, never ended: 413 at the first byte over the limit.
    answers = []
    for url in (pair.fast, pair.plain):
        with socket.create_connection(("127.0.0.1", _port(url)), timeout=60) as sock:
            sock.sendall(_request(None, {**JSON, "Transfer-Encoding": "chunked"}))
            chunk = b"[" * 65536
            for _ in range(MAX_LOOKUP_BODY // len(chunk)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"1\r\n[\r\n")  # no closing chunk: the body has not ended
            answers.append(_read_answer(sock))
    assert answers[0] == answers[1] and answers[0][0].split()[1] == b"413"
    assert b"connection: close" in answers[0][1]
    # Stalled: 408 after the idle timeout, and the connection closed.
    stalled = _request(None, {**JSON, "Content-Length": "100"}) + b'{"sha256": ['
    answers = []
    for url in (pair.fast, pair.plain):
        with socket.create_connection(("127.0.0.1", _port(url)), timeout=60) as sock:
            sock.sendall(stalled)
            started = time.monotonic()
            answers.append(_read_answer(sock))
            assert IDLE * 0.9 < time.monotonic() - started < IDLE + 20
            assert sock.recv(100) == b""
    assert answers[0] == answers[1] and answers[0][0].split()[1] == b"408"
    assert b"lookup abandoned" in answers[0][2]
    # A client that goes away mid-body: the servers keep answering alike.
    for url in (pair.fast, pair.plain):
        with socket.create_connection(("127.0.0.1", _port(url)), timeout=60) as sock:
            sock.sendall(stalled)
            time.sleep(0.2)
    time.sleep(0.3)
    status, _, _ = _both(pair, _request(b"{}", JSON))
    assert status.split()[1] == b"200"


def test_the_rate_limit_is_answered_alike(pair: Pair) -> None:
    # Runs last in this module: it spends what is left of the (never refilling) burst.
    raw = _request(b"{}", JSON)
    for _ in range(BURST + 1):
        status, headers, body = _both(pair, raw)
        if status.split()[1] == b"429":
            break
    else:
        raise AssertionError("the rate limit never refused a lookup")
    assert b"retry-after: 1" in headers and b"too many lookups" in body
