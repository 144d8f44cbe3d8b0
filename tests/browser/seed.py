"""Demo-like data for the browser tests, loaded over the API in ~15 s.

``fraud-detector`` (the demo's model, from ``aiwarden.synthetic``) served six hours of
normal traffic, then small and night-time transactions surged for the last 45 minutes;
labels arrive two minutes late, one corrupted record is quarantined, a few predictions
failed, and the serving process reported CPU and memory. Its champion alias moved from
version 1 to version 2 (the one serving), so there is something to roll back. Alert
evaluations at three moments open incidents with their RCA attached. ``credit-scorer``
is healthy; ``new-model`` has no data yet.

Run it by hand to look at the dashboard: ``python -m tests.browser.seed``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from aiwarden.demo.synthetic import fraud_scenario, transactions

FRAUD = "fraud-detector"
DRIFTED = ("amount", "hour")  # what the surge moves (the seed's "$10" story)


def _frame(scen: Any, rng: np.random.Generator, n: int, t0: float, t1: float, drifted: bool,
           prefix: str) -> pd.DataFrame:
    shares = {"small_share": 0.36, "night_share": 0.45} if drifted else {}
    df = scen.score(transactions(n, rng, **shares))
    df.insert(0, "prediction_id", [f"{prefix}-{i}" for i in range(n)])
    df.insert(1, "timestamp", np.sort(rng.uniform(t0, t1, n)))
    df.insert(2, "latency_ms", np.round(rng.lognormal(np.log(8), 0.35, n), 2))
    df.insert(3, "error", rng.random(n) < 0.004)
    return df


def _calibrated(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """A well-calibrated scorer whose production looks like its reference: stays OK."""
    income = rng.normal(0.0, 1.0, n)
    score = 1 / (1 + np.exp(-2 * income))
    return pd.DataFrame({"income": income, "region": rng.choice(["north", "south"], n),
                         "score": score, "prediction": (score > 0.5).astype(int),
                         "is_fraud": (rng.random(n) < score).astype(int)})


def _tiny_model() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])


def _send(client: Any, name: str, df: pd.DataFrame, now: float) -> None:
    client.log_predictions(name, df.drop(columns=["is_fraud"]))
    late = df[df["timestamp"] < now - 120]
    client.log_labels(name, late[["prediction_id", "is_fraud"]].rename(
        columns={"is_fraud": "label"}))


def seed(url: str, api_key: str | None = None, now: float | None = None) -> dict[str, Any]:
    """Load the story into the server at ``url``; returns what the tests check against."""
    from aiwarden.sdk import Client

    now = time.time() if now is None else now
    rng = np.random.default_rng(7)
    scen = fraud_scenario(seed=0, n_train=4000, n_batch=4000)
    hints = {"target": "is_fraud", "prediction": "prediction", "scores": ["score"]}
    with Client(url, api_key=api_key, timeout=120) as c:
        for v, reason in (("1", "first release"), ("2", "retrained on last month")):
            c.register_version(FRAUD, _tiny_model(), version=v, task="binary",
                               metadata={"metrics": {"auc": 0.91 if v == "1" else 0.93}})
            c.upload_reference(FRAUD, v, scen.reference, **hints)
            c.promote(FRAUD, v, reason=reason)
        c.put_rule(FRAUD, "feature-drift", {
            "metric": "drift", "column": "*", "window": "15m", "critical": 1.0, "for": "1m",
            "runbook": "https://runbooks.example/aiwarden/feature-drift"})
        _send(c, FRAUD, _frame(scen, rng, 4000, now - 6 * 3600, now - 2700, False, "a"), now)
        _send(c, FRAUD, _frame(scen, rng, 1500, now - 2700, now - 5, True, "b"), now)
        bad = _frame(scen, rng, 1, now - 600, now - 599, True, "bad")
        bad["amount"] = bad["amount"].astype(object)
        bad.loc[bad.index[0], "amount"] = "N/A"
        c.log_predictions(FRAUD, bad.drop(columns=["is_fraud"]))
        c.log_resources(FRAUD, [{"timestamp": t, "cpu_percent": 35 + 10 * np.sin(t / 3000),
                                 "rss_bytes": 420e6 + 1e5 * (t - now + 6 * 3600) / 60}
                                for t in np.arange(now - 6 * 3600, now, 300.0)])

        c.create_model("credit-scorer", task="binary", description="Healthy all along.")
        c.upload_reference("credit-scorer", "v1", _calibrated(rng, 4000), **hints)
        live = _calibrated(rng, 900)
        live.insert(0, "prediction_id", [f"c-{i}" for i in range(len(live))])
        live.insert(1, "timestamp", np.sort(rng.uniform(now - 3 * 3600, now - 5, len(live))))
        _send(c, "credit-scorer", live, now)
        c.create_model("new-model", task="binary", description="Registered, no traffic yet.")

        for at in (now - 660, now - 120, now):
            out = c._json("POST", "/alerts/evaluate", params={"now": at})
            assert out["evaluated"], "the evaluator lease was held elsewhere"
        incidents = c.incidents(FRAUD)
    return {"now": now, "incidents": [i["id"] for i in incidents]}


if __name__ == "__main__":  # a dev server with the story, for looking by hand
    import tempfile
    from pathlib import Path

    from tests.server.live import ThreadServer, settings_for

    tmp = Path(tempfile.mkdtemp(prefix="aiwarden-dash-"))
    settings = settings_for(f"sqlite:///{tmp / 'dash.db'}", tmp, evaluate_every=0.0)
    with ThreadServer(settings) as srv:
        started = time.perf_counter()
        print(seed(srv.url), f"in {time.perf_counter() - started:.1f} s")
        print(f"dashboard at {srv.url}/  (Ctrl-C stops)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
