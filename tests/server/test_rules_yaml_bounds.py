"""A YAML alias bomb sent to ``POST /rules/apply`` is a 422 naming the body's problem, and
the server keeps answering (it hung: the lone-surrogate check walked 9**9 shared nodes on the
event loop)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.alerting.test_yaml_bounds import bomb
from tests.server.live import ThreadServer, database_url, settings_for


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    tmp: Path = tmp_path_factory.mktemp("yaml-bounds")
    with database_url("sqlite", tmp) as url, ThreadServer(settings_for(url, tmp)) as srv, \
            httpx.Client(base_url=srv.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("dry_run", ["true", "false"])
def test_an_alias_bomb_is_refused_and_the_server_answers(http: httpx.Client,
                                                         dry_run: str) -> None:
    got = http.post("/api/v1/rules/apply", params={"dry_run": dry_run}, content=bomb(),
                    headers={"Content-Type": "application/yaml"})
    assert got.status_code == 422, got.text
    detail = got.json()["detail"]
    assert detail["field"] == "rules" and "expands to more than" in detail["message"]
    assert http.get("/healthz").status_code == 200
    assert http.get("/api/v1/rules").json() == []  # nothing applied


def test_a_recursive_alias_is_refused(http: httpx.Client) -> None:
    got = http.post("/api/v1/rules/apply", params={"dry_run": "true"},
                    content="rules: &r [*r]\n", headers={"Content-Type": "application/yaml"})
    assert got.status_code == 422, got.text
    assert "recursive" in got.json()["detail"]["message"]
