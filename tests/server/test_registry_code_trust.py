"""Issue 11 through real servers: skops ``trust=true`` cannot run code on an open server.

The reviewer's reproducer is built here: a skops file whose ``ConstructorFromReduceNode``
names ``os.system`` with a shell command that would create a marker file. Three servers
(SQLite): open (no keys, no flag), open with --allow-code-artifacts, and one with keys.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from aiwarden.registry import UntrustedArtifactError
from aiwarden.registry.formats import get_format
from aiwarden.store import keys
from aiwarden.store.database import Database
from tests.server.live import ThreadServer, settings_for

sio = pytest.importorskip("skops.io")


def evil_skops(module: str, name: str, argument: str) -> bytes:
    """``skops.io.dumps({"z": ZoneInfo("UTC")})`` with the reduce node's callable and
    argument replaced: loading it calls ``module.name(argument)``."""
    src = zipfile.ZipFile(io.BytesIO(sio.dumps({"z": zoneinfo.ZoneInfo("UTC")})))
    schema = json.loads(src.read("schema.json"))
    node = schema["content"]["z"]
    assert node["__loader__"] == "ConstructorFromReduceNode"
    node["__module__"], node["__class__"] = module, name
    node["content"]["content"][0]["content"] = json.dumps(argument)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        dst.writestr("schema.json", json.dumps(schema))
    return out.getvalue()


def tree_skops() -> bytes:
    from sklearn.tree import DecisionTreeClassifier

    x = np.random.default_rng(0).normal(size=(200, 3))
    return sio.dumps(DecisionTreeClassifier(max_depth=3).fit(x, x[:, 0] > 0))


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("trust")
    keyed_url = f"sqlite:///{tmp / 'keyed.db'}"
    db = Database(keyed_url)
    db.migrate()
    with db.write() as conn:
        secret = keys.create_key(conn, "ops-admin", ["admin"])[0]
    db.dispose()
    with (ThreadServer(settings_for(f"sqlite:///{tmp / 'open.db'}", tmp / "o")) as open_,
          ThreadServer(settings_for(f"sqlite:///{tmp / 'flag.db'}", tmp / "f",
                                    allow_code_artifacts=True)) as flag,
          ThreadServer(settings_for(keyed_url, tmp / "k")) as keyed):
        deadline = time.monotonic() + 30
        while httpx.get(f"{keyed.url}/api/v1/registry/models").status_code != 401:
            assert time.monotonic() < deadline, "the keyed server never required keys"
            time.sleep(0.2)
        yield {"open": (open_.url, {}), "flag": (flag.url, {}),
               "keyed": (keyed.url, {"Authorization": f"Bearer {secret}"})}


def post(servers: dict[str, Any], which: str, name: str, data: bytes,
         **params: str) -> httpx.Response:
    url, headers = servers[which]
    return httpx.post(f"{url}/api/v1/registry/models/{name}/versions",
                      params={"filename": "m.skops", **params}, content=data, timeout=60,
                      headers={**headers, "content-type": "application/octet-stream"})


@pytest.mark.parametrize("which", ["open", "flag", "keyed"])
@pytest.mark.parametrize("target", [("os", "system"), ("posix", "system"),
                                    ("subprocess", "getoutput"), ("builtins", "exec")])
def test_dangerous_types_are_refused_on_every_server_even_trusted(
        servers: dict[str, Any], which: str, target: tuple[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    command = (f"open({str(marker)!r}, 'w')" if target[0] == "builtins"
               else f"id > {marker}")
    r = post(servers, which, "victim", evil_skops(*target, command), trust="true")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["field"] == "trusted_types"
    assert f"{target[0]}.{target[1]}" in detail["message"]
    assert not marker.exists()


def test_open_server_refuses_trust_beyond_sklearn_naming_the_flag(
        servers: dict[str, Any]) -> None:
    plain = sio.dumps({"z": zoneinfo.ZoneInfo("UTC")})  # harmless, but not scikit-learn's
    r = post(servers, "open", "zone", plain, trust="true")
    assert r.status_code == 403, r.text
    detail = r.json()["detail"]
    assert detail["field"] == "trust"
    assert "zoneinfo.ZoneInfo" in detail["message"]
    assert "--allow-code-artifacts" in detail["message"]
    # the flag, or an admin key, makes it the operator's decision again: trust passes, and
    # the trial load then refuses a dict, which is no model
    for which in ("flag", "keyed"):
        r = post(servers, which, "zone", plain, trust="true")
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail["error"] == "invalid_artifact" and detail["field"] == "artifact"
        assert "dict" in detail["message"] and "predict()" in detail["message"]


@pytest.mark.parametrize("which", ["flag", "keyed"])
@pytest.mark.parametrize("obj", [{"model": None}, None, [1, 2]], ids=["dict", "none", "list"])
def test_an_artifact_that_is_no_model_is_refused_at_registration(
        servers: dict[str, Any], which: str, obj: Any) -> None:
    r = post(servers, which, "nomodel", sio.dumps(obj), trust="true")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["error"] == "invalid_artifact" and detail["field"] == "artifact"
    assert type(obj).__name__ in detail["message"], detail
    url, headers = servers[which]
    listed = httpx.get(f"{url}/api/v1/registry/models/nomodel/versions", headers=headers)
    assert listed.status_code == 404, listed.text  # nothing stored, not even the model


def test_sklearn_tree_needs_trust_and_the_403_says_how(servers: dict[str, Any]) -> None:
    data = tree_skops()
    r = post(servers, "open", "tree", data)
    assert r.status_code == 403, r.text
    message = r.json()["detail"]["message"]
    assert "sklearn.tree._tree.Tree" in message
    assert "trust=true" in message and "--trust" in message
    r = post(servers, "open", "tree", data, trust="true")  # scikit-learn's own class
    assert r.status_code == 201, r.text
    assert r.json()["trusted_types"] == ["sklearn.tree._tree.Tree"]
    assert r.json()["trusted_by"] == "anonymous"


def test_a_version_trusting_a_dangerous_type_never_loads(tmp_path: Path) -> None:
    """A version registered before the rule, with os.system recorded as trusted."""
    marker = tmp_path / "pwned"
    data = evil_skops("os", "system", f"id > {marker}")
    with pytest.raises(UntrustedArtifactError, match=r"os\.system"):
        get_format("skops").load(data, trusted_types=["os.system"])
    assert not marker.exists()


#: numpy/scipy/pandas callables that read or write files; the reviewer's repro passed
#: ``numpy.savez`` because the deny list matched "numpy.save" as a prefix of dotted names
FILE_HELPERS = [("numpy", "savez"), ("numpy", "savez_compressed"), ("numpy.rec", "fromfile"),
                ("numpy.ma.mrecords", "fromtextfile"), ("scipy.sparse", "save_npz"),
                ("scipy.sparse", "load_npz"), ("numpy", "savetxt"), ("numpy", "genfromtxt"),
                ("pandas", "read_csv"), ("pandas.core.frame.DataFrame", "to_pickle")]


@pytest.mark.parametrize("target", FILE_HELPERS, ids=".".join)
def test_file_helpers_are_refused_trusted_on_a_keyed_server(
        servers: dict[str, Any], target: tuple[str, str], tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    r = post(servers, "keyed", "files", evil_skops(*target, str(marker)), trust="true")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["error"] == "invalid_artifact" and detail["field"] == "trusted_types"
    assert f"{target[0]}.{target[1]}" in detail["message"]
    assert list(tmp_path.iterdir()) == []  # no PWNED, PWNED.npz, ...
