"""Evidently 0.7.23 DataDriftPreset on the benchmark data; run inside bench/.venvs/evidently.

Times ``Dataset.from_pandas`` (column types given, not inferred) + ``Report.run`` with the
preset's own method choice and thresholds; a column is flagged when its drift test fails.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("EVIDENTLY_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).parent))  # for _runner

import pandas as pd
from _runner import run
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

PEER = "evidently"


def drift(reference: pd.DataFrame, current: pd.DataFrame, num: list[str], cat: list[str]):
    definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(current, data_definition=definition)
    return Report([DataDriftPreset()], include_tests=True).run(current_data=cur, reference_data=ref)


def flagged(snapshot) -> list[str]:
    out = []
    for test in snapshot.dict()["tests"]:
        column = test["metric_config"]["params"].get("column")
        if column is not None and str(getattr(test["status"], "value", test["status"])) == "FAIL":
            out.append(column)
    return out


if __name__ == "__main__":
    # _runner.run: arguments, data, timed repeats, one JSON line (described in _runner.OUTPUT).
    run(PEER, drift, flagged, __doc__)
