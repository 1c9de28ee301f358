"""Exports of a verified dataset card into the formats its readers use, and imports from them.

One module per format, each a pure function of an :class:`ExportCard` (built only from a card
whose signature verified) and, where the format needs figures the card does not hold, the
:class:`ManifestFacts` of a manifest that was checked against the card. No module here reads or
writes files: :mod:`provenance.exports.run` is the I/O shell that verifies, checks and writes.

| format | module | output |
|---|---|---|
| ``huggingface`` | :mod:`.huggingface` | README.md: YAML front matter, the Hub template's body |
| ``croissant`` | :mod:`.croissant` | Croissant 1.1 JSON-LD with RAI fields and PROV-O sources |
| ``spdx3`` | :mod:`.spdx3` | SPDX 3.0.1 JSON-LD, Dataset profile |
| ``cyclonedx`` | :mod:`.cyclonedx` | CycloneDX 1.6 JSON with a ``data`` component |
| ``eu-summary`` | :mod:`.eu_summary` | the EU AI Office's public summary template, sections 1-3 |
| ``oms`` | :mod:`.oms` | an OpenSSF model_signing v1.0 Sigstore bundle |
| ``html`` | :mod:`.html_page` | one self-contained page for people |
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from provenance.card.model import CardPredicate, CardStatement, Collection, Exclusion, Source
from provenance.errors import InvalidURLError
from provenance.manifest import ManifestEntry
from provenance.partitions.index import INDEX_NAME

FORMATS = ("huggingface", "croissant", "spdx3", "cyclonedx", "eu-summary", "oms", "html")
TOOL_URL = "https://provenance.dev"


@dataclass(frozen=True, slots=True)
class Signer:
    """A trusted key that signed the card, with the role it is trusted for."""

    keyid: str
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class ExportCard:
    """What every exporter reads: a verified card and who signed it.

    Build it only from a :class:`provenance.card.VerifiedCard` (see
    :func:`provenance.exports.run.load_verified`): the statement here was parsed from the
    signed bytes after their signature verified.
    """

    statement: CardStatement
    statement_sha256: str
    """SHA-256 of the signed payload: the card's identity."""
    signers: tuple[Signer, ...]

    @property
    def predicate(self) -> CardPredicate:
        """The card predicate."""
        return self.statement.predicate

    @property
    def manifest_name(self) -> str:
        """The manifest's file name, as the card's subject names it."""
        return self.statement.manifest_name

    @property
    def manifest_partitioned(self) -> bool:
        """Whether the manifest is partitioned: the card's subject is then its index (DESIGN
        §8), and its entries are in the parts (:data:`provenance.partitions.index.PARTS_GLOB`)."""
        return self.manifest_name == INDEX_NAME

    @property
    def manifest_sha256(self) -> str:
        """The manifest file digest the card commits to."""
        return self.statement.manifest_sha256

    @property
    def card_urn(self) -> str:
        """A URN naming this card: ``urn:provenance:card:sha256:<statement digest>``."""
        return f"urn:provenance:card:sha256:{self.statement_sha256}"


@dataclass(frozen=True, slots=True)
class DomainBytes:
    """Records and bytes of manifest entries whose URL is under one registrable domain."""

    domain: str
    records: int
    bytes: int


@dataclass(frozen=True, slots=True)
class EntryFacts:
    """What one pass over manifest entries finds that the card does not hold."""

    columns: tuple[str, ...]
    """The entry fields present in at least one entry, in the manifest schema's order."""
    domains: tuple[DomainBytes, ...]
    """Per registrable domain, by bytes then records (both descending), then name."""
    url_entries: int
    """Entries that have a URL."""
    unparsable_urls: int
    """Entries whose URL has no host that could be read (left out of ``domains``)."""
    modalities: Mapping[str, tuple[int, int]]
    """Records and bytes per modality inferred from file extensions (see :func:`modality_of`)."""


@dataclass(frozen=True, slots=True)
class ManifestFacts:
    """A manifest checked against the card (digest, count, bytes, root) and what it holds."""

    file_bytes: int
    entries: EntryFacts = field(repr=False)


_COLUMNS = ("id", "sha256", "size", "source", "url", "license", "rightsHolder", "textSha256")

