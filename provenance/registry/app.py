"""The registry's HTTP API and pages (FastAPI): what :func:`create_app` serves.

- ``POST /v1/cards`` registers a card (:mod:`provenance.registry.admission`), its body streamed
  to disk as it arrives (:mod:`provenance.registry.upload`);
- ``GET /v1/cards``, ``/v1/cards/{id}`` and the exact bytes pushed (``/envelope``,
  ``/manifest``, ``/fingerprints``);
- ``POST /v1/lookup`` (at most 1,000 digests, plus fingerprint sets;
  :mod:`provenance.registry.lookup_route`) and ``GET /v1/range/{prefix}``, both under a
  per-client rate limit (429 with ``Retry-After``);
- the transparency log as static resources: ``/log/checkpoint``, ``/log/tile/...``;
- the creator's page at ``/`` and its assets under ``/static/``, with a Content-Security-Policy
  that allows nothing from another origin (hash-wasm needs ``'wasm-unsafe-eval'``).

Every error is ``{"error": "..."}`` with its status: 400 malformed, 403 untrusted signer, 404,
408 an upload that stalled, 409 conflict, 413 too large, 422 manifest or sidecar not the
card's, 429 rate limited, 503 the database could not answer.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from provenance import __version__
from provenance.errors import FormatError, ParameterError, UnavailableError
from provenance.keys import PrivateKey
from provenance.registry import db, models, upload
from provenance.registry.admission import RefusedError, Registrar, Upload
from provenance.registry.fpsearch import open_search
from provenance.registry.lookup_route import (
    FastLookup,
    LookupHandler,
    error_response,
    json_response,
    on_database,
    rate_limited,
)
from provenance.registry.ratelimit import RateLimiter
from provenance.registry.sqllog import SqlTileStore
from provenance.registry.storage import Storage
from provenance.tlog import Tile
from provenance.trust import TrustStore

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD = 4 * 1024**3
_DRAIN_BYTES = 8 * 1024 * 1024
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self';"
    " connect-src 'self'; style-src 'self'; img-src 'self' data:; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
_IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Settings:
    """How a registry runs (see ``provenance registry serve``)."""

    origin: str = "localhost/provenance"
    max_upload: int = DEFAULT_MAX_UPLOAD
    lookup_rate: float = 20.0
    """Lookups per second per client, after a burst; 0 disables the limit."""
    lookup_burst: int = 600
    upload_directory: Path | None = None
    """Where uploads are streamed (a temporary directory per push); default the system's."""
    cache_directory: Path | None = None
    """Where stored sidecars are cached for fingerprint lookups; default a temporary one."""
    idle_timeout: float = 60.0
    """Seconds an upload (a push, a lookup's body) may stall before it is abandoned (408)."""

    def __post_init__(self) -> None:
        """Refuse values a registry cannot run with.

        Raises:
            ParameterError: a size, burst or timeout that is not positive, a rate that is not
                a finite number >= 0.
        """
        if self.max_upload < 1:
            raise ParameterError("max_upload", "must be at least 1 byte", value=self.max_upload)
        if self.lookup_burst < 1:
            raise ParameterError("lookup_burst", "must be at least 1", value=self.lookup_burst)
        if not (math.isfinite(self.lookup_rate) and self.lookup_rate >= 0):
            raise ParameterError(
                "lookup_rate", "must be a number >= 0 (0: no limit)", value=self.lookup_rate
            )
        if not (math.isfinite(self.idle_timeout) and self.idle_timeout > 0):
            raise ParameterError(
                "idle_timeout", "must be a positive number of seconds", value=self.idle_timeout
            )


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": models.Error} for status in statuses}


def _ok(model: type[Any], status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model}}


