"""The one-pass grouped profile equals profiling each group's rows on their own.

For every group: bin counts and every integer field exactly, float moments and tail sums
to rounding (summed in another order), unseen heavy hitters with the same ties, CBPE's
expected counts and, for labelled rows, realised performance.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aiwarden.engine import Reference
from aiwarden.engine._frame import is_stringlike
from aiwarden.engine.profile import Profile
from aiwarden.monitoring.grouped import RowPass
from aiwarden.monitoring.packed import Packed
from tests.monitoring.test_latency_bucket import without_examples


def close(a: object, b: object, path: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, a.keys(), b.keys())
        for k in a:
            close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            close(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert isinstance(b, float) and b == pytest.approx(a, rel=1e-9, abs=1e-9), (path, a, b)
    else:
        assert type(a) is type(b) and a == b, (path, a, b)


def frame(n: int, seed: int, shift: float = 0.0, classes: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    out = pd.DataFrame({
        "id": [f"r{seed}-{i}" for i in range(n)], "x": x, "k": rng.integers(0, 5, n),
        "amount": rng.lognormal(3, 1, n), "c": rng.choice(["a", "b", "c", "d"], n),
        "flag": rng.random(n) < 0.3, "note": rng.choice(["ok", "late order", "x"], n),
        "country": rng.choice([f"c{i}" for i in range(12)], n)})
    if classes == 2:
        out["score"] = 1 / (1 + np.exp(-2 * x))
        out["pred"] = (out.score > 0.5).astype(int)
        out["y"] = (rng.random(n) < out.score).astype(int)
    else:
        logits = np.column_stack([x, -x, 0.5 * x + rng.normal(0, 1, n)])
        p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        for k, label in enumerate("abc"):
            out[f"p_{label}"] = p[:, k]
        out["pred"] = np.array(list("abc"))[p.argmax(axis=1)]
        out["y"] = np.array(list("abc"))[[rng.choice(3, p=row) for row in p]]
    return out


def dirty(df: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Nulls, NaN, infinities, far and negative values, unseen categories, all tied."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    n = len(df)
    pick = lambda k: rng.choice(n, k, replace=False)  # noqa: E731
    out.loc[pick(n // 30), "x"] = np.nan  # a NaN, not a missing value (see to_table)
    out.loc[pick(5), "x"] = np.inf
    out.loc[pick(4), "x"] = -np.inf
    out.loc[pick(6), "x"] = 1e300
    out["x_missing"] = False
    out.loc[pick(n // 20), "x_missing"] = True
    out.loc[pick(n // 10), "amount"] = -rng.lognormal(3, 1, n // 10)
    out.loc[pick(n // 15), "amount"] = np.nan
    out["c"] = out["c"].astype(object)
    out.loc[pick(n // 8), "c"] = rng.choice([f"new-{i}" for i in range(50)], n // 8)
    out.loc[pick(n // 25), "c"] = None
    out["note"] = out["note"].astype(object)
    out.loc[pick(n // 25), "note"] = None
    out["k"] = out["k"].astype(float)
    out.loc[pick(n // 25), "k"] = 99.0
    return out


def to_table(df: pd.DataFrame) -> pa.Table:
    """Arrow keeps NaN apart from null only when told which values are null."""
    table = pa.Table.from_pandas(df.drop(columns="x_missing"), preserve_index=False)
    x = pa.array(df["x"].to_numpy(), mask=df["x_missing"].to_numpy(), from_pandas=False)
    return table.set_column(table.column_names.index("x"), "x", x)


def expected(ref: Reference, table: pa.Table, part: np.ndarray) -> Profile:
    return without_examples(ref.profile(table.take(pa.array(part)), check_duplicates=False))


def check(ref: Reference, table: pa.Table, group: np.ndarray) -> list[Packed]:
    n_groups = int(group.max()) + 1
    got = RowPass(ref, table).packed(group, n_groups)
    assert len(got) == n_groups
    for i, packed in enumerate(got):
        part = np.flatnonzero(group == i)
        want = expected(ref, table, part)
        assert packed.layout() == Packed.from_profile(want).layout()
        close(want.to_dict(), packed.to_profile().to_dict(), f"group {i}")
    return got


def totals(got: list[Packed]) -> dict[str, int]:
    """How often each numerical counter moved over all groups (so the test covers it)."""
    ints = np.sum([p.num_ints.sum(axis=0) for p in got], axis=0)
    return dict(zip(["n", "missing", "nan", "posinf", "neginf", "invalid", "absent",
                     "negative"], ints.tolist(), strict=True))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_grouped_equals_per_group_profiles_binary(seed: int) -> None:
    ref = Reference.fit(frame(3000, 0), target="y", prediction="pred", scores="score",
                        id="id", segments=["country"], dtypes={"note": "text"})
    df = dirty(frame(2500, seed, shift=0.3), seed)
    table = to_table(df.drop(columns="y"))
    rng = np.random.default_rng(seed)
    # many groups of very different sizes, including single rows
    group = np.minimum(rng.geometric(0.08, len(df)) - 1, 60)
    _, group = np.unique(group, return_inverse=True)
    got = check(ref, table, group)
    assert len(got) > 30 and min(p.n_rows for p in got) == 1
    moved = totals(got)
    assert all(moved[k] > 0 for k in ("missing", "nan", "posinf", "neginf", "negative"))
    assert sum(len(p.cat_top.get("c", {})) > 1 for p in got) > 10  # ties among unseen
    assert all(p.estimated is not None for p in got)
    # one group: the whole batch
    check(ref, table, np.zeros(len(df), np.int64))


def test_grouped_with_labels_extra_and_absent_columns() -> None:
    ref = Reference.fit(frame(2000, 0), target="y", prediction="pred", scores="score",
                        id="id")
    df = dirty(frame(900, 5), 5).drop(columns=["amount"])  # a schema column is absent
    df["unknown"] = 1.0  # a column the reference does not know
    table = to_table(df)  # labelled: realised too
    group = np.random.default_rng(5).integers(0, 7, len(df))
    check(ref, table, group)
    got = RowPass(ref, table).packed(group, 7)
    assert all(p.performance is not None and p.extra_columns == {"unknown": p.n_rows}
               for p in got)


def test_grouped_multiclass_and_string_numbers() -> None:
    ref = Reference.fit(frame(3000, 0, classes=3), target="y", prediction="pred",
                        scores={"p_a": "a", "p_b": "b", "p_c": "c"}, id="id")
    df = dirty(frame(1200, 8, classes=3), 8).drop(columns="y")
    df["amount"] = df["amount"].astype(object)  # numbers as text, some not numbers
    idx = np.random.default_rng(8).choice(len(df), 30, replace=False)
    df.loc[idx[:10], "amount"] = "oops"
    df.loc[idx[10:15], "amount"] = "NaN"
    df.loc[idx[15:], "amount"] = "12.5"
    df["amount"] = df["amount"].map(lambda v: v if isinstance(v, str) or v is None
                                    else repr(float(v)))
    table = to_table(df)
    assert is_stringlike(table.schema.field("amount").type)
    got = check(ref, table, np.random.default_rng(8).integers(0, 9, len(df)))
    assert totals(got)["invalid"] == 10 and totals(got)["nan"] > 5


def test_grouped_regression_estimates_group_by_group() -> None:
    rng = np.random.default_rng(4)
    n = 1500
    x = rng.normal(0, 1, n)
    df = pd.DataFrame({"x": x, "c": rng.choice(["a", "b"], n),
                       "pred": 2 * x + rng.normal(0, 0.1, n)})
    df["y"] = df.pred + rng.normal(0, 0.5 + np.abs(x), n)
    ref = Reference.fit(df, target="y", prediction="pred", task="regression")
    assert ref.performance_model_ is not None
    cur = df.drop(columns="y").iloc[:600]
    check(ref, pa.Table.from_pandas(cur, preserve_index=False),
          rng.integers(0, 4, len(cur)))


def test_grouped_refuses_empty_groups() -> None:
    ref = Reference.fit(frame(500, 0), target="y", prediction="pred", scores="score")
    table = pa.Table.from_pandas(frame(50, 1).drop(columns="y"), preserve_index=False)
    with pytest.raises(ValueError, match="at least one row"):
        RowPass(ref, table).packed(np.zeros(50, np.int64), 2)


def test_ingest_stores_each_segments_profile_of_its_own_rows(monitor) -> None:
    """Through the store (SQLite and PostgreSQL): every segment's bucket reads back as the
    profile, row count, errors and latencies of that segment's rows in that bucket."""
    import time

    from aiwarden.monitoring import latency, segments

    ref_df = frame(3000, 0)
    monitor.create_model("grouped")
    monitor.upload_reference("grouped", "v1", pa.Table.from_pandas(ref_df, preserve_index=False),
                             {"target": "y", "prediction": "pred", "scores": ["score"],
                              "id": "id", "segments": ["country", "flag"]})
    df = frame(1500, 3, shift=0.4).drop(columns="y")
    rng = np.random.default_rng(3)
    df.loc[rng.choice(len(df), 200, replace=False), "country"] = "never-seen"
    df.loc[rng.choice(len(df), 40, replace=False), "c"] = None
    df.loc[rng.choice(len(df), 60, replace=False), "amount"] = -1.0
    t0 = (time.time() - 3600) // 60 * 60
    df.insert(0, "prediction_id", [f"g-{i}" for i in range(len(df))])
    df.insert(1, "timestamp", t0 + rng.uniform(0, 179, len(df)))  # three buckets
    df["latency_ms"] = rng.lognormal(3, 1, len(df))
    df["error"] = rng.random(len(df)) < 0.05
    table = pa.Table.from_pandas(df, preserve_index=False)
    assert monitor.log_predictions("grouped", table).accepted == len(df)
    ref, _ = monitor.window("grouped", t0, t0 + 60)
    feats = table.select([c.name for c in ref.schema_.columns if c.name in df])
    buckets = (df.timestamp.to_numpy() // 60 * 60).astype(np.int64)
    seen = 0
    for column in ("country", "flag"):
        codes, values = segments.row_values(ref, table, column, segments.DEFAULT_TOP_N)
        for b in np.unique(buckets).tolist():
            for i, value in enumerate(values):
                part = np.flatnonzero((codes == i) & (buckets == b))
                _, got = monitor.window("grouped", b, b + 60, segment=f"{column}={value}")
                assert got.rows == len(part)
                if not len(part):
                    continue
                seen += 1
                assert got.errors == int(df.error.to_numpy()[part].sum())
                assert got.latency.tolist() == latency.histogram(
                    df.latency_ms.to_numpy()[part]).tolist()
                want = expected(ref, feats, part)
                close(want.to_dict(), got.profile.to_dict(), f"{column}={value} @ {b}")
    assert seen > 30
