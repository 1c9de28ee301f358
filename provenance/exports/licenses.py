"""One table between SPDX license ids and what other card formats write for a license.

Exports need, for each SPDX id of a card: the Hugging Face Hub's id (a lowercase list of 83, some
of them SPDX ids, some families or model licenses), an SPDX list URL (Croissant), or the id as
CycloneDX's ``license.id``. Imports (``card draft``) need the reverse: a Hub id, a license name
("Apache License 2.0", "CC BY-NC 4.0") or a license URL turned into an SPDX id. Nothing here
guesses: a value that does not name exactly one SPDX license maps to ``NOASSERTION`` with the
reason, which the draft writes as a ``TODO`` comment.

Data: ``data/hub-licenses.tsv`` (the Hub's table) and ``data/spdx-licenses.tsv`` (SPDX License
List 3.27.0 ids and names); see ``data/NOTES.md``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

from provenance.errors import FormatError
from provenance.licenses import license_ids, normalize_license

NOASSERTION = "NOASSERTION"
SPDX_LICENSE_URL = "https://spdx.org/licenses/{}.html"

# Hub ids whose SPDX id is not their upper-cased spelling, or that the SPDX list spells with a
# version the Hub leaves out.
_HUB_TO_SPDX_EXTRA = {
    "odc-by": "ODC-By-1.0",
    "odbl": "ODbL-1.0",
    "pddl": "PDDL-1.0",
    "c-uda": "C-UDA-1.0",
    "lgpl-lr": "LGPLLR",
}
# Exports only: the Hub's GNU ids name one version, which "-only" states exactly. The reverse
# is ambiguous (the Hub id does not say "only" or "or later"), so imports do not use it.
_SPDX_TO_HUB_EXTRA = {
    "GPL-2.0-only": "gpl-2.0",
    "GPL-3.0-only": "gpl-3.0",
    "LGPL-2.1-only": "lgpl-2.1",
    "LGPL-3.0-only": "lgpl-3.0",
    "AGPL-3.0-only": "agpl-3.0",
}
_GNU_VERSIONED = {"gpl-2.0", "gpl-3.0", "lgpl-2.1", "lgpl-3.0", "agpl-3.0"}
_FAMILIES = {"bsd", "cc", "gpl", "lgpl", "gfdl", "openrail"}


@dataclass(frozen=True, slots=True)
class Mapped:
    """An SPDX expression for a license value, or ``NOASSERTION`` and why (``todo``)."""

    expression: str
    todo: str | None = None


def _table(name: str) -> list[list[str]]:
    text = resources.files("provenance.exports").joinpath("data", name).read_text("utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@functools.cache
def hub_license_ids() -> tuple[str, ...]:
    """The Hugging Face Hub's license ids, in the order of the Hub's table."""
    return tuple(row[0] for row in _table("hub-licenses.tsv"))


@functools.cache
def _hub_names() -> dict[str, str]:
    return {row[0]: row[1] for row in _table("hub-licenses.tsv")}


@functools.cache
def _spdx() -> dict[str, tuple[str, str, bool]]:
    """Lower-cased SPDX id -> (id, name, deprecated)."""
    return {row[0].lower(): (row[0], row[1], row[2] == "1") for row in _table("spdx-licenses.tsv")}


def spdx_url(license_id: str) -> str:
    """The SPDX License List page of ``license_id``."""
    return SPDX_LICENSE_URL.format(license_id)


def is_listed(license_id: str) -> bool:
    """Whether ``license_id`` is on the SPDX License List (not a ``LicenseRef-``)."""
    return license_id.lower() in _spdx()


@functools.cache
def _spdx_to_hub() -> dict[str, str]:
    table: dict[str, str] = {}
    for hub_id in hub_license_ids():
        spdx_id = _hub_to_spdx_exact(hub_id)
        if spdx_id is not None:
            table[spdx_id] = hub_id
    table.update(_SPDX_TO_HUB_EXTRA)
    return table


def _hub_to_spdx_exact(hub_id: str) -> str | None:
    if hub_id in _HUB_TO_SPDX_EXTRA:
        return _HUB_TO_SPDX_EXTRA[hub_id]
    found = _spdx().get(hub_id)
    if found is None or found[2]:  # a deprecated SPDX id is ambiguous by definition
        return None
    return found[0]


def hub_id(spdx_id: str) -> str | None:
    """The Hub's id for SPDX id ``spdx_id``, or ``None`` when the Hub has none."""
    return _spdx_to_hub().get(spdx_id)


