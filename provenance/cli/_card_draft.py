"""``provenance card draft --from huggingface|croissant FILE -o SPEC``, a ``card`` command."""

from __future__ import annotations

from pathlib import Path

import click

from provenance.cli._common import PATH, echo


@click.command("draft")
@click.option(
    "--from",
    "kind",
    required=True,
    type=click.Choice(["huggingface", "croissant"]),
    help="The kind of card FILE is.",
)
@click.argument("card_path", metavar="FILE", type=PATH)
@click.option("-o", "--output", required=True, type=PATH, help="Spec draft to write (YAML).")
def draft(kind: str, card_path: Path, output: Path) -> None:
    """Draft a card spec from a Hugging Face README.md or a Croissant JSON-LD file.

    Licenses are normalized to SPDX; what the card does not state, or does not map to one SPDX
    license, is NOASSERTION or TODO with a '# TODO:' comment saying why. Nothing is guessed.
    """
    from provenance.exports.draft import draft_spec_file

    todos = draft_spec_file(kind, card_path, output=output)
    echo(f"wrote {output}: a spec draft with {todos} TODO(s) to settle before 'card build'")
