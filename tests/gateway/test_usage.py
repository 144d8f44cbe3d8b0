"""A gateway whose monitoring is slow keeps answering (events dropped and counted), and its
process's resource usage reaches monitoring per version, split by model time."""

from __future__ import annotations

import time

import pytest

from aiwarden.gateway import DatabaseSource, Gateway, PolicyStore, UsageReporter
from aiwarden.monitoring.service import Monitor
from aiwarden.process_usage import Prices, gpu_usage
from aiwarden.registry import Registry
from tests.gateway.models import register_pair, rows
from tests.gateway.test_events import SlowSink


def test_slow_monitoring_costs_events_never_answers(registry: Registry) -> None:
    register_pair(registry, "backpressure")
    sink = SlowSink()
    gw = Gateway("backpressure", DatabaseSource(PolicyStore(registry), "backpressure"), sink,
                 poll=0, max_queue=10, batch_size=1, flush_interval=0.01)
    feats = rows(1)[0]
    answers = [gw.predict({"features": feats, "prediction_id": f"b{i}"}) for i in range(50)]
    assert [a["version"] for a in answers] == ["1"] * 50  # every caller got an answer
    stats = gw.stats()["events"]
    # 10 events are held (waiting or inside the stuck sink); the other 40 were dropped
    assert (stats["accepted"], stats["dropped"], stats["queued"]) == (10, 40, 10)
    assert gw.events.take_dropped() == {"1": 40}
    sink.release.set()
    assert gw.flush(timeout=30)
    assert sum(len(b) for b in sink.batches) == 10 and gw.stats()["events"]["sent"] == 10
    gw.close()


def test_usage_is_split_by_model_time_and_tagged_by_version(registry: Registry,
                                                             mon: Monitor) -> None:
    register_pair(registry, "usage")
    PolicyStore(registry).set("usage", {"mode": "shadow", "challenger": "2"})
    gw = Gateway("usage", DatabaseSource(PolicyStore(registry), "usage"),
                 lambda rows: mon.log_predictions("usage", rows), poll=0)
    posted: list[tuple[str, list[dict]]] = []
    reporter = UsageReporter(lambda name, samples: posted.append((name, samples)),
                             lambda: [gw], every=0,
                             prices=Prices(cpu_core_hour=0.04, memory_gib_hour=0.005))
    for i, r in enumerate(rows(60)):
        gw.predict({"features": r, "prediction_id": f"u{i}"})
    assert gw.flush(timeout=30)
    seconds = {v: s["model_seconds"] for v, s in gw.stats()["by_version"].items()}
    time.sleep(0.05)  # a non-empty interval for the sampler
    samples = reporter.samples()["usage"]
    by_version = {s["version"]: s for s in samples}
    assert set(by_version) == {"1", "2"}
    one, two = by_version["1"], by_version["2"]
    assert one["cpu_percent"] / two["cpu_percent"] == pytest.approx(seconds["1"] / seconds["2"])
    assert one["cost"] / two["cost"] == pytest.approx(seconds["1"] / seconds["2"])
    assert one["rss_bytes"] == two["rss_bytes"] > 0  # the process's, on every version
    assert one["gateway_queue"] == 0 and one["gateway_dropped"] == 0
    assert ("gpu_utilization" in one) == bool(gpu_usage())  # absent without NVML and a GPU
    # idle: nothing predicted, so the served version carries the whole process
    idle = reporter.samples()["usage"]
    assert [s["version"] for s in idle] == ["1"]
    assert reporter.report() == 1 and posted[-1][0] == "usage"
    result = mon.log_resources("usage", samples)
    assert result.accepted == 2 and result.rejected == 0
    usage = mon.series("usage", "resources", start="-1h", end=time.time() + 3600,
                       version="2")["points"][0]["value"]
    assert usage["gauges"]["cpu_percent"]["samples"] == 1
    assert usage["cost_per_1k"] == pytest.approx(two["cost"] / 60 * 1000)
    gw.close()
