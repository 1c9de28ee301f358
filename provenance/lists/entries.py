"""ENTRIES files: what a publisher feeds ``lists publish``, parsed and normalized into entries.

Three formats are accepted, told apart by the first line that is not blank or a comment:

- **JSON Lines** (that line starts with ``{``): one entry per line,
  ``{"type": ..., "value": ..., "category": ..., "note": ...}``; ``category`` defaults to the
  ``--category`` option, ``type`` to ``domain``.
- **hosts file**: ``0.0.0.0 example.org`` (any IP address, then one or more host names), as the
  Block List Project distributes its lists; the usual ``localhost`` lines are skipped.
- **plain text**: one domain (or IP address) per line, as the UT1 blacklists distribute them;
  or, when the publisher names another entry type (``--type``), one value of that type per line:
  ``url-prefix`` (UT1's ``urls`` files: ``host/path``), ``url``, ``sha256`` or ``text-sha256``.

In both text formats ``#`` starts a comment and blank lines are ignored. Every value is
normalized for publishing (domains: lower case, IDNA A-labels, no trailing dot, ``*.`` dropped;
IP literals in canonical form; digests in lower case), and a domain entry that is only a public
suffix (``com``, ``co.uk``, ``github.io``) is refused: it would exclude whole registries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from pathlib import Path

from provenance import _json
from provenance._files import open_input
from provenance.errors import FormatError, InputError, LocalIOError
from provenance.lists import match
from provenance.lists.model import (
    CATEGORIES,
    DIGEST_ENTRY_TYPES,
    ENTRY_TYPES,
    MAX_NOTE_LENGTH,
    MAX_VALUE_LENGTH,
    Category,
    EntryType,
    ListEntry,
    value_problem,
)

MAX_LINE_BYTES = 64 * 1024
_HOSTS_NAMES_SKIPPED = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",
    }
)


def _ip_literal(text: str) -> str | None:
    inner = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        address = ipaddress.ip_address(inner)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        return f"[{address.compressed}]"
    return str(address)


def normalize_domain(text: str, *, what: str) -> str:
    """Return the published form of a domain entry value.

    The host is normalized exactly as the matcher normalizes the hosts it looks up
    (:func:`provenance.lists.match.normalize_host`: WHATWG host parsing, UTS-46 A-labels, lower
    case, trailing dots dropped; IPv4 dotted decimal, IPv6 compressed and bracketed), so that
    both sides meet in one form. A leading ``*.`` (wildcard notation) is dropped: a domain entry
    covers every subdomain anyway.

    Raises:
        InputError: not a host name or IP literal, or only a public suffix.
    """
    value = text.strip()
    if value.startswith("*."):
        value = value[2:]
    try:
        host = match.normalize_host(value)
    except FormatError as exc:
        raise InputError(f"{what}: {text!r} is not a valid domain ({exc})") from None
    problem = value_problem("domain", host)
    if problem is not None:
        raise InputError(f"{what}: {text!r} is not a valid domain: it {problem}")
    if match.is_public_suffix(host):
        raise InputError(
            f"{what}: {host!r} is only a public suffix; listing it would exclude every site under"
            " it (list the registrable domains instead)"
        )
    return host


def normalize_entry(entry: ListEntry, *, what: str) -> ListEntry:
    """Return ``entry`` with its value in published form.

    Raises:
        InputError: the value is not valid for the entry's type.
    """
    value = entry.value.strip()
    if entry.type == "domain":
        value = normalize_domain(value, what=what)
    elif entry.type in DIGEST_ENTRY_TYPES:
        value = value.lower()
    problem = value_problem(entry.type, value)
    if problem is not None or not value or len(value) > MAX_VALUE_LENGTH:
        reason = problem or f"must be 1 to {MAX_VALUE_LENGTH} characters"
        raise InputError(f"{what}: {entry.type} value {entry.value[:100]!r} {reason}")
    if entry.type in ("url", "url-prefix"):
        # Exactly what matching will do with it: a value it cannot compile would make the
        # whole signed version unusable for every client, so it is refused here.
        try:
            match.compile_url_entry(value, exact=entry.type == "url")
        except FormatError as exc:
            raise InputError(f"{what}: {entry.type} value {value[:100]!r}: {exc}") from None
    if value == entry.value:
        return entry
    return ListEntry(type=entry.type, value=value, category=entry.category, note=entry.note)


def _json_entry(
    line: bytes, *, category: Category, what: str, default_type: EntryType = "domain"
) -> ListEntry:
    try:
        item = _json.loads_object(line, what=what)
    except FormatError as exc:
        raise InputError(str(exc)) from None
    unknown = sorted(set(item) - {"type", "value", "category", "note"})
    if unknown:
        raise InputError(f"{what}: unknown field(s) {', '.join(unknown)}")
    entry_type = item.get("type", default_type)
    if entry_type not in ENTRY_TYPES:
        raise InputError(f"{what}: type {entry_type!r} is not one of {', '.join(ENTRY_TYPES)}")
    entry_category = item.get("category", category)
    if entry_category not in CATEGORIES:
        raise InputError(
            f"{what}: category {entry_category!r} is not one of {', '.join(CATEGORIES)}"
        )
    value = item.get("value")
    if not isinstance(value, str) or not value:
        raise InputError(f"{what}: 'value' must be a non-empty string")
    note = item.get("note")
    if note is not None and (not isinstance(note, str) or not 1 <= len(note) <= MAX_NOTE_LENGTH):
        raise InputError(f"{what}: 'note' must be a string of 1 to {MAX_NOTE_LENGTH} characters")
    entry = ListEntry(type=entry_type, value=value, category=entry_category, note=note)
    return normalize_entry(entry, what=what)


def _text_entries(line: str, *, category: Category, what: str) -> Iterator[ListEntry]:
    tokens = line.split()
    hosts = tokens
    if len(tokens) > 1:
        if _ip_literal(tokens[0]) is None:
            raise InputError(
                f"{what}: expected one domain per line, or a hosts line 'IP name...';"
                f" got {line[:100]!r}"
            )
        hosts = [t for t in tokens[1:] if t.lower() not in _HOSTS_NAMES_SKIPPED]
    for host in hosts:
        domain_type: EntryType = "domain"
        value = normalize_domain(host, what=what)
        yield ListEntry(type=domain_type, value=value, category=category)


def _typed_entries(
    line: str, *, entry_type: EntryType, category: Category, what: str
) -> Iterator[ListEntry]:
    tokens = line.split()
    if len(tokens) != 1:
        raise InputError(f"{what}: expected one {entry_type} value per line; got {line[:100]!r}")
    yield normalize_entry(ListEntry(type=entry_type, value=tokens[0], category=category), what=what)


def parse_entries(
    lines: Iterable[bytes],
    *,
    category: Category = "other",
    what: str,
    skipped: list[InputError] | None = None,
    entry_type: EntryType | None = None,
) -> Iterator[ListEntry]:
    """Parse the lines of an ENTRIES file (see the module docstring) into normalized entries.

    Args:
        lines: the file's lines, with or without their line endings.
        category: the category of entries that do not name one.
        what: names the file in error messages (``what:LINE: ...``).
        skipped: if given, a line that cannot be used (an invalid value, a public suffix) is
            skipped and its error appended here instead of raised; real blocklists hold a few.
        entry_type: the type of a plain text file's values, and of JSON Lines entries that do
            not name one. ``None`` or ``domain``: domains, or a hosts file.

    Raises:
        InputError: a line that cannot be parsed, naming the file and line number.
    """
    if entry_type is not None and entry_type not in ENTRY_TYPES:
        raise InputError(f"type {entry_type!r} is not one of {', '.join(ENTRY_TYPES)}")
    mode: str | None = None
    for number, raw in enumerate(lines, start=1):
        where = f"{what}:{number}"
        if len(raw) > MAX_LINE_BYTES:
            raise InputError(f"{where}: line longer than {MAX_LINE_BYTES} bytes")
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        stripped = raw.strip()
        if mode is None:
            if not stripped or stripped.startswith(b"#"):
                continue
            mode = "jsonl" if stripped.startswith(b"{") else "text"
        try:
            if mode == "jsonl":
                if stripped:
                    yield _json_entry(
                        stripped,
                        category=category,
                        what=where,
                        default_type=entry_type or "domain",
                    )
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"{where}: not valid UTF-8") from None
            if entry_type in (None, "domain"):
                text = text.split("#", 1)[0].strip()
            else:
                # '#' may belong to a URL (a fragment); only a line starting with it is a comment.
                text = "" if text.lstrip().startswith("#") else text.strip()
            if not text:
                continue
            if entry_type in (None, "domain"):
                # A list, not a generator: a bad host skips its whole line, never half of it.
                yield from list(_text_entries(text, category=category, what=where))
            else:
                assert entry_type is not None
                yield from _typed_entries(
                    text, entry_type=entry_type, category=category, what=where
                )
        except InputError as exc:
            if skipped is None:
                raise
            skipped.append(exc)


def read_entries(
    path: Path,
    *,
    category: Category = "other",
    skipped: list[InputError] | None = None,
    entry_type: EntryType | None = None,
) -> list[ListEntry]:
    """Read and parse the ENTRIES file at ``path`` (see :func:`parse_entries`).

    The file is opened with :func:`provenance._files.open_input`, which refuses anything but a
    regular file without blocking (a FIFO would otherwise hang the publisher).

    Raises:
        InputError: missing, not a regular file, unreadable, or a line that cannot be parsed
            (unless ``skipped``).
        LocalIOError: another I/O error.
    """
    with open_input(path, kind="ENTRIES file") as handle:
        try:
            return list(
                parse_entries(
                    handle,
                    category=category,
                    what=str(path),
                    skipped=skipped,
                    entry_type=entry_type,
                )
            )
        except OSError as exc:
            raise LocalIOError(f"{path}: cannot read: {exc.strerror}") from None


def prepare_entries(entries: Iterable[ListEntry], *, what: str) -> tuple[ListEntry, ...]:
    """Return ``entries`` deduplicated and in published order (by type, then value).

    Raises:
        InputError: one value is listed twice with different categories or notes.
    """
    unique: dict[tuple[str, str], ListEntry] = {}
    for entry in entries:
        key = entry.sort_key()
        seen = unique.get(key)
        if seen is None:
            unique[key] = entry
        elif seen != entry:
            raise InputError(
                f"{what}: {entry.type} {entry.value!r} is listed twice with different"
                f" categories or notes ({seen.category} and {entry.category})"
            )
    return tuple(unique[key] for key in sorted(unique))
