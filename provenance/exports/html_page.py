"""One self-contained HTML page about a signed card, for people.

Tables of the sources, licenses and exclusion lists, inline SVG bar charts (records and bytes per
license and per source; bytes per domain when a manifest with URLs was given), the manifest
commitment, who signed and co-signed the card, and the commands that verify it. Nothing is loaded
from elsewhere: styles and charts are inline, and the page's Content-Security-Policy forbids any
fetch (``default-src 'none'``), so a browser makes no request while showing it. Every value from
the card is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from provenance.card.model import Collection
from provenance.exports import (
    ExportCard,
    ExportOptions,
    ManifestFacts,
    collection_of,
    collection_window,
    dataset_license,
    human_bytes,
)

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none';"
    " form-action 'none'"
)
MAX_CHART_BARS = 20
_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 28px 48px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid #d5d9e0;padding-bottom:4px}
.sub{color:#4b5565;margin:0 0 16px}.badge{display:inline-block;background:#1f7a4d;color:#fff;
border-radius:4px;padding:2px 8px;font-size:13px;font-weight:600}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 12px;font-size:14px}
th,td{border:1px solid #d5d9e0;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;word-break:break-all}
pre{background:#1d2330;color:#e8ecf2;padding:12px 14px;border-radius:6px;overflow-x:auto}
pre code{color:inherit}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:14px}
figure{margin:0;background:#fff;border:1px solid #d5d9e0;border-radius:6px;padding:10px}
figcaption{font-weight:600;margin-bottom:6px}svg text{font:12px system-ui,sans-serif;fill:#1d2330}
.note{color:#4b5565;font-size:13px}
"""
_COLORS = ("#2f6fb3", "#d9822b", "#3a9d5d", "#a34fa8", "#c0392b", "#16a3a8", "#7f8c1f", "#6b5b95")


