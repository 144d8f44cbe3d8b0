"""The predict route through a real server (SQLite and PostgreSQL): a feature of the wrong
kind is refused naming the column before the model runs (not scikit-learn's "ufunc 'isnan'
not supported"), a null is taken when the model imputes it and refused naming the column
when it cannot, and a prediction_id reused for other features is a 409 (outside review)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from aiwarden.sdk import Client
from tests.server.live import ThreadServer, settings_for


@pytest.fixture(scope="module")
def server(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    """An open server that takes a skops pipeline holding numpy dtypes (OneHotEncoder)."""
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"),
                                   allow_code_artifacts=True)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ThreadServer) -> Iterator[Client]:
    with Client(server.url) as c:
        yield c


def _data(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame({"amount": rng.gamma(2.0, 20.0, n),
                      "merchant": rng.choice(["shop", "cafe", "fuel"], n),
                      "country": rng.choice(["FR", "DE", "US"], n)})
    y = ((x.amount > 40) ^ (x.country == "US")).astype(int).to_numpy()
    return x, y


def _model() -> Any:
    """Imputes a missing amount; a missing merchant or country is an unknown category."""
    x, y = _data(500)
    prep = ColumnTransformer([("num", SimpleImputer(), ["amount"]),
                              ("cat", OneHotEncoder(handle_unknown="error"),
                               ["merchant", "country"])])
    return make_pipeline(prep, LogisticRegression()).fit(x, y)


@pytest.fixture(scope="module")
def fraud(client: Client) -> Any:
    model = _model()
    version = client.register_version("fraud", model, trust=True)["version"]
    x, _ = _data(1000, seed=3)
    client.upload_reference("fraud", version, x.assign(prediction=model.predict(x)),
                            prediction="prediction")
    client.promote("fraud", version, reason="first release")
    return model


GOOD = {"amount": 12.5, "merchant": "shop", "country": "FR"}


def _refused(resp: httpx.Response, field: str, reason: str) -> dict[str, Any]:
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert detail["error"] == "invalid_input" and detail["field"] == field, detail
    assert reason in detail["message"] and "isnan" not in detail["message"], detail
    assert detail["version"] == "1" and resp.headers["x-aiwarden-version"] == "1"
    return detail


def test_a_value_of_the_wrong_kind_is_refused_naming_the_column(
        http: httpx.Client, fraud: Any) -> None:
    ok = http.post("/models/fraud/predict", json={"features": GOOD})
    assert ok.status_code == 200, ok.text
    assert ok.json()["prediction"] == fraud.predict(pd.DataFrame([GOOD]))[0]
    _refused(http.post("/models/fraud/predict",
                       json={"features": {**GOOD, "merchant": 7}}),
             "features.merchant", "expected text, got a number")
    _refused(http.post("/models/fraud/predict",
                       json={"features": {**GOOD, "amount": "12.5"}}),
             "features.amount", "expected a number, got text")
    # in a batch, the row is named too; the other rows' kinds do not hide it
    rows = [{"features": GOOD}, {"features": {**GOOD, "merchant": 7}}, {"features": GOOD}]
    detail = _refused(http.post("/models/fraud/predict", json={"rows": rows}),
                      "features.merchant", "expected text, got a number")
    assert "(row 1)" in detail["message"]
    rows = [{"features": GOOD}, {"features": {**GOOD, "amount": "x"}}]
    _refused(http.post("/models/fraud/predict", json={"rows": rows}),
             "features.amount", "(row 1): expected a number, got 'x'")  # ingest's words


def test_a_null_is_taken_when_the_model_imputes_it_and_named_when_it_cannot(
        http: httpx.Client, fraud: Any) -> None:
    imputed = {**GOOD, "amount": None}
    resp = http.post("/models/fraud/predict", json={"features": imputed})
    assert resp.status_code == 200, resp.text
    expected = fraud.predict_proba(pd.DataFrame([{**GOOD, "amount": np.nan}]))[0, 1]
    assert resp.json()["scores"]["1"] == pytest.approx(expected, abs=1e-12)
    _refused(http.post("/models/fraud/predict", json={"features": {**GOOD, "country": None}}),
             "features.country", "required, got null")
    rows = [{"features": GOOD}, {"features": imputed}, {"features": {**GOOD, "country": None}}]
    detail = _refused(http.post("/models/fraud/predict", json={"rows": rows}),
                      "features.country", "required, got null")
    assert "(row 2)" in detail["message"]


def test_a_prediction_id_reused_for_other_features_is_a_conflict(
        http: httpx.Client, client: Client, fraud: Any) -> None:
    first = http.post("/models/fraud/predict", json={"features": GOOD, "prediction_id": "d1"})
    assert first.status_code == 200 and "duplicate" not in first.json(), first.text
    assert "x-aiwarden-duplicates" not in first.headers
    # a retry of the same request is answered, and said to be one
    again = http.post("/models/fraud/predict", json={"features": GOOD, "prediction_id": "d1"})
    assert again.status_code == 200, again.text
    assert again.json() == {**first.json(), "duplicate": True}
    assert again.headers["x-aiwarden-duplicates"] == "1"
    other = {**GOOD, "merchant": "fuel", "amount": 300.0}
    resp = http.post("/models/fraud/predict", json={"features": other, "prediction_id": "d1"})
    assert resp.status_code == 409, resp.text
    detail = resp.json()["detail"]
    assert detail["error"] == "conflict" and detail["field"] == "prediction_id", detail
    assert "already used for another request" in detail["message"] and "'d1'" in detail["message"]
    # in a batch: the row is named, and a refused batch records none of its ids
    rows = [{"features": GOOD, "prediction_id": "d2"}, {"features": GOOD},
            {"features": other, "prediction_id": "d2"}]
    resp = http.post("/models/fraud/predict", json={"rows": rows})
    assert resp.status_code == 409 and resp.json()["detail"]["field"] == \
        "rows[2].prediction_id", resp.text
    resp = http.post("/models/fraud/predict", json={"rows": [
        {"features": other, "prediction_id": "d2"}, {"features": GOOD, "prediction_id": "d1"}]})
    assert resp.status_code == 200, resp.text
    assert ["duplicate" in p for p in resp.json()["predictions"]] == [False, True]
    assert resp.headers["x-aiwarden-duplicates"] == "1"
    # monitoring holds one event per id, with the features first served under it
    assert http.post("/models/fraud/gateway/flush").json()["flushed"]
    events = client.export_events("fraud", time.time() - 3600, time.time() + 3600).to_pandas()
    mine = events[events.prediction_id.isin(["d1", "d2"])].set_index("prediction_id")
    assert sorted(mine.index) == ["d1", "d2"]
    assert mine.loc["d1", "merchant"] == "shop" and mine.loc["d2", "merchant"] == "fuel"
