"""The command line as scripts use it: ``--version``, ``-o json`` on listings and shows,
distinct exit codes (docs/cli.md), ``report --fail-on``, settings errors that name the
variable, and the README's command lines parsing as written. Against a real server."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow as pa
import pytest

from aiwarden import __version__
from aiwarden.cli import main
from tests.server.conftest import register_model, scored_frame
from tests.server.live import ThreadServer, free_port, settings_for

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    tmp = tmp_path_factory.mktemp("cli-auto")
    with ThreadServer(settings_for(f"sqlite:///{tmp / 'c.db'}", tmp)) as s:
        with httpx.Client(base_url=s.url + "/api/v1", timeout=60) as http:
            register_model(http, "auto-a")
            http.post("/models", json={"name": "auto-b", "task": "binary"}).raise_for_status()
        yield s


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"aiwarden {__version__}"


@pytest.mark.parametrize("argv", [
    ("models", "list"), ("models", "show", "auto-a"), ("alerts", "auto-a"),
    ("incidents", "list"), ("registry", "list"), ("traffic", "auto-a"),
])
@pytest.mark.parametrize("flag", [("--json",), ("-o", "json")])
def test_listings_and_shows_print_what_the_api_answers(
        srv: ThreadServer, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
        flag: tuple[str, ...]) -> None:
    code, out, err = run(capsys, *argv, *flag, "--url", srv.url)
    assert code == 0 and err == ""
    data = json.loads(out)
    api = {("models", "list"): "/models", ("models", "show"): "/models/auto-a",
           ("alerts",): "/models/auto-a/alerts?events=0", ("incidents", "list"): "/incidents",
           ("registry", "list"): "/registry/models", ("traffic",): "/models/auto-a/traffic"}
    path = next(v for k, v in api.items() if argv[:len(k)] == k)
    direct = httpx.get(srv.url + "/api/v1" + path, timeout=30).json()
    if argv == ("models", "list"):
        assert {m["name"] for m in data} >= {"auto-a", "auto-b"}
    assert data == direct


def test_table_is_the_default_for_listings(srv: ThreadServer,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "models", "list", "--url", srv.url)
    assert code == 0 and out.splitlines()[0].split() == ["name", "task", "description"]
    code, out, _ = run(capsys, "models", "show", "auto-a", "-o", "table", "--url", srv.url)
    assert code == 0 and out.startswith("auto-a (") and "versions: 1" in out


def test_alerts_table_names_the_segment_and_why_a_state_has_no_value(
        srv: ThreadServer, capsys: pytest.CaptureFixture[str]) -> None:
    """A segment_by rule's instances differ only by segment, and a thin window's "nodata"
    only by its reason: the table shows both (they were '-' and nothing)."""
    import time

    from tests.server.conftest import evaluate, json_rows

    with httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as http:
        register_model(http, "auto-seg", hints={"target": "y", "prediction": "pred",
                                                "scores": "score", "segments": "c"})
        http.post("/models/auto-seg/predictions",
                  json=json_rows(scored_frame(40, seed=3), time.time() - 600)
                  ).raise_for_status()
        http.put("/rules/auto-seg/vol-by-c", json={
            "metric": "volume", "stat": "rows", "segment_by": "c", "window": "1h",
            "op": ">", "critical": 1}).raise_for_status()
        http.put("/rules/auto-seg/acc-by-c", json={
            "metric": "performance", "stat": "accuracy", "segment_by": "c", "window": "1h",
            "op": "<", "critical": 0.5}).raise_for_status()
        evaluate(http)
        states = {a["labels"]["segment"]: a["state"] for a in
                  http.get("/models/auto-seg/alerts").json()
                  if a["labels"]["rule"] == "acc-by-c"}
    # a nodata instance says why, in the metrics API's words: no rows, or no labels yet
    assert states["c=__other__"]["phase"] == "nodata"
    assert states["c=__other__"]["reason"] == "no events in this window"
    assert states["c=a"]["reason"] == "no labels joined to this window's predictions yet"
    code, out, _ = run(capsys, "alerts", "auto-seg", "--url", srv.url)
    assert code == 0 and out.splitlines()[0].split()[:2] == ["rule", "column/segment"]
    lines = out.splitlines()[1:]
    seg = sorted(line.split()[1] for line in lines if line.startswith("vol-by-c"))
    assert seg[:3] == ["c=a", "c=b", "c=c"]
    drift = [line for line in lines if line.startswith("drift-share")]
    assert drift and "nodata" in drift[0]
    assert "not enough data: 40 rows in the 1h window, the rule needs 100 (min_rows)" in drift[0]


def test_keys_list_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    assert run(capsys, "keys", "create", "ci", "--database-url", db)[0] == 0
    code, out, _ = run(capsys, "keys", "list", "--json", "--database-url", db)
    (key,) = json.loads(out)
    assert code == 0 and key["name"] == "ci" and key["scopes"] == ["ingest", "read"]
    assert key["revoked_at"] is None and "secret" not in json.dumps(key)
    code, _, err = run(capsys, "keys", "revoke", "nope", "--database-url", db)
    assert code == 3 and "nope" in err


def test_exit_codes_not_found_usage_connection(srv: ThreadServer,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    url = ("--url", srv.url)
    for argv in (("models", "show", "nope"), ("alerts", "nope"), ("incidents", "show", "999"),
                 ("registry", "show", "nope", "1"), ("rca", "nope")):
        code, _, err = run(capsys, *argv, *url)
        assert code == 3, (argv, err)
        assert err.count("\n") == 1 and "404" in err
    code, _, err = run(capsys, "models", "create", "auto-a", *url)
    assert code == 2 and "409" in err
    down = ("--url", f"http://127.0.0.1:{free_port()}")
    for argv in (("models", "list"), ("alerts", "x"), ("incidents", "list")):
        code, _, err = run(capsys, *argv, *down)
        assert code == 4, (argv, err)
        assert err.count("\n") == 1
    with pytest.raises(SystemExit) as done:  # argparse's own usage errors
        main(["models", "list", "-o", "yaml"])
    assert done.value.code == 2


def test_a_server_error_exits_5() -> None:
    from aiwarden.commands._common import Exit, exit_code
    from aiwarden.sdk import ApiError

    for status, want in ((500, Exit.SERVER), (503, Exit.SERVER), (404, Exit.NOT_FOUND),
                         (422, Exit.USAGE), (401, Exit.USAGE), (0, Exit.CONNECTION)):
        err = ApiError.from_response(httpx.Response(status or 599, json={"detail": {
            "error": "x", "message": "m"}})) if status else ApiError(0, "connection_error", "m")
        assert exit_code(err) == want, status


@pytest.mark.parametrize("env,value,reason", [
    ("AIWARDEN_PORT", "abc", "expected a whole number"),
    ("AIWARDEN_EVALUATE_EVERY", "soon", "expected a number"),
    ("AIWARDEN_RETENTION_DAYS", "inf", "expected a finite number"),
    ("AIWARDEN_ALLOW_CODE_ARTIFACTS", "maybe", "expected true or false"),
    ("AIWARDEN_EVALUATE_EVERY", "-1", "expected a number >= 0"),
    ("AIWARDEN_PORT", "70000", "expected a whole number in [0, 65535]"),
    ("AIWARDEN_MULTIVARIATE_ROWS", "5", "expected a whole number in [100, 100000]"),
    ("AIWARDEN_SEGMENT_TOP_N", "0", "expected a whole number in [1, 1000]"),
])
def test_a_bad_setting_names_the_variable(env: str, value: str, reason: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(env, value)
    for argv in (("server", "--data-dir", str(tmp_path)), ("demo", "--data-dir", str(tmp_path)),
                 ("keys", "list", "--data-dir", str(tmp_path))):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1, err
        assert f"{env}={value!r}: {reason}" in err, err


def test_report_fail_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref, same, shifted = (tmp_path / f"{n}.parquet" for n in ("ref", "same", "shifted"))
    scored_frame(2000, seed=0).to_parquet(ref, index=False)
    scored_frame(800, seed=1).to_parquet(same, index=False)
    scored_frame(800, seed=2, shift=1.0).to_parquet(shifted, index=False)
    base = ("--target", "y", "--prediction", "pred", "--scores", "score")

    def report(cur: Path, *extra: str) -> tuple[int, str, str]:
        out = tmp_path / f"out-{cur.stem}-{'-'.join(extra)}"
        code, _, err = run(capsys, "report", str(ref), str(cur), "--out", str(out), *base,
                              *extra)
        assert (out / "report.json").exists()  # written whatever the verdict
        status = json.loads((out / "report.json").read_text())["verdict"]["status"]
        return code, status, err

    code, status, _ = report(shifted)
    assert code == 0 and status == "critical"  # without --fail-on: found, still 0
    code, status, err = report(shifted, "--fail-on", "error")
    assert code == 1 and "verdict critical (--fail-on error)" in err
    assert report(shifted, "--fail-on", "warning")[0] == 1
    code, status, _ = report(same, "--fail-on", "warning")
    assert status == "ok" and code == 0


def _readme_commands() -> list[list[str]]:
    text = README.read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            while words and "=" in words[0] and not words[0].startswith("-"):
                words = words[1:]  # VAR=value prefixes
            if words and words[0] == "aiwarden":
                lines.append(words[1:])
    return lines


def test_the_readme_command_lines_parse_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each ``aiwarden ...`` line of the README is accepted by the parser (the command's
    function is swapped for one that records its arguments, so nothing runs)."""
    import argparse

    commands = _readme_commands()
    assert len(commands) >= 15
    seen: list[argparse.Namespace] = []
    real = argparse.ArgumentParser.parse_args

    def parse(self: argparse.ArgumentParser, *a: object, **kw: object) -> argparse.Namespace:
        ns = real(self, *a, **kw)
        seen.append(ns)
        ns.func = lambda _args: 0
        return ns

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse)
    for argv in commands:
        assert main(argv) == 0, argv
    assert len(seen) == len(commands)


