"""Cron schedules of training pipelines (croniter parses; nothing hand-parsed), in UTC."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["check_cron", "due_between", "next_after"]


def check_cron(expr: str) -> None:
    """Raise ValueError naming the problem unless ``expr`` is a valid 5-field cron line."""
    from croniter import croniter

    if len(expr.split()) != 5:
        raise ValueError(f"schedule must be a 5-field cron line (minute hour day month "
                         f"weekday), e.g. '0 3 * * *'; got {expr!r}")
    if not croniter.is_valid(expr):
        raise ValueError(f"schedule {expr!r} is not a valid cron line")


def next_after(expr: str, after: float) -> float:
    """The first instant strictly after ``after`` (epoch seconds) that ``expr`` names."""
    from croniter import croniter

    start = datetime.fromtimestamp(after, UTC)
    return float(croniter(expr, start).get_next(float))


def due_between(expr: str, since: float, now: float) -> float | None:
    """The latest scheduled instant in ``(since, now]``, or None: a server that slept through
    several slots starts one run, not one per missed slot."""
    if next_after(expr, since) > now:
        return None
    from croniter import croniter

    # cron names whole minutes: the latest slot <= now is the one before now + 1 s
    return float(croniter(expr, datetime.fromtimestamp(now + 1, UTC)).get_prev(float))
