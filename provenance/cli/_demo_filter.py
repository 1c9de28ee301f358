"""The filter part of ``provenance demo``: the developer applies the association's list to web
records and cards what remains; the auditor verifies the card against the list it cites, and
later finds an entry the association listed after the card was made."""

from __future__ import annotations

import shutil
from pathlib import Path

from provenance.cli import _demo_lists as lists_demo
from provenance.cli._demo import Stage


def filter_step(stage: Stage, samples: Path, work: Path) -> None:
    """Filter samples/records.jsonl, card and sign it, verify it against the lists."""
    w = str(work)
    cache = str(lists_demo.cache_dir(work))
    trust = str(lists_demo.trust_path(work))
    shutil.copy(samples / "records.jsonl", work / "records.jsonl")

    stage.party("AI developer: filter crawled records against the list before training")
    stage.say("30 crawled pages; some are on listed domains, some spelled to slip past naive")
    stage.say("matching (upper case, trailing dot, 'host\\@other', user:pass@host:port, %2E,")
    stage.say("an ideographic full stop), one has a URL no browser would parse")
    stage.run(
        "filter", f"{w}/records.jsonl", "--lists", cache, "--trust", trust,
        "-o", f"{w}/records.kept.jsonl",
        "--removed", f"{w}/records.removed.jsonl", "--report", f"{w}/filter-report.json",
    )  # fmt: skip
    stage.run("manifest", "build", f"{w}/records.kept.jsonl", "-o", f"{w}/records.manifest.jsonl")
    stage.run(
        "card", "build", str(samples / "records-spec.yaml"),
        "--manifest", f"{w}/records.manifest.jsonl", "--filter-report", f"{w}/filter-report.json",
        "-o", f"{w}/records.card.json",
    )  # fmt: skip
    stage.run(
        "card", "sign", f"{w}/records.card.json", "--key", f"{w}/developer.key",
        "-o", f"{w}/records.card.signed.json",
    )  # fmt: skip

    verify = [
        "verify", f"{w}/records.card.signed.json", "--trust", trust,
        "--manifest", f"{w}/records.manifest.jsonl",
    ]  # fmt: skip
    auditor_cache = f"{w}/auditor-lists-cache"
    # One server for the rest of the story (a mirror with the same root keys would do too).
    with lists_demo.serving(lists_demo.repo_dir(work)) as url:
        stage.party("Auditor: fetch the list the card cites; the claim 'we applied v1' checks out")
        stage.run("lists", "fetch", url, "--trust", trust, "--cache", auditor_cache)
        stage.run(*verify, "--lists", auditor_cache)

        stage.party("Rights-holder association: version 2 of the list adds two domains")
        lists_demo.publish_list(stage, work, samples / "lists" / "piracy-v2.txt")

        stage.party("Auditor: an entry listed after the card was made is reported, not a violation")
        stage.run("lists", "fetch", url, "--trust", trust, "--cache", auditor_cache)
        stage.run(*verify, "--lists", auditor_cache)
        stage.say("with --strict (straight from the repository URL) the same finding fails")
        stage.run(*verify, "--lists", url, "--strict", expect=1)
