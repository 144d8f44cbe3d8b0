"""Health, readiness and the API docs, which must work without internet access."""

from __future__ import annotations

import re

import httpx


def test_health_and_readiness(server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz").json()
    assert ready["status"] == "ready" and ready["database"] in ("sqlite", "postgresql")


def test_docs_load_everything_from_the_server(server) -> None:
    page = httpx.get(f"{server.url}/docs")
    assert page.status_code == 200
    assert not re.search(r"(src|href)=[\"']https?://", page.text), "a CDN reference remains"
    assets = re.findall(r"(?:src|href)=[\"'](/[^\"']+)[\"']", page.text)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    for asset in assets:
        r = httpx.get(f"{server.url}{asset}")
        assert r.status_code == 200 and len(r.content) > 500, asset
    spec = httpx.get(f"{server.url}/openapi.json", timeout=60).json()
    assert "/api/v1/models/{name}/predictions" in spec["paths"]
    assert "/api/v1/models/{name}/metrics" in spec["paths"]
