"""``POST /v1/lookup``: the handler, and a pure-ASGI route to it in front of FastAPI's routing.

:class:`LookupHandler` answers a lookup from the raw ASGI request (scope and receive), every
limit included: the per-client rate limit (429 with ``Retry-After``), a body that is not JSON
(400), a body announced or found larger than :data:`MAX_LOOKUP_BODY` (413, while streaming:
before the rest is read), a client that stops sending for the idle timeout (408), a client
that goes away, too many digests or fingerprints (400), a database that cannot answer (503).

The FastAPI route (which the OpenAPI schema documents) calls it, and so does
:class:`FastLookup`, an ASGI middleware that sends ``POST /v1/lookup`` to the handler straight
away, without FastAPI's routing, request and exception layers: on a small request those cost
more than the lookup. Both go through the same outer middlewares (the security headers, the
server error handler), so their answers are the same bytes; a test holds the two equal over
many request shapes, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
import numpy as np
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from provenance.errors import FormatError, UnavailableError
from provenance.fingerprints import ContentPrints
from provenance.registry import db, models
from provenance.registry.fpsearch import FingerprintSearch
from provenance.registry.ratelimit import RateLimiter
from provenance.registry.storage import Storage

MAX_LOOKUP_BODY = 8 * 1024 * 1024
PATH = "/v1/lookup"

T = TypeVar("T")


async def on_database(database: db.Database, call: Callable[..., T], *args: Any) -> T:
    """Return ``call(*args)``, a query of ``database``: run on the event loop for SQLite, in a
    worker thread for PostgreSQL.

    Why: SQLite answers from this machine's files in microseconds (and, in WAL mode, a reader
    never waits for a writer), less than a thread's hand-over costs. A PostgreSQL query waits
    for another server, perhaps on a lock another session holds; on the event loop every other
    request would wait with it.
    """
    if database.is_sqlite:
        return call(*args)
    return await run_in_threadpool(call, *args)


def json_response(
    document: Any, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A JSON answer (msgspec-encoded)."""
    return Response(
        msgspec.json.encode(document), status, headers=headers, media_type="application/json"
    )


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error answer: ``{"error": message}`` with ``status``."""
    return json_response({"error": message}, status, headers)


class _RefusedError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lowercase), as Starlette's ``Headers.get``."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def rate_limited(limiter: RateLimiter, scope: Scope) -> Response | None:
    """The 429 answer (with ``Retry-After``) if the client of ``scope`` is over its rate,
    else None (its request counted)."""
    client = scope["client"][0] if scope.get("client") else "unknown"
    wait = limiter.take(client)
    if wait is None:
        return None
    return error_response(
        429, f"too many lookups from {client}; try again in {wait} s", {"Retry-After": str(wait)}
    )


@dataclass(frozen=True, slots=True)
class LookupHandler:
    """Answers ``POST /v1/lookup`` (see the module docstring)."""

    storage: Storage
    limiter: RateLimiter
    search: FingerprintSearch
    idle_timeout: float
    max_body: int = MAX_LOOKUP_BODY

    async def answer(self, scope: Scope, receive: Receive) -> Response:
        """The answer to the lookup whose request is ``scope`` with its body from ``receive``.

        Returns:
            The response: 200 with the results, or an error (400, 408, 413, 429, 503).
        """
        over_rate = rate_limited(self.limiter, scope)
        if over_rate is not None:
            return over_rate
        kind = (_header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()
        if kind != "application/json":
            return error_response(400, "body: expected application/json")
        try:
            data = await self._body(scope, receive)
            return await self._lookup(data)
        except _RefusedError as refused:
            return refused.response
        except SQLAlchemyError as exc:  # as the app's handler answers it
            return error_response(
                503, f"the registry's database could not answer: {db.reason(exc)}"
            )

    async def _body(self, scope: Scope, receive: Receive) -> bytes | bytearray:
        too_large = f"body: larger than {self.max_body} bytes"
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise _RefusedError(error_response(413, too_large, {"Connection": "close"}))
        data: bytes | bytearray = bytearray()
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout):
                    message = await receive()
            except TimeoutError:
                raise _RefusedError(
                    error_response(
                        408,
                        f"no data from the client for {self.idle_timeout:g} s; lookup abandoned",
                        {"Connection": "close"},
                    )
                ) from None
            if message["type"] == "http.disconnect":
                # No one reads the answer; it only ends the request.
                raise _RefusedError(error_response(400, "the client went away during the lookup"))
            chunk = message.get("body", b"")
            if not data and not message.get("more_body", False):
                data = chunk  # the whole body in one message: no copy
            else:
                data += chunk
            if len(data) > self.max_body:
                raise _RefusedError(error_response(413, too_large, {"Connection": "close"}))
            if not message.get("more_body", False):
                return data

    async def _lookup(self, data: bytes | bytearray) -> Response:
        try:
            body = models.decode_lookup(data)
        except msgspec.DecodeError as exc:  # ValidationError included
            return error_response(400, f"body: {exc}")
        count = len(body.sha256) + len(body.textSha256)
        if count > models.MAX_DIGESTS:
            return error_response(400, f"{count} digests; at most {models.MAX_DIGESTS} per lookup")
        prints = sum(len(item.text) for item in body.fingerprints)
        if prints > models.MAX_TEXT_PRINTS:
            return error_response(
                400, f"{prints} text fingerprints; at most {models.MAX_TEXT_PRINTS} per lookup"
            )
        wanted = [(d, db.KIND_SHA256) for d in body.sha256]
        wanted += [(d, db.KIND_TEXT_SHA256) for d in body.textSha256]
        results = await on_database(self.storage.database, self.storage.lookup_json, wanted)
        found: list[list[dict[str, Any]]] = []
        if body.fingerprints:
            works = [
                ContentPrints(
                    None,
                    np.unique(np.array([int(t, 16) for t in item.text], dtype=np.uint64)),
                    None if item.image is None else int(item.image, 16),
                )
                for item in body.fingerprints
            ]
            try:
                found = await run_in_threadpool(self.search.search, works)
            except (UnavailableError, FormatError) as exc:
                return error_response(503, f"fingerprint lookup failed: {exc}")
        # The results come encoded (the digest index answers in JSON directly).
        fingerprints = msgspec.json.encode([{"matches": m} for m in found]) if found else b"[]"
        return Response(
            b'{"results":' + results + b',"fingerprints":' + fingerprints + b"}",
            media_type="application/json",
        )


class FastLookup:
    """An ASGI middleware that answers ``POST /v1/lookup`` with ``handler`` itself and passes
    every other request on to ``app`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, handler: LookupHandler) -> None:
        self.app = app
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or scope.get("root_path")
        ):
            await self.app(scope, receive, send)
            return
        response = await self.handler.answer(scope, receive)
        # What Response.__call__ sends for a body held in memory (no background task).
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})


__all__ = [
    "MAX_LOOKUP_BODY",
    "FastLookup",
    "LookupHandler",
    "error_response",
    "json_response",
]
