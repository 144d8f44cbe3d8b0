"""`aiwarden demo`'s story against a real server (SQLite, as the demo runs), ten times faster.

Every beat must happen, in order, through the public API: the corrupted batch is caught,
drift alerts fire, the canary is bad on small transactions, its incident's RCA names the
small-amount slice first, and the automatic rollback sends the traffic back to version 1.
The retraining act plays alongside: the drift alert queues a run the data gate blocks on the
corrupted rows, the slice gate refuses a candidate trained with the labelling bug on
``amount < 10``, and a clean candidate canaries and is promoted to champion.
"""

from __future__ import annotations

import io
import itertools
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from aiwarden.commands.demo import demo_settings
from aiwarden.demo.story import DEMO_MODEL, Story
from aiwarden.demo.training import trust_demo_model
from tests.server.live import ThreadServer, database_url, free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadServer]:
    """The server as `aiwarden demo` starts it (its own settings function): the demo's
    pipeline entry allowed, the demo model's skops types trusted, code artifacts refused."""
    tmp = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIWARDEN_SKOPS_TRUSTED", "")
        env.delenv("AIWARDEN_ALLOW_CODE_ARTIFACTS", raising=False)
        trust_demo_model()
        with database_url("sqlite", tmp) as url, ThreadServer(demo_settings(
                free_port(), str(tmp), speed=10, database_url=url, evaluate_every=1.0,
                compact_every=0.5, egress_allow="127.0.0.1")) as srv:
            assert not srv.settings.allow_code_artifacts
            yield srv


def test_the_demo_server_refuses_code_from_anyone(demo_server: ThreadServer,
                                                  tmp_path: Path) -> None:
    """Issue 11: while the demo runs, a local process can neither register a pickle nor
    declare a pipeline that runs anything but the demo's own training."""
    marker = tmp_path / "pwned"
    with httpx.Client(base_url=demo_server.url + "/api/v1", timeout=30) as api:
        r = api.post("/registry/models/victim/versions",
                     params={"trust": "true", "filename": "m.pkl"},
                     headers={"content-type": "application/octet-stream"},
                     content=pickle.dumps(_Shell(f"touch {marker}")))
        assert r.status_code == 403, r.text
        assert "--allow-code-artifacts" in r.json()["detail"]["message"]
        assert api.get("/registry/models/victim/versions").status_code == 404
        r = api.put(f"/models/{DEMO_MODEL}/pipeline",
                    json={"entry": "os:system", "params": {"command": f"touch {marker}"}})
        assert r.status_code == 403, r.text
        r = api.put(f"/models/{DEMO_MODEL}/pipeline",
                    json={"command": ["sh", "-c", f"touch {marker}"]})
        assert r.status_code == 403, r.text
    assert not marker.exists()


