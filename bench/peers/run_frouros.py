"""Frouros 0.9.0 KS / chi-square per column on the benchmark data; run in bench/.venvs/frouros.

Times, for every column, ``fit`` on reference + ``compare`` on current: ``KSTest`` for
numerical columns, ``ChiSquareTest`` for categorical ones; flagged when p < 0.05.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
sys.path.insert(0, str(Path(__file__).parent))  # for _runner

import pandas as pd
from _runner import run
from frouros.detectors.data_drift import ChiSquareTest, KSTest

PEER = "frouros"
ALPHA = 0.05


def drift(reference: pd.DataFrame, current: pd.DataFrame, num: list[str], cat: list[str]):
    p_values = {}
    for cols, test in ((num, KSTest), (cat, ChiSquareTest)):
        for col in cols:
            detector = test()
            detector.fit(X=reference[col].to_numpy())
            result, _ = detector.compare(X=current[col].to_numpy())
            p_values[col] = float(result.p_value)
    return p_values


def flagged(result) -> list[str]:
    return [col for col, p in result.items() if p < ALPHA]


if __name__ == "__main__":
    # _runner.run: arguments, data, timed repeats, one JSON line (described in _runner.OUTPUT).
    run(PEER, drift, flagged, __doc__)
