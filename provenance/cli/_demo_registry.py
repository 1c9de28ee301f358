"""The registry part of ``provenance demo``: a registry on 127.0.0.1 (in this process), the card
pushed to it, works looked up across its datasets, the receipt verified and used as the basis of
an absence proof, and the log monitored."""

from __future__ import annotations

from pathlib import Path

from provenance.cli._demo import Stage
from provenance.cli._demo_creators import make_portfolio


def registry_step(stage: Stage, samples: Path, work: Path) -> None:
    """Serve a registry, push card.signed.json, look works up, verify, monitor."""
    from provenance.cli._common import real_now
    from provenance.keys import load_private_key
    from provenance.trust import TrustStore

    try:
        from provenance.registry.app import Settings
        from provenance.registry.server import background, close_registry, open_registry
    except ImportError as exc:
        stage.party("Registry: not played")
        stage.say(f"the registry part needs the 'registry' extra ({exc})")
        return

    w = str(work)
    trust = f"{w}/trust.json"
    stage.party("Registry: publish the card, where creators look across every dataset")
    stage.run("key", "generate", f"{w}/log.key")
    stage.say("the registry admits cards signed by a dataset-publisher key of its trust store;")
    stage.say("its log key signs the transparency log's checkpoints; clients trust it by name")
    stage.run(
        "trust", "add", trust, f"{w}/log.key.pub", "--name", "localhost/provenance",
        "--role", "transparency-log",
    )  # fmt: skip
    store = TrustStore.from_json(Path(trust).read_bytes(), what=trust)
    database, app = open_registry(
        f"sqlite:///{w}/registry.db",
        store,
        load_private_key(work / "log.key"),
        Settings(),
        at=real_now(),
    )
    try:
        with background(app) as url:
            stage.say(f"$ provenance registry serve --trust trust.json --log-key log.key"
                      f" --db sqlite:///registry.db   (serving {url})")  # fmt: skip
            common = ("--registry", url, "--trust", trust)
            stage.run(
                "registry", "push", f"{w}/card.signed.json", "--manifest", f"{w}/manifest.jsonl",
                "--fingerprints", f"{w}/manifest.jsonl.fp", *common, "-o", f"{w}/card.tlog-proof",
            )  # fmt: skip
            stage.say("the receipt verifies offline: the log's signature, the entry, the card")
            stage.run(
                "log", "verify", f"{w}/card.tlog-proof", "--trust", trust,
                "--card", f"{w}/card.signed.json",
            )  # fmt: skip
            portfolio = make_portfolio(samples, work / "registry-portfolio")
            stage.say("a creator asks every registered dataset at once (digests and fingerprints)")
            stage.run("registry", "lookup", str(portfolio), *common)
            stage.say("the registry checked the manifest's order on admission: its receipt")
            stage.say("is a basis for a proof of absence, even for a card signed by the publisher")
            stage.run(
                "card", "sign", f"{w}/card.json", "--key", f"{w}/developer.key",
                "-o", f"{w}/card.publisher-signed.json",
            )  # fmt: skip
            absent = portfolio / "12-the-adventure-of-the-copper-beeches.txt"
            stage.run(
                "lookup", str(absent), "--manifest", f"{w}/manifest.jsonl",
                "--card", f"{w}/card.publisher-signed.json", "--trust", trust,
                "--proof-out", f"{w}/xii.registry.proof.json",
            )  # fmt: skip
            proof = ("proof", "verify", f"{w}/xii.registry.proof.json")
            card = ("--card", f"{w}/card.publisher-signed.json", "--trust", trust)
            stage.run(*proof, *card, expect=1)
            stage.run(*proof, *card, "--receipt", f"{w}/card.tlog-proof")
            stage.say("anyone can watch the log: it only grows, and each card is there once")
            stage.run("log", "monitor", url, "--trust", trust, "--state", f"{w}/monitor.json")
    finally:
        close_registry(database, app)
