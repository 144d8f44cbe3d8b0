"""schemathesis against a live server: every check, the coverage, fuzzing and stateful phases,
open and keyed, on SQLite and PostgreSQL. No server error and no answer that breaks the
OpenAPI document (schema, status, content type, headers, Allow, auth) may appear.

The CI run is short and seeded. ``AIWARDEN_FUZZ_EXAMPLES`` (examples per operation, default
8) and ``AIWARDEN_FUZZ_SEED`` make the longer run of docs/api-contract.md.

Two checks report findings this suite tolerates, listed in :data:`TOLERATED` with why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiwarden.store import keys
from aiwarden.store.database import Database
from tests.server.live import ThreadServer, database_url, settings_for

EXAMPLES = int(os.environ.get("AIWARDEN_FUZZ_EXAMPLES", "8"))
SEED = int(os.environ.get("AIWARDEN_FUZZ_SEED", "20261205"))
TOLERATED = {
    # positive_data_acceptance: schema-valid data the server refuses with 4xx. Instants
    # ("-1h", ISO 8601), rule specs, receivers and artifacts have meaning no JSON Schema
    # states, so random schema-valid values are often refused, correctly, with the field.
    "ST202",
    # ensure_resource_availability: after POST /models it reads sub-resources the model
    # does not have yet (its rollback policy, its champion alias) and calls the 404 a bug.
    "ST302",
}


def _schemathesis() -> str:
    return str(Path(sys.executable).with_name("schemathesis"))


@pytest.fixture(params=[("sqlite", "open"), ("sqlite", "keyed"), ("postgresql", "open"),
                        ("postgresql", "keyed")], ids="-".join)
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str | None]]:
    """(base URL, key or None): a server on a fresh database; keyed ones have an admin key."""
    kind, mode = request.param
    with database_url(kind, tmp_path) as url:
        key = None
        if mode == "keyed":
            db = Database(url)
            db.migrate()
            with db.write() as conn:
                key = keys.create_key(conn, "fuzz", ["admin"])[0]
            db.dispose()
        with ThreadServer(settings_for(url, tmp_path, evaluate_every=0)) as srv:
            yield srv.url, key


def _run(url: str, key: str | None, report: Path) -> dict:
    cmd = [_schemathesis(), "run", f"{url}/openapi.json", "--checks", "all",
           "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(EXAMPLES),
           "--seed", str(SEED), "--workers", "1", "--no-shrink", "--request-timeout", "30",
           "--report", "json", "--report-json-path", str(report)]
    if key is not None:
        cmd += ["--header", f"Authorization: Bearer {key}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    out = json.loads(report.read_text())
    out["text"] = done.stdout
    return out


def test_no_server_error_and_no_contract_violation(target, tmp_path: Path) -> None:
    url, key = target
    result = _run(url, key, tmp_path / "report.json")
    assert result["complete"] and result["operations"]["tested"] >= 60, result["text"][-3000:]
    for phase in ("examples", "coverage", "fuzzing", "stateful"):
        assert result["phases"][phase]["status"] != "error", (phase, result["text"][-3000:])
    assert not result["errors"], result["errors"]
    broken = [f for f in result["failures"] if f["code"] not in TOLERATED]
    assert not broken, json.dumps(broken, indent=1) + result["text"][-6000:]
    assert result["test_cases"]["generated"] > 50 * EXAMPLES
