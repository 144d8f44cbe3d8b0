"""What a serving process uses: CPU, resident memory and, when there is one, the GPU.

A :class:`ProcessSampler` turns two readings into a resource sample as
``POST /models/{name}/resources`` takes it. CPU is the process's CPU time over wall time
(100 = one core busy), RSS comes from ``/proc`` (or ``getrusage``'s peak elsewhere), GPU
utilisation and memory from NVML when ``pynvml`` (``pip install 'aiwarden[gpu]'``) and a GPU
are present; without them the GPU gauges are left out and :attr:`ProcessSampler.gpu_reason`
says why. An optional price list turns usage into a ``cost`` for
the interval, so the server can report cost per 1,000 predictions.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Prices", "ProcessSampler", "gpu_reading", "gpu_usage", "rss_bytes"]


@dataclass(frozen=True)
class Prices:
    """Prices per hour, in any one currency: a core, a GiB of memory, a whole GPU."""

    cpu_core_hour: float = 0.0
    memory_gib_hour: float = 0.0
    gpu_hour: float = 0.0

    def cost(self, seconds: float, cpu_percent: float, rss: float, gpus: int) -> float:
        hours = seconds / 3600
        return hours * (self.cpu_core_hour * cpu_percent / 100
                        + self.memory_gib_hour * rss / 2**30 + self.gpu_hour * gpus)


def rss_bytes() -> float:
    """Resident memory now (Linux), else the peak resident size getrusage reports."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return float(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return float(peak if sys.platform == "darwin" else peak * 1024)


def gpu_usage() -> dict[str, float]:
    """Utilisation (%) and memory used (bytes) summed over the visible GPUs; {} without."""
    return gpu_reading()[0]


def gpu_reading() -> tuple[dict[str, float], str | None]:
    """``(gauges, reason)``: the GPU gauges, or ``{}`` and why there are none.

    NVML is optional (``pip install 'aiwarden[gpu]'``); without it, its driver or a GPU the
    sample simply has no GPU gauges, and the reason says which of the three is missing.
    """
    try:
        import pynvml  # optional: nvidia-ml-py, the 'aiwarden[gpu]' extra
    except ImportError:
        return {}, "pynvml is not installed: pip install 'aiwarden[gpu]'"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # no driver, no GPU: degrade to CPU-only samples
        return {}, f"NVML did not start: {exc or type(exc).__name__}"
    try:
        n = pynvml.nvmlDeviceGetCount()
        util = mem = 0.0
        for i in range(n):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            util += float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)
            mem += float(pynvml.nvmlDeviceGetMemoryInfo(h).used)
    except Exception as exc:  # a device that stops answering: no partial sums
        return {}, f"NVML could not read the GPUs: {exc or type(exc).__name__}"
    finally:
        pynvml.nvmlShutdown()
    if not n:
        return {}, "NVML sees no GPU"
    return {"gpu_utilization": util / n, "gpu_memory_bytes": mem, "gpu_count": float(n)}, None


class ProcessSampler:
    """Each :meth:`sample` covers the time since the previous one."""

    def __init__(self, prices: Prices | None = None, *, gpu: bool = True) -> None:
        self.prices, self.gpu = prices, gpu
        #: Why the last sample has no GPU gauges (None when it has them or gpu=False).
        self.gpu_reason: str | None = None
        if gpu:
            _load_nvml()
        self._wall, self._cpu = time.monotonic(), _cpu_seconds()

    def sample(self, version: str | None = None) -> dict[str, Any]:
        wall, cpu = time.monotonic(), _cpu_seconds()
        elapsed = max(wall - self._wall, 1e-9)
        out: dict[str, Any] = {"timestamp": time.time(),
                               "cpu_percent": max(cpu - self._cpu, 0.0) / elapsed * 100,
                               "rss_bytes": rss_bytes()}
        self._wall, self._cpu = wall, cpu
        if self.gpu:
            gauges, self.gpu_reason = gpu_reading()
            out.update(gauges)
        if self.prices is not None:
            out["cost"] = self.prices.cost(elapsed, out["cpu_percent"], out["rss_bytes"],
                                           int(out.get("gpu_count", 0)))
        out.pop("gpu_count", None)
        if version is not None:
            out["version"] = version
        return out


def _load_nvml() -> None:
    """Import NVML's binding now, when it is installed. Its first import takes 50-250 ms
    with the GIL held; left to the first sample, on the sampling thread, it stalled every
    request a serving process had in flight (55 ms at p99.9, bench/workers.py --pin). A
    sampler is made at start-up, before any request."""
    with contextlib.suppress(ImportError):
        importlib.import_module("pynvml")


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
