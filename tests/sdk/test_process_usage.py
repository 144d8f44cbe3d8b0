"""Process resource samples: CPU against a busy loop, RSS against /proc, and prices (the
SDK call against a real server is in tests/server/test_errors_resources.py)."""

from __future__ import annotations

import sys
import time
import types

import pytest

from aiwarden.process_usage import Prices, ProcessSampler, gpu_reading, gpu_usage, rss_bytes


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


def test_without_nvml_there_are_no_gpu_gauges_and_the_reason_says_why(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    sampler = ProcessSampler()
    assert "gpu_utilization" not in sampler.sample()
    assert sampler.gpu_reason == "pynvml is not installed: pip install 'aiwarden[gpu]'"


def test_real_nvml_without_a_driver_degrades_with_its_error() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        gauges, reason = gpu_reading()
        assert gauges == {} and reason.startswith("NVML did not start: ")
    else:  # pragma: no cover - a machine with a GPU: whatever it reports is well formed
        pynvml.nvmlShutdown()
        assert set(gpu_usage()) <= {"gpu_utilization", "gpu_memory_bytes", "gpu_count"}


class _FakeNVML(types.ModuleType):
    """The slice of pynvml's API that gpu_reading calls, over fixed devices (no GPU here)."""

    def __init__(self, devices: list[tuple[float, float]], fail_init: bool = False) -> None:
        super().__init__("pynvml")
        self.devices, self.fail_init, self.open = devices, fail_init, 0

    def nvmlInit(self) -> None:
        if self.fail_init:
            raise RuntimeError("Driver Not Loaded")
        self.open += 1

    def nvmlShutdown(self) -> None:
        self.open -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetUtilizationRates(self, h: int) -> types.SimpleNamespace:
        return types.SimpleNamespace(gpu=self.devices[h][0], memory=0)

    def nvmlDeviceGetMemoryInfo(self, h: int) -> types.SimpleNamespace:
        if self.devices[h][1] < 0:
            raise RuntimeError("GPU is lost")
        return types.SimpleNamespace(used=self.devices[h][1], total=2**35, free=0)


def test_gpu_gauges_average_utilisation_sum_memory_and_price_each_gpu(monkeypatch) -> None:
    nvml = _FakeNVML([(30.0, 2.0 * 2**30), (70.0, 1.0 * 2**30)])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    sampler = ProcessSampler(Prices(gpu_hour=3600.0))  # 1 per GPU-second
    time.sleep(0.05)
    sample = sampler.sample()
    assert sample["gpu_utilization"] == 50.0 and sample["gpu_memory_bytes"] == 3.0 * 2**30
    assert "gpu_count" not in sample and sampler.gpu_reason is None
    assert sample["cost"] >= 2 * 0.05  # two GPUs priced for the interval
    assert nvml.open == 0  # every init is shut down


@pytest.mark.parametrize(("nvml", "reason"), [
    (_FakeNVML([], fail_init=True), "NVML did not start: Driver Not Loaded"),
    (_FakeNVML([]), "NVML sees no GPU"),
    (_FakeNVML([(10.0, 1.0), (20.0, -1.0)]), "NVML could not read the GPUs: GPU is lost"),
])
def test_gpu_problems_leave_the_gauges_out_with_a_reason(monkeypatch, nvml, reason) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert gpu_reading() == ({}, reason)
    assert nvml.open == 0


def test_a_gpu_sampler_imports_nvml_when_made_not_at_its_first_sample() -> None:
    """The binding's first import holds the GIL 50-250 ms: on the sampling thread of a
    serving process it stalled the requests in flight, so it happens at start-up."""
    pytest.importorskip("pynvml")
    sys.modules.pop("pynvml", None)
    ProcessSampler(gpu=False)
    assert "pynvml" not in sys.modules
    ProcessSampler()
    assert "pynvml" in sys.modules
