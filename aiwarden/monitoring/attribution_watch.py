"""Attribution drift on a schedule: does the model still lean on what it leaned on?

Explaining a window costs seconds (SHAP over a sample), so it is not done inside the alert
cycle: for every model whose rules read ``attribution_drift``, the process holding the
evaluator lease explains a seeded sample of each rule's window once per ``every`` seconds
and stores the result (``kv_state``); the rule, the REST API and the dashboard read the
newest stored check inside their window. A model's ``every``, ``sample_size`` and
``method`` are its own settings (``PUT /models/{name}/attribution-drift``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection

from aiwarden.errors import AiwardenError, ParameterError
from aiwarden.monitoring.windows import parse_duration, to_iso
from aiwarden.store import alerts_repo, kv
from aiwarden.store import models_repo as repo

__all__ = ["STATS", "AttributionLoop", "AttributionSettings", "AttributionWatch"]

log = logging.getLogger(__name__)

# what a rule may read: nDCG of the ranking (default), 1/0 alarm, features whose attribution
# distribution shifted, the largest KS statistic among them
STATS = ("ndcg", "alarm", "shifted_count", "max_ks")
_KEPT = 100  # checks kept per model
_METHODS = ("auto", "tree", "linear", "permutation", "kernel")


@dataclass(frozen=True)
class AttributionSettings:
    """``every``: seconds between two checks of a model; ``sample_size``: rows explained per
    check (the bootstrap interval says what that costs in precision); None: 500, fewer
    when a black-box model would pass the explanation budget (a fixed 500 refused every
    scheduled check of a pipeline); ``threshold``: the nDCG below which ``alarm`` is 1
    (SageMaker Clarify's 0.9)."""

    every: float = 3600.0
    sample_size: int | None = None
    method: str = "auto"
    threshold: float = 0.9

    def __post_init__(self) -> None:
        if not (isinstance(self.every, int | float) and 60 <= self.every <= 7 * 86400):
            raise ParameterError(f"every: expected between 60 s and 7 days; got {self.every!r}.",
                                 "every")
        if self.sample_size is not None and not (
                isinstance(self.sample_size, int) and not isinstance(self.sample_size, bool)
                and 20 <= self.sample_size <= 20_000):
            raise ParameterError(f"sample_size: expected an int in [20, 20000] or null (fitted "
                                 f"to the budget); got {self.sample_size!r}.", "sample_size")
        if self.method not in _METHODS:
            raise ParameterError(f"method: expected one of {list(_METHODS)}; got "
                                 f"{self.method!r}.", "method")
        if not (isinstance(self.threshold, int | float) and 0 < self.threshold <= 1):
            raise ParameterError(f"threshold: expected in (0, 1]; got {self.threshold!r}.",
                                 "threshold")

    @classmethod
    def parse(cls, body: Mapping[str, Any], base: AttributionSettings | None = None
              ) -> AttributionSettings:
        unknown = sorted(set(body) - {"every", "sample_size", "method", "threshold"})
        if unknown:
            raise ParameterError(f"Unknown attribution-drift setting(s) {unknown}; valid: "
                                 "every, sample_size, method, threshold.", unknown[0])
        changes = dict(body)
        if isinstance(changes.get("every"), str):
            changes["every"] = parse_duration(changes["every"], "every")
        return replace(base or cls(), **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _settings_key(model_id: int) -> str:
    return f"attribution:{model_id}:settings"


def _checks_key(model_id: int) -> str:
    return f"attribution:{model_id}:checks"


class AttributionWatch:
    """Runs due checks (:meth:`run_due`) and answers rules from stored ones (:meth:`value`).

    ``explanations`` is the service that loads a version's model and explains rows
    (:class:`aiwarden.monitoring.explanations.Explanations`); ``holder`` the evaluator
    lease's holder name, so only the lead process computes.
    """

    def __init__(self, explanations: Any, holder: str) -> None:
        self.explanations, self.holder = explanations, holder
        self.monitor = explanations.monitor
        self._next = 0  # where the next bounded pass starts (round robin over models)

    # ------------------------------------------------------------ settings
    def settings(self, conn: Connection, model_id: int) -> AttributionSettings:
        stored = kv.get(conn, _settings_key(model_id))
        return AttributionSettings(**stored) if stored else AttributionSettings()

    def put_settings(self, name: str, body: Mapping[str, Any]) -> AttributionSettings:
        with self.monitor.db.write() as conn:
            m = repo.get_model(conn, name)
            new = AttributionSettings.parse(body, self.settings(conn, m.id))
            kv.put(conn, _settings_key(m.id), new.to_dict())
        return new

    def checks(self, conn: Connection, model_id: int) -> list[dict[str, Any]]:
        return list(kv.get(conn, _checks_key(model_id), []))

    # ------------------------------------------------------------ computing
    def _windows(self, name: str, now: float) -> list[float]:
        """The windows (seconds) of the model's attribution_drift rules."""
        with self.monitor.db.read() as conn:
            rules = alerts_repo.list_rules(conn, name)
        return sorted({parse_duration(r.spec.get("window", "1h"), "window") for r in rules
                       if r.spec.get("metric") == "attribution_drift"
                       and r.spec.get("enabled", True)})

    def opted_in(self) -> bool:
        """Whether any model has an enabled attribution_drift rule."""
        with self.monitor.db.read() as conn:
            return any(r.spec.get("metric") == "attribution_drift"
                       and r.spec.get("enabled", True) for r in alerts_repo.list_rules(conn))

    def run_due(self, now: float | None = None, *, force: bool = False,
                limit: int | None = None) -> int:
        """Check every model that is due (on the lead process only); returns checks made.
        A check that cannot be computed is stored with its reason, so the rule says why.
        ``limit``: check at most that many models in this pass, starting after the last
        one checked (round robin), so one pass is bounded work however many are due."""
        now = time.time() if now is None else now
        with self.monitor.db.read() as conn:
            if not alerts_repo.holds_lease(conn, "alert-evaluator", self.holder):
                return 0
        made, models_checked = 0, 0
        names = [m["name"] for m in self.monitor.list_models()]
        start = self._next % len(names) if names else 0
        for k, name in enumerate(names[start:] + names[:start]):
            if limit is not None and models_checked >= limit:
                break
            try:
                windows = self._windows(name, now)
                if not windows:
                    continue
                with self.monitor.db.read() as conn:
                    m = repo.get_model(conn, name)
                    opts = self.settings(conn, m.id)
                    done = self.checks(conn, m.id)
                last = max((c["at"] for c in done), default=0.0)
                if not force and now - last < opts.every:
                    continue
                self._next = start + k + 1
                models_checked += 1
                made += len(self.check_now(name, now, windows))
            except Exception:  # one model's failure must not stop the others
                log.warning("attribution check of %s failed", name, exc_info=True)
        return made

    def check_now(self, name: str, now: float | None = None,
                  windows: list[float] | None = None) -> list[dict[str, Any]]:
        """Check each version that served in the widest window (a canary and its champion
        alike; the serving one when none did) over each window (default: the model's
        attribution_drift rules' windows, else the last hour) and store the results."""
        now = time.time() if now is None else now
        # the same window twice is one check (a request naming "1h" nine times did nine)
        windows = list(dict.fromkeys(windows or self._windows(name, now) or [3600.0]))
        served = self.monitor.versions_with_data(name, now - max(windows))
        with self.monitor.db.read() as conn:
            m = repo.get_model(conn, name)
            opts = self.settings(conn, m.id)
            versions = sorted(v.version for v in repo.list_versions(conn, m) if v.id in served)
        versions = versions or [self.monitor.version(name)["version"]]
        fresh = [self._check(name, v, now - w, now, opts) for v in versions for w in windows]
        with self.monitor.db.write() as conn:
            kept = self.checks(conn, m.id) + fresh
            kv.put(conn, _checks_key(m.id), kept[-_KEPT:])
        return fresh

    def _check(self, name: str, version: str, t0: float, t1: float,
               opts: AttributionSettings) -> dict[str, Any]:
        started = time.perf_counter()
        out: dict[str, Any] = {"at": t1, "version": version, "start": t0, "end": t1,
                               "sample_size": opts.sample_size}
        try:
            ans = self.explanations.importance(name, version=version, start=t0, end=t1,
                                               sample_size=opts.sample_size,
                                               options={"method": opts.method})
        except AiwardenError as exc:
            return out | {"reason": str(exc)}
        out["sample_size"] = ans.get("sample_size", opts.sample_size)
        drift = ans["drift"]
        ks = [f["ks_statistic"] for f in drift["features"]
              if f.get("ks_statistic") is not None]
        out |= {"ndcg": drift["ndcg"], "alarm": 1.0 if drift["ndcg"] < opts.threshold else 0.0,
                "shifted_count": float(sum(1 for f in drift["features"] if f["shifted"])),
                "max_ks": max(ks) if ks else None, "rows": ans["rows"],
                "top": [f["feature"] for f in ans["importance"]["features"][:5]],
                "seconds": round(time.perf_counter() - started, 3)}
        return out

    # ------------------------------------------------------------ reading
    def value(self, conn: Connection, model_id: int, version: str, t0: float, t1: float
              ) -> dict[str, Any]:
        """The newest check of ``version`` made inside [t0, t1], or why there is none."""
        found = [c for c in self.checks(conn, model_id)
                 if c["version"] == version and t0 <= c["at"] <= t1]
        if not found:
            opts = self.settings(conn, model_id)
            return {"reason": f"no attribution check of version {version} between "
                              f"{to_iso(t0)} and {to_iso(t1)} (one runs every "
                              f"{opts.every:g} s per model with an attribution_drift rule)"}
        last = found[-1]
        return last if "reason" not in last else {"reason": last["reason"]}


class AttributionLoop(threading.Thread):
    """Checks at most ``per_tick`` due models every ``tick`` seconds, in a thread apart
    from the alert cycle: bounded work per tick, so 100 models due at once are spread over
    100 ticks instead of holding a core (and the GIL) for minutes while alerts evaluate
    (bench/explain_schedule.py). Capacity: ``per_tick * 3600 / tick`` model checks an hour."""

    def __init__(self, watch: AttributionWatch, tick: float = 30.0, per_tick: int = 1) -> None:
        super().__init__(name="aiwarden-attribution", daemon=True)
        self.watch, self.tick, self.per_tick = watch, tick, per_tick
        self.stop = threading.Event()

    def run(self) -> None:
        try:  # the first Permutation/Kernel check would pay shap's numba compile (explain/warm.py)
            if self.watch.opted_in():
                from aiwarden.explain.warm import warm_up_in_background

                warm_up_in_background()
        except Exception:
            log.warning("could not start shap's warm-up", exc_info=True)
        while not self.stop.wait(self.tick):
            try:
                self.watch.run_due(limit=self.per_tick)
            except Exception:
                log.exception("attribution checks failed")
