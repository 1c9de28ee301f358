"""Downloads that hold: the only module that imports ``requests``.

Every download enforces:

- a connect timeout, a read timeout between bytes, **and** a total deadline (defaults 10 s, 30 s,
  60 s): a server dripping one byte per read timeout cannot hold the client
  (docs/security.md L9); the socket timeout is lowered to whatever is left of the deadline
  before each read;
- a size cap counted on **decoded** bytes (a gzip bomb is cut off at the cap, L8);
  ``Accept-Encoding: identity`` is sent;
- no redirect to another origin (scheme, host and port must stay the same; at most 3 hops, H3);
- ``trust_env = False``: proxies, ``.netrc`` credentials and ``REQUESTS_CA_BUNDLE`` from the
  environment are ignored (H2, H8); a proxy is only used when given explicitly; TLS is verified.

:func:`check_base_url` accepts only ``https://`` URLs, or plain ``http://`` to a loopback
address (tests, the demo). Callers that need another error vocabulary (python-tuf's fetcher
interface in :mod:`provenance.lists.client`) translate the exceptions below.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from provenance import __version__
from provenance.errors import FetchError, InputError, ParameterError

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_TOTAL_TIMEOUT = 60.0
DEFAULT_MAX_BYTES = 4 * 1024**3
MAX_REDIRECTS = 3
_CHUNK = 64 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class HTTPStatusError(FetchError):
    """The server answered with a status other than 200 (after same-origin redirects)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class SlowDownloadError(FetchError):
    """A connect, read or total timeout expired."""


class TooLargeError(FetchError):
    """The body is (or announces to be) larger than the size cap."""


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """Limits applied to every download (see the module docstring)."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    proxy: str | None = None

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if not getattr(self, name) > 0:
                raise ParameterError(name, "must be a positive number of seconds")
        if self.max_bytes < 1:
            raise ParameterError("max_bytes", "must be positive")


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer of any status: its status, body and headers."""

    status: int
    body: bytes
    headers: Mapping[str, str]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), port)


