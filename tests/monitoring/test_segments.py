"""Segment policy and splitting, checked against pandas on the raw rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aiwarden.alerting.rules import load_rules
from aiwarden.engine.reference import Reference
from aiwarden.engine.schema import Column, ColumnType, Role, Schema
from aiwarden.errors import ParameterError, SchemaError
from aiwarden.monitoring import segments
from aiwarden.monitoring.bucket import BucketData, bucket_starts


def _data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    s = 1 / (1 + np.exp(-2 * x))
    return pd.DataFrame({
        "x": x, "country": rng.choice(list("ABCDEFG"), n, p=[.3, .2, .15, .15, .1, .06, .04]),
        "flag": rng.random(n) < 0.3, "score": s, "pred": (s > 0.5).astype(int),
        "y": (rng.random(n) < s).astype(int)})


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference.fit(_data(4000, 0), target="y", prediction="pred", scores="score",
                         segments=["country", "flag"])


def test_kept_values_are_the_reference_top_n_by_count(ref: Reference) -> None:
    counts = _data(4000, 0).country.value_counts()
    expected = sorted(counts.index, key=lambda v: (-counts[v], v))[:3]
    assert segments.kept_values(ref, "country", 3) == tuple(expected)
    assert set(segments.kept_values(ref, "flag", 20)) == {"true", "false"}


def test_split_partitions_rows_and_merges_back_to_the_whole(ref: Reference) -> None:
    df = _data(3000, 1)
    df.loc[:99, "country"] = "never-seen"
    df.loc[100:109, "country"] = None
    table = pa.Table.from_pandas(df.drop(columns=["y"]), preserve_index=False)
    buckets = bucket_starts(np.arange(len(df)) * 0.5, 60)
    parts = segments.split(ref, table, buckets, 3, lambda p: BucketData(
        rows=len(p), profile=ref.profile(table.take(pa.array(p)))))
    kept = segments.kept_values(ref, "country", 3)
    assert {k.split("=")[0] for k in parts} == {"country", "flag"}
    assert {k for k in parts if k.startswith("country=")} == {
        f"country={v}" for v in [*kept, "__other__"]}
    for value in [*kept, "__other__"]:  # row counts per segment, from pandas
        mask = ~df.country.isin(kept) if value == "__other__" else df.country == value
        got = sum(d.rows for d in parts[f"country={value}"].values())
        assert got == int(mask.sum())
    whole = ref.profile(table)
    for column in ("country", "flag"):
        merged = BucketData.merge_all([d for k, by in parts.items() if k.startswith(column)
                                       for d in by.values()])
        assert merged.rows == len(df)
        for name in ("x", "score"):  # merging the segments of one column gives the whole
            a, b = merged.profile.columns[name], whole.columns[name]
            assert np.array_equal(a.counts, b.counts) and a.mean == pytest.approx(b.mean)


def test_parse_and_schema_checks() -> None:
    assert segments.parse("country:BR") == segments.Segment("country", "BR")
    assert segments.parse("url=a:b").value == "a:b"
    for bad in ("country", "country:", ":BR", ""):
        with pytest.raises(ParameterError, match="column:value"):
            segments.parse(bad)
    schema = Schema((Column("amount", ColumnType.NUMERICAL, Role.SEGMENT),))
    with pytest.raises(SchemaError, match="'amount' is numerical") as err:
        segments.check_schema(schema)
    assert err.value.field == "amount"


def test_rule_segment_fields_are_validated() -> None:
    ok = load_rules({"rules": [{"name": "a", "metric": "performance", "stat": "accuracy",
                                "op": "<", "critical": 0.7, "segment": {"flag": True}}]})
    assert ok.rules[0].segment == {"flag": "true"}
    cases = {"not both": {"segment": {"c": "BR"}, "segment_by": "c"},
             "one column and its value": {"segment": {"c": "BR", "d": "x"}},
             "resource samples have no segments": {"segment_by": "c", "metric": "resources",
                                                   "stat": "cost_per_1k"}}
    for message, extra in cases.items():
        rule = {"name": "a", "metric": "performance", "critical": 0.7} | extra
        with pytest.raises(ParameterError, match=message):
            load_rules({"rules": [rule]})


def test_compaction_merges_segment_partials_and_changes_no_value(monitor) -> None:
    """On SQLite and PostgreSQL: two requests into the same buckets leave two partials per
    segment key; compaction leaves one, and every segment reads the same before and after."""
    import time

    from sqlalchemy import func, select

    from aiwarden.store.tables import segment_profiles as sp

    monitor.create_model("seg-compact")
    monitor.upload_reference("seg-compact", "v1", pa.Table.from_pandas(
        _data(2000, 0), preserve_index=False), {"target": "y", "prediction": "pred",
                                                "scores": ["score"], "segments": ["country"]})
    t0 = (time.time() - 1800) // 600 * 600
    for part in range(2):
        df = _data(400, 5 + part).drop(columns=["y", "flag"])
        df.insert(0, "prediction_id", [f"k{part}-{i}" for i in range(len(df))])
        df.insert(1, "timestamp", t0 + np.arange(len(df)) * 0.5)
        monitor.log_predictions("seg-compact", pa.Table.from_pandas(df, preserve_index=False))

    def state() -> tuple[int, dict[str, int]]:
        with monitor.db.read() as conn:
            most = conn.execute(select(func.count()).select_from(sp).group_by(
                sp.c.segment, sp.c.level, sp.c.start).order_by(func.count().desc())).first()
        values = {v: monitor.series("seg-compact", "volume", start=t0, end=t0 + 600,
                                    segment=f"country:{v}")["points"][0]["value"]["rows"]
                  for v in monitor.segments("seg-compact")["columns"]["country"]}
        return most[0], values

    before_most, before = state()
    assert before_most == 2 and sum(before.values()) == 800
    while monitor.compact():
        pass
    after_most, after = state()
    assert after_most == 1 and after == before


def test_a_bad_top_n_names_the_setting() -> None:
    assert segments.check_top_n(10) == 10
    for bad in (0, 1001, True, 2.5):
        with pytest.raises(ParameterError, match="AIWARDEN_SEGMENT_TOP_N"):
            segments.check_top_n(bad)


def test_a_segment_column_name_must_leave_room_for_its_values() -> None:
    name = "c" * 91
    with pytest.raises(SchemaError, match="longer than 90") as err:
        segments.check_schema(Schema((Column(name, ColumnType.CATEGORICAL, Role.SEGMENT),)))
    assert err.value.field == name
    segments.check_schema(Schema((Column("c" * 90, ColumnType.CATEGORICAL, Role.SEGMENT),)))
