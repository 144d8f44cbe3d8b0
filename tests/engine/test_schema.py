"""Schema inference: types, roles, task and classes; hints, overrides, persistence, errors."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from aiwarden.engine import Column, ColumnType, Role, Schema, Task, infer_schema
from aiwarden.errors import AiwardenError, DataError, ParameterError, SchemaError

N = 1000


def _frame(seed: int = 0, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "amount": rng.normal(100.0, 20.0, n),
        "count": rng.integers(0, 100, n),
        "country": rng.choice(["FR", "DE", "US", "ES"], n),
        "flag": rng.random(n) < 0.3,
        "created_at": pd.date_range("2024-01-01", periods=n, freq="h"),
        "user_id": [f"u{i:07d}" for i in range(n)],
        "comment": [f"free text comment number {i} about the order" for i in range(n)],
        "target": rng.integers(0, 2, n),
        "prediction": rng.integers(0, 2, n),
        "score": rng.random(n),
    })


EXPECTED = {
    "amount": (ColumnType.NUMERICAL, Role.FEATURE),
    "count": (ColumnType.NUMERICAL, Role.FEATURE),
    "country": (ColumnType.CATEGORICAL, Role.FEATURE),
    "flag": (ColumnType.BOOLEAN, Role.FEATURE),
    "created_at": (ColumnType.DATETIME, Role.TIMESTAMP),
    "user_id": (ColumnType.IDENTIFIER, Role.ID),
    "comment": (ColumnType.TEXT, Role.FEATURE),
    # Class labels are categories even when written as 0/1 integers.
    "target": (ColumnType.CATEGORICAL, Role.TARGET),
    "prediction": (ColumnType.CATEGORICAL, Role.PREDICTION),
    "score": (ColumnType.NUMERICAL, Role.SCORE),
}


def _as(kind: str, df: pd.DataFrame):
    if kind == "pandas":
        return df
    if kind == "polars":
        return pl.from_pandas(df)
    if kind == "pyarrow":
        return pa.Table.from_pandas(df, preserve_index=False)
    if kind == "records":
        return df.to_dict("records")
    raise AssertionError(kind)


INPUTS = ["pandas", "polars", "pyarrow", "records"]


# ----------------------------------------------------------------------------- types and roles
@pytest.mark.parametrize("kind", INPUTS)
def test_types_and_roles_inferred_from_every_input_kind(kind: str) -> None:
    schema = infer_schema(_as(kind, _frame()))
    assert schema.names == tuple(EXPECTED)
    got = {c.name: (c.dtype, c.role) for c in schema.columns}
    assert got == EXPECTED
    assert schema.task == Task.BINARY
    assert schema.classes == ("0", "1")
    # The single unlabelled score of a binary task is the positive (last) class.
    assert schema["score"].label == "1"
    assert schema.features == ("amount", "count", "country", "flag", "comment")


def test_same_schema_from_every_input_kind() -> None:
    df = _frame(3)
    schemas = [infer_schema(_as(kind, df)) for kind in INPUTS]
    assert all(s == schemas[0] for s in schemas[1:])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (pd.array([1, None, 3] * 10, dtype="Int64"), ColumnType.NUMERICAL),
        (np.arange(30, dtype=np.float32), ColumnType.NUMERICAL),
        (pd.array([True, None, False] * 10, dtype="boolean"), ColumnType.BOOLEAN),
        ([True, None, False] * 10, ColumnType.BOOLEAN),
        (pd.date_range("2024-01-01", periods=30, tz="UTC"), ColumnType.DATETIME),
        ([dt.date(2024, 1, i + 1) for i in range(30)], ColumnType.DATETIME),
        (pd.Series(["a", "b", None] * 10, dtype="string[pyarrow]"), ColumnType.CATEGORICAL),
    ],
    ids=["Int64-NA", "float32", "boolean-NA", "object-bool", "tz-datetime", "date", "arrow-str"],
)
def test_pandas_extension_dtypes(values, expected: ColumnType) -> None:
    assert infer_schema(pd.DataFrame({"v": values}))["v"].dtype == expected


def test_pyarrow_decimal_is_numerical() -> None:
    t = pa.table({"d": pa.array([1, 2, 3], pa.decimal128(5, 2))})
    assert infer_schema(t)["d"].dtype == ColumnType.NUMERICAL


def test_pandas_category_dtype_is_categorical() -> None:
    s = pd.Series(np.random.default_rng(0).choice(["a", "b", "c"], 200)).astype("category")
    assert infer_schema(pd.DataFrame({"c": s}))["c"].dtype == ColumnType.CATEGORICAL


def test_polars_categorical_dtype_is_categorical() -> None:
    s = pl.Series(np.random.default_rng(0).choice(["a", "b", "c"], 200)).cast(pl.Categorical)
    assert infer_schema(pl.DataFrame({"c": s}))["c"].dtype == ColumnType.CATEGORICAL


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow"])
def test_high_cardinality_strings_are_identifier_or_text_not_categorical(kind: str) -> None:
    n = 5000
    df = pd.DataFrame({
        "token": [f"tk{i:08x}" for i in range(n)],
        "review": [f"the parcel {i} arrived late and was damaged" for i in range(n)],
        "long_code": [f"{i:040d}" for i in range(n)],  # no spaces but long: text, not an id
    })
    s = infer_schema(_as(kind, df))
    assert s["token"].dtype == ColumnType.IDENTIFIER
    assert s["review"].dtype == ColumnType.TEXT
    assert s["long_code"].dtype == ColumnType.TEXT
    assert not any(c.dtype == ColumnType.CATEGORICAL for c in s.columns)


def test_many_repeated_strings_above_max_categories_are_not_categorical() -> None:
    # 3000 distinct values repeated ~33 times each: repetitive, but above max_categories=2000.
    df = pd.DataFrame({"c": [f"v{i % 3000}" for i in range(100_000)],
                       "d": [f"w{i % 300}" for i in range(100_000)]})
    s = infer_schema(df)
    assert s["c"].dtype != ColumnType.CATEGORICAL
    assert s["d"].dtype == ColumnType.CATEGORICAL
    assert infer_schema(df, max_categories=100)["d"].dtype != ColumnType.CATEGORICAL


def test_few_distinct_strings_are_categorical_even_in_a_small_sample() -> None:
    df = pd.DataFrame({"c": [f"v{i % 50}" for i in range(60)]})
    assert infer_schema(df)["c"].dtype == ColumnType.CATEGORICAL


def test_id_role_needs_unique_values() -> None:
    df = pd.DataFrame({"customer_id": np.arange(100), "store_id": np.arange(100) % 7})
    s = infer_schema(df)
    assert s["customer_id"].role == Role.ID
    assert s["store_id"].role == Role.FEATURE
    assert s.column_for(Role.ID) == "customer_id"


def test_timestamp_role_needs_a_datetime_type_and_a_time_like_name() -> None:
    df = pd.DataFrame({
        "birthday": pd.date_range("1990-01-01", periods=10),
        "event_time": pd.date_range("2024-01-01", periods=10),
        "timestamp_ms": np.arange(10),
    })
    s = infer_schema(df)
    assert s["event_time"].role == Role.TIMESTAMP
    assert s["birthday"].role == Role.FEATURE
    assert s["birthday"].dtype == ColumnType.DATETIME
    assert s["timestamp_ms"].role == Role.FEATURE


def test_only_one_column_takes_each_single_role() -> None:
    df = pd.DataFrame({"target": [0, 1] * 5, "label": [1, 0] * 5, "y": [0, 0] * 5,
                       "prediction": [0, 1] * 5, "pred": [1, 1] * 5})
    s = infer_schema(df)
    assert s.with_role(Role.TARGET) == (s["target"],)
    assert s.with_role(Role.PREDICTION) == (s["prediction"],)
    assert {s["label"].role, s["y"].role, s["pred"].role} == {Role.FEATURE}


def test_segment_role_only_from_hint() -> None:
    df = _frame()
    assert infer_schema(df).with_role(Role.SEGMENT) == ()
    s = infer_schema(df, segments=["country", "flag"])
    assert [c.name for c in s.with_role(Role.SEGMENT)] == ["country", "flag"]
    assert s["country"].dtype == ColumnType.CATEGORICAL
    assert "country" not in s.features


# ------------------------------------------------------------------------ scores and the task
@pytest.mark.parametrize("kind", INPUTS)
def test_multiclass_proba_columns_carry_their_class_label(kind: str) -> None:
    rng = np.random.default_rng(1)
    n = 300
    labels = ["cat", "dog", "bird"]
    df = pd.DataFrame({
        "target": rng.choice(labels, n), "prediction": rng.choice(labels, n),
        "proba_cat": rng.random(n), "proba_dog": rng.random(n), "proba_bird": rng.random(n),
        "x": rng.normal(size=n),
    })
    s = infer_schema(_as(kind, df))
    assert s.task == Task.MULTICLASS
    assert s.classes == ("bird", "cat", "dog")
    assert {c.name: c.label for c in s.score_columns} == {
        "proba_cat": "cat", "proba_dog": "dog", "proba_bird": "bird"}
    assert all(c.dtype == ColumnType.NUMERICAL for c in s.score_columns)
    assert s.features == ("x",)


def test_multiclass_from_score_columns_alone() -> None:
    rng = np.random.default_rng(2)
    df = pd.DataFrame({f"prob_{k}": rng.random(50) for k in ("a", "b", "c")})
    s = infer_schema(df)
    assert s.task == Task.MULTICLASS
    assert s.classes == ("a", "b", "c")
    assert s.column_for(Role.TARGET) is None


def test_score_label_keeps_the_case_of_the_column_name() -> None:
    df = pd.DataFrame({"Proba_Cat": [0.2, 0.8], "Proba_Dog": [0.8, 0.2], "y": ["Cat", "Dog"]})
    s = infer_schema(df)
    assert {c.label for c in s.score_columns} == {"Cat", "Dog"}
    assert s.classes == ("Cat", "Dog")


def test_scores_given_as_a_mapping_keep_their_labels() -> None:
    df = pd.DataFrame({"p_yes": [0.1, 0.9, 0.6], "outcome": ["no", "yes", "yes"], "x": [1, 2, 3]})
    s = infer_schema(df, scores={"p_yes": "yes"}, target="outcome")
    assert s["p_yes"].role == Role.SCORE and s["p_yes"].label == "yes"
    assert s.task == Task.BINARY and s.classes == ("no", "yes")
    # As a list, the single score of a binary task is labelled with the positive class.
    s2 = infer_schema(df, scores=["p_yes"], target="outcome")
    assert s2["p_yes"].label == "yes"


@pytest.mark.parametrize(
    ("target", "task", "classes"),
    [
        ([0, 1] * 20, Task.BINARY, ("0", "1")),
        (["no", "yes"] * 20, Task.BINARY, ("no", "yes")),
        ([True, False] * 20, Task.BINARY, ("false", "true")),
        ([0.0, 1.0, np.nan, 1.0] * 10, Task.BINARY, ("0", "1")),  # integral floats with NaN
        ([1, 2, 10] * 10, Task.MULTICLASS, ("1", "2", "10")),  # numeric order, not text order
        (["a", "b", "c"] * 10, Task.MULTICLASS, ("a", "b", "c")),
        (list(np.random.default_rng(0).normal(size=40)), Task.REGRESSION, ()),
        (list(range(200)), Task.REGRESSION, ()),  # many distinct integers
    ],
    ids=["int01", "str", "bool", "float-integral-nan", "int3", "str3", "float", "int-many"],
)
def test_task_and_classes_from_the_target(target, task: Task, classes: tuple) -> None:
    s = infer_schema(pd.DataFrame({"target": target, "x": np.arange(len(target))}))
    assert s.task == task
    assert s.classes == classes


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow"])
def test_text_target_with_many_labels_is_multiclass(kind: str) -> None:
    df = pd.DataFrame({"target": [f"class_{i % 60}" for i in range(600)]})
    s = infer_schema(_as(kind, df))
    assert s.task == Task.MULTICLASS
    assert len(s.classes) == 60


def test_text_target_with_many_labels_is_multiclass_for_arrow_string() -> None:
    t = pa.table({"target": pa.array([f"class_{i % 60}" for i in range(600)], pa.string())})
    s = infer_schema(t)
    assert s.task == Task.MULTICLASS
    assert len(s.classes) == 60


def test_no_label_columns_means_no_task() -> None:
    s = infer_schema(pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "b"]}))
    assert s.task == Task.NONE
    assert s.classes == ()


# ----------------------------------------------------------------------------- explicit hints
def test_explicit_hints_override_inference() -> None:
    df = pd.DataFrame({
        "label": [0, 1] * 10,          # would be the target by name
        "outcome": [1, 0] * 10,
        "model_out": [0, 0] * 10,
        "prediction": [1, 1] * 10,     # would be the prediction by name
        "ref": [f"r{i % 3}" for i in range(20)],  # not unique, still an id when told
        "when": np.arange(20),         # numerical, still the timestamp when told
        "k": np.arange(20) % 4,
    })
    s = infer_schema(df, target="outcome", prediction="model_out", id="ref", timestamp="when",
                     dtypes={"k": "categorical", "label": "boolean"})
    assert s.column_for(Role.TARGET) == "outcome"
    assert s.column_for(Role.PREDICTION) == "model_out"
    assert s.column_for(Role.ID) == "ref"
    assert s.column_for(Role.TIMESTAMP) == "when"
    assert s["label"].role == Role.FEATURE and s["label"].dtype == ColumnType.BOOLEAN
    assert s["prediction"].role == Role.FEATURE
    assert s["k"].dtype == ColumnType.CATEGORICAL
    assert s["when"].dtype == ColumnType.NUMERICAL


def test_task_hint_wins_over_inference() -> None:
    df = pd.DataFrame({"target": [0, 1] * 10})
    assert infer_schema(df, task="regression").task == Task.REGRESSION
    assert infer_schema(df, task="regression").classes == ()
    s = infer_schema(df, task="multiclass")
    assert s.task == Task.MULTICLASS and s.classes == ("0", "1")


def test_a_binary_task_with_three_classes_is_refused() -> None:
    df = pd.DataFrame({"target": ["w", "x", "z"] * 5, "prediction": ["w"] * 15})
    with pytest.raises(SchemaError, match=r"task binary.*3 classes \['w', 'x', 'z'\]"):
        infer_schema(df, task="binary")
    assert infer_schema(df).task == Task.MULTICLASS
    assert infer_schema(df[df.target != "z"], task="binary").classes == ("w", "x")


# -------------------------------------------------------------------- persistence and versions
def test_to_dict_from_dict_round_trip_through_json() -> None:
    rng = np.random.default_rng(4)
    n = 200
    df = _frame(4, n).assign(proba_a=rng.random(n))
    s = infer_schema(df, segments=["country"], task="multiclass").override("count",
                                                                            dtype="categorical")
    d = json.loads(json.dumps(s.to_dict()))
    back = Schema.from_dict(d)
    assert back == s
    assert back.version == s.version == 2
    assert back.classes == s.classes and back.task == s.task
    assert [c.label for c in back.columns] == [c.label for c in s.columns]
    assert back.to_dict() == s.to_dict()


def test_override_returns_a_new_schema_with_the_next_version() -> None:
    s = infer_schema(pd.DataFrame({"x": [1, 2, 3], "c": ["a", "b", "a"]}))
    assert s.version == 1
    s2 = s.override("x", dtype="categorical")
    s3 = s2.override("c", role="segment")
    assert (s.version, s2.version, s3.version) == (1, 2, 3)
    assert s["x"].dtype == ColumnType.NUMERICAL  # the original is unchanged
    assert s2["x"].dtype == ColumnType.CATEGORICAL and s2["x"].role == Role.FEATURE
    assert s3["c"].role == Role.SEGMENT and s3["x"].dtype == ColumnType.CATEGORICAL
    assert s3.override("x", label="pos")["x"].label == "pos"


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("hint", ["target", "prediction", "id", "timestamp"])
def test_hint_naming_a_column_not_in_the_data(hint: str) -> None:
    with pytest.raises(SchemaError, match="'nope'") as exc:
        infer_schema(pd.DataFrame({"x": [1, 2]}), **{hint: "nope"})
    assert exc.value.column == "nope"


@pytest.mark.parametrize(
    "kwargs",
    [{"segments": ["x", "nope"]}, {"scores": ["nope"]}, {"scores": {"nope": "1"}},
     {"dtypes": {"nope": "numerical"}}],
    ids=["segments", "scores-list", "scores-map", "dtypes"],
)
def test_list_hints_naming_a_column_not_in_the_data(kwargs) -> None:
    with pytest.raises(SchemaError, match="'nope'") as exc:
        infer_schema(pd.DataFrame({"x": [1, 2]}), **kwargs)
    assert exc.value.column == "nope"


def test_unknown_dtype_names_the_column() -> None:
    with pytest.raises(SchemaError, match=r"'x'.*'floaty'") as exc:
        infer_schema(pd.DataFrame({"x": [1, 2]}), dtypes={"x": "floaty"})
    assert exc.value.column == "x"
    assert "numerical" in str(exc.value)  # lists the valid values


def test_unknown_task_is_a_parameter_error() -> None:
    for df in (pd.DataFrame({"target": [0, 1]}), pd.DataFrame({"x": [0, 1]})):
        with pytest.raises(ParameterError, match=r"'task'.*'clustering'"):
            infer_schema(df, task="clustering")


def test_bad_max_categories_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError, match="max_categories"):
        infer_schema(pd.DataFrame({"x": [0, 1]}), max_categories=1)


def test_non_numerical_score_column_names_the_column() -> None:
    with pytest.raises(SchemaError, match="'s'") as exc:
        infer_schema(pd.DataFrame({"s": ["a", "b"]}), scores=["s"])
    assert exc.value.column == "s"


@pytest.mark.parametrize(
    ("column", "message"),
    [({"name": "a", "dtype": "str"}, r"'a'.*'str'"),
     ({"name": "a", "dtype": "numerical", "role": "boss"}, r"'a'.*'boss'")],
    ids=["dtype", "role"],
)
def test_from_dict_with_unknown_dtype_or_role_names_the_column(column, message: str) -> None:
    with pytest.raises(SchemaError, match=message) as exc:
        Schema.from_dict({"columns": [column]})
    assert exc.value.column == "a"


def test_from_dict_unknown_task_and_format() -> None:
    cols = [{"name": "a", "dtype": "numerical"}]
    with pytest.raises(SchemaError, match="'x'"):
        Schema.from_dict({"task": "x", "columns": cols})
    with pytest.raises(SchemaError, match="format"):
        Schema.from_dict({"format": 99, "columns": cols})


def test_from_dict_column_without_dtype_names_the_column() -> None:
    with pytest.raises(SchemaError, match="'a'"):
        Schema.from_dict({"columns": [{"name": "a"}]})


def test_override_errors_name_the_column() -> None:
    s = infer_schema(pd.DataFrame({"target": [0, 1], "x": [1.0, 2.0]}))
    with pytest.raises(SchemaError, match="'zz'") as exc:
        s.override("zz", dtype="categorical")
    assert exc.value.column == "zz"
    with pytest.raises(SchemaError, match=r"'x'.*'blob'"):
        s.override("x", dtype="blob")
    with pytest.raises(SchemaError, match=r"'x'.*'boss'"):
        s.override("x", role="boss")
    with pytest.raises(SchemaError, match=r"'target'.*'x'"):
        s.override("x", role="target")  # a second target
    with pytest.raises(SchemaError, match="'zz'"):
        s["zz"]


def test_duplicate_names_in_a_schema() -> None:
    with pytest.raises(SchemaError, match=r"\['a'\]"):
        Schema((Column("a", ColumnType.NUMERICAL), Column("a", ColumnType.CATEGORICAL)))
    with pytest.raises(SchemaError, match=r"\['a'\]"):
        Schema.from_dict({"columns": [{"name": "a", "dtype": "numerical"},
                                      {"name": "a", "dtype": "numerical"}]})


def test_duplicate_column_names_in_pandas_input() -> None:
    df = pd.DataFrame([[1, 2, 3]], columns=["a", "a", "b"])
    with pytest.raises(AiwardenError, match="'a'"):
        infer_schema(df)


def test_duplicate_column_names_in_arrow_input() -> None:
    t = pa.table([pa.array([1.0]), pa.array([2.0])], names=["a", "a"])
    with pytest.raises(AiwardenError, match="'a'"):
        infer_schema(t)


def test_unusable_input_is_a_data_error() -> None:
    with pytest.raises(DataError, match="rows"):
        infer_schema(pd.DataFrame({"a": []}))
    with pytest.raises(DataError, match="columns"):
        infer_schema(pd.DataFrame())
    with pytest.raises(DataError, match="ndarray"):
        infer_schema(np.zeros((3, 3)))
    with pytest.raises(DataError, match="dict"):
        infer_schema([1, 2, 3])
