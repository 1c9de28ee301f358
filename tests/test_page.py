"""The creator's page end to end in Chromium, against the real registry (page_support).

Real signed cards and manifests are built and pushed through the CLI; the page is served by the
registry, whose every received request is recorded. Checked: the statuses of an exact copy, a
re-encoded and re-wrapped copy (normalized) and absent works; that no request carries a full
64-hex digest (every request URL, header and body is recorded, in the browser and at the server);
the card links and the proof command; errors (429, unreachable); names shown as text; large files
streamed through hash-wasm; and a screenshot (PROVENANCE_SCREENSHOTS=DIR keeps it for a look).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import unicodedata
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provenance.normtext import norm_text_sha256
from tests.conftest import NOW, ROOT, SAMPLES, run_cli
from tests.page_support import HEX64, PageRegistry, chromium, push_cards

pytestmark = pytest.mark.timeout(300)

FINAL = ("exact", "normalized", "absent", "error")
# Written for this test (no third-party text): accents, an apostrophe, guillemets.
CHANSON = (
    "Au café de la gare, l'été dernier,\nChloé écrivit une chanson :\n"
    "« Où êtes-vous, mes amis ? »\nElle la chantait à l'aube, près du théâtre.\n"
)
SECOND_SPEC = """\
name: classic-fiction-web
version: "2.1.0"
description: Public-domain fiction found on the web.
publisher:
  name: Example Crawl Co.
sources:
  - id: pages
    name: Fiction pages
    kind: web-crawl
    license: LicenseRef-Public-Domain
    paths: ["**"]
"""


@dataclass
class Cards:
    trust: Path
    signed: list[tuple[Path, Path]]
    database: Path
    """A registry's database where both cards are registered."""
    log_key: Path


def _cli(*args: str | Path) -> None:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr


def _card(work: Path, data: Path, spec: Path, name: str) -> tuple[Path, Path]:
    manifest = work / f"{name}.jsonl"
    _cli("manifest", "build", data, "-o", manifest, "--workers", "1")
    _cli(
        "card",
        "build",
        spec,
        "--manifest",
        manifest,
        "-o",
        work / f"{name}.card.json",
        "--now",
        NOW,
    )
    _cli(
        "card",
        "sign",
        work / f"{name}.card.json",
        "--key",
        work / "dev.key",
        "-o",
        work / f"{name}.signed.json",
    )
    return work / f"{name}.signed.json", manifest


@pytest.fixture(scope="module")
def cards(tmp_path_factory: pytest.TempPathFactory) -> Cards:
    """Two real signed cards: the samples dataset, and a second one holding story I again and a
    short French text."""
    work = tmp_path_factory.mktemp("cards")
    _cli("key", "generate", work / "dev.key")
    trust = work / "trust.json"
    _cli(
        "trust", "add", trust, work / "dev.key.pub", "--name", "Dev", "--role", "dataset-publisher"
    )
    second = work / "web"
    (second / "pages").mkdir(parents=True)
    shutil.copy(SAMPLES / "data/books/01-a-scandal-in-bohemia.txt", second / "pages/scandal.txt")
    (second / "pages/chanson.txt").write_text(CHANSON, encoding="utf-8")
    (work / "second.yaml").write_text(SECOND_SPEC)
    signed = [
        _card(work, SAMPLES / "data", SAMPLES / "card-spec.yaml", "example"),
        _card(work, second, work / "second.yaml", "web"),
    ]
    _cli("key", "generate", work / "log.key")
    client_trust = work / "client-trust.json"
    _cli(
        "trust", "add", client_trust, work / "log.key.pub", "--name", "localhost/provenance",
        "--role", "transparency-log",
    )  # fmt: skip
    database = work / "registry.db"
    push_cards(database, trust, work / "log.key", client_trust, signed)
    return Cards(trust, signed, database, work / "log.key")


