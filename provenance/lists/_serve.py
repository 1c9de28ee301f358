"""Serve a list repository directory over HTTP on 127.0.0.1 (for the demo and local trials).

Any static web host can serve a repository; this one exists so that ``provenance demo`` can play
the whole story offline. It binds to loopback only, on an ephemeral port, and is shut down when
the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Keep the demo's output readable."""


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on ``http://127.0.0.1:<ephemeral port>`` while the block runs.

    Returns:
        (yields) the base URL, without a trailing slash.
    """
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
