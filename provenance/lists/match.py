"""Matching records against exclusion lists, so that spelling cannot evade a listed entry.

Pure: no I/O, no clock. Everything that is compared is first brought to one canonical form, by
the same code for list entries and for the URLs being checked:

- **URLs** are parsed as browsers parse them (WHATWG URL Standard, through ``ada-url``): tabs and
  newlines are removed, ``\\`` is ``/`` in web schemes (so ``http://evil.com\\@good.com/`` is on
  ``evil.com``), userinfo and port are separated from the host, dot segments are resolved.
- **Hosts** are WHATWG hosts: percent-decoded, mapped with UTS #46 (non-transitional, as
  browsers do), lower-cased, IPv4 in any notation (``0x7f.1``, ``2130706433``) turned into
  dotted decimal, IPv6 compressed in brackets (an IPv4-mapped one, ``[::ffff:a.b.c.d]``, as
  the IPv4 address); then trailing dots are dropped. Every ``xn--``
  label is checked to be valid Punycode of a valid UTS #46 label (``ada-url`` accepts some that
  are not), with the ``idna`` package's tables, and code points unassigned in Unicode 14.0 are
  refused, so the answer does not depend on the Python version. A host that fails is refused
  (:class:`~provenance.errors.InvalidURLError`): a record with such a URL *cannot be evaluated*,
  which callers report and never count as clean.
- **Paths** (for ``url`` and ``url-prefix`` entries) are the WHATWG path with percent-encoding
  normalized as RFC 3986 section 6.2.2 says: hex digits upper-cased, unreserved characters
  decoded, nothing else decoded (``%2F`` stays distinct from ``/``).

Entry semantics:

- ``domain``: the host and every subdomain, on a label boundary (``not01cinema.com`` is not
  under ``01cinema.com``). An IP literal matches that address exactly.
- ``url-prefix``: same host (no subdomains), same port after default-port removal, the
  scheme given (``http``/``https``) or either of them when the entry has no scheme, and a path
  that equals the entry's or continues it at a segment boundary (``/piracy`` covers
  ``/piracy/x`` but not ``/piracy-report``; an entry ending in ``/`` covers everything under it).
  The query is ignored unless the entry has one; then the URL must have that query, possibly
  followed by ``&...``. Fragments are always ignored.
- ``url``: as ``url-prefix`` but the path must be equal, and a query in the entry must be equal.
- ``sha256``: the SHA-256 of the content. ``text-sha256``: the ``norm-text-v1`` digest.

A fast path handles the common ``http(s)://lowercase-ascii.host/...`` URL without calling the
WHATWG parser; it is taken only when the parser provably gives the same host (ASCII letters,
digits and hyphens, no ``xn--`` label, a last label starting with a letter so that it cannot be
an IPv4 address), and the tests check it against the parser. Many URLs are matched a step at a
time (:meth:`ListIndex.match_urls`): their hosts are found by one regular expression applied in
C, every suffix of every host on a label boundary is hashed at once (numpy), and only the
suffixes whose hash is in a bitmap of the listed domains' hashes are looked up, so that almost
no Python code runs per URL; the answers are exactly those of the one-URL path.

Content digests are matched with a sorted numpy array of 64-bit keys (a 64-bit prefix of the
digest with the row number packed into its low bits), confirmed on all 32 bytes: about 40 bytes
per listed hash instead of the ~150 of a Python set of strings. Hex digests (list entries,
manifest fields) are checked and decoded in bulk by :func:`hex_digests`, eight digits per 64-bit
word, instead of one regular-expression match and ``bytes.fromhex`` call per value.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import copy
import functools
import gc
import ipaddress
import itertools
import operator
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

import ada_url
import idna.core
import numpy as np
import numpy.typing as npt

from provenance._unicode14 import CN_ENDS, CN_STARTS
from provenance.errors import FormatError, InvalidURLError

EntryType = Literal["domain", "url-prefix", "url", "sha256", "text-sha256"]
ENTRY_TYPES: tuple[str, ...] = ("domain", "url-prefix", "url", "sha256", "text-sha256")
WEB_SCHEMES = ("http", "https")

# WHATWG "special" schemes: their hosts are domains or IP addresses and go through the host parser.
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp", "file"})
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX_ONLY = re.compile(r"[0-9a-f]*")

# A host the WHATWG parser leaves exactly as it is (up to trailing dots): lower-case ASCII letters,
# digits and hyphens in non-empty labels, the last label starting with a letter (so not an IPv4
# number). Labels starting "xn--" are excluded by a separate check, since they need validation.
_FAST_HOST = re.compile(r"(?:[a-z0-9-]+\.)*[a-z][a-z0-9-]*\.*")
_FAST_URL = re.compile(r"https?://((?:[a-z0-9-]+\.)*[a-z][a-z0-9-]*)\.?(?=[/?#]|\Z)")
_HOST_FORBIDDEN_IN_ENTRY = re.compile(r"[\x00-\x20\x7f/\\?#@]")
# The same URLs as _FAST_URL but with possessive repeats (no backtracking: a host with a trailing
# dot is left to the parser), wrapped so that it always matches: group 1 is the host or None.
_FAST_URL_HOST = re.compile(r"(?:https?://((?:[a-z0-9-]++\.)*+[a-z][a-z0-9-]*+)\.?(?=[/?#]|\Z))?")
_GROUP_1 = operator.itemgetter(1)


# ----------------------------------------------------------------------------------------------
# Hosts


def normalize_host(text: str) -> str:
    """Return the canonical form of a host name or IP address, as matching compares it.

    ``text`` is a bare host as written in a list entry or a hosts file: ``Example.COM.``,
    ``ex%61mple.com``, ``例え.jp``, ``xn--r8jz45g.jp``, ``0x7f.1``, ``[::1]`` or ``::1``. No
    scheme, userinfo, port or path is allowed.

    Returns:
        Lower-case ASCII: a domain in A-label form without trailing dots, dotted-decimal IPv4,
        or bracketed compressed IPv6 (``[2001:db8::1]``).

    Raises:
        InvalidURLError: not a valid host (empty, a forbidden character, invalid Punycode or
            UTS #46 label, a malformed IP address, or a port or path).
    """
    if _FAST_HOST.fullmatch(text) and "xn--" not in text:
        return text.rstrip(".")
    return parse_host(text)[0]


def parse_host(text: str) -> tuple[str, bool]:
    """Like :func:`normalize_host`, and also say whether the host is an IP address.

    Returns:
        ``(host, is_ip)``.

    Raises:
        InvalidURLError: as :func:`normalize_host`.
    """
    shown = text if len(text) <= 100 else text[:100] + "..."
    if not text:
        raise InvalidURLError("empty host")
    if _HOST_FORBIDDEN_IN_ENTRY.search(text):
        raise InvalidURLError(
            f"{shown!r} is not a host: it holds a space, control or URL delimiter"
        )
    if ":" in text and not text.startswith("["):
        # A bare IPv6 address, as hosts files write them; anything else with ':' has a port.
        if not re.fullmatch(r"[0-9A-Fa-f:.]+", text):
            raise InvalidURLError(f"{shown!r} is not a host (a port or scheme is not allowed)")
        text = f"[{text}]"
    try:
        url = ada_url.URL(f"http://{text}/")
    except ValueError:
        raise InvalidURLError(f"{shown!r} is not a valid host") from None
    if url.port or url.username or url.password or url.pathname != "/":
        raise InvalidURLError(f"{shown!r} is not a host (a port or path is not allowed)")
    return _canonical_host(url.hostname, url.host_type, f"host {shown!r}")


def _canonical_host(hostname: str, host_type: Any, what: str) -> tuple[str, bool]:
    """Finish a WHATWG host: IP literals as they are (an IPv4-mapped IPv6 address as the IPv4
    address it maps), domains without trailing dots, validated.

    ``what`` names the host or URL in error messages.
    """
    if host_type != ada_url.HostType.DEFAULT:
        if hostname.startswith("[::ffff:"):
            # ``[::ffff:93.184.216.34]`` (serialized ``[::ffff:5db8:d822]``) reaches the same
            # host as ``93.184.216.34`` on a dual-stack socket: one address, one spelling.
            mapped = ipaddress.IPv6Address(hostname[1:-1]).ipv4_mapped
            if mapped is not None:
                return str(mapped), True
        return hostname, True
    host = hostname.rstrip(".")
    if not host:
        raise InvalidURLError(f"{what}: the host is empty")
    if "xn--" in host:
        _check_labels(host, what)
    return host, False


def _check_labels(host: str, what: str) -> None:
    """Check every ``xn--`` label of an ASCII host, and the bidi rule across the domain.

    The checks are UTS #46 section 4.1 (validity criteria, non-transitional, CheckHyphens
    false, CheckJoiners and CheckBidi true), as the WHATWG URL Standard asks for.
    """
    labels = host.split(".")
    unicode_labels = []
    for label in labels:
        if label.startswith("xn--"):
            decoded = decode_punycode_label(label[4:])
            if decoded is None or not _valid_unicode_label(decoded):
                raise InvalidURLError(f"{what}: label {label!r} is not valid IDNA")
            unicode_labels.append(decoded)
        else:
            unicode_labels.append(label)
    if any(_is_rtl(char) for label in unicode_labels for char in label):
        for label in unicode_labels:
            if not label:
                continue
            try:
                idna.core.check_bidi(label, check_ltr=True)
            except idna.core.IDNAError:
                raise InvalidURLError(f"{what}: label {label!r} breaks the bidi rule") from None


def _is_rtl(char: str) -> bool:
    return unicodedata.bidirectional(char) in ("R", "AL", "AN")


def decode_punycode_label(encoded: str) -> str | None:
    """Decode the part of an A-label after ``xn--``; ``None`` if it is not canonical Punycode.

    Canonical means that encoding the result gives ``encoded`` back (lower-case): this refuses
    overflows, trailing garbage and alternative spellings of the same label.
    """
    try:
        decoded = encoded.encode("ascii").decode("punycode")
        again = decoded.encode("punycode").decode("ascii")
    except (UnicodeError, ValueError, OverflowError, IndexError):
        return None
    return decoded if again == encoded.lower() else None


def _unassigned_in_unicode14(char: str) -> bool:
    point = ord(char)
    index = bisect.bisect_right(CN_STARTS, point) - 1
    return index >= 0 and point <= CN_ENDS[index]


def _valid_unicode_label(label: str) -> bool:
    """UTS #46 validity criteria for a label that came from Punycode (non-transitional)."""
    if not label or label.isascii() or label[:4].lower() == "xn--" or "." in label:
        return False
    if any(_unassigned_in_unicode14(char) for char in label):
        return False
    if not unicodedata.is_normalized("NFC", label):
        return False
    if unicodedata.category(label[0]).startswith("M"):
        return False
    try:
        # Every code point must be "valid" (or a deviation, kept in non-transitional mode): a
        # mapped, ignored or disallowed one would change the label or raise here.
        if idna.core.uts46_remap(label, std3_rules=False, transitional=False) != label:
            return False
        for position, char in enumerate(label):
            if char in "\u200c\u200d" and not idna.core.valid_contextj(label, position):
                return False
    except (idna.core.IDNAError, ValueError, IndexError):
        return False
    return True


