"""How a demo story speaks: timestamped lines, and a live status line on a terminal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, TextIO

__all__ = ["Narrator"]


class Narrator:
    """Mixin of the stories: ``narrate`` keeps every line (``events``, for tests) and prints
    it with the time since the first line; ``status`` rewrites one line in place, only on
    a terminal (a log gets the narration alone)."""

    out: TextIO
    events: list[str]
    _seen: set[str]

    def narrate(self, text: str) -> None:
        # Since the first line, not the story's clock: a story restarts that after its
        # setup, and the stamps went backwards ([65s], then [41s]).
        now = time.time()
        elapsed = now - self.__dict__.setdefault("_narration_start", now)
        self.events.append(text)
        self.out.write(f"\r\033[K[{int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}] {text}\n"
                       if self.out.isatty() else f"[{elapsed:6.0f}s] {text}\n")
        self.out.flush()

    def status(self, text: str) -> None:
        if self.out.isatty():
            self.out.write(f"\r\033[K  {text}")
            self.out.flush()

    def new_actions(self, timeline: list[dict[str, Any]], incident: int
                    ) -> Iterator[tuple[dict[str, Any], str]]:
        """(entry, text) of the incident's timeline actions not told yet, oldest first."""
        for e in timeline:
            text = e["detail"].get("text", "")
            k = f"timeline:{incident}:{e.get('id', text)}:{text[:40]}"
            if e["kind"] != "action" or k in self._seen:
                continue
            self._seen.add(k)
            yield e, text
