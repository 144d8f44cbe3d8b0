"""The quarantine page's buttons in a real browser: replay a corrected row, release one,
drop one; the API then shows each row counted once (SQLite)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, settings_for


@pytest.fixture(scope="module")
def quarantined(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ThreadServer, str]]:
    tmp = tmp_path_factory.mktemp("qpage")
    settings = settings_for(f"sqlite:///{tmp / 'q.db'}", tmp, evaluate_every=0.0)
    with ThreadServer(settings) as srv, httpx.Client(base_url=srv.url + "/api/v1",
                                                     timeout=60) as http:
        name = f"qpage-{uuid.uuid4().hex[:6]}"
        register_model(http, name, scored_frame(1000))
        rows = json_rows(scored_frame(10, seed=3), time.time() - 300)
        rows[3]["features"]["x"] = "abc"
        rows[5]["features"]["x"] = "n/a"
        rows[7]["features"]["x"] = [1, 2]
        assert http.post(f"/models/{name}/predictions", json=rows).json()["quarantined"] == 3
        yield srv, name


def _api(server: ThreadServer, path: str) -> Any:
    r = httpx.get(f"{server.url}/api/v1{path}", timeout=30)
    r.raise_for_status()
    return r.json()


def _ids(server: ThreadServer, name: str) -> dict[str, int]:
    return {q["prediction_id"]: q["id"] for q in _api(server, f"/models/{name}/quarantine")}


def test_replay_release_and_drop_from_the_page(quarantined, watched) -> None:
    server, name = quarantined
    ids = _ids(server, name)
    page = watched.page
    watched.open(f"{server.url}/models/{name}")
    page.click("text=Quarantined rows")
    page.wait_for_selector("#quarantine-form")
    assert page.locator("tr[data-quarantine]").count() == 3
    watched.shot("quarantine")

    page.check(f"#q-{ids['p3']}")
    page.fill("#q-path", "features.x")
    page.fill("#q-value", "0.75")
    page.click("button[value=replay]")
    page.wait_for_selector("#quarantine-notice")
    assert "1 of 1 row(s) left quarantine (1 accepted" in page.inner_text("#quarantine-notice")
    assert page.locator(f"tr[data-quarantine='{ids['p3']}']").count() == 0

    page.check(f"#q-{ids['p5']}")
    page.click("button[value=release]")
    page.wait_for_selector("#quarantine-notice")
    assert "Release: 1 of 1" in page.inner_text("#quarantine-notice")

    page.check(f"#q-{ids['p7']}")
    page.click("button[value=drop]")
    page.wait_for_selector("#quarantine-empty")
    assert "Dropped 1 row(s)." in page.inner_text("#quarantine-notice")
    watched.shot("quarantine-empty")

    assert _api(server, f"/models/{name}/quarantine") == []
    volume = _api(server, f"/models/{name}/metrics?metric=volume")["points"][0]["value"]
    assert volume == {"rows": 9, "quarantined": 1, "labels": 0}  # the dropped one stays
