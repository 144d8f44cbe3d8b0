"""Windowed metrics over HTTP equal the engine run directly on the raw rows, on both databases.

One scenario per database: a reference, then five past hours of traffic sent in shuffled
requests (labels partly before, partly after their predictions), with ``amount`` scaled
up from hour 3 on. Every served number is recomputed here from the rows that were sent.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sqlalchemy import func, select

from aiwarden.engine import Reference
from aiwarden.monitoring.service import Monitor, MonitorSettings
from aiwarden.monitoring.windows import to_iso
from aiwarden.store.database import Database
from aiwarden.store.tables import bucket_profiles, models
from tests.server.conftest import HINTS
from tests.server.live import ThreadServer, database_url

HOUR = 3600
PER_HOUR = (300, 450, 200, 350, 400)
SHIFTED_FROM = 3  # hours 3 and 4 carry the planted shift of ``amount``
AMOUNT_SCALE = 2.5
FEATURES = ("x", "c", "amount")


def frame(n: int, seed: int, amount_scale: float = 1.0) -> pd.DataFrame:
    """Scores depend on ``x`` only, so scaling ``amount`` drifts that feature and nothing else."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    score = 1 / (1 + np.exp(-2 * x))
    return pd.DataFrame({
        "x": x, "c": rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2]),
        "amount": rng.lognormal(3.0, 0.6, n) * amount_scale,
        "score": score, "pred": (score > 0.5).astype(int),
        "y": (rng.random(n) < score).astype(int),
    })


