"""URL and host normalization: the rules that bring a URL or a listed value to the form matching
compares. Pure: no I/O, no clock. The same code normalizes list entries and the URLs being
checked:

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

A **plain host** (:data:`PLAIN_HOST`, :func:`is_plain_host`) is one the WHATWG host parser
leaves exactly as it is: lower-case ASCII letters, digits and hyphens in non-empty labels, the
last label starting with a letter (so that it cannot be an IPv4 number), and no ``xn--`` label
(those need validation). Such hosts, most of the web's, skip the parser: in
:func:`parse_host`, in :func:`fast_host` (the host of a plain ``http(s)://host/...`` URL) and in
the batch matcher. The tests hold each shortcut to the parser.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import ada_url
import idna.core

from provenance._unicode14 import CN_ENDS, CN_STARTS
from provenance.errors import InvalidURLError

__all__ = [
    "PLAIN_HOST",
    "PLAIN_URL",
    "WEB_SCHEMES",
    "ParsedURL",
    "UrlRule",
    "compile_url_entry",
    "decode_punycode_label",
    "fast_host",
    "is_plain_host",
    "is_public_suffix",
    "normalize_host",
    "normalize_percent",
    "parse_host",
    "parse_url",
    "registrable_domain",
]

WEB_SCHEMES = ("http", "https")
"""The schemes a ``url`` or ``url-prefix`` entry may name."""

# WHATWG "special" schemes: their hosts are domains or IP addresses and go through the host parser.
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp", "file"})
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_HOST_FORBIDDEN_IN_ENTRY = re.compile(r"[\x00-\x20\x7f/\\?#@]")

PLAIN_HOST = r"(?:[a-z0-9-]++\.)*+[a-z][a-z0-9-]*+"
"""A plain host as a regular expression, less the ``xn--`` rule (see the module docstring).

Possessive repeats: no backtracking, so a host with a trailing dot or an empty label fails at
once (and goes to the parser)."""
_PLAIN_HOST = re.compile(PLAIN_HOST)
PLAIN_URL = re.compile(rf"(?:https?://({PLAIN_HOST})(?=[/?#]|\Z))?")
"""Matches every string; group 1 is the host of a plain ``http(s)://host...`` URL (a plain host
followed by the end, ``/``, ``?`` or ``#``; not yet checked for ``xn--`` labels), else None."""


def is_plain_host(text: str) -> bool:
    """Whether ``text`` is a plain host: one the WHATWG host parser leaves exactly as it is."""
    return _PLAIN_HOST.fullmatch(text) is not None and "xn--" not in text


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
    return parse_host(text)[0]


def parse_host(text: str) -> tuple[str, bool]:
    """Like :func:`normalize_host`, and also say whether the host is an IP address.

    Returns:
        ``(host, is_ip)``.

    Raises:
        InvalidURLError: as :func:`normalize_host`.
    """
    host = text.rstrip(".")
    if is_plain_host(host):
        return host, False  # what the parser gives (the tests check it)
    return _parse_host_with_parser(text)


def _parse_host_with_parser(text: str) -> tuple[str, bool]:
    """:func:`parse_host` through the WHATWG host parser, for every host."""
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

    The answer, when not ``None``, is exactly what :func:`parse_url` would give as the host
    (the tests check it).
    """
    found = PLAIN_URL.match(url)  # always a match; group 1 is the host or None
    host = None if found is None else found[1]
    return None if host is None or "xn--" in host else host


# ----------------------------------------------------------------------------------------------
# url and url-prefix entries


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
