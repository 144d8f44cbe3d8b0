"""The registry through the real server (SQLite and PostgreSQL), with real API keys.

Keys are created in the server's database before the first request, so the server
requires them; uploads go through the SDK (multipart) and raw bodies (curl style).
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from aiwarden.sdk import ApiError, Client
from aiwarden.store import keys
from aiwarden.store.database import Database
from tests.registry.models import fitted, frame, onnx_bytes, skops_bytes
from tests.server.live import ThreadServer


@pytest.fixture(scope="module")
def creds(db_url: str) -> dict[str, str]:
    db = Database(db_url)
    db.migrate()
    with db.write() as conn:
        out = {name: keys.create_key(conn, name, scopes)[0] for name, scopes in (
            ("ops-admin", ["admin"]), ("ci-reader", ["ingest", "read"]))}
    db.dispose()
    return out


@pytest.fixture(scope="module")
def admin(server: ThreadServer, creds: dict[str, str]) -> Iterator[Client]:
    with httpx.Client() as probe:  # the server re-reads "any keys?" every 2 s
        deadline = time.monotonic() + 30
        while probe.get(f"{server.url}/api/v1/registry/models").status_code != 401:
            assert time.monotonic() < deadline, "the server never started requiring keys"
            time.sleep(0.2)
    with Client(server.url, api_key=creds["ops-admin"]) as c:
        yield c


@pytest.fixture(scope="module")
def reader(server: ThreadServer, creds: dict[str, str], admin: Client) -> Iterator[Client]:
    with Client(server.url, api_key=creds["ci-reader"]) as c:
        yield c


def test_register_list_show_download(admin: Client, server: ThreadServer,
                                     creds: dict[str, str]) -> None:
    model = fitted(seed=0)
    v1 = admin.register_version("scorer", model, metadata={
        "metrics": {"auc": 0.88}, "params": {"C": 1.0}, "tags": {"team": "risk"},
        "source_commit": "deadbeef", "training_profile": {"rows": 400}})
    raw = skops_bytes(fitted(seed=1))
    r = httpx.post(f"{server.url}/api/v1/registry/models/scorer/versions", content=raw,
                   params={"format": "skops", "metadata": '{"metrics": {"auc": 0.9}}'},
                   headers={"Authorization": f"Bearer {creds['ops-admin']}",
                            "Content-Type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    v2 = r.json()
    assert (v1["version"], v2["version"]) == ("1", "2")
    assert v1["registered_by"] == "ops-admin" and v1["format"] == "skops"
    assert v1["metadata"]["source_commit"] == "deadbeef"
    assert v2["sha256"] == hashlib.sha256(raw).hexdigest()
    assert [v["version"] for v in admin.registered_versions("scorer")] == ["1", "2"]
    assert admin.registered_version("scorer", "2")["metadata"]["metrics"] == {"auc": 0.9}
    assert admin.download_artifact("scorer", "2") == raw
    # the registry made the model: monitoring knows it, with the same version labels
    assert [v["version"] for v in admin.get_model("scorer")["versions"]] == ["1", "2"]
    listed = {m["name"]: m for m in admin.registry_models()}
    assert listed["scorer"]["versions"] == 2 and listed["scorer"]["latest"] == "2"


def test_aliases_history_previous(admin: Client, reader: Client) -> None:
    for seed in range(2):
        admin.register_version("aliased", fitted(seed=seed))
    first = admin.set_alias("aliased", "champion", "1", "first release")
    assert first["changed"] and first["previous"] is None
    moved = admin.promote("aliased", "2", "better AUC on last week's labels")
    assert moved["previous"] == "1" and moved["event"]["kind"] == "promote"
    assert admin.set_alias("aliased", "champion", "2", "again")["changed"] is False
    assert reader.aliases("aliased") == {"champion": "2"}
    assert reader.resolve_alias("aliased", "champion")["version"] == "2"
    assert reader.previous_version("aliased", "champion")["version"] == "1"
    hist = reader.alias_history("aliased", "champion")
    assert [(h["from_version"], h["to_version"], h["actor"], h["reason"]) for h in hist] == [
        ("1", "2", "ops-admin", "better AUC on last week's labels"),
        (None, "1", "ops-admin", "first release")]
    with pytest.raises(ApiError) as err:
        admin.set_alias("aliased", "champion", "1", "rollback", expected_version="1")
    assert err.value.status == 409 and err.value.field == "expected_version"
    with pytest.raises(ApiError) as err:
        reader.set_alias("aliased", "champion", "1", "a reader cannot move aliases")
    assert err.value.status == 403
    gone = admin.delete_alias("aliased", "champion", "retired")
    assert gone["to_version"] is None and gone["from_version"] == "2"
    assert reader.aliases("aliased") == {}
    assert len(reader.alias_history("aliased")) == 3


def test_changed_artifact_is_refused(admin: Client, server: ThreadServer) -> None:
    """Issue 5, test 3: bytes changed in the store after upload are refused, clearly."""
    v = admin.register_version("tamper", fitted(seed=2))
    path = next((Path(server.settings.data_dir) / "artifacts" / "tamper").glob(
        f"{v['sha256']}.*"))
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))
    changed = hashlib.sha256(bytes(data)).hexdigest()
    with pytest.raises(ApiError) as err:
        admin.download_artifact("tamper", "1")
    assert err.value.status == 409 and err.value.kind == "artifact_integrity"
    assert "tamper version 1" in err.value.message
    assert v["sha256"] in err.value.message and changed in err.value.message
    registry = server.server.config.app.state.registry  # what the gateway will call
    from aiwarden.registry import ArtifactIntegrityError

    with pytest.raises(ArtifactIntegrityError, match=changed):
        registry.load("tamper", "1")


def test_non_admin_cannot_register_pickle(admin: Client, reader: Client) -> None:
    """Issue 5, test 4, plus the rest of the trust rule."""
    data = pickle.dumps(fitted(seed=3))
    with pytest.raises(ApiError) as err:
        reader.register_version("pickled", data, filename="model.pkl", trust=True)
    # refused by the route's declared scope, before the body is read; the message says why
    assert err.value.status == 403 and err.value.kind == "forbidden"
    assert err.value.field == "scope"
    assert "'admin'" in err.value.message and "runs arbitrary code" in err.value.message
    with pytest.raises(ApiError) as err:
        reader.register_version("pickled", fitted(seed=3))  # a safe format: still a write
    assert err.value.status == 403 and "'admin'" in err.value.message
    with pytest.raises(ApiError) as err:
        admin.register_version("pickled", data, filename="model.pkl")
    assert err.value.status == 403 and err.value.field == "trust"
    with pytest.raises(ApiError) as err:
        admin.registered_versions("pickled")
    assert err.value.status == 404  # nothing was registered, not even the model
    ok = admin.register_version("pickled", data, filename="model.pkl", trust=True)
    assert ok["format"] == "pickle" and ok["trusted_by"] == "ops-admin"


def test_onnx_over_the_api_predicts_like_sklearn(admin: Client, server: ThreadServer) -> None:
    pytest.importorskip("skl2onnx")
    model = fitted(seed=4)
    v = admin.register_version("onnx-api", onnx_bytes(model), filename="m.onnx",
                               metadata={"inputs": ["x1", "x2", "x3"]})
    assert v["format"] == "onnx"
    x, _ = frame(100, seed=8)
    pred = server.server.config.app.state.registry.load("onnx-api", alias=None)
    np.testing.assert_allclose(pred.predict_proba(x), model.predict_proba(x), atol=1e-5)


def test_errors_name_the_field(admin: Client, server: ThreadServer,
                               creds: dict[str, str]) -> None:
    url = f"{server.url}/api/v1/registry/models/errs/versions"
    auth = {"Authorization": f"Bearer {creds['ops-admin']}"}
    r = httpx.post(url, content=b"abc", params={"format": "h5"}, headers=auth)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "format"
    assert "choose from" in r.json()["detail"]["message"]
    r = httpx.post(url, content=skops_bytes(fitted()), headers=auth,
                   params={"format": "skops", "metadata": "{not json"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "metadata"
    r = httpx.post(url, content=b"garbage", params={"format": "skops"}, headers=auth)
    assert r.status_code == 422 and r.json()["detail"]["error"] == "invalid_artifact"
    r = httpx.post(url, files={"wrong": ("m.skops", b"x")}, headers=auth)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "artifact"
    r = httpx.get(f"{server.url}/api/v1/registry/models/nope/versions", headers=auth)
    assert r.status_code == 404 and r.json()["detail"]["field"] == "name"


def test_concurrent_alias_moves_over_http(admin: Client, server: ThreadServer,
                                          creds: dict[str, str]) -> None:
    for seed in range(3):
        admin.register_version("busy", fitted(seed=seed))
    failures: list[str] = []

    def mover(i: int) -> None:
        with Client(server.url, api_key=creds["ops-admin"]) as c:
            for j in range(5):
                try:
                    c.set_alias("busy", "champion", str((i + j) % 3 + 1), f"w{i}.{j}")
                except ApiError as exc:
                    failures.append(str(exc))

    threads = [threading.Thread(target=mover, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    events = list(reversed(admin.alias_history("busy", "champion", limit=1000)))
    assert events[0]["from_version"] is None
    for before, after in itertools.pairwise(events):
        assert after["from_version"] == before["to_version"] != after["to_version"]
    assert admin.aliases("busy")["champion"] == events[-1]["to_version"]


def test_artifacts_url_setting_picks_the_store(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """AIWARDEN_ARTIFACTS_URL may be any fsspec URL; here memory://, on an open server."""
    fsspec = pytest.importorskip("fsspec")
    from tests.server.live import settings_for

    monkeypatch.setenv("AIWARDEN_ARTIFACTS_URL", "memory://srv-test/artifacts")
    settings = settings_for(f"sqlite:///{tmp_path / 'm.db'}", tmp_path)
    data = skops_bytes(fitted(seed=6))
    with ThreadServer(settings) as srv, Client(srv.url) as c:
        v = c.register_version("in-memory", data, filename="m.skops")
        assert v["registered_by"] == "anonymous"
        stored = fsspec.filesystem("memory").cat_file(
            f"/srv-test/artifacts/in-memory/{v['sha256']}.skops")
        assert stored == data == c.download_artifact("in-memory", "1")
    assert not (tmp_path / "artifacts").exists()
