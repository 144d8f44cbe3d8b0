"""What a failed key check costs, by what is wrong with the key (issue 11, point 8).

Before: a known id with a wrong secret took one scrypt (~40 ms), an unknown id ~1 ms, so the
time of a 401 told which key ids exist. Every case should now cost one scrypt. Prints the
median of each case over a real SQLite store; not a test (timings belong here).

    .venv/bin/python bench/auth_cost.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from aiwarden.store import keys
from aiwarden.store.database import Database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'keys.db'}")
        db.migrate()
        with db.write() as conn:
            key, info = keys.create_key(conn, "bench", ["read"])
            revoked, rinfo = keys.create_key(conn, "gone", ["read"])
            keys.revoke_key(conn, rinfo.key_id)
        secret = key.split("_", 2)[2]
        cases = {"valid key": key, "known id, wrong secret": f"aw_{info.key_id}_{secret[::-1]}",
                 "unknown id": f"aw_000000000000_{secret}", "revoked key": revoked,
                 "malformed token": "nonsense"}
        print(f"{'case':<26}{'median ms':>10}{'max ms':>10}")
        for name, token in cases.items():
            times = []
            for _ in range(args.rounds):
                with db.read() as conn:
                    started = time.perf_counter()
                    keys.verify_key(conn, token)
                    times.append((time.perf_counter() - started) * 1000)
            print(f"{name:<26}{statistics.median(times):>10.1f}{max(times):>10.1f}")
        db.dispose()


if __name__ == "__main__":
    main()
