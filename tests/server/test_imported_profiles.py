"""A reference and batch profiles computed away from the server (a Spark/Dask job or
``aiwarden profile``) sent as JSON: checked, stored, and read back by the windows exactly as
the local engine compares them (real server, SQLite and PostgreSQL)."""

from __future__ import annotations

import copy
import io
import json
import time
import uuid

import httpx
import pytest

from aiwarden.engine import Reference
from tests.server.conftest import HINTS, scored_frame

HOUR = 3600


def _json(obj: dict) -> dict:
    return json.loads(json.dumps(obj))


@pytest.fixture(scope="module")
def ref() -> Reference:
    return Reference.fit(scored_frame(4000, seed=1), **HINTS)


@pytest.fixture(scope="module")
def model(http_module: httpx.Client, ref: Reference) -> str:
    name = f"imp-{uuid.uuid4().hex[:8]}"
    http_module.post("/models", json={"name": name}).raise_for_status()
    r = http_module.put(f"/models/{name}/versions/v1/reference-profile", json=_json(ref.to_dict()))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["fingerprint"] == ref.fingerprint and out["source"] == "profile"
    assert out["rows"] == 4000 and out["sample"] is None
    return name


@pytest.fixture(scope="module")
def http_module(server) -> httpx.Client:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        yield c


def test_the_stored_reference_is_the_one_sent_and_is_immutable(http_module, model, ref):
    http = http_module
    got = http.get(f"/models/{model}/versions/v1/reference")
    assert got.status_code == 200
    again = Reference.from_dict(got.json())
    assert again.to_dict() == _json(ref.to_dict())
    r = http.put(f"/models/{model}/versions/v1/reference-profile", json=_json(ref.to_dict()))
    assert r.status_code == 409 and r.json()["detail"]["field"] == "version"
    assert http.get(f"/models/{model}/versions/v9/reference").status_code == 404


