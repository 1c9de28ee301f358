"""Support for the browser tests of the creator's page: Chromium, and a stand-in registry.

STAND-IN: ``StandInRegistry`` is NOT the registry. It is a small ``http.server`` that serves the
page's assets and the read-only calls the page makes (``GET /v1/range/{prefix}``, and the card
links), answering from real signed cards and manifests built by the tests, so that the page can
be tested end to end before the registry exists (issue 10, item 1). The registry's own tests
replace it with the real server; nothing in the package uses this module.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import mimetypes
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provenance import _json
from provenance.card import unverified_card_document, verify_card
from provenance.envelope import Envelope
from provenance.trust import TrustStore

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
    """One request the stand-in received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _Card:
    id: str
    name: str
    version: str
    publisher: list[str]
    envelope: bytes
    manifest: bytes


@dataclass
class StandInRegistry:
    """STAND-IN for the registry (see the module docstring). Use as a context manager."""

    cards: list[_Card] = field(default_factory=list)
    index: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    range_status: int | None = None
    """When set, every range query answers this status (e.g. 429, with Retry-After: 30)."""
    _server: ThreadingHTTPServer | None = None

    def add_card(self, signed: Path, manifest: Path, trust: Path) -> str:
        """Admit a card as the registry would: signature, then manifest digest; return its id."""
        envelope_bytes = signed.read_bytes()
        manifest_bytes = manifest.read_bytes()
        store = TrustStore.from_json(trust.read_bytes(), what="trust")
        document = unverified_card_document(envelope_bytes, what="card")
        assert isinstance(document, Envelope)
        card = verify_card(document, store, at=dt.datetime.now(dt.UTC), what="card")
        assert card.manifest_digest == hashlib.sha256(manifest_bytes).hexdigest()
        card_id = hashlib.sha256(document.payload).hexdigest()
        predicate = card.predicate
        self.cards.append(
            _Card(
                card_id,
                predicate.name,
                predicate.version,
                list(card.publishers),
                envelope_bytes,
                manifest_bytes,
            )
        )
        for line in manifest_bytes.splitlines():
            entry = _json.loads_object(line, what="manifest")
            match = {
                "card": card_id,
                "name": predicate.name,
                "version": predicate.version,
                "publisher": list(card.publishers),
                "entry": entry["id"],
            }
            for kind in ("sha256", "textSha256"):
                if kind in entry:
                    self.index.setdefault(f"{kind}:{entry[kind]}", []).append(match)
        return card_id

    def range(self, prefix: str) -> dict[str, Any]:
        """The answer to ``GET /v1/range/{prefix}`` (docs/design.md §6)."""
        digests = []
        for key in sorted(self.index):
            kind, digest = key.split(":")
            if digest.startswith(prefix):
                digests.append({"digest": digest, "kind": kind, "matches": self.index[key]})
        return {"prefix": prefix, "digests": digests}

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def range_requests(self) -> list[str]:
        return [r.path for r in self.requests if r.path.startswith("/v1/range/")]

    def __enter__(self) -> StandInRegistry:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _handler(registry: StandInRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            pass

        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            registry.requests.append(
                Recorded(self.command, self.path, dict(self.headers.items()), body)
            )

        def _send(
            self, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(document).encode(), "application/json", headers)

        def do_POST(self) -> None:  # noqa: N802 - the base's name
            self._record()
            self._json(405, {"error": "the stand-in answers GET only"})

        def do_GET(self) -> None:  # noqa: N802 - the base's name
            self._record()
            path = self.path.split("?", 1)[0]
            if path == "/":
                self._send(200, (STATIC / "index.html").read_bytes(), "text/html; charset=utf-8")
            elif path.startswith("/static/"):
                self._static(path.removeprefix("/static/"))
            elif match := re.fullmatch(r"/v1/range/([^/]*)", path):
                self._range(match.group(1))
            elif match := re.fullmatch(r"/v1/cards/([0-9a-f]{64})(/envelope|/manifest)?", path):
                self._card(match.group(1), match.group(2))
            else:
                self._json(404, {"error": "not found"})

        def _static(self, name: str) -> None:
            target = (STATIC / name).resolve()
            if not target.is_relative_to(STATIC) or not target.is_file():
                self._json(404, {"error": "not found"})
                return
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if target.suffix == ".js":
                kind = "text/javascript"
            self._send(200, target.read_bytes(), kind)

        def _range(self, prefix: str) -> None:
            if not re.fullmatch(r"[0-9a-f]{5}", prefix):
                self._json(400, {"error": "prefix must be 5 lowercase hex digits"})
            elif registry.range_status is not None:
                status = registry.range_status
                self._json(
                    status, {"error": HTTPStatus(status).phrase.lower()}, {"Retry-After": "30"}
                )
            else:
                self._json(200, registry.range(prefix))

        def _card(self, card_id: str, part: str | None) -> None:
            card = next((card for card in registry.cards if card.id == card_id), None)
            if card is None:
                self._json(404, {"error": "no such card"})
            elif part == "/envelope":
                self._send(200, card.envelope, "application/json")
            elif part == "/manifest":
                self._send(200, card.manifest, "application/x-ndjson")
            else:
                document = {
                    "id": card.id,
                    "name": card.name,
                    "version": card.version,
                    "publisher": card.publisher,
                }
                self._json(200, document)

    return Handler