@pytest.fixture
def registry(cards: Cards) -> Iterator[PageRegistry]:
    with PageRegistry(cards.database, cards.trust, cards.log_key) as registry:
        yield registry


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@dataclass
class Session:
    page: Any
    requests: list[dict[str, Any]]
    errors: list[str]


@pytest.fixture
def session(browser: Any, registry: PageRegistry) -> Iterator[Session]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    seen: list[dict[str, Any]] = []
    errors: list[str] = []
    page.on(
        "request",
        lambda request: seen.append(
            {
                "url": request.url,
                "method": request.method,
                "headers": request.headers,
                "body": request.post_data_buffer or b"",
            }
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.goto(registry.url)
    page.wait_for_selector("body[data-ready=true]", state="attached")
    yield Session(page, seen, errors)
    context.close()


def _wait_until_done(page: Any, count: int) -> dict[str, Any]:
    page.wait_for_selector("body[data-busy=false]", state="attached", timeout=120_000)
    rows = page.locator("[data-testid=result]")
    assert rows.count() == count
    return {row.get_attribute("data-file"): row for row in (rows.nth(k) for k in range(count))}


def _assert_nothing_full_left(session: Session, registry: PageRegistry, digests: set[str]) -> None:
    """No request carries a full digest; every one stays on the registry's origin."""
    assert session.requests
    for request in session.requests:
        assert request["url"].startswith(registry.url), request["url"]
        assert request["method"] == "GET" and request["body"] == b"", request
        carried = (
            request["url"] + json.dumps(request["headers"]) + request["body"].decode("latin-1")
        )
        assert not HEX64.search(carried), request
        assert not any(digest[:6] in carried for digest in digests), request
    for recorded in registry.requests:  # what the server saw, byte for byte
        carried = recorded.path + json.dumps(recorded.headers) + recorded.body.decode("latin-1")
        assert not HEX64.search(carried), recorded
    for path in registry.range_requests():
        assert re.fullmatch(r"/v1/range/[0-9a-f]{5}", path), path


def _rewrapped(text: str) -> bytes:
    """The same text re-encoded and re-wrapped: BOM, CRLF, 50 columns, a different case, and
    decomposed accents; as a reader's own copy might be."""
    paragraphs = [" ".join(p.split()) for p in text.split("\n\n")]
    wrapped = "\r\n\r\n".join(
        textwrap.fill(p, 50, break_on_hyphens=False, break_long_words=False).replace("\n", "\r\n")
        for p in paragraphs
    )
    first, rest = wrapped.split("\r\n", 1)
    return "\ufeff".encode() + unicodedata.normalize("NFD", first.upper() + "\r\n" + rest).encode()


def _creator_files(root: Path) -> dict[str, Path]:
    root.mkdir()
    books = SAMPLES / "data" / "books"
    identity = (books / "03-a-case-of-identity.txt").read_text("utf-8")
    files = {
        "01-a-scandal-in-bohemia.txt": (books / "01-a-scandal-in-bohemia.txt").read_bytes(),
        "a-case-of-identity (my copy).txt": _rewrapped(identity),
        "chanson-NFD.txt": _rewrapped(CHANSON),
        "camera.png": (SAMPLES / "data/images/camera.png").read_bytes(),
        "11-the-adventure-of-the-beryl-coronet.txt": (
            SAMPLES / "works/11-the-adventure-of-the-beryl-coronet.txt"
        ).read_bytes(),
        "sketches.bin": random.Random(7).randbytes(100_000),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = root / name
        paths[name].write_bytes(data)
    return paths


def _digests(path: Path) -> set[str]:
    data = path.read_bytes()
    text = None if b"\0" in data else norm_text_sha256(data)
    return {hashlib.sha256(data).hexdigest()} | ({text} if text else set())


def _screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    directory = Path(os.environ.get("PROVENANCE_SCREENSHOTS") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    page.screenshot(path=str(path), full_page=True)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
    return path


def test_statuses_cards_proof_command_and_no_full_digest_leaves(
    session: Session, registry: PageRegistry, cards: Cards, tmp_path: Path
) -> None:
    page = session.page
    files = _creator_files(tmp_path / "works")
    samples = SAMPLES / "data"
    # The re-encoded copies differ from the registered files byte for byte, not as text.
    for name, original in [
        (
            "a-case-of-identity (my copy).txt",
            (samples / "books/03-a-case-of-identity.txt").read_bytes(),
        ),
        ("chanson-NFD.txt", CHANSON.encode()),
    ]:
        copy = files[name].read_bytes()
        assert hashlib.sha256(copy).digest() != hashlib.sha256(original).digest()
        assert norm_text_sha256(copy) == norm_text_sha256(original)

    page.set_input_files("#files", [str(path) for path in files.values()])
    rows = _wait_until_done(page, len(files))
    statuses = {name: row.get_attribute("data-status") for name, row in rows.items()}
    assert statuses == {
        "01-a-scandal-in-bohemia.txt": "exact",
        "a-case-of-identity (my copy).txt": "normalized",
        "chanson-NFD.txt": "normalized",
        "camera.png": "exact",
        "11-the-adventure-of-the-beryl-coronet.txt": "absent",
        "sketches.bin": "absent",
    }
    # The digests the page computed are Python's.
    for name, path in files.items():
        data = path.read_bytes()
        assert rows[name].get_attribute("data-sha256") == hashlib.sha256(data).hexdigest()
        text = None if b"\0" in data else norm_text_sha256(data)
        assert rows[name].get_attribute("data-text-sha256") == text
        assert rows[name].get_attribute("data-hash-method") == "webcrypto"

    # Matches: both cards for story I (name, version, publisher, entry) with their links.
    ids = {card.name: card.id for card in registry.cards}
    keyid = registry.cards[0].publisher[0]
    matches = rows["01-a-scandal-in-bohemia.txt"].locator("[data-testid=match]")
    assert matches.count() == 2
    found = {}
    for k in range(2):
        match = matches.nth(k)
        found[match.get_attribute("data-card")] = match.inner_text()
        assert match.get_attribute("data-kind") == "sha256"
        card = match.get_attribute("data-card")
        hrefs = match.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
        assert f"{registry.url}v1/cards/{card}" in hrefs
        assert f"{registry.url}v1/cards/{card}/manifest" in hrefs
        assert f"{registry.url}v1/cards/{card}/envelope" in hrefs
    assert set(found) == {ids["example-corpus"], ids["classic-fiction-web"]}
    assert "books/01-a-scandal-in-bohemia.txt" in found[ids["example-corpus"]]
    assert "1.0.0" in found[ids["example-corpus"]]
    assert "pages/scandal.txt" in found[ids["classic-fiction-web"]]
    assert "2.1.0" in found[ids["classic-fiction-web"]]
    assert keyid[:16] in found[ids["example-corpus"]]
    chanson = rows["chanson-NFD.txt"].locator("[data-testid=match]")
    assert chanson.count() == 1 and chanson.get_attribute("data-kind") == "textSha256"
    assert "pages/chanson.txt" in chanson.inner_text()

    # The note and the command that yields a proof.
    exact = rows["01-a-scandal-in-bohemia.txt"]
    assert "Verified by the registry:" in exact.inner_text()
    command = exact.locator(".command code").inner_text()
    assert "provenance lookup '01-a-scandal-in-bohemia.txt' --manifest manifest.jsonl" in command
    assert "--card card.json --trust TRUST.json \\\n    --proof-out '01-a-scandal" in command
    assert "v1/cards/" in command and "/envelope" in command
    assert rows["sketches.bin"].locator(".verify").count() == 0
    assert "No registered dataset lists these bytes." in rows["sketches.bin"].inner_text()

    # What left the browser: 5-hex prefixes, each once, and nothing else about the files.
    digests = set().union(*(_digests(path) for path in files.values()))
    _assert_nothing_full_left(session, registry, digests)
    asked = {path.removeprefix("/v1/range/") for path in registry.range_requests()}
    assert asked == {digest[:5] for digest in digests}
    assert len(registry.range_requests()) == len(asked)
    assert not session.errors
    # The links lead to the registry's bytes (the manifest the command downloads).
    manifest_url = f"{registry.url}v1/cards/{ids['classic-fiction-web']}/manifest"
    with urllib.request.urlopen(manifest_url) as answer:
        assert answer.read() == cards.signed[1][1].read_bytes()
    _screenshot(page, tmp_path, "page-results.png")
    page.set_viewport_size({"width": 390, "height": 844})
    _screenshot(page, tmp_path, "page-results-narrow.png")


@pytest.mark.parametrize(("extra", "method"), [(1, "hash-wasm"), (0, "webcrypto")])
def test_a_large_file_is_streamed_through_hash_wasm(
    session: Session, registry: PageRegistry, tmp_path: Path, extra: int, method: str
) -> None:
    """Above its in-memory limit (256 MiB on a device with 2 GiB, ?device-memory=2 standing for
    navigator.deviceMemory) the page streams the file through hash-wasm instead of WebCrypto."""
    session.page.goto(f"{registry.url}?device-memory=2")
    session.page.wait_for_selector("body[data-ready=true]", state="attached")
    big = tmp_path / "big.bin"
    with big.open("wb") as handle:  # 256 MiB (+ 1 byte), mostly sparse
        handle.write(b"start")
        handle.truncate(256 * 1024 * 1024 + extra)
    session.page.set_input_files("#files", str(big))
    rows = _wait_until_done(session.page, 1)
    row = rows["big.bin"]
    digest = hashlib.sha256()
    with big.open("rb") as handle:
        while block := handle.read(1 << 24):
            digest.update(block)
    assert row.get_attribute("data-hash-method") == method
    assert row.get_attribute("data-sha256") == digest.hexdigest()
    assert row.get_attribute("data-status") == "absent"
    assert row.get_attribute("data-text-sha256") is None  # NUL bytes: not text
    _assert_nothing_full_left(session, registry, {digest.hexdigest()})


def test_small_chunks_and_the_streaming_path_give_the_same_statuses(
    browser: Any, registry: PageRegistry, tmp_path: Path
) -> None:
    """With tiny thresholds (?webcrypto-max=&chunk=, test hooks) every file takes the streaming
    path in 4 KiB reads: the same digests and statuses."""
    files = _creator_files(tmp_path / "works")
    page = browser.new_page()
    page.goto(f"{registry.url}?webcrypto-max=1000&chunk=4096")
    page.wait_for_selector("body[data-ready=true]", state="attached")
    page.set_input_files("#files", [str(path) for path in files.values()])
    rows = _wait_until_done(page, len(files))
    for name, path in files.items():
        data = path.read_bytes()
        assert rows[name].get_attribute("data-sha256") == hashlib.sha256(data).hexdigest()
        text = None if b"\0" in data else norm_text_sha256(data)
        assert rows[name].get_attribute("data-text-sha256") == text
        method = "webcrypto" if len(data) <= 1000 else "hash-wasm"
        assert rows[name].get_attribute("data-hash-method") == method
    assert rows["chanson-NFD.txt"].get_attribute("data-status") == "normalized"
    assert rows["01-a-scandal-in-bohemia.txt"].get_attribute("data-status") == "exact"
    page.close()


def _hash_creator_files(
    session: Session, registry: PageRegistry, root: Path, query: str
) -> tuple[dict[str, Path], dict[str, Any]]:
    """Drop the creator's files on the page opened with ``query`` and wait for every row: each
    row's SHA-256 and norm-text-v1 digests are Python's; the named rows have their statuses;
    no error, and no full digest left the browser. Returns the files and their rows."""
    files = _creator_files(root)
    page = session.page
    page.goto(f"{registry.url}{query}")
    page.wait_for_selector("body[data-ready=true]", state="attached")
    page.set_input_files("#files", [str(path) for path in files.values()])
    rows = _wait_until_done(page, len(files))
    digests: set[str] = set()
    for name, path in files.items():
        data = path.read_bytes()
        text = None if b"\0" in data else norm_text_sha256(data)
        assert rows[name].get_attribute("data-sha256") == hashlib.sha256(data).hexdigest()
        assert rows[name].get_attribute("data-text-sha256") == text
        digests |= _digests(path)
    assert rows["chanson-NFD.txt"].get_attribute("data-status") == "normalized"
    assert rows["01-a-scandal-in-bohemia.txt"].get_attribute("data-status") == "exact"
    assert not session.errors
    _assert_nothing_full_left(session, registry, digests)
    return files, rows


def test_texts_normalized_in_two_halves_by_the_two_workers(
    session: Session, registry: PageRegistry, tmp_path: Path
) -> None:
    """With ?split-min=2 (a test hook) every text file is normalized in two halves, the second by
    the other worker: the same digests and statuses, and still no full digest leaves."""
    files, rows = _hash_creator_files(session, registry, tmp_path / "works", "?split-min=2")
    for name in files:
        halves = rows[name].get_attribute("data-text-halves")
        assert halves == ("true" if name.endswith(".txt") else None), name


@pytest.mark.parametrize("query", ["", "?hash-elsewhere=0"])
def test_the_other_worker_hashes_a_copy_of_each_file(
    session: Session, registry: PageRegistry, tmp_path: Path, query: str
) -> None:
    """By default the worker that reads a text hands a copy of its bytes to the other worker for
    SHA-256 (its phases say so) while it normalizes the text (not a file that is not text); with
    ?hash-elsewhere=0 (a test hook) it hashes them itself: the same digests and statuses."""
    files, rows = _hash_creator_files(session, registry, tmp_path / "works", query)
    for name, path in files.items():
        is_text = b"\0" not in path.read_bytes()
        phases = json.loads(rows[name].get_attribute("data-phases") or "{}")
        assert ("elsewhereHashed" in phases) == (query == "" and is_text), name


def test_rate_limited_then_checked_again(
    session: Session, registry: PageRegistry, tmp_path: Path
) -> None:
    work = tmp_path / "scandal.txt"
    shutil.copy(SAMPLES / "data/books/01-a-scandal-in-bohemia.txt", work)
    registry.exhaust_lookups()  # the real limiter: this client must wait 30 s
    session.page.set_input_files("#files", str(work))
    rows = _wait_until_done(session.page, 1)
    assert rows["scandal.txt"].get_attribute("data-status") == "error"  # never "absent"
    banner = session.page.locator("#banner")
    assert banner.is_visible()
    assert "limiting lookups" in banner.inner_text() and "(HTTP 429)" in banner.inner_text()
    assert "Try again in 30 s" in banner.inner_text()
    assert "HTTP 429" in rows["scandal.txt"].inner_text()
    registry.let_time_pass(3600)
    session.page.get_by_role("button", name="Check again").click()
    session.page.wait_for_selector("[data-testid=result][data-status=exact]")
    assert not banner.is_visible()
    _assert_nothing_full_left(session, registry, _digests(work))


def test_registry_unreachable(session: Session, registry: PageRegistry, tmp_path: Path) -> None:
    work = tmp_path / "scandal.txt"
    shutil.copy(SAMPLES / "data/books/01-a-scandal-in-bohemia.txt", work)
    registry.stop()  # the page and its workers are loaded; the registry goes away
    session.page.set_input_files("#files", str(work))
    rows = _wait_until_done(session.page, 1)
    assert rows["scandal.txt"].get_attribute("data-status") == "error"
    assert "could not be reached" in session.page.locator("#banner").inner_text()
    assert (
        rows["scandal.txt"].get_attribute("data-sha256")
        == hashlib.sha256(work.read_bytes()).hexdigest()
    )


def test_malformed_answer_is_an_error_not_absent(
    session: Session, registry: PageRegistry, tmp_path: Path
) -> None:
    work = tmp_path / "scandal.txt"
    shutil.copy(SAMPLES / "data/books/01-a-scandal-in-bohemia.txt", work)
    digest = hashlib.sha256(work.read_bytes()).hexdigest()
    # A registry answering with a digest outside the prefix asked for (injected in front of
    # the real registry, which never answers so).
    registry.tamper_range = lambda prefix: {
        "prefix": prefix,
        "digests": [{"digest": "f" * 64, "kind": "sha256", "matches": []}],
    }
    try:
        session.page.set_input_files("#files", str(work))
        rows = _wait_until_done(session.page, 1)
    finally:
        registry.tamper_range = None
    assert rows["scandal.txt"].get_attribute("data-status") == "error"
    assert "malformed answer" in session.page.locator("#banner").inner_text()
    assert digest[:5] != "fffff"


def test_names_and_registry_text_are_shown_as_text(
    session: Session, registry: PageRegistry, tmp_path: Path
) -> None:
    name = '<img src=x onerror="window.__pwned=1">.txt'
    work = tmp_path / name
    work.write_bytes(b"an unpublished poem\n")
    session.page.set_input_files("#files", str(work))
    rows = _wait_until_done(session.page, 1)
    assert rows[name].get_attribute("data-status") == "absent"
    assert rows[name].locator(".file-name").inner_text() == name
    assert session.page.evaluate("() => window.__pwned") is None
    assert session.page.locator("img").count() == 0


def test_drop_zone_and_labels(session: Session, registry: PageRegistry) -> None:
    page = session.page
    assert page.get_by_label(re.compile("choose files")).get_attribute("id") == "files"
    assert page.get_by_role("heading", level=1).inner_text() == "Is my work in a training dataset?"
    page.evaluate(
        """() => {
          const transfer = new DataTransfer();
          transfer.items.add(new File(["an unpublished poem\\n"], "dropped.txt"));
          const zone = document.getElementById("dropzone");
          const drop = { dataTransfer: transfer, bubbles: true, cancelable: true };
          zone.dispatchEvent(new DragEvent("drop", drop));
        }"""
    )
    rows = _wait_until_done(page, 1)
    assert rows["dropped.txt"].get_attribute("data-status") == "absent"
    assert (
        rows["dropped.txt"].get_attribute("data-sha256")
        == hashlib.sha256(b"an unpublished poem\n").hexdigest()
    )


def test_the_command_shown_yields_a_proof(
    session: Session, registry: PageRegistry, cards: Cards, tmp_path: Path
) -> None:
    """Run the commands the page shows for an exact copy, as the creator would (with curl when
    it is installed), and verify the proof they write."""
    name = "01-a-scandal-in-bohemia.txt"
    shutil.copy(SAMPLES / "data/books" / name, tmp_path / name)
    session.page.set_input_files("#files", str(tmp_path / name))
    rows = _wait_until_done(session.page, 1)
    assert rows[name].get_attribute("data-status") == "exact"
    command = rows[name].locator(".command code").text_content()
    assert command is not None
    shutil.copy(cards.trust, tmp_path / "TRUST.json")
    python = f"{sys.executable} -m provenance"
    prelude = "" if shutil.which("curl") else _CURL_STAND_IN.format(python=sys.executable)
    script = prelude + command.replace("provenance lookup", f"{python} lookup")
    script += f"\n{python} proof verify {shlex.quote(name + '.proof.json')} --card card.json"
    script += " --trust TRUST.json --json > verdict.json"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exact" in result.stdout  # what lookup printed
    verdict = json.loads((tmp_path / "verdict.json").read_text())
    assert verdict["ok"] is True and verdict["claim"] == "present"
    assert verdict["work"] == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


# Only where curl is missing: the same download (-o FILE URL) in Python.
_CURL_STAND_IN = """curl() {{
  {python} -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[2], sys.argv[1])' \\
    "$3" "$4"
}}
"""
