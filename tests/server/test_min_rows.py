"""Minimum rows per rule on a real server: a thin window is "not enough data" with a
reason, not a verdict; the same window is judged once the rule allows it or rows arrive."""

from __future__ import annotations

import time
import uuid

from aiwarden.alerting.rules import DEFAULT_MIN_ROWS
from tests.server.conftest import evaluate, json_rows, register_model, scored_frame


def _state(http, name: str, rule: str) -> dict:
    found = [a for a in http.get(f"/models/{name}/alerts").json()
             if a["labels"]["rule"] == rule]
    assert len(found) == 1, found
    return found[0]


def test_a_thin_window_is_not_enough_data_with_a_reason(http) -> None:
    name = f"mr-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    thin = scored_frame(40, seed=8, shift=3.0)  # a huge shift, but only 40 rows
    http.post(f"/models/{name}/predictions",
              json=json_rows(thin, time.time() - 600)).raise_for_status()
    for rule, extra in (("x-drift", {}), ("x-drift-any", {"min_rows": 0})):
        http.put(f"/rules/{name}/{rule}", json={
            "metric": "drift", "column": "x", "window": "1h", "critical": 1.0,
            **extra}).raise_for_status()
    evaluate(http)
    thin_state = _state(http, name, "x-drift")["state"]
    assert thin_state["phase"] == "nodata"
    assert thin_state["reason"].startswith("not enough data: 40 rows")
    assert f"needs {DEFAULT_MIN_ROWS['drift']}" in thin_state["reason"]
    # The control: the same window, judged because this rule asks for no minimum.
    assert _state(http, name, "x-drift-any")["state"]["phase"] in ("pending", "firing")

    more = scored_frame(400, seed=9, shift=3.0)
    http.post(f"/models/{name}/predictions",
              json=json_rows(more, time.time() - 500, prefix="q", spacing=0.5)
              ).raise_for_status()
    out = evaluate(http)
    kinds = [t["kind"] for t in out["transitions"]
             if t["labels"]["model"] == name and t["labels"]["rule"] == "x-drift"]
    assert kinds[:1] == ["data_back"] and "pending" in kinds
    assert _state(http, name, "x-drift")["state"]["reason"] is None


def test_min_rows_is_validated(http) -> None:
    name = f"mr-{uuid.uuid4().hex[:6]}"
    http.post("/models", json={"name": name}).raise_for_status()
    bad = http.put(f"/rules/{name}/x", json={"metric": "drift", "column": "x",
                                            "critical": 1.0, "min_rows": -1})
    assert bad.status_code == 422
    assert bad.json()["detail"]["field"] == "rules[0].min_rows"
