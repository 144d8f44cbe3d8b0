"""Issue 4's fifth story through a real server: a metric hovering around its rule's
threshold for over half an hour of evaluation cycles pages once, not dozens of times.

The model's per-minute volume is set row by row, and each cycle is evaluated as of the end
of one minute (``POST /alerts/evaluate?now=…``), so the value every cycle sees is exact.
A second rule on the same numbers, without hysteresis or ``for``, shows they really flap.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.alerting.receivers import WebhookServer
from tests.server.conftest import json_rows, register_model, scored_frame
from tests.server.live import ThreadServer, settings_for

THRESHOLD = 100
# Rows per minute: one-minute blips over the threshold, each followed by a clear drop (too
# short for `for: 2m`); then 28 minutes either side of the threshold but never under its
# 10 % hysteresis band (90), so the breach holds from minute 7 and fires at minute 9; then
# a real drop.
SERIES = [103, 85] * 3 + [97, 103] * 14 + [50, 50]


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    """No evaluation loop: the test drives every cycle, each at its own `now`."""
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"),
                                   evaluate_every=0)) as srv:
        yield srv


def _wait(check, within: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_metric_hovering_on_its_threshold_pages_once(http) -> None:
    m = f"flap-{uuid.uuid4().hex[:5]}"
    register_model(http, m)
    minute0 = int(time.time() // 60) * 60 - (len(SERIES) + 2) * 60
    rows = [row for k, n in enumerate(SERIES) for row in json_rows(
        scored_frame(n, seed=k), minute0 + 60 * k + 0.5, prefix=f"m{k}-", spacing=0.5)]
    assert http.post(f"/models/{m}/predictions", json=rows).json()["accepted"] == sum(SERIES)

    with WebhookServer() as hook:
        http.post("/rules/apply", content=f"""
rules:
  - {{name: hover, model: {m}, metric: volume, window: 1m, op: ">", critical: {THRESHOLD},
     hysteresis: 0.1, for: 2m}}
  - {{name: hover-raw, model: {m}, metric: volume, window: 1m, op: ">",
     critical: {THRESHOLD}, hysteresis: 0}}
receivers:
  - {{type: webhook, name: hook, url: "{hook.url()}"}}
route:
  receiver: none
  group_by: [model, rule]
  group_wait: 30s
  group_interval: 1s
  routes:
    - {{receiver: hook, matchers: ["model={m}", "rule=hover"]}}
""").raise_for_status()

        kinds: dict[str, list[tuple[int, str]]] = {"hover": [], "hover-raw": []}
        for k in range(len(SERIES)):
            out = http.post("/alerts/evaluate", params={"now": minute0 + 60 * (k + 1)}).json()
            assert out["evaluated"], out
            for t in out["transitions"]:
                if t["labels"]["model"] == m and t["labels"]["rule"] in kinds:
                    kinds[t["labels"]["rule"]].append((k, t["kind"]))

        # The rule with hysteresis and `for` fires once (the breach held for 2 minutes)
        # and resolves once (the real drop); the same numbers without them flap 17 times.
        fired = [(k, kind) for k, kind in kinds["hover"] if kind in ("firing", "resolved")]
        assert fired == [(9, "firing"), (34, "resolved")]
        raw = Counter(kind for _, kind in kinds["hover-raw"])
        assert raw["firing"] == 17 and raw["resolved"] == 17

        _wait(lambda: len(hook.delivered) >= 2)
        time.sleep(2.5)  # two more group intervals: room for any extra message
        got = [r.json() for r in hook.delivered]
        assert [(g["status"], g["labels"]["rule"]) for g in got] == [
            ("firing", "hover"), ("resolved", "hover")]
        assert got[0]["alerts"][0]["annotations"]["value"] == "103"

    alerts = http.get(f"/models/{m}/alerts", params={"events": 1000}).json()
    [hover] = [a for a in alerts if a["labels"]["rule"] == "hover"]
    events = Counter(e["kind"] for e in hover["events"])
    assert events == {"pending": 4, "cancelled": 3, "firing": 1, "recovering": 1,
                      "resolved": 1}
    assert hover["state"]["phase"] == "normal"
    everything = http.get("/incidents", params={"model": m}).json()
    incidents = [i for i in everything if i["key"] == "hover"]
    assert [i["status"] for i in incidents] == ["resolved"]  # one incident, auto-resolved
    # the raw rule's 17 firings, each within a minute or two of the last resolution, are
    # one incident too (reopened, or joining hover's while that is open), not 17
    raw = [i for i in everything if i["key"] == "hover-raw"]
    assert len(raw) == 1, raw
    timeline = http.get(f"/incidents/{raw[0]['id']}").json()["timeline"]
    assert "reopened: hover-raw fired again" in {e["detail"].get("text") for e in timeline}
