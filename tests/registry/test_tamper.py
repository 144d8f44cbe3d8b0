"""A stored artifact changed on disk: one status (409 ``artifact_integrity``) on download and
on predict, and no error message names a path of the server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiwarden.errors import without_paths
from tests.registry.models import FEATURES, fitted, skops_bytes
from tests.server.live import ThreadServer


@pytest.fixture(scope="module")
def api(server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
        yield c


def _no_server_paths(server: ThreadServer, body: dict) -> None:
    text = str(body)
    data_dir = Path(server.settings.data_dir).resolve()
    for where in (str(data_dir), str(data_dir / "artifacts"), "/tmp/", "artifacts/"):
        assert where not in text, (where, text)
    assert without_paths(text) == text  # no other absolute path either


def _stored(server: ThreadServer, model: str, sha: str) -> Path:
    return next((Path(server.settings.data_dir) / "artifacts" / model).glob(f"{sha}.*"))


def _register(api: httpx.Client, model: str, seed: int) -> dict:
    r = api.post(f"/registry/models/{model}/versions",
                 files={"artifact": ("m.skops", skops_bytes(fitted(seed=seed)))})
    assert r.status_code == 201, r.text
    moved = api.put(f"/registry/models/{model}/aliases/champion",
                    json={"version": r.json()["version"], "reason": "first"})
    assert moved.status_code == 200, moved.text
    return r.json()


def _tamper(path: Path) -> str:
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))
    return hashlib.sha256(bytes(data)).hexdigest()


ROW = {"features": dict(zip(FEATURES, [0.1, -0.3, 1.2], strict=True))}


def test_tampered_artifact_answers_409_on_download_and_predict(
        api: httpx.Client, server: ThreadServer) -> None:
    v = _register(api, "tampered", seed=6)
    changed = _tamper(_stored(server, "tampered", v["sha256"]))

    down = api.get("/registry/models/tampered/versions/1/artifact")
    pred = api.post("/models/tampered/predict", json=ROW)  # the gateway's first load
    for r in (down, pred):
        assert r.status_code == 409, r.text
        detail = r.json()["detail"]
        assert detail["error"] == "artifact_integrity"
        assert detail["field"] == "sha256"
        assert "tampered version 1" in detail["message"]
        assert v["sha256"] in detail["message"] and changed in detail["message"]
        _no_server_paths(server, r.json())


def test_a_clean_model_still_predicts_and_downloads(api: httpx.Client) -> None:
    v = _register(api, "untouched", seed=7)
    down = api.get("/registry/models/untouched/versions/1/artifact")
    assert down.status_code == 200
    assert hashlib.sha256(down.content).hexdigest() == v["sha256"]
    pred = api.post("/models/untouched/predict", json=ROW)
    assert pred.status_code == 200, pred.text
    assert pred.json()["version"] == "1"


def test_a_missing_artifact_names_no_path(api: httpx.Client, server: ThreadServer) -> None:
    v = _register(api, "vanished", seed=8)
    _stored(server, "vanished", v["sha256"]).unlink()
    for r in (api.get("/registry/models/vanished/versions/1/artifact"),
              api.post("/models/vanished/predict", json=ROW)):
        assert r.status_code == 503, r.text
        assert r.json()["detail"]["error"] == "artifact_store"
        _no_server_paths(server, r.json())


def test_load_errors_of_third_party_code_lose_their_paths() -> None:
    from aiwarden.registry._errors import why

    exc = ImportError("cannot import name 'f' from 'pkg' "
                      "(/home/ops/venv/lib/python3.11/site-packages/pkg/__init__.py)")
    assert why(exc) == "cannot import name 'f' from 'pkg' (…/__init__.py)"
    assert why(FileNotFoundError(2, "No such file", "/tmp/aiwarden-artifacts-0/ab")) == \
        "[Errno 2] No such file: '…/ab'"
