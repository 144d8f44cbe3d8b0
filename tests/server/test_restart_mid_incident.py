"""Issue 4's sixth story: restarting the server mid-incident loses no state and pages no
one twice (a real `aiwarden server` process, killed with SIGKILL)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from tests.server.conftest import evaluate, json_rows, register_model, scored_frame
from tests.server.live import ProcessServer


def test_kill_9_mid_incident_keeps_alerts_and_incidents(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'restart.db'}"
    # Only the test evaluates; the killed process's lease lapses after 3 s.
    env = {"AIWARDEN_EVALUATE_EVERY": "0", "AIWARDEN_LEASE_TTL": "3"}
    srv = ProcessServer(url, tmp_path, extra_env=env).start()
    name = f"rs-{uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=f"{srv.url}/api/v1", timeout=60) as http:
        register_model(http, name)
        http.post(f"/models/{name}/predictions",
                  json=json_rows(scored_frame(1500, seed=9, shift=1.2), time.time() - 1600))
        http.put(f"/rules/{name}/x-drift", json={"metric": "drift", "column": "x",
                                                 "critical": 1.0}).raise_for_status()
        evaluate(http)
        before = http.get("/incidents", params={"model": name}).json()
        http.post(f"/incidents/{before[0]['id']}/acknowledge",
                  headers={"X-Aiwarden-Actor": "carol"}).raise_for_status()
    srv.kill()
    srv2 = ProcessServer(url, tmp_path, port=srv.port, extra_env=env).start()
    try:
        with httpx.Client(base_url=f"{srv2.url}/api/v1", timeout=60) as http:
            after = http.get("/incidents", params={"model": name}).json()
            assert [(i["id"], i["status"]) for i in after] == [(before[0]["id"],
                                                               "acknowledged")]
            alerts = {a["labels"]["rule"]: a["state"]["phase"]
                      for a in http.get(f"/models/{name}/alerts").json()}
            assert alerts["x-drift"] == "firing"
            out = evaluate(http)
            again = [t for t in out["transitions"] if t["labels"]["model"] == name
                     and t["labels"]["rule"] == "x-drift"]
            assert again == []  # still firing: no new page, no new incident
            assert len(http.get("/incidents", params={"model": name}).json()) == 1
    finally:
        srv2.stop()
