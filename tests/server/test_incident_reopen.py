"""A flapping alert is one incident, through a real server on SQLite and PostgreSQL.

An alert firing again within ``AIWARDEN_INCIDENT_REOPEN_WINDOW`` (300 s by default) of
its incident's resolution reopens that incident, with "reopened: <rule> fired again" on
its timeline, instead of opening another (outside review: the demo's incident list was
noisy). A reopen does not page again unless the severity rose; after a person resolved
the incident, the reopening names them; past the window the same key opens a new one.

Each cycle is evaluated as of the end of one minute (``POST /alerts/evaluate?now=…``) on
rows placed minute by minute, so every cycle sees an exact value (tests/server/
test_flapping_e2e.py does the same).
"""

from __future__ import annotations

import time
import uuid

import httpx

from tests.alerting.receivers import WebhookServer
from tests.server.conftest import json_rows, register_model, scored_frame

# the same server as the flapping tests (no evaluation loop: each cycle at its own `now`)
from tests.server.test_flapping_e2e import _wait, server  # noqa: F401


def _rows_per_minute(http: httpx.Client, model: str, series: list[int]) -> int:
    """Rows of ``series[k]`` in minute k; the first minute, ending a cycle before now."""
    minute0 = int(time.time() // 60) * 60 - (len(series) + 1) * 60
    rows = [row for k, n in enumerate(series) for row in json_rows(
        scored_frame(n, seed=k), minute0 + 60 * k + 0.5, prefix=f"m{k}-", spacing=0.3)]
    assert http.post(f"/models/{model}/predictions", json=rows).json()["accepted"] == sum(
        series)
    return minute0


def _cycle(http: httpx.Client, model: str, now: float) -> list[str]:
    out = http.post("/alerts/evaluate", params={"now": now}).json()
    assert out["evaluated"], out
    return [t["kind"] for t in out["transitions"] if t["labels"]["model"] == model
            and t["kind"] in ("firing", "resolved")]


def _incidents(http: httpx.Client, model: str) -> list[dict]:
    return [http.get(f"/incidents/{i['id']}").json() for i in sorted(
        http.get("/incidents", params={"model": model}).json(), key=lambda i: i["id"])]


def test_a_flapping_alert_reopens_its_incident_and_pages_again_only_when_worse(http) -> None:
    m = f"reopen-{uuid.uuid4().hex[:5]}"
    register_model(http, m)
    # warning, clear, warning, clear, critical, clear: three firings, one incident
    series = [103, 85, 103, 85, 160, 85]
    minute0 = _rows_per_minute(http, m, series)
    with WebhookServer() as hook:
        http.post("/rules/apply", content=f"""
rules:
  - {{name: flappy, model: {m}, metric: volume, window: 1m, op: ">", warning: 100,
     critical: 150, hysteresis: 0}}
receivers:
  - {{type: webhook, name: pager, url: "{hook.url('/pager')}"}}
route: {{receiver: none, group_by: [model, rule]}}
escalation_policies:
  {m}: {{steps: [{{wait_minutes: 0, receiver: pager}}]}}
""").raise_for_status()
        kinds = [_cycle(http, m, minute0 + 60 * (k + 1)) for k in range(len(series))]
        assert kinds == [["firing"], ["resolved"]] * 3, kinds

        pages = lambda: [r.json() for r in hook.delivered if r.path == "/pager"]  # noqa: E731
        _wait(lambda: len(pages()) >= 2)
        time.sleep(2.0)  # room for a page too many
        # paged when it opened, and when it came back critical; not for the warning flap
        assert [p["severity"] for p in pages()] == ["warning", "critical"], pages()

    [inc] = _incidents(http, m)
    assert inc["status"] == "resolved" and inc["severity"] == "critical"
    assert inc["created_at"] == minute0 + 60 and inc["resolved_at"] == minute0 + 360
    reopened = [e for e in inc["timeline"] if e["kind"] == "reopened"]
    assert [(e["at"] - minute0, e["detail"]["text"], e["detail"]["resolved_by"])
            for e in reopened] == [(180, "reopened: flappy fired again", "system"),
                                   (300, "reopened: flappy fired again", "system")]
    statuses = [(e["detail"]["from"], e["detail"]["to"]) for e in inc["timeline"]
                if e["kind"] == "status"]
    assert statuses == [("triggered", "resolved")] * 3
    assert [e["kind"] for e in inc["timeline"]].count("escalation") == 2
    assert [e["kind"] for e in inc["timeline"]].count("escalation_restarted") == 1
    times = http.get(f"/models/{m}/response-times",
                     params={"start": minute0, "end": minute0 + 3600}).json()
    assert times["incidents"] == 1 and times["resolved"] == 1
    assert times["mttr_seconds"] == 300  # first opening to last resolution


def test_a_person_resolved_incident_reopens_naming_them_and_not_after_the_window(
        http) -> None:
    m = f"reopen-p-{uuid.uuid4().hex[:5]}"
    register_model(http, m)
    # fires, (alice resolves), clears, fires again: reopened; clears; fires again seven
    # minutes later, past the 300 s window: a new incident
    series = [103, 85, 103, 85] + [50] * 6 + [103]
    minute0 = _rows_per_minute(http, m, series)
    http.put(f"/rules/{m}/hover", json={"metric": "volume", "window": "1m", "op": ">",
                                        "critical": 100, "hysteresis": 0}).raise_for_status()
    kinds = [_cycle(http, m, minute0 + 60)]
    [first] = _incidents(http, m)
    done = http.post(f"/incidents/{first['id']}/resolve", headers={"X-Aiwarden-Actor": "alice"})
    assert done.json()["status"] == "resolved", done.text
    kinds += [_cycle(http, m, minute0 + 60 * (k + 1)) for k in range(1, len(series))]
    assert [k for k in kinds if k] == [["firing"], ["resolved"], ["firing"], ["resolved"],
                                       ["firing"]], kinds

    first, second = _incidents(http, m)
    [reopened] = [e for e in first["timeline"] if e["kind"] == "reopened"]
    assert reopened["detail"]["text"] == "reopened: hover fired again (resolved by alice)"
    assert reopened["detail"]["resolved_by"] == "alice" and reopened["at"] == minute0 + 180
    assert first["status"] == "resolved" and first["resolved_at"] == minute0 + 240
    assert second["status"] == "triggered" and second["created_at"] == minute0 + 660
    assert not [e for e in second["timeline"] if e["kind"] == "reopened"]
