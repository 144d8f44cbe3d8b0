"""An incident whose group went to the default route (receiver ``none``: nobody configured)
must not read as notified (outside review, finding 15): the timeline says "no receiver
configured" with a warning mark, not "notified none ✓", and so does the postmortem.
A real server, SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.server.conftest import evaluate, json_rows, register_model, scored_frame


def test_no_receiver_is_not_shown_as_notified(http, server) -> None:
    name = f"norecv-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    http.post(f"/models/{name}/predictions",
              json=json_rows(scored_frame(1500, seed=9, shift=1.2), time.time() - 1600))
    http.put(f"/rules/{name}/x-drift", json={"metric": "drift", "column": "x",
                                             "critical": 1.0}).raise_for_status()
    assert evaluate(http)["incidents"]
    iid = http.get("/incidents", params={"model": name}).json()[0]["id"]
    # the pipeline's own record of the group it flushed to "none": not ok, and says why
    deadline = time.monotonic() + 30
    while not (told := [e["detail"] for e in http.get(f"/incidents/{iid}").json()["timeline"]
                        if e["kind"] == "notification" and e["detail"]["receiver"] == "none"]):
        assert time.monotonic() < deadline, "the group was never flushed"
        evaluate(http)
        time.sleep(0.2)
    assert told[0]["ok"] is False and told[0]["error"] == "no receiver configured", told
    # what the alert pipeline records when a group flushes to the default route "none"
    incidents = server.server.config.app.state.incidents
    incidents.record_notification(iid, "none", detail={"status": "firing", "firing": 1,
                                                       "resolved": 0})
    incidents.record_notification(iid, "ops-hook", ok=True)  # a real receiver: still ✓
    with httpx.Client(base_url=server.url, timeout=60) as web:
        page = web.get(f"/incidents/{iid}")
    assert page.status_code == 200, page.text[:300]
    assert "notified none" not in page.text
    assert "no receiver configured" in page.text
    line = page.text.split("no receiver configured")[0].rsplit("<li", 1)[1]
    assert "✓" not in line and "⚠" in line
    assert "notified ops-hook ✓" in page.text
    done = http.post(f"/incidents/{iid}/resolve").json()
    assert done["status"] == "resolved"
    pm = http.get(f"/incidents/{iid}/postmortem").json()["text"]
    assert "notification to none: sent" not in pm
    assert "not notified: no receiver configured" in pm