class _SecurityHeaders:
    """Adds the Content-Security-Policy and friends to every answer (pure ASGI: cheap)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


_PUSH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["card", "manifest"],
                    "properties": {
                        "card": {"type": "string", "format": "binary"},
                        "manifest": {"type": "string", "format": "binary"},
                        "fingerprints": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}

CardId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$", description="The card's id.")]
Prefix = Annotated[str, PathParam(pattern=r"^[0-9a-f]{5}$", description="5 lowercase hex.")]


def create_app(
    database: db.Database,
    trust: TrustStore,
    key: PrivateKey,
    settings: Settings | None = None,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    fast_lookup: bool = True,
) -> FastAPI:
    """Return the registry's ASGI app over ``database``.

    The log is created (its size-0 checkpoint) if the database has none; ``clock`` gives the
    time of registrations, ``monotonic`` the rate limiter's clock. ``fast_lookup`` False sends
    lookups through FastAPI's route rather than :class:`~.lookup_route.FastLookup` (the same
    answers, slower: for the test that holds the two equal).

    Raises:
        VerificationError: the database holds the log of another key or origin.
    """
    config = settings or Settings()
    now = clock or (lambda: dt.datetime.now(dt.UTC).replace(microsecond=0))
    registrar = Registrar(database, trust, key, origin=config.origin)
    registrar.start_log()
    storage = Storage(database)
    storage.refresh_index()  # in the background: lookups take the database meanwhile
    tiles = SqlTileStore(database)
    limiter = RateLimiter(config.lookup_rate, config.lookup_burst, clock=monotonic)
    search = open_search(storage, config.cache_directory)
    page = (STATIC / "index.html").read_bytes()

    app = FastAPI(
        title="provenance registry",
        version=__version__,
        description="Signed dataset cards, their manifests' digests, and a transparency log.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.registrar = registrar
    app.state.storage = storage
    app.state.limiter = limiter
    app.state.search = search
    lookups = LookupHandler(storage, limiter, search, config.idle_timeout)
    if fast_lookup:
        # Inside the security headers and the server error handler, so that both routes'
        # answers pass through the same layers.
        app.add_middleware(FastLookup, handler=lookups)
    app.add_middleware(_SecurityHeaders)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of one route; a path may have several (GET and POST).
            methods: set[str] = set()
            for route in app.router.routes:
                if isinstance(route, APIRoute) and route.matches(request.scope)[0] != Match.NONE:
                    methods |= route.methods or set()
            headers["Allow"] = ", ".join(sorted(methods))
        return error_response(exc.status_code, str(exc.detail), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error_response(400, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, exc: SQLAlchemyError) -> Response:
        return error_response(503, f"the registry's database could not answer: {db.reason(exc)}")

    # -- the page -------------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # -- cards ----------------------------------------------------------------------------------

    @app.post(
        "/v1/cards",
        status_code=201,
        summary="Register a signed card with its manifest (and fingerprint sidecar)",
        responses={
            **_ok(models.Card, 201),
            **_ok(models.Card, 200),
            **_errors(400, 403, 408, 409, 413, 422, 503),
        },
        openapi_extra=_PUSH_BODY,
    )
    async def push(request: Request) -> Response:
        with tempfile.TemporaryDirectory(prefix="push-", dir=config.upload_directory) as directory:
            chunks = request.stream()
            try:
                received = await upload.receive(
                    chunks,
                    content_type=request.headers.get("content-type"),
                    content_length=request.headers.get("content-length"),
                    directory=Path(directory),
                    limit=config.max_upload,
                    idle_timeout=config.idle_timeout,
                )
            except upload.UploadError as exc:
                # A small rest of a refused body is read and dropped, so that the client reads
                # the answer rather than a reset; a large one (413) or a stalled one is not.
                ended = exc.status not in (408, 413) and await upload.drain(
                    chunks, max_bytes=_DRAIN_BYTES, timeout=2.0
                )
                closing = None if ended else {"Connection": "close"}
                return error_response(exc.status, str(exc), closing)
            except ClientDisconnect:
                return error_response(400, "the client went away during the upload")
            parts = received.paths
            pushed = Upload(
                parts["card"],
                parts["manifest"],
                parts.get("fingerprints"),
                manifest_sha256=received.sha256["manifest"],
            )
            try:
                registered = await run_in_threadpool(registrar.register, pushed, at=now())
            except RefusedError as exc:
                return error_response(exc.status, str(exc))
            except UnavailableError as exc:
                return error_response(503, str(exc))
        status = 201 if registered.created else 200
        return json_response(registered.record.to_dict(receipt=True), status)

    @app.get("/v1/cards", responses={**_ok(models.CardList), **_errors(503)})
    async def cards() -> Response:
        registered = await on_database(database, storage.cards)
        return json_response({"cards": [card.to_dict(receipt=False) for card in registered]})

    async def _card(card_id: str) -> Any:
        record = await on_database(database, storage.card, card_id)
        if record is None:
            raise HTTPException(404, f"no card {card_id} is registered")
        return record

    @app.get("/v1/cards/{card_id}", responses={**_ok(models.Card), **_errors(400, 404, 503)})
    async def card(card_id: CardId) -> Response:
        return json_response((await _card(card_id)).to_dict(receipt=True))

    async def _bytes(sha256: str | None, media_type: str, what: str) -> Response:
        chunks = await on_database(database, storage.blob, sha256) if sha256 else None
        if chunks is None:
            raise HTTPException(404, f"no {what} is stored for this card")
        assert sha256 is not None
        headers = {
            "Content-Length": str(await on_database(database, storage.blob_size, sha256)),
            "Cache-Control": _IMMUTABLE,
            "ETag": f'"{sha256}"',
        }
        return StreamingResponse(chunks, media_type=media_type, headers=headers)

    binary = {"description": "The exact bytes pushed."}

    @app.get(
        "/v1/cards/{card_id}/envelope",
        responses={200: {**binary, "content": {"application/json": {}}}, **_errors(400, 404)},
    )
    async def envelope(card_id: CardId) -> Response:
        return await _bytes((await _card(card_id)).envelope_sha256, "application/json", "envelope")

    @app.get(
        "/v1/cards/{card_id}/manifest",
        responses={200: {**binary, "content": {"application/x-ndjson": {}}}, **_errors(400, 404)},
    )
    async def manifest(card_id: CardId) -> Response:
        record = await _card(card_id)
        return await _bytes(record.manifest_sha256, "application/x-ndjson", "manifest")

    @app.get(
        "/v1/cards/{card_id}/fingerprints",
        responses={
            200: {**binary, "content": {"application/octet-stream": {}}},
            **_errors(400, 404),
        },
    )
    async def fingerprints(card_id: CardId) -> Response:
        record = await _card(card_id)
        return await _bytes(
            record.fingerprints_sha256, "application/octet-stream", "fingerprint index"
        )

    # -- lookups --------------------------------------------------------------------------------

    @app.post(
        "/v1/lookup",
        responses={**_ok(models.LookupAnswer), **_errors(400, 413, 429, 503)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": models.lookup_request_schema()}},
            }
        },
    )
    async def lookup(request: Request) -> Response:
        return await lookups.answer(request.scope, request.receive)

    @app.get("/v1/range/{prefix}", responses={**_ok(models.RangeAnswer), **_errors(400, 429, 503)})
    async def range_query(prefix: Prefix, request: Request) -> Response:
        refused = rate_limited(limiter, request.scope)
        if refused is not None:
            return refused
        digests = await on_database(database, storage.range, prefix)
        return json_response({"prefix": prefix, "digests": digests})

    # -- the log --------------------------------------------------------------------------------

    @app.get(
        "/log/checkpoint",
        responses={200: {"description": "The signed checkpoint.", "content": {"text/plain": {}}}},
    )
    async def checkpoint() -> Response:
        note = await on_database(database, tiles.read_checkpoint)
        if note is None:  # the log is created before serving starts
            raise HTTPException(503, "the log has no checkpoint")
        return Response(
            note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"}
        )

    @app.get(
        "/log/tile/{path:path}",
        responses={
            200: {
                "description": "A tile or entry bundle (c2sp.org/tlog-tiles).",
                "content": {"application/octet-stream": {}},
            },
            **_errors(404),
        },
    )
    async def tile(path: str) -> Response:
        try:
            wanted = Tile.from_path(f"tile/{path}")
        except FormatError:
            raise HTTPException(404, f"not a tile: {path!r}") from None
        data = await on_database(database, tiles.read_tile, wanted)
        if data is None:
            raise HTTPException(404, f"no tile {wanted.path} in this log")
        return Response(
            data, media_type="application/octet-stream", headers={"Cache-Control": _IMMUTABLE}
        )

    return app


__all__ = ["CONTENT_SECURITY_POLICY", "DEFAULT_MAX_UPLOAD", "STATIC", "Settings", "create_app"]
