"""A model-based evaluator the operator configures (setting llm_evaluators), through a real
server on SQLite and PostgreSQL and a real moderation endpoint on loopback: what it flags
counts in the unsafe columns beside the rules' findings; when it hangs, the ingest answers
within its timeout, names it in ``evaluators_skipped`` and keeps the rules' findings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.llm.fake_moderation import FakeModeration
from tests.server.live import ThreadServer, settings_for
from tests.server.test_llm_events import UNSAFE, _events, _model


@pytest.fixture(scope="module")
def endpoint() -> Iterator[FakeModeration]:
    with FakeModeration() as f:
        yield f


@pytest.fixture(scope="module")
def http(db_url: str, tmp_path_factory: pytest.TempPathFactory,
         endpoint: FakeModeration) -> Iterator[httpx.Client]:
    tmp = tmp_path_factory.mktemp("judge")
    config = tmp / "evaluators.yaml"
    config.write_text("evaluators:\n"
                      f"  - {{name: moderation, kind: openai_moderation, url: '{endpoint.url}',"
                      " timeout: 0.5, failures: 3, reset: 60}\n")
    with ThreadServer(settings_for(db_url, tmp, evaluate_every=0,
                                   llm_evaluators=str(config))) as srv, \
            httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as c:
        _model(c, "judged")
        yield c


def _flagged(http: httpx.Client, prefix: str) -> dict[str, list[dict[str, Any]]]:
    events = http.get("/models/judged/llm-events", params={
        "flagged": "true", "limit": 1000}).json()["events"]
    return {e["request_id"]: e["findings"] for e in events
            if e["request_id"].startswith(prefix)}


def test_what_the_model_flags_counts_beside_the_rules(http: httpx.Client,
                                                      endpoint: FakeModeration) -> None:
    rows = _events(10, "j")
    rows[1]["output"] = "Go and feed the zebra tonight, you know what I mean."  # rules: safe
    rows[2]["output"] = UNSAFE + " Ask the zebra."  # both flag it
    r = http.post("/models/judged/llm-events", json=rows)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["flagged"] == 2 and "evaluators_skipped" not in out, out
    found = _flagged(http, "j")
    assert set(found) == {"j1", "j2"}
    assert [(f["evaluator"], f["category"], f["detail"]) for f in found["j1"]] == [
        ("safety", "self_harm", "moderation: self_harm 0.93")]
    assert any(f["detail"] == "" or not f["detail"].startswith("moderation")
               for f in found["j2"])  # the rules' own finding is kept
    assert any(f["detail"].startswith("moderation") for f in found["j2"])
    m = http.get("/models/judged/metrics", params={"metric": "llm", "start": "-1h"}).json()
    assert m["points"][-1]["value"]["unsafe_rate"] == pytest.approx(0.2)
    assert any("zebra" in t for req in endpoint.requests for t in req["body"]["input"])


def test_a_hanging_model_is_skipped_and_named_the_rules_still_flag(
        http: httpx.Client, endpoint: FakeModeration) -> None:
    endpoint.delay = 3.0
    try:
        rows = _events(4, "h", ts=time.time() - 200)
        rows[0]["output"] = UNSAFE
        rows[1]["output"] = "Feed the zebra."
        started = time.monotonic()
        out = http.post("/models/judged/llm-events", json=rows).json()
        assert time.monotonic() - started < 2.5  # the timeout, not the endpoint's 3 s
    finally:
        endpoint.delay = 0.0
    assert out["accepted"] == 4 and out["flagged"] == 1, out
    assert out["evaluators_skipped"] == {
        "moderation": "the moderation evaluator failed: EvaluatorUnavailable: no answer "
                      "within its timeout"}
    assert set(_flagged(http, "h")) == {"h0"}


def test_a_bad_config_stops_the_server_command_in_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "evaluators.yaml"
    bad.write_text("evaluators:\n  - {name: m, kind: openai_moderation, "
                   "url: 'http://169.254.169.254/v1/moderations'}\n")
    res = subprocess.run([sys.executable, "-m", "aiwarden.cli", "server", "--data-dir",
                          str(tmp_path), "--port", "0", "--llm-evaluators", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    (line,) = res.stderr.strip().splitlines()
    assert "evaluators[0].url" in line and "metadata" in line, line
