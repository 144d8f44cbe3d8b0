"""`make demo`'s traffic: the model registers, history lands, and drift appears."""

from __future__ import annotations

import time

import httpx

from aiwarden.demo_traffic import DEMO_MODEL, DemoTraffic


def test_demo_traffic_drifts_after_a_while(server) -> None:
    demo = DemoTraffic(server.url, drift_after=1.0, every=0.2, rows_per_tick=40,
                       history_hours=0.5, label_delay=0.5, corrupt_every=3, seed=1)
    demo.start()
    try:
        api = httpx.Client(base_url=f"{server.url}/api/v1", timeout=60)
        deadline = time.monotonic() + 120
        drifted: list[str] = []
        while time.monotonic() < deadline and "amount" not in drifted:
            time.sleep(1)
            r = api.get(f"/models/{DEMO_MODEL}/metrics",
                        params={"metric": "drift", "start": "-1m", "end": "now"})
            if r.status_code == 200 and r.json()["points"][0]["value"]:
                drifted = r.json()["points"][0]["value"]["drifted_features"]
        assert "amount" in drifted, "the demo's shift never showed as drift"
        history = api.get(f"/models/{DEMO_MODEL}/metrics",
                          params={"metric": "drift", "start": "-40m", "end": "-5m"}).json()
        assert history["points"][0]["value"]["drifted_features"] == []  # before: no drift
        perf = api.get(f"/models/{DEMO_MODEL}/metrics",
                       params={"metric": "performance", "start": "-1h"}).json()
        assert perf["points"][0]["value"]["labels"] > 0
        # Corrupted records are quarantined and the traffic goes on.
        assert demo.is_alive()
        quarantined = api.get(f"/models/{DEMO_MODEL}/quarantine").json()
        assert quarantined and quarantined[0]["field"] == "features.amount"
    finally:
        demo.stop_event.set()
        demo.join(timeout=30)
        api.close()
