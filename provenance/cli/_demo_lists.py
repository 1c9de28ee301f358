"""The rights-holder association's part of ``provenance demo``: publish, serve, fetch, show.

Reusable by later parts of the story (filter, verify, a second version of the list)::

    from provenance.cli import _demo_lists as lists_demo

    lists_demo.publish_list(stage, work, samples / "lists" / "piracy-v2.txt")
    with lists_demo.serving(lists_demo.repo_dir(work)) as url:
        lists_demo.fetch_lists(stage, work, url)
    # the cache is lists_demo.cache_dir(work); the trust store is lists_demo.trust_path(work)
"""

from __future__ import annotations

import shutil
from pathlib import Path

from provenance.cli._demo import Stage
from provenance.lists._serve import serving

LIST_NAME = "piracy"
PUBLISHER = "Example Rights Association"

__all__ = [
    "LIST_NAME",
    "association_step",
    "cache_dir",
    "fetch_lists",
    "key_path",
    "publish_list",
    "repo_dir",
    "serving",
    "trust_path",
]


def key_path(work: Path) -> Path:
    """The association's private key (its public half is ``.pub`` beside it)."""
    return work / "association.key"


def repo_dir(work: Path) -> Path:
    """The association's list repository (a TUF repository in a directory)."""
    return work / "lists-repo"


def cache_dir(work: Path) -> Path:
    """The developer's (and auditor's) cache of fetched lists."""
    return work / "lists-cache"


def trust_path(work: Path) -> Path:
    """The trust store of the story (the association's key is added for list ``piracy``)."""
    return work / "trust.json"


def publish_list(stage: Stage, work: Path, entries: Path, *, expect: int = 0) -> None:
    """Publish the next version of the demo list from ``entries`` (any ENTRIES format)."""
    stage.run(
        "lists", "publish", str(entries), "--name", LIST_NAME, "--key", str(key_path(work)),
        "--repo", str(repo_dir(work)), "--category", "piracy", "--publisher", PUBLISHER,
        expect=expect,
    )  # fmt: skip


def fetch_lists(stage: Stage, work: Path, url: str, *, expect: int = 0) -> None:
    """Fetch every new list version from ``url`` into the demo cache."""
    stage.run(
        "lists", "fetch", url, "--trust", str(trust_path(work)), "--cache", str(cache_dir(work)),
        expect=expect,
    )  # fmt: skip


def association_step(stage: Stage, samples: Path, work: Path) -> None:
    """Generate the association's key, publish version 1, serve it, fetch and show it."""
    stage.party("Rights-holder association: publish a signed exclusion list")
    stage.run("key", "generate", str(key_path(work)))
    stage.run(
        "trust", "add", str(trust_path(work)), f"{key_path(work)}.pub", "--name", PUBLISHER,
        "--role", "list-publisher", "--list", LIST_NAME,
    )  # fmt: skip
    publish_list(stage, work, samples / "lists" / "piracy-v1.txt")

    stage.party("AI developer: fetch the list over HTTP, verified against the pinned key")
    with serving(repo_dir(work)) as url:
        stage.say(f"the repository is served at {url} (any static web host would do)")
        fetch_lists(stage, work, url)
    stage.run("lists", "show", "--cache", str(cache_dir(work)), "--trust", str(trust_path(work)))

    stage.party("AI developer: a mirror serving a tampered copy is refused")
    tampered = work / "lists-repo-tampered"
    shutil.copytree(repo_dir(work), tampered)
    for path in (tampered / "targets" / "lists" / LIST_NAME).glob("*.v1.json"):
        path.write_bytes(path.read_bytes().replace(b"1337x.to", b"1337x.io"))
    stage.say("replaced one listed domain in the list file the mirror serves")
    with serving(tampered) as url:
        stage.run(
            "lists", "fetch", url, "--trust", str(trust_path(work)),
            "--cache", str(work / "lists-cache-mirror"), expect=1,
        )  # fmt: skip
    stage.say("the cache fetched from the real repository is untouched")
