"""Out-of-core inputs: datasets, readers, LazyFrames and Parquet paths profile like memory.

Every streamed profile is checked field by field against the in-memory profile of the
same rows (counts, examples and heavy hitters exact; float moments to rounding), and the
moments and histograms against numpy on the raw values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from scipy import stats

from aiwarden.engine import Profile, Reference, infer_schema
from aiwarden.engine._streaming import open_source, sample
from aiwarden.errors import Cancelled, DataError, ParameterError

N_REF, N_CUR, CHUNK = 8_000, 15_000, 2_500
FLOATS = ("mean", "m2", "below_sum", "above_sum")


def _table(n: int, seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(10 + shift, 3, n)
    x[::97] = np.nan
    x[5::1001] = np.inf
    if shift:
        x[7::3001] = 1e9  # far above the reference range: tail sums and range examples
    mask = np.zeros(n, bool)
    mask[3::89] = True
    labels = rng.integers(0, 2, n)
    cats = np.array(["a", "b", "c", "d"] + ([f"u{i}" for i in range(5)] if shift else []))
    return pa.table({
        "x": pa.array(x, mask=mask),  # nulls and NaNs both, counted apart
        "k": rng.poisson(4, n).astype(np.int64),
        "c": pa.array(rng.choice(cats, n)).to_pylist(),
        "b": rng.random(n) < 0.3,
        "id": np.arange(n),
        "y": labels,
        "score": np.clip(labels * 0.3 + rng.random(n) * 0.7, 0, 1),
    })


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference.fit(_table(N_REF, 0), id="id", target="y", scores="score")


@pytest.fixture(scope="module")
def current() -> pa.Table:
    return _table(N_CUR, 1, shift=0.5).append_column("extra", pa.array(np.zeros(N_CUR)))


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory: pytest.TempPathFactory, current: pa.Table) -> Path:
    out = tmp_path_factory.mktemp("cur")
    ds.write_dataset(current, out, format="parquet", max_rows_per_file=4_000,
                     max_rows_per_group=1_500, basename_template="part-{i}.parquet")
    return out


def _reader(t: pa.Table) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=2_500))


def _assert_equal(p: Profile, q: Profile) -> None:
    """Field by field: integers, counts, extremes and examples exact; float sums to rounding."""
    assert (p.n_rows, p.extra_columns, p.reference) == (q.n_rows, q.extra_columns, q.reference)
    assert p.columns.keys() == q.columns.keys()
    for name in p.columns:
        a, b = p.columns[name].to_dict(), q.columns[name].to_dict()
        assert a.keys() == b.keys()
        for key in a:
            if key in FLOATS:
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-12, abs=1e-9), key
            else:
                assert a[key] == b[key], (name, key)
    _close(p.performance.to_dict(), q.performance.to_dict())
    _close(p.estimated.to_dict(), q.estimated.to_dict())


def _close(a: object, b: object) -> None:
    """Nested equality: ints, strings and structure exact, floats to rounding."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            _close(a[key], b[key])
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _close(x, y)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-12, abs=1e-12)
    else:
        assert a == b


SOURCES = {
    "dataset": lambda t, d: ds.dataset(t),
    "reader": lambda t, d: _reader(t),
    "lazyframe": lambda t, d: pl.from_arrow(t).lazy(),
    "parquet_dir": lambda t, d: d,
    "parquet_dir_str": lambda t, d: str(d),
    "parquet_dataset": lambda t, d: ds.dataset(d),
}


@pytest.mark.parametrize("kind", list(SOURCES))
def test_streamed_profile_equals_in_memory(kind: str, ref: Reference, current: pa.Table,
                                           parquet_dir: Path) -> None:
    data = SOURCES[kind](current, parquet_dir)
    expected = current
    if kind.startswith("parquet"):  # file order is the write order; read it back to be sure
        expected = ds.dataset(parquet_dir).to_table()
        assert expected.num_rows == N_CUR
    if kind == "lazyframe":
        expected = pl.from_arrow(current)  # what the in-memory path gets from polars
    streamed = ref.profile(data, batch_rows=CHUNK)
    _assert_equal(streamed, ref.profile(expected))
    assert streamed.columns["x"].nan > 0 and streamed.columns["x"].missing > 0
    assert streamed.columns["c"].unseen > 0 and streamed.columns["x"].counts[-1] > 0
    assert streamed.extra_columns == {"extra": N_CUR}


