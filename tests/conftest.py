"""Shared fixtures: paths to vectors and samples, and a runner for the CLI as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
VECTORS = Path(__file__).resolve().parent / "vectors"
SAMPLES = ROOT / "samples"
NOW = "2026-11-29T12:00:00Z"


def run_cli(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m provenance ARGS`` in a subprocess and return the completed process."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full_env.pop("PROVENANCE_NOW", None)
    return subprocess.run(
        [sys.executable, "-m", "provenance", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        input=input_text,
        timeout=120,
        check=False,
    )


@pytest.fixture
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """The CLI runner."""
    return run_cli


CLOCK_OVERRIDE = "warning: clock override:"
"""How a command announces that ``--now`` moved its clock (tests pass ``--now`` on purpose)."""


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Assert the process printed exactly one line on stderr, no traceback, and return it.

    The announcement of a clock override is not counted: tests that pass ``--now`` expect it.
    """
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.strip() and not line.startswith(CLOCK_OVERRIDE)
    ]
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


def _runs_ray(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return "ray_cluster" in getattr(item, "fixturenames", ()) or "ray" in params


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests that start Ray after all others (in their order otherwise): once Ray is
    initialised in this process, pools stop forking (docs/security.md F18), and every other
    test should see the process as a command without Ray does."""
    items.sort(key=_runs_ray)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One local Ray instance for the whole session (2 CPUs, no dashboard, loopback only),
    stopped at the end; yields its address for ``--ray-address``. Ray's start costs seconds,
    so every Ray test shares it (``RayExecutor`` joins an instance already running)."""
    import tempfile

    import ray  # in the ray extra (part of all): the Ray tests fail, never skip, without it

    # Workers import this repository's tests (task functions) and provenance; no token file
    # in the home directory for a loopback-only test instance.
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_AUTH_MODE")}
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), saved["PYTHONPATH"]]))
    os.environ["RAY_AUTH_MODE"] = "disabled"
    # Ray's session folder holds Unix sockets, whose paths must stay short.
    temp = tempfile.mkdtemp(prefix="ray-")
    from provenance.executors.ray_executor import start_local

    start_local(2, temp_dir=temp)  # as RayExecutor starts one
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Any:
    """A private PostgreSQL cluster for the session (tests.registry_support), on 127.0.0.1."""
    from tests.registry_support import postgres_cluster

    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def small_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thresholds small enough for a corpus of a few hundred KiB to take every path."""
    from provenance import manifest

    monkeypatch.setattr(manifest.hashing, "_BUFFER_SIZE", 4096)
    monkeypatch.setattr(manifest.hashing, "_LARGE_FILE", 48 * 1024)
    monkeypatch.setattr(manifest.hashing, "_CHUNK_FILES", 16)
    monkeypatch.setattr(manifest.hashing, "_CHUNK_BYTES", 40 * 1024)
    monkeypatch.setattr(manifest.hashing, "_PARALLEL_FILES", 30)
    monkeypatch.setattr(manifest.hashing, "_PARALLEL_BYTES", 64 * 1024)
    monkeypatch.setattr(manifest.build, "_STAT_FIRST", 30)  # sizes known for some files, not others
