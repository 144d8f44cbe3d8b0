"""Training rows from labelled events: the recent holdout, the random fallback, lineage."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from aiwarden.errors import DataError
from aiwarden.training.data import labelled_rows, split

NOW = 1_000_000.0


def _events(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(str).astype(object)
    labels[::5] = None  # one in five still waits for its label
    return pa.table({"prediction_id": [f"p{i}" for i in range(n)],
                     "timestamp": NOW - 7 * 86400 + np.arange(n) * (7 * 86400 / n),
                     "amount": rng.lognormal(3, 1, n), "country": rng.choice(["US", "BR"], n),
                     "prediction": rng.integers(0, 2, n), "label": pa.array(labels, pa.string())})


def test_labelled_rows_keep_features_and_typed_labels() -> None:
    rows = labelled_rows(_events(1000), target="is_fraud", features=["amount", "country"])
    assert rows.num_rows == 800
    assert rows.column_names == ["amount", "country", "timestamp", "prediction_id", "is_fraud"]
    assert rows.schema.field("is_fraud").type == pa.int64()
    with pytest.raises(DataError, match="'merchant'"):
        labelled_rows(_events(10), target="y", features=["merchant"])


def test_the_holdout_is_the_most_recent_day_and_the_lineage_says_so() -> None:
    rows = labelled_rows(_events(7000), target="y", features=["amount", "country"])
    data = split(rows, now=NOW, holdout_window=86400, share=0.2, seed=0, min_rows=100)
    assert data.holdout.num_rows == pytest.approx(800, abs=2)  # one day of seven, labelled
    assert data.train.num_rows + data.holdout.num_rows == rows.num_rows
    assert "timestamp" not in data.train.column_names
    assert data.lineage["holdout"] == "the most recent 86400 s"
    again = split(rows, now=NOW, holdout_window=86400, share=0.2, seed=0, min_rows=100)
    assert again.lineage["sha256"] == data.lineage["sha256"]  # same rows, same hash


def test_a_thin_recent_window_falls_back_to_a_seeded_random_share() -> None:
    rows = labelled_rows(_events(300), target="y", features=["amount"])
    data = split(rows, now=NOW, holdout_window=3600, share=0.25, seed=3, min_rows=50)
    assert data.lineage["holdout"] == "a random 25% (seed 3)"
    assert data.holdout.num_rows == 60


def test_extra_rows_join_the_training_side_only_and_thin_data_is_refused() -> None:
    rows = labelled_rows(_events(2000), target="y", features=["amount"])
    extra = rows.drop_columns(["timestamp"]).slice(0, 100)
    data = split(rows, now=NOW, holdout_window=86400, share=0.2, seed=0, min_rows=10,
                 extra=extra)
    base = split(rows, now=NOW, holdout_window=86400, share=0.2, seed=0, min_rows=10)
    assert data.train.num_rows == base.train.num_rows + 100
    assert data.holdout.num_rows == base.holdout.num_rows
    with pytest.raises(DataError, match=r"data\.min_rows"):
        split(rows, now=NOW, holdout_window=86400, share=0.2, seed=0, min_rows=5000)