class Fetcher:
    """An HTTP client on ``requests`` that enforces :class:`FetchOptions` per download."""

    def __init__(self, options: FetchOptions | None = None) -> None:
        self.options = options or FetchOptions()
        self.session = requests.Session()
        # Decided explicitly: nothing from the environment (proxies, .netrc, CA bundle overrides).
        self.session.trust_env = False
        self.session.headers.update(
            {"User-Agent": f"provenance/{__version__}", "Accept-Encoding": "identity"}
        )
        if self.options.proxy:
            self.session.proxies = {"http": self.options.proxy, "https": self.options.proxy}

    def close(self) -> None:
        """Close the HTTP session."""
        self.session.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, url: str, *, max_bytes: int | None = None) -> bytes:
        """Download ``url`` whole, at most ``max_bytes`` (and the options' cap) decoded bytes.

        Raises:
            HTTPStatusError, SlowDownloadError, TooLargeError, FetchError: see :meth:`open`.
        """
        return b"".join(self.open(url, max_bytes=max_bytes))

    def open(self, url: str, *, max_bytes: int | None = None) -> Iterator[bytes]:
        """Start the download of ``url``; return an iterator over its decoded body.

        The request is made (and its status checked) before this returns; the body's limits
        are enforced while it is iterated.

        Raises:
            HTTPStatusError: a status other than 200.
            SlowDownloadError: a timeout (connect, between bytes, or the total deadline).
            TooLargeError: more than the cap (announced, or counted after decoding).
            FetchError: connection failure, a refused redirect, a broken body.
        """
        options = self.options
        cap = options.max_bytes if max_bytes is None else min(max_bytes, options.max_bytes)
        deadline = time.monotonic() + options.total_timeout
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SlowDownloadError(
                    f"download of {url} exceeded {options.total_timeout:g} s in total"
                )
            with _request_errors(current, options, "download"):
                response = self.session.get(
                    current,
                    stream=True,
                    allow_redirects=False,
                    verify=True,
                    timeout=(
                        min(options.connect_timeout, remaining),
                        min(options.read_timeout, remaining),
                    ),
                )
            if response.status_code in _REDIRECTS:
                location = response.headers.get("Location", "")
                response.close()
                target = urljoin(current, location)
                if _origin(target) != _origin(current):
                    raise FetchError(
                        f"refusing redirect from {current} to another origin: {target}"
                    )
                current = target
                continue
            if response.status_code != 200:
                response.close()
                raise HTTPStatusError(
                    f"GET {current}: HTTP {response.status_code}", response.status_code
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > cap:
                response.close()
                raise TooLargeError(
                    f"download of {current} announces {declared} bytes, more than the"
                    f" {cap}-byte limit"
                )
            return self._body(response, current, deadline, cap)
        raise FetchError(f"download of {url}: more than {MAX_REDIRECTS} redirects")

    def post(
        self,
        url: str,
        *,
        data: Any,
        headers: Mapping[str, str],
        max_bytes: int | None = None,
    ) -> Answer:
        """POST ``data`` (bytes, or a file-like object streamed as it is read) to ``url``.

        Any status is returned, with the body of the answer (at most ``max_bytes`` decoded
        bytes); redirects are not followed. The connect and read timeouts apply; the total
        deadline applies to reading the answer once the upload is sent.

        Raises:
            SlowDownloadError: a timeout.
            TooLargeError: an answer larger than the cap.
            FetchError: connection failure or a broken answer.
        """
        options = self.options
        cap = options.max_bytes if max_bytes is None else min(max_bytes, options.max_bytes)
        with _request_errors(url, options, "POST to"):
            response = self.session.post(
                url,
                data=data,
                headers=dict(headers),
                stream=True,
                allow_redirects=False,
                verify=True,
                timeout=(options.connect_timeout, options.read_timeout),
            )
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            response.close()
            raise TooLargeError(
                f"the answer of {url} announces {declared} bytes, more than the {cap}-byte limit"
            )
        deadline = time.monotonic() + options.total_timeout
        body = b"".join(self._body(response, url, deadline, cap))
        return Answer(response.status_code, body, dict(response.headers))

    def _body(
        self, response: requests.Response, url: str, deadline: float, cap: int
    ) -> Iterator[bytes]:
        options = self.options
        raw: urllib3.HTTPResponse = response.raw
        received = 0
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SlowDownloadError(
                        f"download of {url} exceeded {options.total_timeout:g} s in total"
                        f" (received {received} bytes); aborted"
                    )
                _set_read_timeout(raw, min(options.read_timeout, remaining))
                try:
                    # read1 returns after one socket read, so the deadline is checked between
                    # reads; decoded output is bounded by the amount asked for (urllib3 >= 2.7).
                    chunk = raw.read1(_CHUNK, decode_content=True)
                except (urllib3.exceptions.ReadTimeoutError, TimeoutError):
                    if deadline - time.monotonic() <= 0:
                        raise SlowDownloadError(
                            f"download of {url} exceeded {options.total_timeout:g} s in total"
                            f" (received {received} bytes); aborted"
                        ) from None
                    raise SlowDownloadError(
                        f"download of {url}: no data for {options.read_timeout:g} s"
                        f" (received {received} bytes); aborted"
                    ) from None
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise FetchError(
                        f"download of {url} broke off after {received} bytes: {_reason(exc)}"
                    ) from None
                if not chunk:
                    return
                received += len(chunk)
                if received > cap:
                    raise TooLargeError(
                        f"download of {url} exceeded the {cap}-byte limit"
                        " (counted after decoding); aborted"
                    )
                yield chunk
        finally:
            response.close()


def _set_read_timeout(raw: urllib3.HTTPResponse, seconds: float) -> None:
    connection: Any = raw.connection
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(max(seconds, 0.001))


@contextlib.contextmanager
def _request_errors(url: str, options: FetchOptions, action: str) -> Iterator[None]:
    """Turn what ``requests`` raises while asking ``url`` into this module's errors.

    Raises:
        SlowDownloadError: a connect or read timeout.
        FetchError: any other failure, said as ``cannot <action> <url>: <reason>``.
    """
    try:
        yield
    except requests.exceptions.ConnectTimeout:
        raise SlowDownloadError(
            f"connect timeout to {url} ({options.connect_timeout:g} s)"
        ) from None
    except requests.exceptions.Timeout:
        raise SlowDownloadError(
            f"no response from {url} within {options.read_timeout:g} s"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise FetchError(f"cannot {action} {url}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """A short reason for a transport error (the innermost message, without addresses' noise)."""
    text = str(exc)
    for inner in (exc.__cause__, exc.__context__, *getattr(exc, "args", ())):
        if isinstance(inner, BaseException) and str(inner):
            text = str(inner)
    return text.splitlines()[0][:300] if text else type(exc).__name__


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback IP literal."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, *, what: str) -> str:
    """Return the normalized base URL of a service (no trailing slash).

    ``what`` says what the URL should point at, for messages ("a list repository").

    Raises:
        InputError: not ``https://`` (or ``http://`` to a loopback address), has credentials, a
            query or a fragment.
    """
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - a port out of range or not a number raises here
    except ValueError as exc:
        raise InputError(f"{url}: not a URL of {what} ({exc})") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InputError(f"{url}: not an http(s) URL of {what}")
    if any(character.isspace() for character in parts.netloc):
        raise InputError(f"{url}: not a URL of {what} (a space in its host)")
    if parts.username or parts.password:
        raise InputError(f"{url}: credentials in the URL are not allowed")
    if parts.query or parts.fragment:
        raise InputError(f"{url}: the URL of {what} has no query or fragment")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise InputError(f"{url}: use https:// (plain http is allowed only to loopback addresses)")
    return parts.geturl().rstrip("/")


__all__ = [
    "Answer",
    "FetchOptions",
    "Fetcher",
    "HTTPStatusError",
    "SlowDownloadError",
    "TooLargeError",
    "check_base_url",
    "is_loopback",
]
