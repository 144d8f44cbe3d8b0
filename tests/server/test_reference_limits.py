"""Reference uploads are bounded: wider than ``max_columns`` answers 413 naming the limit and
the setting, and a client that hangs up stops the fit (nothing is stored, a retry works)."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiwarden.errors import Cancelled
from tests.server.live import ThreadServer, settings_for

LIMIT = 3000
MULTIVARIATE_LIMIT = 100
PARQUET = "application/vnd.apache.parquet"


@pytest.fixture(scope="module")
def wide_server(db_url: str, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[ThreadServer]:
    with ThreadServer(settings_for(db_url, tmp_path_factory.mktemp("data"),
                                   max_columns=LIMIT,
                                   multivariate_max_columns=MULTIVARIATE_LIMIT)) as srv:
        yield srv


@pytest.fixture
def api(wide_server: ThreadServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=wide_server.url + "/api/v1", timeout=120) as c:
        yield c


def _parquet(columns: int, rows: int = 200) -> bytes:
    rng = np.random.default_rng(columns)
    df = pd.DataFrame(rng.normal(size=(rows, columns - 1)),
                      columns=[f"f{i}" for i in range(columns - 1)])
    df["prediction"] = rng.integers(0, 2, rows)
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf)
    return buf.getvalue()


def _model(api: httpx.Client, name: str) -> None:
    assert api.post("/models", json={"name": name, "task": "binary"}).status_code == 201


def _put(api: httpx.Client, name: str, version: str, body: bytes) -> httpx.Response:
    return api.put(f"/models/{name}/versions/{version}/reference",
                   params={"prediction": "prediction"}, content=body,
                   headers={"content-type": PARQUET})


def test_a_reference_wider_than_the_limit_is_refused_naming_limit_and_setting(
        api: httpx.Client) -> None:
    _model(api, "too-wide")
    r = _put(api, "too-wide", "1", _parquet(LIMIT + 1, rows=5))
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert detail["error"] == "too_many_columns"
    assert detail["field"] == "columns"
    assert f"{LIMIT + 1} columns" in detail["message"]
    assert f"at most {LIMIT}" in detail["message"]
    assert "AIWARDEN_MAX_COLUMNS" in detail["message"]
    assert api.get("/models/too-wide/versions/1").status_code == 404  # nothing stored
    ok = _put(api, "too-wide", "1", _parquet(40, rows=50))
    assert ok.status_code == 201, ok.text
    assert ok.json()["columns"] == 40


@pytest.mark.parametrize("media", ["application/json", "text/csv",
                                   "application/vnd.apache.arrow.stream"])
def test_every_format_is_bounded_before_it_is_decoded(api: httpx.Client, media: str) -> None:
    df = pd.DataFrame(np.ones((2, LIMIT + 5)), columns=[f"c{i}" for i in range(LIMIT + 5)])
    if media == "application/json":
        body = df.to_json(orient="records").encode()
    elif media == "text/csv":
        body = df.to_csv(index=False).encode()
    else:
        table = pa.Table.from_pandas(df, preserve_index=False)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        body = sink.getvalue().to_pybytes()
    _model(api, f"wide-{media.rsplit('/', 1)[1].replace('.', '-')}")
    r = api.put(f"/models/wide-{media.rsplit('/', 1)[1].replace('.', '-')}/versions/1/reference",
                content=body, headers={"content-type": media})
    assert r.status_code == 413, r.text
    assert f"{LIMIT + 5} columns" in r.json()["detail"]["message"]


def test_a_version_schema_wider_than_the_limit_is_refused(api: httpx.Client) -> None:
    _model(api, "wide-schema")
    columns = [{"name": f"f{i}", "dtype": "numerical"} for i in range(LIMIT + 1)]
    r = api.post("/models/wide-schema/versions",
                 json={"version": "1", "schema": {"columns": columns}})
    assert r.status_code == 413, r.text
    detail = r.json()["detail"]
    assert detail["error"] == "too_many_columns"
    assert detail["field"] == "schema.columns"
    assert f"The schema has {LIMIT + 1} columns" in detail["message"]
    assert f"at most {LIMIT}" in detail["message"]
    assert "AIWARDEN_MAX_COLUMNS" in detail["message"]
    assert api.get("/models/wide-schema/versions/1").status_code == 404  # nothing stored
    ok = api.post("/models/wide-schema/versions",
                  json={"version": "1", "schema": {"columns": columns[:LIMIT]}})
    assert ok.status_code == 201, ok.text
    assert len(ok.json()["schema"]["columns"]) == LIMIT


class HeldWork:
    """``app.state.wrap_long_work`` for one test: holds the fit until the server has seen
    the client leave, so the hang-up provably lands while the work runs, then records
    how the work ended."""

    def __init__(self) -> None:
        self.started, self.finished = threading.Event(), threading.Event()
        self.saw_stop, self.outcome = False, ""

    def __call__(self, work: Callable[[Callable[[], bool]], Any]
                 ) -> Callable[[Callable[[], bool]], Any]:
        def held(should_stop: Callable[[], bool]) -> Any:
            self.started.set()
            deadline = time.monotonic() + 60
            while not should_stop() and time.monotonic() < deadline:
                time.sleep(0.01)
            self.saw_stop = should_stop()
            try:
                out = work(should_stop)
            except Cancelled:
                self.outcome = "cancelled"
                raise
            except BaseException as e:
                self.outcome = type(e).__name__
                raise
            else:
                self.outcome = "completed"
                return out
            finally:
                self.finished.set()
        return held


def test_a_client_that_hangs_up_stops_the_fit(api: httpx.Client,
                                              wide_server: ThreadServer) -> None:
    _model(api, "hangs-up")
    body = _parquet(40)  # the hook holds the fit: no width is needed to make it last
    full = _put(api, "hangs-up", "full", body)
    assert full.status_code == 201, full.text

    app = wide_server.server.config.app
    held = app.state.wrap_long_work = HeldWork()
    try:
        port = int(wide_server.url.rsplit(":", 1)[1])
        head = (f"PUT /api/v1/models/hangs-up/versions/gone/reference?prediction=prediction "
                f"HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: {PARQUET}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head + body)
            assert held.started.wait(60), "the fit never started"
        # the socket is closed while the fit is held on its worker thread
        assert held.finished.wait(60), "the fit still holds its worker thread"
    finally:
        del app.state.wrap_long_work
    assert held.saw_stop and held.outcome == "cancelled", (held.saw_stop, held.outcome)
    assert api.get("/models/hangs-up/versions/gone").status_code == 404  # nothing stored
    again = _put(api, "hangs-up", "gone", body)  # not 409: nothing was stored
    assert again.status_code == 201, again.text
    assert again.json()["fingerprint"] == full.json()["fingerprint"]


def _upload_peak(monitor: Any, name: str, columns: int) -> int:
    """Peak bytes allocated while a 1,000-row reference of ``columns`` is stored."""
    import tracemalloc

    table = pq.read_table(io.BytesIO(_parquet(columns, rows=1000)))
    monitor.create_model(name, None, None)
    tracemalloc.start()
    try:
        monitor.upload_reference(name, "1", table, {"prediction": "prediction"})
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_reference_upload_memory_grows_linearly_with_columns(monitor: Any) -> None:
    narrow = _upload_peak(monitor, "mem-50", 50)
    wide = _upload_peak(monitor, "mem-200", 200)
    # 4x the columns: linear work allocates about 4x (fixed costs make it less); quadratic 16x
    assert wide < 6 * narrow, (narrow, wide)


def test_the_multivariate_fit_stops_when_asked_and_stores_nothing(monitor: Any) -> None:
    """The hang-up check reaches inside the PCA fit, not only Reference.fit: this should_stop
    answers True only when asked from the multivariate fit."""
    import sys

    from aiwarden.monitoring.multivariate_window import state_key
    from aiwarden.store import kv
    from aiwarden.store.models_repo import NotFound

    asked: list[str] = []

    def inside_pca() -> bool:
        name = sys._getframe(1).f_code.co_filename
        asked.append(name)
        return name.endswith("_multivariate_pca.py")

    table = pq.read_table(io.BytesIO(_parquet(60, rows=500)))
    monitor.create_model("mv-stop", None, None)
    with pytest.raises(Cancelled, match=r"PCAReconstructionDrift\.fit stopped"):
        monitor.upload_reference("mv-stop", "1", table, {"prediction": "prediction"},
                                 should_stop=inside_pca)
    assert any(a.endswith("reference.py") for a in asked)  # Reference.fit ran to its end
    with pytest.raises(NotFound):  # nothing stored
        monitor.version("mv-stop", "1")
    done = monitor.upload_reference("mv-stop", "1", table, {"prediction": "prediction"})
    with monitor.db.read() as conn:
        state = kv.get(conn, state_key(done["fingerprint"]))
    assert len(state["pca"]["encoder"]["features"]) == 59


def test_a_reference_wider_than_the_multivariate_cap_says_why(api: httpx.Client) -> None:
    _model(api, "mv-wide")
    width = MULTIVARIATE_LIMIT + 50
    assert _put(api, "mv-wide", "1", _parquet(width, rows=300)).status_code == 201
    rng = np.random.default_rng(1)
    events = [{"prediction_id": f"p{i}", "timestamp": time.time() - 600 + i,
               "features": {f"f{j}": float(v) for j, v in enumerate(rng.normal(size=width - 1))},
               "prediction": 1} for i in range(120)]
    r = api.post("/models/mv-wide/predictions", json=events)
    assert r.json()["accepted"] == 120, r.text
    (point,) = api.get("/models/mv-wide/metrics", params={
        "metric": "multivariate_drift", "start": "-1h"}).json()["points"]
    assert point["value"] is None
    assert point["reason"] == (
        f"too many columns for the multivariate fit ({width - 1} feature columns > "
        f"{MULTIVARIATE_LIMIT}); set AIWARDEN_MULTIVARIATE_MAX_COLUMNS to fit wider references")


def test_the_bench_script_exists_and_covers_the_widths() -> None:
    text = (Path(__file__).parents[2] / "bench" / "reference_columns.py").read_text()
    assert "[1000, 2000, 4000, 8000]" in text
