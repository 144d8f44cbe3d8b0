"""Offline drift and data-quality report: two files in, ``report.json`` and ``report.html`` out.

Load with :func:`load_table`, build the JSON-able dict with :func:`build_report` (or
:func:`report_files` from paths), write both files with :func:`write_report`. The
``aiwarden report`` command is :mod:`aiwarden.report.command`; importing it (as the CLI
does) does not load the engine, which loads on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["build_report", "load_table", "render_html", "report_files", "write_report"]

_LAZY = {"build_report": "build", "load_table": "build", "report_files": "build",
         "write_report": "build", "render_html": "html"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aiwarden.report' has no attribute {name!r}")
    value = getattr(import_module(f"aiwarden.report.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
