"""The registry's limits and bad input, on SQLite and PostgreSQL, over raw sockets and the CLI.

Oversized uploads answer 413 while streaming (announced: before any of the body is read;
chunked: at the first bytes over the limit, long before the end); malformed multipart and JSON,
unknown or repeated parts and too many digests answer 400; a stalled upload 408; a client that
disconnects mid-upload leaves nothing stored; lookups over the per-client rate limit answer 429
with Retry-After. After each, the server keeps answering.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provenance.registry import upload
from tests.conftest import one_error_line, run_cli
from tests.registry_support import (
    Card,
    Keys,
    RegistryServer,
    get_json,
    http,
    make_card,
    make_keys,
    multipart,
    post_json,
    push_raw,
    sample_data,
)

pytestmark = pytest.mark.timeout(300)

LIMIT = 256 * 1024
BOUNDARY = "limits-boundary-3f9e"


@dataclass
class World:
    keys: Keys
    card: Card


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    work = tmp_path_factory.mktemp("limits")
    keys = make_keys(work / "keys")
    data = sample_data(work)
    for name in list((data / "images").iterdir()):  # a card whose push fits the limit
        name.unlink()
    (data / "images").rmdir()
    return World(keys, make_card(keys, data, "limits"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def registry(
    request: pytest.FixtureRequest, world: World, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    if request.param == "sqlite":
        database = f"sqlite:///{tmp_path_factory.mktemp('db') / 'registry.db'}"
    else:
        database = request.getfixturevalue("pg_cluster").database("limits")
    server = RegistryServer(
        ["--trust", str(world.keys.cards_trust), "--log-key", str(world.keys.log_key)]
        + ["--db", database, "--max-upload", str(LIMIT), "--lookup-rate", "0"]
        + ["--upload-idle-timeout", "2"],
        tmpdir=tmp_path_factory.mktemp("tmp"),
    )
    with server:
        yield server


def _stored(registry: RegistryServer) -> tuple[bytes, list[str]]:
    """The log's checkpoint and the registered cards: what a refused push must leave as is.

    Also checks that no upload is left on disk (each push streams to its own directory).
    """
    status, _, checkpoint = http("GET", f"{registry.url}/log/checkpoint")
    assert status == 200  # the server keeps answering
    assert registry.tmpdir is not None
    deadline = time.monotonic() + 10  # a refused upload's directory goes when its task ends
    while list(registry.tmpdir.glob("push-*")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not list(registry.tmpdir.glob("push-*"))
    return checkpoint, [card["id"] for card in get_json(f"{registry.url}/v1/cards")["cards"]]


def _connect(registry: RegistryServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", registry.port), timeout=30)


def _head(length: str | None, *, chunked: bool = False) -> bytes:
    lines = [
        "POST /v1/cards HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
    ]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _status(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, json.loads(body)


def test_an_upload_announced_too_large_is_refused_before_its_body(
    registry: RegistryServer,
) -> None:
    before = _stored(registry)
    with _connect(registry) as sock:
        sock.sendall(_head(str(10**12)))  # and not one byte of the body
        status, answer = _status(sock)
    assert status == 413 and "more than the 262144 allowed" in answer["error"]
    assert _stored(registry) == before


def test_a_chunked_upload_is_cut_off_at_the_limit_while_streaming(
    registry: RegistryServer,
) -> None:
    before = _stored(registry)
    start = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="manifest"\r\n\r\n'.encode()
    block = b"x" * 16384
    planned = 200 * len(block)  # 12.5 times the limit
    sent = 0
    with _connect(registry) as sock:
        sock.sendall(_head(None, chunked=True))
        sock.sendall(b"%x\r\n%s\r\n" % (len(start), start))
        sock.settimeout(0.05)
        answered = b""
        while sent < planned:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(block), block))
            except OSError:  # the server closed its side after answering
                break
            sent += len(block)
            try:
                answered = sock.recv(65536, socket.MSG_PEEK)
            except (TimeoutError, BlockingIOError):
                continue
            if answered:
                break
        sock.settimeout(30)
        status, answer = _status(sock)
    assert status == 413 and "larger than the 262144 bytes allowed" in answer["error"]
    # Answered while streaming: long before the whole body was sent.
    assert LIMIT < sent + len(start) < planned // 2, sent
    assert _stored(registry) == before


def test_the_cli_push_of_a_too_large_manifest_exits_2(
    registry: RegistryServer, world: World, tmp_path: Path
) -> None:
    before = _stored(registry)
    big = tmp_path / "big.jsonl"
    big.write_bytes(world.card.manifest.read_bytes() * 200)
    result = run_cli(
        "registry", "push", world.card.signed, "--manifest", big, "--registry", registry.url,
        "--trust", world.keys.trust,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "HTTP 413" in one_error_line(result)
    assert _stored(registry) == before


def _raw(registry: RegistryServer, body: bytes, content_type: str) -> tuple[int, Any]:
    status, _, data = http("POST", f"{registry.url}/v1/cards", body, {"Content-Type": content_type})
    return status, json.loads(data)


def test_malformed_pushes_are_400(registry: RegistryServer, world: World) -> None:
    before = _stored(registry)
    parts = world.card.parts()
    form = f"multipart/form-data; boundary={BOUNDARY}"
    cases = {
        "not multipart": (b'{"card": 1}', "application/json"),
        "no boundary": (multipart(parts, BOUNDARY), "multipart/form-data"),
        "unknown part": (multipart([*parts, ("extra", b"x")], BOUNDARY), form),
        "part given twice": (multipart([*parts, parts[0]], BOUNDARY), form),
        "missing manifest": (multipart(parts[:1], BOUNDARY), form),
        "no closing boundary": (multipart(parts, BOUNDARY)[:-20], form),
        "garbage": (b"\x00\xff" * 100, form),
        "no name": (
            f"--{BOUNDARY}\r\nContent-Disposition: form-data\r\n\r\nx\r\n"
            f"--{BOUNDARY}--\r\n".encode(),
            form,
        ),
    }
    for label, (body, content_type) in cases.items():
        status, answer = _raw(registry, body, content_type)
        assert status == 400, (label, status, answer)
        assert answer["error"], label
    # A card that is not JSON, or not a card: 400 too.
    status, answer = push_raw(registry.url, [("card", b"not json"), parts[1]])
    assert status == 400 and answer["error"].startswith("card:")
    assert _stored(registry) == before


def test_malformed_lookups_are_400(registry: RegistryServer) -> None:
    url = f"{registry.url}/v1/lookup"
    bad = [
        b"{not json",
        b'{"sha256": "abc"}',
        b'{"sha256": ["' + b"A" * 64 + b'"]}',
        b'{"sha256": [], "other": 1}',
        b'{"fingerprints": [{"text": ["xyz"]}]}',
        b"[]",
    ]
    for body in bad:
        status, _, data = http("POST", url, body, {"Content-Type": "application/json"})
        assert status == 400 and json.loads(data)["error"], body
    digests = [f"{n:064x}" for n in range(1001)]
    status, answer = post_json(url, {"sha256": digests})
    assert status == 400 and "<= 1000" in answer["error"]
    status, answer = post_json(url, {"sha256": digests[:600], "textSha256": digests[600:]})
    assert status == 400 and "1001 digests" in answer["error"]
    status, answer = post_json(url, {"sha256": digests[:1000]})
    assert status == 200 and len(answer["results"]) == 1000
    _stored(registry)


def test_a_client_that_disconnects_mid_upload_leaves_nothing(
    registry: RegistryServer, world: World
) -> None:
    before = _stored(registry)
    body = multipart(world.card.parts(), BOUNDARY)
    assert len(body) < LIMIT
    with _connect(registry) as sock:
        sock.sendall(_head(str(len(body))))
        sock.sendall(body[: len(body) // 2])
        time.sleep(0.3)
    time.sleep(0.5)
    assert _stored(registry) == before
    # Nothing half-stored stands in the way: the whole push then registers.
    status, answer = push_raw(registry.url, world.card.parts())
    assert status in (200, 201) and answer["id"] == world.card.id


def test_a_stalled_upload_is_abandoned_with_408(registry: RegistryServer, world: World) -> None:
    before = _stored(registry)
    body = multipart(world.card.parts(), BOUNDARY)
    with _connect(registry) as sock:
        sock.sendall(_head(str(len(body))))
        sock.sendall(body[:100])
        started = time.monotonic()
        status, answer = _status(sock)
    assert status == 408 and "no data from the client" in answer["error"]
    assert 1.5 < time.monotonic() - started < 20
    assert _stored(registry) == before


def test_lookups_over_the_rate_limit_are_429_with_retry_after(world: World, tmp_path: Path) -> None:
    server = RegistryServer(
        ["--trust", str(world.keys.cards_trust), "--log-key", str(world.keys.log_key)]
        + ["--db", f"sqlite:///{tmp_path / 'r.db'}", "--lookup-rate", "0.5", "--lookup-burst", "3"]
    )
    with server:
        url = server.url
        for _ in range(3):
            assert http("GET", f"{url}/v1/range/abcde")[0] == 200
        status, headers, body = http("GET", f"{url}/v1/range/abcde")
        assert status == 429 and headers["retry-after"] == "2"
        assert "too many lookups" in json.loads(body)["error"]
        # A client cannot name itself another: forwarding headers are not believed (uvicorn's
        # default believes them from 127.0.0.1, where this client and a local proxy both are).
        for n in range(3):
            forged = {"X-Forwarded-For": f"198.51.100.{n}", "Forwarded": f"for=198.51.100.{n}"}
            assert http("GET", f"{url}/v1/range/abcde", headers=forged)[0] == 429
        status, headers, _ = http(
            "POST", f"{url}/v1/lookup", b"{}", {"Content-Type": "application/json"}
        )
        assert status == 429
        # Other calls are not limited, and the limit lifts as time passes.
        assert http("GET", f"{url}/v1/cards")[0] == 200
        time.sleep(2.1)
        assert http("GET", f"{url}/v1/range/abcde")[0] == 200
        # 'registry lookup' waits as Retry-After says and gets its answer.
        work = tmp_path / "work.txt"
        work.write_text("a work\n")
        for _ in range(3):
            http("GET", f"{url}/v1/range/abcde")
        result = run_cli("registry", "lookup", work, "--registry", url, "--trust", world.keys.trust)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("absent")


@pytest.mark.parametrize(
    ("table", "stalled", "answered"),
    [
        ("digest", ("POST", "/v1/lookup"), ("GET", "/v1/cards")),
        ("digest", ("GET", "/v1/range/abcde"), ("GET", "/v1/cards")),
        ("card", ("GET", "/v1/cards"), ("POST", "/v1/lookup")),
        ("card", ("GET", "/v1/cards/{card}"), ("GET", "/log/checkpoint")),
        ("tile", ("GET", "/log/tile/0/000.p/1"), ("GET", "/v1/cards")),
        ("log_state", ("GET", "/log/checkpoint"), ("GET", "/v1/range/abcde")),
    ],
)
def test_a_query_waiting_on_postgresql_stalls_no_other_request(
    world: World,
    pg_cluster: Any,
    tmp_path: Path,
    table: str,
    stalled: tuple[str, str],
    answered: tuple[str, str],
) -> None:
    # A PostgreSQL query can wait on another server: here on a lock that another session holds.
    # The request waits with it; the server must keep answering the others meanwhile.
    import threading

    import psycopg

    database = pg_cluster.database(f"stall_{table}")
    server = RegistryServer(
        ["--trust", str(world.keys.cards_trust), "--log-key", str(world.keys.log_key)]
        + ["--db", database, "--lookup-rate", "0"]
    )
    lookup = json.dumps({"sha256": ["ab" * 32]}).encode()
    json_type = {"Content-Type": "application/json"}

    def call(method: str, path: str, timeout: float) -> int:
        body = lookup if method == "POST" else None
        return http(method, server.url + path, body, json_type if body else None, timeout=timeout)[
            0
        ]

    with server:
        status, answer = push_raw(server.url, world.card.parts())
        assert status == 201, answer
        stalled_path = stalled[1].replace("{card}", answer["id"])
        outcome: list[int] = []
        with psycopg.connect(database) as locker:
            locker.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            waiting = threading.Thread(
                target=lambda: outcome.append(call(stalled[0], stalled_path, 60)), daemon=True
            )
            waiting.start()
            time.sleep(1.0)
            assert not outcome, "the request did not wait on the lock: the test shows nothing"
            started = time.monotonic()
            assert call(*answered, timeout=10) == 200
            assert time.monotonic() - started < 5
            locker.rollback()
        waiting.join(30)
        assert outcome == [200]


# --- the upload parser, in process ------------------------------------------------------------


async def _chunks(data: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _received(data: bytes, directory: Path, limit: int = 10_000) -> upload.Received:
    return asyncio.run(
        upload.receive(
            _chunks(data),
            content_type=f"multipart/form-data; boundary={BOUNDARY}",
            content_length=None,
            directory=directory,
            limit=limit,
        )
    )


def _receive(data: bytes, directory: Path, limit: int = 10_000) -> dict[str, Path]:
    return _received(data, directory, limit).paths


def test_parts_are_streamed_to_files_byte_for_byte(tmp_path: Path) -> None:
    """Each part's file holds its bytes, and its digest is theirs (computed as they came)."""
    card, manifest = b'{"a": 1}\r\n--not-the-boundary\r\n', bytes(range(256)) * 3
    body = multipart([("card", card), ("manifest", manifest)], BOUNDARY)
    received = _received(body, tmp_path)
    parts = received.paths
    assert parts["card"].read_bytes() == card and parts["manifest"].read_bytes() == manifest
    assert received.sha256 == {
        "card": hashlib.sha256(card).hexdigest(),
        "manifest": hashlib.sha256(manifest).hexdigest(),
    }


def test_a_card_part_over_its_own_limit_is_413(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(upload._PART_LIMITS, "card", 50)
    body = multipart([("card", b"x" * 51), ("manifest", b"")], BOUNDARY)
    with pytest.raises(upload.UploadError, match="larger than 50 bytes") as raised:
        _receive(body, tmp_path)
    assert raised.value.status == 413
    (tmp_path / "ok").mkdir()
    body = multipart([("card", b"x" * 50), ("manifest", b"")], BOUNDARY)
    assert set(_receive(body, tmp_path / "ok")) == {"card", "manifest"}
