"""Resource samples of a serving process, per model version, every few seconds.

One :class:`~aiwarden.process_usage.ProcessSampler` reading covers the whole process
(CPU, RSS, GPU through NVML when present) and its cost at the configured prices. A
process may serve several versions (a canary, a shadow) or models, so CPU and cost are
split between the versions that predicted in the interval **by their share of model
time** (the time spent inside ``predict``/``predict_proba``); that is what makes "cost per
1,000 predictions" comparable between a champion and its challenger. RSS and the GPU
gauges are the process's and are reported as they are on every version's sample. Each
sample also carries the gateway's own health: ``gateway_dropped`` (events dropped in the
interval) and ``gateway_queue`` (events waiting), so they reach ``/metrics`` and rules.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from aiwarden._batching import SayOnce
from aiwarden.gateway.gateway import Gateway
from aiwarden.process_usage import Prices, ProcessSampler

__all__ = ["UsageReporter"]

log = logging.getLogger("aiwarden.gateway")
_SHARED = ("cpu_percent", "cost")  # split by model time; every other gauge is per process


class UsageReporter:
    """Post per-version samples of this process through ``post(model, samples)``
    (``Monitor.log_resources`` in the server, ``Client.log_resources`` standalone)."""

    def __init__(self, post: Callable[[str, list[dict[str, Any]]], Any],
                 gateways: Callable[[], Sequence[Gateway]], *, every: float = 15.0,
                 prices: Prices | None = None, gpu: bool = True) -> None:
        self.post, self.gateways, self.every = post, gateways, every
        self._failing = SayOnce(log, "resource samples not posted")
        if prices is not None and not (prices.cpu_core_hour or prices.memory_gib_hour
                                       or prices.gpu_hour):
            prices = None  # no prices set: no cost gauge rather than a cost of 0
        self.sampler = ProcessSampler(prices, gpu=gpu)
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aiwarden-usage", daemon=True)

    def start(self) -> UsageReporter:
        """Start the thread (once; later calls do nothing)."""
        if self.every > 0 and self._thread.ident is None and not self._stop.is_set():
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def samples(self) -> dict[str, list[dict[str, Any]]]:
        """model → one sample per version for the interval since the previous call."""
        base = self.sampler.sample()
        gws = list(self.gateways())
        if not gws:
            return {}
        shares: dict[tuple[str, str], float] = defaultdict(float)
        dropped: dict[tuple[str, str], int] = defaultdict(int)
        queued: dict[tuple[str, str], int] = {}
        for gw in gws:
            for version, seconds in gw.take_usage().items():
                shares[gw.name, version] += seconds
            for version, n in gw.events.take_dropped().items():
                dropped[gw.name, version] += n
            queued[gw.name, gw.version] = gw.events.stats()["queued"]
        total = sum(shares.values())
        if total > 0:
            shares = defaultdict(float, {k: s / total for k, s in shares.items()})
        else:  # idle: the served versions share what the process costs while it waits
            shares = defaultdict(float, {(gw.name, gw.version): 1 / len(gws) for gw in gws})
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for key in sorted(set(shares) | set(dropped) | set(queued)):
            model, version = key
            sample = {k: (v * shares[key] if k in _SHARED else v) for k, v in base.items()}
            sample.update(version=version, gateway_dropped=float(dropped.get(key, 0)))
            if key in queued:
                sample["gateway_queue"] = float(queued[key])
            out[model].append(sample)
        return dict(out)

    def report(self) -> int:
        """Take and post one interval's samples; how many were posted."""
        n = 0
        for model, samples in self.samples().items():
            try:
                self.post(model, samples)
                n += len(samples)
            except Exception as exc:  # monitoring down: the next interval tries again
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._failing.failed(f"{model}: {self.last_error}")
            else:
                self._failing.ok()
        return n

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.report()
            except Exception:
                log.exception("resource sampling failed")
