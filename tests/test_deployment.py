"""Deployment files (Dockerfile, compose.yaml) agree with the server they start.

No container runtime runs here, so the files are checked against the code instead: every
``AIWARDEN_*`` name is a server setting and its value parses, ports, data folder and database
names agree between the image, the compose file and the server's settings, the commands are
real CLI commands, and the image's healthcheck command, run as written, passes against a real
server started from the compose service's own command and environment (on PostgreSQL, as in
the compose file) and fails when nothing listens. The first-start story of docs/deployment.md
is run too: refused without a key, ``keys create`` as the compose file's header says, then up
with the compose file's number of worker processes.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from dataclasses import fields
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from aiwarden.server.settings import ServerSettings
from tests.server.live import database_url, free_port

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {f"AIWARDEN_{f.name.upper()}" for f in fields(ServerSettings)}
CLI_ONLY = {"AIWARDEN_WORKERS"}  # read by `aiwarden server` itself (aiwarden/commands/server.py)


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, argument) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines()
                                          if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip())
            for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, re.M)]


def _runtime_stage() -> list[tuple[str, str]]:
    lines = _dockerfile()
    last_from = max(i for i, (ins, _) in enumerate(lines) if ins == "FROM")
    return lines[last_from:]


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for ins, arg in _runtime_stage():
        if ins == "ENV":
            env.update(dict(tok.split("=", 1) for tok in shlex.split(arg)))
    return env


def _compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}`` and ``${VAR:?message}``."""
    def sub(m: re.Match[str]) -> str:
        name, op, rest = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name}: {rest}")
        return rest or ""
    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", sub, value)


def _service_env(service: str, env: dict[str, str]) -> dict[str, str]:
    raw = _compose()["services"][service].get("environment", {})
    return {k: _interpolate(str(v), env) for k, v in raw.items()}


def _healthcheck_argv() -> list[str]:
    (arg,) = [a for ins, a in _runtime_stage() if ins == "HEALTHCHECK"]
    cmd = arg.split(" CMD ", 1)[1]
    argv = shlex.split(cmd)
    assert argv[0] == "python"  # the image's python: here, the test's own interpreter
    return [sys.executable, *argv[1:]]


