"""The story's retraining act: drift queues a run, and the gates decide what may serve.

Run 1 is queued by the feature-drift alert; its training window holds the corrupted batch,
so the data gate blocks it and names the rows. The team switches the data gate to quarantine
and retrains by hand, but the labels come from the job with the labelling bug that made
version 2 (``params.label_bug``): the slice gate refuses the candidate on ``amount < 10``.
With the bug fixed, run 3 passes every gate, canaries and is promoted to champion.

Everything is read over REST (``/models/{name}/runs``, ``/runs/{id}``), as a user's script
would: the act only declares the pipeline, queues runs and tells what the runs record.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = ["RetrainingAct", "pipeline"]

#: the booster regularised for a window of a few thousand rows with 1 % fraud
MODEL_PARAMS = {"max_iter": 30, "max_depth": 2, "min_samples_leaf": 200,
                "learning_rate": 0.05}

#: the team's gates once the corrupted batch is known: its rows are dropped, not fatal.
#: With 1 % fraud the holdout holds a few dozen frauds: its ROC AUC is noisy, so the
#: overall comparison asks for strong evidence (alpha) and the train/holdout gap is loose;
#: the slice gate judges decisions on hundreds of rows instead.
QUARANTINE_GATES = {"data_policy": "quarantine", "alpha": 0.001, "max_overfit_gap": 0.35,
                    "latency_budget_ms": 250}


def pipeline(speed: float, **changes: Any) -> dict[str, Any]:
    """The demo model's pipeline; ``changes`` replace whole sections (``gates``, ``params``)."""
    hold = max(5, round(90 / speed))
    return {"entry": "aiwarden.demo.training:train", "params": dict(MODEL_PARAMS),
            # the last hour: a few thousand rows whatever the speed and the history
            "data": {"window": "1h", "min_rows": 500},
            "holdout": {"window": None, "share": 0.3, "seed": 0},
            "triggers": {"on_alerts": ["feature-drift"], "cooldown": "15m"},
            "gates": QUARANTINE_GATES | {"data_policy": "block"},
            "executor": {"time_limit": "10m"},
            "promotion": {"mode": "canary", "share": 0.2, "hold": f"{hold}s"}} | changes


