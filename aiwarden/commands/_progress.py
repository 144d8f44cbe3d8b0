"""A one-line progress bar on stderr, drawn only when stderr is a terminal.

Scripts and CI logs (stderr a pipe or a file) get nothing from it, so their output stays
what it was; a person at a terminal sees how far long work (log, report, import, replay)
has come. No dependency: a carriage return and a few characters.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress"]

_WIDTH = 24  # bar cells
_EVERY = 0.1  # seconds between redraws, at most


class Progress:
    """``with Progress("log fraud", total, unit="rows") as bar: bar.update(done)``.

    ``total`` 0 or None draws a counter without a bar (the amount is not known up front).
    """

    def __init__(self, label: str, total: int | None, *, unit: str = "",
                 stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.label, self.total, self.unit = label, total or None, unit
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.done = 0
        self._drawn_at = 0.0
        self._width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, done: int, *, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if self.enabled and (force or now - self._drawn_at >= _EVERY):
            self._drawn_at = now
            self._draw(self.render())

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def render(self) -> str:
        """The line as drawn, e.g. ``log fraud [##########..............]  42% 4,200/10,000
        rows``."""
        unit = f" {self.unit}" if self.unit else ""
        if self.total is None:
            return f"{self.label} {self.done:,}{unit}"
        share = min(1.0, self.done / self.total)
        cells = int(share * _WIDTH)
        return (f"{self.label} [{'#' * cells}{'.' * (_WIDTH - cells)}] {share:4.0%} "
                f"{self.done:,}/{self.total:,}{unit}")

    def close(self) -> None:
        """Clear the line, so what is printed next starts on a clean one."""
        if self.enabled and self._width:
            self._draw("")
            self.stream.write("\r")
            self.stream.flush()
            self._width = 0

    def _draw(self, line: str) -> None:
        pad = max(0, self._width - len(line))
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self._width = len(line)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False
