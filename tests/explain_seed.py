"""An explainable model for the prediction-page tests (server and browser): a small
GradientBoostingClassifier on amount, age and noise, registered as skops (version 1) with
its reference and 60 logged predictions (``p0`` is a $4 purchase, ``p1`` has its label
joined), and a version 2 with a reference and one logged row (``u0``) but no registered
model, so its explanation cannot be computed."""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FEATURES = ["amount", "age", "noise"]


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 1.2, n)
    age = rng.uniform(18, 80, n)
    noise = rng.normal(0, 1, n)
    logit = 2.5 * (np.log(amount) - 3) - 0.02 * (age - 50)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"amount": amount, "age": age, "noise": noise, "y": y})


def _reference(api: httpx.Client, name: str, version: str, model: Any) -> None:
    ref = frame(800, 1)
    ref["score"] = model.predict_proba(ref[FEATURES])[:, 1]
    ref["pred"] = (ref.score > 0.5).astype(int)
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(ref, preserve_index=False), sink)
    r = api.put(f"/models/{name}/versions/{version}/reference", content=sink.getvalue(),
                params={"target": "y", "prediction": "pred", "scores": "score"},
                headers={"content-type": "application/vnd.apache.parquet"})
    assert r.status_code in (200, 201), r.text


def register_skops(api: httpx.Client, name: str, model: Any) -> None:
    """Register ``model`` as ``name``'s next version (skops, its tree types trusted)."""
    import skops.io as sio

    r = api.post(f"/registry/models/{name}/versions", content=sio.dumps(model),
                 params={"format": "skops", "trust": "true"},
                 headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text


def explainable(api: httpx.Client) -> dict[str, Any]:
    """Seed it over the API (``api`` at ``/api/v1``); returns the name and the rows sent."""
    from sklearn.ensemble import GradientBoostingClassifier

    df = frame(1500, 0)
    model = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(
        df[FEATURES], df.y)
    name = f"explain-page-{uuid.uuid4().hex[:6]}"
    register_skops(api, name, model)
    _reference(api, name, "1", model)
    _reference(api, name, "2", model)  # version 2: a reference, no registered model
    live = frame(60, 2)
    live.loc[0, "amount"] = 4.0  # the $4 purchase
    score = model.predict_proba(live[FEATURES])[:, 1]
    t0 = time.time() - 1800
    rows = [{"prediction_id": f"p{i}", "timestamp": t0 + i, "version": "1",
             "features": {f: float(live.loc[i, f]) for f in FEATURES},
             "prediction": int(score[i] > 0.5), "scores": float(score[i])}
            for i in range(len(live))]
    rows.append({"prediction_id": "u0", "timestamp": t0 + 70, "version": "2",
                 "features": {f: float(live.loc[1, f]) for f in FEATURES},
                 "prediction": 0, "scores": 0.1})
    assert api.post(f"/models/{name}/predictions", json=rows).json()["accepted"] == 61
    assert api.post(f"/models/{name}/labels",
                    json=[{"prediction_id": "p1", "label": 1}]).status_code < 300
    return {"name": name, "live": live, "score": score, "t0": t0}