class RetrainingAct:
    """Drives and narrates the runs; ``finished`` once the last run has told its end."""

    def __init__(self, story: Any, model: str) -> None:
        self.story, self.model = story, model
        self.told: set[str] = set()
        self.stage = "waiting"  # -> biased -> after-rollback -> clean -> finished
        self.rolled_back = False
        self.champion: str | None = None

    @property
    def finished(self) -> bool:
        return self.stage == "finished"

    def declare(self, http: httpx.Client) -> None:
        spec = pipeline(self.story.speed)
        http.put(f"/models/{self.model}/pipeline", json=spec).raise_for_status()
        self.story.say(f"A retraining pipeline is declared: a feature-drift alert queues a run; "
                       f"a candidate must pass the data, label, infra, overfit, comparison and "
                       f"slice gates, then serve 20 % of requests for "
                       f"{spec['promotion']['hold']} before it is promoted.")

    def _retrain(self, http: httpx.Client, reason: str, **changes: Any) -> None:
        http.put(f"/models/{self.model}/pipeline",
                 json=pipeline(self.story.speed, **changes)).raise_for_status()
        http.post(f"/models/{self.model}/runs", json={"reason": reason}).raise_for_status()

    def settle(self, http: httpx.Client) -> str:
        """End the story in a state that stays true: the drift alert still fires (the
        campaign goes on), so the pipeline's automatic trigger is switched off and any run
        it queued meanwhile cancelled; otherwise runs would keep training and promoting
        versions after "THE END" with no line in the terminal. The data gate keeps
        quarantining, as the team set it: re-declaring ``block`` made the `aiwarden retrain`
        the ending suggests fail on the corrupted batch, still in the training window
        (outside review). Returns what to tell."""
        spec = pipeline(self.story.speed, gates=QUARANTINE_GATES)
        spec["triggers"] = {**spec["triggers"], "on_alerts": []}
        http.put(f"/models/{self.model}/pipeline", json=spec).raise_for_status()
        cancelled = []
        for run in http.get(f"/models/{self.model}/runs").json():
            if run["state"] in ("queued", "running") and run["trigger"] != "manual":
                http.post(f"/runs/{run['id']}/cancel").raise_for_status()
                cancelled.append(f"#{run['id']}")
        also = f" (cancelled the run it had queued meanwhile: {', '.join(cancelled)})" \
            if cancelled else ""
        return (f"The retraining pipeline's drift trigger is now off{also}, so nothing "
                f"retrains or promotes behind your back; `aiwarden retrain {self.model}` "
                "queues a run by hand (its data gate quarantines the corrupted batch).")

    # -------------------------------------------------------------- watching
    def watch(self, http: httpx.Client) -> None:
        runs = http.get(f"/models/{self.model}/runs").json()
        for run in sorted(runs, key=lambda r: r["id"]):
            self._tell(http, run)
        if self.stage == "after-rollback" and self.rolled_back and not any(
                r["state"] in ("queued", "running") for r in runs):
            self.stage = "clean"
            self.story.say("The labelling job is fixed; the team retrains once more.")
            self._retrain(http, "labels fixed", gates=QUARANTINE_GATES)

    def _once(self, key: str, text: str) -> None:
        if key not in self.told:
            self.told.add(key)
            self.story.say(text)

    def _tell(self, http: httpx.Client, run: dict[str, Any]) -> None:
        n = run["id"]
        if run["trigger"] == "alert":
            rules = ", ".join(run["trigger_detail"].get("rules", []))
            self._once(f"queued:{n}", f"RETRAIN run #{n} queued by the drift alert ({rules}).")
        else:
            self._once(f"queued:{n}", f"RETRAIN run #{n} queued by hand: "
                       f"{run['trigger_detail'].get('reason', '')}.")
        if run["state"] in ("queued", "running") or f"end:{n}" in self.told:
            if run["state"] == "succeeded":
                self._promotion(run)
            return
        self.told.add(f"end:{n}")
        if run["state"] == "blocked":
            self._blocked(run)
        elif run["state"] == "succeeded":
            self.story.say(f"  Run #{n} passes every gate ({self._gates(run)}); version "
                           f"{run['version']} is the challenger: {run['reason']}.")
        else:
            self.story.say(f"  Run #{n} {run['state']}: {run['reason']}")
        if self.stage == "waiting":
            self.stage = "biased"
            self.story.say("The team sets the data gate to quarantine the corrupted rows and "
                           "retrains by hand, with labels from the same job that labelled "
                           "version 2: it marks 90 % of transactions under $10 as fraud "
                           "(the pipeline parameter label_bug simulates it).")
            self._retrain(http, "corrupted rows quarantined", gates=QUARANTINE_GATES,
                          params=MODEL_PARAMS | {"label_bug": 0.9})
        elif self.stage == "biased":
            self.stage = "after-rollback"
        elif self.stage == "clean" and run["state"] != "succeeded":
            self.stage = "finished"

    @staticmethod
    def _gates(run: dict[str, Any]) -> str:
        return ", ".join(g["gate"] for g in run["gates"] if g["passed"])

    def _blocked(self, run: dict[str, Any]) -> None:
        n, gate = run["id"], run["gates"][-1] if run["gates"] else {"gate": "?"}
        if gate["gate"] == "data":
            rows = sorted({p["row"] for p in gate["evidence"].get("problems", [])})
            self.story.say(f"  Run #{n} BLOCKED by the data gate before training: "
                           f"{run['reason']} (rows {rows} of the training window).")
        else:
            passed = self._gates(run)
            self.story.say(f"  Run #{n} BLOCKED by the {gate['gate']} gate: {run['reason']}"
                           f"{' (after passing ' + passed + ')' if passed else ''}.")

    def _promotion(self, run: dict[str, Any]) -> None:
        promo = run["result"].get("promotion") or {}
        if promo.get("state") == "promoted":
            self.champion = run["version"]
            self._once(f"promoted:{run['id']}", f"  Version {run['version']} held its canary "
                       f"for {promo.get('hold')}: PROMOTED to champion (run #{run['id']}).")
            self.stage = "finished"
        elif promo.get("state") == "rolled_back":
            self._once(f"promoted:{run['id']}", f"  Version {run['version']} left its canary "
                       "early: not promoted.")
            self.stage = "finished"
