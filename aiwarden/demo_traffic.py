"""Live demo traffic: a fraud model that serves normally, then drifts.

It talks to the server over HTTP with the SDK, exactly as a user's serving code would:
register the model and its reference, backfill a few hours of history, then send a
batch every few seconds. After ``drift_after`` seconds small and night-time
transactions surge (the seed's "$10" story); labels arrive a minute late; now and
then a corrupted record is sent and lands in quarantine.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

from aiwarden.synthetic import fraud_scenario, transactions

__all__ = ["DEMO_MODEL", "DemoTraffic", "start_demo"]

DEMO_MODEL = "fraud-detector"
log = logging.getLogger("aiwarden.demo")


class DemoTraffic(threading.Thread):
    def __init__(self, url: str, *, api_key: str | None = None, drift_after: float = 180.0,
                 every: float = 2.0, rows_per_tick: int = 25, history_hours: float = 6.0,
                 label_delay: float = 60.0, corrupt_every: int = 60, seed: int = 0) -> None:
        super().__init__(name="aiwarden-demo", daemon=True)
        self.url, self.api_key = url, api_key
        self.drift_after, self.every, self.rows_per_tick = drift_after, every, rows_per_tick
        self.history_hours, self.label_delay = history_hours, label_delay
        self.corrupt_every = corrupt_every
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.stop_event = threading.Event()
        self.sent = 0
        self._waiting: list[tuple[float, pd.DataFrame]] = []
        self._counter = 0

    def _rows(self, n: int, ts: np.ndarray, drifted: bool) -> pd.DataFrame:
        shares = {"small_share": 0.36, "night_share": 0.3} if drifted else {}
        df = self.scenario.score(transactions(n, self.rng, **shares))
        df.insert(0, "prediction_id", [f"tx-{self.seed}-{self._counter + i}" for i in range(n)])
        self._counter += n
        df.insert(1, "timestamp", ts)
        df.insert(2, "latency_ms", np.round(self.rng.lognormal(np.log(8), 0.35, n), 2))
        return df

    def _send(self, client: Any, df: pd.DataFrame) -> None:
        labels = df[["prediction_id", "is_fraud"]].rename(columns={"is_fraud": "label"})
        client.log_predictions(DEMO_MODEL, df.drop(columns=["is_fraud"]))
        self._waiting.append((time.time() + self.label_delay, labels))
        self.sent += len(df)

    def _flush_labels(self, client: Any, force: bool = False) -> None:
        due = [lab for at, lab in self._waiting if force or at <= time.time()]
        self._waiting = [(at, lab) for at, lab in self._waiting if not (force or at <= time.time())]
        if due:
            client.log_labels(DEMO_MODEL, pd.concat(due, ignore_index=True))

    def _register(self, client: Any) -> bool:
        """Register the model on first run; False when it exists (a restart)."""
        if any(m["name"] == DEMO_MODEL for m in client.list_models()):
            return False
        client.create_model(DEMO_MODEL, task="binary",
                            description="Demo: card fraud scores; drifts a few minutes in.")
        ref = self.scenario.reference
        client.upload_reference(DEMO_MODEL, "v1", ref, target="is_fraud",
                                prediction="prediction", scores=["score"])
        # Besides the defaults: one alert per feature, quick enough to see in a demo.
        client.put_rule(DEMO_MODEL, "feature-drift", {
            "metric": "drift", "column": "*", "window": "15m", "critical": 1.0, "for": "1m",
            "runbook": "Compare the feature's recent distribution with the reference; check "
                       "the upstream pipeline; run `aiwarden rca fraud-detector --start=-1h`."})
        return True

    def _backfill(self, client: Any) -> None:
        now = time.time()
        n = int(self.history_hours * 60 * self.rows_per_tick * 60 / self.every / 60)
        ts = np.sort(self.rng.uniform(now - self.history_hours * 3600, now - 60, n))
        df = self._rows(n, ts, drifted=False)
        client.log_predictions(DEMO_MODEL, df.drop(columns=["is_fraud"]))
        old = df[df["timestamp"] < now - self.label_delay]
        client.log_labels(DEMO_MODEL, old[["prediction_id", "is_fraud"]].rename(
            columns={"is_fraud": "label"}))
        self.sent += n

    def run(self) -> None:
        from aiwarden.sdk import Client

        try:
            self.scenario = fraud_scenario(seed=self.seed, n_train=20_000, n_batch=20_000)
            with Client(self.url, api_key=self.api_key) as client:
                if self._register(client):
                    self._backfill(client)
                started = time.time()
                log.warning("demo traffic: %s receives a batch every %.0f s; drift starts in "
                            "%.0f s", DEMO_MODEL, self.every, self.drift_after)
                tick = 0
                while not self.stop_event.wait(self.every):
                    tick += 1
                    drifted = time.time() - started > self.drift_after
                    ts = np.full(self.rows_per_tick, time.time())
                    df = self._rows(self.rows_per_tick, ts, drifted)
                    if tick % self.corrupt_every == 0:  # a corrupted record now and then
                        df["amount"] = df["amount"].astype(object)
                        df.loc[df.index[0], "amount"] = "N/A"
                    self._send(client, df)
                    self._flush_labels(client)
        except Exception:
            log.exception("demo traffic stopped")


def start_demo(url: str, **kw: Any) -> DemoTraffic:
    demo = DemoTraffic(url, **kw)
    demo.start()
    return demo
