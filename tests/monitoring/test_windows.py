"""Windows: cover() tiles a window exactly with the widest aligned rollups; time parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiwarden.errors import ParameterError
from aiwarden.monitoring.windows import cover, levels_for, parse_duration, parse_instant, to_iso

DAY, HOUR = 86400, 3600
BUCKETS = [1, 10, 60, 300, 900, 1800, 3600, 7200, 86400]


@st.composite
def aligned_windows(draw: st.DrawFn) -> tuple[int, int, tuple[int, ...]]:
    b = draw(st.sampled_from(BUCKETS))
    levels = levels_for(b)
    k = draw(st.integers(0, 2_000_000_000 // b))
    span = draw(st.one_of(st.integers(0, 3 * DAY // b), st.integers(0, 90 * DAY // b)))
    return k * b, (k + span) * b, levels


def test_levels_for_adds_hour_and_day_only_when_they_are_multiples() -> None:
    assert levels_for(60) == (60, 600, HOUR, DAY)
    assert levels_for(3600) == (HOUR, DAY)
    assert levels_for(7200) == (7200, DAY)
    assert levels_for(DAY) == (DAY,)
    assert levels_for(7) == (7,)  # 3600 is not a multiple of 7
    assert levels_for(900) == (900, HOUR, DAY)


@settings(max_examples=400, deadline=None)
@given(aligned_windows())
def test_cover_tiles_the_window_exactly_without_overlap(
        window: tuple[int, int, tuple[int, ...]]) -> None:
    start, end, levels = window
    ranges = cover(start, end, levels)
    if end <= start:
        assert ranges == []
        return
    for level, lo, hi in ranges:
        assert level in levels
        assert lo < hi, (level, lo, hi)
        # each range is a run of whole, aligned rollups of its level
        assert lo % level == 0 and hi % level == 0
    # ranges in order are contiguous: no gap, no overlap, and exactly [start, end)
    spans = sorted((lo, hi) for _, lo, hi in ranges)
    assert spans[0][0] == start and spans[-1][1] == end
    for (_, hi), (lo, _) in pairwise(spans):
        assert hi == lo
    assert sum(hi - lo for _, lo, hi in ranges) == end - start


@settings(max_examples=300, deadline=None)
@given(aligned_windows())
def test_cover_uses_the_widest_rollups_that_fit(
        window: tuple[int, int, tuple[int, ...]]) -> None:
    start, end, levels = window
    ranges = cover(start, end, levels)
    for i, wide in enumerate(levels[1:], start=1):
        first_full = -(-start // wide) * wide
        has_full = first_full + wide <= end
        narrower = [(lo, hi) for lvl, lo, hi in ranges if lvl < wide]
        if has_full:
            # a whole aligned rollup of this width fits: the narrower levels only fill the
            # ragged edges, each shorter than one rollup of this width
            assert any(lvl >= wide for lvl, _, _ in ranges)
            left = sum(hi - lo for lo, hi in narrower if hi <= first_full)
            right = sum(hi - lo for lo, hi in narrower if lo >= first_full)
            assert left < wide and right < wide, (levels[i], left, right)
        else:
            assert not any(lvl >= wide for lvl, _, _ in ranges)


def test_thirty_days_of_minutes_read_as_days_plus_edges() -> None:
    levels = levels_for(60)
    start = 1_700_000_000 // 60 * 60 + 17 * 60  # not hour-aligned
    end = start + 30 * DAY + 5 * HOUR + 3 * 60
    ranges = cover(start, end, levels)
    n_rows = sum((hi - lo) // lvl for lvl, lo, hi in ranges)
    day_rows = sum((hi - lo) // lvl for lvl, lo, hi in ranges if lvl == DAY)
    assert day_rows >= 29
    assert n_rows < 29 + 2 * 24 + 2 * 60  # not 43,000 minute buckets
    assert cover(start, start, levels) == [] and cover(end, start, levels) == []


@pytest.mark.parametrize(("text", "seconds"), [
    ("5m", 300), ("1h", 3600), ("1d", 86400), ("2w", 2 * 604800), ("90", 90), ("90s", 90),
    (" 15m ", 900), (45, 45), (60.0, 60), ("3600", 3600),
])
def test_parse_duration_accepts(text: str | int | float, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["abc", "5x", "-5m", "1.5h", "", "h", "0", "0m", 0, -60,
                                 "1h30m", "5 minutes", True])
def test_parse_duration_rejects_with_the_field_named(bad: object) -> None:
    with pytest.raises(ParameterError) as info:
        parse_duration(bad, "step")  # type: ignore[arg-type]
    assert info.value.field == "step"
    assert "step" in str(info.value)


T = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-25T10:00:00Z", T),
    ("2026-11-25T10:00:00+00:00", T),
    ("2026-11-25T12:00:00+02:00", T),
    ("2026-11-25T05:30:00-04:30", T),
    ("2026-11-25T10:00:00", T),  # naive = UTC
    ("2026-11-25T10:00:00.250Z", T + 0.25),
    ("2026-11-25 10:00:00Z", T),
    ("2026-11-25", T - 10 * HOUR),
    (str(int(T)), T),
    (f"{T + 0.5}", T + 0.5),
    (T, T),
    (int(T), T),
    (0, 0.0),
    (datetime(2026, 11, 25, 10, 0), T),
    (datetime(2026, 11, 25, 11, 0, tzinfo=timezone(timedelta(hours=1))), T),
])
def test_parse_instant_accepts(value: object, expected: float) -> None:
    assert parse_instant(value) == pytest.approx(expected, abs=1e-6)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01T00:00:00Z", "2026-11-25T25:00Z",
                                 "", "  ", "10:00", "nan", "inf", "-inf", "1e400",
                                 float("nan"), float("inf"), "2026-11-25T10:00:00Q"])
def test_parse_instant_rejects_with_the_field_named(bad: object) -> None:
    with pytest.raises(ParameterError) as info:
        parse_instant(bad, "start")  # type: ignore[arg-type]
    assert info.value.field == "start"
    assert "start" in str(info.value)


def test_to_iso_round_trips_through_parse_instant() -> None:
    for ts in (0.0, T, T + 0.125, 1.7e9):
        assert parse_instant(to_iso(ts)) == pytest.approx(ts, abs=1e-6)
    assert to_iso(T) == "2026-11-25T10:00:00Z"


@pytest.mark.parametrize("bad", [1e300, "1e300", -1e13, "99999999999999",
                                 "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_parse_instant_rejects_times_no_window_can_print(bad: object) -> None:
    with pytest.raises(ParameterError, match="end: not a plausible time") as info:
        parse_instant(bad, "end")  # type: ignore[arg-type]
    assert info.value.field == "end"
