"""Entry numbers as the match index's host tables hold them (private).

A table maps a host to the entries listing it. Almost every host is listed once, so its slot is
that one entry number, a plain ``int``; only a host listed more than once (by several lists, or
twice in one) holds a tuple of numbers, in entry order. Ints are not tracked by the cyclic
garbage collector, so a table of millions of hosts is built without creating millions of
objects for it to scan, and without pausing it.
"""

from __future__ import annotations

Refs = tuple[int, ...]
"""Entry numbers, in entry order."""
Slot = int | Refs
"""What a host table holds for a host: one entry number, or several."""
NO_REFS: Refs = ()


def refs_of(slot: Slot) -> Refs:
    """The entry numbers a slot holds."""
    return (slot,) if isinstance(slot, int) else slot


def add_ref(slot: Slot | None, ref: int) -> Slot:
    """The slot after adding entry ``ref`` (numbered after every entry already in it)."""
    return ref if slot is None else (*refs_of(slot), ref)
