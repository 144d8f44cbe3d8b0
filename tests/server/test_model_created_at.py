"""``POST /models`` answers the ``created_at`` it stored (outside review, finding 13: it
read the clock twice, so the answer and ``GET /models/{name}`` disagreed by a millisecond).
A real server, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid


def test_created_at_answered_is_the_one_stored(http) -> None:
    for _ in range(3):  # two clock reads differ almost always; three tries make it certain
        name = f"ts-{uuid.uuid4().hex[:8]}"
        made = http.post("/models", json={"name": name})
        assert made.status_code == 201, made.text
        stored = http.get(f"/models/{name}").json()
        assert made.json()["created_at"] == stored["created_at"]
        listed = {m["name"]: m for m in http.get("/models").json()}
        assert listed[name]["created_at"] == made.json()["created_at"]
