"""The ``aiwarden`` command against a real ``aiwarden server`` child process (SQLite).

Everything goes through the CLI in child processes, as a user would type it; the HTTP
API is then read directly to check that what the CLI said it sent really landed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score

from tests.server.conftest import scored_frame
from tests.server.live import ProcessServer, free_port

HOUR = 3600


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``aiwarden ARGS`` through its installed entry point, without AIWARDEN_* settings."""
    exe = Path(sys.executable).with_name("aiwarden")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "aiwarden.cli"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIWARDEN_")}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def ok(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 0, f"exit {res.returncode}: {res.stderr}"
    assert res.stderr == "", res.stderr
    return res.stdout


def one_line_error(res: subprocess.CompletedProcess[str], command: str, code: int = 2) -> str:
    """The failure contract: its exit code (2 usage, 3 not found, 4 connection; docs/cli.md),
    one line on stderr, no traceback."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"aiwarden {command}: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessServer]:
    tmp = tmp_path_factory.mktemp("cli-server")
    srv = ProcessServer(f"sqlite:///{tmp / 'cli.db'}", tmp).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Reference, prediction and label files in Parquet and CSV (and what they hold)."""
    d = tmp_path_factory.mktemp("cli-files")
    t0 = (time.time() // HOUR - 2) * HOUR
    ref = scored_frame(1500, seed=0)
    ref.to_parquet(d / "ref.parquet", index=False)
    ref.to_csv(d / "ref.csv", index=False)
    cur = scored_frame(400, seed=5)
    flat = pd.DataFrame({"prediction_id": [f"f{i}" for i in range(400)],
                         "timestamp": t0 + 3.0 * pd.RangeIndex(400), "latency_ms": 7.5,
                         "x": cur.x, "c": cur.c, "score": cur.score, "pred": cur.pred})
    flat.to_parquet(d / "preds.parquet", index=False)
    csv = flat.assign(timestamp=pd.to_datetime(flat.timestamp, unit="s", utc=True)
                      .dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    csv.to_csv(d / "preds.csv", index=False)
    labels = pd.DataFrame({"prediction_id": flat.prediction_id[:250], "label": cur.y[:250]})
    labels.to_parquet(d / "labels.parquet", index=False)
    labels.to_csv(d / "labels.csv", index=False)
    scored_frame(800, seed=7, shift=1.5).to_csv(d / "shifted.csv", index=False)
    return {"t0": t0, "cur": cur, **{p.name: p for p in d.iterdir()}}


def _api(server: ProcessServer, path: str, **params: object) -> object:
    res = httpx.get(f"{server.url}/api/v1{path}", params=params, timeout=60)  # type: ignore[arg-type]
    assert res.status_code == 200, res.text
    return res.json()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_models_reference_and_logging_land(server: ProcessServer, files: dict[str, Any],
                                           fmt: str) -> None:
    name = f"cli-{fmt}-model"
    url = ("--url", server.url)
    assert ok(cli("models", "create", name, "--task", "binary", "--description",
                       f"from {fmt}", *url)).strip() == f"created model {name}"
    out = ok(cli("models", "reference", name, "v1", str(files[f"ref.{fmt}"]), "--target",
                      "y", "--prediction", "pred", "--scores", "score", *url))
    assert out.startswith(f"reference for {name} v1: 1500 rows, 5 columns, fingerprint ")
    version = _api(server, f"/models/{name}/versions/v1")
    roles = {c["name"]: c["role"] for c in version["schema"]["columns"]}  # type: ignore[index]
    assert roles == {"x": "feature", "c": "feature", "score": "score", "pred": "prediction",
                     "y": "target"}

    out = ok(cli("log", "predictions", name, str(files[f"preds.{fmt}"]), *url))
    assert out.strip() == (f"predictions from {files[f'preds.{fmt}']}: received 400, "
                           "accepted 400, duplicates 0, quarantined 0, labels_joined 0")
    out = ok(cli("log", "labels", name, str(files[f"labels.{fmt}"]), *url))
    assert "received 250, joined 250, pending 0, duplicates 0" in out

    t0, cur = files["t0"], files["cur"]
    span = {"start": t0, "end": t0 + HOUR}
    volume = _api(server, f"/models/{name}/metrics", metric="volume", **span)
    assert volume["points"][0]["value"] == {"rows": 400, "quarantined": 0,  # type: ignore[index]
                                            "labels": 250}
    perf = _api(server, f"/models/{name}/metrics", metric="performance", **span)
    value = perf["points"][0]["value"]  # type: ignore[index]
    assert value["labels"] == 250
    assert value["metrics"]["accuracy"] == pytest.approx(
        accuracy_score(cur.y[:250], cur.pred[:250]), abs=1e-12)
    latency = _api(server, f"/models/{name}/metrics", metric="latency", **span)
    assert latency["points"][0]["value"]["count"] == 400  # type: ignore[index]

    again = ok(cli("log", "predictions", name, str(files[f"preds.{fmt}"]), *url))
    assert "accepted 0, duplicates 400" in again
    shown = json.loads(ok(cli("models", "show", name, *url)))
    assert shown["name"] == name and shown["task"] == "binary"
    assert shown["description"] == f"from {fmt}"
    assert [v["version"] for v in shown["versions"]] == ["v1"]
    assert (shown["predictions"], shown["labels_pending"], shown["quarantined"]) == (400, 0, 0)


def test_models_list(server: ProcessServer) -> None:
    for name in ("cli-list-a", "cli-list-b"):
        ok(cli("models", "create", name, "--url", server.url))
    lines = ok(cli("models", "list", "--url", server.url)).splitlines()
    assert lines[0].split() == ["name", "task", "description"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert {"cli-list-a", "cli-list-b"} <= set(rows)
    assert rows["cli-list-a"] == ["cli-list-a", "-"]


def test_errors_are_one_line_with_their_exit_code(server: ProcessServer, files: dict[str, Any],
                                         tmp_path: Path) -> None:
    url = ("--url", server.url)
    line = one_line_error(cli("log", "predictions", "no-such-model",
                                   str(files["preds.parquet"]), *url), "log", 3)
    assert "404" in line and "no-such-model" in line
    line = one_line_error(cli("log", "labels", "no-such-model", str(files["labels.csv"]),
                                   *url), "log", 3)
    assert "404" in line
    line = one_line_error(cli("models", "show", "no-such-model", *url), "models show", 3)
    assert "404" in line and "no-such-model" in line
    ok(cli("models", "create", "cli-twice", *url))
    line = one_line_error(cli("models", "create", "cli-twice", *url), "models create")
    assert "409" in line
    line = one_line_error(cli("models", "reference", "cli-twice", "v1",
                                   str(files["ref.csv"]), "--target", "nope", *url),
                          "models reference")
    assert "nope" in line
    missing = tmp_path / "missing.parquet"
    line = one_line_error(cli("log", "predictions", "cli-twice", str(missing), *url), "log")
    assert str(missing) in line
    down = f"http://127.0.0.1:{free_port()}"
    line = one_line_error(cli("models", "list", "--url", down), "models list", 4)
    assert "connection_error" in line


def test_a_bad_egress_allow_entry_stops_the_server_in_one_line(tmp_path: Path) -> None:
    line = one_line_error(cli("server", "--port", str(free_port()), "--data-dir",
                              str(tmp_path), "--egress-allow", "not a//cidr/99"), "server")
    assert "bad setting" in line and "egress_allow" in line


def test_report_offline(files: dict[str, Any], tmp_path: Path) -> None:
    out_dir = tmp_path / "report"
    out = ok(cli("report", str(files["ref.parquet"]), str(files["shifted.csv"]),
                      "--out", str(out_dir), "--target", "y", "--prediction", "pred",
                      "--scores", "score"))
    assert sorted(p.name for p in out_dir.iterdir()) == ["report.html", "report.json"]
    report = json.loads((out_dir / "report.json").read_text())
    assert report["datasets"]["reference"]["rows"] == 1500
    assert report["datasets"]["current"]["rows"] == 800
    assert "x" in report["verdict"]["drifted_columns"]
    assert "c" not in report["verdict"]["drifted_columns"]
    html = (out_dir / "report.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "http://" not in html.replace("http://www.w3.org", "")  # self-contained
    assert f"wrote {out_dir / 'report.json'}" in out and "drifted columns: " in out

    same = ok(cli("report", str(files["ref.parquet"]), str(files["ref.csv"]), "--out",
                       str(tmp_path / "same"), "--target", "y"))
    assert "drifted columns: none" in same
    line = one_line_error(cli("report", str(files["ref.csv"]), str(files["shifted.csv"]),
                                   "--out", str(tmp_path / "bad"), "--target", "nope"),
                          "report")
    assert "nope" in line


def test_server_help_lists_its_settings() -> None:
    out = ok(cli("server", "--help"))
    for flag in ("--host", "--port", "--data-dir", "--database-url"):
        assert flag in out


def test_a_malformed_json_lines_row_is_named_by_its_line(server: ProcessServer,
                                                         tmp_path: Path) -> None:
    """Review: line 2 malformed was reported as "line 1 column 2" (each line is decoded
    alone); the file's line is named, as ``audit text`` names it."""
    url = ("--url", server.url)
    good = json.dumps({"prediction_id": "p1", "features": {"x": 1.0}})
    rows = tmp_path / "m2.jsonl"
    rows.write_text(f'{good}\n{{"prediction_id": oops}}\n\n{good}\n')
    for kind in ("predictions", "llm"):  # read before any request: exit 2, not the 404's 3
        line = one_line_error(cli("log", kind, "no-such-model", str(rows), *url), "log")
        assert "as json: line 2: Expecting value: line 1 column 19" in line, line
    audit = one_line_error(cli("audit", "text", str(rows), "--column", "prediction_id"),
                           "audit text")
    assert audit.split("error: ")[1] == line.split("error: ")[1]
    later = tmp_path / "m4.jsonl"  # a blank line counts: line 4 of the file
    later.write_text(f"{good}\n{good}\n\nnot json\n")
    line = one_line_error(cli("log", "predictions", "no-such-model", str(later), *url), "log")
    assert "line 4: Expecting value" in line, line
    # one pretty-printed document: the decoder's own line is already the file's
    pretty = tmp_path / "pretty.json"
    pretty.write_text('[\n  {"prediction_id": "p1"},\n  {"prediction_id": oops}\n]\n')
    line = one_line_error(cli("log", "predictions", "no-such-model", str(pretty), *url), "log")
    assert "Expecting value: line 3 column 21" in line and "as json: line " not in line, line
