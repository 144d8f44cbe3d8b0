"""References and profiles built elsewhere: accepted exactly as fitted, refused when edited."""

from __future__ import annotations

import base64
import copy
import json

import numpy as np
import pandas as pd
import pytest

from aiwarden.engine import Reference
from aiwarden.engine.imported import profile_from_dict_checked, reference_from_dict_checked
from aiwarden.errors import DataError


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n) + shift
    x[:7] = np.nan
    return pd.DataFrame({
        "x": x, "c": rng.choice(["a", "b", "c"], n), "flag": rng.random(n) > 0.5,
        "note": rng.choice(["short", "a longer note"], n),
        "ts": pd.date_range("2026-01-01", periods=n, freq="min"),
        "id": [f"i{seed}-{i}" for i in range(n)],
        "y": rng.normal(size=n), "pred": rng.normal(size=n),
    })


@pytest.fixture(scope="module")
def fitted() -> tuple[Reference, dict]:
    ref = Reference.fit(_frame(3000, 0), target="y", prediction="pred", id="id",
                        timestamp="ts", task="regression")
    return ref, json.loads(json.dumps(ref.to_dict()))


def test_a_reference_round_trips_and_compares_as_the_original(fitted):
    ref, d = fitted
    checked = reference_from_dict_checked(copy.deepcopy(d))
    assert checked.fingerprint == ref.fingerprint
    cur = _frame(2000, 1, shift=0.5)
    a = ref.compare(ref.profile(cur))
    b = checked.compare(checked.profile(cur))
    assert a.drifted_columns == b.drifted_columns == ("x",)
    assert a.to_dict() == b.to_dict()


def test_the_fingerprint_is_recomputed_not_read(fitted):
    _, d = fitted
    d = copy.deepcopy(d)
    edges = d["binnings"]["x"]["edges"]
    edges[5] = (edges[4] + edges[5]) / 2  # still increasing: only the hash can tell
    with pytest.raises(DataError, match="changed after the fit") as err:
        reference_from_dict_checked(d)
    assert err.value.column == "reference.profile"


@pytest.mark.parametrize("edit, field, message", [
    (lambda d: d["profile"]["columns"]["x"]["counts"].__setitem__(3, 10**6),
     "reference.profile.columns.x", "add up to"),
    (lambda d: d["profile"]["columns"]["c"]["counts"].append(0),
     "reference.profile.columns.c.counts", "the bins need 4"),
    (lambda d: d["profile"]["columns"]["x"].__setitem__("missing", -1),
     "reference.profile.columns.x", ">= 0"),
    (lambda d: d["profile"]["columns"].pop("note"),
     "reference.profile.columns.note", "missing"),
    (lambda d: d["profile"]["columns"]["x"].__setitem__("kind", "categorical"),
     "reference.profile.columns.x", "kind 'categorical'"),
    (lambda d: d["binnings"].__setitem__("ghost", None), "reference.binnings",
     "not in the schema"),
    (lambda d: d["binnings"].__setitem__("c", {"kind": "categorical",
                                               "categories": ["a", "a", "b"]}),
     "reference.binnings.c", "repeated"),
    (lambda d: d["binnings"]["x"]["edges"].__setitem__(2, "nan"),
     "reference.binnings.x.edges", "finite"),
    (lambda d: d["binnings"]["x"]["edges"].reverse(), "reference.binnings.x.edges",
     "increasing"),
    (lambda d: d["binnings"].__setitem__("id", {"kind": "categorical", "categories": []}),
     "reference.binnings.id", "expected null"),
    (lambda d: d.pop("settings"), "reference.settings", "expected an object"),
    (lambda d: d["profile"].__setitem__("duplicates", 10**9), "reference.profile.n_rows",
     "duplicates"),
    (lambda d: d["instability"]["x"].__setitem__("mean", "inf"), "reference.instability",
     "finite"),
])
def test_an_edited_reference_is_refused_naming_the_field(fitted, edit, field, message):
    _, d = fitted
    d = copy.deepcopy(d)
    edit(d)
    with pytest.raises(DataError, match=message) as err:
        reference_from_dict_checked(d)
    assert err.value.column == field


def test_a_performance_model_with_a_cycle_is_refused(fitted):
    """A child pointing back at its parent would walk forever on every ingest."""
    _, d = fitted
    d = copy.deepcopy(d)
    tree = d["performance_model"]["abs_models"][0]
    left = np.frombuffer(base64.b64decode(tree["nodes"]["left"]), "<i4").copy()
    inner = np.flatnonzero(left >= 0)
    assert inner.size, "the fitted DLE has split nodes"
    left[inner[-1]] = inner[-1]  # points at itself
    tree["nodes"]["left"] = base64.b64encode(left.tobytes()).decode()
    with pytest.raises(DataError, match="cycle") as err:
        reference_from_dict_checked(d)
    assert err.value.column.startswith("reference.performance_model.trees")


def test_not_an_object_and_missing_parts_are_refused():
    with pytest.raises(DataError, match="expected a JSON object"):
        reference_from_dict_checked([1, 2])
    with pytest.raises(DataError, match=r"reference\.schema: expected an object"):
        reference_from_dict_checked({"format": 1})


def test_a_batch_profile_is_taken_only_on_its_own_reference(fitted):
    ref, d = fitted
    checked = reference_from_dict_checked(copy.deepcopy(d))
    cur = _frame(1500, 2, shift=1.0)
    prof = json.loads(json.dumps(ref.profile(cur).to_dict()))
    got = profile_from_dict_checked(checked, copy.deepcopy(prof))
    assert got.n_rows == 1500
    assert checked.compare(got).to_dict() == ref.compare(ref.profile(cur)).to_dict()

    other = Reference.fit(_frame(3000, 9), target="y", prediction="pred", id="id",
                          timestamp="ts", task="regression", bins=50)
    foreign = json.loads(json.dumps(other.profile(cur).to_dict()))
    with pytest.raises(DataError, match=r"GET \.\.\./reference") as err:
        profile_from_dict_checked(checked, foreign)
    assert err.value.column == "profile.reference"

    forged = copy.deepcopy(foreign)
    forged["reference"] = checked.fingerprint  # claims our bins, counted on others
    with pytest.raises(DataError, match="the bins need"):
        profile_from_dict_checked(checked, forged)

    bad = copy.deepcopy(prof)
    bad["columns"]["x"]["counts"][10] += 1
    with pytest.raises(DataError, match="add up to") as err:
        profile_from_dict_checked(checked, bad)
    assert err.value.column == "profile.columns.x"

    bad = copy.deepcopy(prof)
    bad["columns"]["x"]["min"], bad["columns"]["x"]["max"] = 5.0, -5.0
    with pytest.raises(DataError, match=r"min 5\.0 > max"):
        profile_from_dict_checked(checked, bad)

    bad = copy.deepcopy(prof)
    bad["columns"]["c"]["examples"] = {"unseen": [1, 10**9]}
    with pytest.raises(DataError, match="row positions"):
        profile_from_dict_checked(checked, bad)


def test_a_labels_only_profile_has_no_columns_and_is_taken(fitted):
    ref, d = fitted
    checked = reference_from_dict_checked(copy.deepcopy(d))
    labels = ref.profile(_frame(400, 3), labels_only=True)
    got = profile_from_dict_checked(checked, json.loads(json.dumps(labels.to_dict())))
    assert got.n_rows == 0 and not got.columns
    assert checked.realised_performance(got).n == 400