def parquet(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def rows_json(df: pd.DataFrame) -> list[dict]:
    out = []
    for r in df.itertuples():
        row = {"prediction_id": r.pid, "timestamp": r.ts,
               "features": {"x": r.x, "c": r.c, "amount": r.amount},
               "prediction": int(r.pred), "scores": r.score}
        if not np.isnan(r.latency):
            row["latency_ms"] = r.latency
        out.append(row)
    return out


def ok(resp: httpx.Response, status: int = 200) -> dict:
    assert resp.status_code == status, resp.text
    return resp.json()


def new_model(http: httpx.Client, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ok(http.post("/models", json={"name": name}), 201)
    return name


def put_reference(http: httpx.Client, name: str, df: pd.DataFrame, version: str = "v1") -> dict:
    return ok(http.put(f"/models/{name}/versions/{version}/reference", content=parquet(df),
                       params={"target": "y", "prediction": "pred", "scores": "score"},
                       headers={"content-type": "application/vnd.apache.parquet"}), 201)


@dataclass
class Scenario:
    name: str
    h0: int  # start of hour 0 (epoch seconds, hour-aligned)
    ref: Reference  # fitted here, from the same data the server got
    sent: pd.DataFrame  # every accepted row: pid, ts, hour, latency, features, y, labelled

    def at(self, hour: float) -> str:
        return to_iso(self.h0 + hour * HOUR)

    def rows_in(self, h_from: float, h_to: float) -> pd.DataFrame:
        t0, t1 = self.h0 + h_from * HOUR, self.h0 + h_to * HOUR
        return self.sent[(self.sent.ts >= t0) & (self.sent.ts < t1)]

    def engine_profile(self, df: pd.DataFrame):
        """The engine on the raw rows as one flat DataFrame, as the server should see them."""
        return self.ref.profile(df[["x", "c", "amount", "score", "pred"]].reset_index(drop=True))


@pytest.fixture(scope="module")
def client(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def scenario(client: httpx.Client) -> Scenario:
    http = client
    name = new_model(http, "drift")
    ref_df = frame(4000, seed=0)
    up = put_reference(http, name, ref_df)
    ref = Reference.fit(ref_df, **HINTS)
    assert up["fingerprint"] == ref.fingerprint and up["rows"] == 4000

    rng = np.random.default_rng(42)
    h0 = (int(time.time()) // HOUR - 8) * HOUR
    parts = []
    for hour, n in enumerate(PER_HOUR):
        df = frame(n, seed=100 + hour,
                   amount_scale=AMOUNT_SCALE if hour >= SHIFTED_FROM else 1.0)
        df["hour"] = hour
        df["ts"] = h0 + hour * HOUR + np.sort(rng.uniform(0, HOUR - 1e-3, n))
        parts.append(df)
    sent = pd.concat(parts, ignore_index=True)
    sent["pid"] = [f"{name}-{i}" for i in range(len(sent))]
    lat = rng.lognormal(1.5, 0.8, len(sent))
    lat[rng.random(len(sent)) < 0.05] = -1.0  # not latencies: ignored
    lat[rng.random(len(sent)) < 0.03] = np.nan  # sent as absent
    sent["latency"] = lat
    sent["labelled"] = rng.random(len(sent)) < 0.6

    order = rng.permutation(len(sent))
    requests = np.array_split(order, 4)
    # labels of the last request arrive before their predictions; the rest after
    early = sent.iloc[requests[-1]]
    early = early[early.labelled]
    label_rows = [{"prediction_id": p, "label": int(y)} for p, y in zip(early.pid, early.y,
                                                                         strict=True)]
    res = ok(http.post(f"/models/{name}/labels", json=label_rows))
    assert res["pending"] == len(early) and res["joined"] == 0
    for idx in requests:
        res = ok(http.post(f"/models/{name}/predictions", json=rows_json(sent.iloc[idx])))
        assert res["accepted"] == len(idx) and res["quarantined"] == 0, res
    late = sent[sent.labelled & ~sent.pid.isin(early.pid)]
    res = ok(http.post(f"/models/{name}/labels", json={"rows": [
        {"prediction_id": p, "label": int(y)} for p, y in zip(late.pid, late.y, strict=True)]}))
    assert res["joined"] == len(late)
    return Scenario(name, h0, ref, sent)


def metric(http: httpx.Client, s: Scenario, which: str, h_from: float = 0,
           h_to: float = len(PER_HOUR), **params: str) -> dict:
    return ok(http.get(f"/models/{s.name}/metrics", params={
        "metric": which, "start": s.at(h_from), "end": s.at(h_to), **params}))


def assert_drift_equals_engine(served: dict, s: Scenario, rows: pd.DataFrame) -> None:
    want = s.ref.compare(s.engine_profile(rows))
    assert served["n_current"] == want.n_current == len(rows)
    assert served["drifted_features"] == list(want.drifted_features)
    assert served["share_drifted"] == pytest.approx(want.share_drifted, abs=1e-12)
    expected = {c.column: c for c in want.columns if c.n_current}
    assert set(served["columns"]) == set(expected)
    for col, c in expected.items():
        got = served["columns"][col]
        assert got["drifted"] == c.drifted, col
        assert got["method"] == c.method and got["n_current"] == c.n_current, col
        assert got["value"] == pytest.approx(c.value, rel=1e-9, abs=1e-12), col
        assert got["threshold"] == pytest.approx(c.threshold, rel=1e-9, abs=1e-12), col
        assert got["p_value"] == pytest.approx(c.p_value, rel=1e-9, abs=1e-12), col


# ----------------------------------------------------------------------- drift
def test_drift_of_the_whole_window_equals_the_engine_on_raw_rows(
        client: httpx.Client, scenario: Scenario) -> None:
    out = metric(client, scenario, "drift")
    assert out["model"] == scenario.name and out["version"] == "v1"
    assert out["step"] == len(PER_HOUR) * HOUR and len(out["points"]) == 1
    point = out["points"][0]
    assert point["rows"] == len(scenario.sent)
    assert point["start"] == scenario.at(0) and point["end"] == scenario.at(len(PER_HOUR))
    assert_drift_equals_engine(point["value"], scenario, scenario.sent)


def test_a_planted_shift_drifts_exactly_that_feature(
        client: httpx.Client, scenario: Scenario) -> None:
    shifted = metric(client, scenario, "drift", SHIFTED_FROM, len(PER_HOUR))["points"][0]
    assert shifted["value"]["drifted_features"] == ["amount"]
    assert_drift_equals_engine(shifted["value"], scenario,
                               scenario.rows_in(SHIFTED_FROM, len(PER_HOUR)))
    clean = metric(client, scenario, "drift", 0, SHIFTED_FROM)["points"][0]
    assert clean["value"]["drifted_features"] == []
    assert clean["rows"] == sum(PER_HOUR[:SHIFTED_FROM])
    assert_drift_equals_engine(clean["value"], scenario, scenario.rows_in(0, SHIFTED_FROM))


def test_hourly_steps_count_the_raw_rows_of_each_hour(
        client: httpx.Client, scenario: Scenario) -> None:
    out = metric(client, scenario, "volume", step="1h")
    assert out["step"] == HOUR and len(out["points"]) == len(PER_HOUR)
    per_hour = np.bincount(((scenario.sent.ts - scenario.h0) // HOUR).astype(int),
                           minlength=len(PER_HOUR))
    labelled = scenario.sent[scenario.sent.labelled]
    labels_per_hour = np.bincount(((labelled.ts - scenario.h0) // HOUR).astype(int),
                                  minlength=len(PER_HOUR))
    for i, p in enumerate(out["points"]):
        assert p["start"] == scenario.at(i) and p["end"] == scenario.at(i + 1)
        assert p["rows"] == p["value"]["rows"] == per_hour[i] == PER_HOUR[i]
        assert p["value"]["quarantined"] == 0
        assert p["value"]["labels"] == labels_per_hour[i]
    # a step that does not divide the window: the last point is the remainder
    out = metric(client, scenario, "volume", step="2h")
    assert [p["rows"] for p in out["points"]] == [
        sum(PER_HOUR[0:2]), sum(PER_HOUR[2:4]), PER_HOUR[4]]
    assert out["points"][-1]["end"] == scenario.at(len(PER_HOUR))
    # drift per hour is the engine on that hour's rows
    drift = metric(client, scenario, "drift", step="3600")
    for i, p in enumerate(drift["points"]):
        assert_drift_equals_engine(p["value"], scenario, scenario.rows_in(i, i + 1))


def test_a_series_of_many_ragged_windows_reads_in_chunks(
        client: httpx.Client, scenario: Scenario) -> None:
    """Five centuries in 89-week steps starting off the hour: every window's cover has its
    own edge ranges, thousands in all, more than SQLite nests in one query (schemathesis
    found the 500); every logged row is still counted once."""
    out = ok(client.get(f"/models/{scenario.name}/metrics", params={
        "metric": "volume", "start": "1475-03-16T21:05", "end": "now", "step": "89w"}))
    assert len(out["points"]) > 250
    assert sum(p["rows"] for p in out["points"]) == len(scenario.sent)


def test_latency_percentiles_match_numpy_on_the_sent_latencies(
        client: httpx.Client, scenario: Scenario) -> None:
    lat = scenario.sent.latency.to_numpy()
    valid = lat[np.isfinite(lat) & (lat >= 0)]
    assert 0 < len(valid) < len(lat)
    value = metric(client, scenario, "latency")["points"][0]["value"]
    assert value["count"] == len(valid)
    for q in (50, 90, 95, 99):
        assert value[f"p{q}"] == pytest.approx(np.percentile(valid, q), rel=0.06), q


def test_estimated_performance_is_cbpe_on_the_window(
        client: httpx.Client, scenario: Scenario) -> None:
    value = metric(client, scenario, "estimated_performance")["points"][0]["value"]
    assert value is not None and value["n"] == len(scenario.sent)
    auc = value["metrics"]["roc_auc"]
    assert auc["lower"] <= auc["estimate"] <= auc["upper"]
    want = scenario.ref.estimated_performance(scenario.engine_profile(scenario.sent)).to_dict()
    for k, m in want["metrics"].items():
        for field in ("estimate", "lower", "upper"):
            assert value["metrics"][k][field] == pytest.approx(m[field], rel=1e-9, abs=1e-12)
    # the estimate is honest: the labels, scored by scikit-learn, land inside the band
    realised = roc_auc_score(scenario.sent.y, scenario.sent.score)
    assert auc["lower"] - 0.01 <= realised <= auc["upper"] + 0.01


def test_realised_performance_matches_sklearn_on_the_labelled_rows(
        client: httpx.Client, scenario: Scenario) -> None:
    value = metric(client, scenario, "performance")["points"][0]["value"]
    lab = scenario.sent[scenario.sent.labelled]
    assert value["labels"] == len(lab)
    m = value["metrics"]
    y, pred, score = lab.y.to_numpy(), lab.pred.to_numpy(), lab.score.to_numpy()
    assert m["accuracy"] == pytest.approx(accuracy_score(y, pred), abs=1e-12)
    assert m["precision"] == pytest.approx(precision_score(y, pred), abs=1e-12)
    assert m["recall"] == pytest.approx(recall_score(y, pred), abs=1e-12)
    assert m["f1"] == pytest.approx(f1_score(y, pred), abs=1e-12)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, score), abs=2e-3)
    assert m["log_loss"] == pytest.approx(log_loss(y, score), rel=1e-6)


def test_prediction_distribution_next_to_the_reference(
        client: httpx.Client, scenario: Scenario) -> None:
    value = metric(client, scenario, "prediction")["points"][0]["value"]
    assert value["column"] == "pred" and value["n"] == len(scenario.sent)
    cats = value["categories"]
    assert cats[-1] == "(unseen)"
    ref_df = frame(4000, seed=0)
    for counts, df in ((value["current"], scenario.sent), (value["reference"], ref_df)):
        assert len(counts) == len(cats)
        want = df.pred.astype(str).value_counts()
        assert dict(zip(cats[:-1], counts[:-1], strict=True)) == {
            c: int(want.get(c, 0)) for c in cats[:-1]}
        assert counts[-1] == 0


# --------------------------------------------------------------- compaction
def test_compaction_does_not_change_any_answer(
        server: ThreadServer, client: httpx.Client, scenario: Scenario) -> None:
    queries = [("drift", {}), ("drift", {"step": "1h"}), ("volume", {"step": "1h"}),
               ("latency", {}), ("estimated_performance", {}), ("performance", {}),
               ("quality", {}), ("prediction", {})]
    before = [metric(client, scenario, m, **p) for m, p in queries]
    monitor: Monitor = server.server.config.app.state.monitor
    monitor.compact()
    with monitor.db.read() as conn:
        model_id = conn.execute(select(models.c.id).where(
            models.c.name == scenario.name)).scalar_one()
        per_key = conn.execute(select(func.count()).select_from(bucket_profiles).where(
            bucket_profiles.c.model_id == model_id).group_by(
            bucket_profiles.c.version_id, bucket_profiles.c.level,
            bucket_profiles.c.start)).scalars().all()
    assert per_key and max(per_key) == 1  # one merged partial per key
    after = [metric(client, scenario, m, **p) for m, p in queries]
    for (m, _), b, a in zip(queries, before, after, strict=True):
        assert_same(b, a, m)


def assert_same(a: object, b: object, path: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), path
    else:
        assert a == b, path


@pytest.fixture
def quiet_monitor(db_url: str, tmp_path: Path) -> Iterator[Monitor]:
    """A monitor on its own fresh database with no maintenance thread: partials stay put."""
    with database_url("sqlite" if db_url.startswith("sqlite") else "postgresql",
                      tmp_path) as url:
        db = Database(url)
        db.migrate()
        try:
            yield Monitor(db, MonitorSettings())
        finally:
            db.dispose()


def test_merged_partials_answer_as_their_compaction(quiet_monitor: Monitor) -> None:
    m = quiet_monitor
    m.create_model("quiet")
    ref_df = frame(2000, seed=0)
    m.upload_reference("quiet", "v1", pq.read_table(io.BytesIO(parquet(ref_df))),
                       {"target": "y", "prediction": "pred", "scores": "score"})
    h0 = (int(time.time()) // HOUR - 5) * HOUR
    df = frame(900, seed=7, amount_scale=1.3)
    df["ts"] = h0 + np.random.default_rng(1).uniform(0, 3 * HOUR, len(df))
    df["pid"] = [f"q{i}" for i in range(len(df))]
    df["latency"] = np.random.default_rng(2).lognormal(1, 1, len(df))
    for part in np.array_split(np.random.default_rng(3).permutation(len(df)), 6):
        res = m.log_predictions("quiet", rows_json(df.iloc[part]))
        assert res.accepted == len(part)
    window = {"start": h0, "end": h0 + 3 * HOUR}

    def answers() -> list:
        return [m.series("quiet", k, **window, step=st)
                for k in ("drift", "volume", "latency", "estimated_performance", "quality")
                for st in (None, "1h", "10m")]

    def partials() -> tuple[int, int]:
        with m.db.read() as conn:
            n = conn.execute(select(func.count()).select_from(bucket_profiles)).scalar_one()
            keys = conn.execute(select(func.count()).select_from(
                select(bucket_profiles.c.level, bucket_profiles.c.start).distinct()
                .subquery())).scalar_one()
        return n, keys

    n, keys = partials()
    assert n > keys  # six requests wrote several partials per hour and day rollup
    before = answers()
    assert m.compact() > 0
    assert partials() == (keys, keys)
    assert m.compact() == 0
    after = answers()
    assert_same(before, after, "series")
    assert before[0]["points"][0]["rows"] == len(df)
    assert [p["rows"] for p in before[1]["points"]] == np.bincount(
        ((df.ts - h0) // HOUR).astype(int), minlength=3).tolist()


# ----------------------------------------------------------- quality, compare
def test_one_corrupted_amount_is_a_far_out_of_range_error(client: httpx.Client) -> None:
    http = client
    name = new_model(http, "corrupt")
    put_reference(http, name, frame(2000, seed=0))
    h0 = (int(time.time()) // HOUR - 3) * HOUR
    df = frame(400, seed=5)
    df["ts"] = h0 + np.arange(len(df)) * 5.0
    df["pid"] = [f"r{i}" for i in range(len(df))]
    df["latency"] = 2.0
    df.loc[123, "amount"] = 1e308
    ok(http.post(f"/models/{name}/predictions", json=rows_json(df)))
    q = ok(http.get(f"/models/{name}/metrics", params={
        "metric": "quality", "start": h0, "end": h0 + HOUR}))["points"][0]["value"]
    far = [f for f in q["findings"] if f["check"] == "far_out_of_range"]
    assert len(far) == 1 and far[0]["column"] == "amount" and far[0]["severity"] == "error"
    assert far[0]["count"] == 1 and q["errors"] >= 1 and q["ok"] is False
    # the clean half of the window has no error
    clean = ok(http.get(f"/models/{name}/metrics", params={
        "metric": "quality", "start": h0, "end": h0 + 600}))["points"][0]["value"]
    assert clean["rows"] == 120 and clean["errors"] == 0
    assert not [f for f in clean["findings"] if f["severity"] == "error"]


def test_compare_window_against_baseline_window(
        client: httpx.Client, scenario: Scenario) -> None:
    s = scenario
    out = ok(client.get(f"/models/{s.name}/compare", params={
        "start": s.at(SHIFTED_FROM), "end": s.at(len(PER_HOUR)),
        "baseline_start": s.at(0), "baseline_end": s.at(SHIFTED_FROM)}))
    assert out["window"]["rows"] == sum(PER_HOUR[SHIFTED_FROM:])
    assert out["baseline"]["rows"] == sum(PER_HOUR[:SHIFTED_FROM])
    assert out["drift"]["drifted_features"] == ["amount"]
    assert out["drift"]["n_current"] == sum(PER_HOUR[SHIFTED_FROM:])
    assert out["quality"]["rows"] == sum(PER_HOUR[SHIFTED_FROM:])
    # an unshifted window against another unshifted one: nothing drifts
    calm = ok(client.get(f"/models/{s.name}/compare", params={
        "start": s.at(1), "end": s.at(SHIFTED_FROM),
        "baseline_start": s.at(0), "baseline_end": s.at(1)}))
    assert calm["drift"]["drifted_features"] == []
    assert calm["window"]["rows"] == PER_HOUR[1] + PER_HOUR[2]
    # the shifted hours against each other: nothing drifts either
    same_shift = ok(client.get(f"/models/{s.name}/compare", params={
        "start": s.at(4), "end": s.at(5), "baseline_start": s.at(3), "baseline_end": s.at(4)}))
    assert same_shift["drift"]["drifted_features"] == []


def test_compare_against_the_reference(client: httpx.Client, scenario: Scenario) -> None:
    s = scenario
    out = ok(client.get(f"/models/{s.name}/compare", params={
        "start": s.at(SHIFTED_FROM), "end": s.at(len(PER_HOUR))}))
    assert out["baseline"] == "reference"
    assert_drift_equals_engine(out["drift"], s, s.rows_in(SHIFTED_FROM, len(PER_HOUR)))
    assert out["drift"]["drifted_features"] == ["amount"]
    assert out["quality"]["rows"] == sum(PER_HOUR[SHIFTED_FROM:])
    # an empty window is a 422 naming the field, not an empty comparison
    r = client.get(f"/models/{s.name}/compare", params={"start": s.at(20), "end": s.at(21)})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "start"


# ------------------------------------------------------------------- events
def test_events_export_holds_exactly_the_window_rows_and_labels(
        client: httpx.Client, scenario: Scenario) -> None:
    s = scenario
    r = client.get(f"/models/{s.name}/events", params={"start": s.at(1), "end": s.at(3)})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.apache.parquet")
    table = pq.read_table(io.BytesIO(r.content))
    labels = dict(zip(table.column("prediction_id").to_pylist(),
                      table.column("label").to_pylist(), strict=True))
    got = table.to_pandas().set_index("prediction_id")
    want = s.rows_in(1, 3).set_index("pid")
    assert len(got) == len(want) == PER_HOUR[1] + PER_HOUR[2]
    assert set(got.index) == set(want.index)
    got = got.loc[want.index]
    np.testing.assert_array_equal(got["timestamp"].to_numpy(), want.ts.to_numpy())
    for col in ("x", "amount", "score"):
        np.testing.assert_array_equal(got[col].to_numpy(), want[col].to_numpy())
    assert got["c"].tolist() == want.c.tolist()
    assert got["pred"].astype(int).tolist() == want.pred.tolist()
    expected_labels = [str(y) if lab else None for y, lab in zip(want.y, want.labelled,
                                                                  strict=True)]
    assert [labels[p] for p in want.index] == expected_labels
    assert (got["version"] == "v1").all()
    # a window with no traffic exports no rows
    r = client.get(f"/models/{s.name}/events", params={"start": s.at(6), "end": s.at(7)})
    assert pq.read_table(io.BytesIO(r.content)).num_rows == 0


# ------------------------------------------------------------------- errors
@pytest.mark.parametrize(("params", "field"), [
    ({"metric": "accuracy"}, "metric"),
    ({"metric": "drift", "step": "90"}, "step"),
    ({"metric": "drift", "step": "90s"}, "step"),
    ({"metric": "drift", "step": "abc"}, "step"),
    ({"metric": "drift", "step": "0"}, "step"),
    ({"metric": "drift", "step": "1m", "start": "2026-01-01T00:00:00Z",
      "end": "2026-12-31T00:00:00Z"}, "step"),
    ({"metric": "drift", "start": "2026-11-25T12:00:00Z", "end": "2026-11-25T10:00:00Z"},
     "start"),
    ({"metric": "drift", "start": "2026-11-25T10:00:00Z", "end": "2026-11-25T10:00:00Z"},
     "start"),
    ({"metric": "drift", "start": "yesterday"}, "start"),
    ({"metric": "drift", "end": "nan"}, "end"),
    ({"metric": "drift", "start": "1e300"}, "start"),
    ({"metric": "drift", "end": "-inf"}, "end"),
    ({"metric": "drift", "end": "9999-12-31T23:59:59Z"}, "end"),
])
def test_bad_queries_are_422_naming_the_field(
        client: httpx.Client, scenario: Scenario, params: dict, field: str) -> None:
    r = client.get(f"/models/{scenario.name}/metrics", params=params)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["field"] == field, detail
    assert field in detail["message"]


def test_missing_metric_and_unknown_model(client: httpx.Client, scenario: Scenario) -> None:
    r = client.get(f"/models/{scenario.name}/metrics")
    assert r.status_code == 422 and "metric" in r.json()["detail"]["field"]
    r = client.get("/models/no-such-model-xyz/metrics", params={"metric": "drift"})
    assert r.status_code == 404


def test_a_version_without_reference_counts_volume_but_has_no_drift(
        client: httpx.Client) -> None:
    http = client
    name = new_model(http, "noref")
    ok(http.post(f"/models/{name}/versions", json={"version": "v0"}), 201)
    h0 = (int(time.time()) // HOUR - 2) * HOUR
    df = frame(250, seed=9)
    df["ts"] = h0 + np.arange(len(df)) * 10.0
    df["pid"] = [f"n{i}" for i in range(len(df))]
    df["latency"] = np.linspace(1, 50, len(df))
    res = ok(http.post(f"/models/{name}/predictions", json=rows_json(df)))
    assert res["accepted"] == len(df)
    window = {"start": h0, "end": h0 + HOUR}
    pts = ok(http.get(f"/models/{name}/metrics", params={"metric": "drift", **window}))
    assert pts["version"] == "v0"
    assert pts["points"][0]["value"] is None and pts["points"][0]["rows"] == len(df)
    vol = ok(http.get(f"/models/{name}/metrics", params={"metric": "volume", **window}))
    assert vol["points"][0]["value"]["rows"] == len(df)
    lat = ok(http.get(f"/models/{name}/metrics", params={"metric": "latency", **window}))
    assert lat["points"][0]["value"]["count"] == len(df)
    for m in ("estimated_performance", "prediction"):
        got = ok(http.get(f"/models/{name}/metrics", params={"metric": m, **window}))
        assert got["points"][0]["value"] is None, m
    r = http.get(f"/models/{name}/compare", params=window)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "version"