# Modality by file extension: a fixed table, so that the answer does not depend on the system's
# MIME database. An entry with a normalized-text digest decoded as text, whatever its name.
_EXTENSIONS = {
    "text": "txt text md markdown rst html htm xhtml xml json jsonl ndjson csv tsv tex srt vtt "
    "py js ts java c h cc cpp hpp cs go rs rb php pl sh sql yaml yml toml ini css scala kt swift",
    "image": "png jpg jpeg gif bmp tif tiff webp heic heif avif svg ico jp2 dng",
    "audio": "wav mp3 flac ogg oga opus m4a aac wma aif aiff mid midi",
    "video": "mp4 m4v mkv webm avi mov mpg mpeg wmv flv 3gp ogv",
}
_MODALITY_OF_EXTENSION = {ext: kind for kind, exts in _EXTENSIONS.items() for ext in exts.split()}
MODALITIES = ("text", "image", "audio", "video", "other")


def modality_of(entry: ManifestEntry) -> str:
    """The modality of a manifest entry: text, image, audio, video, or other.

    Inferred from the extension of its id (or of its URL's path), or text when the entry has a
    normalized-text digest (its bytes decoded as text); ``other`` when neither says.
    """
    for name in (entry.id, _url_path(entry.url)):
        if not name:
            continue
        extension = posixpath.splitext(name.rsplit("/", 1)[-1])[1].lstrip(".").lower()
        if extension in _MODALITY_OF_EXTENSION:
            return _MODALITY_OF_EXTENSION[extension]
    return "text" if entry.textSha256 is not None else "other"


def _url_path(url: str | None) -> str | None:
    if not url:
        return None
    path = url.split("?", 1)[0].split("#", 1)[0]
    return path.split("://", 1)[-1].partition("/")[2] or None


def collect_entry_facts(entries: Iterable[ManifestEntry]) -> EntryFacts:
    """Stream ``entries`` once and gather what the card does not hold.

    URL hosts are read as browsers read them and grouped by registrable domain (the Public
    Suffix List's eTLD+1); an IP address or a host that is itself a public suffix is its own
    group.
    """
    from provenance.lists.match import fast_host, parse_url, registrable_domain

    present: set[str] = set()
    by_host: dict[str, list[int]] = {}
    modalities: dict[str, list[int]] = {}
    url_entries = unparsable = 0
    for entry in entries:
        size = entry.size or 0
        for column in ("size", "source", "url", "license", "rightsHolder", "textSha256"):
            if column not in present and getattr(entry, column) is not None:
                present.add(column)
        kind = modality_of(entry)
        counts = modalities.setdefault(kind, [0, 0])
        counts[0] += 1
        counts[1] += size
        if entry.url is None:
            continue
        url_entries += 1
        host = fast_host(entry.url)
        if host is None:
            try:
                host = parse_url(entry.url).host
            except InvalidURLError:
                unparsable += 1
                continue
        tally = by_host.setdefault(host, [0, 0])
        tally[0] += 1
        tally[1] += size
    by_domain: dict[str, list[int]] = {}
    for host, (records, size) in by_host.items():
        domain = registrable_domain(host) or host
        tally = by_domain.setdefault(domain, [0, 0])
        tally[0] += records
        tally[1] += size
    domains = sorted(
        (DomainBytes(d, r, b) for d, (r, b) in by_domain.items()),
        key=lambda d: (-d.bytes, -d.records, d.domain),
    )
    return EntryFacts(
        columns=tuple(c for c in _COLUMNS if c in ("id", "sha256") or c in present),
        domains=tuple(domains),
        url_entries=url_entries,
        unparsable_urls=unparsable,
        modalities={k: (v[0], v[1]) for k, v in sorted(modalities.items())},
    )


def top_domain_count(domains: int, *, sme: bool = False) -> int:
    """How many of ``domains`` ranked domains the EU summary lists.

    The top 10 % rounded up; for an SME the top 5 % rounded up or 1,000, whichever is fewer.
    At least one when there is any domain.
    """
    if domains <= 0:
        return 0
    count = math.ceil(domains * 5 / 100) if sme else math.ceil(domains * 10 / 100)
    if sme:
        count = min(count, 1000)
    return max(count, 1)


# ----------------------------------------------------------------------------------------------
# Licenses of the whole dataset


def dataset_license(predicate: CardPredicate) -> str:
    """The SPDX expression of the dataset as a whole: every license in it, joined by ``AND``.

    The licenses are those the card counts records under (its sources' when it counts none).
    ``NOASSERTION`` if any of them is, since nothing can then be asserted of the whole.
    """
    expressions: list[str] = sorted(
        {item.license for item in predicate.licenses}
        or {source.license for source in predicate.sources}
    )
    if "NOASSERTION" in expressions:
        return "NOASSERTION"
    if len(expressions) == 1:
        return expressions[0]
    return " AND ".join(f"({e})" if " " in e else e for e in expressions)


