"""``provenance demo``: the whole story on the bundled samples, in a temporary directory."""

from __future__ import annotations

import shlex
import shutil
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import click

from provenance.cli._common import echo, escape
from provenance.errors import InputError, ProvenanceError


def samples_dir() -> Path:
    """Return the samples directory: bundled in the wheel, or the repository's ``samples/``.

    Raises:
        InputError: neither exists.
    """
    bundled = Path(str(resources.files("provenance").joinpath("_samples")))
    if bundled.is_dir():
        return bundled
    repository = Path(__file__).resolve().parents[2] / "samples"
    if repository.is_dir():
        return repository
    raise InputError("the samples are not installed; run the demo from a source checkout")


class Stage:
    """Runs CLI commands as a user would, printing each command and what it prints."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    def party(self, title: str) -> None:
        click.echo()
        click.secho(f"== {title} ==", bold=True)

    def say(self, text: str) -> None:
        click.echo(f"   {text}")

    def run(self, *args: str, expect: int = 0) -> int:
        from provenance.cli import cli

        shown = " ".join(shlex.quote(a.replace(str(self.workdir) + "/", "")) for a in args)
        click.secho(escape(f"$ provenance {shown}"), fg="cyan")
        try:
            result = cli.main(args=list(args), prog_name="provenance", standalone_mode=False)
            code = result if isinstance(result, int) else 0
        except ProvenanceError as exc:
            from provenance.cli import describe_error

            echo(f"error: {describe_error(exc)}", err=True)
            code = exc.exit_code
        click.echo(f"   (exit {code})")
        if code != expect:
            raise click.ClickException(f"demo step exited {code}, expected {expect}")
        return code


DemoStep = Callable[[Stage, Path, Path], None]
"""A part of the story: ``step(stage, samples, work)`` plays it in the work directory."""


def steps() -> list[DemoStep]:
    """Return the parts of the story played after the developer's and the auditor's, in order.

    Each part may use what the parts before it left in the work directory.
    """
    from provenance.cli._demo_creators import creator_lookup_step, creator_proofs_step
    from provenance.cli._demo_export import export_step
    from provenance.cli._demo_filter import filter_step
    from provenance.cli._demo_lists import association_step
    from provenance.cli._demo_registry import registry_step

    return [
        export_step,
        association_step,
        filter_step,
        creator_lookup_step,
        creator_proofs_step,
        registry_step,
    ]


@click.command("demo")
@click.option("--keep", type=click.Path(path_type=Path), help="Work in this directory and keep it.")
def demo(keep: Path | None) -> None:
    """Play the developer's and the auditor's part on the bundled samples."""
    samples = samples_dir()
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        _play(samples, keep.resolve())
        return
    with tempfile.TemporaryDirectory(prefix="provenance-demo-") as temp:
        _play(samples, Path(temp))


def _play(samples: Path, work: Path) -> None:
    stage = Stage(work)
    data = work / "data"
    shutil.copytree(samples / "data", data)
    w = str(work)

    stage.party("AI developer: keys, manifest, card, signature")
    stage.run("key", "generate", f"{w}/developer.key")
    stage.run("manifest", "build", f"{w}/data", "-o", f"{w}/manifest.jsonl")
    stage.run(
        "card",
        "build",
        str(samples / "card-spec.yaml"),
        "--manifest",
        f"{w}/manifest.jsonl",
        "-o",
        f"{w}/card.json",
    )
    stage.run(
        "card",
        "sign",
        f"{w}/card.json",
        "--key",
        f"{w}/developer.key",
        "-o",
        f"{w}/card.signed.json",
    )

    stage.party("Auditor: trust the developer's key, verify, co-sign")
    stage.run("key", "generate", f"{w}/auditor.key", "--algorithm", "ecdsa-p256")
    stage.run(
        "trust",
        "add",
        f"{w}/trust.json",
        f"{w}/developer.key.pub",
        "--name",
        "Example AI Lab",
        "--role",
        "dataset-publisher",
    )
    stage.run(
        "trust",
        "add",
        f"{w}/trust.json",
        f"{w}/auditor.key.pub",
        "--name",
        "Independent Auditor",
        "--role",
        "auditor",
    )
    stage.run(
        "verify",
        f"{w}/card.signed.json",
        "--trust",
        f"{w}/trust.json",
        "--manifest",
        f"{w}/manifest.jsonl",
        "--data",
        f"{w}/data",
    )
    stage.run(
        "card",
        "sign",
        f"{w}/card.signed.json",
        "--key",
        f"{w}/auditor.key",
        "-o",
        f"{w}/card.signed.json",
    )
    stage.run("verify", f"{w}/card.signed.json", "--trust", f"{w}/trust.json")

    stage.party("Auditor: a tampered copy of the data is caught")
    tampered = work / "tampered"
    shutil.copytree(data, tampered)
    target = tampered / "news" / "2026-04-library-reopens.txt"
    target.write_bytes(target.read_bytes().replace(b"two hours", b"ten hours"))
    (tampered / "images" / "horse.png").unlink()
    (tampered / "news" / "2026-06-unlicensed-scrape.txt").write_text("copied without a licence\n")
    stage.say("changed one word in a news article, deleted an image, added an unlicensed file")
    stage.run(
        "verify",
        f"{w}/card.signed.json",
        "--trust",
        f"{w}/trust.json",
        "--manifest",
        f"{w}/manifest.jsonl",
        "--data",
        f"{w}/tampered",
        expect=1,
    )

    stage.party("Auditor: a card whose payload was edited after signing is refused")
    signed = (work / "card.signed.json").read_bytes()
    import base64
    import json

    envelope = json.loads(signed)
    payload = json.loads(base64.b64decode(envelope["payload"]))
    payload["predicate"]["sources"][3]["license"] = "CC0-1.0"
    envelope["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    (work / "card.forged.json").write_text(json.dumps(envelope))
    stage.say("relabelled the licensed news source as CC0 inside the signed card")
    stage.run("verify", f"{w}/card.forged.json", "--trust", f"{w}/trust.json", expect=1)

    for step in steps():
        step(stage, samples, work)

    stage.party("Done")
    stage.say("every party's check behaved as expected")


COMMANDS = [demo]
