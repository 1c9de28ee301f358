"""The exports part of ``provenance demo``: the signed sample card written in every format its
readers use, and a forged card refused."""

from __future__ import annotations

from pathlib import Path

from provenance.cli._demo import Stage


def export_step(stage: Stage, samples: Path, work: Path) -> None:
    """Export card.signed.json to every format; a forged card is not exported."""
    w = str(work)
    out = work / "exports"
    out.mkdir(exist_ok=True)
    o = str(out)
    common = ["--trust", f"{w}/trust.json", "--manifest", f"{w}/manifest.jsonl"]
    stage.party("AI developer: publish the verified card where its readers look")
    for name, target in (
        ("huggingface", "README.md"),
        ("croissant", "croissant.json"),
        ("spdx3", "dataset.spdx3.json"),
        ("cyclonedx", "dataset.cdx.json"),
        ("eu-summary", "eu-summary.md"),
        ("html", "card.html"),
    ):
        stage.run("export", name, f"{w}/card.signed.json", *common, "-o", f"{o}/{target}")
    stage.say("model_signing (OpenSSF) verifies ECDSA P-256 signatures: sign the data with one")
    stage.run("key", "generate", f"{w}/developer-p256.key", "--algorithm", "ecdsa-p256")
    stage.run(
        "export", "oms", f"{w}/card.signed.json", *common, "--data", f"{w}/data",
        "--key", f"{w}/developer-p256.key", "-o", f"{o}/data.sig",
    )  # fmt: skip
    stage.say("model_signing checks it with: model_signing verify key data"
              " --signature exports/data.sig --public_key developer-p256.key.pub")  # fmt: skip
    stage.say("a card whose payload was edited after signing is never exported")
    stage.run(
        "export", "html", f"{w}/card.forged.json", "--trust", f"{w}/trust.json",
        "-o", f"{o}/forged.html", expect=1,
    )  # fmt: skip
