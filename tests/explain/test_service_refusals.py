"""Issue 15's bad input, through the explanation service on a real SQLite store and
registry: a pickle or joblib version is refused without being unpickled, an ONNX graph
without a reference (nothing to explain against) is refused naming why, each a DataError
with ``field`` (the API's 422); the same ONNX graph with a reference is explained as a
black box; the same request twice is computed once."""

from __future__ import annotations

import pickle
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from aiwarden.errors import DataError
from bench.explain_schedule import FEATURES, frame

ROW = {"amount": 4.0, "age": 40.0, "noise": 0.1}
_MARK: list[Path] = []  # where unpickling the model leaves its mark


def _unpickled(model: Any) -> Any:
    """What the pickle below calls when it is loaded: marks that it ran."""
    if _MARK:
        _MARK[0].write_text("unpickled")
    return model


class _Marked:
    """A model whose unpickling writes a file: proof of whether a load happened."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return _unpickled, (self.model,)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from sklearn.ensemble import GradientBoostingClassifier

    from aiwarden.monitoring.service import Monitor
    from aiwarden.registry.service import Registry
    from aiwarden.store.database import Database

    tmp = tmp_path_factory.mktemp("refusals")
    db = Database(f"sqlite:///{tmp}/t.db")
    db.migrate()
    train = frame(600, 0)
    model = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(
        train[FEATURES], train.y)
    yield {"mon": Monitor(db), "reg": Registry(db, f"file://{tmp}/artifacts"),
           "model": model, "tmp": tmp}
    db.dispose()


def _reference(mon: Any, model: Any, name: str) -> None:
    df = frame(300, 1)
    df["score"] = model.predict_proba(df[FEATURES])[:, 1]
    df["pred"] = (df.score > 0.5).astype(int)
    mon.upload_reference(name, "1", pa.Table.from_pandas(df, preserve_index=False),
                         {"target": "y", "prediction": "pred", "scores": "score"})


def _svc(setup: dict[str, Any]) -> Any:
    from aiwarden.monitoring.explanations import Explanations

    return Explanations(setup["mon"], lambda: setup["reg"])


@pytest.mark.parametrize("fmt", ["pickle", "joblib"])
def test_a_pickled_version_is_refused_without_unpickling_it(setup, fmt) -> None:
    import io

    import joblib

    mark = setup["tmp"] / f"{fmt}.mark"
    _MARK[:] = [mark]
    if fmt == "pickle":
        data = pickle.dumps(_Marked(setup["model"]))
    else:
        sink = io.BytesIO()
        joblib.dump(_Marked(setup["model"]), sink)
        data = sink.getvalue()
    name = f"pk-{fmt}"
    setup["reg"].register(name, data, format=fmt, admin=True, trust=True)
    assert mark.exists()  # the registry's trial load at registration ran it
    mark.unlink()
    _reference(setup["mon"], setup["model"], name)
    with pytest.raises(DataError, match=f"a {fmt} artifact; explanations load pickle-free "
                                        r"artifacts only \(register it as skops or ONNX\)"
                       ) as err:
        _svc(setup).explain(name, rows=[ROW], version="1")
    assert err.value.field == "version"
    assert not mark.exists()  # refused before any load: nothing was unpickled


def test_an_onnx_graph_without_a_reference_is_refused_then_explained_with_one(setup) -> None:
    pytest.importorskip("skl2onnx")
    from skl2onnx import to_onnx

    model = setup["model"]
    x = frame(10, 3)[FEATURES].to_numpy(np.float32)
    graph = to_onnx(model, x[:1], options={id(model): {"zipmap": False}}).SerializeToString()
    setup["reg"].register("graph", graph, format="onnx", metadata={"inputs": FEATURES})
    svc = _svc(setup)
    with pytest.raises(DataError, match="has no reference sample: explanations are measured "
                                        "against a background drawn from it") as err:
        svc.explain("graph", rows=[ROW], version="1")
    assert err.value.field == "version"
    _reference(setup["mon"], model, "graph")
    got = svc.explain("graph", rows=[ROW], version="1",
                      options={"background_size": 20, "max_evals": 50})
    used = got["versions"]["1"]
    assert used["method"] == "permutation" and used["output_space"] == "probability"
    e = got["explanations"][0]
    assert abs(e["residual"]) < 1e-6  # the graph's own probability, added up
    row = pd.DataFrame([ROW])[FEATURES]
    assert e["output"] == pytest.approx(model.predict_proba(row)[0, 1], abs=1e-5)


def test_the_same_request_twice_is_computed_once(setup, monkeypatch) -> None:
    import skops.io as sio

    import aiwarden.explain as engine

    setup["reg"].register("cached", sio.dumps(setup["model"]), format="skops", trust=True)
    _reference(setup["mon"], setup["model"], "cached")
    calls: list[float] = []
    real = engine.explain_rows

    def counted(*args: Any, **kw: Any) -> Any:  # the real engine, counted
        calls.append(time.time())
        return real(*args, **kw)

    monkeypatch.setattr(engine, "explain_rows", counted)
    svc = _svc(setup)
    first = svc.explain("cached", rows=[ROW, ROW | {"amount": 9.0}], version="1")
    again = svc.explain("cached", rows=[ROW, ROW | {"amount": 9.0}], version="1")
    assert len(calls) == 1 and again == first
    other = svc.explain("cached", rows=[ROW], version="1", options={"seed": 4})
    assert len(calls) == 2 and other["versions"]["1"]["seed"] == 4  # other options: new
