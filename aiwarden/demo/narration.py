"""How a demo story speaks: timestamped lines, and a live status line on a terminal."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

import httpx

log = logging.getLogger("aiwarden.demo")

__all__ = ["Narrator", "ServerStory"]


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


class ServerStory(Narrator):
    """A story told through a server's API from a thread: set up once (``_setup`` says whether
    the server was fresh), then ``_loop`` until stopped; a failure is one line, not the end
    of the server."""

    SETUP_LINE = "Setting up..."
    url: str
    api_key: str | None
    started: float
    stop_event: threading.Event

    def say(self, text: str) -> None:
        raise NotImplementedError

    def _setup(self, http: httpx.Client) -> bool:
        raise NotImplementedError

    def _loop(self, http: httpx.Client, fresh: bool) -> None:
        raise NotImplementedError

    def run(self) -> None:
        self.started = time.time()
        try:
            with httpx.Client(base_url=self.url + "/api/v1", timeout=60,
                              headers={"Authorization": f"Bearer {self.api_key}"}
                              if self.api_key else {}) as http:
                self.say(self.SETUP_LINE)
                fresh = self._setup(http)
                self.started = time.time()
                self._loop(http, fresh)
        except Exception:
            if self.stop_event.wait(2.0):  # the server shut down under it: no error
                return
            log.exception("the demo story stopped")
            self.say("The demo story stopped on an error (see the log); the server goes on.")
