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
