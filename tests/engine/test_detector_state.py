"""Detector checkpoints (``state_dict`` / ``from_state``) and per-row outcomes
(``row_errors``): what the server's concept-drift feed stores and streams."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.metrics import accuracy_score, mean_absolute_error

from aiwarden.engine import Reference
from aiwarden.engine._accumulators import row_errors
from aiwarden.engine.detectors import ADWIN, DDM, DETECTORS, PageHinkley
from aiwarden.errors import ParameterError


def _stream(kind: str) -> np.ndarray:
    rng = np.random.default_rng(11)
    if kind == "binary":
        return np.concatenate([rng.random(3000) < 0.1, rng.random(3000) < 0.35]).astype(float)
    return np.concatenate([rng.normal(0, 0.1, 3000), rng.normal(0.4, 0.1, 3000)])


@pytest.mark.parametrize("name", sorted(DETECTORS))
@pytest.mark.parametrize("cut", [1, 500, 3030, 5999])
def test_a_checkpoint_resumes_exactly_where_the_detector_stopped(name: str, cut: int) -> None:
    values = _stream("binary" if name == "ddm" else "real")
    whole = DETECTORS[name]().detect(values)
    first = DETECTORS[name]()
    head = first.detect(values[:cut])
    saved = json.loads(json.dumps(first.state_dict()))  # through JSON, as the server does
    resumed = DETECTORS[name].from_state(saved)
    tail = [cut + i for i in resumed.detect(values[cut:])]
    assert whole and head + tail == whole
    assert resumed.n_seen == len(values)


def test_infinite_floats_survive_json() -> None:
    ph = PageHinkley()  # starts with an infinite minimum
    state = ph.state_dict()
    assert state["state"]["_min_up"] == {"float": "inf"}
    assert PageHinkley.from_state(json.loads(json.dumps(state)))._min_up == float("inf")
    assert DDM().state_dict()["state"]["_ps_min"] == {"float": "inf"}


def test_a_wrong_checkpoint_is_refused_with_the_template_message() -> None:
    state = ADWIN().state_dict()
    with pytest.raises(ParameterError, match=r"The 'data' parameter of DDM\.from_state"):
        DDM.from_state(state)
    broken = {**state, "state": {k: v for k, v in state["state"].items() if k != "_tick"}}
    with pytest.raises(ParameterError, match=r"'state' parameter of ADWIN\.from_state"):
        ADWIN.from_state(broken)
    with pytest.raises(ParameterError, match="'delta' parameter of ADWIN"):
        ADWIN.from_state({**state, "params": {**state["params"], "delta": 2.0}})


def test_estimation_is_the_running_mean_since_the_last_restart() -> None:
    values = [0.0, 1.0, 1.0, 0.0, 1.0]
    ddm, ph = DDM(), PageHinkley()
    ddm.detect(values)
    ph.detect(values)
    assert ddm.estimation == pytest.approx(0.6) and ph.estimation == pytest.approx(0.6)


def _classifier_data(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    score = 1 / (1 + np.exp(-2 * x))
    y = (rng.random(n) < score).astype(int)
    return pd.DataFrame({"x": x, "score": score, "pred": (score > 0.5).astype(int), "y": y})


@pytest.mark.parametrize("use_prediction", [True, False])
def test_row_errors_of_a_classifier_average_to_one_minus_sklearn_accuracy(
        use_prediction: bool) -> None:
    ref = Reference.fit(_classifier_data(2000, 0), target="y", prediction="pred",
                        scores="score")
    cur = _classifier_data(1000, 1)
    table = pa.Table.from_pandas(cur if use_prediction else cur.drop(columns="pred"),
                                 preserve_index=False)
    errors = row_errors(ref.schema_, table)
    assert set(np.unique(errors)) <= {0.0, 1.0}
    pred = cur.pred if use_prediction else (cur.score >= 0.5).astype(int)
    assert errors.mean() == pytest.approx(1 - accuracy_score(cur.y, pred))
    np.testing.assert_array_equal(errors, (pred != cur.y).to_numpy(float))


def test_row_errors_of_a_regressor_are_absolute_errors_and_nan_without_a_label() -> None:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=500)})
    df["y"] = 2 * df.x + rng.normal(size=500)
    df["p"] = 2 * df.x
    ref = Reference.fit(df, target="y", prediction="p", task="regression")
    cur = df.copy()
    cur.loc[:9, "y"] = np.nan
    errors = row_errors(ref.schema_, pa.Table.from_pandas(cur, preserve_index=False))
    assert np.isnan(errors[:10]).all()
    assert errors[10:].mean() == pytest.approx(mean_absolute_error(cur.y[10:], cur.p[10:]))
