"""What a serving process uses: CPU, resident memory and, when there is one, the GPU.

A :class:`ProcessSampler` turns two readings into a resource sample as
``POST /models/{name}/resources`` takes it. CPU is the process's CPU time over wall time
(100 = one core busy), RSS comes from ``/proc`` (or ``getrusage``'s peak elsewhere), GPU
utilisation and memory from NVML when ``pynvml`` and a GPU are present; without them the
GPU gauges are simply left out. An optional price list turns usage into a ``cost`` for
the interval, so the server can report cost per 1,000 predictions.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Prices", "ProcessSampler", "gpu_usage", "rss_bytes"]


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
    try:
        import pynvml  # optional: nvidia-ml-py
    except ImportError:
        return {}
    try:
        pynvml.nvmlInit()
    except Exception:  # no driver, no GPU: degrade to CPU-only samples
        return {}
    try:
        n = pynvml.nvmlDeviceGetCount()
        util = mem = 0.0
        for i in range(n):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            util += float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu)
            mem += float(pynvml.nvmlDeviceGetMemoryInfo(h).used)
        return {"gpu_utilization": util / max(n, 1), "gpu_memory_bytes": mem,
                "gpu_count": float(n)} if n else {}
    finally:
        pynvml.nvmlShutdown()


class ProcessSampler:
    """Each :meth:`sample` covers the time since the previous one."""

    def __init__(self, prices: Prices | None = None, *, gpu: bool = True) -> None:
        self.prices, self.gpu = prices, gpu
        self._wall, self._cpu = time.monotonic(), _cpu_seconds()

    def sample(self, version: str | None = None) -> dict[str, Any]:
        wall, cpu = time.monotonic(), _cpu_seconds()
        elapsed = max(wall - self._wall, 1e-9)
        out: dict[str, Any] = {"timestamp": time.time(),
                               "cpu_percent": max(cpu - self._cpu, 0.0) / elapsed * 100,
                               "rss_bytes": rss_bytes()}
        self._wall, self._cpu = wall, cpu
        if self.gpu:
            out.update(gpu_usage())
        if self.prices is not None:
            out["cost"] = self.prices.cost(elapsed, out["cpu_percent"], out["rss_bytes"],
                                           int(out.get("gpu_count", 0)))
        out.pop("gpu_count", None)
        if version is not None:
            out["version"] = version
        return out


def _cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
