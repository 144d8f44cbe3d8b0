"""The demo's narration stamps: time since the first line, never backwards when a story
restarts its own clock after its setup (it printed [65s], then [41s])."""

from __future__ import annotations

import io
import re
import time

from aiwarden.demo.narration import Narrator


class _Story(Narrator):
    def __init__(self) -> None:
        self.out, self.events, self._seen = io.StringIO(), [], set()


def test_stamps_never_go_backwards_when_the_story_clock_restarts() -> None:
    story = _Story()
    story.started = time.time() - 65  # a story already 65 s in
    story.narrate("setup done")
    story.started = time.time()  # the story restarts its clock for its beats
    time.sleep(1.05)
    story.narrate("first beat")
    stamps = [float(s) for s in re.findall(r"\[\s*(\d+)s\]", story.out.getvalue())]
    assert stamps == [0.0, 1.0] and story.events == ["setup done", "first beat"]
