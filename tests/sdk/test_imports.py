"""The SDK's modules import each other without a cycle (client <-> logger <-> registry was
one, hidden by imports inside functions): every run-time import counts, lazy ones included;
``if TYPE_CHECKING:`` imports do not run."""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

SDK = Path(__file__).resolve().parents[2] / "aiwarden" / "sdk"


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SDK.glob("*.py"):
        name = f"aiwarden.sdk.{path.stem}" if path.stem != "__init__" else "aiwarden.sdk"
        deps = graph.setdefault(name, set())
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for stmt in tree.body if isinstance(stmt, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(stmt.test) for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:  # annotations only: nothing imported at run time
                continue
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            deps.update(t for t in targets if t.startswith("aiwarden.sdk.")
                        and (SDK / f"{t.rsplit('.', 1)[1]}.py").exists())
    return graph


def test_the_sdk_modules_form_no_import_cycle() -> None:
    graph = _graph()
    assert {"aiwarden.sdk._errors", "aiwarden.sdk.logger"} <= graph["aiwarden.sdk.client"]
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {exc.args[1]}") from None
    assert order.index("aiwarden.sdk._errors") < order.index("aiwarden.sdk.client")


def test_each_sdk_module_imports_on_its_own() -> None:
    """Fresh interpreters: any module first, as a user's code might."""
    for module in ("aiwarden.sdk.logger", "aiwarden.sdk.registry", "aiwarden.sdk.client"):
        out = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
