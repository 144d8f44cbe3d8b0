"""The scope matrix (docs/api.md, Scopes), checked from the route table itself.

Every route of the app is listed from ``app.routes``; each must declare a scope, the
declaration must be the one the documented matrix gives its (method, path), and a real keyed
server, called on every route with a key of each scope, answers 403 exactly where the matrix
says and never 401/403 elsewhere. A route added without a declaration, or with one the
matrix does not expect, fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from aiwarden.server.access import must_declare, route_scope, undeclared
from aiwarden.server.app import create_app
from aiwarden.server.route_table import api_routes
from aiwarden.server.settings import ServerSettings
from aiwarden.store import keys
from aiwarden.store.database import Database
from tests.server.live import ThreadServer, settings_for

# -- the matrix, written out independently of the declarations --------------------------------

API = "/api/v1"
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/login"), ("POST", "/login"),
          ("POST", "/logout")}
INGEST = {("POST", f"{API}/models/{{name}}/predictions"), ("POST", f"{API}/models/{{name}}/labels"),
          ("POST", f"{API}/models/{{name}}/resources"), ("POST", f"{API}/models/{{name}}/predict"),
          ("POST", f"{API}/models/{{name}}/gateway/flush"),
          ("POST", f"{API}/models/{{name}}/llm-events"),
          ("POST", f"{API}/models/{{name}}/llm-feedback"),
          ("POST", f"{API}/models/{{name}}/images"),
          ("POST", f"{API}/models/{{name}}/versions/{{version}}/profiles"),  # counted elsewhere
          ("POST", f"{API}/models/{{name}}/v1/chat/completions"),  # guardrails: logs events
          ("POST", f"{API}/models/{{name}}/guardrail/flush"),
          ("POST", "/v1/traces")}  # OTLP/HTTP's default path, at the root
OPERATE = {
    # API: silences, incident work, a rollback by hand, an evaluation now, a gateway reload
    ("POST", f"{API}/silences"), ("DELETE", f"{API}/silences/{{silence_id}}"),
    ("POST", f"{API}/incidents/{{incident_id}}/comments"),
    ("PUT", f"{API}/incidents/{{incident_id}}/assignee"),
    ("PUT", f"{API}/incidents/{{incident_id}}/hold"),
    ("PUT", f"{API}/incidents/{{incident_id}}/postmortem"),
    ("POST", f"{API}/incidents/{{incident_id}}/{{action}}"),
    ("POST", f"{API}/models/{{name}}/rollback"), ("POST", f"{API}/alerts/evaluate"),
    ("POST", f"{API}/models/{{name}}/gateway/reload"),
    ("POST", f"{API}/models/{{name}}/quarantine/replay"),
    ("POST", f"{API}/models/{{name}}/quarantine/release"),
    ("POST", f"{API}/models/{{name}}/quarantine/drop"),
    ("POST", f"{API}/models/{{name}}/runs"), ("POST", f"{API}/runs/{{run_id}}/cancel"),
    ("POST", f"{API}/models/{{name}}/attribution-drift/check"),
    # dashboard: the same actions from its pages, and the rollback confirmation step
    ("POST", "/incidents/{incident_id}/act/{action}"), ("POST", "/incidents/{incident_id}/comment"),
    ("POST", "/incidents/{incident_id}/assign"), ("POST", "/incidents/{incident_id}/silence"),
    ("GET", "/incidents/{incident_id}/rollback"), ("POST", "/incidents/{incident_id}/rollback"),
    ("GET", "/models/{name}/rollback"), ("POST", "/models/{name}/rollback"),
    ("POST", "/silences"), ("POST", "/silences/{silence_id}/expire"),
    ("POST", "/models/{name}/quarantine"),
    ("POST", "/models/{name}/runs"), ("POST", "/runs/{run_id}/cancel"),
}
# what a key holding each scope may call (admin everything; operate also reads)
GRANTS = {"read": {"read"}, "ingest": {"ingest"}, "operate": {"operate", "read"},
          "admin": {"read", "ingest", "operate", "admin"}}


# reads that take a body (what to explain), so they are POSTs; they change nothing
READ_POSTS = {("POST", f"{API}/models/{{name}}/explain")}


def expected_scope(method: str, path: str) -> str:
    """The matrix: public, ingest and operate routes are listed; other reads need ``read``,
    every other change ``admin`` (rules, receivers, registry, aliases, traffic, rollback
    policy, models, versions, references)."""
    if (method, path) in READ_POSTS:
        return "read"
    if (method, path) in PUBLIC:
        return "public"
    if (method, path) in INGEST:
        return "ingest"
    if (method, path) in OPERATE:
        return "operate"
    return "read" if method == "GET" else "admin"


def _app(tmp: Path) -> FastAPI:
    return create_app(ServerSettings(data_dir=str(tmp), database_url=f"sqlite:///{tmp}/x.db"))


# -- the declarations -------------------------------------------------------------------------

def test_every_route_declares_the_scope_the_matrix_gives(tmp_path: Path) -> None:
    app = _app(tmp_path)
    table = list(api_routes(app))
    assert len(table) > 80  # the flattening found the included routers
    assert undeclared(app) == []
    for entry in table:
        declared = route_scope(entry.route)
        if declared is None:  # only pages that change nothing, outside the API (/docs)
            assert not must_declare(entry.method, entry.path), entry
            continue
        assert declared == expected_scope(entry.method, entry.path), (entry.method, entry.path)
    declared = {route_scope(e.route) for e in table}
    assert {"read", "ingest", "operate", "admin", "public"} <= declared


def test_a_route_without_a_declaration_fails_the_check(tmp_path: Path) -> None:
    app = _app(tmp_path)

    @app.post(f"{API}/models/{{name}}/sneaky")
    def sneaky(request: Request, name: str) -> dict[str, str]:
        return {"name": name}

    @app.get(f"{API}/peek")
    def peek() -> dict[str, str]:
        return {}

    @app.post("/dashboard-action")
    def action() -> dict[str, str]:
        return {}

    @app.get("/some-page")
    def some_page() -> dict[str, str]:  # renders only, outside the API: may go undeclared
        return {}

    assert sorted(undeclared(app)) == sorted([
        ("GET", f"{API}/peek"), ("POST", "/dashboard-action"),
        ("POST", f"{API}/models/{{name}}/sneaky")])


# -- every route, every scope, on a real keyed server ----------------------------------------

MODEL = "scoped"
SAMPLE = {"name": MODEL, "model": MODEL, "version": "v1", "alias": "champion",
          "incident_id": "1", "action": "acknowledge", "silence_id": "no-such-silence",
          "panel": "drift", "metric": "volume"}


def _cli_key(db: str, name: str, scopes: str) -> str:
    """A key from the real ``aiwarden keys create`` (as an operator makes one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIWARDEN_")}
    out = subprocess.run([sys.executable, "-m", "aiwarden.cli", "keys", "create", name,
                          "--scopes", scopes, "--database-url", db], capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    key, note = out.stdout.strip().splitlines()
    assert note.startswith(f"# id {key.split('_')[1]}, scopes {scopes}")
    return key


@pytest.fixture(scope="module")
def keyed(db_url: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[ThreadServer, dict[str, str]]]:
    made = {"operate": _cli_key(db_url, "on-call", "operate")}
    db = Database(db_url)
    with db.write() as conn:
        for scope in ("read", "ingest", "admin"):
            made[scope] = keys.create_key(conn, f"{scope}-key", [scope])[0]
        made["ingest,read"] = keys.create_key(conn, "old-style", ["ingest", "read"])[0]
    db.dispose()
    tmp = tmp_path_factory.mktemp("scoped")
    with ThreadServer(settings_for(db_url, tmp, evaluate_every=0.0)) as srv:
        res = httpx.post(f"{srv.url}{API}/models", json={"name": MODEL, "task": "binary"},
                         headers={"Authorization": f"Bearer {made['admin']}"}, timeout=60)
        assert res.status_code == 201, res.text
        yield srv, made


def _call(srv: ThreadServer, method: str, path: str, key: str) -> httpx.Response:
    url = srv.url + re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), "x"), path)
    headers = {"Authorization": f"Bearer {key}"}
    if not path.startswith(API) and method != "GET":
        headers["Origin"] = srv.url  # the dashboard's own forms
    params = {"timeout": "1"} if path.endswith("/flush") else {}
    return httpx.request(method, url, headers=headers, params=params, timeout=60,
                         follow_redirects=False)


