"""Support for the browser tests of the creator's page: Chromium, and the real registry.

:class:`PageRegistry` serves the registry's own app (:func:`provenance.registry.app.create_app`,
over a real SQLite database whose cards were pushed with ``registry push``) with uvicorn on
127.0.0.1, in a thread of the test process, so that the tests can

- record every request the server receives (method, path, headers, body), byte for byte;
- move the rate limiter's clock (the real limiter answers 429 with its ``Retry-After``);
- and, for one test, make the registry's range answers malformed (``tamper_range``): a fault
  the real registry never produces, injected in front of it.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "provenance" / "registry" / "static"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Debian's wrapper fails to detect a small /dev/shm here and so does not add this itself.
    "--disable-dev-shm-usage",
]
HEX64 = re.compile(r"[0-9a-f]{64}", re.IGNORECASE)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium driven by pip Playwright (never ``playwright install``)."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Recorded:
    """One request the registry received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class RegisteredCard:
    """A card as ``GET /v1/cards`` lists it."""

    id: str
    name: str
    version: str
    publisher: list[str]


class _Recorder:
    """ASGI middleware: records every request, and can answer range queries itself."""

    def __init__(self, app: Any, registry: PageRegistry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        recorded = Recorded(scope["method"], path, headers, b"")
        self.registry.requests.append(recorded)

        async def recording() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                recorded.body += message.get("body", b"")
            return message

        tamper = self.registry.tamper_range
        match = re.fullmatch(r"/v1/range/([0-9a-f]{5})", scope["path"])
        if tamper is not None and match:
            body = json.dumps(tamper(match.group(1))).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, recording, send)


class PageRegistry:
    """The real registry over ``database`` (see the module docstring); a context manager."""

    RATE = 1 / 30
    """Lookups per second per client after the burst: a client over it waits 30 s."""
    BURST = 10_000

    def __init__(self, database: Path, trust: Path, log_key: Path) -> None:
        self.database = database
        self.trust = trust
        self.log_key = log_key
        self.requests: list[Recorded] = []
        self.tamper_range: Callable[[str], dict[str, Any]] | None = None
        self.now = 1_000_000.0
        """The rate limiter's clock (seconds); tests move it."""
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._database: Any = None
        self._app: Any = None

    def __enter__(self) -> PageRegistry:
        import uvicorn

        from provenance.keys import load_private_key
        from provenance.registry.app import Settings, create_app
        from provenance.registry.db import Database
        from provenance.trust import TrustStore

        self._database = Database.open(f"sqlite:///{self.database}")
        store = TrustStore.from_json(self.trust.read_bytes(), what="trust")
        settings = Settings(lookup_rate=self.RATE, lookup_burst=self.BURST)
        self._app = create_app(
            self._database,
            store,
            load_private_key(self.log_key),
            settings,
            monotonic=lambda: self.now,
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self._socket = sock
        config = uvicorn.Config(
            _Recorder(self._app, self), log_level="warning", access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[sock])), daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the registry did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving (the page, already loaded, then finds the registry gone)."""
        if self._server is None:
            return
        self._server.should_exit = True
        assert self._thread is not None
        self._thread.join(30)
        self._socket.close()
        self._app.state.search.close()
        self._database.close()
        self._server = None

    @property
    def url(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host!s}:{port}/"

    @property
    def cards(self) -> list[RegisteredCard]:
        """The registered cards, oldest first."""
        with urllib.request.urlopen(f"{self.url}v1/cards") as answer:
            listed = json.loads(answer.read())["cards"]
        return [
            RegisteredCard(c["id"], c["name"], c["version"], c["publisher"])
            for c in reversed(listed)
        ]

    def range_requests(self) -> list[str]:
        return [r.path for r in self.requests if r.path.startswith("/v1/range/")]

    def exhaust_lookups(self) -> None:
        """Spend this client's (127.0.0.1's) lookups: the next one answers 429."""
        limiter = self._app.state.limiter
        while limiter.take("127.0.0.1") is None:
            pass

    def let_time_pass(self, seconds: float) -> None:
        """Move the rate limiter's clock."""
        self.now += seconds


def empty_registry(directory: Path) -> PageRegistry:
    """A registry with no card (its own log key, an empty trust store), to serve the page."""
    from provenance.keys import PrivateKey, write_key_pair
    from provenance.trust import TrustStore

    directory.mkdir(parents=True, exist_ok=True)
    write_key_pair(PrivateKey.generate(), directory / "log.key")
    (directory / "trust.json").write_bytes(TrustStore().to_json())
    return PageRegistry(directory / "registry.db", directory / "trust.json", directory / "log.key")


def push_cards(
    database: Path, trust: Path, log_key: Path, client_trust: Path, cards: list[tuple[Path, Path]]
) -> None:
    """Register ``cards`` (signed card, manifest) in ``database`` with ``registry push``."""
    from tests.conftest import run_cli

    with PageRegistry(database, trust, log_key) as registry:
        for signed, manifest in cards:
            result = run_cli(
                "registry", "push", signed, "--manifest", manifest,
                *(("--fingerprints", f"{manifest}.fp") if Path(f"{manifest}.fp").exists() else ()),
                "--registry", registry.url.rstrip("/"), "--trust", client_trust,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
