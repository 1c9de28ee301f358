"""Running a registry: the database, the log key and the app, served by uvicorn.

:func:`open_registry` checks everything that can be checked before serving (the trust store has
a dataset-publisher key, the log key is Ed25519 and the origin a valid key name, the database
holds this log or none) and returns the app; :func:`serve` binds the socket first (so the
address, with the port chosen when 0 is asked, can be announced) and runs uvicorn on it until
it is stopped (SIGINT, SIGTERM).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import time
from collections.abc import Callable, Iterator

from provenance.errors import InputError, LocalIOError
from provenance.keys import PrivateKey
from provenance.registry import db
from provenance.registry.app import Settings, create_app
from provenance.signednote import valid_key_name
from provenance.trust import TrustStore


def open_registry(
    url: str, trust: TrustStore, key: PrivateKey, settings: Settings, *, at: dt.datetime
) -> tuple[db.Database, object]:
    """Open the database at ``url`` and build the app.

    Returns:
        The database (the caller closes it) and the ASGI app.

    Raises:
        InputError: no dataset-publisher key in ``trust``, a bad origin or database URL, a
            log key that is not Ed25519.
        VerificationError: the database holds the log of another key or origin.
        LocalIOError: the database cannot be opened.
    """
    trust.require_keys("dataset-publisher", at=at, what="trust store")
    if not valid_key_name(settings.origin):
        raise InputError(
            f"{settings.origin!r} cannot be a log origin: it must be non-empty, without spaces"
            " or '+'"
        )
    if key.algorithm != "ed25519":
        raise InputError(f"the log key must be Ed25519, not {key.algorithm}")
    database = db.Database.open(url)
    try:
        app = create_app(database, trust, key, settings)
    except BaseException:
        database.close()
        raise
    return database, app


def close_registry(database: db.Database, app: object) -> None:
    """Release what :func:`open_registry` opened: the search's files, the database."""
    try:
        app.state.search.close()  # type: ignore[attr-defined]
    finally:
        database.close()


def serve(
    app: object,
    *,
    host: str,
    port: int,
    on_started: Callable[[str], None],
) -> None:
    """Serve ``app`` on ``host``:``port`` until stopped; ``on_started`` gets the base URL.

    Raises:
        LocalIOError: the address cannot be bound.
    """
    import uvicorn

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(512)
    except OSError as exc:
        sock.close()
        raise LocalIOError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        server_header=False,
        # The per-client lookup limit keys on the connection's address; uvicorn would otherwise
        # take a client's X-Forwarded-For from 127.0.0.1 (any local client, or a proxy passing
        # it on), letting one client spread its lookups over names of its choosing.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    on_started(f"http://{shown}:{bound}")
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again under the handler
    # it found: under the default one the process would die there, before the caller's cleanup
    # (the database, the fingerprint cache's temporary files). SIGTERM is how service managers
    # stop a server: a requested stop, so serve() returns.
    terminated = _on_sigterm_raise()
    try:
        server.run(sockets=[sock])  # on uvloop when installed (the registry extra has it)
    except _TerminatedError:
        pass
    finally:
        terminated()
        sock.close()


class _TerminatedError(Exception):
    """SIGTERM arrived (raised by the handler :func:`_on_sigterm_raise` installs)."""


def _on_sigterm_raise() -> Callable[[], None]:
    """Have SIGTERM raise :class:`_TerminatedError` (in the main thread; signals go nowhere else);
    return what puts the previous handler back."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: object) -> None:
        raise _TerminatedError

    previous = signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


def run_registry(
    url: str | None,
    trust: TrustStore,
    key: PrivateKey,
    settings: Settings,
    *,
    at: dt.datetime,
    host: str,
    port: int,
    on_started: Callable[[str, str], None],
) -> None:
    """Open the registry (:func:`open_registry`; ``url`` None: :func:`db.default_url`) and serve
    it (:func:`serve`) until stopped, then close it. ``on_started`` gets the base URL and the
    database URL without its password.

    Raises:
        InputError, VerificationError, LocalIOError: as :func:`open_registry` and :func:`serve`.
    """
    url = url or db.default_url()
    database, app = open_registry(url, trust, key, settings, at=at)
    try:
        serve(app, host=host, port=port, on_started=lambda base: on_started(base, db.shown(url)))
    finally:
        close_registry(database, app)


@contextlib.contextmanager
def background(app: object, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` on ``host`` (a free port) in a thread of this process; yield its URL.

    For the demo: the server stops when the block ends.

    Raises:
        LocalIOError: the server could not start.
    """
    import threading

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(64)
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        proxy_headers=False,  # as serve()
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, args=([sock],), name="registry", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise LocalIOError("the registry server did not start")
            time.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


__all__ = ["background", "close_registry", "open_registry", "run_registry", "serve"]
