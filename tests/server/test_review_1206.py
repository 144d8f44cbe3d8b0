"""Findings 3, 4 and 8 of the outside review of 2026-12-06, through a real server (SQLite
and PostgreSQL): a config typo no longer silences paging, the gateway refuses what ingest
would quarantine, and the small inconsistencies of finding 8."""

from __future__ import annotations

import httpx
import pytest

JSON = {"content-type": "application/json"}
OPS = {"type": "webhook", "name": "ops", "url": "https://hooks.example/aiwarden",
       "secret": "s3cr3t"}


# ------------------------------------------------------------- notifications config
@pytest.mark.parametrize(("body", "field"), [
    ({"recievers": [{"type": "webhook", "name": "ops", "url": "https://hooks.example/x"}]},
     "recievers"),
    ({"rows": 5}, "rows"),
    ({"receivers": [], "bogus": 1}, "bogus"),
    ({}, "body"),
])
def test_a_config_typo_is_refused_and_keeps_the_receivers(http, body, field) -> None:
    http.put("/notifications/config",
             json={"receivers": [OPS], "route": {"receiver": "ops"}}).raise_for_status()
    got = http.put("/notifications/config", json=body)
    assert got.status_code == 422, got.text
    detail = got.json()["detail"]
    assert detail["field"] == field, got.text
    assert field in detail["message"] if field != "body" else "receivers" in detail["message"]
    kept = http.get("/notifications/config").json()
    assert [r["name"] for r in kept["receivers"]] == ["ops"], kept
    assert kept["route"]["receiver"] == "ops", kept


def test_the_config_document_states_the_known_keys_only(server, http) -> None:
    doc = httpx.get(f"{server.url}/openapi.json", timeout=60).json()
    body = doc["paths"]["/api/v1/notifications/config"]["put"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    if "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert schema["additionalProperties"] is False and schema["minProperties"] == 1
    assert set(schema["properties"]) == {"route", "receivers", "inhibit_rules",
                                         "escalation_policies"}
    # clearing stays possible, by naming the section
    http.put("/notifications/config", json={"receivers": [], "route": None}
             ).raise_for_status()
    assert http.get("/notifications/config").json()["receivers"] == []


# ------------------------------------------------------------- finding 8
@pytest.mark.parametrize(("body", "field", "words"), [
    (b"{not json", "body", "Malformed JSON at line 1"),
    (b'\xef\xbb\xbf{"name": "bom-model"}', "body", "Malformed JSON"),
    (b'{"name": "nan-model", "description": NaN}', "description", "NaN"),
    (b'{"name": "sur-model", "description": "x\\ud800"}', "description", "surrogate"),
    (b'{"name": "extra-model", "segments": "a"}', "segments", "list"),
])
def test_creating_a_model_parses_json_as_every_route_does(http, body, field, words) -> None:
    got = http.post("/models", content=body, headers=JSON)
    assert got.status_code == 422, got.text
    detail = got.json()["detail"]
    assert detail["field"] == field and words in detail["message"], detail
    assert "body.0" not in got.text and "JSON decode error" not in got.text
    assert http.get("/models").status_code == 200
    names = {m["name"] for m in http.get("/models").json()}
    assert not names & {"bom-model", "nan-model", "sur-model", "extra-model"}, names
    made = http.post("/models", json={"name": f"ok-{field}-{len(body)}", "task": "binary"})
    assert made.status_code in (201, 409), made.text
    assert http.post("/models", content=b'{"name": "x"}').status_code == 415


def test_a_label_row_that_is_not_an_object_has_one_error(http) -> None:
    http.post("/models", json={"name": "lab1206", "task": "binary"})
    got = http.post("/models/lab1206/labels", json=[1, "x", {"prediction_id": "p", "label": 1}])
    assert got.status_code == 200, got.text
    errors = got.json()["errors"]
    assert [(e["row"], e["field"]) for e in errors if e["row"] < 2] == [(0, "row"), (1, "row")], \
        errors


def test_an_output_named_after_its_role_is_named_once() -> None:
    from aiwarden.rca.analysis import _prediction

    drift = {"outputs": [{"role": "score", "column": c, "method": "psi", "value": 0.5,
                          "threshold": 0.2, "drifted": True}
                         for c in ("score", "fraud_score", "p1")]}
    texts = [s.summary for s in _prediction(drift)[1]]
    assert [t.split(" shifted")[0] for t in texts] == [
        "the score", "the fraud_score", "the score p1"], texts


def test_image_properties_are_named_once_in_ignored_columns(http) -> None:
    pytest.importorskip("PIL")
    import base64
    import io

    import numpy as np
    from PIL import Image

    from aiwarden.images import properties

    def png(seed: int) -> bytes:
        a = (np.random.default_rng(seed).random((32, 32, 3)) * 255).astype("uint8")
        out = io.BytesIO()
        Image.fromarray(a).save(out, "PNG")
        return out.getvalue()

    ref = properties([png(i) for i in range(20)]).to_pandas()[["brightness", "contrast"]]
    ref["pred"] = ["apple", "banana"] * 10
    ref["store"] = ["s1", "s2"] * 10
    http.post("/models", json={"name": "img1206", "task": "multiclass"})
    http.put("/models/img1206/versions/v1/reference", params={"prediction": "pred"},
             content=ref.to_csv(index=False).encode(),
             headers={"content-type": "text/csv"}).raise_for_status()
    rows = [{"prediction_id": "i-1", "prediction": "apple", "features": {"store": "s1"},
             "image": base64.b64encode(png(100)).decode()},
            {"prediction_id": "i-2", "prediction": "banana",
             "image": base64.b64encode(png(101)).decode()}]
    got = http.post("/models/img1206/images", json={"rows": rows})
    assert got.status_code == 200, got.text
    ignored = got.json()["ignored_columns"]
    assert "features.aspect_ratio" in ignored and "aspect_ratio" not in ignored, ignored
    bare = {c.split(".", 1)[-1] for c in ignored}
    assert len(bare) == len(ignored), ignored
    assert got.json()["accepted"] == 2, got.text


def test_a_body_with_no_content_type_is_json_to_ingest_and_refused_cross_site(http) -> None:
    """docs/security.md: ingest reads a body with no Content-Type as JSON; a browser's
    cross-site request carrying one is refused by the Origin / Sec-Fetch-Site guard."""
    http.post("/models", json={"name": "ct1206"})
    row = b'[{"prediction_id": "ct-1", "x": 1.5}]'
    for headers in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        got = http.post("/models/ct1206/predictions", content=row, headers=headers)
        assert got.status_code == 403 and got.json()["detail"]["error"] == "cross_site", \
            got.text
    got = http.post("/models/ct1206/predictions", content=row)
    assert got.status_code == 200 and got.json()["received"] == 1, got.text
