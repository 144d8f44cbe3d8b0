"""Distributed profiling equals the local engine: Dask on a LocalCluster, Spark on local[2].

The Dask engine profiles the local engine's chunks (row groups sliced and gathered), so its
profile's ``to_dict()`` is identical to ``Reference.profile(path)``'s, float moments
included. Spark partitions are its own; its counts are checked field by field against the
local engine on the same rows (duplicates against the same Arrow batches).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiwarden.distributed import dumps, loads, plan_chunks, profile_dask
from aiwarden.engine import Profile, Reference
from aiwarden.errors import DataError

N_REF, CHUNK = 6_000, 2_500
FILES = (4_000, 3_000, 700, 5_300)  # 13,000 rows; row groups of 1,000 straddle the chunks
FLOATS = ("mean", "m2", "below_sum", "above_sum")


def _table(n: int, seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(10 + shift, 3, n)
    x[::97] = np.nan
    x[5::1001] = np.inf
    mask = np.zeros(n, bool)
    mask[3::89] = True
    labels = rng.integers(0, 2, n)
    cats = np.array(["a", "b", "c", "d"] + ([f"u{i}" for i in range(5)] if shift else []))
    return pa.table({
        "x": pa.array(x, mask=mask),
        "k": rng.poisson(2, n).astype(np.int64),  # few values: duplicate rows happen
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
def data(tmp_path_factory) -> tuple[Path, pa.Table]:
    root = tmp_path_factory.mktemp("parquet")
    whole = _table(sum(FILES), 1, shift=0.5).append_column("extra", pa.array(np.zeros(13_000)))
    whole = whole.drop_columns(["id"])  # a schema column absent from the data
    start = 0
    for i, n in enumerate(FILES):
        pq.write_table(whole.slice(start, n), root / f"part-{i}.parquet", row_group_size=1_000)
        start += n
    return root, whole


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c, distributed.Client(c) as cl:
        yield cl


def test_the_plan_is_the_local_engines_chunks(data) -> None:
    root, whole = data
    schema, chunks = plan_chunks(root, CHUNK)
    assert [first for first, _ in chunks] == list(range(0, 13_000, CHUNK))
    sizes = [sum(p.stop - p.start for p in pieces) for _, pieces in chunks]
    assert sizes == [CHUNK] * 5 + [500]
    assert len(chunks[1][1]) == 3  # rows 2500:5000 = rg 2 (half), rg 3 of file 0, rg 0 of file 1
    assert schema.names == whole.column_names


def test_dask_profile_is_identical_to_the_local_engine(ref, data, client) -> None:
    root, _ = data
    local = ref.profile(root, batch_rows=CHUNK)
    remote = profile_dask(ref, root, client, batch_rows=CHUNK)
    assert remote.to_dict() == local.to_dict()  # every field, floats bit for bit
    assert remote.n_rows == 13_000 and remote.extra_columns == {"extra": 13_000}
    assert remote.duplicates > 0  # the duplicate count was exercised, per chunk like local
    assert remote.columns["x"].to_dict()["examples"]  # example rows placed in the whole input
    report = ref.compare(remote)
    assert report.to_dict() == ref.compare(local).to_dict()


def test_dask_profile_with_one_big_chunk_equals_memory_counts(ref, data, client) -> None:
    root, whole = data
    remote = profile_dask(ref, root, client, batch_rows=100_000)
    memory = ref.profile(whole)
    _assert_counts_equal(remote, memory)
    assert remote.duplicates == memory.duplicates


def test_the_reference_survives_the_death_of_the_worker_holding_it(ref, client) -> None:
    """profile_dask hands the reference to its chunk tasks as a task's result: the scheduler
    computes it again when its worker dies. A scattered value died with its worker and the
    chunks failed with "lost dependencies" (CI, 2026-12-06)."""
    from aiwarden.distributed._dask import _same

    shared = client.submit(_same, ref, pure=False)
    shared.result()
    (holder,) = client.who_has(shared)[shared.key][:1]
    with pytest.raises(Exception):  # noqa: B017 - the worker exits under the call
        client.run(os._exit, 1, workers=[holder])
    client.wait_for_workers(2, timeout=60)
    assert client.submit(lambda r: r.profile_.n_rows, shared, pure=False).result(timeout=60) \
        == ref.profile_.n_rows


def test_dask_refuses_a_missing_path_and_a_bad_batch(ref, client, tmp_path) -> None:
    with pytest.raises(DataError, match="No Parquet file"):
        profile_dask(ref, tmp_path / "nope", client)
    with pytest.raises(Exception, match="batch_rows"):
        profile_dask(ref, tmp_path, client, batch_rows=0)


def test_partial_profiles_round_trip_as_bytes(ref, data) -> None:
    _, whole = data
    p = ref.profile(whole)
    assert loads(dumps(p)).to_dict() == p.to_dict()
    assert json.loads(dumps(p))["n_rows"] == 13_000


def _assert_counts_equal(p: Profile, q: Profile) -> None:
    """Field by field: counts, extremes, examples exact; float sums to rounding."""
    assert (p.n_rows, p.extra_columns, p.reference) == (q.n_rows, q.extra_columns, q.reference)
    assert p.columns.keys() == q.columns.keys()
    for name in p.columns:
        a, b = p.columns[name].to_dict(), q.columns[name].to_dict()
        assert a.keys() == b.keys()
        for key in a:
            if key in FLOATS:
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-12, abs=1e-9)
            else:
                assert a[key] == b[key], (name, key)
    assert json.dumps(p.performance.to_dict(), sort_keys=True) is not None
    for k, v in p.performance.to_dict().items():
        w = q.performance.to_dict()[k]
        if isinstance(v, float):
            assert v == pytest.approx(w, rel=1e-12, abs=1e-9), k
        elif not isinstance(v, list | dict):
            assert v == w, k


def _spark_ok() -> bool:
    if importlib.util.find_spec("pyspark") is None:
        return False
    try:
        subprocess.run(["java", "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


@pytest.fixture(scope="module")
def spark():
    if not _spark_ok():
        pytest.skip("pyspark or java is not installed (the spark extra)")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("aiwarden-test")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "1500")
               .config("spark.sql.files.maxPartitionBytes", "96k")  # several partitions
               .config("spark.sql.files.openCostInBytes", "96k")
               .getOrCreate())
    yield session
    session.stop()


@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")
def test_spark_profile_counts_equal_the_local_engine(ref, data, spark) -> None:
    from aiwarden.distributed import profile_spark

    root, whole = data
    df = spark.read.parquet(*[str(root / f"part-{i}.parquet") for i in range(len(FILES))])
    assert df.rdd.getNumPartitions() >= 2
    remote = profile_spark(ref, df)
    assert remote.n_rows == 13_000
    # Spark packs files into partitions largest first: the local engine profiles the same
    # rows in Spark's order (collect is partition order), so example rows compare too. Every
    # count is equal except duplicates, counted within each Arrow batch (local: per chunk).
    rows = df.toArrow()
    assert sorted(rows.column("k").to_pylist()) == sorted(whole.column("k").to_pylist())
    memory = ref.profile(rows)
    _assert_counts_equal(replace_dups(remote, memory), memory)
    assert remote.duplicates <= memory.duplicates
    assert remote.duplicates > 0
    assert ref.compare(remote).drifted_features == ref.compare(memory).drifted_features


def replace_dups(p: Profile, q: Profile) -> Profile:
    from dataclasses import replace

    return replace(p, duplicates=q.duplicates)


def test_cli_fits_then_profiles_on_dask_like_local(data, tmp_path) -> None:
    from aiwarden.cli import main

    root, _ = data
    ref_file, local_file, dask_file = (tmp_path / n for n in ("ref.json", "l.json", "d.json"))
    assert main([ "profile", str(root), "--fit", "--target", "y", "--scores", "score",
                 "-o", str(ref_file)]) == 0
    ref = Reference.from_dict(json.loads(ref_file.read_text()))
    assert ref.profile_.n_rows == 13_000
    assert main(["profile", str(root), "--reference", str(ref_file), "-o", str(local_file),
                 "--model", "m"]) == 0
    assert main(["profile", str(root), "--engine", "dask", "--workers", "1", "--reference",
                 str(ref_file), "-o", str(dask_file), "--batch-rows", "4000"]) == 0
    local, remote = (json.loads(f.read_text()) for f in (local_file, dask_file))
    assert local["model"] == "m" and remote["engine"] == "dask"
    # batch_rows changes only the per-chunk duplicates and the rounding of the moments
    _assert_counts_equal(Profile.from_dict(remote["profile"]),
                         Profile.from_dict(local["profile"]))


def test_cli_refuses_bad_usage_in_one_line(data, tmp_path, capsys) -> None:
    from aiwarden.cli import main

    root, _ = data
    assert main(["profile", str(root), "-o", str(tmp_path / "x.json")]) == 2
    assert "--reference REF.json" in capsys.readouterr().err
    assert main(["profile", str(tmp_path / "nope"), "--fit", "-o", str(tmp_path / "x")]) == 2
    assert "no Parquet file" in capsys.readouterr().err
    # a missing extra is named (run where the import fails: a blocked module)
    code = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['pyspark'] = None; "
         "from aiwarden.cli import main; raise SystemExit(main(sys.argv[1:]))",
         "profile", str(root), "--engine", "spark", "--fit", "-o", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=60)
    assert code.returncode == 2
    assert "'spark' extra" in code.stderr and code.stderr.count("\n") == 1


def test_cli_refuses_an_unwritable_output_before_the_work(data, tmp_path, capsys) -> None:
    """Review: a missing -o folder was a traceback (exit 1) after the whole profile."""
    from aiwarden.cli import main

    root, _ = data
    ref_file = tmp_path / "ref.json"
    assert main(["profile", str(root), "--fit", "--target", "y", "-o", str(ref_file)]) == 0
    capsys.readouterr()
    missing = tmp_path / "nonexistent" / "x.json"
    for argv in (["--reference", str(ref_file)], ["--fit"]):
        assert main(["profile", str(root), *argv, "-o", str(missing)]) == 2
        out, err = capsys.readouterr()
        assert out == ""  # nothing computed: the summary line is printed after the work
        assert err.count("\n") == 1 and err.startswith("aiwarden profile: error: -o/--output")
        assert "does not exist" in err and str(missing.parent) in err
    assert not missing.parent.exists()
    assert main(["profile", str(root), "--reference", str(ref_file), "-o", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    # the long spelling works as docs/cli.md says
    good = tmp_path / "p.json"
    assert main(["profile", str(root), "--reference", str(ref_file), "--output", str(good)]) == 0
    assert json.loads(good.read_text())["profile"]["n_rows"] == 13_000


def test_cli_refuses_fewer_than_one_worker(data, tmp_path, capsys) -> None:
    """Review: --engine dask --workers 0 never returned (a cluster without workers)."""
    from aiwarden.cli import main

    root, _ = data
    out = tmp_path / "x.json"
    # the case that hung, in a process a timeout can end
    res = subprocess.run(
        [sys.executable, "-m", "aiwarden.cli", "profile", str(root), "--fit", "--engine",
         "dask", "--workers", "0", "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "--workers must be at least 1" in res.stderr
    for engine in ("local", "dask", "spark"):
        assert main(["profile", str(root), "--fit", "--engine", engine, "--workers", "-3",
                     "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--workers must be at least 1 (got -3)" in err
    assert not out.exists()
