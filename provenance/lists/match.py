"""Matching records against exclusion lists, so that spelling cannot evade a listed entry.

The public names of matching, gathered from the modules that define them:

- :mod:`provenance.lists.urls`: URL and host normalization (WHATWG URL parsing, UTS #46
  hosts, the Public Suffix List), the one definition of a plain host, and the compiled form of
  ``url`` and ``url-prefix`` entries;
- :mod:`provenance.lists.index`: the match index over many lists, whose
  :meth:`~provenance.lists.index.ListIndex.match_url` is the specification of URL matching;
- :mod:`provenance.lists.digests`: the exact lookup of SHA-256 digests among millions;
- the private accelerator :mod:`provenance.lists._accel` (many URLs at once) and the numeric
  kernels :mod:`provenance._kernels` (hex codec, polynomial hashes), which the tests hold to
  the rules they speed up.

Entry types and categories are defined in :mod:`provenance.lists.model`.
"""

from __future__ import annotations

from provenance.lists.digests import Digest, DigestIndex, digests_array
from provenance.lists.index import NO_MATCH, EntryLike, Hit, ListIndex, ListLike, RecordMatch
from provenance.lists.urls import (
    PLAIN_HOST,
    WEB_SCHEMES,
    ParsedURL,
    UrlRule,
    compile_url_entry,
    decode_punycode_label,
    fast_host,
    is_plain_host,
    is_public_suffix,
    normalize_host,
    normalize_percent,
    parse_host,
    parse_url,
    registrable_domain,
)

__all__ = [
    "NO_MATCH",
    "PLAIN_HOST",
    "WEB_SCHEMES",
    "Digest",
    "DigestIndex",
    "EntryLike",
    "Hit",
    "ListIndex",
    "ListLike",
    "ParsedURL",
    "RecordMatch",
    "UrlRule",
    "compile_url_entry",
    "decode_punycode_label",
    "digests_array",
    "fast_host",
    "is_plain_host",
    "is_public_suffix",
    "normalize_host",
    "normalize_percent",
    "parse_host",
    "parse_url",
    "registrable_domain",
]