def test_a_batch_profile_joins_the_window_holding_its_instant(http_module, model, ref):
    http = http_module
    h0 = (int(time.time()) // HOUR - 3) * HOUR
    batch = scored_frame(2500, seed=2, shift=0.8)
    local = ref.profile(batch)
    body = {"batch": "day-1", "at": h0 + 1800, "profile": _json(local.to_dict())}
    r = http.post(f"/models/{model}/versions/v1/profiles", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["rows"] == 2500 and r.json()["bucket"].startswith(
        time.strftime("%Y-%m-%dT%H:30", time.gmtime(h0)))

    window = {"start": h0, "end": h0 + HOUR}
    vol = http.get(f"/models/{model}/metrics", params={"metric": "volume", **window}).json()
    assert vol["points"][0]["value"]["rows"] == 2500
    drift = http.get(f"/models/{model}/metrics", params={"metric": "drift", **window}).json()
    served = drift["points"][0]["value"]
    expected = ref.compare(local)
    assert served["drifted_features"] == list(expected.drifted_features) == ["x"]
    assert served["n_current"] == expected.n_current == 2500
    local_cols = {c["column"]: c for c in expected.to_dict()["columns"]}
    assert set(served["columns"]) == set(local_cols)
    for col, res in served["columns"].items():
        assert res["value"] == pytest.approx(local_cols[col]["value"], rel=1e-9), col
        assert res["drifted"] == local_cols[col]["drifted"], col

    # a retried job sends the same batch again: refused, and nothing counted twice
    r = http.post(f"/models/{model}/versions/v1/profiles", json=body)
    assert r.status_code == 409 and r.json()["detail"]["field"] == "batch"
    vol = http.get(f"/models/{model}/metrics", params={"metric": "volume", **window}).json()
    assert vol["points"][0]["value"]["rows"] == 2500
    before = http.get(f"/models/{model}/metrics", params={
        "metric": "volume", "start": h0 - HOUR, "end": h0}).json()
    assert before["points"][0]["value"]["rows"] == 0

    multi = http.get(f"/models/{model}/metrics", params={
        "metric": "multivariate_drift", **window}).json()["points"][0]
    assert multi["value"] is None and "sample" in multi["reason"]


def test_profiles_that_do_not_fit_the_reference_are_refused_naming_the_field(
        http_module, model, ref):
    http = http_module
    url = f"/models/{model}/versions/v1/profiles"
    at = time.time() - 60
    batch = _json(ref.profile(scored_frame(500, seed=3)).to_dict())

    other = Reference.fit(scored_frame(4000, seed=5), bins=30, **HINTS)
    foreign = _json(other.profile(scored_frame(500, seed=3)).to_dict())
    r = http.post(url, json={"batch": "f", "at": at, "profile": foreign})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "profile.reference"

    bad = copy.deepcopy(batch)
    bad["columns"]["x"]["counts"][5] += 7
    r = http.post(url, json={"batch": "g", "at": at, "profile": bad})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "profile.columns.x"
    assert "add up to" in r.json()["detail"]["message"]

    for body, field in (({"at": at, "profile": batch}, "batch"),
                        ({"batch": "h", "profile": batch}, "at"),
                        ({"batch": "../h", "at": at, "profile": batch}, "batch"),
                        ({"batch": "b" * 65, "at": at, "profile": batch}, "batch"),
                        ({"batch": "h", "at": time.time() + 3 * 86400, "profile": batch}, "at"),
                        ({"batch": "h", "at": at, "profile": [1]}, "profile")):
        r = http.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"]["field"] == field
    r = http.post(url, json={"batch": "b" * 64, "at": at - 7 * 86400, "profile": batch})
    assert r.status_code == 201, r.text  # the longest name fits the store's keys (PostgreSQL)
    r = http.post(url, content=b"[1, 2]", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "body"


def test_an_edited_reference_is_refused_and_nothing_is_stored(http_module, ref):
    http = http_module
    name = f"imp-bad-{uuid.uuid4().hex[:8]}"
    http.post("/models", json={"name": name}).raise_for_status()
    d = _json(ref.to_dict())
    edges = d["binnings"]["x"]["edges"]
    edges[3] = (edges[2] + edges[3]) / 2
    r = http.put(f"/models/{name}/versions/v1/reference-profile", json=d)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]["field"] == "reference.profile"
    assert http.get(f"/models/{name}/versions/v1/reference").status_code == 404
    # the same version then takes a sound one
    r = http.put(f"/models/{name}/versions/v1/reference-profile", json=_json(ref.to_dict()))
    assert r.status_code == 201, r.text


def test_the_cli_fits_sends_profiles_on_the_servers_reference_and_refuses_a_retry(
        server, http_module, tmp_path, capsys):
    """``aiwarden profile`` as a daily job would run it: fit on the training folder and send
    the reference, then profile a day's folder on the server's reference and send it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from aiwarden.cli import main

    http = http_module
    name = f"imp-cli-{uuid.uuid4().hex[:8]}"
    http.post("/models", json={"name": name}).raise_for_status()
    train, day = tmp_path / "train", tmp_path / "2026-12-06"
    for folder, seed, shift in ((train, 11, 0.0), (day, 12, 1.0)):
        folder.mkdir()
        frame = scored_frame(3000, seed=seed, shift=shift)
        for i in range(3):  # a folder of files, as a job writes them
            pq.write_table(pa.Table.from_pandas(frame.iloc[i * 1000:(i + 1) * 1000],
                                                preserve_index=False), folder / f"{i}.parquet")
    common = ["--server", server.url, "--model", name, "--version", "v1"]
    assert main(["profile", str(train), "--fit", "--target", "y", "--prediction", "pred",
                 "--scores", "score", *common]) == 0
    out = capsys.readouterr().out
    assert "reference of 3000 rows" in out and "a sample of 3000 rows" in out
    sample = http.get(f"/models/{name}/versions/v1/sample")
    assert sample.status_code == 200 and pq.read_table(io.BytesIO(sample.content)).num_rows \
        == 3000
    local_ref = Reference.fit(str(train), target="y", prediction="pred", scores="score")
    assert local_ref.fingerprint in out

    h0 = (int(time.time()) // HOUR - 5) * HOUR
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(h0 + 600))
    saved = tmp_path / "day.json"
    assert main(["profile", str(day), "--at", at, "-o", str(saved), *common]) == 0
    out = capsys.readouterr().out
    assert "batch '2026-12-06'" in out and "written to" in out
    drift = http.get(f"/models/{name}/metrics", params={
        "metric": "drift", "start": h0, "end": h0 + HOUR}).json()["points"][0]
    assert drift["rows"] == 3000
    assert drift["value"]["drifted_features"] == list(
        local_ref.compare(local_ref.profile(str(day))).drifted_features) == ["x"]
    assert json.loads(saved.read_text())["profile"]["n_rows"] == 3000

    # the job retried: the batch is refused in one line, and counted once
    assert main(["profile", str(day), "--at", at, *common]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "taken already" in err
    # a version without a reference: nothing to count on, said in one line
    assert main(["profile", str(day), "--server", server.url, "--model", name,
                 "--version", "v7"]) == 3
    assert "cannot get the reference" in capsys.readouterr().err


def test_a_sample_sent_beside_the_reference_gives_multivariate_drift(http_module, ref):
    from tests.server.conftest import json_rows

    http = http_module
    name = f"imp-s-{uuid.uuid4().hex[:8]}"
    http.post("/models", json={"name": name}).raise_for_status()
    rows = scored_frame(4000, seed=1)
    doc = _json(ref.to_dict())
    r = http.put(f"/models/{name}/versions/v1/reference-profile",
                 json=doc | {"sample": {"c": rows.c.tolist()}})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "sample.x"
    r = http.put(f"/models/{name}/versions/v1/reference-profile",
                 json=doc | {"sample": rows.to_dict(orient="list")})
    assert r.status_code == 201, r.text
    assert r.json()["sample"] == 4000
    now = time.time()
    live = scored_frame(600, seed=4, shift=1.5)
    http.post(f"/models/{name}/predictions", json=json_rows(live, now - 1200)).raise_for_status()
    got = http.get(f"/models/{name}/metrics", params={
        "metric": "multivariate_drift", "start": "-1h", "end": "now"}).json()["points"]
    values = [p["value"] for p in got if p["value"] is not None]
    assert values, [p.get("reason") for p in got]
    assert values[0]["drifted"] is True


def test_a_model_with_declared_segments_needs_them_marked_in_the_reference(http_module, ref):
    """PUT .../reference applies the model's declared segments to the rows it fits; a
    reference fitted elsewhere must carry them itself, or the segments would be silently
    lost."""
    http = http_module
    name = f"imp-seg-{uuid.uuid4().hex[:8]}"
    http.post("/models", json={"name": name, "segments": ["c"]}).raise_for_status()
    r = http.put(f"/models/{name}/versions/v1/reference-profile", json=_json(ref.to_dict()))
    assert r.status_code == 422 and r.json()["detail"]["field"] == "reference.schema"
    assert "--segments c" in r.json()["detail"]["message"]
    marked = Reference.fit(scored_frame(4000, seed=1), segments=["c"], **HINTS)
    r = http.put(f"/models/{name}/versions/v1/reference-profile", json=_json(marked.to_dict()))
    assert r.status_code == 201, r.text
    roles = {c["name"]: c["role"] for c in r.json()["schema"]["columns"]}
    assert roles["c"] == "segment"
