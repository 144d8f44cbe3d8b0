"""The curl examples in README.md and docs/ that send a JSON body say so: the server answers
415 to a body without a JSON Content-Type (curl's -d sends form-urlencoded)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SENDS_JSON = re.compile(r"\s(-d|--data(-binary|-raw)?)\b")


def _curl_commands() -> list[tuple[str, str]]:
    """(file:line, command) of every curl command, continuation lines joined."""
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            if re.search(r"(^|\s)curl\s", lines[i]):
                where, cmd = f"{path.relative_to(ROOT)}:{i + 1}", lines[i]
                # a line ending in "\" continues, and so does an open single quote
                while (cmd.rstrip().endswith("\\") or cmd.count("'") % 2) and i + 1 < len(lines):
                    i += 1
                    cmd += "\n" + lines[i]
                out.append((where, cmd))
            i += 1
    return out


def test_every_curl_example_sending_a_body_names_its_content_type() -> None:
    commands = _curl_commands()
    assert len(commands) >= 5
    missing = [where for where, cmd in commands
               if SENDS_JSON.search(cmd) and not re.search(r"content-type", cmd, re.I)]
    assert not missing, f"curl examples sending a body without -H 'content-type: ...': {missing}"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl command")
def test_the_llm_guide_creates_its_model_as_written(tmp_path: Path) -> None:
    from tests.server.live import ThreadServer, settings_for

    [(_, cmd)] = [(w, c) for w, c in _curl_commands()
                  if w.startswith("docs/llm.md") and "-X POST $AW/api/v1/models " in c]
    with ThreadServer(settings_for(f"sqlite:///{tmp_path / 'a.db'}", tmp_path)) as server:
        done = subprocess.run(["bash", "-c", cmd + " -sS -w '\\n%{http_code}'"],
                              env={"AW": server.url, "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=60)
        assert done.stdout.rstrip().endswith("201"), (done.stdout, done.stderr)
        import httpx

        model = httpx.get(f"{server.url}/api/v1/models/support-bot").json()
        assert model["task"] == "text_generation"
