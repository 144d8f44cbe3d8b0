"""`aiwarden demo`'s story against a real server (SQLite, as the demo runs), six times faster.

Every beat must happen, in order, through the public API: the corrupted batch is caught,
drift alerts fire, the canary is bad on small transactions, its incident's RCA names the
small-amount slice first, and the automatic rollback sends the traffic back to version 1.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiwarden.demo.story import DEMO_MODEL, Story
from tests.server.live import ThreadServer, database_url, settings_for


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("demo")
    with database_url("sqlite", tmp) as url, ThreadServer(settings_for(
            url, Path(tmp), evaluate_every=1.0)) as srv:
        yield srv


def test_the_story_plays_out_to_the_rollback(demo_server: ThreadServer) -> None:
    out = io.StringIO()
    story = Story(demo_server.url, speed=6, out=out, history_hours=1.0, rows_per_tick=20)
    story.start()
    try:
        assert story.done.wait(timeout=240), out.getvalue()
        time.sleep(1.0)
    finally:
        story.stop_event.set()
        story.join(timeout=30)
    told = out.getvalue()
    beats = ["version 1 is the champion", "corrupted", "ALERT firing: data-quality-errors",
             "surge", "ALERT firing: feature-drift on version 1", "canary",
             "ALERT firing: canary-accuracy on version 2",
             "Rolled fraud-detector@challenger back from version 2 to 1"]
    at = [told.find(b) for b in beats]
    assert all(i >= 0 for i in at) and at == sorted(at), told
    with httpx.Client(base_url=demo_server.url + "/api/v1", timeout=60) as api:
        assert api.get(f"/registry/models/{DEMO_MODEL}/aliases").json() == {
            "champion": "1", "challenger": "1"}
        assert api.get(f"/models/{DEMO_MODEL}/traffic").json()["mode"] == "off"
        incidents = {i["title"]: i for i in api.get(
            "/incidents", params={"model": DEMO_MODEL}).json()}
        rolled = [i for i in incidents.values() if any(
            e["detail"].get("text", "").startswith("Rolled")
            for e in api.get(f"/incidents/{i['id']}").json()["timeline"])]
        assert len(rolled) == 1 and "canary-accuracy" in rolled[0]["title"]
        timeline = api.get(f"/incidents/{rolled[0]['id']}").json()["timeline"]
        rca = next(e for e in timeline if e["detail"].get("text") == "Root-cause analysis")
        top = rca["detail"]["suspects"][0]
        assert top["kind"] == "slice" and top["name"].startswith("amount <"), top
        quarantined = api.get(f"/models/{DEMO_MODEL}/quarantine").json()
        assert [q["field"] for q in quarantined] == ["features.amount"]
        after = api.post(f"/models/{DEMO_MODEL}/predict", json={"features": {
            "amount": 5.0, "hour": 3, "merchant": "gaming", "country": "FR",
            "account_age_days": 12.0}}).json()
        assert after["version"] == "1"
