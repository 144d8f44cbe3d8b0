"""Hostile artifacts through a real keyed server (review 2026-12-06, findings 1, 2 and 4).

An admin key registers each artifact exactly as the reviewer did; on SQLite and PostgreSQL.
1. ONNX tensors with external data anywhere in the model (a Constant's ``sparse_value`` read
   the server's files relative to its working directory and answered them via /predict).
2. skops types outside the ML allow-list (``logging.config.dictConfig`` ran ``os.system``).
4. skops zip bombs: members whose declared size is huge are refused before anything is read.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from aiwarden.registry import ArtifactFormatError
from aiwarden.registry.formats import get_format
from aiwarden.store import keys
from aiwarden.store.database import Database
from tests.server.live import ThreadServer, settings_for

onnx = pytest.importorskip("onnx")
sio = pytest.importorskip("skops.io")
from onnx import TensorProto, helper  # noqa: E402


@pytest.fixture(scope="module")
def keyed(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict]]:
    db = Database(db_url)
    db.migrate()
    with db.write() as conn:
        secret = keys.create_key(conn, "ops-admin", ["admin"])[0]
    db.dispose()
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("safety"))) as srv:
        yield srv.url, {"Authorization": f"Bearer {secret}"}


def register(keyed: tuple[str, dict], name: str, data: bytes, **params: str) -> httpx.Response:
    url, headers = keyed
    return httpx.post(f"{url}/api/v1/registry/models/{name}/versions", params=params,
                      content=data, timeout=120,
                      headers={**headers, "content-type": "application/octet-stream"})


# ---------------------------------------------------------------------------- 1. ONNX
def _external(tensor: Any, location: str, nbytes: int, *, flag: bool = True) -> Any:
    if flag:
        tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(nbytes))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return tensor


def _ints(name: str, k: int) -> Any:
    t = TensorProto()
    t.name, t.data_type = name, TensorProto.INT32
    t.dims.extend([k])
    return t


def _model(nodes: list[Any], out_type: int, out_shape: list[Any], **kw: Any) -> bytes:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", out_type, out_shape)], **kw.pop("graph", {}))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("local", 1)], **kw)
    model.ir_version = 8
    return model.SerializeToString()


def _victim() -> tuple[str, int]:
    """A file in the server's working directory (the test process's) of >= 16 bytes."""
    for p in sorted(Path.cwd().iterdir()):
        if p.is_file() and p.stat().st_size >= 16:
            return p.name, 16
    pytest.skip("no file to aim at in the working directory")


def sparse_values(path: str, n: int) -> bytes:  # the reviewer's reproducer
    k = n // 4
    sp = helper.make_sparse_tensor(_external(_ints("vals", k), path, n),
                                   helper.make_tensor("idx", TensorProto.INT64, [k],
                                                      list(range(k))), [1, k])
    return _model([helper.make_node("Constant", [], ["c"], sparse_value=sp),
                   helper.make_node("Identity", ["c"], ["y"])], TensorProto.INT32, [1, k])


def sparse_indices(path: str, n: int) -> bytes:
    idx = _ints("idx", 2)
    idx.data_type = TensorProto.INT64
    sp = helper.make_sparse_tensor(helper.make_tensor("vals", TensorProto.INT32, [2], [1, 2]),
                                   _external(idx, path, n), [1, 2])
    return _model([helper.make_node("Constant", [], ["c"], sparse_value=sp),
                   helper.make_node("Identity", ["c"], ["y"])], TensorProto.INT32, [1, 2])


def constant_value(path: str, n: int) -> bytes:
    return _model([helper.make_node("Constant", [], ["y"], value=_external(_ints("v", n // 4),
                                                                          path, n))],
                  TensorProto.INT32, [n // 4])


def entries_without_flag(path: str, n: int) -> bytes:
    init = _external(_ints("w", n // 4), path, n, flag=False)
    return _model([helper.make_node("Identity", ["w"], ["y"])], TensorProto.INT32, [n // 4],
                  graph={"initializer": [init]})


def if_subgraph(path: str, n: int) -> bytes:
    def branch(name: str) -> Any:
        return helper.make_graph(
            [helper.make_node("Constant", [], [f"{name}_o"],
                              value=_external(_ints(f"{name}_t", n // 4), path, n))],
            name, [], [helper.make_tensor_value_info(f"{name}_o", TensorProto.INT32,
                                                     [n // 4])])
    cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
    return _model([helper.make_node("If", ["cond"], ["y"], then_branch=branch("a"),
                                    else_branch=branch("b"))], TensorProto.INT32, [n // 4],
                  graph={"initializer": [cond]})


def function_body(path: str, n: int) -> bytes:
    fn = helper.make_function("local", "Leak", [], ["o"], [helper.make_node(
        "Constant", [], ["o"], value=_external(_ints("t", n // 4), path, n))],
        [helper.make_opsetid("", 13)])
    return _model([helper.make_node("Leak", [], ["y"], domain="local")], TensorProto.INT32,
                  [n // 4], functions=[fn])


ONNX_LEAKS: dict[str, Callable[[str, int], bytes]] = {
    "sparse_value": sparse_values, "sparse_indices": sparse_indices,
    "constant_value": constant_value, "entries_without_flag": entries_without_flag,
    "if_subgraph": if_subgraph, "function_body": function_body}


@pytest.mark.parametrize("where", sorted(ONNX_LEAKS))
def test_onnx_external_data_anywhere_is_refused(keyed: tuple[str, dict], where: str) -> None:
    path, n = _victim()
    r = register(keyed, f"onnx-{where.replace('_', '-')}", ONNX_LEAKS[where](path, n),
                 format="onnx", version="1")
    assert r.status_code == 422, r.text
    assert "refers to external data" in r.json()["detail"]["message"], r.text


def test_onnx_loading_checks_again(keyed: tuple[str, dict]) -> None:
    """A version stored before the check existed must not load either (every load checks)."""
    path, n = _victim()
    with pytest.raises(ArtifactFormatError, match="refers to external data"):
        get_format("onnx").load(sparse_values(path, n))


def test_a_self_contained_onnx_model_still_predicts(keyed: tuple[str, dict]) -> None:
    url, headers = keyed
    sp = helper.make_sparse_tensor(helper.make_tensor("v", TensorProto.INT32, [2], [7, 9]),
                                   helper.make_tensor("i", TensorProto.INT64, [2], [0, 1]),
                                   [1, 2])
    data = _model([helper.make_node("Constant", [], ["c"], sparse_value=sp),
                   helper.make_node("Identity", ["c"], ["y"])], TensorProto.INT32, [1, 2])
    assert register(keyed, "onnx-inline", data, format="onnx", version="1").status_code == 201
    r = httpx.put(f"{url}/api/v1/registry/models/onnx-inline/aliases/champion",
                  json={"version": "1", "reason": "test"}, headers=headers)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{url}/api/v1/models/onnx-inline/predict", json={"features": {"x": 1.0}},
                   headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    assert np.ravel(r.json()["prediction"]).tolist() == [7, 9]


# ---------------------------------------------------------------------------- 2. skops
def reduce_skops(module: str, name: str, argument: Any) -> bytes:
    """The reviewer's reproducer: a top-level ConstructorFromReduceNode calling
    ``module.name(argument)`` with ``argument`` rebuilt by skops from its own schema."""
    z = zipfile.ZipFile(io.BytesIO(sio.dumps((argument,))))
    schema = json.loads(z.read("schema.json"))
    top = {k: schema.pop(k) for k in ("protocol", "_skops_version") if k in schema}
    node = {"__class__": name, "__module__": module,
            "__loader__": "ConstructorFromReduceNode", "content": schema, **top}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as w:
        for member in z.namelist():
            w.writestr(member, json.dumps(node) if member == "schema.json" else z.read(member))
    return out.getvalue()


def _escapes(marker: Path) -> dict[str, bytes]:
    shell = f"id > {marker}"
    return {
        "logging.config.dictConfig": reduce_skops("logging.config", "dictConfig", {
            "version": 1, "handlers": {"h": {"()": "os.system", "command": shell}}}),
        "pandas.read_pickle": reduce_skops("pandas", "read_pickle", str(marker)),
        "numpy.lib.format.open_memmap": reduce_skops("numpy.lib.format", "open_memmap",
                                                     str(marker)),
        "scipy.io.loadmat": reduce_skops("scipy.io", "loadmat", str(marker)),
        "sklearn.datasets.load_svmlight_file": reduce_skops(
            "sklearn.datasets", "load_svmlight_file", str(marker)),
        "pydoc.locate": reduce_skops("pydoc", "locate", "os.system"),
    }


@pytest.mark.parametrize("target", sorted(_escapes(Path("x"))))
def test_skops_types_off_the_allow_list_are_refused_even_trusted(
        keyed: tuple[str, dict], target: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "PWNED"
    # an operator's own-module list cannot re-admit the standard library either
    monkeypatch.setenv("AIWARDEN_TRUSTED_MODULES", "logging,pydoc,os")
    r = register(keyed, "skrce", _escapes(marker)[target], filename="rce.skops", trust="true")
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail["field"] == "trusted_types" and target in detail["message"], detail
    assert not marker.exists()


def test_an_operators_own_module_is_trusted_only_when_named(
        keyed: tuple[str, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.registry.models import custom_pipeline

    data = sio.dumps(custom_pipeline())
    monkeypatch.delenv("AIWARDEN_TRUSTED_MODULES", raising=False)
    r = register(keyed, "own", data, filename="own.skops", trust="true")
    assert r.status_code == 422, r.text
    assert "tests.registry.models.Doubler" in r.json()["detail"]["message"]
    monkeypatch.setenv("AIWARDEN_TRUSTED_MODULES", "tests.registry")
    r = register(keyed, "own", data, filename="own.skops", trust="true")
    assert r.status_code == 201, r.text
    assert r.json()["trusted_types"] == ["tests.registry.models.Doubler"]


def test_a_recorded_trust_outside_the_allow_list_never_loads(tmp_path: Path) -> None:
    """A version registered before deny-by-default, trusting logging.config.dictConfig."""
    from aiwarden.registry import UntrustedArtifactError

    marker = tmp_path / "PWNED"
    data = _escapes(marker)["logging.config.dictConfig"]
    with pytest.raises(UntrustedArtifactError, match=r"logging\.config\.dictConfig"):
        get_format("skops").load(data, trusted_types=["logging.config.dictConfig"])
    assert not marker.exists()


# ---------------------------------------------------------------------------- 4. zip bombs
def zip_bomb(member: str, size: int) -> bytes:
    """A skops file whose ``member`` inflates to ``size`` bytes of one repeated byte."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        if member != "schema.json":  # a valid schema beside the bomb
            z.writestr("schema.json", zipfile.ZipFile(io.BytesIO(sio.dumps([1])))
                       .read("schema.json"))
        with z.open(member, "w", force_zip64=True) as f:
            chunk = b" " * 2**20
            for _ in range(size // len(chunk)):
                f.write(chunk)
    return out.getvalue()


@pytest.mark.parametrize(("member", "size"), [("schema.json", 40 * 2**20),
                                              ("big.npy", 24 * 2**20)])
def test_a_skops_zip_bomb_is_refused_naming_the_member(
        keyed: tuple[str, dict], member: str, size: int) -> None:
    data = zip_bomb(member, size)
    assert len(data) < size / 500  # the upload is small; what it declares is not
    for trust in ("false", "true"):
        r = register(keyed, "bomb", data, filename="bomb.skops", trust=trust)
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail["field"] == "artifact" and repr(member) in detail["message"], detail
        assert f"{size:,}" in detail["message"], detail
    with pytest.raises(ArtifactFormatError, match=member):  # a stored one never loads
        get_format("skops").load(data, trusted_types=[])


def test_ml_package_names_must_resolve_to_the_packages_own_objects() -> None:
    """A stdlib callable an ML module imported is not an ML type: the name is resolved and
    the object's own module judged (no server needed: the rule behind the 422 above)."""
    from aiwarden.registry._skops_types import refused

    ok = ["sklearn.tree._tree.Tree", "sklearn.utils.validation.check_array", "numpy.log1p",
          "numpy.random.mtrand.RandomState", "functools.partial", "collections.OrderedDict",
          "sklearn.base.defaultdict"]  # collections.defaultdict, a data type
    bad = ["sklearn.utils.validation.reduce", "sklearn.pipeline.deepcopy",
           "sklearn.utils.validation.signature", "numpy.no_such_name", "sklearn.utils",
           "numpy.load", "pandas.read_pickle", "pandas.core.computation.eval.eval"]
    assert refused(ok + bad) == sorted(bad)