def custom_license_refs(predicate: CardPredicate) -> dict[str, str | None]:
    """Every ``LicenseRef-`` id of the card, with the URL of its licensing agreement if a source
    under it gives its agreement as an http(s) URL (``None`` otherwise)."""
    from provenance.licenses import license_ids

    refs: dict[str, str | None] = {}
    expressions = [(s.license, s.agreement) for s in predicate.sources]
    expressions += [(item.license, None) for item in predicate.licenses]
    for expression, agreement in expressions:
        for license_id in license_ids(expression):
            if "LicenseRef-" not in license_id:
                continue
            url = agreement if agreement and agreement.startswith(("https://", "http://")) else None
            if refs.get(license_id) is None:
                refs[license_id] = url
    return dict(sorted(refs.items()))


def collection_of(source: Source) -> Collection | None:
    """The source's collection window; None when the card states neither start nor end."""
    window = source.collection
    return window if window is not None and (window.start or window.end) else None


def collection_window(sources: Sequence[Source]) -> tuple[str | None, str | None]:
    """The earliest start and latest end of the sources' collection windows (ISO dates)."""
    periods = [s.collection for s in sources if s.collection is not None]
    starts = [p.start for p in periods if p.start]
    ends = [p.end for p in periods if p.end]
    return (min(starts) if starts else None, max(ends) if ends else None)


def exclusion_line(item: Exclusion) -> str:
    """One line describing an exclusion list the card says was applied."""
    matched = ", ".join(f"{k} {v}" for k, v in sorted(item.matched.items())) or "none"
    return (
        f"exclusion list {item.name} v{item.version} (sha256 {item.digest}),"
        f" applied {item.applied}: matched {matched}; {item.removed} removed"
    )


def human_bytes(size: int) -> str:
    """``size`` bytes in binary units (``1.5 MiB``)."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """Values an export needs that a card cannot know, given by the user (``None``: to fill)."""

    as_json: bool = False
    """eu-summary: JSON instead of Markdown."""
    url: str | None = None
    """Where the dataset is published (Croissant ``url``, SPDX download location, ...)."""
    modalities: tuple[str, ...] = ()
    """The dataset's modalities; inferred from the manifest when empty and one is given."""
    provider: str | None = None
    """eu-summary: the provider's name (default: the card's publisher)."""
    provider_contact: str | None = None
    """eu-summary: the provider's contact details (default: the publisher's contact, if any)."""
    model: str | None = None
    """eu-summary: the versioned model name(s)."""
    crawler: str | None = None
    """eu-summary: the crawler's name or user agent."""
    sme: bool = False
    """eu-summary: the provider is an SME (top 5 % or 1,000 domains instead of 10 %)."""


# What could start markup, raw HTML, an entity, a link or a table cell in CommonMark and GFM.
_MARKUP = re.compile(r"([\\`*_\[\]<>&|~])")


def md_text(value: object) -> str:
    """``value``, plain text from a card, as Markdown that renders as that very text: on one
    line (a line break in a name could start a heading or a block), every character that could
    start markup, raw HTML (a script), an entity or a link backslash-escaped."""
    text = "" if value is None else str(value)
    return _MARKUP.sub(r"\\\1", " ".join(text.split()))


# What starts a block at the start of a line: a heading, a quote, a list item, a rule.
_BLOCK_START = re.compile(r"[#>+=-]|[0-9]+[.)]")


def md_paragraphs(value: str) -> str:
    """Plain text of several lines (a description) as Markdown: each line as :func:`md_text`,
    with what would start a block there escaped, its blank lines kept as paragraph breaks."""
    lines = []
    for line in value.strip().splitlines():
        text = md_text(line)
        start = _BLOCK_START.match(text)
        if start is not None:
            text = f"{text[: start.end() - 1]}\\{text[start.end() - 1 :]}"
        lines.append(text)
    return "\n".join(lines)


def md_code(value: object) -> str:
    """``value`` as an inline code span: fenced by more backticks than it holds in a row."""
    text = " ".join(("" if value is None else str(value)).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_cell(value: object) -> str:
    """``value`` as one Markdown table cell (:func:`md_text`; ``-`` when empty)."""
    return md_text(value) or "-"


def dataset_modalities(
    options: ExportOptions, facts: ManifestFacts | None
) -> tuple[tuple[str, ...], str]:
    """The dataset's modalities and where they come from (``given``, ``inferred`` or ``unknown``).

    Given ones win; otherwise those of the manifest's entries (:func:`modality_of`).
    """
    if options.modalities:
        return tuple(m for m in MODALITIES if m in options.modalities), "given"
    if facts is not None and facts.entries.modalities:
        return tuple(m for m in MODALITIES if m in facts.entries.modalities), "inferred"
    return (), "unknown"
