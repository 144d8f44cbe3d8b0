"""Downsampling: minute partials past N days and hourly ones past a year are deleted, and
every drift/performance answer over windows aligned to the level kept is the same before
and after (SQLite and PostgreSQL, through the monitoring service and a real server)."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from sqlalchemy import func, select

from aiwarden.errors import ParameterError
from aiwarden.monitoring.retention import RetentionPolicy
from aiwarden.monitoring.service import Monitor, MonitorSettings
from aiwarden.server.settings import ServerSettings
from aiwarden.store.database import Database
from aiwarden.store.tables import bucket_profiles, models, segment_profiles
from tests.server.live import ThreadServer, settings_for
from tests.server.test_metrics import frame, parquet, rows_json

DAY, HOUR = 86400, 3600
TODAY = int(time.time()) // DAY * DAY
AGES = {"recent": TODAY - 2 * DAY, "hours": TODAY - 60 * DAY, "days": TODAY - 400 * DAY}
METRICS = ("drift", "performance", "volume", "quality")


@pytest.fixture(scope="module")
def monitor(db_url: str) -> Iterator[Monitor]:
    """No maintenance thread: downsampling runs when the test says so."""
    db = Database(db_url)
    db.migrate()
    try:
        yield Monitor(db, MonitorSettings(minute_retention_days=30, hour_retention_days=365))
    finally:
        db.dispose()


@pytest.fixture(scope="module")
def loaded(monitor: Monitor) -> str:
    """One model's traffic at every age, shared by the service tests (ingest is the cost)."""
    name = f"ds-{uuid.uuid4().hex[:8]}"
    traffic(monitor, name)
    return name


def by_level(m: Monitor, name: str, table=bucket_profiles) -> dict[tuple[int, str], int]:
    """Partials per (level, age) of one model."""
    with m.db.read() as conn:
        model_id = conn.execute(select(models.c.id).where(models.c.name == name)).scalar_one()
        got = conn.execute(select(table.c.level, table.c.start, func.count())
                           .where(table.c.model_id == model_id)
                           .group_by(table.c.level, table.c.start)).all()
    out: dict[tuple[int, str], int] = {}
    for level, start, n in got:
        age = min(AGES, key=lambda k: abs(start - AGES[k] - HOUR))
        out[(level, age)] = out.get((level, age), 0) + n
    return out


def traffic(m: Monitor, name: str, ages: tuple[str, ...] = tuple(AGES),
            segments: bool = True) -> None:
    """300 rows in each age's day (1 h to 3 h 20 after midnight), the oldest drifted, a
    third labelled; ``segments`` on c, so segment partials are downsampled too. A caller
    that reads only some ages (or no segment) leaves the rest out: ingest is the cost."""
    m.create_model(name, segment_columns=["c"] if segments else None)
    m.upload_reference(name, "v1", pq.read_table(io.BytesIO(parquet(frame(2000, seed=0)))),
                       {"target": "y", "prediction": "pred", "scores": "score"})
    for i, (age, day) in enumerate(AGES.items()):
        if age not in ages:
            continue
        df = frame(300, seed=i + 1, amount_scale=2.0 if age == "days" else 1.0)
        df["ts"] = day + HOUR + np.arange(len(df)) * 40.0
        df["pid"] = [f"{age}-{j}" for j in range(len(df))]
        df["latency"] = 5.0
        assert m.log_predictions(name, rows_json(df)).accepted == len(df)
        m.log_labels(name, [{"prediction_id": p, "label": int(y)}
                            for p, y in zip(df.pid[::3], df.y[::3], strict=True)])


def answers(m: Monitor, name: str) -> list[dict]:
    """Every metric over windows aligned to the level kept at each age."""
    out = []
    for metric in METRICS:
        out.append(m.series(name, metric, start=AGES["days"], end=AGES["days"] + DAY,
                            step="1d"))
        out.append(m.series(name, metric, start=AGES["hours"], end=AGES["hours"] + DAY,
                            step="1h"))
        out.append(m.series(name, metric, start=AGES["recent"] + HOUR,
                            end=AGES["recent"] + 2 * HOUR, step="10m"))
        out.append(m.series(name, metric, start=TODAY - 400 * DAY, end=TODAY + DAY,
                            step="30d"))
        out.append(m.series(name, metric, start=AGES["hours"], end=AGES["hours"] + DAY,
                            step="1h", segment="c=a"))
    out.append(m.compare(name, start=AGES["hours"] + HOUR, end=AGES["hours"] + 5 * HOUR,
                         baseline_start=AGES["days"], baseline_end=AGES["days"] + DAY))
    return out


def test_answers_are_the_same_after_downsampling(monitor: Monitor, loaded: str) -> None:
    m, name = monitor, loaded
    before = answers(m, name)
    # the answers hold the data: 300 rows a day, the old day drifted on amount only
    assert [p["rows"] for p in before[0]["points"]] == [300]
    assert before[0]["points"][0]["value"]["drifted_features"] == ["amount"]
    assert sum(p["rows"] for p in before[1]["points"]) == 300
    assert before[1]["points"][1]["rows"] == 90
    assert before[1]["points"][1]["value"]["drifted_features"] == []
    assert sum(p["rows"] for p in before[3]["points"]) == 900
    perf = before[5]["points"][0]["value"]
    assert perf is not None
    levels = by_level(m, name)
    seg_levels = by_level(m, name, segment_profiles)
    assert levels[(60, "days")] and levels[(3600, "days")] and levels[(60, "hours")]

    removed = m.downsample()
    assert removed > 0
    after_levels, after_seg = by_level(m, name), by_level(m, name, segment_profiles)
    # minutes and 10 minutes past 30 days are gone, hours past a year; days stay
    for table_before, table_after in ((levels, after_levels), (seg_levels, after_seg)):
        for (level, age), n in table_before.items():
            gone = (level < HOUR and age != "recent") or (level < DAY and age == "days")
            assert table_after.get((level, age), 0) == (0 if gone else n), (level, age)
    assert answers(m, name) == before
    assert m.downsample() == 0  # idempotent