def bar_chart(title: str, rows: Sequence[tuple[str, int]], *, unit: str) -> str:
    """An inline SVG horizontal bar chart of ``rows`` (label, value), largest first."""
    ordered = sorted(rows, key=lambda r: (-r[1], r[0]))[:MAX_CHART_BARS]
    label_width, bar_width, row_height = 210, 250, 22
    height = row_height * max(len(ordered), 1) + 8
    top = max((value for _, value in ordered), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="100%" viewBox="0 0'
        f' {label_width + bar_width + 110} {height}" aria-label="{escape(title)}">'
    ]
    for index, (label, value) in enumerate(ordered):
        y = index * row_height + 4
        width = max(round(bar_width * value / top), 1 if value else 0)
        shown = label if len(label) <= 30 else label[:29] + "…"
        amount = human_bytes(value) if unit == "bytes" else f"{value:,}"
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end">'
            f"<title>{escape(label)}</title>{escape(shown)}</text>"
            f'<rect x="{label_width}" y="{y + 2}" width="{width}" height="{row_height - 6}"'
            f' fill="{_COLORS[index % len(_COLORS)]}"><title>{escape(label)}: {escape(amount)}'
            "</title></rect>"
            f'<text x="{label_width + width + 6}" y="{y + 14}">{escape(amount)}</text>'
        )
    if not ordered:
        parts.append(f'<text x="8" y="18">{escape("nothing to show")}</text>')
    parts.append("</svg>")
    return f"<figure><figcaption>{escape(title)}</figcaption>{''.join(parts)}</figure>"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for index, value in enumerate(row):
            text = "" if value is None else str(value)
            cls = ' class="n"' if index in numeric else ""
            cells.append(f"<td{cls}>{escape(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>"


def _span(window: Collection | None) -> str | None:
    return f"{window.start or '?'} to {window.end or '?'}" if window else None


def page(card: ExportCard, facts: ManifestFacts | None, options: ExportOptions) -> str:
    """The HTML page of ``card``."""
    predicate = card.predicate
    manifest = predicate.manifest
    sources = predicate.sources
    start, end = collection_window(sources)
    title = f"{predicate.name} {predicate.version}"
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{escape(title)}: dataset card</title>",
        f"<style>{_STYLE}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub"><span class="badge">signature verified</span> when this page was made,'
        " against the exporter's trust store. Published by"
        f" {escape(predicate.publisher.name)}, card created"
        f" {escape(predicate.created)}.</p>",
        f"<p>{escape(predicate.description.strip())}</p>",
        f"<p>License of the whole dataset (SPDX): {_code(dataset_license(predicate))}.",
        f" {manifest.entries:,} records, {human_bytes(manifest.bytes)}"
        f" ({manifest.bytes:,} bytes)"
        + (f", collected {escape(start or '?')} to {escape(end or '?')}" if start or end else "")
        + ".</p>",
        "<h2>Charts</h2>",
        '<div class="charts">',
        bar_chart(
            "Records per license", [(i.license, i.records) for i in predicate.licenses],
            unit="records",
        ),
        bar_chart(
            "Bytes per license", [(i.license, i.bytes) for i in predicate.licenses],
            unit="bytes",
        ),
        bar_chart("Records per source", [(s.id, s.records) for s in sources], unit="records"),
        bar_chart("Bytes per source", [(s.id, s.bytes) for s in sources], unit="bytes"),
    ]  # fmt: skip
    if facts is not None and facts.entries.domains:
        out.append(
            bar_chart(
                f"Bytes per domain (top {min(len(facts.entries.domains), MAX_CHART_BARS)} of"
                f" {len(facts.entries.domains)})",
                [(d.domain, d.bytes) for d in facts.entries.domains],
                unit="bytes",
            )
        )
    out.append("</div>")
    out.append("<h2>Sources</h2>")
    out.append(
        _table(
            ["id", "name", "kind", "license (SPDX)", "rights holder", "agreement", "collected",
             "opt-outs honoured", "legal basis", "records", "bytes"],
            [
                [
                    s.id, s.name, s.kind, s.license, s.rights_holder,
                    s.agreement,
                    _span(collection_of(s)),
                    ", ".join(s.opt_out or ()) or None, s.legal_basis,
                    f"{s.records:,}", f"{s.bytes:,}",
                ]
                for s in sources
            ],
            {9, 10},
        )
    )  # fmt: skip
    out.append("<h2>Licenses</h2>")
    out.append(
        _table(
            ["license (SPDX)", "records", "bytes"],
            [[i.license, f"{i.records:,}", f"{i.bytes:,}"] for i in predicate.licenses],
            {1, 2},
        )
    )
    out.append("<h2>Exclusion lists applied</h2>")
    if predicate.exclusions:
        out.append(
            _table(
                ["list", "version", "sha256 of the signed list", "matched", "removed", "applied"],
                [
                    [
                        e.name, e.version, e.digest,
                        ", ".join(f"{k} {v}" for k, v in sorted(e.matched.items())) or "none",
                        f"{e.removed:,}", e.applied,
                    ]
                    for e in predicate.exclusions
                ],
                {1, 4},
            )
        )  # fmt: skip
    else:
        out.append("<p>The card records no exclusion list applied.</p>")
    out.append("<h2>Manifest commitment</h2>")
    rows = [
        ["manifest file", card.manifest_name],
        ["sha256 of the manifest file", card.manifest_sha256],
        ["RFC 9162 Merkle root (SHA-256)", manifest.merkle_root],
        ["entries", f"{manifest.entries:,}"],
        ["bytes of data", f"{manifest.bytes:,}"],
        ["card (sha256 of the signed statement)", card.statement_sha256],
    ]
    if facts is not None:
        rows.append(["manifest checked against the card", f"yes ({facts.file_bytes:,} bytes)"])
    out.append(_table(["what", "value"], rows, set()))
    out.append("<h2>Signed by</h2>")
    out.append(
        _table(
            ["name (in the exporter's trust store)", "role", "keyid"],
            [[s.name, s.role, s.keyid] for s in card.signers],
            set(),
        )
    )
    out.append("<h2>Verify it yourself</h2>")
    out.append(
        "<p>With the signed card, the manifest, the data and a trust store holding the"
        " publisher's public key (obtained out of band):</p>"
    )
    commands = [
        "provenance trust add trust.json publisher.pub --name PUBLISHER --role dataset-publisher",
        f"provenance verify card.signed.json --trust trust.json --manifest {card.manifest_name}",
        "   # add --data DATA_DIR to re-hash the files when the manifest lists a directory",
        f"provenance manifest show {card.manifest_name}"
        f"   # digest {card.manifest_sha256[:16]}…, root {manifest.merkle_root[:16]}…",
    ]
    if predicate.exclusions:
        commands.append(
            "provenance verify card.signed.json --trust trust.json"
            f" --manifest {card.manifest_name} --lists LIST_REPOSITORY_URL"
        )
    out.append(f"<pre><code>{escape(chr(10).join(commands))}</code></pre>")
    if options.url:
        out.append(f'<p class="note">Published at {_code(options.url)}.</p>')
    out.append(
        '<p class="note">Generated by provenance'
        f" {escape(predicate.generator.version)} from the signed card; the card, not this"
        " page, is the source of truth.</p>"
    )
    out.append("</main></body></html>")
    return "\n".join(out) + "\n"


def export(card: ExportCard, facts: ManifestFacts | None, options: ExportOptions) -> bytes:
    """Return the HTML page of ``card``."""
    return page(card, facts, options).encode("utf-8")
