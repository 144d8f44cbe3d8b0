"""`aiwarden demo --story fruit`: a self-checkout kiosk's fruit classifier, a lighting change
in one store, bananas called cucumbers, the alert, the RCA, and a corrupted training image
caught by the retraining pipeline's image audit.

FreshCo's self-checkout kiosks photograph the fruit on the scale and a classifier names it
(``kiosk-fruit``; drawn bananas and cucumbers, :mod:`aiwarden.images.synthetic`, no
downloads). The model is a small gradient-boosted classifier over the image properties
aiwarden computes (colour histograms, brightness, contrast...): it was trained on well-lit
photographs. Every kiosk sends each photograph to ``POST /models/{m}/images`` with its store
and the predicted fruit; the customer's correction at the till arrives as the label. Then
the ``harbour`` store replaces its lights with dim warm ones: its photographs darken, its
bananas are called cucumbers, the ``bananas-called-cucumbers`` confusion rule fires, and the
incident's root-cause analysis names the store and the low brightness. The team collects a
new training set with the dark photographs, correctly labelled; one upload was cut off half
way, and the retraining pipeline's image audit blocks the run and names the file before
anything trains.

Everything goes through the public HTTP API, as a kiosk's own code would. ``speed``
compresses the schedule (tests run it faster).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import httpx
import numpy as np

from aiwarden.demo.narration import ServerStory

__all__ = ["CORRUPT_NAME", "DARK_STORE", "FRUIT_ENTRY", "FRUIT_MODEL", "FruitStory",
           "KioskModel", "kiosk_features", "start_fruit_story", "train"]

FRUIT_MODEL = "kiosk-fruit"
FRUIT_ENTRY = "aiwarden.demo.fruit:train"  # the retraining pipeline's training function
STORES = ("north", "station", "harbour")
DARK_STORE = "harbour"
DARK_LIGHT = 0.45  # the dim lights: a scene's pixel values scaled by this
SIZE = 96  # pixels: a kiosk's thumbnail-sized crop keeps the demo light on a laptop
CORRUPT_NAME = "banana_harbour_0007.jpg"  # the upload cut off half way
#: the image properties the kiosk team monitors (the reference's columns; the server ignores
#: the others): the lighting (brightness), the colour (saturation) and the detail (entropy).
#: Contrast and sharpness scale with the light too: monitored, they give the RCA's slice
#: finder several names for the same dark photographs, and it may pick any one of them.
SCHEMA_PROPERTIES = ("brightness", "saturation", "entropy")
SCHEDULE = {"lights": 20.0}  # seconds after the start (divided by ``speed``)
log = logging.getLogger("aiwarden.demo")
RULES = """rules:
  - name: bananas-called-cucumbers
    model: {model}
    metric: confusion
    pair: banana->cucumber
    stat: rate
    window: 10m
    op: ">"
    warning: 0.1
    critical: 0.2
    min_labels: 40
    runbook: A share of the bananas weighed at the kiosks was named cucumber. Look at the
      incident's RCA (which store, which image properties) and the gallery of misclassified
      photographs; retrain on photographs from the affected stores.
"""


def kiosk_features(columns: Any) -> list[str]:
    """The properties the kiosk model reads: colour histograms and the colour means."""
    return [c for c in columns if c.startswith("hist_")] + [
        "brightness", "contrast", "saturation", "mean_r", "mean_g", "mean_b"]


class KioskModel:
    """The kiosk's classifier: gradient-boosted trees over image properties (colour
    histograms and the like), as a kiosk without a GPU might run. Trained on well-lit
    photographs, it has never seen a dark banana: it calls one a cucumber."""

    def __init__(self, model: Any, features: list[str]) -> None:
        self.model, self.features = model, features

    @classmethod
    def fit(cls, images: list[bytes], labels: list[str], seed: int = 0) -> KioskModel:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from threadpoolctl import threadpool_limits

        from aiwarden.images import properties

        table = properties(images).to_pandas()
        features = kiosk_features(table.columns)
        with threadpool_limits(1):  # OpenMP on a busy small machine is slower, not faster
            model = HistGradientBoostingClassifier(max_iter=50, random_state=seed).fit(
                table[features], np.asarray(labels))
        return cls(model, features)

    def predict(self, table: Any) -> list[str]:
        """Predicted fruit of each row of a properties table (pandas)."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return [str(p) for p in self.model.predict(table[self.features])]


