"""NannyML 0.13.1 UnivariateDriftCalculator on the benchmark data; run in bench/.venvs/nannyml.

Times ``fit`` on reference + ``calculate`` on current with NannyML's defaults (Jensen-Shannon
for both column kinds, thresholds learned from 10 reference chunks, 10 chunks); a column is
flagged when any analysis chunk raises an alert.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
sys.path.insert(0, str(Path(__file__).parent))  # for _runner

import nannyml as nml
import pandas as pd
from _runner import run

PEER = "nannyml"


def drift(reference: pd.DataFrame, current: pd.DataFrame, num: list[str], cat: list[str]):
    calc = nml.UnivariateDriftCalculator(
        column_names=[*num, *cat],
        treat_as_numerical=num,
        treat_as_categorical=cat,
        chunk_number=10,
    )
    calc.fit(reference)
    return calc.calculate(current)


def flagged(result) -> list[str]:
    df = result.filter(period="analysis").to_df()
    return sorted({col[0] for col in df.columns if col[-1] == "alert" and df[col].any()})


if __name__ == "__main__":
    # _runner.run: arguments, data, timed repeats, one JSON line (described in _runner.OUTPUT).
    run(PEER, drift, flagged, __doc__)