def test_moments_and_histogram_match_numpy(ref: Reference, current: pa.Table) -> None:
    p = ref.profile(pl.from_arrow(current).lazy(), batch_rows=3_333).columns["k"]
    raw = current.column("k").to_numpy().astype(float)
    assert p.count == len(raw)
    assert p.mean == pytest.approx(raw.mean(), rel=1e-12)
    assert p.variance == pytest.approx(raw.var(), rel=1e-12)
    edges = ref.binnings_["k"].edges
    expected = np.bincount(np.searchsorted(edges, raw, side="right"), minlength=len(edges) + 1)
    np.testing.assert_array_equal(p.counts, expected)


def test_chunk_size_does_not_change_counts(ref: Reference, current: pa.Table) -> None:
    lf = pl.from_arrow(current).lazy()
    a, b = ref.profile(lf, batch_rows=1_000), ref.profile(lf, batch_rows=14_999)
    for name in a.columns:
        np.testing.assert_array_equal(getattr(a.columns[name], "counts", 0),
                                      getattr(b.columns[name], "counts", 0))


def test_duplicates_counted_within_chunks() -> None:
    """The one documented difference: repeats are found within a chunk, as in a merged
    window of buckets (exact cross-chunk counting needs memory that grows with the rows)."""
    rng = np.random.default_rng(3)
    t = pa.table({"x": np.repeat(rng.normal(size=500), 2), "c": np.repeat(
        rng.choice(["a", "b"], 500), 2)})
    r = Reference.fit(t)
    assert r.profile(t).duplicates == 500
    streamed = r.profile(ds.dataset(t), batch_rows=101)
    per_chunk = sum(r.profile(t.slice(i, 101)).duplicates for i in range(0, 1000, 101))
    assert streamed.duplicates == per_chunk == 500 - 5  # pairs split at 5 odd boundaries


def test_labels_only_streamed(ref: Reference, current: pa.Table) -> None:
    a = ref.profile(_reader(current), labels_only=True)
    b = ref.profile(current, labels_only=True)
    assert a.n_rows == 0 and a.performance.n_scored == N_CUR
    _close(a.performance.to_dict(), b.performance.to_dict())


@pytest.mark.parametrize("kind", ["dataset", "reader", "lazyframe"])
def test_fit_within_sample_equals_in_memory(kind: str) -> None:
    t = _table(N_REF, 0)
    hints = {"id": "id", "target": "y", "scores": "score"}
    data = SOURCES[kind](t, None)
    expected = pl.from_arrow(t) if kind == "lazyframe" else t
    a = Reference.fit(data, batch_rows=CHUNK, **hints).to_dict()
    b = Reference.fit(expected, **hints).to_dict()
    assert a == b


def test_fit_over_sample_counts_every_row(tmp_path: Path) -> None:
    t = _table(N_REF, 0).append_column("row", pa.array(np.arange(N_REF)))
    pq.write_table(t, tmp_path / "ref.parquet", row_group_size=1_500)
    k = 3_000
    ref = Reference.fit(tmp_path / "ref.parquet", sample_rows=k, batch_rows=CHUNK,
                        id="id", target="y", scores="score", dtypes={"row": "identifier"})
    assert ref.profile_.n_rows == N_REF
    # Bins from the sample (the same rows whatever the chunking), counts from every row.
    smp, n = sample(open_source(ds.dataset(t)), k, batch_rows=777, seed=0)
    assert n == N_REF and smp.num_rows == k
    on_sample = Reference.fit(smp, id="id", target="y", scores="score",
                              dtypes={"row": "identifier"})
    assert ref.fingerprint == on_sample.fingerprint
    full = on_sample.profile(t)
    for name, col in ref.profile_.columns.items():
        np.testing.assert_array_equal(getattr(col, "counts", 0),
                                      getattr(full.columns[name], "counts", 0))
        assert col.n == N_REF
    # The sample is uniform over the stream and kept in stream order.
    rows = smp.column("row").to_numpy()
    assert np.all(np.diff(rows) > 0)
    assert stats.kstest(rows / N_REF, "uniform").pvalue > 1e-3