def test_image_is_multi_stage_slim_and_non_root() -> None:
    lines = _dockerfile()
    froms = [a for ins, a in lines if ins == "FROM"]
    assert len(froms) >= 2 and all("-slim" in f for f in froms)
    stage = _runtime_stage()
    (user,) = [a for ins, a in stage if ins == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    # the entry point is the console script pyproject declares
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (entry,) = [a for ins, a in stage if ins == "ENTRYPOINT"]
    assert yaml.safe_load(entry) == ["aiwarden"] and "aiwarden" in scripts
    (cmd,) = [a for ins, a in stage if ins == "CMD"]
    assert yaml.safe_load(cmd) == ["server"]


def test_image_build_inputs_exist_and_extras_are_declared() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for ins, arg in _dockerfile():
        if ins == "COPY" and "--from" not in arg:
            for src in shlex.split(arg)[:-1]:
                assert (ROOT / src).exists(), src
        if ins == "ARG" and arg.startswith("EXTRAS="):
            for extra in arg.split("=", 1)[1].split(","):
                assert extra in extras, extra
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "aiwarden" not in ignored and "pyproject.toml" not in ignored


def test_image_env_are_settings_that_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    env = _image_env()
    ours = {k: v for k, v in env.items() if k.startswith("AIWARDEN_")}
    assert set(ours) <= SETTINGS, set(ours) - SETTINGS
    for k, v in ours.items():
        monkeypatch.setenv(k, v)
    s = ServerSettings.from_env()
    assert (s.host, s.port) == ("0.0.0.0", 8000) and not s.loopback
    stage = _runtime_stage()
    assert str(s.port) in [a for ins, a in stage if ins == "EXPOSE"]
    (workdir,) = [a for ins, a in stage if ins == "WORKDIR"]
    (volume,) = [a for ins, a in stage if ins == "VOLUME"]
    assert s.data_dir == workdir and yaml.safe_load(volume) == [s.data_dir]


def test_compose_agrees_with_settings_and_image(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) >= {"postgres", "aiwarden"}
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD"):  # no default password
        _service_env("aiwarden", {})
    env = _service_env("aiwarden", {"POSTGRES_PASSWORD": "pw"})
    pg = _service_env("postgres", {"POSTGRES_PASSWORD": "pw"})
    assert set(env) <= SETTINGS | CLI_ONLY, set(env) - SETTINGS - CLI_ONLY
    assert int(env["AIWARDEN_WORKERS"]) >= 2  # several processes: the point of PostgreSQL
    assert int(_service_env("aiwarden", {"POSTGRES_PASSWORD": "pw",
                                         "AIWARDEN_WORKERS": "5"})["AIWARDEN_WORKERS"]) == 5
    for k, v in env.items():
        if k in SETTINGS:
            monkeypatch.setenv(k, v)
    s = ServerSettings.from_env()
    assert s.host == "0.0.0.0"
    # the published port maps onto the port the server listens on
    published = [str(p).split(":") for p in services["aiwarden"]["ports"]]
    assert [p[-1] for p in published] == [str(s.port)]
    # the database URL names the postgres service, its user, password and database
    url = urlsplit(s.url)
    assert url.scheme == "postgresql+psycopg" and url.hostname == "postgres"
    assert (url.username, url.password, url.path.lstrip("/")) == (
        pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
    assert services["aiwarden"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in services["postgres"]
    # the data volume is mounted where the settings (and the image) keep files
    mounts = [v.split(":") for v in services["aiwarden"]["volumes"]]
    assert [m[1] for m in mounts] == [s.data_dir] == [_image_env()["AIWARDEN_DATA_DIR"]]
    assert {m[0] for m in mounts} | {"pgdata"} <= set(compose["volumes"])
    assert services["aiwarden"]["build"] == "."


def _workers(pid: int) -> list[int]:
    """Worker processes uvicorn spawned under ``pid`` (multiprocessing's spawn_main)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and b"spawn_main" in cmd:
            out.append(int(stat.parent.name))
    return out


def _run_cli(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch,
             capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``aiwarden ARGS`` with exactly ``env``'s AIWARDEN_* settings, in this process: the same
    ``main`` the console script runs, without a second interpreter importing aiwarden."""
    from aiwarden.cli import main

    with monkeypatch.context() as mp:
        for k in [k for k in os.environ if k.startswith("AIWARDEN_")]:
            mp.delenv(k)
        for k, v in env.items():
            if k.startswith("AIWARDEN_"):
                mp.setenv(k, v)
        capsys.readouterr()
        code = main(args)
        out, err = capsys.readouterr()
    return code, out, err


def test_first_start_and_image_healthcheck_on_postgresql(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The compose service's command and environment, on a real PostgreSQL database."""
    port = free_port()
    probe = {**os.environ, "AIWARDEN_PORT": str(port)}
    down = subprocess.run(_healthcheck_argv(), env=probe, capture_output=True, timeout=60)
    assert down.returncode != 0  # nothing listens yet: unhealthy
    service = _compose()["services"]["aiwarden"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIWARDEN_")}
    with database_url("postgresql", tmp_path) as url:
        env = {**clean, **_service_env("aiwarden", {"POSTGRES_PASSWORD": "unused"}),
               "AIWARDEN_DATABASE_URL": url, "AIWARDEN_PORT": str(port),
               "AIWARDEN_DATA_DIR": str(tmp_path), "AIWARDEN_LOG_LEVEL": "warning"}
        code, _, err = _run_cli(service["command"], env, monkeypatch, capsys)
        assert code == 2 and "without an API key" in err  # no key yet, bound to 0.0.0.0
        header = (ROOT / "compose.yaml").read_text().split("services:")[0]
        keys_line = re.search(r"docker compose run --rm aiwarden (keys create .*?)\s+#",
                              header)
        assert keys_line
        code, out, err = _run_cli(shlex.split(keys_line.group(1)), env, monkeypatch, capsys)
        assert code == 0, err
        key = out.splitlines()[0]
        log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen([sys.executable, "-m", "aiwarden.cli", *service["command"]],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 240  # a loaded 2-core host: imports alone took 49 s
            ready = None
            with httpx.Client(timeout=2) as http:
                while time.monotonic() < deadline and proc.poll() is None:
                    try:
                        ready = http.get(f"http://127.0.0.1:{port}/readyz")
                        if ready.status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.05)
                assert ready is not None and ready.status_code == 200, (
                    tmp_path / "server.log").read_text()[-2000:]
                assert ready.json()["database"] == "postgresql"
                # the compose file's AIWARDEN_WORKERS processes serve the port
                assert len(_workers(proc.pid)) == int(env["AIWARDEN_WORKERS"])
                # keys are required now: the data is not open to whoever reaches the port
                assert http.get(f"http://127.0.0.1:{port}/api/v1/models").status_code == 401
                assert http.get(f"http://127.0.0.1:{port}/api/v1/models",
                                headers={"Authorization": f"Bearer {key}"}).status_code == 200
            up = subprocess.run(_healthcheck_argv(), env=probe, capture_output=True,
                                timeout=60)
            assert up.returncode == 0, up.stderr
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()


def test_rehearsal_reads_the_dockerfile_and_the_user_owns_its_ids() -> None:
    """deploy/rehearse-dockerfile.sh reads every step from these files (an unknown
    instruction stops it), and the image's USER is the uid:gid its RUN line creates."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dockerfile_steps",
                                                  ROOT / "deploy" / "dockerfile_steps.py")
    assert spec and spec.loader
    steps = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(steps)
    stages = steps.stages(ROOT / "Dockerfile")
    assert "/opt/aiwarden/bin/pip install --only-binary=:all:" in "".join(stages["build"]["run"])
    assert steps.compose(ROOT / "compose.yaml")["KEYS_ARGV"].startswith("keys create ")
    runtime = stages["runtime"]
    uid, gid = runtime["user"].split(":")
    (run,) = runtime["run"]
    assert re.search(rf"groupadd [^&]*--gid {gid}\b", run), run
    assert re.search(rf"useradd [^&]*--uid {uid}\b[^&]*--gid {gid}\b", run), run
