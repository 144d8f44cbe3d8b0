"""Heaviest test files first, so the pytest workers finish together.

`make test` runs whole files per worker (``--dist loadfile``) in collection order
(``--no-loadscope-reorder``). xdist's own order (most tests first) left files with few but
long tests (the demo, notification restarts, worker kills) to the end of the run, where one
worker ran them alone. Longest-first is the classic answer to that tail. The costs come from
a junit report (``python -m tests.file_order junit.xml`` rewrites them); a file missing from
the table counts one second per test, so a new file needs no entry to run.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

COSTS = Path(__file__).with_name("file_costs.json")


def load_costs() -> dict[str, float]:
    return json.loads(COSTS.read_text()) if COSTS.exists() else {}


def longest_first(items: list[pytest.Item], costs: dict[str, float]) -> list[pytest.Item]:
    """The items regrouped by file, files by descending cost, each file's items in order."""
    by_file: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    order = sorted(by_file, key=lambda f: -costs.get(f, float(len(by_file[f]))))
    return [item for f in order for item in by_file[f]]


def costs_from_junit(report: Path) -> dict[str, float]:
    """Seconds per test file (setup, call and teardown) from a pytest junit report."""
    seconds: Counter[str] = Counter()
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname") or ""
        parts = module.split(".")
        # classname is the module path, plus the class name for tests in a class
        for cut in range(len(parts), 0, -1):
            path = "/".join(parts[:cut]) + ".py"
            if Path(path).exists():
                seconds[path] += float(case.get("time") or 0)
                break
    return {f: round(s, 1) for f, s in seconds.most_common()}


if __name__ == "__main__":
    COSTS.write_text(json.dumps(costs_from_junit(Path(sys.argv[1])), indent=0) + "\n")
