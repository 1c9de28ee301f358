"""schemathesis against the registry's ``/openapi.json``, on SQLite and PostgreSQL.

Generated requests (valid and invalid) for every operation: no server error, every status and
content type documented, every answer matching its schema, invalid input refused, ``Allow`` on
405 complete. The run is bounded by its number of examples per operation (a fixed seed), so it
takes a bounded time; the coverage phase runs on SQLite only.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry_support import RegistryServer, make_card, make_keys, ok, sample_data

pytestmark = pytest.mark.timeout(400)

CHECKS_LEFT_OUT = [
    "positive_data_acceptance",  # a push of schema-valid bytes is rightly refused: not signed
    "ignored_auth",  # no authentication: a registry is public
    "object_level_authorization",
    "use_after_free",
    "ensure_resource_availability",
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegistryServer]:
    work = tmp_path_factory.mktemp("openapi")
    keys = make_keys(work / "keys")
    card = make_card(keys, sample_data(work), "openapi")
    if request.param == "sqlite":
        database = f"sqlite:///{work / 'registry.db'}"
    else:
        database = request.getfixturevalue("pg_cluster").database("openapi")
    server = RegistryServer(
        ["--trust", str(keys.cards_trust), "--log-key", str(keys.log_key), "--db", database]
        + ["--lookup-rate", "0", "--max-upload", str(1 << 20)]
    )
    with server:
        ok(*card.push_args(server.url, keys.trust))  # something to find
        yield server


def test_the_api_conforms_to_its_openapi_schema(
    registry: RegistryServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # The coverage phase (boundary values, every documented status) once, on SQLite; random
    # fuzzing on both databases.
    sqlite = "sqlite" in request.node.name
    phases = "examples,coverage,fuzzing" if sqlite else "examples,fuzzing"
    schemathesis = Path(sys.executable).with_name("schemathesis")
    command = (
        [str(schemathesis)]
        if schemathesis.exists()
        else [shutil.which("schemathesis") or "schemathesis"]
    )
    result = subprocess.run(
        [
            *command,
            "run",
            f"{registry.url}/openapi.json",
            "--checks",
            "all",
            "--exclude-checks",
            ",".join(CHECKS_LEFT_OUT),
            "--max-examples",
            "8",
            "--seed",
            "20261203",
            "--phases",
            phases,
            "--generation-database",
            "none",
            "--request-timeout",
            "60",
            "--no-color",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=360,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "10 selected / 10 total" in result.stdout
    assert registry.alive()
