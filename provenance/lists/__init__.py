"""Signed, versioned exclusion lists.

- :mod:`provenance.lists.model`: the list document (``ExclusionList``, ``ListEntry``), its
  canonical bytes, and the parser for ENTRIES input files (JSON Lines, plain domains, hosts).
- :mod:`provenance.lists.repository`: ``lists publish`` / ``lists refresh``, a TUF repository
  in a directory, built on python-tuf's Metadata API.
- :mod:`provenance.lists.client`: ``lists fetch``, python-tuf's ngclient with a ``requests``
  fetcher that enforces timeouts, a total deadline, a decoded-size cap and same-host redirects.
- :mod:`provenance.lists.cache`: the local cache of verified lists, re-verified on every load
  (``load_cached_lists``, ``load_cached_version``, ``CachedList``).
"""

from __future__ import annotations

from provenance.lists.model import ExclusionList, ListEntry

__all__ = ["ExclusionList", "ListEntry"]
