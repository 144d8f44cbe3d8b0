"""A steady load from another process, for tests that change things under traffic.

    python -m tests.gateway.load URL OUT --rate 150 --seconds 3 --workers 3

Each worker sends one request every ``workers / rate`` seconds (paced, not flooding) and
records ``[worker, sent, done, status, version]`` per request; the file is written at the
end, and ``started`` is printed once the first answer came back.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import httpx


def _worker(k: int, url: str, body: dict[str, Any], start: float, end: float,
            interval: float, out: list[list[Any]], first: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        n = 0
        while True:
            due = start + k * interval / 3 + n * interval
            if due >= end:
                return
            time.sleep(max(0.0, due - time.monotonic()))
            sent = time.time()
            try:
                r = client.post(url, json=body)
                status, version = r.status_code, r.headers.get("x-aiwarden-version")
            except httpx.HTTPError as exc:
                status, version = 0, type(exc).__name__
            out.append([k, sent, time.time(), status, version])
            first.set()
            n += 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("out")
    p.add_argument("--rate", type=float, default=150)
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--workers", type=int, default=3)
    p.add_argument("--features", default='{"x1": 0.5, "x2": -0.2, "x3": 1.0}')
    args = p.parse_args(argv)
    body = {"features": json.loads(args.features)}
    first = threading.Event()
    results: list[list[list[Any]]] = [[] for _ in range(args.workers)]
    start = time.monotonic()
    threads = [threading.Thread(target=_worker, args=(
        k, args.url, body, start, start + args.seconds, args.workers / args.rate, results[k],
        first)) for k in range(args.workers)]
    for t in threads:
        t.start()
    if first.wait(30):
        print("started", flush=True)
    for t in threads:
        t.join()
    with open(args.out, "w") as f:
        json.dump([r for rs in results for r in rs], f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