class _Terminal:
    """A stream that says it is a terminal, and keeps what was written."""

    def __init__(self, tty: bool = True) -> None:
        self.tty, self.parts = tty, []

    def isatty(self) -> bool:
        return self.tty

    def write(self, s: str) -> None:
        self.parts.append(s)

    def flush(self) -> None:
        pass


def test_progress_draws_on_a_terminal_only() -> None:
    from aiwarden.commands._progress import Progress

    term = _Terminal()
    with Progress("log m", 200, unit="rows", stream=term) as bar:
        bar.update(50, force=True)
        assert term.parts[-1] == "\rlog m [######..................]  25% 50/200 rows"
        bar.update(200, force=True)
        assert "[" + "#" * 24 + "] 100% 200/200 rows" in term.parts[-1]
    assert term.parts[-1] == "\r"  # the line cleared for what comes next
    assert "".join(term.parts).count("\r") >= 3
    pipe = _Terminal(tty=False)
    with Progress("log m", 200, stream=pipe) as bar:
        bar.update(100, force=True)
    assert pipe.parts == []
    unknown = Progress("import", None, unit="versions", stream=_Terminal())
    assert unknown.render() == "import 0 versions"


def _on_a_terminal(*argv: str) -> tuple[int, str, str]:
    """``aiwarden ARGV`` in a child whose stderr is a terminal (a pty); stdout a pipe."""
    import os
    import pty
    import subprocess
    import sys

    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIWARDEN_")}
    res = subprocess.run([sys.executable, "-m", "aiwarden.cli", *argv], stdout=subprocess.PIPE,
                         stderr=follower, text=True, timeout=120, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal is gone once read out
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return res.returncode, res.stdout, b"".join(chunks).decode()


def test_log_and_report_draw_progress_on_a_terminal_only(srv: ThreadServer,
                                                          tmp_path: Path) -> None:
    import pandas as pd

    rows = pd.DataFrame({"prediction_id": [f"t{i}" for i in range(300)], "x": 0.5,
                         "c": "a", "score": 0.7, "pred": 1})
    rows.to_parquet(tmp_path / "p.parquet", index=False)
    code, out, err = _on_a_terminal("log", "predictions", "auto-a", str(tmp_path / "p.parquet"),
                                    "--url", srv.url)
    assert code == 0 and "accepted 300" in out
    assert "\rlog predictions auto-a [" in err and "300/300 rows" in err
    scored_frame(500, seed=0).to_parquet(tmp_path / "ref.parquet", index=False)
    code, out, err = _on_a_terminal("report", str(tmp_path / "ref.parquet"),
                                    str(tmp_path / "ref.parquet"), "--out", str(tmp_path / "r"))
    assert code == 0 and "wrote" in out
    assert "report: comparing" in err and "report: writing" in err and "4/4 steps" in err


def test_an_unreachable_database_exits_4(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "keys", "list", "--database-url",
                       f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/x")
    assert code == 4 and err.count("\n") == 1
    assert err.startswith("aiwarden keys: error: cannot reach the database: ")


def test_alerts_table_names_the_version_and_marks_a_relative_value(
        srv: ThreadServer, capsys: pytest.CaptureFixture[str]) -> None:
    """Each version has its own instances of a rule, and a ``relative_to`` rule compares a
    change against its baseline (outside review, finding 10): the table has a version
    column, and the change reads "Δ ... vs reference", not as the metric itself."""
    import time

    from aiwarden.sdk._payload import to_parquet
    from tests.server.conftest import HINTS, evaluate, json_rows

    with httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as http:
        register_model(http, "auto-ver")
        table = pa.Table.from_pandas(scored_frame(3000), preserve_index=False)
        http.put("/models/auto-ver/versions/v2/reference", content=to_parquet(table),
                 params=HINTS, headers={"content-type": "application/vnd.apache.parquet"}
                 ).raise_for_status()
        t0 = time.time() - 900
        for version in ("v1", "v2"):
            frame = scored_frame(300, seed=5)
            rows = json_rows(frame, t0, prefix=f"{version}-")
            for r in rows:
                r["version"] = version
            http.post("/models/auto-ver/predictions", json=rows).raise_for_status()
            labels = [{"prediction_id": r["prediction_id"], "label": int(1 - y)}  # all wrong
                      for r, y in zip(rows, frame.y, strict=True)]
            http.post("/models/auto-ver/labels", json=labels).raise_for_status()
        http.put("/rules/auto-ver/acc-vs-ref", json={
            "metric": "performance", "stat": "accuracy", "relative_to": "reference",
            "window": "1h", "op": "<", "critical": -0.1}).raise_for_status()
        evaluate(http)
        states = {a["labels"].get("version"): a["state"] for a in
                  http.get("/models/auto-ver/alerts").json()
                  if a["labels"]["rule"] == "acc-vs-ref"}
    assert set(states) == {"v1", "v2"}, states
    delta = states["v1"]["value"]
    assert delta is not None and delta < -0.5
    code, out, _ = run(capsys, "alerts", "auto-ver", "--url", srv.url)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["rule", "column/segment",
                                                             "version"]
    lines = [line for line in out.splitlines()[1:] if line.startswith("acc-vs-ref")]
    assert sorted(line.split()[2] for line in lines) == ["v1", "v2"]
    v1 = next(line for line in lines if line.split()[2] == "v1")
    assert f"Δ {delta:+.4g} vs reference" in v1