# ----------------------------------------------------------------------------------------------
# Imports: Hub ids, names and URLs to SPDX


def from_hub_id(value: str) -> Mapped:
    """Map a Hub license id (as written in a Hub card's ``license``) to an SPDX id."""
    hub = value.strip().lower()
    if hub == "other":
        return Mapped(NOASSERTION, "the card says 'other': see its license_name / license_link")
    if hub == "unknown":
        return Mapped(NOASSERTION, "the card says the license is 'unknown'")
    if hub in _GNU_VERSIONED:
        upper = _spdx()[hub][0] if hub in _spdx() else hub.upper()
        return Mapped(
            NOASSERTION,
            f"Hub license {hub!r} does not say which: {upper}-only or {upper}-or-later",
        )
    if hub in _FAMILIES:
        return Mapped(NOASSERTION, f"Hub license {hub!r} names a family of licenses, not one")
    spdx_id = _hub_to_spdx_exact(hub)
    if spdx_id is not None:
        return Mapped(spdx_id)
    if hub in _hub_names():
        return Mapped(
            NOASSERTION,
            f"Hub license {hub!r} ({_hub_names()[hub]}) is not on the SPDX License List;"
            " write it as LicenseRef-<name> with its terms",
        )
    return from_text(value)


def _name_key(text: str) -> str:
    text = text.lower().replace("licence", "license")
    text = re.sub(r"\bversion\b", " ", text)
    text = re.sub(r"\bv(?=\d)", " ", text)
    text = re.sub(r"[^a-z0-9+]+", " ", text)
    text = re.sub(r"^the ", "", text.strip())
    return text.strip()


@functools.cache
def _names() -> dict[str, str | None]:
    """Name key -> SPDX id (None when two current licenses share the key)."""
    table: dict[str, str | None] = {}
    for spdx_id, name, deprecated in _spdx().values():
        if deprecated:
            continue
        key = _name_key(name)
        table[key] = None if key in table and table[key] != spdx_id else spdx_id
    for hub, name in _hub_names().items():
        mapped = _hub_to_spdx_exact(hub)
        key = _name_key(name)
        if mapped is not None and key not in table:
            table[key] = mapped
    return table


_CC_NAME = re.compile(
    r"^(?:cc|creative commons)[ -]+((?:by|attribution)(?:[ -]+(?:nc|nd|sa|non ?commercial|"
    r"no ?derivatives|no ?derivs|share ?alike))*)[ -]+(\d\.\d)(?:[ -]+international)?"
    r"(?: license)?$",
    re.IGNORECASE,
)
_CC_PART = {
    "by": "BY",
    "attribution": "BY",
    "nc": "NC",
    "noncommercial": "NC",
    "non commercial": "NC",
    "nd": "ND",
    "noderivatives": "ND",
    "no derivatives": "ND",
    "noderivs": "ND",
    "no derivs": "ND",
    "sa": "SA",
    "sharealike": "SA",
    "share alike": "SA",
}
_CC_ZERO = re.compile(
    r"^(?:cc0|cc[ -]zero|creative commons zero)(?:[ -]+v?1\.0)?(?: universal)?$", re.I
)
_CC_URL = re.compile(
    r"^https?://(?:www\.)?creativecommons\.org/licenses/([a-z-]+)/(\d\.\d)(?:/([a-z]{2}))?/?"
    r"(?:legalcode(?:\.[a-z]+)?|deed\.[a-z]+)?$",
    re.IGNORECASE,
)
_URL_ID = [
    re.compile(r"^https?://(?:www\.)?spdx\.org/licenses/([A-Za-z0-9.+-]+?)(?:\.html|\.json)?$"),
    re.compile(r"^https?://(?:www\.)?opensource\.org/licenses?/([A-Za-z0-9.+-]+?)(?:\.php)?/?$"),
    re.compile(r"^https?://(?:www\.)?choosealicense\.com/licenses/([A-Za-z0-9.+-]+)/?$"),
]
_URL_FIXED = {
    "creativecommons.org/publicdomain/zero/1.0": "CC0-1.0",
    "www.apache.org/licenses/license-2.0": "Apache-2.0",
    "apache.org/licenses/license-2.0": "Apache-2.0",
    "opendatacommons.org/licenses/by/1-0": "ODC-By-1.0",
    "opendatacommons.org/licenses/by": "ODC-By-1.0",
    "opendatacommons.org/licenses/odbl/1-0": "ODbL-1.0",
    "opendatacommons.org/licenses/odbl": "ODbL-1.0",
    "opendatacommons.org/licenses/pddl/1-0": "PDDL-1.0",
    "opendatacommons.org/licenses/pddl": "PDDL-1.0",
}