def test_sample_edges_error_bound() -> None:
    """The stated error: an edge at sample rank q sits within DKW's epsilon of rank q in
    the full data (delta 1e-6), for every interior edge at once."""
    rng = np.random.default_rng(5)
    n, k = 400_000, 20_000
    t = pa.table({"x": rng.lognormal(0, 1, n)})
    smp, _ = sample(open_source(ds.dataset(t)), k, batch_rows=65_536, seed=1)
    edges = Reference.fit(smp).binnings_["x"].interior
    x_all, x_smp = np.sort(t.column("x").to_numpy()), np.sort(smp.column("x").to_numpy())
    gap = np.abs(np.searchsorted(x_all, edges) / n - np.searchsorted(x_smp, edges) / k)
    eps = np.sqrt(np.log(2 / 1e-6) / (2 * k))
    assert gap.max() <= eps


def test_one_shot_reader_over_sample_keeps_the_sample() -> None:
    t = _table(5_000, 2)
    reader = _reader(t)
    ref = Reference.fit(reader, sample_rows=1_000, id="id", target="y", scores="score")
    assert ref.profile_.n_rows == 1_000
    with pytest.raises(DataError, match="can be read once; one already read is empty"):
        ref.profile(reader)


def test_unsupported_and_bad_inputs(tmp_path: Path, ref: Reference) -> None:
    with pytest.raises(DataError, match="Got list_iterator instead"):
        ref.profile(iter([pa.table({"x": [1.0]})]))
    with pytest.raises(DataError, match="No Parquet file or directory"):
        ref.profile(tmp_path / "nope.parquet")
    (tmp_path / "a.csv").write_text("x\n1\n")
    with pytest.raises(DataError, match=r"Cannot read .*a\.csv.* as Parquet"):
        ref.profile(tmp_path / "a.csv")
    with pytest.raises(DataError, match="LazyFrame is read chunk by chunk only by"):
        infer_schema(pl.LazyFrame({"x": [1.0]}))
    with pytest.raises(DataError, match="no rows"):
        ref.profile(pa.RecordBatchReader.from_batches(pa.schema([("x", pa.float64())]), []))
    with pytest.raises(ParameterError, match=r"'batch_rows' parameter of Reference\.profile"):
        ref.profile(ds.dataset(pa.table({"x": [1.0]})), batch_rows=0)
    with pytest.raises(ParameterError, match="'sample_rows' parameter of Reference"):
        Reference.fit(ds.dataset(pa.table({"x": [1.0]})), sample_rows=0)


def test_streamed_fit_stops_when_asked() -> None:
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 2  # stop during the sampling pass, after two chunks

    with pytest.raises(Cancelled, match="should_stop"):
        Reference.fit(ds.dataset(_table(5_000, 4)), batch_rows=1_000, should_stop=stop)
    assert len(calls) == 3


def test_partitioned_and_filtered_datasets(tmp_path: Path, ref: Reference,
                                           current: pa.Table) -> None:
    """Hive partitions come back as columns (read row group by row group); a filtered
    dataset, which gives no fragments, goes through Arrow's scanner with its filter."""
    ds.write_dataset(current, tmp_path, format="parquet", partitioning=["b"],
                     partitioning_flavor="hive", max_rows_per_group=2_000,
                     min_rows_per_group=1)
    parts = ds.dataset(tmp_path, partitioning="hive")
    expected = parts.to_table()
    assert expected.column("b").type == pa.string()  # partition values read back as text
    _assert_equal(ref.profile(parts, batch_rows=CHUNK), ref.profile(expected))
    kept = ds.dataset(current).filter(ds.field("k") > 3)
    _assert_equal(ref.profile(kept, batch_rows=CHUNK), ref.profile(kept.to_table()))


def test_small_batches_gathered_into_chunks() -> None:
    t = pa.table({"x": np.arange(1_050.0)})
    chunks = list(open_source(pa.RecordBatchReader.from_batches(
        t.schema, t.to_batches(max_chunksize=7))).batches(None, 100))
    assert [c.num_rows for c in chunks] == [100] * 10 + [50]
    assert pa.concat_tables(chunks).equals(t)