@pytest.mark.parametrize("scope", ["read", "ingest", "operate", "admin"])
def test_each_scope_is_refused_exactly_where_the_matrix_says(
        keyed: tuple[ThreadServer, dict[str, str]], scope: str) -> None:
    srv, made = keyed
    table = [e for e in api_routes(srv.server.config.app) if route_scope(e.route) is not None]
    refused, allowed = [], []
    for entry in table:
        want = expected_scope(entry.method, entry.path)
        res = _call(srv, entry.method, entry.path, made[scope])
        where = (entry.method, entry.path, res.status_code, res.text[:200])
        assert res.status_code != 401 and res.status_code < 500, where
        if want == "public" or want in GRANTS[scope]:
            assert res.status_code != 403, where
            allowed.append(entry)
        else:
            assert res.status_code == 403, where
            detail = res.json()["detail"] if entry.path.startswith(API) else None
            assert detail is None or (detail["error"] == "forbidden"
                                      and repr(want) in detail["message"]), where
            refused.append(entry)
    assert allowed and (refused or scope == "admin")
    assert not refused if scope == "admin" else True


def test_keys_with_the_old_scopes_keep_working(keyed: tuple[ThreadServer, dict[str, str]]
                                               ) -> None:
    """A key made before operate existed ("ingest,read") still reads and ingests, and no
    longer acts on incidents or silences."""
    srv, made = keyed
    key = made["ingest,read"]
    assert _call(srv, "GET", f"{API}/models", key).status_code == 200
    ingest = _call(srv, "POST", f"{API}/models/{{name}}/predictions", key)
    assert ingest.status_code == 422 and "empty" in ingest.json()["detail"]["message"]
    assert _call(srv, "POST", f"{API}/silences", key).status_code == 403
    assert _call(srv, "POST", f"{API}/incidents/{{incident_id}}/{{action}}", key
                 ).status_code == 403
