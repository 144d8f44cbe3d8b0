"""The README's Python examples run as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text()
    first_block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_python_examples_run(tmp_path: Path) -> None:
    """Every block runs as written; the SDK example against a real server of its own."""
    from tests.server.live import ThreadServer, settings_for

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 2
    out = io.StringIO()
    url = f"sqlite:///{tmp_path / 'readme.db'}"
    with ThreadServer(settings_for(url, tmp_path)) as server, contextlib.redirect_stdout(out):
        for block in blocks:
            block = block.replace("http://127.0.0.1:8000", server.url)
            exec(compile(block, str(README), "exec"), {})
    text = out.getvalue()
    assert "amount" in text and "hour" in text
    assert "'accepted': 5000" in text and "\n5000\n" in text  # the retry: all duplicates
