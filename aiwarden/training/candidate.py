"""Judging a trained candidate: load it safely, time it, and predict the holdout with both
the candidate and the champion, so the comparison and slice gates see the same rows.

Why a trial load here and not a registration first: a candidate the gates refuse should
leave no version behind in the registry. The load is the registry's own format code, held to
the formats that run no code at load (a pipeline returns skops, ONNX or a prompt template; a
pickle is refused: retraining must never be a way to run code in the server).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aiwarden.registry.formats import detect_format, get_format
from aiwarden.training.gates import GateResult

__all__ = ["Loaded", "champion_predictions", "infra_gate", "load_candidate", "predictions"]

_TIMED_CALLS = 50
# each row is timed this many times and its fastest call kept: a model slow on a row is slow
# every time, while a machine's load (the process descheduled, another thread holding the
# GIL) lands on one call; wall-clock p95 over single calls refused fine candidates on a
# loaded box
_REPEATS = 3


@dataclass(frozen=True)
class Loaded:
    predictor: Any
    data: bytes
    format: str
    filename: str


def load_candidate(path: str, fmt: str | None, trusted_types: Sequence[str]
                   ) -> tuple[Loaded | None, GateResult | None]:
    """(the loaded candidate, None) or (None, the refusal as an infra gate result)."""
    data = Path(path).read_bytes()
    name = Path(path).name
    try:
        form = get_format(fmt) if fmt else detect_format(name)
        form.check(data, None)
        beyond = sorted(set(form.untrusted_types(data)) - set(trusted_types))
        if form.runs_code or beyond:
            why = (f"a {form.name} artifact runs code when loaded" if form.runs_code else
                   f"it holds types that are not trusted: {beyond}")
            return None, GateResult("infra", False, f"refused: {why}; a pipeline must return "
                                    "a safe format (skops, ONNX, or a prompt template)",
                                    {"format": form.name})
        predictor = form.load(data, trusted_types=form.untrusted_types(data), trusted=False)
    except Exception as exc:  # any load failure is the candidate's, reported as such
        return None, GateResult("infra", False, f"the artifact does not load: "
                                f"{type(exc).__name__}: {exc}"[:500], {"file": name})
    return Loaded(predictor, data, form.name, name), None


def predictions(predictor: Any, frame: pd.DataFrame, task: str) -> np.ndarray:
    """Labels for classification and regression, the positive-class score when the gate
    compares ROC AUC (``task == 'score'``)."""
    if task == "score":
        proba = np.asarray(predictor.predict_proba(frame))
        return proba[:, -1] if proba.ndim == 2 else proba
    return np.asarray(predictor.predict(frame))


def infra_gate(loaded: Loaded, holdout: pd.DataFrame, budget_ms: float | None) -> GateResult:
    """The candidate predicts one row at a time (as the gateway serves) within the budget:
    the p95 over rows of each row's fastest of ``_REPEATS`` calls.

    The timing stops once enough rows are over the budget that the p95 of the sample must be
    too (4 of 50): a candidate taking a second a call is refused in 13 calls, not 151."""
    sample = holdout.head(_TIMED_CALLS)
    # the p95 (linear interpolation) of n values is above the budget once the values from
    # sorted position floor(0.95 (n - 1)) on are, i.e. n - floor(0.95 (n - 1)) of them
    enough = len(sample) - int(0.95 * (len(sample) - 1))
    times: list[float] = []
    over = 0
    try:
        loaded.predictor.predict(holdout.head(200))  # batch call works, warms caches
        for i in range(len(sample)):
            row, best = sample.iloc[i:i + 1], float("inf")
            for _ in range(_REPEATS):
                t = time.perf_counter()
                loaded.predictor.predict(row)
                best = min(best, time.perf_counter() - t)
            times.append(best * 1000)
            over += budget_ms is not None and times[-1] > budget_ms
            if over >= enough:
                break
    except Exception as exc:
        return GateResult("infra", False, f"the candidate fails to predict the holdout: "
                          f"{type(exc).__name__}: {exc}"[:500], {"format": loaded.format})
    # rounded once: the reason quotes the stored figure (formatting the unrounded one
    # printed 1004.1 beside a stored 1004.05)
    p50, p95 = (round(float(np.percentile(times, q)), 3) for q in (50, 95))
    evidence = {"format": loaded.format, "size": len(loaded.data), "p50_ms": p50,
                "p95_ms": p95, "budget_ms": budget_ms, "calls": len(times),
                "repeats": _REPEATS, "rows_over_budget": over}
    if budget_ms is not None and p95 > budget_ms:
        return GateResult("infra", False, f"too slow: p95 {p95:.1f} ms per prediction, budget "
                          f"{budget_ms:g} ms", evidence)
    return GateResult("infra", True, f"loads as {loaded.format}; p95 {p95:.2f} ms per "
                      "prediction", evidence)


def champion_predictions(registry: Any, model: str, frame: pd.DataFrame, task: str
                         ) -> tuple[np.ndarray | None, str | None]:
    """(the champion's predictions on ``frame``, its version), or (None, why not)."""
    try:
        champion = registry.load(model, alias="champion")
    except Exception as exc:  # no champion yet, or it does not load: said, not hidden
        return None, f"no champion to compare with ({type(exc).__name__}: {exc})"[:300]
    return predictions(champion, frame, task), champion.version
