"""How many cores this process may use (private; no import heavier than :mod:`os`).

Asked by the numeric kernels (:mod:`provenance._kernels`: a second core decodes half of a long
hex column) and by the manifest's hasher (a forked child builds the Merkle tree): defined here
once, in a module light enough for both.
"""

from __future__ import annotations

import os

__all__ = ["other_cores"]


def other_cores() -> bool:
    """Whether this process may run on more than one core (its affinity, else the machine)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) > 1
    return (os.cpu_count() or 1) > 1