class _Shell:
    """A pickle that runs a shell command when loaded."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (self.command,)


def test_the_story_plays_out_to_the_rollback(demo_server: ThreadServer) -> None:
    out = io.StringIO()
    story = Story(demo_server.url, speed=10, out=out, history_hours=1.0, rows_per_tick=20)
    story.start()
    try:
        assert story.done.wait(timeout=360), out.getvalue()
        time.sleep(1.0)
    finally:
        story.stop_event.set()
        story.join(timeout=30)
    told = out.getvalue()
    beats = ["version 1 is the champion", "corrupted", "ALERT firing: data-quality-errors",
             "surge", "canary", "ALERT firing: canary-accuracy on version 2",
             "Rolled fraud-detector@challenger back from version 2 to 1",
             "THE END: the story is over"]
    at = [told.find(b) for b in beats]
    assert all(i >= 0 for i in at) and at == sorted(at), told
    retraining = ["surge", "RETRAIN run #1 queued by the drift alert (feature-drift)",
                  "Run #1 BLOCKED by the data gate", "RETRAIN run #2 queued by hand",
                  "Run #2 BLOCKED by the slices gate", "RETRAIN run #3 queued by hand",
                  "Run #3 passes every gate",
                  "Version 3 held its canary", "PROMOTED to champion",
                  "THE END: the story is over"]
    at = [told.find(b) for b in retraining]
    assert all(i >= 0 for i in at) and at == sorted(at), told
    # the clean run waits for the rollback: two canaries at once would share the traffic
    assert told.find("Rolled fraud-detector") < told.find("RETRAIN run #3"), told
    assert "THE END" in [x for x in told.splitlines() if x.startswith("[")][-1], told
    assert "drift trigger is now off" in told[told.find("THE END"):], told
    # the canary's incident explains an honest small purchase version 2 flagged, in a thread
    # of its own (a process's first Permutation SHAP compiles shap's code): when it was told
    # in time, amount leads it (the explanation itself: test_explain_api)
    why = [x for x in told.splitlines() if "WHY did version 2 flag" in x]
    assert all(w.split("): ", 1)[1].startswith("amount +") for w in why), why
    # the drift alert follows the surge; on a busy machine it may come after the canary starts
    assert told.find("surge") < told.find("ALERT firing: feature-drift on version 1"), told
    with httpx.Client(base_url=demo_server.url + "/api/v1", timeout=60) as api:
        runs = {r["id"]: r for r in api.get(f"/models/{DEMO_MODEL}/runs").json()}
        assert [(n, runs[n]["state"]) for n in sorted(runs)] == [
            (1, "blocked"), (2, "blocked"), (3, "succeeded")], runs
        assert runs[1]["trigger"] == "alert"
        assert "feature-drift" in runs[1]["trigger_detail"]["rules"]
        data = api.get("/runs/1").json()["gates"][-1]
        assert data["gate"] == "data" and not data["passed"], data
        named = {(p["row"], p["column"]) for p in data["evidence"]["problems"]}
        assert {c for _, c in named} >= {"amount"} and "'amount'" in data["reason"], data
        assert len([r for r, c in named if c == "amount"]) == 4, named  # the sign-flipped rows
        biased = api.get("/runs/2").json()
        assert biased["data"]["quarantined_rows"] >= 4 and biased["version"] is None
        slices = biased["gates"][-1]
        assert slices["gate"] == "slices" and not slices["passed"], biased["gates"]
        assert slices["reason"].startswith("worse than the champion on amount <"), slices
        assert slices["evidence"]["slices"][0]["conditions"][0][:2] == ["amount", "<"]
        assert float(slices["evidence"]["slices"][0]["conditions"][0][2]) <= 12.5
        clean = api.get("/runs/3").json()
        assert all(g["passed"] for g in clean["gates"]), clean["gates"]
        assert clean["version"] == "3" and clean["result"]["promotion"]["state"] == "promoted"
        lineage = api.get(f"/registry/models/{DEMO_MODEL}/versions/3").json()["metadata"]
        assert lineage["lineage"]["run"] == 3
        assert api.get(f"/registry/models/{DEMO_MODEL}/aliases").json() == {
            "champion": "3", "challenger": "3"}
        assert api.get(f"/models/{DEMO_MODEL}/traffic").json()["mode"] == "off"
        # the ending stays true (outside review, finding 12): the drift alert, still firing,
        # no longer queues runs that would train and promote versions after "THE END"
        spec = api.get(f"/models/{DEMO_MODEL}/pipeline").json()
        assert spec["triggers"]["on_alerts"] == [], spec["triggers"]
        assert not [r for r in api.get(f"/models/{DEMO_MODEL}/runs").json()
                    if r["state"] in ("queued", "running")]
        incidents = {i["id"]: i for i in api.get(
            "/incidents", params={"model": DEMO_MODEL}).json()}
        rolled = [i for i in incidents.values() if any(
            e["detail"].get("text", "").startswith("Rolled")
            for e in api.get(f"/incidents/{i['id']}").json()["timeline"])]
        assert len(rolled) == 1
        full = api.get(f"/incidents/{rolled[0]['id']}").json()
        assert "canary-accuracy" in {a["rule"] for a in full["alerts"]}
        # one failure, one incident: every performance alert on version 2 is in this one
        on_v2 = [i["id"] for i in incidents.values() for a in api.get(
            f"/incidents/{i['id']}").json()["alerts"] if a["labels"].get("version") == "2"
            and a["rule"] in ("canary-accuracy", "realised-roc_auc")]
        assert set(on_v2) == {rolled[0]["id"]}, on_v2
        timeline = full["timeline"]
        # the latest analysis: it is redone when a rule joins, so it has seen the labels
        rca = [e for e in timeline if e["detail"].get("text") == "Root-cause analysis"][-1]
        lead = rca["detail"]["suspects"][:3]
        assert any(x["kind"] == "slice" and x["name"].startswith("amount <") for x in lead), (
            [(x["kind"], x["name"], x["score"]) for x in rca["detail"]["suspects"]],
            [e["detail"].get("rule") for e in timeline if e["kind"] == "alert_fired"])
        quarantined = api.get(f"/models/{DEMO_MODEL}/quarantine").json()
        assert [q["field"] for q in quarantined] == ["features.amount"]
        after = api.post(f"/models/{DEMO_MODEL}/predict", json={"features": {
            "amount": 5.0, "hour": 3, "merchant": "gaming", "country": "FR",
            "account_age_days": 12.0}}).json()
        assert after["version"] == "3"
        # the end state is coherent (outside review): the rollback's incident is resolved
        # once the rollback is verified, and told so before the ending
        assert full["status"] == "resolved", full["status"]
        assert "Rollback verified" in told[:told.find("THE END")], told
        assert 0 <= told.find("resolves incident #") < told.find("THE END"), told
        # one rule, one open incident: a rule's second incident opens only after its first
        # ended (the on-call resolves the rollback's incident while version 2's alerts still
        # fire on its last labels, so a later firing of the same rule opens a new one; the
        # stricter "one incident per rule" flaked in CI: see the session notes)
        by_key: dict[str, list[dict]] = {}
        for inc in sorted(incidents.values(), key=lambda i: i["created_at"]):
            by_key.setdefault(inc["key"], []).append(inc)
        for key, same in by_key.items():
            for first, then in itertools.pairwise(same):
                ended = first["resolved_at"] or first["declined_at"]
                assert ended is not None and ended <= then["created_at"], (key, same)
        # the ending names every alert still firing, as the dashboard shows them
        ending = told[told.find("THE END"):]
        firing = {(a["labels"]["rule"], a["labels"]["version"]) for a in api.get(
            f"/models/{DEMO_MODEL}/alerts", params={"events": 0}).json()
            if a["state"].get("phase") == "firing"
            and a["state"]["fired_at"] <= story.ended_at}
        assert "Still firing" in ending or not firing, ending
        for rule, version in firing:
            assert f"version {version} (" in ending and rule in ending, (rule, version, ending)
        # the command the ending suggests works: the data gate quarantines the corrupted
        # batch instead of blocking the run on it
        assert spec["gates"]["data_policy"] == "quarantine", spec["gates"]
        assert f"`aiwarden retrain {DEMO_MODEL}`" in ending
    res = subprocess.run([sys.executable, "-m", "aiwarden.cli", "retrain", DEMO_MODEL,
                          "--url", demo_server.url, "--wait", "--timeout", "300",
                          "--reason", "as the demo's ending suggests"],
                         cwd=ROOT, capture_output=True, text=True, timeout=360)
    assert res.returncode == 0, res.stdout + res.stderr
    with httpx.Client(base_url=demo_server.url + "/api/v1", timeout=60) as api:
        run = api.get(f"/models/{DEMO_MODEL}/runs").json()
        last = max(run, key=lambda r: r["id"])
        assert last["id"] == 4 and last["state"] == "succeeded", last
        assert last["gates"][0]["gate"] == "data" and last["gates"][0]["passed"]


@pytest.mark.parametrize(("how", "keep"), [(signal.SIGINT, False), (signal.SIGTERM, False),
                                         (signal.SIGTERM, True)])
def test_a_stopped_demo_removes_its_temporary_folder(tmp_path: Path, how: int,
                                                     keep: bool) -> None:
    """Ctrl-C (SIGINT) or a service manager's SIGTERM: the server stops gracefully and the
    fresh temporary folder the demo wrote to is gone; --data-dir is kept."""
    kept = tmp_path / "kept"
    for data_dir in [kept if keep else None]:
        tmp = tmp_path / f"tmp-{data_dir is not None}"
        tmp.mkdir()
        port = free_port()
        args = [sys.executable, "-m", "aiwarden.cli", "demo", "--port", str(port)]
        proc = subprocess.Popen(args + (["--data-dir", str(data_dir)] if data_dir else []),
                                env={**os.environ, "TMPDIR": str(tmp)}, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            first = proc.stdout.readline()
            assert first.startswith("aiwarden demo: dashboard"), first
            folder = Path(first.rsplit("data ", 1)[1].strip())
            assert folder == (data_dir or folder) and (data_dir or folder.is_dir())
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.2)
            proc.send_signal(how)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        assert proc.returncode == 0, out
        assert "Traceback" not in out and "stopped on an error" not in out, out
        if data_dir is None:
            assert not folder.exists() and not list(tmp.iterdir()), out
            assert f"removed {folder}" in out
        else:
            assert (kept / "aiwarden.db").exists() or any(kept.iterdir())
            assert "removed" not in out


@pytest.mark.parametrize("story", ["fraud", "chatbot"])
def test_a_taken_port_stops_the_demo_in_one_line(tmp_path: Path, story: str) -> None:
    """Review: a taken --port printed uvicorn's bind error, then the story played against
    whatever server owned the port, then exit 3 with no message."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        holder.setblocking(False)
        port = holder.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "aiwarden.cli", "demo", "--port", str(port),
                              "--story", story, "--speed", "10"],
                             env={**os.environ, "TMPDIR": str(tmp_path)}, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        with pytest.raises(BlockingIOError):  # the story never called the port's owner
            holder.accept()
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stdout == ""
    assert res.stderr == (f"aiwarden demo: error: port {port} is in use; "
                          "choose another with --port\n")
    assert not list(tmp_path.iterdir())  # no temporary data folder left behind


def test_the_demo_listens_on_aiwarden_port_as_the_server_does(tmp_path: Path) -> None:
    """Review: ``aiwarden demo`` ignored AIWARDEN_PORT (``aiwarden server`` honours it), so
    the README's "another port" did not work; a taken AIWARDEN_PORT is now the one named."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "aiwarden.cli", "demo", "--speed", "10"],
                             env={**os.environ, "TMPDIR": str(tmp_path),
                                  "AIWARDEN_PORT": str(port)},
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    assert f"port {port} is in use" in res.stderr
