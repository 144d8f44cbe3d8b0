"""One model behind one alias: route, predict, log, and swap versions without a failed request.

Everything a request needs (the loaded versions and the policy) is one immutable
*snapshot*. A request reads the attribute once and uses that snapshot to the end, so a
reload, which builds a new snapshot in the background and then replaces the attribute in
one assignment, never disturbs a request in flight: it finishes on the old version, the
next one starts on the new. A watcher thread polls the source's cheap stamp and reloads
when it changes; :meth:`Gateway.reload` does the same at once (what a rollback calls).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiwarden._batching import SayOnce
from aiwarden.engine.schema import Schema
from aiwarden.gateway._arm import Arm
from aiwarden.gateway._errors import PredictionError
from aiwarden.gateway._ids import IdLedger
from aiwarden.gateway._ingestable import refusal_error
from aiwarden.gateway._rows import Item, event, failure, parse_request
from aiwarden.gateway._shadow import ShadowWorker
from aiwarden.gateway._watchdog import Watch
from aiwarden.gateway.events import EventQueue, Sink
from aiwarden.gateway.policy import TrafficPolicy, unit_hash
from aiwarden.gateway.sources import ServingState, Source
from aiwarden.store import models_repo as repo

__all__ = ["Arm", "Gateway"]

log = logging.getLogger("aiwarden.gateway")

# calls of the served version stuck past its limit before it is refused at once: one input
# that hangs the model costs its own request, a model that hangs on every call is refused
# after this many waits of the limit instead of holding every request for the limit
SERVE_MAX_STUCK = 3


@dataclass(frozen=True)
class _Snapshot:
    state: ServingState
    primary: Arm
    policy: TrafficPolicy  # the model's policy if it applies to the served alias, else off
    arms: dict[str, Arm]  # policy target (label or @alias) → arm, those that loaded
    shadow: Arm | None


class Gateway:
    """Serve ``name`` behind ``alias`` with the model's traffic policy.

    Parameters
    ----------
    name, alias : str
    source : Source
        What to serve and where versions load from (database or a server's API).
    sink : callable
        Where batches of events go (``Monitor.log_predictions`` or the SDK's).
    poll : float
        Seconds between two checks of the source's stamp (0: no watcher thread).
    max_poll_backoff : float
        While checks fail, the wait between them doubles up to this many seconds.
    max_queue, shadow_queue : int
        Events waiting to be logged, and shadow copies waiting to run, at most.
    trial_timeout : float
        Seconds a version on trial (a canary or A/B arm, the shadow) may take to answer;
        past it the request fails with 504 and the version is not called again while that
        call is stuck (aiwarden/gateway/_watchdog.py). 0: not watched.
    serve_timeout : float
        The same limit for the served alias's version (504 naming it and the limit,
        counted under ``timeouts``); it is refused at once only while
        ``SERVE_MAX_STUCK`` of its calls are stuck, so one input that hangs it costs that
        request alone. 0: not watched (the call runs in the caller's thread).
    max_ids : int
        The caller's prediction ids remembered to refuse reuse for other features
        (aiwarden/gateway/_ids.py).
    """

    def __init__(self, name: str, source: Source, sink: Sink, *, alias: str = "champion",
                 poll: float = 0.25, max_queue: int = 10_000, batch_size: int = 1000,
                 flush_interval: float = 0.5, shadow_queue: int = 1000,
                 max_poll_backoff: float = 60.0, trial_timeout: float = 10.0,
                 serve_timeout: float = 30.0, max_ids: int = 100_000) -> None:
        self.name, self.alias, self.source, self.poll = name, alias, source, poll
        self.max_poll_backoff = max_poll_backoff
        self.trial = Watch(trial_timeout, name) if trial_timeout > 0 else None
        self.served = Watch(serve_timeout, name, max_stuck=SERVE_MAX_STUCK,
                            role="serve") if serve_timeout > 0 else None
        self.events = EventQueue(sink, max_queue=max_queue, batch_size=batch_size,
                                 flush_interval=flush_interval, name=f"events-{name}")
        self.shadow = ShadowWorker(self.events, max_queue=shadow_queue, name=name,
                                   on_done=self._count,
                                   call=None if self.trial is None else self.trial.run)
        self.ids = IdLedger(max_ids)
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._usage: dict[str, list[float]] = {}  # version → [requests, errors, seconds]
        self._recent_ms = float("inf")  # moving average of one model call (unknown: slow)
        self._executor: ThreadPoolExecutor | None = None
        self._taken: dict[str, float] = {}
        self._cache: dict[str, Arm] = {}
        self._reloads, self._failed_stamp, self.last_error = 0, None, None
        self._snapshot: _Snapshot | None = None
        self._stop = threading.Event()
        try:
            self.reload()
        except BaseException:
            self.shadow.close(0)
            self.events.close(0)
            raise
        self._watcher = threading.Thread(target=self._watch, name=f"aiwarden-watch-{name}",
                                         daemon=True)
        if poll > 0:
            self._watcher.start()

    # ---------------------------------------------------------------- serving
    @property
    def version(self) -> str:
        """The version the served alias points at now."""
        assert self._snapshot is not None
        return self._snapshot.primary.version

    def predict(self, request: Mapping[str, Any]) -> dict[str, Any] | list[dict[str, Any]]:
        """One row (``{"features", "prediction_id"?, "tags"?}``) → one answer; ``{"rows":
        [...]}`` → a list. Raises InvalidRequestError or PredictionError."""
        items, single = parse_request(request)
        out = self.predict_items(items, single)
        return out[0] if single else out

    def predict_items(self, items: Sequence[Item], single: bool = False
                      ) -> list[dict[str, Any]]:
        """Answers in order. A caller's id already served with other features raises
        PredictionIdConflict before anything runs; one served with the same features (a
        retry) is answered with ``"duplicate": true``: monitoring keeps the first event."""
        snap = self._snapshot  # one read: this request lives on this snapshot to the end
        assert snap is not None
        repeat = self.ids.claim(items, snap.primary.version, single)
        ts = time.time()
        groups: dict[str, tuple[Arm, list[int]]] = {}
        for i, it in enumerate(items):
            arm = self._route(snap, it)
            groups.setdefault(arm.version, (arm, []))[1].append(i)
        self._refuse_unloggable(groups, items, single, ts)
        answers: list[dict[str, Any]] = [{}] * len(items)
        for arm, idx in groups.values():
            part = [items[i] for i in idx] if len(idx) < len(items) else list(items)
            for i, answer in zip(idx, self._run(arm, part, ts, arm is not snap.primary),
                                 strict=True):
                answers[i] = answer
        for i, again in enumerate(repeat):
            if again:
                answers[i]["duplicate"] = True
        if snap.shadow is not None:
            self.shadow.submit(snap.shadow, list(items), ts)
        return answers

    def _refuse_unloggable(self, groups: dict[str, tuple[Arm, list[int]]],
                           items: Sequence[Item], single: bool, ts: float) -> None:
        """422 ``invalid_input`` naming the field, before any model runs, when monitoring
        would quarantine a row's event (ingest's own check, gateway/_ingestable.py): a 200
        whose event never reaches the profiles helps no one. Every row of the request is
        logged once as a failed prediction, what ingest refuses taken out, so the
        ``errors`` metric counts it."""
        err = None
        for arm, idx in groups.values():
            found = arm.ingest.refusals([items[i] for i in idx], arm.version)
            if found:
                exc = refusal_error(found[0], single, idx[found[0].row])
                err = PredictionError(f"{self.name} version {arm.version} cannot use this "
                                      f"input: {exc}", status=422, kind="invalid_input",
                                      version=arm.version, field=exc.field)
                break
        if err is None:
            return
        for arm, idx in groups.values():
            part = arm.ingest.loggable([items[i] for i in idx], arm.version, str(err))
            self._count(arm.version, len(part), 0.0, failed=True, served=False)
            for it in part:
                self.events.put(event(it, arm.version, ts, 0.0, error=str(err)))
        raise err

    def _route(self, snap: _Snapshot, it: Item) -> Arm:
        policy = snap.policy
        if policy.mode not in ("canary", "ab"):
            return snap.primary
        key = None
        if policy.sticky_key is not None:
            key = it.features.get(policy.sticky_key)
            if key is None and it.tags:
                key = it.tags.get(policy.sticky_key)
        if key is None and it.given_id:
            key = it.prediction_id
        u = random.random() if key is None else unit_hash(self.name, str(key))
        target = policy.route(u)
        return snap.primary if target is None else snap.arms.get(target, snap.primary)

    def _run(self, arm: Arm, items: Sequence[Item], ts: float,
             trial: bool = False) -> list[dict[str, Any]]:
        t0 = time.perf_counter()
        try:
            watch = self.trial if trial else self.served
            preds, scores = arm.run(items) if watch is None else watch.run(arm, items)
        except Exception as exc:
            ms = (time.perf_counter() - t0) * 1000
            err = failure(exc, self.name, arm.version)
            self._count(arm.version, len(items), ms, failed=True)
            for it in items:
                self.events.put(event(it, arm.version, ts, ms, error=str(err)))
            raise err from exc
        ms = (time.perf_counter() - t0) * 1000
        self._count(arm.version, len(items), ms)
        out = []
        for i, it in enumerate(items):
            s = None if scores is None else scores[i]
            self.events.put(event(it, arm.version, ts, ms, preds[i], s))
            answer = {"prediction_id": it.prediction_id, "prediction": preds[i],
                      "version": arm.version}
            if s is not None:
                answer["scores"] = s
            out.append(answer)
        return out

    @property
    def quick(self) -> bool:
        """True while a served model call takes under a millisecond on average."""
        return self._recent_ms < 1.0

    async def predict_async(self, request: Mapping[str, Any]) -> Any:
        """:meth:`predict` for a caller on an event loop. A quick model predicts in place (a
        thread hop costs about as much); a slower one on this gateway's own thread, one
        request at a time in arrival order, because concurrent Python predictions only
        fight over the GIL and all finish late. Big batches always take the thread.
        A watched call (``serve_timeout``, ``trial_timeout``) runs on a worker thread either
        way, and the caller waits for it: a quick model that hangs holds the event loop up
        to its limit once, then its average leaves the quick path."""
        rows = request.get("rows") if isinstance(request, Mapping) else None
        if self.quick and not (isinstance(rows, list) and len(rows) > 16):
            return self.predict(request)
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, f"aiwarden-predict-{self.name}")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.predict,
                                                                request)

    def _count(self, version: str, n: int, ms: float, failed: bool = False,
               served: bool = True) -> None:
        """Requests, failures and model time per version (shadow copies included)."""
        if served:
            r = self._recent_ms
            self._recent_ms = ms if r == float("inf") else 0.9 * r + 0.1 * ms
        with self._lock:
            u = self._usage.setdefault(version, [0, 0, 0.0])
            u[0] += n
            u[1] += n if failed else 0
            u[2] += ms / 1000

    # -------------------------------------------------------------- reloading
    def reload(self) -> bool:
        """Read the alias and policy now; load what is new in the calling thread, then swap.
        True if the snapshot changed. Raises (keeping the old snapshot) when the served
        alias cannot be resolved or loaded."""
        with self._reload_lock:
            state = self.source.state()
            old = self._snapshot
            if old is not None and state == old.state:
                return False
            try:
                snap = self._build(state)
            except Exception as exc:
                self._failed_stamp, self.last_error = state.stamp, f"{type(exc).__name__}: {exc}"
                raise
            self._snapshot, self._failed_stamp = snap, None
            keep = {snap.primary.version, *(a.version for a in snap.arms.values())}
            self._cache = {v: a for v, a in self._cache.items() if v in keep}
            self._reloads += 1
            if old is not None:
                log.info("gateway %s@%s now serves %s (policy %s)", self.name, self.alias,
                         snap.primary.version, snap.policy.to_dict())
            return True

    def _arm(self, version: str) -> Arm:
        arm = self._cache.get(version)
        if arm is None:
            arm = self._cache[version] = Arm.of(version, self.source.load(version),
                                                self._schema(version))
        return arm

    def _schema(self, version: str) -> Schema | None:
        """The version's schema when the source knows it; a failed look-up only means the
        request goes unchecked, never that the version does not load."""
        lookup = getattr(self.source, "schema", None)
        if lookup is None:
            return None
        try:
            return lookup(version)
        except Exception as exc:
            log.warning("gateway %s: no schema for version %s (%s: %s); requests go to the "
                        "model unchecked", self.name, version, type(exc).__name__, exc)
            return None

    def _build(self, state: ServingState) -> _Snapshot:
        label = state.aliases.get(self.alias)
        if label is None:
            raise repo.NotFound(f"Model {self.name!r} has no alias {self.alias!r} to serve.",
                                "alias")
        primary = self._arm(label)
        policy = state.policy if state.policy.alias == self.alias else TrafficPolicy()
        arms: dict[str, Arm] = {}
        for target in policy.targets:
            version = state.aliases.get(target[1:]) if target.startswith("@") else target
            try:
                if version is None:
                    raise repo.NotFound(f"alias {target[1:]!r} is not set")
                arms[target] = self._arm(version)
            except Exception as exc:  # serve without that arm rather than fail requests
                self.last_error = f"policy target {target}: {type(exc).__name__}: {exc}"
                log.warning("gateway %s: %s; its traffic goes to %s", self.name,
                            self.last_error, label)
        shadow = arms.get(policy.challenger or "") if policy.mode == "shadow" else None
        return _Snapshot(state, primary, policy, arms, shadow)

    def _watch(self) -> None:
        """Poll the source; while it fails (server away, key revoked) back off exponentially
        up to ``max_poll_backoff`` and say so once, then in a summary every few minutes."""
        failing = SayOnce(log, f"gateway {self.name}@{self.alias} keeps serving what it "
                          "loaded; checking for changes failed", summary_every=300.0)
        wait = self.poll
        while not self._stop.wait(wait):
            try:
                stamp = self.source.stamp()
                snap = self._snapshot
                if snap is not None and stamp != snap.state.stamp \
                        and stamp != self._failed_stamp:
                    self.reload()
            except Exception as exc:  # keep serving what is loaded; say why in stats
                self.last_error = f"{type(exc).__name__}: {exc}"
                failing.failed(self.last_error)
                wait = failing.backoff(self.poll * 2, max(self.max_poll_backoff, self.poll))
            else:
                failing.ok()
                wait = self.poll

    # ------------------------------------------------------------------ state
    def take_usage(self) -> dict[str, float]:
        """Seconds spent predicting per version since the previous call (resource split)."""
        with self._lock:
            now = {v: u[2] for v, u in self._usage.items()}
        out = {v: s - self._taken.get(v, 0.0) for v, s in now.items()}
        self._taken = now
        return {v: s for v, s in out.items() if s > 0}

    def stats(self) -> dict[str, Any]:
        snap = self._snapshot
        assert snap is not None
        with self._lock:
            by_version = {v: {"requests": int(u[0]), "errors": int(u[1]),
                              "model_seconds": u[2]} for v, u in self._usage.items()}
        return {"model": self.name, "alias": self.alias, "version": snap.primary.version,
                "policy": snap.policy.to_dict(),
                "arms": {t: a.version for t, a in snap.arms.items()},
                "shadow": None if snap.shadow is None else snap.shadow.version,
                "stamp": list(snap.state.stamp), "reloads": self._reloads,
                "by_version": by_version, "events": self.events.stats(),
                "shadow_queue": self.shadow.stats(), "last_error": self.last_error,
                **self._watched()}

    def _watched(self) -> dict[str, Any]:
        """The time limits, versions with calls stuck past theirs, and the requests each
        version failed by its limit."""
        stuck: dict[str, float] = {}
        timeouts: dict[str, int] = {}
        for watch in (self.served, self.trial):
            if watch is not None:
                stuck.update({v: round(s, 1) for v, s in watch.stuck().items()})
                for v, n in watch.timeouts().items():
                    timeouts[v] = timeouts.get(v, 0) + n
        return {"stuck": stuck, "timeouts": timeouts,
                "limits": {"serve_timeout": self.served.timeout if self.served else 0.0,
                           "trial_timeout": self.trial.timeout if self.trial else 0.0}}

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until shadow copies ran and every queued event reached the sink."""
        return self.shadow.drain(timeout) and self.events.flush(timeout)

    def close(self, timeout: float = 10.0) -> bool:
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join(timeout=max(self.poll * 4, 1.0))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self.shadow.close(timeout)
        for watch in (self.served, self.trial):
            if watch is not None:
                watch.close()
        return self.events.close(timeout)

    def __repr__(self) -> str:
        return f"<Gateway {self.name}@{self.alias} serving {self.version}>"

