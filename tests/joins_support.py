"""Real-ish lists and records for the binary list index and the bucketed joins: real blocklist
heads (tests/vectors/blocklists), evasive spellings of listed hosts, content and normalized-text
digests (some listed twice, in two lists, or with a note), URLs that cannot be evaluated."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from provenance.errors import InputError
from provenance.lists.entries import parse_entries, prepare_entries
from provenance.lists.model import ListEntry

VECTORS = Path(__file__).parent / "vectors" / "blocklists"


def sha(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def _from_vector(name: str, *, category: str, entry_type: str | None = None) -> list[ListEntry]:
    lines = (VECTORS / name).read_bytes().splitlines()
    skipped: list[InputError] = []  # a vector's public suffixes (dweb.link) are refused
    parsed = parse_entries(
        lines,
        category=category,  # type: ignore[arg-type]
        entry_type=entry_type,  # type: ignore[arg-type]
        what=name,
        skipped=skipped,
    )
    return list(prepare_entries(parsed, what=name))


def content(number: int) -> str:
    return sha(f"record {number}")


def text(number: int) -> str:
    return sha(f"normalized text {number}")


def make_lists() -> tuple[list[ListEntry], list[ListEntry]]:
    """Two lists: piracy (domains, URL prefixes, content digests) and opt-out (text digests,
    a few domains, some content digests also on the piracy list, one digest with a note)."""
    piracy = _from_vector("ut1-warez-domains-head.txt", category="piracy")
    piracy += _from_vector("blocklistproject-piracy-head.txt", category="piracy")
    piracy += _from_vector("ut1-warez-urls.txt", category="piracy", entry_type="url-prefix")
    piracy += [
        ListEntry(type="sha256", value=content(n), category="piracy") for n in range(0, 3000, 3)
    ]
    optout = _from_vector("ut1-filehosting-domains-153.txt", category="opt-out")
    optout += [
        ListEntry(type="text-sha256", value=text(n), category="opt-out") for n in range(0, 3000, 7)
    ]
    optout += [
        ListEntry(type="sha256", value=content(n), category="opt-out") for n in range(0, 300, 9)
    ]
    optout.append(
        ListEntry(type="sha256", value=content(1), category="other", note='a note, "quoted"')
    )
    unique = {(e.type, e.value): e for e in piracy}
    piracy = sorted(unique.values(), key=ListEntry.sort_key)
    optout = sorted({(e.type, e.value): e for e in optout}.values(), key=ListEntry.sort_key)
    return piracy, optout


def _evasive(host: str, rng: random.Random) -> str:
    spellings = [
        f"https://{host.upper()}./x",
        f"http://{host}\\@mirror.example/x",
        f"https://user@www.{host}:8443/x",
        f"https://{host.replace('.', '%2E', 1)}/x",
        f"http:\\\\{host}\\path",
        f"HTTPS://a.b.{host}/?q",
        f"  http://{host}/  ",
    ]
    return rng.choice(spellings)


def make_records(
    count: int, piracy: list[ListEntry], optout: list[ListEntry], *, seed: int = 12
) -> tuple[list[str | None], list[str | None], list[str | None]]:
    """URLs, content digests and normalized-text digests of ``count`` records."""
    rng = random.Random(seed)
    hosts = [e.value for e in piracy + optout if e.type == "domain"]
    prefixes = [e.value for e in piracy if e.type == "url-prefix"]
    urls: list[str | None] = []
    contents: list[str | None] = []
    texts: list[str | None] = []
    for number in range(count):
        roll = rng.random()
        if roll < 0.1:
            urls.append(_evasive(rng.choice(hosts), rng))
        elif roll < 0.13:
            urls.append(f"http://{rng.choice(prefixes)}/more")
        elif roll < 0.15:
            urls.append(rng.choice(["http://exa mple.com/", "https://xn--a.com/", "mailto:x@y"]))
        elif roll < 0.2:
            urls.append(None)
        else:
            urls.append(f"https://site{number % 97}.example{number % 5}.org/page/{number}")
        contents.append(content(number) if rng.random() < 0.95 else None)
        texts.append(text(number) if rng.random() < 0.5 else None)
    return urls, contents, texts
