"""Matching: WHATWG URL parsing, UTS #46 hosts, the public suffix list, evasion spellings, and
the index over many lists (domains, IPs, url and url-prefix rules, digests)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance import _kernels
from provenance.errors import FormatError, InputError, InvalidURLError
from provenance.lists import _accel
from provenance.lists import urls as lists_urls
from provenance.lists._refs import refs_of
from provenance.lists.entries import read_entries
from provenance.lists.match import (
    DigestIndex,
    Hit,
    ListIndex,
    decode_punycode_label,
    fast_host,
    is_public_suffix,
    normalize_host,
    normalize_percent,
    parse_host,
    parse_url,
    registrable_domain,
)
from provenance.lists.model import ExclusionList, ListEntry
from tests.conftest import VECTORS
from tests.lists_support import collector_watched

URL_VECTORS = VECTORS / "url"
SPECIAL = {"http:", "https:", "ws:", "wss:", "ftp:", "file:"}


@dataclass(frozen=True)
class Entry:
    type: str
    value: str
    category: str = "piracy"


@dataclass(frozen=True)
class FakeList:
    name: str
    version: int
    entries: Sequence[Entry]


def index_of(*entries: tuple[str, str], name: str = "test", version: int = 1) -> ListIndex:
    return ListIndex([FakeList(name, version, [Entry(t, v) for t, v in entries])])


def matched_values(index: ListIndex, url: str) -> set[str]:
    return {index.entry(index.hit(ref)).value for ref in index.match_url(url)}


# ----------------------------------------------------------------------------------------------
# WHATWG URL test data (web-platform-tests)


def _wpt_cases() -> list[dict[str, Any]]:
    data = json.loads((URL_VECTORS / "wpt" / "urltestdata.json").read_text("utf-8"))
    return [c for c in data if isinstance(c, dict) and c.get("base") is None]


def test_wpt_urltestdata_hosts_and_paths_agree_with_the_standard() -> None:
    cases = _wpt_cases()
    assert len(cases) > 500
    checked = failures = 0
    for case in cases:
        text = case["input"]
        try:
            parsed = parse_url(text)
        except InvalidURLError:
            parsed = None
        if case.get("failure"):
            assert parsed is None, f"WHATWG rejects {text!r} but it was accepted: {parsed}"
            failures += 1
            continue
        if case["protocol"] not in SPECIAL:
            # Non-web schemes have opaque hosts: they cannot be evaluated, never "clean".
            assert parsed is None, text
            continue
        if parsed is None:
            # The only valid WHATWG hosts refused are made of dots alone (empty once the
            # trailing dots are dropped).
            assert case["hostname"].strip(".") == "", text
            continue
        assert parsed.host == case["hostname"].rstrip("."), text
        assert parsed.port == case["port"], text
        assert parsed.path == normalize_percent(case["pathname"]), text
        checked += 1
    assert checked > 150 and failures > 150


def test_wpt_fast_path_never_disagrees_with_the_parser() -> None:
    taken = 0
    for case in _wpt_cases():
        host = fast_host(case["input"])
        if host is None:
            continue
        taken += 1
        assert not case.get("failure"), case["input"]
        assert parse_url(case["input"]).host == host, case["input"]
    assert taken > 30


# ----------------------------------------------------------------------------------------------
# UTS #46 conformance (IdnaTestV2.txt), with the flags the WHATWG URL Standard uses

# Status codes the WHATWG URL Standard ignores: CheckHyphens, UseSTD3ASCIIRules and
# VerifyDnsLength are false for URL hosts.
_IGNORED = {"V2", "V3", "U1", "A4_1", "A4_2"}
_FORBIDDEN_DOMAIN = set(map(chr, range(0x20))) | set(" #%/:<>?@[\\]^|\x7f")


def _unescape(text: str) -> str:
    text = re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: chr(int(m[1], 16)), text)
    return re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: chr(int(m[1], 16)), text)


def _idna_rows() -> list[tuple[str, str, str, set[str]]]:
    rows = []
    path = URL_VECTORS / "unicode" / "IdnaTestV2.txt"
    for line in path.read_text("utf-8").splitlines():
        line = line.split("#", 1)[0]
        if not line.strip():
            continue
        cols = [c.strip() for c in line.split(";")]
        source = _unescape(cols[0])
        to_unicode = _unescape(cols[1]) if cols[1] else source
        to_ascii = _unescape(cols[3]) if cols[3] else to_unicode
        status = cols[4] if cols[4] else cols[2]
        source = "" if source == '""' else source
        to_ascii = "" if to_ascii == '""' else to_ascii
        errors = {s.strip() for s in status.strip("[]").split(",") if s.strip()}
        rows.append((source, to_unicode, to_ascii, errors - _IGNORED))
    return rows


def _ends_in_number(host: str) -> bool:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    return (last.isascii() and last.isdigit()) or bool(re.fullmatch(r"0[xX][0-9a-fA-F]*", last))


def test_idna_test_v2_non_transitional() -> None:
    rows = _idna_rows()
    assert len(rows) > 6000
    valid_same = refused_for_reason = invalid_refused = 0
    for source, to_unicode, expected, errors in rows:
        try:
            got: str | None = normalize_host(source)
        except InvalidURLError:
            got = None
        if errors:
            # Every input UTS #46 calls an error is refused (including bidi and joiner rules
            # and invalid Punycode, which ada-url alone lets through).
            assert got is None, (source, expected, errors, got)
            invalid_refused += 1
        elif got is not None:
            assert got == expected.rstrip(".").lower(), (source, expected)
            valid_same += 1
        else:
            # A valid UTS #46 result may still be refused, but only for a stated reason.
            assert (
                "%" in source
                or not expected.strip(".")
                or set(expected) & _FORBIDDEN_DOMAIN
                or _ends_in_number(expected)
                or any(lists_urls._unassigned_in_unicode14(ch) for ch in to_unicode)
            ), (source, expected)
            refused_for_reason += 1
    assert valid_same > 700 and invalid_refused > 5000
    assert refused_for_reason < 100


def test_punycode_vectors() -> None:
    def ascii_lower(text: str) -> str:
        return "".join(c.lower() if c.isascii() else c for c in text)

    good = json.loads((URL_VECTORS / "rust-url" / "punycode_tests.json").read_text("utf-8"))
    for case in good:
        assert decode_punycode_label(case["encoded"].lower()) == ascii_lower(case["decoded"]), case
    bad = json.loads((URL_VECTORS / "rust-url" / "bad_punycode_tests.json").read_text("utf-8"))
    assert bad
    for case in bad:
        # Inputs whose Punycode encoding overflows (rust-url issue 870) are no hosts either.
        with pytest.raises(InvalidURLError, match="is not a host"):
            normalize_host(case["decoded"])


@pytest.mark.parametrize(
    "host",
    [
        "xn--pokxncvks",
        "xn--",
        "xn--a",
        "xn--ls8h-",
        "xn--abc.com",
        "www.xn--zz.com",
        "xn--a-ecp.ru",
    ],
)
def test_invalid_a_labels_are_refused(host: str) -> None:
    with pytest.raises(InvalidURLError, match=r"label '.*' is not valid IDNA"):
        normalize_host(host)
    with pytest.raises(InvalidURLError, match=r"label '.*' is not valid IDNA"):
        parse_url(f"https://{host}/x")


# ----------------------------------------------------------------------------------------------
# Public suffix list


def _psl_cases() -> list[tuple[str, str | None]]:
    cases = []
    pattern = re.compile(r"^checkPublicSuffix\((null|'[^']*'), (null|'[^']*')\);")
    for line in (VECTORS / "psl" / "test_psl.txt").read_text("utf-8").splitlines():
        found = pattern.match(line.strip())
        if found and found[1] != "null":
            cases.append((found[1][1:-1], None if found[2] == "null" else found[2][1:-1]))
    return cases


def test_psl_registrable_domains_and_public_suffixes() -> None:
    cases = _psl_cases()
    assert len(cases) > 60
    for given_host, expected in cases:
        if given_host.startswith("."):
            continue  # not a host name: the WHATWG parser would read an empty first label
        host = normalize_host(given_host)
        want = normalize_host(expected) if expected else None
        assert registrable_domain(host) == want, (given_host, expected)
        assert is_public_suffix(host) == (expected is None), given_host


def test_public_suffix_basics() -> None:
    for host in ("com", "co.uk", "github.io", "xn--fiqs8s", "kobe.jp", "c.kobe.jp"):
        assert is_public_suffix(host), host
    for host in ("example.com", "foo.github.io", "city.kobe.jp", "127.0.0.1", "[::1]"):
        assert not is_public_suffix(host), host
    assert registrable_domain("a.b.example.co.uk") == "example.co.uk"
    assert registrable_domain("10.0.0.1") is None


# ----------------------------------------------------------------------------------------------
# Host normalization


@pytest.mark.parametrize(
    ("given_host", "canonical"),
    [
        ("Example.COM.", "example.com"),
        ("example.com...", "example.com"),
        ("ex%61mple.com", "example.com"),
        ("example\u3002com", "example.com"),  # ideographic full stop
        ("\uff45xample.com", "example.com"),  # full-width e
        ("EXAMPLE\uff0ecom", "example.com"),  # full-width full stop
        ("fa\u00df.de", "xn--fa-hia.de"),  # non-transitional: not fass.de
        ("xn--fa-hia.de", "xn--fa-hia.de"),
        ("\u4f8b\u3048.jp", "xn--r8jz45g.jp"),
        ("0x7f.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("::1", "[::1]"),
        ("[2001:DB8:0:0:0:0:0:1]", "[2001:db8::1]"),
        ("a_b.example", "a_b.example"),
    ],
)
def test_normalize_host(given_host: str, canonical: str) -> None:
    assert normalize_host(given_host) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "exa mple.com",
        "example.com:80",
        "example.com/x",
        "user@example.com",
        "evil.com\\x",
        "example.com#",
        "256.0.0.1",
        "1.2.3.4.5",
        "[::1",
        "ex\x00ample.com",
    ],
)
def test_normalize_host_refuses(text: str) -> None:
    with pytest.raises(
        InvalidURLError, match=r"is not a host|is not a valid host|empty host|the host is empty"
    ):
        normalize_host(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="abcxyz019-.", min_size=1, max_size=24))
def test_host_fast_path_equals_the_parser(text: str) -> None:
    try:
        slow: str | None = lists_urls._parse_host_with_parser(text)[0]
    except InvalidURLError:
        slow = None
    try:
        fast: str | None = normalize_host(text)
    except InvalidURLError:
        fast = None
    assert fast == slow


_URL_ALPHABET = "abexn019-.:/\\@%?#\t AE[]"


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["http://", "https://", "HTTP://", "http:/", "http:\\\\", "ftp://", ""]),
    st.text(alphabet=_URL_ALPHABET, min_size=0, max_size=30),
)
def test_url_fast_path_equals_the_parser(scheme: str, rest: str) -> None:
    url = scheme + rest
    host = fast_host(url)
    if host is not None:
        assert parse_url(url).host == host


# ----------------------------------------------------------------------------------------------
# Evasion spellings against domain entries

EVIL = index_of(("domain", "evil.com"))
_EVASION_URLS: list[str] = []


def _urls(urls: list[str]) -> list[str]:
    _EVASION_URLS.extend(urls)
    return urls


@pytest.mark.parametrize(
    "url",
    _urls(
        [
            "http://evil.com/",
            "http://EVIL.com/",
            "HTTPS://EvIl.CoM/x",
            "http://evil.com./",
            "http://evil.com../",
            "http://evil.com\\@good.com/",
            "http://good.com@evil.com/",
            "http://user:pw@evil.com:8080/x",
            "http://%65vil.com/",
            "http://evil%2ecom/",
            "http://evil.com%2e/",
            "http://evil\u3002com/",
            "http://\uff45vil.com/",
            "http://www.evil.com/",
            "http://a.b.c.evil.com/",
            "http://ev\til.com/",
            "http://ev\nil.com/",
            "  http://evil.com/  ",
            "http:\\\\evil.com\\path",
            "http:/evil.com/",
            "http:evil.com/",
            "https://evil.com:443/",
            "ws://evil.com/",
            "ftp://evil.com/file",
            "http://evil.com?x",
            "http://evil.com#x",
        ]
    ),
)
def test_domain_entry_matches_every_spelling(url: str) -> None:
    assert matched_values(EVIL, url) == {"evil.com"}, url


@pytest.mark.parametrize(
    "url",
    _urls(
        [
            "http://notevil.com/",
            "http://evil.com.au/",
            "http://evil.co/",
            "http://evilcom.net/",
            "http://evil-com.net/",
            "http://evil.com-cdn.net/",
            "http://\u0435vil.com/",  # Cyrillic e: a homograph is a different domain
            "http://xn--vil-8cd.com/",
            "http://good.com/?u=http://evil.com/",
            "http://good.com/evil.com",
            "http://good.com#@evil.com",
            "http://evil.com.good.com/",
            "file:///evil.com",
        ]
    ),
)
def test_domain_entry_matches_nothing_else(url: str) -> None:
    assert matched_values(EVIL, url) == set(), url


def test_entry_spelling_is_normalized_too() -> None:
    index = index_of(("domain", "EVIL.Com."), ("domain", "\u4f8b\u3048.jp"))
    assert matched_values(index, "http://evil.com/") == {"EVIL.Com."}
    assert matched_values(index, "http://sub.xn--r8jz45g.jp/") == {"\u4f8b\u3048.jp"}
    assert matched_values(index, "http://SUB.\u4f8b\u3048.JP./") == {"\u4f8b\u3048.jp"}


def test_idna_non_transitional_sharp_s() -> None:
    index = index_of(("domain", "xn--fa-hia.de"))
    assert matched_values(index, "http://fa\u00df.de/") == {"xn--fa-hia.de"}
    assert matched_values(index, "http://FASS.de/") == set()


@pytest.mark.parametrize(
    "url",
    _urls(
        [
            "http://127.0.0.1/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://127.0.0.1.:8080/",
            "http://0x7F.0.0.1/",
            "http://user@127.0.0.1/",
        ]
    ),
)
def test_ipv4_entry_matches_alternate_notations(url: str) -> None:
    index = index_of(("domain", "127.0.0.1"))
    assert matched_values(index, url) == {"127.0.0.1"}


def test_ip_entries_match_addresses_exactly() -> None:
    index = index_of(("domain", "127.0.0.1"), ("domain", "[2001:db8::1]"))
    assert matched_values(index, "http://127.0.0.2/") == set()
    assert matched_values(index, "http://127.0.0.1.evil.com/") == set()
    assert matched_values(index, "http://[2001:DB8:0:0::1]/x") == {"[2001:db8::1]"}
    assert matched_values(index, "http://[2001:db8::2]/") == set()
    # A domain entry never matches an IP address that happens to end like it.
    assert matched_values(index_of(("domain", "0.1")), "http://10.0.0.1/") == set()


@pytest.mark.parametrize(
    "url",
    _urls(
        [
            "http://exa mple.com/",
            "",
            "not a url",
            "//evil.com/",
            "http://",
            "http://xn--pokxncvks/",
            "http://[::1/",
            "http://256.256.256.256/",
            "mailto:x@evil.com",
            "s3://bucket/key",
            "http://evil.com:99999/",
            "http://./",
        ]
    ),
)
def test_unparseable_urls_cannot_be_evaluated(url: str) -> None:
    with pytest.raises(
        InvalidURLError,
        match=r"cannot be parsed|is not a web scheme|is not valid IDNA|the host is empty",
    ):
        EVIL.match_url(url)
    [result] = EVIL.match_records([url], [None], [None])
    assert result.unevaluable is not None and result.hits == ()


def test_domain_walk_equals_brute_force() -> None:
    listed = ["a.com", "b.a.com", "x.y.z.org", "co.uk.example", "q.net"]
    index = index_of(*(("domain", d) for d in listed))
    hosts = [
        "a.com",
        "b.a.com",
        "c.b.a.com",
        "ba.com",
        "z.org",
        "y.z.org",
        "w.x.y.z.org",
        "1.2.3.4.5.6.x.y.z.org",
        "q.net",
        "nq.net",
        "co.uk.example",
        "uk.example",
    ]
    for host in hosts:
        want = {d for d in listed if host == d or host.endswith("." + d)}
        assert matched_values(index, f"http://{host}/") == want, host


# ----------------------------------------------------------------------------------------------
# url-prefix and url entries


PREFIX = index_of(("url-prefix", "example.com/piracy"))


@pytest.mark.parametrize(
    "url",
    _urls(
        [
            "http://example.com/piracy",
            "https://example.com/piracy/",
            "https://example.com/piracy/x/y",
            "http://EXAMPLE.com./piracy",
            "http://example.com/a/../piracy/x",
            "http://example.com/./piracy",
            "http://example.com/%2e%2e/piracy",
            "http://example.com/%70iracy/x",
            "http://example.com/piracy?x=1",
            "http://example.com/piracy#frag",
            "http://u:p@example.com:80/piracy",
            "https://example.com:443/piracy",
            "http://example.com\\piracy\\x",
        ]
    ),
)
def test_url_prefix_matches(url: str) -> None:
    assert matched_values(PREFIX, url) == {"example.com/piracy"}, url


@pytest.mark.parametrize(
    "url",
    _urls(
        [
            "http://example.com/piracy-report",
            "http://example.com/piracyx",
            "http://example.com/",
            "http://example.com/Piracy",
            "http://www.example.com/piracy",
            "ftp://example.com/piracy",
            "http://example.com:8080/piracy",
            "http://example.com/piracy%2Fx",
            "http://example.com/x/piracy",
            "http://example.com/?/piracy",
        ]
    ),
)
def test_url_prefix_does_not_match(url: str) -> None:
    assert matched_values(PREFIX, url) == set(), url


def test_url_prefix_with_scheme_and_trailing_slash() -> None:
    index = index_of(("url-prefix", "https://example.com/books/"))
    assert matched_values(index, "https://example.com/books/1") == {"https://example.com/books/"}
    assert matched_values(index, "https://example.com/books/") == {"https://example.com/books/"}
    assert matched_values(index, "http://example.com/books/1") == set()
    assert matched_values(index, "https://example.com/books") == set()


def test_url_prefix_with_query() -> None:
    value = "example.com/watch?v=abc"
    index = index_of(("url-prefix", value))
    assert matched_values(index, "http://example.com/watch?v=abc") == {value}
    assert matched_values(index, "https://example.com/watch?v=abc&t=10") == {value}
    assert matched_values(index, "https://example.com/watch?v=%61bc") == {value}
    assert matched_values(index, "https://example.com/watch?v=abcd") == set()
    assert matched_values(index, "https://example.com/watch?t=1&v=abc") == set()
    assert matched_values(index, "https://example.com/watch") == set()


def test_url_exact() -> None:
    value = "https://example.com/a/b"
    index = index_of(("url", value))
    for url in (
        "https://example.com/a/b",
        "https://example.com/a/./b#x",
        "https://EXAMPLE.com:443/a/b?utm=1",
        "https://example.com/%61/b",
    ):
        assert matched_values(index, url) == {value}, url
    for url in (
        "https://example.com/a/b/c",
        "http://example.com/a/b",
        "https://example.com/a",
        "https://example.com/a/b/",
    ):
        assert matched_values(index, url) == set(), url


def test_url_rules_and_domain_entries_combine() -> None:
    index = index_of(("domain", "example.com"), ("url-prefix", "www.example.com/x"))
    assert matched_values(index, "http://www.example.com/x/1") == {
        "example.com",
        "www.example.com/x",
    }
    assert matched_values(index, "http://www.example.com/y") == {"example.com"}


@pytest.mark.parametrize(
    "value",
    [
        "mailto:x@example.com",
        "ftp://example.com/x",
        "/just/a/path",
        "example.com:http/x",
        "http://user@example.com/x",
        "http:///",
    ],
)
def test_invalid_url_entries_are_refused(value: str) -> None:
    with pytest.raises(FormatError, match="list test v1: entry 1"):
        index_of(("url-prefix", value))


def test_invalid_domain_entry_names_list_and_entry() -> None:
    with pytest.raises(FormatError, match=r"list test v1: entry 2: .*xn--pokxncvks"):
        index_of(("domain", "ok.com"), ("domain", "xn--pokxncvks"))


def test_percent_normalization() -> None:
    assert normalize_percent("/%7e%7E%2f%2F%41%e2%82%ac") == "/~~%2F%2FA%E2%82%AC"


# ----------------------------------------------------------------------------------------------
# Digests


def _sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def test_sha256_and_text_sha256_entries() -> None:
    index = index_of(
        ("sha256", _sha("pirated").hex()),
        ("text-sha256", _sha("normalized").hex()),
        ("domain", "evil.com"),
    )
    results = index.match_records(
        ["http://ok.com/", None, "http://evil.com/", "http://exa mple/"],
        [_sha("pirated"), _sha("normalized"), None, _sha("pirated")],
        [None, _sha("normalized"), _sha("x"), None],
    )
    assert [r.hits for r in results] == [(Hit(0, 0),), (Hit(0, 1),), (Hit(0, 2),), (Hit(0, 0),)]
    assert [r.unevaluable is None for r in results] == [True, True, True, False]
    # A content digest never matches a text-sha256 entry, nor the other way round.
    assert index.match_digests([_sha("normalized")]) == [()]
    assert index.match_digests([_sha("pirated")], text=True) == [()]


def test_digest_index_agrees_with_a_set() -> None:
    rng = np.random.default_rng(7)
    listed = rng.integers(0, 256, size=(5000, 32), dtype=np.uint8)
    # Rows that share the 8-byte prefix with a listed row but differ later must not match.
    near = listed[:50].copy()
    near[:, 31] ^= 1
    # Duplicates (the same digest in two lists) must both be reported.
    listed = np.concatenate([listed, listed[:10]])
    refs = np.arange(listed.shape[0], dtype=np.int64) * 3
    index = DigestIndex(listed, refs)
    queries = np.concatenate(
        [listed[::7], near, rng.integers(0, 256, size=(500, 32), dtype=np.uint8)]
    )
    numbers, found = index.lookup(queries)
    got = sorted(zip(numbers.tolist(), found.tolist(), strict=True))
    by_digest: dict[bytes, list[int]] = {}
    for row, digest in enumerate(listed):
        by_digest.setdefault(digest.tobytes(), []).append(int(refs[row]))
    want = sorted(
        (q, ref) for q, digest in enumerate(queries) for ref in by_digest.get(digest.tobytes(), [])
    )
    assert got == want
    assert index.count_matches(queries) == len({q for q, _ in want})


def _sorted_rows(rows: np.ndarray) -> np.ndarray:
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("seed", range(6))
def test_digest_index_in_order_queries_searched_as_a_run_agree(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A published list's rows are in order, and so are a manifest's digests: the run of rows the
    # queries span is searched at once. It must find what the per-query windows find.
    rng = np.random.default_rng(seed)
    listed = rng.integers(0, 256, size=(4000, 32), dtype=np.uint8)
    listed[:40, :8] = listed[40:80, :8]  # rows sharing a prefix, differing later
    listed = _sorted_rows(np.concatenate([listed, listed[:15]]))  # and duplicates
    refs = np.arange(listed.shape[0], dtype=np.int64) * 5
    near = listed[::9].copy()
    near[:, 31] ^= 1
    picked = listed[rng.integers(0, listed.shape[0], size=300)]
    # Narrow queries (a slice of the keys: the run is searched) and wide ones (it is not).
    queries = _sorted_rows(np.concatenate([picked, near, listed[:3] - 1]))
    narrow = queries[100:400]
    by_digest: dict[bytes, list[int]] = {}
    for row, digest in enumerate(listed):
        by_digest.setdefault(digest.tobytes(), []).append(int(refs[row]))
    searched_as_runs: list[int] = []
    original = DigestIndex._candidates_in_span

    def spy(self: DigestIndex, *args: object) -> object:
        searched_as_runs.append(1)
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(DigestIndex, "_candidates_in_span", spy)
    for batch in (queries, narrow, narrow[:1], narrow[::-1]):
        want = sorted(
            (q, ref) for q, d in enumerate(batch) for ref in by_digest.get(d.tobytes(), [])
        )
        for per_query in (DigestIndex.SPAN_PER_QUERY, 10**9, 0):
            monkeypatch.setattr(DigestIndex, "SPAN_PER_QUERY", per_query)
            numbers, found = DigestIndex(listed, refs).lookup(batch)
            assert sorted(zip(numbers.tolist(), found.tolist(), strict=True)) == want
            assert numbers.tolist() == sorted(numbers.tolist())
    assert searched_as_runs  # the run was searched, not only the windows


def test_digest_index_edge_sizes() -> None:
    empty = DigestIndex(np.zeros((0, 32), dtype=np.uint8))
    assert empty.count_matches(np.zeros((3, 32), dtype=np.uint8)) == 0
    one = DigestIndex(np.full((1, 32), 5, dtype=np.uint8))
    assert one.count_matches(np.full((2, 32), 5, dtype=np.uint8)) == 2


# ----------------------------------------------------------------------------------------------
# Hex digests decoded in bulk (list entries, manifest fields)

_HEX = "0123456789abcdef"


@pytest.mark.parametrize("position", [0, 1, 7, 8, 31, 32, 62, 63])
@pytest.mark.parametrize("newlines", [False, True])
def test_hex_digests_accept_exactly_lower_case_hex_digits(position: int, newlines: bool) -> None:
    # Every byte value in every lane of a 64-bit word: the SWAR check must refuse all but 16.
    base = bytearray((_HEX * 4).encode())
    for byte in range(256):
        data = bytearray(base)
        data[position] = byte
        text = bytes(data) + (b"\n" if newlines else b"")
        if chr(byte) in _HEX:
            decoded = _kernels.hex_digests(text, newlines=newlines)
            assert decoded.tobytes() == bytes.fromhex(data.decode())
        else:
            with pytest.raises(ValueError, match="digest 0 holds a character"):
                _kernels.hex_digests(text, newlines=newlines)


@pytest.mark.parametrize("count", [0, 1, 7, 8191, 8192, 8193, 20000])
def test_hex_digests_round_trip(count: int) -> None:
    rows = np.random.default_rng(count).integers(0, 256, size=(count, 32), dtype=np.uint8)
    text = rows.tobytes().hex()
    assert np.array_equal(_kernels.hex_digests(text.encode()), rows)
    lines = "".join(text[i : i + 64] + "\n" for i in range(0, len(text), 64)).encode()
    assert np.array_equal(_kernels.hex_digests(lines, newlines=True), rows)
    # Unaligned memory (a view one byte into a buffer) decodes the same.
    assert np.array_equal(_kernels.hex_digests(memoryview(b"x" + text.encode())[1:]), rows)
    values = [text[i : i + 64] for i in range(0, len(text), 64)]
    assert np.array_equal(_kernels.hex_digest_rows(values), rows)
    out = np.zeros((count, 32), dtype=np.uint8)
    assert _kernels.hex_digests(text.encode(), out=out) is out
    assert np.array_equal(out, rows)


def test_hex_digests_on_two_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kernels, "_HEX_PARALLEL_ROWS", 4)
    monkeypatch.setattr(_kernels, "_HEX_ROWS_PER_STEP", 3)
    monkeypatch.setattr(_kernels, "other_cores", lambda: True)
    rows = np.random.default_rng(5).integers(0, 256, size=(101, 32), dtype=np.uint8)
    text = bytearray(rows.tobytes().hex().encode())
    assert np.array_equal(_kernels.hex_digests(bytes(text)), rows)
    text[90 * 64] = ord("X")  # in the second half
    with pytest.raises(ValueError, match="digest 90 holds"):
        _kernels.hex_digests(bytes(text))
    text[7 * 64 + 5] = ord("X")  # the first half's is named first
    with pytest.raises(ValueError, match="digest 7 holds"):
        _kernels.hex_digests(bytes(text))


def test_hex_digests_name_the_first_bad_digest() -> None:
    good = b"0" * 64
    with pytest.raises(ValueError, match="not a whole number"):
        _kernels.hex_digests(good + b"0")
    with pytest.raises(ValueError, match="digest 2 holds"):
        _kernels.hex_digests(good * 2 + b"0" * 63 + b"G" + good)
    with pytest.raises(ValueError, match="digest 1 is not 64 digits and a newline"):
        _kernels.hex_digests(good + b"\n" + good + b"\r", newlines=True)
    with pytest.raises(ValueError, match="digest 9000 holds"):  # in the second step
        _kernels.hex_digests(good * 9000 + b"0" * 63 + b":" + good * 10)


@pytest.mark.parametrize(
    "values",
    [
        ["a" * 63, "a" * 65],  # lengths that add up to 128: each value is checked on its own
        ["a" * 64, "A" * 64],
        ["g" * 64],
        ["a" * 64, "\u00e9" * 64],
        ["a" * 63 + "\n"],
        ["a" * 64, ""],
    ],
)
def test_hex_digest_rows_refuse_anything_but_64_lower_case_digits(values: list[str]) -> None:
    with pytest.raises(FormatError, match="is not a SHA-256"):
        _kernels.hex_digest_rows(values)


def test_hex_digest_rows_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_kernels, "_HEX_VALUES_PER_CHUNK", 3)
    rows = np.random.default_rng(1).integers(0, 256, size=(10, 32), dtype=np.uint8)
    values = [bytes(r).hex() for r in rows]
    assert np.array_equal(_kernels.hex_digest_rows(values), rows)
    with pytest.raises(FormatError, match="'x"):
        _kernels.hex_digest_rows([*values[:7], "x" * 64, *values[8:]])


def test_digest_entries_mixed_with_others_and_across_lists() -> None:
    rng = np.random.default_rng(11)
    digests = [bytes(r) for r in rng.integers(0, 256, size=(40, 32), dtype=np.uint8)]
    kinds = ["sha256", "text-sha256", "domain", "url-prefix"]
    first = [
        Entry(
            kinds[n % 4],
            (digests[n].hex(), digests[n].hex(), f"h{n}.example", f"h{n}.ex/{n}")[n % 4],
        )
        for n in range(20)
    ]
    second = [Entry("sha256", d.hex()) for d in digests[20:30]]  # only sha256 entries
    third = [Entry("text-sha256", d.hex()) for d in [*digests[30:40], digests[1]]]
    lists = [FakeList("a", 1, first), FakeList("e", 1, []), FakeList("b", 1, second)]
    index = ListIndex([*lists, FakeList("c", 1, third)])
    entries = [*first, *second, *third]

    def expected(digest: bytes, kind: str) -> tuple[int, ...]:
        return tuple(n for n, e in enumerate(entries) if e.type == kind and e.value == digest.hex())

    queries = [*digests, bytes(32)]
    for text, kind in ((False, "sha256"), (True, "text-sha256")):
        want = [expected(d, kind) for d in queries]
        assert index.match_digests(queries, text=text) == want
        assert index.match_digests([d.hex() for d in queries], text=text) == want
        assert index.match_digests([None, *queries], text=text) == [(), *want]
    assert [
        index.entry(index.hit(r)).value for r in index.match_digests([digests[1]], text=True)[0]
    ] == [digests[1].hex()] * 2
    with pytest.raises(FormatError, match="is not a SHA-256"):
        index.match_digests(["00" * 31 + "GG"])
    # One list holding digests among other entries; one holding only digests.
    for only in (ListIndex([FakeList("a", 1, first)]), ListIndex([FakeList("b", 1, second)])):
        for n, entry in enumerate(only.lists[0].entries):
            if entry.type in ("sha256", "text-sha256"):
                found = only.match_digests([entry.value], text=entry.type == "text-sha256")
                assert found == [(n,)]


# ----------------------------------------------------------------------------------------------
# Many lists


def test_hits_point_into_the_right_list() -> None:
    issued = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    first = ExclusionList(
        name="piracy",
        version=1,
        issued=issued,
        publisher="A",
        previous=None,
        entries=(ListEntry(type="domain", value="evil.com", category="piracy"),),
    )
    empty = ExclusionList(
        name="empty", version=1, issued=issued, publisher="B", previous=None, entries=()
    )
    second = ExclusionList(
        name="optout",
        version=2,
        issued=issued,
        publisher="C",
        previous="0" * 64,
        entries=(
            ListEntry(type="sha256", value=_sha("x").hex(), category="opt-out"),
            ListEntry(type="domain", value="www.evil.com", category="opt-out"),
        ),
    )
    index = ListIndex([first, empty, second])
    [result] = index.match_records(["https://www.evil.com/a"], [_sha("x")], [None])
    assert result.hits == (Hit(0, 0), Hit(2, 0), Hit(2, 1))
    assert [index.entry(h).category for h in result.hits] == ["piracy", "opt-out", "opt-out"]
    assert index.has_url_entries and index.has_content_entries and not index.has_text_entries


# ----------------------------------------------------------------------------------------------
# The batch path answers exactly as the single-URL path


def _single(index: ListIndex, urls: list[str]) -> tuple[list[tuple[int, ...]], set[int]]:
    refs: list[tuple[int, ...]] = []
    bad: set[int] = set()
    for number, url in enumerate(urls):
        try:
            refs.append(tuple(sorted(index.match_url(url))))
        except InvalidURLError:
            refs.append(())
            bad.add(number)
    return refs, bad


_BATCH_INDEXES = [
    EVIL,
    PREFIX,
    index_of(("domain", "b.a.com"), ("domain", "a.com"), ("domain", "x.y.z.org")),
    index_of(("domain", "localhost"), ("domain", "127.0.0.1"), ("url", "a.com/x")),
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda scheme, host, rest: scheme + host + rest,
            st.sampled_from(["http://", "https://", "HTTP://", "ftp://", ""]),
            st.text(alphabet="abcxyz.-0EVIL%1", min_size=0, max_size=16)
            | st.sampled_from(["evil.com", "www.evil.com", "b.a.com", "q.x.y.z.org", "a.com"]),
            st.sampled_from(["", "/", "/x", "/piracy/1", ":80/", "?q", "\\@evil.com/"]),
        ),
        max_size=20,
    )
)
def test_match_urls_equals_match_url(urls: list[str]) -> None:
    for index in _BATCH_INDEXES:
        refs, bad = index.match_urls(urls)
        assert ([tuple(sorted(r)) for r in refs], set(bad)) == _single(index, urls)


def test_match_urls_on_the_evasion_spellings() -> None:
    urls = [u for u in _EVASION_URLS if isinstance(u, str)]
    for index in _BATCH_INDEXES:
        refs, bad = index.match_urls([*urls, None])
        assert refs[-1] == ()
        assert ([tuple(sorted(r)) for r in refs[:-1]], set(bad)) == _single(index, urls)


DEEP = ListIndex(
    [
        FakeList(
            "one",
            1,
            [
                Entry("domain", d)
                for d in ["a.com", "b.a.com", "c.b.a.com", "x.co.uk", "d.1.2.3.4.example", "q.org"]
            ]
            + [Entry("domain", "10.0.0.1"), Entry("url-prefix", "b.a.com/p")],
        ),
        FakeList("two", 1, [Entry("domain", d) for d in ["a.com", "www.q.org", "uk"]]),
    ]
)
_LABELS = ["a", "b", "c", "com", "co", "uk", "x", "www", "q", "org", "xn--p1ai", "1", "A", "-"]


def _exact(index: ListIndex, urls: Sequence[str | None]) -> tuple[list[tuple[int, ...]], set[int]]:
    """match_url one URL at a time, keeping the order of the entry numbers."""
    refs: list[tuple[int, ...]] = []
    bad: set[int] = set()
    for number, url in enumerate(urls):
        try:
            refs.append(() if url is None else index.match_url(url))
        except InvalidURLError:
            refs.append(())
            bad.add(number)
    return refs, bad


_DEEP_URLS = st.lists(
    st.none()
    | st.builds(
        lambda scheme, labels, dot, rest: scheme + ".".join(labels) + dot + rest,
        st.sampled_from(["http://", "https://", "HTTP://", ""]),
        st.lists(st.sampled_from(_LABELS), max_size=8),
        st.sampled_from(["", ".", ".."]),
        st.sampled_from(["", "/", "/p/x", "?q", "#f", ":8080/", "\\@a.com/"]),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(_DEEP_URLS)
def test_match_urls_equals_match_url_in_order(urls: list[str | None]) -> None:
    for index in (DEEP, *_BATCH_INDEXES):
        refs, bad = index.match_urls(urls)
        assert (refs, set(bad)) == _exact(index, urls)


@settings(max_examples=100, deadline=None)
@given(_DEEP_URLS)
def test_match_urls_verifies_every_candidate_exactly(urls: list[str | None]) -> None:
    # A filter that lets every suffix through (as hash collisions would) changes nothing: each
    # candidate is looked up exactly. Small steps check that results land at the right place.
    index = ListIndex(DEEP.lists)
    index._accelerator._suffixes._bitmap[:] = 0xFF
    step = _accel._URLS_PER_STEP
    try:
        _accel._URLS_PER_STEP = 3
        refs, bad = index.match_urls(urls)
    finally:
        _accel._URLS_PER_STEP = step
    assert (refs, set(bad)) == _exact(index, urls)


def test_match_urls_long_hosts_and_many_urls() -> None:
    long_host = "a" * 250 + ".a.com"
    urls = [f"http://{long_host}/", f"http://{'b' * 300}.com/", "http://x.co.uk/"] * 3000
    refs, bad = DEEP.match_urls(urls)
    assert (refs, set(bad)) == _exact(DEEP, urls)
    assert refs[0] == DEEP.match_url(f"http://{long_host}/") != ()


BLOCKLISTS = VECTORS / "blocklists"


def _real_index() -> tuple[ListIndex, list[str], list[str]]:
    """The match index over the real blocklist excerpts, with their domain and url-prefix values."""
    domains: list[ListEntry] = []
    for name in ("blocklistproject-piracy-head.txt", "ut1-warez-domains-head.txt"):
        domains += read_entries(BLOCKLISTS / name, category="piracy")
    skipped: list[InputError] = []  # dweb.link, a public suffix, cannot be listed
    domains += read_entries(BLOCKLISTS / "ut1-filehosting-domains-153.txt", skipped=skipped)
    prefixes = read_entries(
        BLOCKLISTS / "ut1-warez-urls.txt", category="piracy", entry_type="url-prefix"
    )
    lists = [FakeList("domains", 1, domains), FakeList("urls", 1, prefixes)]
    return ListIndex(lists), [e.value for e in domains], [e.value for e in prefixes]


REAL, REAL_DOMAINS, REAL_PREFIXES = _real_index()
_SPELLINGS = [
    "http://{}/", "https://www.{}/a/b?c#d", "HTTP://{}./", "http://sub.{}:8080/x", "http://not{}/",
    "http://{}.evil.example/", "https://user:pw@{}/", "http:\\\\{}\\x", "  http://{}\t/ ",
    "http://{}:443/", "ftp://{}/", "{}/x", "http://{}..", "https://{}/%2e%2e/x",
]  # fmt: skip


def test_match_urls_equals_match_url_on_real_lists_and_wpt_urls() -> None:
    # Every listed value of the real blocklists in many spellings, and every URL of the WHATWG
    # test data: the accelerator answers exactly as the specification does.
    values = REAL_DOMAINS + REAL_PREFIXES
    urls = [spelling.format(value) for value in values for spelling in _SPELLINGS]
    urls += [case["input"] for case in _wpt_cases()]
    refs, bad = REAL.match_urls(urls)
    assert (refs, set(bad)) == _exact(REAL, urls)
    # Not vacuous: most listed values are found through the fast path and some through rules.
    assert sum(map(bool, refs)) > 4 * len(values)
    assert any(ref >= len(REAL_DOMAINS) for found in refs for ref in found)
    assert len(bad) > 100


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(
            lambda scheme, sub, value, rest: f"{scheme}{sub}{value}{rest}",
            st.sampled_from(["http://", "https://", "HTTPS://", "http:/", ""]),
            st.sampled_from(["", "www.", "a.b.", "x-", "WWW.", "."]),
            st.sampled_from(REAL_DOMAINS + REAL_PREFIXES),
            st.text(alphabet="/.:%2eA?#\\@x", max_size=8),
        ),
        max_size=40,
    )
)
def test_match_urls_equals_match_url_on_real_lists_fuzzed(urls: list[str]) -> None:
    refs, bad = REAL.match_urls(urls)
    assert (refs, set(bad)) == _exact(REAL, urls)


def test_match_url_is_the_rule_and_the_accelerator_is_held_to_it() -> None:
    # A broken accelerator (a filter that lets no suffix through) changes what match_urls
    # finds, which the equality tests above would catch, and nothing that match_url finds: the
    # specification does not go through the accelerator.
    urls = ["http://www.b.a.com/", "https://q.org/x", "http://c.b.a.com./", "http://10.0.0.1/"]
    index = ListIndex(DEEP.lists)
    want = [index.match_url(url) for url in urls]
    assert all(want)
    index._accelerator._suffixes._bitmap[:] = 0
    assert [index.match_url(url) for url in urls] == want
    refs, bad = index.match_urls(urls)
    assert not bad and refs != want
    assert refs[2:] == want[2:]  # the trailing-dot host and the IP went to match_url


def test_big_index_is_built_without_pausing_the_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = [f"h{n}.example" for n in range(100_000)]
    lists = [
        FakeList("one", 1, [Entry("domain", h) for h in hosts]),
        FakeList(
            "two", 1, [Entry("domain", h) for h in hosts[:10]] + [Entry("domain", "xn--p1ai")]
        ),
    ]
    with collector_watched(monkeypatch) as collections:
        index = ListIndex(lists)
    # A tuple per host would be 100,000 tracked objects (over 100 collections).
    assert len(collections) <= 2
    assert index.match_url("http://www.h5.example/") == (5, 100_000 + 5)
    assert index.match_url("http://h99999.example/") == (99_999,)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["http://", "https://", "HTTP://", "http:/", "http:\\\\", "ftp://", ""]),
    st.text(alphabet=_URL_ALPHABET, min_size=0, max_size=30),
)
def test_batch_host_pattern_equals_the_parser(scheme: str, rest: str) -> None:
    url = scheme + rest
    found = lists_urls.PLAIN_URL.match(url)
    assert found is not None  # it always matches; group 1 is the host or None
    host = found[1]
    if host is not None and not _accel._needs_parser(host):  # what match_urls takes as plain
        assert parse_url(url).host == host
        assert fast_host(url) == host  # a subset of the single-URL fast path


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="ab.-z09", min_size=1, max_size=12), min_size=1, max_size=8))
def test_suffix_hashes_equal_a_reference(hosts: list[str]) -> None:
    data = np.frombuffer(("\n".join(hosts) + "\n").encode(), dtype=np.uint8)
    starts, ends = [], []
    position = 0
    for host in hosts:
        for offset in range(len(host)):
            starts.append(position + offset)
            ends.append(position + len(host))
        position += len(host) + 1
    got = _accel._byte_hashes(data, np.array(starts), np.array(ends))
    text = data.tobytes()
    for start, end, value in zip(starts, ends, got.tolist(), strict=True):
        # The polynomial hash of the kernels, each byte counted as byte + 1.
        want = 0
        for power, byte in enumerate(text[start:end]):
            want += (byte + 1) * pow(_kernels.HASH_BASE, power, 1 << 64)
        assert value == want % (1 << 64)


_HOST_VALUES = [
    "a.com", "b.a.com", "x.co.uk", "q.org", "A.com", "a.com.", "xn--p1ai.ru", "10.0.0.1",
    "0x7f.1", "[::1]", "localhost", "b-c.d9.example",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.sampled_from(["domain", "domain", "domain", "url-prefix", "sha256"]),
                st.sampled_from(_HOST_VALUES),
            ),
            max_size=10,
        ),
        max_size=3,
    )
)
def test_index_tables_equal_adding_entries_one_at_a_time(
    lists: list[list[tuple[str, str]]],
) -> None:
    fakes = []
    domains: dict[str, tuple[int, ...]] = {}
    ips: dict[str, tuple[int, ...]] = {}
    number = 0
    for n, entries in enumerate(lists):
        values = []
        for kind, host in entries:
            value = {"domain": host, "url-prefix": "a.com/p", "sha256": "0" * 64}[kind]
            values.append(Entry(kind, value))
            if kind == "domain":
                canonical, is_ip = parse_host(host)
                table = ips if is_ip else domains
                table[canonical] = (*table.get(canonical, ()), number)
            number += 1
        fakes.append(FakeList(f"l{n}", 1, values))
    index = ListIndex(fakes)
    assert {host: refs_of(slot) for host, slot in index._domains.items()} == domains
    assert {host: refs_of(slot) for host, slot in index._ips.items()} == ips


def test_invalid_digest_entry_names_list_and_entry() -> None:
    with pytest.raises(FormatError, match=r"list test v1: entry 3: 'ABC"):
        index_of(("sha256", "a" * 64), ("domain", "ok.com"), ("sha256", "ABC" + "a" * 61))
    with pytest.raises(FormatError, match=r"list test v1: entry 1: .*not a SHA-256"):
        index_of(("text-sha256", "a" * 63))


IPV4_MAPPED_URLS = [
    "http://[::ffff:93.184.216.34]/",
    "http://[::ffff:5db8:d822]/page",
    "https://[0:0:0:0:0:FFFF:5DB8:D822]:443/x",
    "http://user@[::ffff:93.184.216.34]:8080/",
]


def test_ipv4_mapped_ipv6_matches_the_ipv4_entry() -> None:
    """An IPv4-mapped IPv6 literal reaches the IPv4 host: it must not evade its entry."""
    index = index_of(("domain", "93.184.216.34"), ("url-prefix", "93.184.216.35/piracy"))
    for url in IPV4_MAPPED_URLS:
        assert matched_values(index, url) == {"93.184.216.34"}, url
    assert matched_values(index, "http://[::ffff:93.184.216.35]/piracy/x") == {
        "93.184.216.35/piracy"
    }
    # Other IPv6 addresses that merely contain the digits do not match.
    assert matched_values(index, "http://[::93.184.216.34]/") == set()
    assert matched_values(index, "http://[64:ff9b::5db8:d822]/") == set()
    assert parse_url("http://[::ffff:5db8:d822]/").host == "93.184.216.34"
    # The batch accelerator gives the same answers.
    refs, bad = index.match_urls(IPV4_MAPPED_URLS)
    assert (refs, set(bad)) == _exact(index, IPV4_MAPPED_URLS)
    assert all(refs)


def test_ipv4_mapped_entry_is_published_as_ipv4() -> None:
    assert normalize_host("[::ffff:5db8:d822]") == "93.184.216.34"
    assert normalize_host("::ffff:93.184.216.34") == "93.184.216.34"
    index = index_of(("domain", "[::ffff:5db8:d822]"))
    assert matched_values(index, "http://93.184.216.34/") == {"[::ffff:5db8:d822]"}
