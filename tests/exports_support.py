"""Helpers for the export tests: a signed sample card, offline SPDX model files, no network."""

from __future__ import annotations

import contextlib
import gzip
import io
import shutil
import socket
import sys
import urllib.request
import urllib.response
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from provenance.keys import PrivateKey, write_key_pair
from tests.conftest import NOW, SAMPLES, VECTORS, run_cli

SPDX301 = VECTORS / "spdx301"
# What spdx3-validate (and rdflib's JSON-LD parser) download, served from the vendored copies.
SPDX_FILES = {
    "https://spdx.org/rdf/3.0.1/spdx-context.jsonld": (
        "spdx-context.jsonld",
        "application/ld+json",
    ),
    "https://spdx.org/rdf/3.0.1/spdx-model.ttl": ("spdx-model.ttl", "text/turtle"),
    "https://spdx.org/schema/3.0.1/spdx-json-schema.json": (
        "spdx-json-schema.json.gz",
        "application/json",
    ),
}


def spdx_file(url: str) -> bytes:
    """The vendored bytes served for ``url``."""
    name, _ = SPDX_FILES[url]
    data = (SPDX301 / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


class _SpdxFiles(urllib.request.BaseHandler):
    """Answers the SPDX 3.0.1 URLs from disk; any other URL is refused."""

    handler_order = 100  # before the HTTP(S) handlers

    def _answer(self, request: urllib.request.Request) -> Any:
        url = request.full_url
        if url not in SPDX_FILES:
            raise AssertionError(f"unexpected download of {url} during an offline test")
        headers = Message()
        headers["Content-Type"] = SPDX_FILES[url][1]
        response = urllib.response.addinfourl(io.BytesIO(spdx_file(url)), headers, url, 200)
        response.msg = "OK"  # type: ignore[attr-defined]
        return response

    https_open = _answer
    http_open = _answer


@contextlib.contextmanager
def spdx_offline() -> Iterator[None]:
    """Serve the SPDX 3.0.1 context, model and schema from tests/vectors/spdx301."""
    previous = urllib.request._opener  # type: ignore[attr-defined]
    urllib.request.install_opener(urllib.request.build_opener(_SpdxFiles()))
    try:
        yield
    finally:
        urllib.request._opener = previous  # type: ignore[attr-defined]


@contextlib.contextmanager
def no_network() -> Iterator[list[str]]:
    """Refuse every connection to a non-loopback address; yield the addresses attempted."""
    attempts: list[str] = []
    original = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else str(address)
        if isinstance(address, tuple) and not (
            str(host).startswith("127.") or host in ("::1", "localhost")
        ):
            attempts.append(str(host))
            raise OSError(f"network disabled in this test (connect to {host})")
        return original(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    try:
        yield attempts
    finally:
        socket.socket.connect = original  # type: ignore[method-assign]


def validate_spdx3(path: Path) -> tuple[int, str]:
    """Run spdx3-validate on ``path`` offline; return its exit code and what it printed."""
    from spdx3_validate.main import main

    output = io.StringIO()
    with spdx_offline(), no_network(), contextlib.redirect_stdout(output):
        code = main(["--json", str(path), "--quiet"])
    return code, output.getvalue()


def spdx_model_roundtrip(path: Path) -> tuple[set[str], str]:
    """Deserialize ``path`` with spdx-python-model, link it, serialize it again.

    Returns:
        The ids that linking could not resolve, and the serialized document.
    """
    from spdx_python_model import v3_0_1 as spdx

    objset = spdx.SHACLObjectSet()
    with path.open("rb") as handle:
        spdx.JSONLDDeserializer().read(handle, objset)
    missing = objset.link()
    out = io.BytesIO()
    spdx.JSONLDSerializer().write(objset, out)
    return set(missing), out.getvalue().decode("utf-8")


@dataclass(frozen=True)
class Sample:
    """The signed sample cards the export tests use (files under ``root``)."""

    root: Path
    data: Path
    card: Path
    """samples/card-spec.yaml over samples/data: signed by the developer and an auditor."""
    manifest: Path
    records_card: Path
    """samples/records-spec.yaml over samples/records.jsonl (URLs, for the top domains)."""
    records_manifest: Path
    trust: Path
    p256_key: Path
    ed25519_key: Path


def build_sample(root: Path) -> Sample:
    """Build, sign and trust the sample cards with the CLI, as a user would."""
    data = root / "data"
    shutil.copytree(SAMPLES / "data", data)
    shutil.copy(SAMPLES / "records.jsonl", root / "records.jsonl")
    for name, algorithm in (("dev", "ed25519"), ("auditor", "ecdsa-p256"), ("oms", "ecdsa-p256")):
        write_key_pair(PrivateKey.generate(algorithm), root / f"{name}.key")  # type: ignore[arg-type]
    steps = [
        ["manifest", "build", data, "-o", root / "manifest.jsonl"],
        ["card", "build", SAMPLES / "card-spec.yaml", "--manifest", root / "manifest.jsonl",
         "-o", root / "card.json"],
        ["card", "sign", root / "card.json", "--key", root / "dev.key",
         "-o", root / "card.signed.json"],
        ["card", "sign", root / "card.signed.json", "--key", root / "auditor.key",
         "-o", root / "card.signed.json"],
        ["manifest", "build", root / "records.jsonl", "-o", root / "records.manifest.jsonl"],
        ["card", "build", SAMPLES / "records-spec.yaml", "--manifest",
         root / "records.manifest.jsonl", "-o", root / "records.card.json"],
        ["card", "sign", root / "records.card.json", "--key", root / "dev.key",
         "-o", root / "records.card.signed.json"],
        ["trust", "add", root / "trust.json", root / "dev.key.pub", "--name", "Example AI Lab",
         "--role", "dataset-publisher"],
        ["trust", "add", root / "trust.json", root / "auditor.key.pub", "--name",
         "Independent Auditor", "--role", "auditor"],
    ]  # fmt: skip
    for step in steps:
        result = run_cli(*step, "--now", NOW) if step[:2] == ["card", "build"] else run_cli(*step)
        assert result.returncode == 0, (step, result.stdout, result.stderr)
    return Sample(
        root=root,
        data=data,
        card=root / "card.signed.json",
        manifest=root / "manifest.jsonl",
        records_card=root / "records.card.signed.json",
        records_manifest=root / "records.manifest.jsonl",
        trust=root / "trust.json",
        p256_key=root / "oms.key",
        ed25519_key=root / "dev.key",
    )


def offline_env() -> dict[str, str]:
    """Environment for a validator run in a subprocess: any HTTP(S) request goes to a closed
    loopback port and fails at once."""
    dead = "http://127.0.0.1:9"
    return {
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "http_proxy": dead,
        "https_proxy": dead,
        "NO_PROXY": "",
        "no_proxy": "",
        "HF_HUB_OFFLINE": "1",
    }


def peer_script(name: str) -> str:
    """The console script ``name`` installed beside this Python (a test peer)."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed: pip install '.[test]'"
    return str(path)
