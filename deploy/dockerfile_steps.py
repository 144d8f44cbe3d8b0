"""The Dockerfile's steps as shell variables, for deploy/rehearse-dockerfile.sh.

Why: the rehearsal replays the Dockerfile without a docker engine; reading the steps from the
file (instead of copying them into the script) keeps the two from drifting. Any instruction
this reader does not know stops the rehearsal, naming it, rather than being skipped.

Usage: python3 deploy/dockerfile_steps.py Dockerfile compose.yaml  ->  NAME='value' lines
for `eval` (compose.yaml read with PyYAML: the aiwarden service's environment, with variables
unset as on a fresh host, and the header's `keys create` line).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

# The python:*-slim-bookworm images' own PATH (docker inspect), which `ENV PATH=...:$PATH`
# extends.
BASE_ENV = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LANG": "C.UTF-8"}
KNOWN = {"ARG", "FROM", "ENV", "WORKDIR", "COPY", "RUN", "USER", "VOLUME", "EXPOSE",
         "HEALTHCHECK", "ENTRYPOINT", "CMD"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, argument): comments dropped, continuation lines joined."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", joined, re.M):
        ins = m.group(1).upper()
        if ins not in KNOWN:
            raise SystemExit(f"Dockerfile: instruction {ins} is not replayed by the rehearsal")
        out.append((ins, re.sub(r"\s+", " ", m.group(2).strip())))
    return out


def expand(value: str, env: dict[str, str]) -> str:
    """Docker's own substitution in ENV/WORKDIR/COPY/FROM (not in RUN: the shell does that)."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in env:
            raise SystemExit(f"Dockerfile: ${name} is not defined where it is used")
        return env[name]
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", sub, value)


def stages(path: Path) -> dict[str, str]:
    steps = instructions(path.read_text())
    global_args: dict[str, str] = {}
    stage: dict | None = None
    found: list[dict] = []
    for ins, arg in steps:
        if ins == "FROM":
            image, _, name = arg.partition(" AS ")
            stage = {"from": expand(image, global_args), "name": name.strip(), "args": {},
                     "env": dict(BASE_ENV), "workdir": "/", "copy": [], "run": [],
                     "user": "", "healthcheck": "", "entrypoint": [], "cmd": []}
            found.append(stage)
        elif ins == "ARG" and stage is None:
            k, _, v = arg.partition("=")
            global_args[k] = v
        elif stage is None:
            raise SystemExit(f"Dockerfile: {ins} before the first FROM")
        elif ins == "ARG":
            k, _, v = arg.partition("=")
            stage["args"][k] = v if v else global_args.get(k, "")
        elif ins == "ENV":
            scope = {**stage["args"], **stage["env"]}
            for tok in shlex.split(arg):
                k, _, v = tok.partition("=")
                stage["env"][k] = expand(v, scope)
        elif ins == "WORKDIR":
            stage["workdir"] = expand(arg, {**stage["args"], **stage["env"]})
        elif ins == "COPY":
            stage["copy"].append(expand(arg, {**stage["args"], **stage["env"]}))
        elif ins == "RUN":
            stage["run"].append(arg)  # run by sh -c with ARG and ENV values in its environment
        elif ins == "USER":
            stage["user"] = arg
        elif ins == "HEALTHCHECK":
            m = re.match(r"(?:--\S+\s+)*CMD\s+(.*)$", arg)
            if not m:
                raise SystemExit("Dockerfile: HEALTHCHECK without CMD")
            stage["healthcheck"] = m.group(1)
        elif ins in ("ENTRYPOINT", "CMD"):
            stage[ins.lower()] = json.loads(arg)  # exec form only
    if len(found) != 2:
        raise SystemExit(f"Dockerfile: {len(found)} stages, the rehearsal replays two")
    return {"build": found[0], "runtime": found[1]}


def compose(path: Path) -> dict[str, str]:
    """The aiwarden service's environment (${X:-d} -> d, ${X:?m} -> a placeholder: the
    rehearsal replaces the database URL) and the header's `keys create` arguments."""
    import yaml

    text = path.read_text()
    env = yaml.safe_load(text)["services"]["aiwarden"]["environment"]

    def sub(m: re.Match[str]) -> str:
        return m.group(3) if m.group(2) == ":-" else f"<{m.group(1)}>"
    flat = {k: re.sub(r"\$\{(\w+)(:[-?])?([^}]*)\}", sub, str(v)) for k, v in env.items()}
    keys = re.search(r"docker compose run --rm aiwarden (keys create .*?)\s+#",
                     text.split("services:")[0])
    if not keys:
        raise SystemExit("compose.yaml: no `docker compose run --rm aiwarden keys create` line")
    return {"COMPOSE_ENV": "\n".join(f"{k}={v}" for k, v in flat.items()),
            "KEYS_ARGV": keys.group(1)}


def main() -> None:
    s = stages(Path(sys.argv[1]))
    b, r = s["build"], s["runtime"]
    out = {
        "BUILD_FROM": b["from"], "RUNTIME_FROM": r["from"],
        "BUILD_WORKDIR": b["workdir"],
        "BUILD_ENV": " ".join(f"{k}={v}" for k, v in {**b["args"], **b["env"]}.items()),
        "BUILD_COPY": "\n".join(b["copy"]),
        "BUILD_RUN": "\n".join(b["run"]),
        "RUNTIME_COPY": "\n".join(r["copy"]),
        "RUNTIME_RUN": "\n".join(r["run"]),
        "RUNTIME_ENV": " ".join(f"{k}={v}" for k, v in {**r["args"], **r["env"]}.items()),
        "RUNTIME_USER": r["user"], "RUNTIME_WORKDIR": r["workdir"],
        "HEALTHCHECK_CMD": r["healthcheck"],
        "START_ARGV": shlex.join(r["entrypoint"] + r["cmd"]),
    }
    out.update(compose(Path(sys.argv[2])))
    for k, v in out.items():
        print(f"{k}={shlex.quote(v)}")


if __name__ == "__main__":
    main()
