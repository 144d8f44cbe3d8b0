"""Rules and alerts over HTTP: defaults, validation, apply (diffed, idempotent), a drift
alert firing on a real server, and the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiwarden.alerting.rules import default_rules
from tests.server.conftest import evaluate, json_rows, register_model, scored_frame


def test_a_new_model_has_the_default_rules_for_its_inferred_task(http) -> None:
    name = f"al-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    own = [r for r in http.get("/rules", params={"model": name}).json() if r["model"] == name]
    assert {r["name"] for r in own} == {r.name for r in default_rules("binary")}
    assert all(r["source"] == "default" for r in own)


def test_rules_are_validated_and_upserted(http) -> None:
    name = f"al-{uuid.uuid4().hex[:6]}"
    http.post("/models", json={"name": name}).raise_for_status()
    bad = http.put(f"/rules/{name}/x", json={"metric": "drift", "critical": "high"})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "rules[0].critical"
    rule = {"metric": "drift", "column": "x", "critical": 1.5, "for": "5m"}
    assert http.put(f"/rules/{name}/x", json=rule).json()["status"] == "created"
    assert http.put(f"/rules/{name}/x", json=rule).json()["status"] == "unchanged"
    assert http.put(f"/rules/{name}/x", json=rule | {"critical": 2}).json()["status"] == \
        "updated"
    assert http.delete(f"/rules/{name}/x").json() == {"status": "deleted"}
    assert http.delete(f"/rules/{name}/x").status_code == 404


def test_apply_is_diffed_and_idempotent(http) -> None:
    m = f"al-{uuid.uuid4().hex[:6]}"
    v1 = f"""rules:
  - {{name: drift-x, model: {m}, metric: drift, column: x, critical: 1}}
  - {{name: slow, model: {m}, metric: latency, stat: p99, critical: 500}}
"""
    dry = http.post("/rules/apply", params={"dry_run": "true"}, content=v1).json()
    assert dry["created"] == [f"{m}/drift-x", f"{m}/slow"] and dry["dry_run"]
    assert not [r for r in http.get("/rules").json() if r["model"] == m]
    assert http.post("/rules/apply", content=v1).json()["created"] == dry["created"]
    again = http.post("/rules/apply", content=v1).json()
    assert again["unchanged"] == dry["created"] and not again["created"] + again["updated"]
    v2 = v1.replace("critical: 500", "critical: 800").replace(
        f"  - {{name: drift-x, model: {m}, metric: drift, column: x, critical: 1}}\n", "")
    plan = http.post("/rules/apply", content=v2).json()
    assert plan["updated"] == [f"{m}/slow"] and plan["deleted"] == [f"{m}/drift-x"]
    bad = http.post("/rules/apply", content="rules:\n  - {name: a, metric: drift}\n")
    assert bad.status_code == 422 and "threshold" in bad.json()["detail"]["message"]


def test_a_drift_alert_fires_with_its_runbook(http) -> None:
    name = f"al-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    df = scored_frame(1500, seed=5, shift=1.2)
    http.post(f"/models/{name}/predictions", json=json_rows(df, time.time() - 1600))
    http.put(f"/rules/{name}/x-drift", json={
        "metric": "drift", "column": "*", "window": "1h", "critical": 1.0,
        "runbook": "Check the upstream amount feed."}).raise_for_status()
    out = evaluate(http)
    firing = [t for t in out["transitions"] if t["labels"]["model"] == name
              and t["labels"]["rule"] == "x-drift"]
    assert [(t["labels"]["column"], t["kind"]) for t in firing] == [("x", "pending"),
                                                                    ("x", "firing")]
    alerts = http.get(f"/models/{name}/alerts").json()
    x = [a for a in alerts if a["labels"].get("column") == "x"]
    assert x[0]["state"]["phase"] == "firing"
    assert x[0]["runbook"] == "Check the upstream amount feed."
    assert [e["kind"] for e in x[0]["events"]] == ["pending", "firing"]


def test_cli_apply_and_alerts(http, server, tmp_path: Path) -> None:
    m = f"al-{uuid.uuid4().hex[:6]}"
    http.post("/models", json={"name": m}).raise_for_status()
    f = tmp_path / "rules.yaml"
    f.write_text(f"rules:\n  - {{name: vol, model: {m}, metric: volume, op: '<', "
                 "critical: 1, window: 15m}\n")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "aiwarden.cli", *args, "--url",
                               server.url], capture_output=True, text=True, timeout=60)

    dry = cli("apply", str(f), "--dry-run")
    assert dry.returncode == 1  # changes pending (docs/cli.md)
    assert f"+ {m}/vol" in dry.stdout and "would change 1" in dry.stdout
    assert "did change 1" in cli("apply", str(f)).stdout
    assert "did change 0 rule(s); 1 unchanged" in cli("apply", str(f)).stdout
    f.write_text("rules:\n  - {name: a, metric: drift}\n")
    bad = cli("apply", str(f))
    assert bad.returncode == 2 and "threshold" in bad.stderr and "Traceback" not in bad.stderr
    shown = cli("alerts", m)
    assert shown.returncode == 0 and shown.stdout.startswith("rule")


def test_rca_over_http_names_the_shifted_feature(http, server) -> None:
    name = f"al-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    df = scored_frame(1500, seed=7, shift=1.2)
    http.post(f"/models/{name}/predictions", json=json_rows(df, time.time() - 1600))
    report = http.get(f"/models/{name}/rca", params={"start": "-1h"}).json()
    assert report["suspects"][0]["kind"] == "drift" and report["suspects"][0]["name"] == "x"
    md = http.get(f"/models/{name}/rca", params={"start": "-1h", "format": "markdown"})
    assert md.headers["content-type"].startswith("text/markdown") and "| x |" in md.text
    out = subprocess.run([sys.executable, "-m", "aiwarden.cli", "rca", name, "--start=-1h",
                          "--url", server.url], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "Root-cause analysis" in out.stdout


def test_the_sdk_manages_rules_and_reads_alerts_incidents_and_rca(server, http) -> None:
    import aiwarden

    name = f"al-{uuid.uuid4().hex[:6]}"
    register_model(http, name)
    http.post(f"/models/{name}/predictions",
              json=json_rows(scored_frame(1500, seed=13, shift=1.2), time.time() - 1600))
    with aiwarden.Client(server.url) as c:
        assert c.put_rule(name, "x", {"metric": "drift", "column": "x", "critical": 1.0}
                          )["status"] == "created"
        assert "x" in {r["name"] for r in c.list_rules(name)}
        plan = c.apply_rules(f"rules:\n  - {{name: y, model: {name}, metric: volume, "
                             "op: '<', critical: 1}\n", dry_run=True)
        assert plan["created"] == [f"{name}/y"]
        evaluate(http)
        assert any(a["labels"].get("column") == "x" and a["state"]["phase"] == "firing"
                   for a in c.alerts(name))
        assert c.incidents(model=name)[0]["status"] == "triggered"
        assert c.rca(name, start=time.time() - 3600)["suspects"][0]["name"] == "x"
