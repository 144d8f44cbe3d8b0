"""Real models for gateway tests: fitted scikit-learn pipelines (skops) and entry points
that raise or wait on purpose (python format, registered with an admin's trust)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pandas as pd

from aiwarden.registry import Registry
from tests.registry.models import FEATURES, fitted, frame, skops_bytes

__all__ = ["FEATURES", "GATE", "STARTED", "fitted", "frame", "register_pair", "rows"]

GATE = threading.Event()  # a Waiter blocks on it while predicting a row with wait=1
STARTED = threading.Event()  # set when a Waiter starts waiting


def rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    x, _ = frame(n, seed=seed)
    return x.to_dict("records")


class Picky:
    """Raises (like a model with a bug) when x1 is above 3."""

    classes_ = np.array([0, 1])

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        if (x["x1"] > 3).any():
            raise RuntimeError("picky model: x1 above 3 is not supported")
        p = 1 / (1 + np.exp(-x["x1"].to_numpy()))
        return np.column_stack([1 - p, p])

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] > 0.5).astype(int)


class Waiter(Picky):
    """Blocks inside predict until GATE is set, for a row with ``wait == 1``."""

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        if "wait" in x and (x["wait"] == 1).any():
            STARTED.set()
            assert GATE.wait(30), "the test never opened the gate"
        return super().predict(x)


def load_picky(path: str | None) -> Picky:
    """Entry point ``tests.gateway.models:load_picky``."""
    return Picky()


def load_waiter(path: str | None) -> Waiter:
    """Entry point ``tests.gateway.models:load_waiter``."""
    return Waiter()


def register_pair(registry: Registry, name: str) -> tuple[Any, Any]:
    """Versions 1 and 2 of ``name`` (two different fits), champion → 1."""
    v1, v2 = fitted(seed=0), fitted(seed=1, C=0.01)
    registry.register(name, skops_bytes(v1), format="skops")
    registry.register(name, skops_bytes(v2), format="skops")
    registry.set_alias(name, "champion", "1", reason="first release")
    return v1, v2


def register_entry(registry: Registry, name: str, loader: str) -> str:
    """One more version of ``name`` that runs ``tests.gateway.models:<loader>``."""
    info = registry.register(name, b"{}", format="python",
                             entry_point=f"tests.gateway.models:{loader}", admin=True,
                             trust=True, actor="test-admin")
    return info.version