@functools.cache
def _public_suffix_list() -> Any:
    from publicsuffixlist import PublicSuffixList

    # The list shipped inside the package (no network), private section included, so that
    # github.io counts as a public suffix just like co.uk.
    return PublicSuffixList(only_icann=False)


def is_public_suffix(host: str) -> bool:
    """Whether ``host`` (as :func:`normalize_host` returns it) is itself a public suffix.

    Uses the Public Suffix List shipped in the ``publicsuffixlist`` package, ICANN and private
    sections, with the default rule ``*`` (an unlisted top-level label is a public suffix). IP
    addresses are never public suffixes.
    """
    if host.startswith("[") or _looks_ipv4(host):
        return False
    return bool(_public_suffix_list().is_public(host))


def registrable_domain(host: str) -> str | None:
    """Return the registrable domain (public suffix plus one label) of ``host``, or ``None``.

    ``None`` for a public suffix itself or an IP address.
    """
    if host.startswith("[") or _looks_ipv4(host):
        return None
    result = _public_suffix_list().privatesuffix(host)
    return str(result) if result else None


def _looks_ipv4(host: str) -> bool:
    return bool(re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+", host))


# ----------------------------------------------------------------------------------------------
# URLs


@dataclass(frozen=True, slots=True)
class ParsedURL:
    """A URL in the form matching compares: scheme, canonical host, port, path and query."""

    scheme: str
    host: str
    is_ip: bool
    port: str
    """Empty for the scheme's default port."""
    path: str
    query: str | None
    """Without the ``?``; ``None`` when the URL has none (or an empty one)."""


def normalize_percent(text: str) -> str:
    """Upper-case percent-encodings and decode those of unreserved characters (RFC 3986 6.2.2)."""
    if "%" not in text:
        return text
    return _PERCENT.sub(_percent_replacement, text)


def _percent_replacement(match: re.Match[str]) -> str:
    value = int(match[1], 16)
    return chr(value) if value in _UNRESERVED else f"%{value:02X}"


def parse_url(text: str) -> ParsedURL:
    """Parse an absolute URL as a browser would, into the form matching compares.

    Raises:
        InvalidURLError: WHATWG parsing fails, the scheme is not a web one (its host would not
            be a domain), or the host is not valid (see :func:`normalize_host`).
    """
    shown = text if len(text) <= 200 else text[:200] + "..."
    try:
        url = ada_url.URL(text)
    except (ValueError, UnicodeError):
        raise InvalidURLError(f"URL {shown!r} cannot be parsed") from None
    scheme = url.protocol[:-1]
    if scheme not in _SPECIAL_SCHEMES:
        raise InvalidURLError(f"URL {shown!r}: scheme {scheme!r} is not a web scheme")
    if url.hostname:
        host, is_ip = _canonical_host(url.hostname, url.host_type, f"URL {shown!r}")
    else:
        host, is_ip = "", False
    search = url.search
    return ParsedURL(
        scheme=scheme,
        host=host,
        is_ip=is_ip,
        port=url.port,
        path=normalize_percent(url.pathname),
        query=normalize_percent(search[1:]) if len(search) > 1 else None,
    )


def fast_host(url: str) -> str | None:
    """Return the host of a plain ``http(s)://host/...`` URL, or ``None`` to use the parser.

    The answer, when not ``None``, is exactly what :func:`parse_url` would give as the host.
    """
    match = _FAST_URL.match(url)
    if match is None:
        return None
    host = match[1]
    return None if "xn--" in host else host


# ----------------------------------------------------------------------------------------------
# Entries


class EntryLike(Protocol):
    """What matching needs of a list entry (``provenance.lists.model.ListEntry`` has it)."""

    @property
    def type(self) -> str: ...  # noqa: D102

    @property
    def value(self) -> str: ...  # noqa: D102

    @property
    def category(self) -> str: ...  # noqa: D102


class ListLike(Protocol):
    """What matching needs of a list (``provenance.lists.model.ExclusionList`` has it)."""

    @property
    def name(self) -> str: ...  # noqa: D102

    @property
    def version(self) -> int: ...  # noqa: D102

    @property
    def entries(self) -> Sequence[Any]: ...  # noqa: D102


@dataclass(frozen=True, slots=True)
class UrlRule:
    """A compiled ``url`` or ``url-prefix`` entry for one host."""

    exact: bool
    schemes: frozenset[str]
    port: str
    path: str
    query: str | None
    ref: int

    def matches(self, url: ParsedURL) -> bool:
        """Whether ``url`` (on this rule's host) is covered by the rule."""
        if url.scheme not in self.schemes or url.port != self.port:
            return False
        path = url.path
        if self.query is not None:
            if path != self.path or url.query is None:
                return False
            if self.exact:
                return url.query == self.query
            return url.query == self.query or url.query.startswith(self.query + "&")
        if path == self.path:
            return True
        if self.exact:
            return False
        if self.path.endswith("/"):
            return path.startswith(self.path)
        return path.startswith(self.path + "/")


def compile_url_entry(value: str, *, exact: bool, ref: int = 0) -> tuple[str, list[UrlRule]]:
    """Compile a ``url`` or ``url-prefix`` entry value.

    A value without a scheme (``host/path``) covers both ``http`` and ``https``.

    Returns:
        ``(host, rules)``: the canonical host and one rule per scheme whose default port differs.

    Raises:
        InvalidURLError: the value is not a valid http(s) URL (or ``host/path``), or has userinfo.
    """
    if "://" in value:
        scheme = value.split("://", 1)[0].lower()
        if scheme not in WEB_SCHEMES:
            raise InvalidURLError(f"{value!r}: only http and https URLs can be listed")
        candidates = [value]
    else:
        authority = re.split(r"[/?#\\]", value, maxsplit=1)[0]
        if not authority or (
            ":" in authority
            and not authority.startswith("[")
            and not re.fullmatch(r"[^:]+:[0-9]+", authority)
        ):
            raise InvalidURLError(f"{value!r}: expected http(s)://host/path or host/path")
        candidates = [f"{scheme}://{value}" for scheme in WEB_SCHEMES]
    rules: dict[tuple[str, str], UrlRule] = {}
    host = ""
    for candidate in candidates:
        try:
            url = ada_url.URL(candidate)
        except ValueError:
            raise InvalidURLError(f"{value!r} is not a valid URL") from None
        if url.username or url.password:
            raise InvalidURLError(f"{value!r}: a listed URL must not hold a user name or password")
        parsed = parse_url(candidate)
        if not parsed.host:
            raise InvalidURLError(f"{value!r}: a listed URL needs a host")
        host = parsed.host
        rule = UrlRule(
            exact=exact,
            schemes=frozenset({parsed.scheme}),
            port=parsed.port,
            path=parsed.path,
            query=parsed.query,
            ref=ref,
        )
        key = (rule.port, rule.path + "?" + (rule.query or ""))
        if key in rules:
            previous = rules[key]
            rules[key] = UrlRule(
                exact, previous.schemes | rule.schemes, rule.port, rule.path, rule.query, ref
            )
        else:
            rules[key] = rule
    return host, list(rules.values())


def digest_bytes(value: str) -> bytes:
    """Return the 32 bytes of a lower-case hex SHA-256.

    Raises:
        FormatError: not 64 lower-case hex digits.
    """
    if not _HEX64.fullmatch(value):
        raise FormatError(f"{value[:80]!r} is not a SHA-256 (64 lower-case hex digits)")
    return bytes.fromhex(value)


# ----------------------------------------------------------------------------------------------
# Digests

_Ints = npt.NDArray[np.int64]
Digest = bytes | str
"""A SHA-256 as 32 bytes, or as 64 lower-case hex digits."""


class DigestIndex:
    """Exact lookup of 32-byte digests among many, in about 40 bytes per digest.

    The digests are kept as one ``(n, 32)`` uint8 array. A sorted uint64 array holds, per row,
    the digest's first 8 bytes with the low ``bits`` bits replaced by the row number; a query's
    candidates are the keys sharing its prefix, confirmed against all 32 bytes.
    """

    def __init__(self, digests: npt.NDArray[np.uint8], refs: npt.NDArray[np.int64] | None = None):
        """Index ``digests`` (shape ``(n, 32)``); ``refs[i]`` is what row ``i`` reports."""
        if digests.ndim != 2 or digests.shape[1] != 32:
            raise ValueError("digests must have shape (n, 32)")
        count = digests.shape[0]
        self._rows = np.ascontiguousarray(digests, dtype=np.uint8)
        self._refs = refs
        self._bits = max(1, (count - 1).bit_length()) if count else 1
        keys = self._prefixes(self._rows)
        keys >>= np.uint64(self._bits)
        keys <<= np.uint64(self._bits)
        # Row numbers into the low bits, a chunk at a time (no n-sized temporary).
        chunk = 1 << 20
        for start in range(0, count, chunk):
            stop = min(count, start + chunk)
            keys[start:stop] |= np.arange(start, stop, dtype=np.uint64)
        keys.sort()
        self._keys = keys
        self._low = np.uint64((1 << self._bits) - 1)

    @staticmethod
    def _prefixes(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
        # Native byte order: only equality of prefixes matters, and a byte swap costs time.
        # One copy of the first 8 bytes of each row (a strided view of the rows as uint64).
        return rows.view(np.uint64)[:, 0].copy()

    def __len__(self) -> int:
        """The number of digests indexed."""
        return int(self._rows.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held by the index."""
        refs = 0 if self._refs is None else self._refs.nbytes
        return int(self._rows.nbytes + self._keys.nbytes + refs)

    def lookup(self, queries: npt.NDArray[np.uint8]) -> tuple[_Ints, _Ints]:
        """Find every indexed row equal to each query row (shape ``(m, 32)``).

        Returns:
            ``(query_numbers, refs)``: parallel arrays, one pair per match, ordered by query.
        """
        empty = np.zeros(0, dtype=np.int64)
        if len(self) == 0 or queries.shape[0] == 0:
            return empty, empty
        queries = np.ascontiguousarray(queries, dtype=np.uint8)
        prefixes = self._prefixes(queries)
        prefixes >>= np.uint64(self._bits)
        prefixes <<= np.uint64(self._bits)
        order = np.argsort(prefixes)
        sorted_prefixes = prefixes[order]
        keys = self._keys
        low = np.searchsorted(keys, sorted_prefixes, side="left")
        # Almost every query misses: find the ones whose prefix is present with one search,
        # then the end of their candidate range with a second search over those alone.
        found = (keys[np.minimum(low, keys.size - 1)] & ~self._low) == sorted_prefixes
        found &= low < keys.size
        hit = np.nonzero(found)[0]
        if hit.size == 0:
            return empty, empty
        high = np.searchsorted(keys, sorted_prefixes[hit] | self._low, side="right")
        # Expand every candidate range [low, high) into single positions.
        repeat = high - low[hit]
        query_positions = np.repeat(hit, repeat)
        starts = np.repeat(low[hit], repeat)
        offsets = np.arange(query_positions.size) - np.repeat(np.cumsum(repeat) - repeat, repeat)
        rows = (self._keys[starts + offsets] & self._low).astype(np.int64)
        query_numbers = order[query_positions].astype(np.int64)
        equal = np.all(self._rows[rows] == queries[query_numbers], axis=1)
        query_numbers, rows = query_numbers[equal], rows[equal]
        sort = np.lexsort((rows, query_numbers))
        query_numbers, rows = query_numbers[sort], rows[sort]
        refs = rows if self._refs is None else self._refs[rows].astype(np.int64)
        return query_numbers, refs

    def count_matches(self, queries: npt.NDArray[np.uint8]) -> int:
        """The number of query rows equal to at least one indexed row."""
        query_numbers, _ = self.lookup(queries)
        return int(np.unique(query_numbers).size)


def digests_array(digests: Iterable[bytes], count_hint: int = 0) -> npt.NDArray[np.uint8]:
    """Pack 32-byte digests into an ``(n, 32)`` uint8 array."""
    joined = b"".join(digests)
    if len(joined) % 32:
        raise ValueError("digests must be 32 bytes each")
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, 32)


# Hex decoding, eight ASCII digits per little-endian 64-bit word (SWAR: every byte of a word is
# handled by the same arithmetic, with no carry between bytes). For a byte c:
#   nibble   = ((c & 0x0F) + 9 * ((c >> 6) & 1)) & 0x0F   ('0'..'9' -> 0..9, 'a'..'f' -> 10..15)
#   expected = nibble + 0x30 + 0x27 * ((nibble + 6) >> 4)  (the lower-case digit of that nibble)
# and c is a lower-case hex digit exactly when expected == c (checked for all 256 byte values by
# the tests). Output byte j is (nibble[2j] << 4) | nibble[2j + 1]: the even bytes of
# (nibble << 4) | (nibble >> 8), taken as the low bytes of little-endian 16-bit lanes.
_WORD = np.dtype("<u8")
_HEX_ROWS_PER_STEP = 8192  # 512 KiB of digits per step: the temporaries stay in cache


def _every_byte(value: int) -> np.uint64:
    return np.uint64(int.from_bytes(bytes([value]) * 8, "little"))


_LOW_NIBBLES, _ONES, _ZEROS_CHAR, _SIXES = (_every_byte(b) for b in (0x0F, 0x01, 0x30, 0x06))


def _decode_hex_words(
    words: npt.NDArray[np.uint64], out: npt.NDArray[np.uint8], scratch: npt.NDArray[np.uint64]
) -> npt.NDArray[np.bool_]:
    """Decode ``words`` (rows of 8 words, 64 digits) into ``out`` (rows of 32 bytes).

    Returns, per row, whether any of its digits is not ``[0-9a-f]`` (``out`` is then garbage).
    """
    nibbles = scratch[0]
    work = scratch[1]
    np.bitwise_and(words, _LOW_NIBBLES, out=nibbles)
    np.right_shift(words, np.uint64(6), out=work)
    work &= _ONES
    work *= np.uint64(9)
    nibbles += work
    nibbles &= _LOW_NIBBLES
    np.add(nibbles, _SIXES, out=work)
    work >>= np.uint64(4)
    work &= _ONES
    work *= np.uint64(0x27)
    work += nibbles
    work += _ZEROS_CHAR
    bad: npt.NDArray[np.bool_] = np.not_equal(work, words).any(axis=1)
    np.left_shift(nibbles, np.uint64(4), out=work)
    nibbles >>= np.uint64(8)
    work |= nibbles
    np.copyto(out, work.view("<u2"), casting="unsafe")  # the low byte of each 16-bit lane
    return bad


def hex_digests(
    data: bytes | bytearray | memoryview,
    *,
    newlines: bool = False,
    out: npt.NDArray[np.uint8] | None = None,
) -> npt.NDArray[np.uint8]:
    """Decode lower-case hex SHA-256 digests written back to back, or one per line.

    ``data`` holds 64 ASCII digits per digest, each followed by ``\\n`` when ``newlines`` is
    true (the last one too). Every byte is checked: only ``0-9`` and ``a-f`` are digits.

    Returns:
        An ``(n, 32)`` uint8 array: ``out`` when given (it must have that shape).

    Raises:
        ValueError: the size is not a multiple of 64 (65), or a digit is not ``[0-9a-f]``, or a
            line does not end where it should; the message names the first bad digest
            (counted from 0).
    """
    width = 65 if newlines else 64
    raw = np.frombuffer(data, dtype=np.uint8)
    if raw.size % width:
        raise ValueError(f"{raw.size} bytes is not a whole number of {width}-byte hex digests")
    count = raw.size // width
    rows = raw.reshape(count, width)
    if newlines:
        misplaced = np.flatnonzero(rows[:, 64] != 0x0A)
        if misplaced.size:
            raise ValueError(f"digest {int(misplaced[0])} is not 64 digits and a newline")
    if out is None:
        out = np.empty((count, 32), dtype=np.uint8)
    elif out.shape != (count, 32):
        raise ValueError(f"out has shape {out.shape}, not ({count}, 32)")
    # numpy releases the GIL in these loops: a second core decodes the second half.
    half = count // 2 if count >= _HEX_PARALLEL_ROWS and _other_cores() else count
    second = _hex_pool().submit(_decode_hex_rows, rows, out, half, count) if half < count else None
    bad = _decode_hex_rows(rows, out, 0, half)
    if second is not None:
        later = second.result()
        bad = later if bad is None else bad
    if bad is not None:
        raise ValueError(f"digest {bad} holds a character other than 0-9a-f")
    return out


_HEX_PARALLEL_ROWS = 1 << 15
_HEX_POOL: list[concurrent.futures.ThreadPoolExecutor] = []


if hasattr(os, "register_at_fork"):  # a forked child has no thread behind the parent's pool
    os.register_at_fork(after_in_child=_HEX_POOL.clear)


def _hex_pool() -> concurrent.futures.ThreadPoolExecutor:
    if not _HEX_POOL:
        _HEX_POOL.append(
            concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hex")
        )
    return _HEX_POOL[0]


def _other_cores() -> bool:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) > 1
    return (os.cpu_count() or 1) > 1


def _decode_hex_rows(
    rows: npt.NDArray[np.uint8], out: npt.NDArray[np.uint8], start: int, stop: int
) -> int | None:
    """Decode ``rows[start:stop]`` (64 digits, then perhaps a newline) into ``out``.

    Returns:
        The number of the first row holding a character other than ``[0-9a-f]``, or None.
    """
    step = max(1, min(stop - start, _HEX_ROWS_PER_STEP))
    scratch = np.empty((2, step, 8), dtype=_WORD)
    digits = np.empty((step, 64), dtype=np.uint8)
    direct = rows.shape[1] == 64 and rows.ctypes.data % 8 == 0
    for first in range(start, stop, step):
        last = min(stop, first + step)
        size = last - first
        if direct:
            words = rows[first:last].view(_WORD)
        else:  # lines with newlines, or unaligned memory: copy the digits into place
            np.copyto(digits[:size], rows[first:last, :64])
            words = digits[:size].view(_WORD)
        bad = _decode_hex_words(words, out[first:last], scratch[:, :size])
        if bad.any():
            return first + int(np.argmax(bad))
    return None


_HEX_VALUES_PER_CHUNK = 1 << 16  # 4 MiB joined: no giant temporary string for millions


def hex_digest_rows(values: Sequence[str]) -> npt.NDArray[np.uint8]:
    """Decode 64-digit lower-case hex strings into an ``(n, 32)`` uint8 array, in bulk.

    Raises:
        FormatError: a value is not 64 lower-case hex digits (the first bad one is named).
    """
    count = len(values)
    out = np.empty((count, 32), dtype=np.uint8)
    for start in range(0, count, _HEX_VALUES_PER_CHUNK):
        stop = min(count, start + _HEX_VALUES_PER_CHUNK)
        chunk = values if stop - start == count else values[start:stop]
        joined = "".join(chunk)
        # The total is 64 per value and none is longer: so each is exactly 64 characters.
        if len(joined) == 64 * len(chunk) and max(map(len, chunk)) == 64 and joined.isascii():
            try:
                hex_digests(joined.encode("ascii"), out=out[start:stop])
                continue
            except ValueError:
                pass
        for value in chunk:
            if not _HEX64.fullmatch(value):
                raise FormatError(f"{value[:80]!r} is not a SHA-256 (64 lower-case hex digits)")
        raise AssertionError("bulk and per-value hex checks disagree")  # pragma: no cover
    return out


# ----------------------------------------------------------------------------------------------
# The index over many lists


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching entry: ``lists[list_number].entries[entry_number]``."""

    list_number: int
    entry_number: int


@dataclass(frozen=True, slots=True)
class RecordMatch:
    """What matched one record. ``unevaluable`` says why URL entries could not be checked."""

    hits: tuple[Hit, ...]
    unevaluable: str | None = None


_NO_REFS: tuple[int, ...] = ()


_URLS_PER_STEP = 4096
_MAX_PLAIN_HOST = 255
"""Longer hosts go to the parser (no listed domain is longer than 253 characters), which also
bounds the hashing tables."""


def _take_slow(hosts: list[str | None] | list[str], test: Callable[[Any], bool]) -> list[int]:
    """Replace the hosts for which ``test`` is true by ``""``; return their positions."""
    positions = [number for number, host in enumerate(hosts) if test(host)]
    for number in positions:
        hosts[number] = ""
    return positions


def _is_none(host: str | None) -> bool:
    return host is None


def _needs_parser(host: str | None) -> bool:
    return host is not None and ("xn--" in host or len(host) > _MAX_PLAIN_HOST)


# Polynomial hashes of byte strings modulo 2**64: hash(s) = sum((s[i] + 1) * B**(len(s)-1-i)).
# For every position of a buffer, A[p] = sum over i < p of (c[i] + 1) * B**-i, so the hash of
# c[a:e] is (A[e] - A[a]) * B**(e-1): one cumulative sum gives every suffix of every host.
_HASH_BASE = 0x9E3779B97F4A7C15  # odd, so invertible modulo 2**64
_HASH_MIX = np.uint64(0xD6E8FEB86659FD93)


class _Powers:
    """``B**i`` and ``B**-i`` modulo 2**64 for i below a size that grows as needed."""

    def __init__(self) -> None:
        self.up = np.ones(1, dtype=np.uint64)
        self.down = np.ones(1, dtype=np.uint64)

    def get(self, size: int) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        up, down = self.up, self.down
        if up.size < size:
            size = max(size, 2 * up.size)
            up, down = np.empty(size, np.uint64), np.empty(size, np.uint64)
            up[0] = down[0] = 1
            # Integer arrays wrap silently: exactly arithmetic modulo 2**64.
            np.cumprod(np.full(size - 1, _HASH_BASE, np.uint64), out=up[1:])
            inverse = pow(_HASH_BASE, -1, 1 << 64)
            np.cumprod(np.full(size - 1, inverse, np.uint64), out=down[1:])
            self.up, self.down = up, down
        return up, down


_POWERS = _Powers()


def _range_hashes(
    data: npt.NDArray[np.uint8], starts: npt.NDArray[np.intp], ends: npt.NDArray[np.intp]
) -> npt.NDArray[np.uint64]:
    """The hashes of ``data[starts[i]:ends[i]]`` (every range non-empty)."""
    up, down = _POWERS.get(data.size + 1)
    weighted = data.astype(np.uint64)
    weighted += np.uint64(1)
    weighted *= down[: data.size]
    sums = np.empty(data.size + 1, dtype=np.uint64)
    sums[0] = 0
    np.cumsum(weighted, out=sums[1:])
    hashes: npt.NDArray[np.uint64] = sums[ends] - sums[starts]
    hashes *= up[ends - 1]
    return hashes


class _SuffixFilter:
    """A bitmap of the listed domains' hashes: which host suffixes may be listed.

    A suffix whose bit is clear is not listed; one whose bit is set is looked up exactly (hash
    collisions only cost a lookup). About 32 bits per domain: ~3 % of the other suffixes pass.
    """

    def __init__(self, domains: Iterable[str]) -> None:
        hosts = list(domains)
        self._bits = min(34, max(16, (32 * len(hosts)).bit_length()))
        self._shift = np.uint64(64 - self._bits)
        self._bitmap = np.zeros(1 << (self._bits - 3), dtype=np.uint8)
        fewest, most = 1, 0  # label counts of the hosts: (1, 0) when there are none
        for start in range(0, len(hosts), 1 << 16):
            data = np.frombuffer(
                ("\n".join(hosts[start : start + (1 << 16)]) + "\n").encode("utf-8"), np.uint8
            )
            ends = np.flatnonzero(data == 0x0A)
            starts = np.concatenate(([0], ends[:-1] + 1))
            slots = self._slots(_range_hashes(data, starts, ends))
            np.bitwise_or.at(self._bitmap, slots >> np.uint64(3), _BIT[slots & np.uint64(7)])
            dots = np.concatenate(([0], np.cumsum(data == 0x2E)))
            labels = dots[ends] - dots[starts] + 1
            fewest = int(labels.min()) if not start else min(fewest, int(labels.min()))
            most = max(most, int(labels.max()))
        self.labels = (fewest, most)
        """The fewest and most labels a listed domain has."""

    def _slots(self, hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        hashes *= _HASH_MIX
        hashes >>= self._shift
        return hashes

    def candidates(self, text: str, low: int, high: int) -> list[tuple[int, int]]:
        """Return ``(host number, offset)`` of every suffix that may be listed, in order.

        ``text`` is ASCII hosts, each followed by a newline (an empty host matches nothing).
        Only suffixes with ``low`` to ``high`` labels are considered.
        """
        data = np.frombuffer(text.encode("ascii"), dtype=np.uint8)
        newline = data == 0x0A
        dot = data == 0x2E
        ends = np.flatnonzero(newline)
        # A label starts at the beginning and after every dot or newline, unless it is empty.
        label = np.empty(data.size, dtype=bool)
        label[0] = True
        np.logical_or(dot[:-1], newline[:-1], out=label[1:])
        label &= ~newline
        starts = np.flatnonzero(label)
        hosts = np.searchsorted(ends, starts)
        stops = ends[hosts]
        dots = np.empty(data.size + 1, dtype=np.int32)
        dots[0] = 0
        np.cumsum(dot, out=dots[1:])
        labels = dots[stops] - dots[starts] + 1
        keep = np.flatnonzero((labels >= low) & (labels <= high))
        starts, stops, hosts = starts[keep], stops[keep], hosts[keep]
        slots = self._slots(_range_hashes(data, starts, stops))
        marked = self._bitmap[slots >> np.uint64(3)] & _BIT[slots & np.uint64(7)]
        chosen = np.flatnonzero(marked)
        if not chosen.size:
            return []
        hosts = hosts[chosen]
        first_byte = np.concatenate(([0], ends[:-1] + 1))
        offsets = starts[chosen] - first_byte[hosts]
        return list(zip(hosts.tolist(), offsets.tolist(), strict=True))


_BIT = np.array([1 << bit for bit in range(8)], dtype=np.uint8)


_DigestParts = tuple[list[npt.NDArray[np.uint8]], list[npt.NDArray[np.int64] | range]]
"""Decoded digest rows and, for each block of rows, the entry numbers they report."""
_TYPE_OF = operator.attrgetter("type")
_VALUE_OF = operator.attrgetter("value")


# Lines of hosts as _FAST_HOST takes them, without trailing dots, possessively (so a trailing dot
# fails the match instead of being backtracked into): what a published list holds.
_PLAIN_HOST_LINES = re.compile(
    r"(?:[a-z0-9-]++\.)*+[a-z][a-z0-9-]*+(?:\n(?:[a-z0-9-]++\.)*+[a-z][a-z0-9-]*+)*+"
)


def _add_plain_domains(
    entries: Sequence[Any],
    types: list[str],
    others: Iterable[int],
    total: int,
    domains: dict[str, tuple[int, ...]],
) -> Iterable[int]:
    """Add a list's ``domain`` entries to ``domains`` in bulk when every value is a plain host.

    Plain: what :data:`_FAST_HOST` takes as already canonical, without trailing dots or
    ``xn--`` labels, each host once in the list. The table ends up exactly as adding them one
    at a time would leave it.

    Returns:
        The positions among ``others`` still to be indexed one at a time (all of them when
        the bulk path does not apply).
    """
    if "domain" not in types:
        return others
    is_domain = list(map(operator.eq, types, itertools.repeat("domain")))
    hosts = list(itertools.compress(map(_VALUE_OF, entries), is_domain))
    text = "\n".join(hosts)
    if "xn--" in text or not _PLAIN_HOST_LINES.fullmatch(text):
        return others
    refs = zip(itertools.compress(range(total, total + len(types)), is_domain))  # (ref,) each
    added = dict(zip(hosts, refs, strict=True))
    if len(added) < len(hosts):
        return others  # a host listed twice: one at a time, so that its refs stay in order
    # Hosts already listed by earlier lists keep their (smaller) entry numbers first.
    smaller, larger = (added, domains) if len(added) < len(domains) else (domains, added)
    merged = {host: domains[host] + added[host] for host in smaller if host in larger}
    domains.update(added)
    domains.update(merged)
    if isinstance(others, range):
        return list(itertools.compress(others, map(operator.not_, is_domain)))
    return [number for number in others if not is_domain[number]]


def _index_list(
    the_list: ListLike,
    total: int,
    domains: dict[str, tuple[int, ...]],
    ips: dict[str, tuple[int, ...]],
    url_rules: dict[str, list[UrlRule]],
    digests: dict[str, _DigestParts],
) -> None:
    """Add the entries of one list (numbered from ``total``) to the index's tables.

    Digest entries are checked and decoded in bulk, the others one at a time in list order;
    errors are raised in the order a single pass would meet them (hosts and URLs first, then
    ``sha256``, then ``text-sha256`` values).

    Raises:
        FormatError: the list and the first bad entry are named.
    """
    entries = the_list.entries
    count = len(entries)
    types = list(map(_TYPE_OF, entries))
    number = 0
    try:
        # Where each digest kind is (big hash lists hold nothing else: no masks are built then).
        masks: dict[str, list[bool] | None] = {}
        for kind in digests:
            present = types.count(kind)
            masks[kind] = (
                None
                if present in (0, count)
                else list(map(operator.eq, types, itertools.repeat(kind)))
            )
        others: Iterable[int]
        if any(types.count(kind) == count for kind in digests):
            others = ()
        elif all(mask is None for mask in masks.values()):
            others = range(count)
        else:
            is_digest = np.zeros(count, dtype=bool)
            for mask in masks.values():
                if mask is not None:
                    is_digest |= np.asarray(mask, dtype=bool)
            others = np.flatnonzero(~is_digest).tolist()
        others = _add_plain_domains(entries, types, others, total, domains)
        fast = _FAST_HOST.fullmatch
        for number in others:
            kind = types[number]
            value = entries[number].value
            ref = total + number
            if kind == "domain":
                if fast(value) and "xn--" not in value:
                    host, target = value.rstrip("."), domains
                else:
                    host, is_ip = parse_host(value)
                    target = ips if is_ip else domains
                refs = target.get(host)
                target[host] = (ref,) if refs is None else (*refs, ref)
            elif kind in ("url-prefix", "url"):
                host, rules = compile_url_entry(value, exact=kind == "url", ref=ref)
                url_rules.setdefault(host, []).extend(rules)
            else:
                raise FormatError(f"unknown entry type {kind!r}")
        for kind, (rows, row_refs) in digests.items():
            mask = masks[kind]
            if mask is None:
                if not count or types[0] != kind:
                    continue  # none of this kind
                positions: npt.NDArray[np.int64] | range = range(count)
                values = list(map(_VALUE_OF, entries))
            else:
                positions = np.flatnonzero(np.asarray(mask, dtype=bool)).astype(np.int64)
                values = list(itertools.compress(map(_VALUE_OF, entries), mask))
            try:
                rows.append(hex_digest_rows(values))
            except FormatError:
                number = int(positions[_first_bad_hex(values, start=0)])
                raise
            row_refs.append(
                range(total, total + count) if isinstance(positions, range) else positions + total
            )
    except FormatError as exc:
        raise FormatError(
            f"list {the_list.name} v{the_list.version}: entry {number + 1}: {exc}"
        ) from None


class ListIndex:
    """All entries of several lists, indexed for matching records.

    ``lists`` are kept as given; a :class:`Hit` points into them. Entries are compiled once:
    hosts normalized, URLs parsed, digests packed.
    """

    def __init__(self, lists: Sequence[ListLike]) -> None:
        """Index every entry of ``lists``.

        Raises:
            FormatError: an entry has an unknown type or an invalid value (the list and entry
                are named); a list that cannot be applied as signed is not applied at all.
        """
        self.lists = tuple(lists)
        self._offsets: list[int] = []
        domains: dict[str, tuple[int, ...]] = {}
        ips: dict[str, tuple[int, ...]] = {}
        url_rules: dict[str, list[UrlRule]] = {}
        digests: dict[str, _DigestParts] = {"sha256": ([], []), "text-sha256": ([], [])}
        total = 0
        # Up to millions of small objects that cannot form cycles: the cyclic collector's
        # repeated passes over them would cost more than building them (as in the list loader).
        paused = gc.isenabled()
        gc.disable()
        try:
            for the_list in self.lists:
                self._offsets.append(total)
                # A list loaded from the cache's binary index hands over its digest rows as they
                # are (provenance.lists.packed); the tables end up as _index_list leaves them.
                index_into = getattr(the_list, "index_into", None)
                if index_into is not None:
                    index_into(total, domains, ips, url_rules, digests)
                else:
                    _index_list(the_list, total, domains, ips, url_rules, digests)
                total += len(the_list.entries)
        finally:
            if paused:
                gc.enable()
        self.entry_count = total
        self._domains = domains
        self._ips = ips
        self._url_rules = url_rules
        self._suffixes = _SuffixFilter(domains)
        self._min_labels, self._max_labels = self._suffixes.labels
        self._content = _digest_index(*digests["sha256"])
        self._text = _digest_index(*digests["text-sha256"])

    @property
    def has_url_entries(self) -> bool:
        """Whether any entry needs a record's URL (domain, url-prefix or url)."""
        return bool(self._domains or self._ips or self._url_rules)

    @property
    def has_content_entries(self) -> bool:
        """Whether any ``sha256`` entry is indexed."""
        return self._content is not None

    @property
    def has_text_entries(self) -> bool:
        """Whether any ``text-sha256`` entry is indexed."""
        return self._text is not None

    def listed_digests(self, *, text: bool = False) -> tuple[npt.NDArray[np.uint8], _Ints] | None:
        """The listed ``sha256`` (or, with ``text``, ``text-sha256``) digests as rows of 32
        bytes, and the internal entry number of each row (see :meth:`hit`); None if none.

        For joins done elsewhere (:mod:`provenance.lists.joins`).
        """
        index = self._text if text else self._content
        if index is None:
            return None
        rows = index._rows  # noqa: SLF001 - the index's own arrays, not copied
        refs = index._refs  # noqa: SLF001
        if refs is None:
            refs = np.arange(rows.shape[0], dtype=np.int64)
        return rows, refs.astype(np.int64, copy=False)

    def urls_only(self) -> ListIndex:
        """A copy that matches URLs (:meth:`match_urls`) and nothing else: no digests and no
        lists, so that it is small to send to the workers of URL matching tasks."""
        part = copy.copy(self)
        part.lists = ()
        part._content = part._text = None
        return part

    def hit(self, ref: int) -> Hit:
        """Turn an internal entry number into a :class:`Hit`."""
        # Lists with no entries share their offset with the next list; bisect_right skips them.
        list_number = bisect.bisect_right(self._offsets, ref) - 1
        return Hit(list_number, ref - self._offsets[list_number])

    def entry(self, hit: Hit) -> Any:
        """The list entry a hit points to."""
        return self.lists[hit.list_number].entries[hit.entry_number]

    def match_url(self, url: str) -> tuple[int, ...]:
        """Return the internal numbers of the entries ``url`` matches (see :meth:`hit`).

        Raises:
            InvalidURLError: the URL cannot be evaluated (unparseable, not a web scheme, or an
                invalid host). Callers must report this, not treat the URL as clean.
        """
        host = fast_host(url)
        if host is not None and host not in self._url_rules:
            return self._domain_refs(host)
        parsed = parse_url(url)
        if parsed.is_ip:
            refs = self._ips.get(parsed.host, _NO_REFS)
        elif parsed.host:
            refs = self._domain_refs(parsed.host)
        else:
            refs = _NO_REFS
        rules = self._url_rules.get(parsed.host)
        if rules:
            extra = tuple(rule.ref for rule in rules if rule.matches(parsed))
            if extra:
                refs = tuple(sorted(set(refs + extra)))
        return refs

    def match_urls(
        self, urls: Sequence[str | None]
    ) -> tuple[list[tuple[int, ...]], dict[int, str]]:
        """Match many URLs; the same answers as :meth:`match_url`, several times faster.

        Returns:
            ``(refs, unevaluable)``: per URL the internal entry numbers it matches (``None``
            matches nothing), and for each URL that cannot be evaluated its position and why.
        """
        count = len(urls)
        results: list[tuple[int, ...]] = [_NO_REFS] * count
        problems: dict[int, str] = {}
        slow: list[int] = []
        for first in range(0, count, _URLS_PER_STEP):
            chunk = urls[first : first + _URLS_PER_STEP]
            slow += [first + n for n in self._match_plain_urls(chunk, first, results)]
        for number in slow:
            url = urls[number]
            if url is None:
                continue
            try:
                results[number] = self.match_url(url)
            except InvalidURLError as exc:
                problems[number] = str(exc)
        return results, problems

    def _match_plain_urls(
        self, urls: Sequence[str | None], first: int, results: list[tuple[int, ...]]
    ) -> list[int]:
        """Match the plain ``http(s)://host/`` URLs of ``urls`` into ``results[first:]``.

        Returns:
            The positions (in ``urls``, ascending) of the URLs that need :meth:`match_url`.
        """
        texts = cast("Sequence[str]", urls)
        if None in urls:
            texts = ["" if url is None else url for url in urls]  # "" takes the slow path
        # The host of a plain URL, found by a regular expression in C, else None.
        matches = cast("Iterable[re.Match[str]]", map(_FAST_URL_HOST.match, texts))
        hosts: list[str | None] = list(map(_GROUP_1, matches))
        slow = _take_slow(hosts, _is_none) if None in hosts else []
        rules = self._url_rules
        if rules and not rules.keys().isdisjoint(hosts):
            slow += _take_slow(hosts, rules.__contains__)
        plain = cast("list[str]", hosts)  # "" where the URL is slow
        if self._domains:
            slow += self._match_plain_hosts(plain, first, results)
        else:
            # No domain entries: a plain host matches nothing, but one that needs the parser
            # may still be unevaluable.
            slow += _take_slow(plain, _needs_parser)
        return sorted(slow)

    def _match_plain_hosts(
        self, hosts: list[str], first: int, results: list[tuple[int, ...]]
    ) -> list[int]:
        """Set ``results[first + i]`` to the domain entries plain host ``hosts[i]`` is under.

        Hosts that need the parser (``xn--`` labels, or longer than any listed domain can be)
        are replaced by ``""`` and their positions (in ``hosts``) returned. Every suffix of a
        host on a label boundary whose label count is within the listed domains' is hashed
        (vectorized, see :class:`_SuffixFilter`); only those whose hash is in the listed
        domains' filter are looked up, in order, so the answers are exactly those of
        :meth:`_domain_refs`.
        """
        slow: list[int] = []
        text = "\n".join(hosts)
        if "xn--" in text or len(text) > _MAX_PLAIN_HOST * len(hosts):
            slow = _take_slow(hosts, _needs_parser)
            text = "\n".join(hosts)
        candidates = self._suffixes.candidates(text + "\n", self._min_labels, self._max_labels)
        domains = self._domains
        for number, offset in candidates:
            host = hosts[number]
            refs = domains.get(host[offset:] if offset else host)
            if refs is not None:
                results[first + number] += refs
        return slow

    def _domain_refs(self, host: str) -> tuple[int, ...]:
        domains = self._domains
        refs = domains.get(host, _NO_REFS)
        # Suffixes with fewer labels than the shortest listed domain, or more than the longest,
        # cannot be listed: only the ones in between are looked up.
        dots = host.count(".")
        first = dots + 1 - self._max_labels
        last = dots + 1 - self._min_labels
        position = -1
        label = 0
        while label < last:
            position = host.find(".", position + 1)
            label += 1
            if label >= first:
                suffix = host[position + 1 :]
                if suffix in domains:
                    refs = refs + domains[suffix]
        return refs

    def match_digests(
        self, digests: Sequence[Digest | None], *, text: bool = False
    ) -> list[tuple[int, ...]]:
        """Return, per digest, the internal numbers of the ``sha256`` entries it equals.

        A digest is 32 bytes or 64 lower-case hex digits (one kind per call); ``None`` matches
        nothing. With ``text=True``, look among ``text-sha256`` entries instead.

        Raises:
            FormatError: a hex digest is not 64 lower-case hex digits.
        """
        results: list[tuple[int, ...]] = [_NO_REFS] * len(digests)
        for number, refs in self._digest_hits(digests, text=text).items():
            results[number] = refs
        return results

    def _digest_hits(
        self, digests: Sequence[Digest | None], *, text: bool
    ) -> dict[int, tuple[int, ...]]:
        """The entries equal to each digest that equals any, by the digest's position."""
        index = self._text if text else self._content
        if index is None or not digests:
            return {}
        present: Sequence[int] = range(len(digests))
        values = digests
        if None in digests:
            present = [number for number, d in enumerate(digests) if d is not None]
            if not present:
                return {}
            values = [digests[n] for n in present]
        # One kind per call: joining raises TypeError on a mix.
        queries = (
            hex_digest_rows(cast("Sequence[str]", values))
            if isinstance(values[0], str)
            else digests_array(cast("Sequence[bytes]", values))
        )
        query_numbers, refs = index.lookup(queries)
        grouped: dict[int, tuple[int, ...]] = {}
        for query_number, ref in zip(query_numbers.tolist(), refs.tolist(), strict=True):
            number = present[query_number]
            grouped[number] = (*grouped.get(number, ()), ref)
        return grouped

    def match_records(
        self,
        urls: Sequence[str | None],
        contents: Sequence[Digest | None],
        texts: Sequence[Digest | None],
    ) -> list[RecordMatch]:
        """Match a batch of records given by URL, content digest and normalized-text digest.

        Digests are 32 bytes or 64 lower-case hex digits (one kind per sequence); ``None``
        means the record has no such value. A URL that cannot be evaluated while URL
        entries are indexed gives a :class:`RecordMatch` with ``unevaluable`` set (digest
        matches are still reported). A record nothing matches gets :data:`NO_MATCH` itself.
        """
        count = len(urls)
        content = self._digest_hits(contents, text=False)
        normalized = self._digest_hits(texts, text=True)
        url_refs: list[tuple[int, ...]] | None = None
        problems: dict[int, str] = {}
        url_hits: Iterable[int] = ()
        if self.has_url_entries:
            url_refs, problems = self.match_urls(urls)
            url_hits = itertools.compress(range(count), url_refs)  # the non-empty ones
        results = [_NO_MATCH] * count
        for number in sorted({*url_hits, *content, *normalized, *problems}):
            refs = content.get(number, _NO_REFS) + normalized.get(number, _NO_REFS)
            if url_refs is not None:
                refs += url_refs[number]
            hits = tuple(self.hit(ref) for ref in sorted(set(refs)))
            results[number] = RecordMatch(hits, problems.get(number))
        return results


_NO_MATCH = RecordMatch(())
NO_MATCH = _NO_MATCH
"""What :meth:`ListIndex.match_records` gives every record nothing matches (one object)."""


def _first_bad_hex(values: list[str], *, start: int) -> int:
    """Return the position of the first of ``values[start:]`` that is not a hex SHA-256.

    Only called once the bulk check (:func:`hex_digest_rows`) has failed.
    """
    for position in range(start, len(values)):
        if not _HEX64.fullmatch(values[position]):
            return position
    raise AssertionError("bulk and per-value hex checks disagree")  # pragma: no cover


def _digest_index(
    rows: list[npt.NDArray[np.uint8]], refs: list[npt.NDArray[np.int64] | range]
) -> DigestIndex | None:
    """Index the decoded digests of every list (``refs[i]`` numbers the rows of ``rows[i]``)."""
    if not rows:
        return None
    if len(rows) == 1 and isinstance(refs[0], range) and refs[0] == range(len(rows[0])):
        return DigestIndex(rows[0])  # each row reports its own number: no array of numbers
    numbers = [
        np.arange(r.start, r.stop, dtype=np.int64) if isinstance(r, range) else r for r in refs
    ]
    return DigestIndex(np.concatenate(rows), np.concatenate(numbers))
