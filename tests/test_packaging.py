"""Packaging: every package aiwarden imports is declared, optional ones are imported lazily.

The scan reads aiwarden/ with ``ast`` (no import side effects): each third-party top-level
name must map to a distribution in ``[project] dependencies`` or in an extra; an import of
an extra's package must sit inside a function (never at module level), and its module must
name the extra (``aiwarden[registry]``) in the message it gives when the package is missing.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aiwarden"
# Import names whose distribution is not installed here, or differs from the import name.
KNOWN = {"pynvml": "nvidia-ml-py", "yaml": "pyyaml", "sklearn": "scikit-learn",
         "skops": "skops", "mlflow": "mlflow-skinny", "multipart": "python-multipart",
         "opentelemetry": "opentelemetry-proto",  # a namespace many distributions share
         "ahocorasick": "pyahocorasick"}
# Optional packages whose absence is not an error: the feature degrades and says so in its
# docstring (no GPU gauges; onnxruntime refuses external tensors by itself).
DEGRADES = {"pynvml", "onnx"}
EXTRA_ONLY = {"dev"}  # not a user-facing extra: never the one a message should name


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], dict[str, str]]:
    """(core distributions, {distribution: user-facing extra})."""
    project = _pyproject()
    core = {_norm(Requirement(r).name) for r in project["dependencies"]}
    extras: dict[str, str] = {}
    for extra, reqs in project["optional-dependencies"].items():
        if extra in EXTRA_ONLY:
            continue
        for r in reqs:
            extras.setdefault(_norm(Requirement(r).name), extra)
    return core, extras


@functools.cache
def _installed() -> dict[str, list[str]]:
    return md.packages_distributions()


def _distribution(top: str) -> str:
    if top in KNOWN:
        return _norm(KNOWN[top])
    dists = _installed().get(top)
    assert dists, f"{top} is imported by aiwarden but no installed distribution provides it"
    return _norm(dists[0])


@functools.cache
def _imports() -> list[tuple[Path, str, bool]]:
    """(file, third-party top-level name, imported at module level)."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        top_level = {id(n) for n in tree.body}
        for stmt in tree.body:  # `if TYPE_CHECKING:` blocks import nothing at run time
            if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
                top_level |= {id(n) for n in ast.walk(stmt)}
                for n in ast.walk(stmt):
                    n._type_only = True  # type: ignore[attr-defined]
        for node in ast.walk(tree):
            if getattr(node, "_type_only", False):
                continue
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "aiwarden" and top not in sys.stdlib_module_names:
                    out.append((path, top, id(node) in top_level))
    return out


def test_every_imported_package_is_declared():
    core, extras = _declared()
    undeclared = sorted({f"{top} ({_distribution(top)}) in {p.relative_to(ROOT)}"
                         for p, top, _ in _imports()
                         if _distribution(top) not in core | set(extras)})
    assert not undeclared, "imported but not declared in pyproject: " + "; ".join(undeclared)


def test_optional_packages_are_imported_lazily_and_name_their_extra():
    core, extras = _declared()
    problems = []
    for path, top, module_level in _imports():
        dist = _distribution(top)
        if dist in core:
            continue
        extra = extras[dist]
        where = path.relative_to(ROOT)
        if module_level:
            problems.append(f"{where} imports optional {top} at module level")
        elif top not in DEGRADES and f"aiwarden[{extra}]" not in path.read_text():
            problems.append(f"{where} imports {top} without naming 'aiwarden[{extra}]'")
    assert not problems, "\n".join(problems)


def test_the_scan_sees_known_imports():
    """The scan is not vacuous: it finds a core, an optional and a lazily imported package."""
    found = {(p.name, top, level) for p, top, level in _imports()}
    assert ("drift.py", "numpy", True) in found
    assert ("process_usage.py", "pynvml", False) in found
    assert ("formats.py", "skops", False) in found


def test_installed_versions_satisfy_the_declared_lower_bounds():
    """The suite runs on what pyproject allows: a bound above what is tested cannot hide."""
    project = _pyproject()
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    unmet = []
    for r in map(Requirement, reqs):
        try:
            version = md.version(r.name)
        except md.PackageNotFoundError:
            continue  # an extra not installed here (tests skip what needs it)
        if not r.specifier.contains(version, prereleases=True):
            unmet.append(f"{r.name} {version} does not satisfy {r.specifier}")
    assert not unmet, unmet


def test_missing_skops_names_the_registry_extra(monkeypatch):
    from sklearn.linear_model import LogisticRegression

    from aiwarden.sdk.registry import _artifact

    monkeypatch.setitem(sys.modules, "skops", None)  # `import skops.io` now raises ImportError
    monkeypatch.setitem(sys.modules, "skops.io", None)
    with pytest.raises(ImportError, match=re.escape("aiwarden[registry]")):
        _artifact(LogisticRegression(), None, None)


def test_the_distribution_ships_the_license_and_py_typed():
    """Issue 12 (hygiene): the Apache-2.0 LICENSE travels in the wheel's metadata and the
    package says it is typed (``py.typed`` as package data, and present)."""
    meta = md.metadata("aiwarden")
    assert meta["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in (meta.get_all("License-File") or [])
    assert (ROOT / "LICENSE").read_text().lstrip().startswith("Apache License")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert "py.typed" in data["package-data"]["aiwarden"] and (PACKAGE / "py.typed").is_file()
