"""whylogs 1.6.4 profiles + drift scores on the benchmark data; run in bench/.venvs/whylogs.

Times profiling both frames (``why.log``) + ``calculate_drift_scores`` with its default
algorithms (KS on the KLL sketch for numbers, chi-square on frequent items for strings); a
column is flagged when its category is DRIFT (p < 0.05).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("WHYLOGS_NO_ANALYTICS", "True")
sys.path.insert(0, str(Path(__file__).parent))  # for _runner

import pandas as pd
import whylogs as why
from _runner import run
from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

PEER = "whylogs"


def drift(reference: pd.DataFrame, current: pd.DataFrame, num: list[str], cat: list[str]):
    # The frames hold exactly the feature columns; whylogs infers the types itself.
    ref_view = why.log(pandas=reference).view()
    cur_view = why.log(pandas=current).view()
    return calculate_drift_scores(
        target_view=cur_view, reference_view=ref_view, with_thresholds=True
    )


def flagged(result) -> list[str]:
    return [col for col, score in result.items() if score and score["drift_category"] == "DRIFT"]


if __name__ == "__main__":
    # _runner.run: arguments, data, timed repeats, one JSON line (described in _runner.OUTPUT).
    run(PEER, drift, flagged, __doc__)
