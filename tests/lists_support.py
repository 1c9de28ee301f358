"""Test support for exclusion lists: a real HTTP server on 127.0.0.1 with injectable faults,
a repository factory, and a byte-for-byte snapshot of a directory tree."""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import gzip
import http.server
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provenance.keys import PrivateKey
from provenance.lists.client import FetchOptions
from provenance.lists.entries import parse_entries, prepare_entries
from provenance.lists.model import ListEntry
from provenance.lists.repository import publish
from provenance.trust import TrustStore

T0 = dt.datetime(2026, 7, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
FAST = FetchOptions(connect_timeout=1.0, read_timeout=0.5, total_timeout=1.5, max_bytes=1 << 20)

Fault = Callable[["Handler"], None]


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves ``server.root``; a path listed in ``server.faults`` gets the fault instead."""

    server: FaultyServer

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, directory=str(self.server_root(args)), **kwargs)  # type: ignore[arg-type]

    @staticmethod
    def server_root(args: tuple[object, ...]) -> Path:
        server = args[2]
        assert isinstance(server, FaultyServer)
        return server.root

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.requests.append(self.path)
        fault = self.server.faults.get(self.path)
        if fault is None:
            for suffix, candidate in self.server.suffix_faults.items():
                if self.path.endswith(suffix):
                    fault = candidate
        if fault is not None:
            fault(self)
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    # -- helpers for faults ---------------------------------------------------------------

    def send_body(self, body: bytes, *, status: int = 200, headers: dict[str, str] | None = None):
        self.send_response(status)
        sent = {"Content-Length": str(len(body)), **(headers or {})}
        for name, value in sent.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def original(self) -> bytes:
        """The bytes the server would have sent for this path."""
        return (self.server.root / self.path.lstrip("/")).read_bytes()


class FaultyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.faults: dict[str, Fault] = {}
        self.suffix_faults: dict[str, Fault] = {}
        self.requests: list[str] = []
        self.stop = threading.Event()
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def serve(root: Path) -> tuple[FaultyServer, threading.Thread]:
    server = FaultyServer(root)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    return server, thread


def shutdown(server: FaultyServer, thread: threading.Thread) -> None:
    server.stop.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# --- faults ----------------------------------------------------------------------------------


def replace_with(data: bytes) -> Fault:
    return lambda handler: handler.send_body(data)


def transform(change: Callable[[bytes], bytes]) -> Fault:
    return lambda handler: handler.send_body(change(handler.original()))


def hang(handler: Handler) -> None:
    """Accept the request and never answer."""
    handler.server.stop.wait(5)


def drip(total: int, every: float) -> Fault:
    """Announce ``total`` bytes, then send one byte every ``every`` seconds."""

    def fault(handler: Handler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(total))
        handler.end_headers()
        for _ in range(total):
            if handler.server.stop.wait(every):
                return
            try:
                handler.wfile.write(b" ")
                handler.wfile.flush()
            except OSError:
                return

    return fault


def endless(handler: Handler) -> None:
    """A 200 response without a length that never ends."""
    handler.send_response(200)
    handler.send_header("Connection", "close")
    handler.end_headers()
    block = b"\0" * 65536
    while not handler.server.stop.is_set():
        try:
            handler.wfile.write(block)
        except OSError:
            return


GZIP_BOMB = gzip.compress(b"\0" * (50 * 1024 * 1024), compresslevel=9)


def gzip_bomb(handler: Handler) -> None:
    """A ~50 KB body that decodes to 50 MiB, sent with Content-Encoding: gzip regardless."""
    handler.send_body(GZIP_BOMB, headers={"Content-Encoding": "gzip"})


def redirect_to(location: Callable[[Handler], str]) -> Fault:
    def fault(handler: Handler) -> None:
        handler.send_body(b"", status=302, headers={"Location": location(handler)})

    return fault


def truncate(handler: Handler) -> None:
    """Announce the full length, send half of the body, close."""
    body = handler.original()
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body[: len(body) // 2])
    handler.wfile.flush()
    handler.close_connection = True


# --- repositories and trust --------------------------------------------------------------------

DOMAINS_V1 = b"""# a small piracy list
0.0.0.0 1337x.to
0.0.0.0 3dmgame.com
0.0.0.0 4realtorrentz.com
"""
DOMAINS_V2 = DOMAINS_V1 + b"0.0.0.0 0daycn.net\n"


def entries(text: bytes = DOMAINS_V1) -> tuple[ListEntry, ...]:
    return prepare_entries(
        parse_entries(text.splitlines(), category="piracy", what="test"), what="test"
    )


@dataclass
class Association:
    """A publisher with keys and a repository directory."""

    directory: Path
    keys: list[PrivateKey] = field(default_factory=lambda: [PrivateKey.generate()])
    threshold: int = 1

    @property
    def repo(self) -> Path:
        return self.directory / "repo"

    def publish(
        self, text: bytes = DOMAINS_V1, *, name: str = "piracy", at: dt.datetime = T0, **kw: object
    ) -> str:
        result = publish(
            self.repo,
            entries(text),
            name=name,
            keys=kw.pop("keys", self.keys),  # type: ignore[arg-type]
            at=at,
            publisher="Example Rights Association",
            threshold=self.threshold,
            **kw,  # type: ignore[arg-type]
        )
        return result.digest

    def trust(self, *, name: str = "piracy", threshold: int | None = None) -> TrustStore:
        store = TrustStore()
        for key in self.keys:
            store = store.with_key(key.public, name="assoc", role="list-publisher", list_name=name)
        if threshold is not None:
            store = store.with_key(
                self.keys[0].public,
                name="assoc",
                role="list-publisher",
                list_name=name,
                threshold=threshold,
            )
        return store

    def snapshot_repo(self, into: Path) -> Path:
        shutil.copytree(self.repo, into)
        return into


def tree(path: Path) -> dict[str, tuple[str, bytes | str]]:
    """Every entry under ``path`` (relative path -> kind and bytes or link target)."""
    result: dict[str, tuple[str, bytes | str]] = {}
    if not os.path.lexists(path):
        return result
    for directory, dirs, files in os.walk(path):
        for name in dirs + files:
            full = Path(directory) / name
            rel = str(full.relative_to(path))
            if full.is_symlink():
                result[rel] = ("link", os.readlink(full))
            elif full.is_dir():
                result[rel] = ("dir", b"")
            else:
                result[rel] = ("file", full.read_bytes())
    return result


@dataclass
class Timer:
    start: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


def iter_target_paths(repo: Path) -> Iterator[str]:
    for path in sorted((repo / "targets").rglob("*.json")):
        yield "/targets/" + str(path.relative_to(repo / "targets"))


@contextlib.contextmanager
def collector_watched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Refuse ``gc.disable()`` inside, and list the generation of every collection run there.

    Building millions of objects the cyclic collector tracks sets off a collection about every
    700 of them; objects it does not track (ints, strings, ``gc=False`` structs) none.
    """

    def refuse() -> None:
        raise AssertionError("a library constructor paused the garbage collector")

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    collections: list[int] = []
    monkeypatch.setattr(gc, "disable", refuse)
    gc.collect()
    gc.callbacks.append(count)
    try:
        yield collections
    finally:
        gc.callbacks.remove(count)
