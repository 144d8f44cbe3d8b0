"""`aiwarden demo`: the whole loop in a few minutes, told in the terminal and on the dashboard.

A fraud model (version 1, champion) answers live requests through the gateway; labels
arrive late; a corrupted batch from an upstream job is caught; small and night-time
transactions surge (drift) and the on-call looks into it; then version 2, retrained on
badly labelled data, is canaried on a share of the traffic. It is wrong about small
transactions: its accuracy alert fires, the incident's root-cause analysis names the
``amount < 10`` slice, and the automatic rollback sends all traffic back to version 1.
Meanwhile the drift alert has queued a retraining run (aiwarden.demo.retraining): the data
gate blocks it on the corrupted batch, the slice gate refuses a candidate trained with the
labelling bug, and a clean candidate canaries and is promoted to champion.

Everything goes through the public API (SDK and HTTP), as a user's own code would.
``speed`` compresses the schedule (tests run it at 10x).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import httpx
import numpy as np
import pandas as pd

from aiwarden.demo.models import FEATURES, fit_versions
from aiwarden.demo.narration import Narrator
from aiwarden.demo.retraining import RetrainingAct
from aiwarden.demo.synthetic import transactions

__all__ = ["DEMO_MODEL", "Story", "start_story"]

DEMO_MODEL = "fraud-detector"
log = logging.getLogger("aiwarden.demo")
# seconds after the start (divided by ``speed``)
SCHEDULE = {"corrupt": 40.0, "drift": 60.0, "canary": 210.0, "label_delay": 30.0}
RULES = """rules:
  - name: feature-drift
    model: {model}
    metric: drift
    column: "*"
    window: 15m
    critical: 1.0
    for: {minute}s
    runbook: Compare the feature's recent distribution with the reference; check the
      upstream pipeline; run `aiwarden rca {model} --start=-1h`.
  - name: canary-accuracy
    model: {model}
    metric: performance
    stat: accuracy
    window: 15m
    op: "<"
    warning: 0.95
    critical: 0.9
    for: {minute}s
    no_data: OK
    runbook: A version that answers worse on labelled traffic than the champion; the
      rollback policy sends its traffic back. Look at its failing slices in the RCA.
rollback_policies:
  - {{model: {model}, severity: critical, rules: [canary-accuracy], verify_for: {verify}s}}
