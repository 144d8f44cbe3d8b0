from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aiwarden.training.contract import TrainingContext


@pytest.fixture
def context(tmp_path: Path) -> TrainingContext:
    """A run's context: four training rows, two holdout rows, parameters {C: 0.5}."""
    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "label": [0, 1, 0, 1]})
    frame.to_parquet(tmp_path / "train.parquet")
    frame.head(2).to_parquet(tmp_path / "holdout.parquet")
    return TrainingContext(7, "fraud", "binary_classification", "label", ["amount"],
                           str(tmp_path / "train.parquet"), str(tmp_path / "holdout.parquet"),
                           str(tmp_path / "run"), {"C": 0.5})
