"""The window sample behind multivariate drift: seeded, bounded, uniform over the window's
rows of one version, read from the stored event batches (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
import uuid

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import kstest

from aiwarden.errors import ParameterError
from aiwarden.monitoring.multivariate_window import MultivariateSettings, window_rows


def test_sample_size_setting_is_bounded() -> None:
    with pytest.raises(ParameterError, match=r"multivariate_rows: expected an int in \[100"):
        MultivariateSettings(rows=5)
    assert MultivariateSettings(rows=100).rows == 100


def test_window_sample_is_uniform_over_one_versions_rows_in_the_window(monitor) -> None:
    name = f"mvw-{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(0)
    ref = pa.table({"x1": rng.normal(size=500), "x3": rng.normal(size=500)})
    monitor.create_model(name)
    monitor.upload_reference(name, "v1", ref)
    monitor.create_version(name, "v2")
    start = time.time() - 5000
    # 40 requests of 100 rows, each split between v1 and v2 (one stored batch per version);
    # x3 is the row's number, so a sampled row says which one it was
    for r in range(40):
        rows = [{"prediction_id": f"p{r}-{i}", "timestamp": start + r * 100 + i,
                 "version": "v1" if i % 4 else "v2",
                 "features": {"x1": 0.0, "x3": float(r * 100 + i)}} for i in range(100)]
        assert monitor.log_predictions(name, rows).accepted == 100
    t0, t1 = start + 1000, start + 3000  # rows 1000..2999
    in_window = [k for k in range(1000, 3000) if k % 4]  # v1's
    with monitor.db.read() as conn:
        m_id = monitor.model(name).id
        got = window_rows(conn, m_id, "v1", t0, t1, len(in_window), ["x1", "x3"], 300, 7)
        again = window_rows(conn, m_id, "v1", t0, t1, len(in_window), ["x1", "x3"], 300, 7)
        other = window_rows(conn, m_id, "v1", t0, t1, len(in_window), ["x1", "x3"], 300, 8)
    picked = got.column("x3").to_numpy().astype(int)
    assert len(picked) == 300 and len(set(picked)) == 300
    assert set(picked) <= set(in_window)  # only v1, only inside the window
    assert got.equals(again) and not got.equals(other)  # seeded
    # uniform over the window's v1 rows
    ranks = np.searchsorted(in_window, picked) / len(in_window)
    assert kstest(ranks, "uniform").pvalue > 0.01
    with monitor.db.read() as conn:  # a window smaller than the sample: every row of it
        small = window_rows(conn, m_id, "v1", start + 100, start + 200, 75, ["x3"], 300, 0)
    assert sorted(small.column("x3").to_numpy().astype(int)) == [
        k for k in range(100, 200) if k % 4]
