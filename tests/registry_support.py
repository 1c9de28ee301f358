"""Support for the registry's tests: a private PostgreSQL cluster, registry servers run as users
run them (``provenance registry serve`` in a subprocess on 127.0.0.1), and signed cards.

PostgreSQL: a throwaway cluster per test session, in a temporary directory, on a free port,
listening on 127.0.0.1 only; ``initdb`` refuses to run as root, so as root it runs as the
``postgres`` user. Each test module gets its own database in it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provenance import _json, card
from provenance.envelope import sign_envelope
from provenance.keys import PrivateKey
from provenance.manifest import ManifestEntry, write_manifest
from tests.conftest import NOW, ROOT, SAMPLES, run_cli

ORIGIN = "localhost/provenance"
AT = dt.datetime(2026, 11, 29, 12, tzinfo=dt.UTC)
PG_VERSIONS = ("15", "16", "17")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- PostgreSQL ----------------------------------------------------------------------------------


def _pg_bindir() -> Path | None:
    for version in PG_VERSIONS:
        candidate = Path(f"/usr/lib/postgresql/{version}/bin")
        if (candidate / "initdb").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@dataclass
class PostgresCluster:
    """A private cluster; :meth:`database` creates a fresh database and returns its URL."""

    port: int
    directory: Path
    bindir: Path
    _count: int = 0

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def database(self, name: str) -> str:
        import psycopg

        self._count += 1
        database = f"{name}_{self._count}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"


@contextlib.contextmanager
def postgres_cluster(*, durable: bool = False) -> Iterator[PostgresCluster]:
    """Start a private PostgreSQL cluster on 127.0.0.1 (fsync off unless ``durable``)."""
    bindir = _pg_bindir()
    if bindir is None:
        pytest.fail("PostgreSQL is missing: apt-get install -y postgresql (.ci/run does)")
    directory = Path(tempfile.mkdtemp(prefix="provenance-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
        shutil.chown(directory, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, log = directory / "data", directory / "log"
    port = free_port()

    def run(*args: str | Path) -> None:
        result = subprocess.run(
            [*as_postgres, *map(str, args)], capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            pytest.fail(f"{args[0]} failed: {result.stdout}{result.stderr}")

    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {directory}"
    if not durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    try:
        run(bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        run(bindir / "pg_ctl", "-D", data, "-l", log, "-o", options, "-w", "start")
        yield PostgresCluster(port, directory, bindir)
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(
                [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(directory, ignore_errors=True)


# --- registry servers ----------------------------------------------------------------------------


@dataclass
class RegistryServer:
    """``provenance registry serve`` in a subprocess; use as a context manager or start/stop."""

    args: list[str]
    port: int = 0
    home: Path | None = None
    tmpdir: Path | None = None
    """The server's TMPDIR (where uploads are streamed), to check what it leaves there."""
    url: str = ""
    process: subprocess.Popen[str] | None = None
    stderr: list[str] = field(default_factory=list)

    def start(self, timeout: float = 90) -> RegistryServer:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("PROVENANCE_NOW", None)
        if self.home is not None:
            env["PROVENANCE_HOME"] = str(self.home)
        if self.tmpdir is not None:
            env["TMPDIR"] = str(self.tmpdir)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "provenance", "registry", "serve", *self.args]
            + ["--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.process.stdout.readline()))  # type: ignore[union-attr]
        reader.daemon = True
        reader.start()
        reader.join(timeout)
        if not lines or "serving http://" not in lines[0]:
            self.stop()
            pytest.fail(f"the registry did not start: {lines} {''.join(self.stderr)}")
        self.url = lines[0].split("serving ", 1)[1].split(" ", 1)[0]
        self.port = int(self.url.rsplit(":", 1)[1])
        threading.Thread(target=self._drain, daemon=True).start()
        return self

    def _drain(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request; any status is returned (status, lowercase headers, body)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def get_json(url: str) -> Any:
    status, _, body = http("GET", url)
    assert status == 200, (status, body)
    return json.loads(body)


def post_json(url: str, document: Any) -> tuple[int, Any]:
    status, _, body = http(
        "POST", url, json.dumps(document).encode(), {"Content-Type": "application/json"}
    )
    return status, json.loads(body)


def multipart(parts: list[tuple[str, bytes]], boundary: str = "test-boundary-7a1c") -> bytes:
    chunks = []
    for name, data in parts:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(chunks) + f"--{boundary}--\r\n".encode()


def push_raw(url: str, parts: list[tuple[str, bytes]]) -> tuple[int, Any]:
    boundary = "test-boundary-7a1c"
    status, _, body = http(
        "POST",
        f"{url}/v1/cards",
        multipart(parts, boundary),
        {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def wait_until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.05)


# --- cards ---------------------------------------------------------------------------------------


def ok(*args: str | Path) -> str:
    result = run_cli(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@dataclass
class Keys:
    """A log key, a publisher key, the registry's trust store and the clients' one."""

    directory: Path
    log_key: Path
    dev_key: Path
    cards_trust: Path
    """What the registry trusts: the publisher (dataset-publisher)."""
    trust: Path
    """What clients trust: the log (transparency-log) and the publisher."""


def make_keys(directory: Path) -> Keys:
    directory.mkdir(parents=True, exist_ok=True)
    log_key, dev_key = directory / "log.key", directory / "dev.key"
    ok("key", "generate", log_key)
    ok("key", "generate", dev_key)
    cards_trust, trust = directory / "cards-trust.json", directory / "trust.json"
    ok(
        "trust",
        "add",
        cards_trust,
        f"{dev_key}.pub",
        "--name",
        "Dev",
        "--role",
        "dataset-publisher",
    )
    ok("trust", "add", trust, f"{log_key}.pub", "--name", ORIGIN, "--role", "transparency-log")
    ok("trust", "add", trust, f"{dev_key}.pub", "--name", "Dev", "--role", "dataset-publisher")
    return Keys(directory, log_key, dev_key, cards_trust, trust)


@dataclass
class Card:
    signed: Path
    manifest: Path
    sidecar: Path | None

    @property
    def id(self) -> str:
        import base64
        import hashlib

        envelope = json.loads(self.signed.read_bytes())
        return hashlib.sha256(base64.b64decode(envelope["payload"])).hexdigest()

    def push_args(self, url: str, trust: Path) -> list[str | Path]:
        args: list[str | Path] = ["registry", "push", self.signed, "--manifest", self.manifest]
        if self.sidecar is not None:
            args += ["--fingerprints", self.sidecar]
        return [*args, "--registry", url, "--trust", trust]

    def parts(self) -> list[tuple[str, bytes]]:
        parts = [("card", self.signed.read_bytes()), ("manifest", self.manifest.read_bytes())]
        if self.sidecar is not None:
            parts.append(("fingerprints", self.sidecar.read_bytes()))
        return parts


SPEC = """\
name: {name}
version: "{version}"
description: A dataset for the registry's tests.
publisher:
  name: Example Lab
sources:
  - id: all
    name: Everything
    kind: web-crawl
    license: LicenseRef-Public-Domain
    paths: ["**"]
"""


def make_card(
    keys: Keys,
    data: Path,
    name: str,
    *,
    version: str = "1.0.0",
    spec: Path | None = None,
    fingerprints: bool = True,
    key: Path | None = None,
) -> Card:
    """Build, card and sign ``data``: its manifest and its fingerprint sidecar, to which the
    card commits unless ``fingerprints`` is false (the sidecar is then kept as ``aside.fp``)."""
    work = keys.directory / f"{name}-{version}"
    work.mkdir(parents=True, exist_ok=True)
    manifest = work / "manifest.jsonl"
    ok("manifest", "build", data, "-o", manifest, "--workers", "1")
    if not fingerprints:
        (work / "manifest.jsonl.fp").rename(work / "aside.fp")
    if spec is None:
        spec = work / "spec.yaml"
        spec.write_text(SPEC.format(name=name, version=version))
    ok("card", "build", spec, "--manifest", manifest, "-o", work / "card.json", "--now", NOW)
    signed = work / "signed.json"
    ok("card", "sign", work / "card.json", "--key", key or keys.dev_key, "-o", signed)
    sidecar = work / "manifest.jsonl.fp"
    return Card(signed, manifest, sidecar if sidecar.exists() else None)


def sample_data(directory: Path) -> Path:
    """A copy of the bundled samples' data."""
    target = directory / "data"
    if not target.exists():
        shutil.copytree(SAMPLES / "data", target)
    return target


@dataclass
class Synthetic:
    signed: Path
    manifest: Path
    id: str
    digests: list[str]


def synthetic_card(
    directory: Path,
    key: PrivateKey,
    name: str,
    count: int = 0,
    *,
    texts: bool = False,
    entries: list[ManifestEntry] | None = None,
) -> Synthetic:
    """A signed card over ``count`` made-up entries, or over ``entries`` (built in process)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(name)
    made = entries or [
        ManifestEntry(
            id=f"{name}/{i:05d}.txt",
            sha256=f"{rng.getrandbits(256):064x}",
            size=i + 1,
            textSha256=f"{rng.getrandbits(256):064x}" if texts and i % 2 else None,
        )
        for i in range(count)
    ]
    entries = sorted(made, key=ManifestEntry.sort_key)
    manifest = directory / "manifest.jsonl"
    summary = write_manifest(entries, manifest)
    spec = card.load_spec(
        json.dumps(
            {
                "name": name,
                "version": "1",
                "description": "made-up entries",
                "publisher": {"name": "Example Lab"},
                "sources": [
                    {
                        "id": "s",
                        "name": "All",
                        "kind": "licensed",
                        "license": "MIT",
                        "paths": ["**"],
                    }
                ],
            }
        ).encode(),
        what="spec",
    )
    statement = card.build_statement(
        spec, entries, lambda: summary, manifest_name=manifest.name, created=AT
    )
    payload = _json.canonical(statement.to_dict())
    signed = directory / "signed.json"
    signed.write_bytes(sign_envelope(card.PAYLOAD_TYPE, payload, [key]).to_json())
    digests = [entry.sha256 for entry in entries]
    return Synthetic(signed, manifest, hashlib.sha256(payload).hexdigest(), digests)
