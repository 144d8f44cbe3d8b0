"""What a web page on another site can make an open loopback server do: nothing.

The requests here are the ones a browser sends for a foreign page (a form POST, a no-cors
fetch, a DNS-rebound name); tests/browser/test_cross_site.py sends them from a real browser.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiwarden.server.origin import SAFE_METHODS, host_allowed, same_origin
from aiwarden.server.route_table import api_routes
from tests.server.live import ThreadServer, settings_for

EVIL = "http://evil.example"


class _Runs:
    """A pickle that makes a folder when it is loaded: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.mkdir, (str(self.marker),))


@pytest.fixture(scope="module")
def open_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("xsite")
    with ThreadServer(settings_for(f"sqlite:///{tmp / 'x.db'}", tmp, evaluate_every=0.0)) as s:
        yield s


@pytest.fixture
def http(open_server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=open_server.url, timeout=30) as c:
        yield c


def _pickle_upload(marker: Path) -> dict:
    return {"artifact": ("model.pkl", pickle.dumps(_Runs(marker)), "application/octet-stream")}


def test_the_reported_form_post_registers_nothing_and_runs_nothing(
        http: httpx.Client, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    r = http.post("/api/v1/registry/models/x/versions", params={"trust": "true"},
                  headers={"Origin": EVIL}, files=_pickle_upload(marker))
    assert r.status_code == 403, r.text
    assert r.json()["detail"]["error"] == "cross_site"
    assert not marker.exists()
    assert http.get("/api/v1/registry/models").json() == []


def test_an_open_server_refuses_code_running_artifacts_even_from_curl(
        http: httpx.Client, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    r = http.post("/api/v1/registry/models/x/versions", params={"trust": "true"},
                  files=_pickle_upload(marker))
    assert r.status_code == 403, r.text
    assert r.json()["detail"]["field"] == "format"
    assert "--allow-code-artifacts" in r.json()["detail"]["message"]
    assert not marker.exists()
    for entry in ("os:system", "builtins:eval"):
        r = http.post("/api/v1/registry/models/x/versions",
                      params={"format": "python", "entry_point": entry, "trust": "true"},
                      content=b"{}")
        assert r.status_code == 403, (entry, r.text)


def test_the_start_up_flag_lets_a_lone_developer_register_a_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    settings = settings_for(f"sqlite:///{tmp_path / 'f.db'}", tmp_path, evaluate_every=0.0,
                            allow_code_artifacts=True)
    with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url) as c:
        r = c.post("/api/v1/registry/models/x/versions", params={"trust": "true"},
                   headers={"Origin": EVIL}, files=_pickle_upload(marker))
        assert r.status_code == 403 and not marker.exists()  # still never cross-site
        r = c.post("/api/v1/registry/models/x/versions", params={"trust": "true"},
                   files=_pickle_upload(marker))
        # the trial load ran the pickle: it is not a model, so it is refused, but it ran
        assert marker.exists(), r.text


def _state_changing_routes(server: ThreadServer) -> list[tuple[str, str]]:
    """Every state-changing route of the running app, path parameters filled in."""
    return [(r.method, re.sub(r"\{[^}]+\}", "x", r.path))
            for r in api_routes(server.server.config.app) if r.method not in SAFE_METHODS]


def test_the_route_table_has_state_changing_routes_to_check(open_server: ThreadServer) -> None:
    routes = _state_changing_routes(open_server)
    assert len(routes) > 30
    assert ("POST", "/api/v1/silences") in routes and ("POST", "/silences") in routes


@pytest.mark.parametrize("headers", [
    {"Origin": EVIL},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port of localhost is another origin
])
def test_no_state_changing_route_accepts_a_foreign_page(
        http: httpx.Client, open_server: ThreadServer, headers: dict[str, str]) -> None:
    for method, path in _state_changing_routes(open_server):
        for media in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                      "application/json"):
            r = http.request(method, path, headers={**headers, "Content-Type": media},
                             content=b'{"matchers": {"model": "x"}, "hours": 1}')
            assert r.status_code == 403, (method, path, media, r.status_code, r.text)
            assert r.json()["detail"]["error"] == "cross_site"
    assert http.get("/api/v1/silences").json() in ([], {"silences": []})


def test_a_page_of_this_server_and_scripts_still_work(http: httpx.Client,
                                                      open_server: ThreadServer) -> None:
    own = open_server.url
    for headers in ({}, {"Origin": own, "Sec-Fetch-Site": "same-origin"}):
        r = http.post("/api/v1/models", json={"name": f"m{len(headers)}"}, headers=headers)
        assert r.status_code == 201, r.text


def test_json_routes_refuse_the_body_types_a_page_can_send_without_preflight(
        http: httpx.Client) -> None:
    for media in ("text/plain", "application/x-www-form-urlencoded",
                  "text/plain;charset=UTF-8"):
        r = http.post("/api/v1/models", content=b'{"name": "plain"}',
                      headers={"Content-Type": media})
        assert r.status_code == 415, (media, r.text)
        assert r.json()["detail"]["field"] == "content-type"
    assert "plain" not in {m["name"] for m in http.get("/api/v1/models").json()}


def test_a_rebound_host_name_reads_nothing(http: httpx.Client, open_server: ThreadServer) -> None:
    port = open_server.settings.port
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.nip.io:{port}", ""):
        r = http.get("/api/v1/models", headers={"Host": host})
        assert r.status_code == 421, (host, r.text)
        assert r.json()["detail"]["error"] == "host_not_allowed"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "127.0.0.2"):
        assert http.get("/api/v1/models", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_and_origins_are_settings(tmp_path: Path) -> None:
    settings = settings_for(f"sqlite:///{tmp_path / 'h.db'}", tmp_path, evaluate_every=0.0,
                            allowed_hosts="aiwarden.internal",
                            allowed_origins="https://aiwarden.internal")
    with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url) as c:
        assert c.get("/healthz", headers={"Host": "aiwarden.internal"}).status_code == 200
        assert c.get("/healthz", headers={"Host": "other.internal"}).status_code == 421
        r = c.post("/api/v1/models", json={"name": "proxied"},
                   headers={"Origin": "https://aiwarden.internal"})
        assert r.status_code == 201, r.text
        r = c.post("/api/v1/models", json={"name": "x"},
                   headers={"Origin": "https://other.internal"})
        assert r.status_code == 403


def test_host_rules_away_from_loopback() -> None:
    assert host_allowed("anything.example:8000", loopback_only=False, allowed=())
    assert host_allowed("a.corp.example", loopback_only=False, allowed=(".corp.example",))
    assert host_allowed("corp.example:443", loopback_only=False, allowed=(".corp.example",))
    assert not host_allowed("corp.example.evil", loopback_only=False,
                            allowed=(".corp.example",))
    assert not host_allowed("localhost", loopback_only=False, allowed=("aiwarden.example",))
    assert not host_allowed(None, loopback_only=False, allowed=())


def test_same_origin_ignores_the_scheme_but_not_the_port() -> None:
    host = {"host": "aiwarden.example"}
    assert same_origin({**host, "origin": "https://aiwarden.example"})
    assert not same_origin({**host, "origin": "https://aiwarden.example:8443"})
    assert not same_origin({**host, "origin": "https://aiwarden.example.evil"})
    assert same_origin({**host, "sec-fetch-site": "none"})
    assert not same_origin({**host, "origin": "null"}, allowed_origins=("https://x",))