def _cc_id(parts: list[str], version: str, jurisdiction: str | None = None) -> str | None:
    spdx_id = "CC-" + "-".join(parts) + f"-{version}"
    if jurisdiction:
        spdx_id += f"-{jurisdiction.upper()}"
    found = _spdx().get(spdx_id.lower())
    return found[0] if found and not found[2] else None


def _from_url(text: str) -> Mapped | None:
    url = text.strip()
    bare = re.sub(r"^https?://", "", url).rstrip("/").lower()
    bare = re.sub(r"\.(html?|txt)$", "", bare)
    if bare in _URL_FIXED or bare.removeprefix("www.") in _URL_FIXED:
        return Mapped(_URL_FIXED.get(bare) or _URL_FIXED[bare.removeprefix("www.")])
    match = _CC_URL.match(url)
    if match:
        parts = [p.upper() for p in match[1].split("-")]
        spdx_id = _cc_id(parts, match[2], match[3])
        if spdx_id is not None:
            return Mapped(spdx_id)
        return Mapped(
            NOASSERTION, f"license URL {url!r} names no Creative Commons license SPDX lists"
        )
    for pattern in _URL_ID:
        match = pattern.match(url)
        if match:
            inner = match[1]
            mapped = from_id(inner)
            if mapped.todo is None:
                return mapped
            hub = from_hub_id(inner)
            if hub.todo is None:
                return hub
            return Mapped(NOASSERTION, f"license URL {url!r}: {hub.todo}")
    return None


def from_id(value: str) -> Mapped:
    """Map an SPDX id or expression written in any letter case to its SPDX form."""
    found = _spdx().get(value.strip().lower())
    if found is not None:
        if found[2]:
            return Mapped(
                NOASSERTION, f"{found[0]} is a deprecated SPDX id: choose the current id it meant"
            )
        return Mapped(found[0])
    try:
        expression = normalize_license(value)
    except FormatError:
        return Mapped(NOASSERTION, f"{value!r} is not an SPDX id or expression")
    deprecated = [i for i in license_ids(expression) if _spdx().get(i.lower(), ("", "", False))[2]]
    if deprecated:
        return Mapped(NOASSERTION, f"{value!r} uses deprecated SPDX id(s) {', '.join(deprecated)}")
    return Mapped(expression)


def from_text(value: str) -> Mapped:
    """Map a license as a card writes it (an id, a Hub id, a name or a URL) to SPDX.

    Returns:
        The SPDX id or expression, or ``NOASSERTION`` with the reason it could not be mapped.
    """
    text = " ".join(value.split())
    if not text or text.lower() in {"none", "null", "n/a", "unknown", "other", "public"}:
        return Mapped(NOASSERTION, f"the card's license {value!r} names no license")
    if re.match(r"^https?://", text):
        mapped = _from_url(text)
        return mapped or Mapped(NOASSERTION, f"license URL {text!r} is not one of a known license")
    if text.lower() in _hub_names():
        return from_hub_id(text)
    by_id = from_id(text)
    if by_id.todo is None or not by_id.todo.endswith("is not an SPDX id or expression"):
        return by_id
    if _CC_ZERO.match(text):
        return Mapped("CC0-1.0")
    match = _CC_NAME.match(text)
    if match:
        parts = [
            _CC_PART[re.sub(r"\s+", " ", p.lower())]
            for p in re.findall(
                r"by|attribution|nc|nd|sa|non ?commercial|no ?derivatives|no ?derivs|share ?alike",
                match[1],
                flags=re.IGNORECASE,
            )
        ]
        spdx_id = _cc_id(parts, match[2])
        if spdx_id is not None:
            return Mapped(spdx_id)
    key = _name_key(text)
    if key in _names():
        spdx_id = _names()[key]
        if spdx_id is None:
            return Mapped(NOASSERTION, f"license name {text!r} fits more than one SPDX license")
        return Mapped(spdx_id)
    return Mapped(NOASSERTION, f"license {text!r} is not a license name or id SPDX lists")