def train(ctx: Any) -> Any:
    """The pipeline's training function: the kiosk model refitted on the audited image
    folder (``ctx.images``: ``train/<label>/<file>``), saved with skops. It runs only after
    the image audit passed, so every file it reads decodes."""
    try:
        import skops.io as sio
    except ImportError:
        raise ImportError("The demo's training saves skops files: pip install "
                          "'aiwarden[registry]'") from None
    from aiwarden.training.contract import TrainingResult

    root = Path(str(ctx.images)) / "train"
    files = sorted(p for p in root.glob("*/*") if p.is_file())
    model = KioskModel.fit([p.read_bytes() for p in files], [p.parent.name for p in files])
    with open(ctx.path("model.skops"), "wb") as f:
        f.write(sio.dumps(model.model))
    print(f"trained on {len(files)} images of {sorted({p.parent.name for p in files})}")
    return TrainingResult("model.skops", format="skops")


class FruitStory(ServerStory, threading.Thread):
    """The story against a server at ``url``; the next training set is written under
    ``training_dir`` (a folder the server can read: the demo's data directory)."""

    SETUP_LINE = ("Setting up the fruit kiosks: the classifier, its reference "
                  "photographs, the confusion rule and an hour of shoppers...")

    def __init__(self, url: str, training_dir: str | Path, *, api_key: str | None = None,
                 speed: float = 1.0, out: TextIO | None = None, images_per_tick: int = 6,
                 seed: int = 0, history_minutes: float = 60.0, reference_images: int = 240,
                 training_images: int = 40) -> None:
        super().__init__(name="aiwarden-demo-fruit", daemon=True)
        self.url, self.api_key, self.speed = url, api_key, speed
        self.training_dir = Path(training_dir)
        self.out = out or sys.stdout
        self.images_per_tick, self.seed = images_per_tick, seed
        self.history_minutes, self.reference_images = history_minutes, reference_images
        self.training_images = training_images
        self.rng = np.random.default_rng(seed)
        self.stop_event = threading.Event()
        self.done = threading.Event()  # the run was blocked by the image audit
        self.fitting = True  # training the kiosk model: Ctrl-C does not wait for it
        self.events: list[str] = []  # the narrative, for tests
        self.sent: dict[str, int] = {s: 0 for s in STORES}
        self.called_cucumber: dict[str, int] = {s: 0 for s in STORES}  # true bananas
        self.rca: dict[str, Any] | None = None
        self.run_id: int | None = None
        self.incident: int | None = None
        self._n = 0
        self._seen: set[str] = set()
        self._lights_changed = False
        self.model: KioskModel | None = None

    def say(self, text: str) -> None:
        self.narrate(text)

    def at(self, key: str) -> float:
        return SCHEDULE[key] / self.speed

    # ------------------------------------------------------------- photographs
    def _photographs(self, n: int, dark_store: bool) -> list[dict[str, Any]]:
        """``n`` shoppers' fruit, one store after the other: truth, store and JPEG."""
        from aiwarden.images.synthetic import fruit_jpeg

        out = []
        for _ in range(n):
            self._n += 1
            store = STORES[self._n % len(STORES)]
            kind = str(self.rng.choice(("banana", "cucumber")))
            light = DARK_LIGHT if dark_store and store == DARK_STORE else 1.0
            out.append({"id": f"k{self.seed}-{self._n}", "store": store, "truth": kind,
                        "jpeg": fruit_jpeg(kind, self.rng, SIZE, light)})
        return out

    def _send(self, http: httpx.Client, shots: list[dict[str, Any]],
              times: list[float] | None = None) -> None:
        """What a kiosk does: predict, log the photograph with its store and prediction,
        then the label the customer confirms at the till."""
        from aiwarden.images import properties

        assert self.model is not None
        preds = self.model.predict(properties([s["jpeg"] for s in shots]).to_pandas())
        now = time.time()
        metas = [{"prediction_id": s["id"], "prediction": p, "features": {"store": s["store"]},
                  "timestamp": now if times is None else times[i]}
                 for i, (s, p) in enumerate(zip(shots, preds, strict=True))]
        r = http.post(f"/models/{FRUIT_MODEL}/images", files=[
            ("files", (f"{s['id']}.jpg", s["jpeg"], "image/jpeg")) for s in shots],
            data={"metadata": json.dumps(metas)})
        r.raise_for_status()
        http.post(f"/models/{FRUIT_MODEL}/labels", json=[
            {"prediction_id": s["id"], "label": s["truth"]} for s in shots]).raise_for_status()
        if times is None:
            for s, p in zip(shots, preds, strict=True):
                self.sent[s["store"]] += 1
                if s["truth"] == "banana" and p == "cucumber":
                    self.called_cucumber[s["store"]] += 1

    # ------------------------------------------------------------------ setup
    def _setup(self, http: httpx.Client) -> bool:
        """Fit the kiosk model, create the monitored model, its reference, rule and history;
        False on a restart (the model exists)."""
        from aiwarden.images import properties

        shots = self._photographs(self.reference_images, dark_store=False)
        jpegs = [s["jpeg"] for s in shots]
        truth = [s["truth"] for s in shots]
        self.model = KioskModel.fit(jpegs, truth, seed=self.seed)
        self.fitting = False
        if any(m["name"] == FRUIT_MODEL for m in http.get("/models").json()):
            self.say(f"{FRUIT_MODEL} exists already (a restart): the story goes on from here.")
            return False
        import pyarrow as pa

        from aiwarden.sdk._payload import to_parquet

        table = properties(jpegs).to_pandas()
        ref = table[list(SCHEMA_PROPERTIES)].copy()
        ref["store"] = [s["store"] for s in shots]
        ref["prediction"] = self.model.predict(table)
        ref["fruit"] = truth
        http.post("/models", json={"name": FRUIT_MODEL, "task": "binary"}).raise_for_status()
        http.put(f"/models/{FRUIT_MODEL}/versions/1/reference",
                 content=to_parquet(pa.Table.from_pandas(ref, preserve_index=False)),
                 params={"target": "fruit", "prediction": "prediction", "segments": "store"},
                 headers={"content-type": "application/vnd.apache.parquet"}
                 ).raise_for_status()
        http.post("/rules/apply", content=RULES.format(model=FRUIT_MODEL)).raise_for_status()
        n = int(self.history_minutes * 4)  # one shopper every 15 s
        if n:
            now = time.time()
            times = np.sort(self.rng.uniform(now - self.history_minutes * 60, now - 30, n))
            for i in range(0, n, 200):
                self._send(http, self._photographs(len(times[i:i + 200]), False),
                           [float(t) for t in times[i:i + 200]])
        accuracy = float(np.mean(np.asarray(ref["prediction"]) == np.asarray(truth)))
        self.say(f"{FRUIT_MODEL}: the self-checkout kiosks of stores {', '.join(STORES)} "
                 f"photograph the fruit on the scale; the classifier (trained on well-lit "
                 f"photographs, {accuracy:.0%} right on its reference) names it, and each "
                 f"photograph goes to aiwarden with its store; the customer's correction at "
                 f"the till is the label. {self.history_minutes:g} min of shoppers backfilled."
                 f" Dashboard: {self.url}/models/{FRUIT_MODEL}")
        return True

    # ---------------------------------------------------------------- traffic
    def _tick(self, http: httpx.Client) -> None:
        self._send(http, self._photographs(self.images_per_tick, self._lights_changed))
        wrong = self.called_cucumber[DARK_STORE]
        if wrong >= 3 and "first-wrong" not in self._seen:
            self._seen.add("first-wrong")
            self.say(f"At {DARK_STORE}, customers keep correcting the kiosk: {wrong} bananas "
                     f"named cucumber since the new lights (the other stores: "
                     f"{sum(v for k, v in self.called_cucumber.items() if k != DARK_STORE)}).")

    # -------------------------------------------------------------- watching
    def _watch(self, http: httpx.Client) -> None:
        alerts = http.get(f"/models/{FRUIT_MODEL}/alerts", params={"events": 0}).json()
        for a in alerts:
            if a["state"].get("phase") != "firing":
                continue
            key = f"alert:{a['labels']['rule']}"
            if key not in self._seen:
                self._seen.add(key)
                value = a["state"].get("value")
                shown = "" if value is None else f" (banana -> cucumber rate {value:.0%})"
                self.say(f"ALERT firing: {a['labels']['rule']}{shown}")
        for inc in sorted(http.get("/incidents", params={"model": FRUIT_MODEL}).json(),
                          key=lambda i: i["id"]):
            self._incident(http, inc)

    def _incident(self, http: httpx.Client, inc: dict[str, Any]) -> None:
        if f"incident:{inc['id']}" not in self._seen:
            self._seen.add(f"incident:{inc['id']}")
            self.incident = self.incident or inc["id"]
            self.say(f"INCIDENT #{inc['id']} opened: {inc['title']} ({self.url}/incidents/"
                     f"{inc['id']})")
        full = http.get(f"/incidents/{inc['id']}").json()
        for e, text in self.new_actions(full["timeline"], inc["id"]):
            if text != "Root-cause analysis" or self.rca is not None:
                continue
            self.rca = e["detail"]
            suspects = e["detail"].get("suspects") or []
            store = next((s for s in suspects if DARK_STORE in s.get("name", "")), None)
            light = next((s for s in suspects if "brightness" in s.get("name", "")), None)
            self.say(f"  RCA #{inc['id']}: top suspect {suspects[0]['kind']} "
                     f"'{suspects[0]['name']}': {suspects[0]['summary'][:160]}"
                     if suspects else f"  RCA #{inc['id']}: no suspect")
            for s in (store, light):
                if s is not None and s is not (suspects or [None])[0]:
                    self.say(f"  RCA #{inc['id']} also names {s['kind']} '{s['name']}': "
                             f"{s['summary'][:160]}")

    # ------------------------------------------------------------ retraining
    def _next_training_set(self) -> Path:
        """The photographs the team collected for the next model: well-lit and dark ones,
        labelled by hand, and one whose upload was cut off half way."""
        from aiwarden.images.synthetic import fruit_jpeg

        root = self.training_dir / "next"
        shutil.rmtree(root, ignore_errors=True)
        for kind in ("banana", "cucumber"):
            (root / "train" / kind).mkdir(parents=True, exist_ok=True)
            for i in range(self.training_images):
                light = DARK_LIGHT if i % 3 == 0 else 1.0
                where = DARK_STORE if light != 1.0 else STORES[i % 2]
                (root / "train" / kind / f"{kind}_{where}_{i:04d}.jpg").write_bytes(
                    fruit_jpeg(kind, self.rng, SIZE, light))
        whole = fruit_jpeg("banana", self.rng, SIZE, DARK_LIGHT)
        (root / "train" / "banana" / CORRUPT_NAME).write_bytes(whole[: len(whole) // 2])
        return root

    def _retrain(self, http: httpx.Client) -> None:
        root = self._next_training_set()
        n = 2 * self.training_images + 1
        http.put(f"/models/{FRUIT_MODEL}/pipeline", json={
            "entry": FRUIT_ENTRY, "data": {"images": str(root), "window": "1d"},
            "gates": {"image_audit": {"max_corrupt": 0, "max_constant": 0,
                                      "max_duplicate": 0, "max_leakage": 0}},
            "triggers": {"cooldown": "1h"}}).raise_for_status()
        r = http.post(f"/models/{FRUIT_MODEL}/runs", json={
            "reason": f"retrain with {n} photographs, {DARK_STORE}'s dark ones included"})
        r.raise_for_status()
        self.run_id = r.json()["id"]
        self.say(f"RETRAIN: the team collects {n} photographs, {DARK_STORE}'s dark bananas "
                 f"labelled by hand, in {root}, and queues run #{self.run_id} of the "
                 f"retraining pipeline; its image audit reads every file before anything "
                 f"trains.")

    def _watch_run(self, http: httpx.Client) -> None:
        run = http.get(f"/runs/{self.run_id}").json()
        if run["state"] in ("queued", "running"):
            return
        gate = run["gates"][-1] if run["gates"] else {"gate": "?", "evidence": {}}
        if run["state"] == "blocked" and gate["gate"] == "image_audit":
            named = [f"{f['path']} ({f['reason']})" for f in
                     gate["evidence"].get("findings", [])]
            self.say(f"  Run #{run['id']} BLOCKED by the image_audit gate: {run['reason']}. "
                     f"Named: {', '.join(named[:3])}.")
        else:
            self.say(f"  Run #{run['id']} {run['state']}: {run['reason']}")
        self.done.set()
        self.say(self.ending())

    def ending(self) -> str:
        inc = self.incident
        return (f"THE END: the story is over. {DARK_STORE}'s dim lights made its bananas "
                f"dark, the kiosk called them cucumbers, the confusion alert fired and the "
                f"RCA named the store and the brightness; the next training set's truncated "
                f"photograph was caught by the image audit before it could train a model.\n"
                f"  Look next at: incident #{inc} {self.url}/incidents/{inc} (the RCA), the "
                f"confusion over time on {self.url}/models/{FRUIT_MODEL}, the gallery of "
                f"misclassified photographs {self.url}/models/{FRUIT_MODEL}/images, run "
                f"#{self.run_id} {self.url}/api/v1/runs/{self.run_id}.\n  Shoppers keep "
                "coming so the charts stay live; Ctrl-C stops the demo.")

    # ------------------------------------------------------------------ run
    def _loop(self, http: httpx.Client, fresh: bool) -> None:
        tick = 0
        self._lights_changed = not fresh
        while not self.stop_event.wait(1.0 / self.speed):
            if not self._lights_changed and time.time() - self.started >= self.at("lights"):
                self._lights_changed = True
                self.say(f"The {DARK_STORE} store replaces its lights with dim warm ones: "
                         f"the kiosk's photographs there are now {1 - DARK_LIGHT:.0%} darker.")
            self._tick(http)
            tick += 1
            if tick % 2 == 0 and fresh:
                self._watch(http)
                if self.rca is not None and self.run_id is None:
                    self._retrain(http)
                elif self.run_id is not None and not self.done.is_set():
                    self._watch_run(http)


def start_fruit_story(url: str, training_dir: str | Path, **kw: Any) -> FruitStory:
    story = FruitStory(url, training_dir, **kw)
    story.start()
    return story

