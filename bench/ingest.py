"""Server throughput: JSON and bulk ingest, label joins, and a 30-day drift query.

The server runs as its own process (``aiwarden server``); this process is the load
generator. Request bodies are built before the clock starts so the generator's CPU
goes to sending. Each figure is printed next to a baseline measured in the same run:

* ingest: the same rows written straight to a plain table of the same database with
  the driver's ``executemany`` (what a hand-made "just store the events" logger does,
  with no validation, deduplication or profiling);
* drift query: the same window merged from 1-minute buckets alone (no rollups).

Targets (issue 3): JSON ≥ 20,000 rows/s, Arrow/Parquet ≥ 200,000 rows/s, 30-day drift
query < 200 ms, 1,000,000 labels joined < 20 s.

    .venv/bin/python bench/ingest.py [--db sqlite|postgresql|both] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.sdk._payload import to_ipc, to_parquet
from bench._data import make_data
from bench._ingest_history import fill_history, unrolled_query
from tests.server.live import ProcessServer, database_url

JSON_BATCH = 1000
BULK_BATCH = 100_000


def _frame(n: int, seed: int) -> pd.DataFrame:
    ref, _, _ = make_data(n, seed)
    rng = np.random.default_rng(seed + 1)
    z = (ref["normal_0"] - ref["normal_0"].mean()) / ref["normal_0"].std()
    score = 1 / (1 + np.exp(-1.5 * z.to_numpy()))
    ref["score"] = score
    ref["prediction"] = (score > 0.5).astype(int)
    ref["label"] = (rng.random(n) < score).astype(int)
    return ref


def _json_bodies(df: pd.DataFrame, prefix: str, ts: float) -> list[bytes]:
    feats = [c for c in df.columns if c not in ("score", "prediction", "label")]
    records = df[feats].to_dict("records")
    bodies = []
    for s in range(0, len(df), JSON_BATCH):
        rows = [{"prediction_id": f"{prefix}{i}", "timestamp": ts, "features": records[i],
                 "prediction": int(df["prediction"].iat[i]), "scores": float(df["score"].iat[i]),
                 "latency_ms": 5.0} for i in range(s, min(s + JSON_BATCH, len(df)))]
        bodies.append(orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY))
    return bodies


def _flat(df: pd.DataFrame, prefix: str, ts: float, offset: int) -> pa.Table:
    t = pa.Table.from_pandas(df.drop(columns=["label"]), preserve_index=False)
    n = t.num_rows
    ids = pa.array([f"{prefix}{offset + i}" for i in range(n)])
    t = t.append_column("prediction_id", ids).append_column("timestamp", pa.array(np.full(n, ts)))
    return t.append_column("latency_ms", pa.array(np.full(n, 5.0)))


def _send_all(url: str, bodies: list[bytes], media: str, threads: int) -> tuple[float, int]:
    """Post every body with ``threads`` keep-alive clients; returns (seconds, accepted)."""
    queue = list(enumerate(bodies))
    lock = threading.Lock()
    accepted = [0]

    def worker() -> None:
        with httpx.Client(timeout=600) as c:
            while True:
                with lock:
                    if not queue:
                        return
                    _, body = queue.pop()
                r = c.post(url, content=body, headers={"content-type": media})
                r.raise_for_status()
                with lock:
                    accepted[0] += r.json()["accepted"]

    ws = [threading.Thread(target=worker) for _ in range(threads)]
    t0 = time.perf_counter()
    for w in ws:
        w.start()
    for w in ws:
        w.join()
    return time.perf_counter() - t0, accepted[0]


def _baseline_store(db_url: str, bodies: list[bytes]) -> float:
    """rows/s of plain executemany inserts of the same JSON rows (no checks, no profiles)."""
    from sqlalchemy import create_engine, text

    eng = create_engine(db_url)
    with eng.begin() as c:
        c.execute(text("CREATE TABLE IF NOT EXISTS baseline_events (id TEXT, body TEXT)"))
    n = 0
    t0 = time.perf_counter()
    for body in bodies:
        rows = orjson.loads(body)
        with eng.begin() as c:
            c.exec_driver_sql(
                "INSERT INTO baseline_events (id, body) VALUES (" +
                ("?, ?)" if db_url.startswith("sqlite") else "%s, %s)"),
                [(r["prediction_id"], orjson.dumps(r).decode()) for r in rows])
        n += len(rows)
    dt = time.perf_counter() - t0
    eng.dispose()
    return n / dt


def _timed(label: str, fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    best = min(times)
    print(f"  {label:<44} best {best * 1000:8.1f} ms  median {np.median(times) * 1000:8.1f} ms")
    return best


def run(kind: str, quick: bool) -> dict[str, float]:
    n_json = 20_000 if quick else 100_000
    n_bulk = 200_000 if quick else 1_000_000
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, database_url(kind, Path(tmp)) as url:
        srv = ProcessServer(url, Path(tmp)).start()
        try:
            api = f"{srv.url}/api/v1"
            ref = _frame(50_000, 0)
            with httpx.Client(base_url=api, timeout=600) as c:
                c.post("/models", json={"name": "bench"}).raise_for_status()
                c.put("/models/bench/versions/v1/reference", content=to_parquet(
                    pa.Table.from_pandas(ref, preserve_index=False)),
                    params={"target": "label", "prediction": "prediction", "scores": "score"},
                    headers={"content-type": "application/vnd.apache.parquet"}
                ).raise_for_status()
            now = time.time()
            print(f"\n[{kind}] 25 features + score + prediction per row")
            bodies = _json_bodies(_frame(n_json, 1), "j", now)
            dt, acc = _send_all(f"{api}/models/bench/predictions", bodies, "application/json", 2)
            base = _baseline_store(url, bodies[: max(5, len(bodies) // 5)])
            out["json_rows_per_s"] = acc / dt
            print(f"  JSON ingest ({JSON_BATCH}-row batches, 2 clients) {acc / dt:>10,.0f} rows/s"
                  f"   baseline plain inserts {base:>10,.0f} rows/s   ratio {acc / dt / base:.2f}")
            bulk = _frame(n_bulk, 2)
            tables = [_flat(bulk.iloc[s:s + BULK_BATCH], "b", now, s)
                      for s in range(0, n_bulk, BULK_BATCH)]
            for media, enc, key in (("application/vnd.apache.arrow.stream", to_ipc, "arrow"),
                                    ("application/vnd.apache.parquet", to_parquet, "parquet")):
                prefix = key[0]
                bodies = [enc(t.set_column(t.schema.get_field_index("prediction_id"),
                                           "prediction_id", pa.array([
                                               prefix + s for s in t.column("prediction_id")
                                               .to_pylist()]))) for t in tables]
                dt, acc = _send_all(f"{api}/models/bench/predictions", bodies, media, 2)
                out[f"{key}_rows_per_s"] = acc / dt
                print(f"  {key} bulk ingest ({BULK_BATCH:,}-row bodies) {acc / dt:>16,.0f} rows/s"
                      f"   ratio to plain inserts {acc / dt / base:.1f}")
            labels = pa.table({"prediction_id": pa.array(
                ["a" + f"b{i}" for i in range(n_bulk)]),
                "label": pa.array(bulk["label"].to_numpy())})
            lbodies = [to_ipc(labels.slice(s, 200_000)) for s in range(0, n_bulk, 200_000)]
            t0 = time.perf_counter()
            with httpx.Client(timeout=600) as c:
                joined = 0
                for body in lbodies:
                    r = c.post(f"{api}/models/bench/labels", content=body,
                               headers={"content-type": "application/vnd.apache.arrow.stream"})
                    r.raise_for_status()
                    joined += r.json()["joined"]
            dt = time.perf_counter() - t0
            out["labels_join_s"] = dt
            print(f"  join {joined:,} labels (Arrow, 200k per request) {dt:>14.2f} s"
                  f"   ({joined / dt:,.0f} labels/s)")
            model_id, version_id, t_end = fill_history(url, ref, days=30)
            with httpx.Client(base_url=api, timeout=600) as c:
                params = {"metric": "drift", "start": t_end - 30 * 86400, "end": t_end}

                def query() -> None:
                    c.get("/models/history/metrics", params=params).raise_for_status()

                best = _timed("30-day drift query over HTTP (25 features)", query)
            base = _timed("baseline: same window from 1-min buckets only",
                          lambda: unrolled_query(url, model_id, version_id, t_end), repeat=1)
            out["drift_query_ms"] = best * 1000
            print(f"  rollups make the query {base / best:.0f}x faster than merging 43,200 buckets")
        except Exception:
            print(srv.log()[-4000:], file=sys.stderr)
            raise
        finally:
            srv.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--quick", action="store_true", help="smaller volumes, for a smoke run")
    args = p.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    results = {k: run(k, args.quick) for k in kinds}
    print("\nsummary (targets: JSON ≥ 20,000/s, bulk ≥ 200,000/s, query < 200 ms, "
          "1M labels < 20 s)")
    for k, r in results.items():
        print(f"  {k:<11}" + "  ".join(f"{m} {v:,.1f}" for m, v in r.items()))


if __name__ == "__main__":
    main()
