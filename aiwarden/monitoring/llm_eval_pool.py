"""The evaluators of LLM ingest in worker processes, so a server uses more than one core.

The rule-based evaluators are pure Python and hold the GIL: one server process evaluates on
one core whatever its threads. A batch of at least ``min_batch`` (256) events is cut into one
share per worker and a tenth of one for the calling thread, which evaluates it meanwhile
(it has the rest of the ingest to do). Each worker (a ``spawn``-ed process: no fork of a
threaded server) loaded the evaluators once; the events travel whole (an evaluator may read
more than the texts: the roles of the messages, the finish reason), less their embeddings.

Nothing depends on the workers: until they have started, for small batches, and if a worker
dies or the pool breaks, the batch is evaluated in the calling process instead (the same
evaluators, the same findings), so an accepted event is never lost to the pool.
"""

from __future__ import annotations

import gc
import math
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from aiwarden._spawned_pool import SpawnedPool, cores, exit_with_parent, workers_from_env
from aiwarden.llm import descriptors as desc
from aiwarden.llm.events import LLMEvent
from aiwarden.llm.findings import Finding

__all__ = ["EvaluatorPool", "auto_workers", "shared"]

Result = tuple[list[list[Finding]], set[str], dict[str, str]]

#: The calling thread's share of a pooled batch relative to a worker's: a server process
#: also decodes, checks, stores and profiles each event (~150 us of CPU against ~200 for
#: evaluating it), so with an equal share it, not the workers, set the rate. A tenth about
#: balances one worker (bench/otlp_ingest.py, all-LLM spans, SQLite, server process CPU per
#: span: 260 us at an equal share and 220 at a quarter in one run, 221 at a quarter and 193
#: at a tenth in another; the total the same).
LOCAL_SHARE = 0.1


def auto_workers() -> int:
    """Workers worth starting: ``AIWARDEN_LLM_EVAL_WORKERS`` when set, else one per core
    but the server's own (which evaluates a share of each batch too)."""
    return workers_from_env("AIWARDEN_LLM_EVAL_WORKERS", max(0, cores() - 1))


class EvaluatorPool(SpawnedPool):
    """Run :func:`~aiwarden.llm.descriptors.run_evaluators` on ``workers`` processes.

    Parameters
    ----------
    workers : int
        Worker processes; 0 evaluates every batch in the calling process.
    min_batch : int
        Smaller batches are evaluated in the calling process: a round trip to the workers
        waits for them to be scheduled, which on a busy machine costs more than a small
        batch's evaluation (bench/otlp_ingest.py: 102 events per request ran at 0.57x the
        in-process rate at load 14 on 2 cores; 512 at 0.98x).
    """

    def __init__(self, workers: int, min_batch: int = 256) -> None:
        super().__init__(workers, _load, "LLM evaluator workers",
                         "evaluating in the server process")
        self.min_batch = max(1, min_batch)

    def run(self, events: Sequence[LLMEvent], evaluators: Sequence[Any]) -> Result:
        """Findings per event, the evaluators that ran, why the others did not: what
        ``run_evaluators(events, evaluators)`` returns, computed in the workers when it
        pays."""
        pool = self._started() if self.workers and len(events) >= self.min_batch else None
        if pool is None:
            return desc.run_evaluators(events, evaluators)
        names = {e.name for e in evaluators}
        # one share per worker and a smaller one for this thread, which evaluates the last
        # share while the workers do theirs (it needs no scheduling round trip, but the
        # rest of the ingest, decode, store, profile, runs on it too)
        local = len(events) - math.floor(len(events) * LOCAL_SHARE / (self.workers
                                                                      + LOCAL_SHARE))
        size = math.ceil(local / self.workers)
        items = [replace(e, embedding=None) if e.embedding is not None else e
                 for e in events[:local]]
        try:
            parts = [pool.submit(_evaluate, items[i:i + size], names)
                     for i in range(0, local, size)]
            mine = desc.run_evaluators(events[local:], evaluators)
            results = [f.result() for f in parts] + [mine]
        except Exception as exc:  # a worker died, the pool broke: evaluate here
            self._broke(pool, exc)
            return desc.run_evaluators(events, evaluators)
        return _merge(results, names)


def _merge(results: list[Result], names: set[str]) -> Result:
    """One result of the chunks': an evaluator ran if it ran on every chunk (else its
    findings are dropped, as when it fails on a whole batch in one process)."""
    ran = set(names)
    failed: dict[str, str] = {}
    for _, r, f in results:
        ran &= r
        failed.update(f)
    findings = [fs if all(x.evaluator in ran for x in fs) else
                [x for x in fs if x.evaluator in ran]
                for part, _, _ in results for fs in part]
    return findings, ran, {k: v for k, v in failed.items() if k not in ran}


_FOUND: list[Any] = []


def _load() -> None:
    """Worker initializer: exit with the server (even one killed with SIGKILL, which runs
    no cleanup), then the evaluators, once per process, run once on a small event (what
    they load or compile on first use is then ready)."""
    exit_with_parent()
    found, _ = desc.load_evaluators()
    _FOUND[:] = found
    desc.run_evaluators([LLMEvent("", "Warm up. Call 555-0100.", [{"role": "user",
                                   "content": "Hello, how are you?"}],
                                  context=["A passage."])], found)
    gc.freeze()  # as the server does (llm_ingest._evaluators): out of the collector's passes


def _evaluate(events: list[LLMEvent], names: set[str]) -> Result:
    return desc.run_evaluators(events, [e for e in _FOUND if e.name in names])


_SHARED: dict[int, EvaluatorPool] = {}
_SHARED_LOCK = threading.Lock()


def shared(workers: int | None = None) -> EvaluatorPool:
    """The process's pool of ``workers`` workers (servers of one process share it); None:
    :func:`auto_workers`."""
    workers = auto_workers() if workers is None else workers
    with _SHARED_LOCK:
        pool = _SHARED.get(workers)
        if pool is None:
            pool = _SHARED[workers] = EvaluatorPool(workers)
        return pool
