"""Process resource samples: CPU against a busy loop, RSS against /proc, and prices (the
SDK call against a real server is in tests/server/test_errors_resources.py)."""

from __future__ import annotations

import time

import pytest

from aiwarden.process_usage import Prices, ProcessSampler, gpu_usage, rss_bytes


def _vm_rss() -> float:
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmRSS:"))
    return float(line.split()[1]) * 1024


def test_rss_matches_the_kernel_and_follows_an_allocation() -> None:
    before = rss_bytes()
    assert before == pytest.approx(_vm_rss(), rel=0.05)
    block = bytearray(200 * 2**20)  # touched pages count, untouched ones need not
    block[:: 4096] = b"x" * len(block[:: 4096])
    assert rss_bytes() - before > 150 * 2**20
    del block


def test_cpu_percent_sees_a_busy_loop_and_an_idle_wait() -> None:
    sampler = ProcessSampler(gpu=False)
    end = time.perf_counter() + 0.4
    while time.perf_counter() < end:
        pass
    busy = sampler.sample()["cpu_percent"]
    time.sleep(0.4)
    idle = sampler.sample()["cpu_percent"]
    assert busy > 30 and idle < busy / 2


def test_prices_turn_usage_into_a_cost_per_interval() -> None:
    p = Prices(cpu_core_hour=0.05, memory_gib_hour=0.01, gpu_hour=2.0)
    assert p.cost(3600, 200.0, 2 * 2**30, 1) == pytest.approx(0.1 + 0.02 + 2.0)
    sample = ProcessSampler(p, gpu=False).sample(version="v3")
    assert sample["version"] == "v3" and sample["cost"] >= 0
    assert set(sample) == {"timestamp", "cpu_percent", "rss_bytes", "cost", "version"}


def test_without_nvml_there_are_no_gpu_gauges() -> None:
    try:
        import pynvml  # noqa: F401
    except ImportError:
        assert gpu_usage() == {}
        assert "gpu_utilization" not in ProcessSampler().sample()
    else:  # pragma: no cover - a machine with NVML: whatever it reports is well formed
        assert set(gpu_usage()) <= {"gpu_utilization", "gpu_memory_bytes", "gpu_count"}
