from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from tests.server.live import ThreadServer


@pytest.fixture
def http(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        yield c


def scored_frame(n: int, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """A small binary classifier's reference-like data: two features, score, prediction, label."""
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    c = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    score = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < score).astype(int)
    return pd.DataFrame({"x": x, "c": c, "score": score, "pred": (score > 0.5).astype(int),
                         "y": y})


HINTS = {"target": "y", "prediction": "pred", "scores": "score"}


def json_rows(df: pd.DataFrame, start_ts: float, prefix: str = "p", spacing: float = 1.0
              ) -> list[dict]:
    return [{"prediction_id": f"{prefix}{i}", "timestamp": start_ts + i * spacing,
             "features": {"x": float(r.x), "c": r.c}, "prediction": int(r.pred),
             "scores": float(r.score), "latency_ms": 3.0 + (i % 10)}
            for i, r in enumerate(df.itertuples())]


def register_model(http: httpx.Client, name: str, ref: pd.DataFrame | None = None,
                   hints: dict[str, str] = HINTS) -> str:
    """Create ``name`` and upload its reference (Parquet) over the API."""
    from aiwarden.sdk._payload import to_parquet

    table = pa.Table.from_pandas(scored_frame(3000) if ref is None else ref,
                                 preserve_index=False)
    http.post("/models", json={"name": name}).raise_for_status()
    http.put(f"/models/{name}/versions/v1/reference", content=to_parquet(table), params=hints,
             headers={"content-type": "application/vnd.apache.parquet"}).raise_for_status()
    return name


def evaluate(http: httpx.Client, tries: int = 40) -> dict:
    """One alert evaluation cycle now; waits while the background loop holds the lease."""
    import time

    for _ in range(tries):
        out = http.post("/alerts/evaluate").json()
        if out["evaluated"]:
            return out
        time.sleep(0.5)
    raise AssertionError("never got the evaluator lease")