def test_finer_windows_in_old_ranges_widen_to_the_level_kept(monitor: Monitor,
                                                             loaded: str) -> None:
    m, name = monitor, loaded
    m.downsample()
    assert not by_level(m, name).get((60, "hours"))
    # 17 minutes past the hour: the window starts at the hour minute partials were merged in
    got = m.compare(name, start=AGES["hours"] + HOUR + 17 * 60, end=AGES["hours"] + 2 * HOUR)
    assert got["window"]["start"].endswith("01:00:00Z") and got["window"]["rows"] == 90
    s = m.series(name, "volume", start=AGES["hours"] + HOUR, end=AGES["hours"] + 3 * HOUR,
                 step="20m")
    assert "downsampled" in s and "1h" in s["downsampled"]
    full = [p for p in s["points"] if p["start"] != p["end"]]
    empty = [p for p in s["points"] if p["start"] == p["end"]]
    assert [p["rows"] for p in full] == [90, 90] and len(empty) == 4
    assert all("downsampled" in p["reason"] for p in empty)
    assert "older than 30 days" in s["downsampled"]
    # past a year only days are kept: an hourly series there is one daily point
    d = m.series(name, "volume", start=AGES["days"], end=AGES["days"] + DAY, step="1h")
    assert "older than 365 days" in d["downsampled"] and "1d" in d["downsampled"]
    assert [p["rows"] for p in d["points"] if p["rows"]] == [300]
    # recent data keeps its minutes
    r = m.series(name, "volume", start=AGES["recent"] + HOUR, end=AGES["recent"] + HOUR + 600,
                 step="1m")
    assert "downsampled" not in r and [p["rows"] for p in r["points"]] == [2, 1] * 5


def test_policy_refuses_hours_kept_shorter_than_minutes() -> None:
    with pytest.raises(ParameterError) as e:
        RetentionPolicy(minute_days=30, hour_days=7)
    assert e.value.field == "hour_days"
    with pytest.raises(ParameterError) as e:
        RetentionPolicy(minute_days=-1)
    assert e.value.field == "minute_days"
    forever = RetentionPolicy(minute_days=0, hour_days=0)
    assert forever.cutoffs((60, 600, 3600, 86400), time.time()) == {}
    # in whole units of the next level kept longer, one short of the horizon
    cut = RetentionPolicy(30, 365).cutoffs((60, 600, 3600, 86400), 1000 * DAY + 5)
    assert cut == {60: 970 * DAY - HOUR, 600: 970 * DAY - HOUR, 3600: 634 * DAY}


def test_the_lease_holder_downsamples_and_http_answers_stay(db_url: str, tmp_path: Path
                                                            ) -> None:
    """A real server: the first one takes traffic; a second one on the store (it holds the
    lease once the first released it) downsamples at its first maintenance tick."""
    name = f"ds-http-{uuid.uuid4().hex[:8]}"
    windows = [{"start": AGES["days"], "end": AGES["days"] + DAY, "step": "1d"},
               {"start": AGES["hours"], "end": AGES["hours"] + DAY, "step": "1h"}]

    def read(http: httpx.Client) -> list[dict]:
        out = []
        for metric in ("drift", "performance"):
            for w in windows:
                r = http.get(f"/models/{name}/metrics", params={"metric": metric, **w})
                assert r.status_code == 200, r.text
                out.append(r.json())
        return out

    with ThreadServer(settings_for(db_url, tmp_path, compact_every=3600)) as srv, \
            httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as http:
        # only the ages and metrics read here: no recent day, no segment (the service
        # tests above cover those); the seeds stay those of the full traffic
        traffic(srv.server.config.app.state.monitor, name, ages=("hours", "days"),
                segments=False)
        before = read(http)
        assert before[0]["points"][0]["rows"] == 300
    with ThreadServer(settings_for(db_url, tmp_path, compact_every=0.2)) as srv, \
            httpx.Client(base_url=srv.url + "/api/v1", timeout=60) as http:
        m: Monitor = srv.server.config.app.state.monitor
        deadline = time.monotonic() + 60
        while by_level(m, name).get((60, "hours")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not by_level(m, name).get((60, "hours"))
        assert by_level(m, name).get((86400, "days"))
        assert read(http) == before


def test_settings_name_the_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIWARDEN_HOUR_RETENTION_DAYS", "-3")
    with pytest.raises(ParameterError) as e:
        ServerSettings.from_env()
    assert e.value.field == "AIWARDEN_HOUR_RETENTION_DAYS"
    monkeypatch.setenv("AIWARDEN_HOUR_RETENTION_DAYS", "400")
    monkeypatch.setenv("AIWARDEN_MINUTE_RETENTION_DAYS", "7")
    s = ServerSettings.from_env()
    assert (s.minute_retention_days, s.hour_retention_days) == (7.0, 400.0)
