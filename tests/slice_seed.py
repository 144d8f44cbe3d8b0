"""A model that fails on small purchases, for the slice-example tests (server and browser):
the prediction-page model of :mod:`tests.explain_seed` (a GradientBoostingClassifier on
amount, age and noise, registered as skops, with its reference) serving 600 labelled
predictions whose labels contradict it on 80% of the purchases under $10 and on 5% of the
others, so the slice finder reports ``amount < 10`` (or close) and each example has an
explained page."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import numpy as np
import pandas as pd

from tests.explain_seed import FEATURES, _reference, frame


def in_slice(df: pd.DataFrame, conditions: list[list[Any]]) -> np.ndarray:
    """The rows of ``df`` a slice's ``[feature, op, value]`` conditions select, read with
    pandas (not the engine's masks the server used)."""
    out = np.ones(len(df), dtype=bool)
    for feature, op, value in conditions:
        col = df[feature]
        mask = (col < value if op == "<" else col >= value if op == ">=" else
                col == value if op == "==" else col.isin(value) if op == "in" else
                col.isna() if op == "is_missing" else None)
        assert mask is not None, f"unknown op {op!r}"
        out &= mask.to_numpy()
    return out


def failing_small_purchases(api: httpx.Client, n: int = 600) -> dict[str, Any]:
    """Seed it over the API (``api`` at ``/api/v1``); returns the name and the live frame
    (one row per prediction id ``s{i}``, with ``pred`` and ``label``)."""
    import skops.io as sio
    from sklearn.ensemble import GradientBoostingClassifier

    df = frame(1500, 0)
    model = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(
        df[FEATURES], df.y)
    name = f"slice-examples-{uuid.uuid4().hex[:6]}"
    r = api.post(f"/registry/models/{name}/versions", content=sio.dumps(model),
                 params={"format": "skops", "trust": "true"},
                 headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    _reference(api, name, "1", model)
    rng = np.random.default_rng(7)
    live = frame(n, 3)
    live.loc[0, "amount"] = 4.0  # a $4 purchase among them
    score = model.predict_proba(live[FEATURES])[:, 1]
    live["pred"] = (score > 0.5).astype(int)
    flip = np.where(live.amount < 10, rng.random(n) < 0.8, rng.random(n) < 0.05)
    live["label"] = np.where(flip, 1 - live.pred, live.pred)
    live.index = [f"s{i}" for i in range(n)]
    t0 = time.time() - 1800
    rows = [{"prediction_id": pid, "timestamp": t0 + i, "version": "1",
             "features": {f: float(live.at[pid, f]) for f in FEATURES},
             "prediction": int(live.at[pid, "pred"]), "scores": float(score[i])}
            for i, pid in enumerate(live.index)]
    assert api.post(f"/models/{name}/predictions", json=rows).json()["accepted"] == n
    labels = [{"prediction_id": pid, "label": int(y)} for pid, y in live.label.items()]
    assert api.post(f"/models/{name}/labels", json=labels).status_code < 300
    return {"name": name, "live": live, "t0": t0}