"""


class Story(Narrator, threading.Thread):
    def __init__(self, url: str, *, api_key: str | None = None, speed: float = 1.0,
                 out: TextIO | None = None, rows_per_tick: int = 20, seed: int = 0,
                 history_hours: float = 6.0) -> None:
        super().__init__(name="aiwarden-demo", daemon=True)
        self.url, self.api_key, self.speed = url, api_key, speed
        self.out = out or sys.stdout
        self.rows_per_tick, self.seed, self.history_hours = rows_per_tick, seed, history_hours
        self.rng = np.random.default_rng(seed)
        self.stop_event = threading.Event()
        self.done = threading.Event()  # the retrained version is promoted: the story is told
        self.act = RetrainingAct(self, DEMO_MODEL)
        self._rolled: int | None = None  # the incident of the rollback
        self.verified: str | None = None  # the rollback's verification, once told
        self.ended_at: float | None = None
        self.events: list[str] = []  # the narrative, for tests
        self.served = {"1": 0, "2": 0}
        self._labels: list[tuple[float, pd.DataFrame]] = []
        self._n = 0
        self._seen: set[str] = set()
        self._flagged: list[tuple[str, float]] = []  # honest small purchases v2 flagged
        self.fitting = False  # training its two models, which no stop can interrupt

    # ----------------------------------------------------------------- telling
    def say(self, text: str) -> None:
        if self.done.is_set() and not text.startswith("THE END"):
            return  # the story is told: the ending stays the last word
        self.narrate(text)

    def _status(self, firing: int, incidents: int) -> None:
        self.status(f"served v1 {self.served['1']:,}  v2 {self.served['2']:,}  |  alerts "
                    f"firing {firing}  |  open incidents {incidents}")

    def at(self, key: str) -> float:
        return SCHEDULE[key] / self.speed

    # ------------------------------------------------------------------ setup
    def _backfill(self, c: Any) -> None:
        now = time.time()
        n = int(self.history_hours * 3600 / 4)  # one transaction every 4 s
        df = self._score(transactions(n, self.rng), "1")
        df["timestamp"] = np.sort(self.rng.uniform(now - self.history_hours * 3600, now - 60, n))
        df["prediction_id"] = [f"h-{i}" for i in range(n)]
        df["latency_ms"] = np.round(self.rng.lognormal(np.log(self._model_ms()), 0.3, n), 2)
        c.log_predictions(DEMO_MODEL, df.drop(columns=["is_fraud"]), version="1")
        c.log_labels(DEMO_MODEL, df[["prediction_id", "is_fraud"]].rename(
            columns={"is_fraud": "label"}))

    def _model_ms(self) -> float:
        """What the gateway will measure for one request (history should look alike, or the
        latency rule would compare live requests with made-up numbers)."""
        x = transactions(self.rows_per_tick, self.rng)[FEATURES]
        times = []
        for _ in range(7):
            t0 = time.perf_counter()
            self._good.predict_proba(x)
            times.append((time.perf_counter() - t0) * 1000)
        return float(np.median(times))

    def _score(self, df: pd.DataFrame, version: str) -> pd.DataFrame:
        from aiwarden.demo.models import score

        return score(self._good if version == "1" else self._bad, df)

    # ---------------------------------------------------------------- traffic
    def _tick(self, http: httpx.Client, drifted: bool) -> None:
        shares = {"small_share": 0.36, "night_share": 0.3} if drifted else {}
        df = transactions(self.rows_per_tick, self.rng, **shares)
        ids = [f"tx-{self._n + i}" for i in range(len(df))]
        self._n += len(df)
        rows = [{"prediction_id": pid, "features": {k: (v.item() if hasattr(v, "item") else v)
                                                     for k, v in zip(FEATURES, r, strict=True)}}
                for pid, r in zip(ids, df[FEATURES].itertuples(index=False), strict=True)]
        answer = http.post(f"/models/{DEMO_MODEL}/predict", json={"rows": rows})
        answer.raise_for_status()
        for a, amount, fraud in zip(answer.json()["predictions"], df["amount"],
                                    df["is_fraud"], strict=True):
            self.served[a["version"]] = self.served.get(a["version"], 0) + 1
            if a["version"] == "2" and a["prediction"] == 1 and not fraud and amount < 10:
                self._flagged.append((a["prediction_id"], float(amount)))
        labels = pd.DataFrame({"prediction_id": ids, "label": df["is_fraud"].to_numpy()})
        self._labels.append((time.time() + self.at("label_delay"), labels))

    def _send_labels(self, c: Any) -> None:
        now = time.time()
        due = [lab for at, lab in self._labels if at <= now]
        self._labels = [(at, lab) for at, lab in self._labels if at > now]
        if due:
            c.log_labels(DEMO_MODEL, pd.concat(due, ignore_index=True))

    def _corrupt(self, c: Any) -> None:
        """An upstream batch job logs a broken batch straight to monitoring."""
        df = self._score(transactions(30, self.rng), "1")
        labels = df["is_fraud"].to_numpy()
        df = df.drop(columns=["is_fraud"])
        df["prediction_id"] = [f"batch-{i}" for i in range(len(df))]
        df["timestamp"] = time.time()
        df.loc[df.index[1:5], "amount"] *= -1  # a sign flipped upstream
        df.loc[df.index[5:7], "country"] = "XX"
        df["amount"] = df["amount"].astype(object)
        df.loc[df.index[0], "amount"] = "N/A"
        res = c.log_predictions(DEMO_MODEL, df, version="1")
        # its labels come with it (chargebacks): the batch lands in the training window
        c.log_labels(DEMO_MODEL, pd.DataFrame({"prediction_id": df["prediction_id"][1:],
                                               "label": labels[1:]}))
        self.say(f"An upstream batch arrives corrupted (text and negative values in amount, "
                 f"an unseen country XX): {res['quarantined']} row quarantined, "
                 f"{res['accepted']} accepted; the data-quality rule will name the rest.")

    def _canary(self, c: Any, http: httpx.Client) -> None:
        c.register_version(DEMO_MODEL, self._bad, trust=True, metadata={
            "description": "retrained on last month's labels", "metrics": {"accuracy": 0.97}})
        c.upload_reference(DEMO_MODEL, "2", self.ref2, target="is_fraud",
                           prediction="prediction", scores=["score"])
        c.set_alias(DEMO_MODEL, "challenger", "2", "retrained; offline accuracy 0.97")
        http.put(f"/models/{DEMO_MODEL}/traffic", json={
            "mode": "canary", "percent": 30, "challenger": "@challenger",
            "reason": "try version 2 on 30 % of the traffic"}).raise_for_status()
        self.say("Version 2 (retrained) goes out as a canary: 30 % of requests. Its labels "
                 "came from card-testing bursts that marked small purchases as fraud...")

    # -------------------------------------------------------------- watching
    def _watch(self, http: httpx.Client) -> None:
        alerts = http.get(f"/models/{DEMO_MODEL}/alerts", params={"events": 0}).json()
        firing = [a for a in alerts if a["state"].get("phase") == "firing"]
        for a in firing:  # the first alert of each rule and version is news
            key = f"alert:{a['labels']['rule']}:{a['labels']['version']}"
            if key not in self._seen:
                self._seen.add(key)
                value = a["state"].get("value")
                shown = "" if value is None else f" (value {value:.3g})"
                self.say(f"ALERT firing: {a['labels']['rule']} on version "
                         f"{a['labels']['version']}"
                         f"{' column ' + a['labels']['column'] if 'column' in a['labels'] else ''}"
                         f"{shown}")
        incidents = http.get("/incidents", params={"model": DEMO_MODEL}).json()
        for inc in sorted(incidents, key=lambda i: i["id"]):
            self._incident(http, inc)
        self.act.watch(http)
        if self.act.finished and self._rolled is not None and self.verified \
                and not self.done.is_set():
            settled = self.act.settle(http)  # before the ending, so that it stays true
            self.ended_at = time.time()  # what fired by now is told (tests compare)
            settled += self.still_firing(http)
            self.done.set()
            self.say(self.ending(self._rolled, settled))
        self._status(len(firing), sum(1 for i in incidents if i["status"] in (
            "triggered", "acknowledged", "mitigated")))

    def _incident(self, http: httpx.Client, inc: dict[str, Any]) -> None:
        key = f"incident:{inc['id']}"
        if key not in self._seen:
            self._seen.add(key)
            self.say(f"INCIDENT #{inc['id']} opened: {inc['title']} ({self.url}/incidents/"
                     f"{inc['id']})")
        full = http.get(f"/incidents/{inc['id']}").json()
        for e, text in self.new_actions(full["timeline"], inc["id"]):
            if text == "Root-cause analysis":
                top = (e["detail"].get("suspects") or [{}])[0]
                again = f"rca:{inc['id']}" in self._seen
                self._seen.add(f"rca:{inc['id']}")
                self.say(f"  RCA #{inc['id']}{' redone as new alerts joined' if again else ''}: "
                         f"top suspect {top.get('kind')} "
                         f"'{top.get('name')}': {top.get('summary', '')[:110]}")
                if any(x.get("kind") == "slice" and "amount" in str(x.get("name"))
                       for x in (e["detail"].get("suspects") or [])[:3]) \
                        and f"why:{inc['id']}" not in self._seen:
                    self._seen.add(f"why:{inc['id']}")  # in its own thread: a first
                    threading.Thread(target=self._why, args=(inc["id"],),  # explanation
                                     daemon=True).start()  # compiles shap's code
            elif text.startswith("Rolled") or text.startswith("Rollback"):
                self.say(f"  {text}")
                if text.startswith("Rolled") and self._rolled is None:
                    self._rolled = inc["id"]
                    self.act.rolled_back = True
                elif text.startswith("Rollback") and inc["id"] == self._rolled:
                    self._verdict(http, inc, text)
        self._on_call(http, inc)

    def _verdict(self, http: httpx.Client, inc: dict[str, Any], text: str) -> None:
        """The rollback's verification is in: a recovered rollback ends the incident (the
        on-call resolves it, as its cause no longer serves: version 2's alerts would keep
        it open until its bad labels leave their windows, a day for realised-roc_auc);
        otherwise it stays open and the story says what is left to do (outside review)."""
        self.verified = text
        if not text.startswith("Rollback verified"):
            self.say(f"  Incident #{inc['id']} stays open: look at version 1's alerts and "
                     f"resolve it by hand (`aiwarden incidents resolve {inc['id']}`).")
            return
        if inc["status"] in ("resolved", "declined"):
            return
        http.post(f"/incidents/{inc['id']}/resolve", json={
            "note": "Version 2 was rolled back and the rollback verified: version 1 is back "
                    "within its threshold. Version 2 serves nothing now; its alerts fire on "
                    "its last labelled data until that leaves their windows."}
                  ).raise_for_status()
        self.say(f"  The on-call resolves incident #{inc['id']}: the rollback is verified; "
                 "version 2's alerts describe a version that no longer serves.")

    def _why(self, incident: int) -> None:
        """Explain one honest small purchase version 2 flagged: what made it say fraud."""
        flagged = dict(self._flagged[-20:])  # the gateway may not have logged the newest
        if not flagged:
            return
        try:
            with httpx.Client(base_url=self.url + "/api/v1", timeout=180, headers={
                    "Authorization": f"Bearer {self.api_key}"} if self.api_key else {}) as h:
                r = h.post(f"/models/{DEMO_MODEL}/explain",
                           json={"prediction_ids": list(flagged)})
        except httpx.HTTPError as exc:
            self.say(f"  (no explanation of incident #{incident}'s purchases: {exc})")
            return
        if r.status_code != 200:  # e.g. the explain extra is not installed: say why
            try:
                why = str(r.json()["detail"]["message"])
            except (ValueError, KeyError, TypeError):  # not the API's error body
                why = f"HTTP {r.status_code}"
            self.say(f"  (no explanation: {why[:120]})")
            return
        if not r.json()["explanations"]:
            return
        e = r.json()["explanations"][0]
        pid, amount = e["prediction_id"], flagged[e["prediction_id"]]
        top = ", ".join(f"{c['feature']} {c['contribution']:+.2f}"
                        for c in e["contributions"][:3])
        self.say(f"  WHY did version 2 flag {pid}, an honest ${amount:.2f} purchase? "
                 f"{e['method']} SHAP of the fraud probability {e['output']:.2f} (base "
                 f"{e['base_value']:.2f}): {top}. ({self.url}/models/{DEMO_MODEL}/"
                 f"predictions/{pid})")

    def ending(self, incident: int | None, settled: str = "") -> str:
        """The last beat: the story is over, what keeps happening, and where to look next."""
        now = (f"version {self.act.champion}, retrained by the pipeline and gated, is the "
               "champion" if self.act.champion else "version 1 serves all traffic again")
        return (f"THE END: the story is over. Version 2 was rolled back automatically and "
                f"{now}.{' ' + settled if settled else ''}\n  Look next at: incident #{incident} "
                f"{self.url}/incidents/{incident} (timeline, RCA, the rollback and its "
                f"verification), the model page {self.url}/models/{DEMO_MODEL} (drift, "
                f"performance, versions, training runs), or `aiwarden incidents show "
                f"{incident} --url {self.url}`.\n  Traffic keeps flowing so the charts stay "
                "live; Ctrl-C stops the demo.")

    def still_firing(self, http: httpx.Client) -> str:
        """The alerts still firing at the end, by version, each with the incident that holds
        it: the ending says what the dashboard shows (outside review: it said nothing of
        version 3's alerts, and the reader took the story's end for an all-clear)."""
        alerts = [a for a in http.get(f"/models/{DEMO_MODEL}/alerts",
                                      params={"events": 0}).json()
                  if a["state"].get("phase") == "firing"]
        if not alerts:
            return " No alert fires."
        held: dict[str, tuple[int, str]] = {}  # labels -> newest incident holding them
        for inc in sorted(http.get("/incidents", params={"model": DEMO_MODEL}).json(),
                          key=lambda i: i["id"]):
            for a in http.get(f"/incidents/{inc['id']}").json()["alerts"]:
                held[repr(sorted(a["labels"].items()))] = (inc["id"], inc["status"])
        serving = http.get(f"/registry/models/{DEMO_MODEL}/aliases").json().get("champion")
        by_version: dict[str, dict[str, str]] = {}
        for a in alerts:
            inc = held.get(repr(sorted(a["labels"].items())))
            by_version.setdefault(a["labels"].get("version", "?"), {})[a["labels"]["rule"]] = (
                f" (incident #{inc[0]}, {inc[1]})" if inc else "")
        parts = []
        for v in sorted(by_version, key=lambda v: (v != serving, v)):
            rules = ", ".join(f"{r}{i}" for r, i in sorted(by_version[v].items()))
            why = ("the champion" if v == serving else "serves nothing now; they clear as "
                   "its data leaves the rules' windows")
            parts.append(f"version {v} ({why}): {rules}")
        return "\n  Still firing, as on the dashboard: " + "; ".join(parts) + "."

    def _on_call(self, http: httpx.Client, inc: dict[str, Any]) -> None:
        """The on-call acknowledges the drift incident: a campaign, expected."""
        if "drift" not in inc["title"] or f"ack:{inc['id']}" in self._seen \
                or inc["status"] != "triggered":
            return
        self._seen.add(f"ack:{inc['id']}")
        http.post(f"/incidents/{inc['id']}/acknowledge", json={
            "note": "Marketing ran a small-purchase campaign; the drift is real and expected. "
                    "Version 1 still scores well: the CBPE estimate and the labels agree."})
        self.say(f"  The on-call acknowledges incident #{inc['id']}: a campaign brought more "
                 "small, late-night purchases; version 1 copes (see realised vs estimated).")

    # ------------------------------------------------------------------ run
    def run(self) -> None:
        from aiwarden.sdk import Client

        self.started = time.time()
        try:
            with Client(self.url, api_key=self.api_key) as c, httpx.Client(
                    base_url=self.url + "/api/v1", timeout=60,
                    headers={"Authorization": f"Bearer {self.api_key}"}
                    if self.api_key else {}) as http:
                self.say("Training two fraud models (a few seconds)...")
                self.fitting = True
                self._good, self._bad, self.ref1, self.ref2 = fit_versions(self.seed)
                self.fitting = False
                self._setup_registered(c, http)
                self.started = time.time()
                self._loop(c, http)
        except Exception:
            if self.stop_event.wait(2.0):  # the server shut down under it: no error
                return
            log.exception("the demo story stopped")
            self.say("The demo story stopped on an error (see the log); the server goes on.")

    def _setup_registered(self, c: Any, http: httpx.Client) -> None:
        if any(m["name"] == DEMO_MODEL for m in c.list_models()):
            self.say(f"{DEMO_MODEL} exists already (a restart): the story goes on from here.")
            return
        c.register_version(DEMO_MODEL, self._good, task="binary", trust=True, metadata={
            "description": "gradient boosting on honest labels", "tags": {"team": "risk"}})
        c.promote(DEMO_MODEL, "1", reason="first release")
        c.upload_reference(DEMO_MODEL, "1", self.ref1, target="is_fraud",
                           prediction="prediction", scores=["score"])
        http.post("/rules/apply", content=RULES.format(
            model=DEMO_MODEL, minute=max(1, round(60 / self.speed)),
            verify=max(1, round(120 / self.speed)))).raise_for_status()
        self._backfill(c)
        self.say(f"{DEMO_MODEL} version 1 is the champion, serving through the gateway; "
                 f"{self.history_hours:g} h of history backfilled; labels arrive "
                 f"{self.at('label_delay'):.0f} s late. Dashboard: {self.url}/")
        self.act.declare(http)

    def _loop(self, c: Any, http: httpx.Client) -> None:
        steps: dict[str, Callable[[], None]] = {
            "corrupt": lambda: self._corrupt(c),
            "drift": lambda: self.say("Small and night-time transactions surge (a campaign): "
                                      "the amount and hour features start to drift."),
            "canary": lambda: self._canary(c, http)}
        pending = dict(steps)
        tick = 0
        while not self.stop_event.wait(1.0 / self.speed):
            elapsed = time.time() - self.started
            for name in [n for n in pending if elapsed >= self.at(n)]:
                pending.pop(name)()
            self._tick(http, drifted=elapsed >= self.at("drift"))
            self._send_labels(c)
            tick += 1
            if tick % 2 == 0:
                self._watch(http)


def start_story(url: str, **kw: Any) -> Story:
    story = Story(url, **kw)
    story.start()
    return story
