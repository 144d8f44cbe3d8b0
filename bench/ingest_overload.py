"""Ingest under overload: 429s instead of multi-second latency, and no acknowledged row lost.

A real ``aiwarden server`` runs as a child process on loopback; this process runs many
concurrent clients, each sending 1,000-row JSON batches back to back, far more than the
server can write. Each client behaves as the SDK does: a ``429`` is waited out for its
``Retry-After`` (with jitter) and the same body sent again. The run is bounded (a fixed time
per phase, then every client finishes its request in flight and stops).

Two phases in the same run, each on a fresh database:

* **baseline**: admission control off (``AIWARDEN_INGEST_MAX_INFLIGHT=0``), as before: every
  request is admitted and waits on the model's write lock;
* **admission**: the server's default limits (or the ones given on the command line).

Printed per phase: the server's CPU use and the machine's load, accepted rows/s, p50/p99/max
latency of accepted requests, the number of 429s, then the count that matters: every row
acknowledged with a 2xx is looked up in what the server exports (``GET /events``), and
acknowledged vs stored is printed (missing must be 0).

    .venv/bin/python bench/ingest_overload.py [--db sqlite|postgresql] [--clients 48]
        [--seconds 15] [--quick]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiwarden.sdk._payload import to_parquet
from bench._data import make_data
from tests.server.live import ProcessServer, database_url

BATCH = 1000
ID_SLOT = b"@@@@@@@@@@"  # replaced by a fixed-width prefix: unique ids without re-encoding
NAME = "overload"


def _template(seed: int) -> bytes:
    """One 1,000-row JSON body whose prediction ids start with ``ID_SLOT``."""
    df, _, _ = make_data(BATCH, seed)
    ts = time.time() - 300
    rng = np.random.default_rng(seed)
    rows = [{"prediction_id": f"{ID_SLOT.decode()}-{i}", "timestamp": ts + i * 0.01,
             "features": rec, "prediction": int(rng.random() < 0.5),
             "scores": float(rng.random()), "latency_ms": 5.0}
            for i, rec in enumerate(df.to_dict("records"))]
    return orjson.dumps(rows, option=orjson.OPT_SERIALIZE_NUMPY)


def _register(api: str) -> None:
    ref, _, _ = make_data(20_000, 0)
    rng = np.random.default_rng(1)
    ref["score"] = rng.random(len(ref))
    ref["prediction"] = (ref["score"] > 0.5).astype(int)
    ref["label"] = (rng.random(len(ref)) < ref["score"]).astype(int)
    with httpx.Client(base_url=api, timeout=600) as c:
        c.post("/models", json={"name": NAME}).raise_for_status()
        c.put(f"/models/{NAME}/versions/v1/reference",
              content=to_parquet(pa.Table.from_pandas(ref, preserve_index=False)),
              params={"target": "label", "prediction": "prediction", "scores": "score"},
              headers={"content-type": "application/vnd.apache.parquet"}).raise_for_status()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Tally:
    accepted_s: list[float] = field(default_factory=list)  # latency of each 2xx
    refused_s: list[float] = field(default_factory=list)   # latency of each 429
    acked: list[bytes] = field(default_factory=list)       # id prefixes of 2xx bodies
    other: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(api: str, template: bytes, who: int, until: float, tally: Tally) -> None:
    sent = 0
    with httpx.Client(base_url=api, timeout=120) as c:
        body, prefix = None, b""
        while time.monotonic() < until:
            if body is None:
                prefix = f"c{who:03d}b{sent:05d}".encode()
                body = template.replace(ID_SLOT, prefix)
                sent += 1
            began = time.monotonic()
            try:
                r = c.post(f"/models/{NAME}/predictions", content=body,
                           headers={"content-type": "application/json"})
            except httpx.HTTPError:
                with tally.lock:
                    tally.errors += 1
                body = None  # answer unknown: not counted as acknowledged
                continue
            took = time.monotonic() - began
            with tally.lock:
                if r.status_code == 200:
                    tally.accepted_s.append(took)
                    tally.acked.append(prefix)
                elif r.status_code == 429:
                    tally.refused_s.append(took)
                else:
                    tally.other[r.status_code] = tally.other.get(r.status_code, 0) + 1
            if r.status_code == 429:  # as the SDK does: wait as asked, same body again
                wait = float(r.headers.get("Retry-After", "1")) * random.uniform(1.0, 1.25)
                time.sleep(max(0.0, min(wait, until - time.monotonic())))
            else:
                body = None


def _stored_prefixes(api: str) -> tuple[int, Counter[bytes], int]:
    """(rows the model says it holds, exported rows per body prefix, rows exported)."""
    with httpx.Client(base_url=api, timeout=600) as c:
        count = int(c.get(f"/models/{NAME}").json()["predictions"])
        r = c.get(f"/models/{NAME}/events", params={"start": "2000-01-01T00:00:00Z"})
        r.raise_for_status()
    ids = pq.read_table(io.BytesIO(r.content), columns=["prediction_id"]).column(
        "prediction_id").to_pylist()
    return count, Counter(i.split("-", 1)[0].encode() for i in ids), len(ids)


def phase(kind: str, label: str, env: dict[str, str], clients: int, seconds: float
          ) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, database_url(kind, Path(tmp)) as url:
        srv = ProcessServer(url, Path(tmp), extra_env=env).start()
        try:
            api = f"{srv.url}/api/v1"
            _register(api)
            templates = [_template(s) for s in range(4)]
            tally = Tally()
            assert srv.proc is not None
            cpu0, load0, wall0 = _cpu_seconds(srv.proc.pid), os.getloadavg()[0], time.monotonic()
            own0 = time.process_time()
            until = wall0 + seconds
            threads = [threading.Thread(target=_client,
                                        args=(api, templates[w % 4], w, until, tally))
                       for w in range(clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - wall0
            cpu = _cpu_seconds(srv.proc.pid) - cpu0
            own = time.process_time() - own0
            load1 = os.getloadavg()[0]
            count, stored, exported = _stored_prefixes(api)
        finally:
            srv.stop()
    acked = set(tally.acked)
    missing = sum(BATCH - min(BATCH, stored[p]) for p in acked)
    acc = np.array(tally.accepted_s) if tally.accepted_s else np.array([np.nan])
    ref = np.array(tally.refused_s) if tally.refused_s else np.array([np.nan])
    out = {"rows_per_s": len(acked) * BATCH / wall, "p50": float(np.percentile(acc, 50)),
           "p99": float(np.percentile(acc, 99)), "max": float(acc.max()),
           "refused": len(tally.refused_s), "refused_p99": float(np.percentile(ref, 99)),
           "acked_rows": len(acked) * BATCH, "stored_rows": count, "missing": missing}
    print(f"\n[{kind}] {label}: {clients} clients, {seconds:.0f} s, {BATCH}-row JSON batches "
          f"({', '.join(f'{k}={v}' for k, v in env.items()) or 'server defaults'})")
    print(f"  server CPU {cpu / wall:5.0%} of one core  load generator CPU {own / wall:5.0%}"
          f"  load average {load0:.2f} -> {load1:.2f} ({os.cpu_count()} cores)")
    print(f"  accepted {len(tally.accepted_s):>6} requests  {out['rows_per_s']:>9,.0f} rows/s"
          f"  latency p50 {out['p50'] * 1000:>6.0f} ms  p99 {out['p99'] * 1000:>6.0f} ms"
          f"  max {out['max'] * 1000:>6.0f} ms")
    print(f"  429s     {out['refused']:>6}            (answered in p99 "
          f"{out['refused_p99'] * 1000:.0f} ms)  other statuses {tally.other or '-'}"
          f"  transport errors {tally.errors}")
    print(f"  rows acknowledged {out['acked_rows']:>9,}  stored {count:>9,} "
          f"(exported {exported:,})  acknowledged but missing {out['missing']:,}")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    p.add_argument("--clients", type=int, default=48)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--inflight", type=int, help="AIWARDEN_INGEST_MAX_INFLIGHT of phase 2")
    p.add_argument("--wait-ms", type=float, help="AIWARDEN_INGEST_MAX_WAIT_MS of phase 2")
    p.add_argument("--quick", action="store_true", help="16 clients, 5 s per phase")
    args = p.parse_args()
    clients, seconds = (16, 5.0) if args.quick else (args.clients, args.seconds)
    limited = {k: str(v) for k, v in (("AIWARDEN_INGEST_MAX_INFLIGHT", args.inflight),
                                      ("AIWARDEN_INGEST_MAX_WAIT_MS", args.wait_ms))
               if v is not None}
    base = phase(args.db, "baseline, admission off", {"AIWARDEN_INGEST_MAX_INFLIGHT": "0"},
                 clients, seconds)
    adm = phase(args.db, "admission on", limited, clients, seconds)
    print(f"\nadmission vs baseline: p99 {adm['p99'] / base['p99']:.2f}x, "
          f"throughput {adm['rows_per_s'] / base['rows_per_s']:.2f}x, "
          f"429s {adm['refused']} vs {base['refused']}, "
          f"missing rows {adm['missing'] + base['missing']}")
    if adm["missing"] or base["missing"]:
        sys.exit("an acknowledged row is missing")


if __name__ == "__main__":
    main()
