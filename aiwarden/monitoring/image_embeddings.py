"""Embedding drift of an image model: the ``embedding_drift`` row metric (docs/image-events.md).

Image events may carry an ``embedding`` the user computed (their model's penultimate layer,
a CLIP vector...). Property drift sees brightness move; an embedding sees what the model
sees. A window's embeddings are compared with the version's reference embeddings by the
kernel two-sample test of :func:`aiwarden.images.mmd_test` (unbiased MMD², RBF kernel with
the median bandwidth, seeded permutation p-value).

Storage, in ``kv_state`` (no table of its own, the same on SQLite and PostgreSQL):

* the reference: a seeded sample of at most ``REFERENCE_ROWS`` vectors under
  ``img_emb_ref:<version id>`` (``PUT /models/{m}/versions/{v}/embedding-reference``);
* the window side: each image batch's accepted vectors, float32, one document per hour they
  fall in, under ``img_emb:<model id>:<version id>:<hour>:<random>``; documents older than
  ``KEEP_SECONDS`` are dropped when a batch is stored, so the store is bounded by time.

A window reads only the documents of its hours, samples at most ``WINDOW_ROWS`` vectors
(seeded by the window), and answers ``None`` with a reason when the reference or the window
has too few, or their dimensions differ. Results are cached per (version, window, rows).
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, delete, select

from aiwarden.errors import DataError
from aiwarden.monitoring.seeded_sample import sample_positions
from aiwarden.store import kv
from aiwarden.store.tables import kv_state

__all__ = ["EMBEDDING_DRIFT", "KEEP_SECONDS", "MAX_DIM", "MIN_ROWS", "N_PERMUTATIONS",
           "REFERENCE_ROWS", "STATS", "WINDOW_ROWS", "EmbeddingDriftWindows", "check_embedding",
           "read_reference", "reference_dimensions", "reference_key", "store_reference",
           "store_window"]

MAX_DIM = 4096
REFERENCE_ROWS = 500
WINDOW_ROWS = 500  # MMD is quadratic in the rows: 1,000 pooled x 200 permutations
MIN_ROWS = 20
N_PERMUTATIONS = 200
ALPHA = 0.05
KEEP_SECONDS = 8 * 86400
STATS = ("mmd2", "p_value", "drifted")
_HOUR = 3600
_CACHE = 256


def reference_key(version_id: int) -> str:
    return f"img_emb_ref:{int(version_id)}"


def _prefix(model_id: int) -> str:
    return f"img_emb:{int(model_id)}:"


def check_embedding(value: Any, where: str) -> list[float]:
    """One embedding as a list of finite floats; a DataError naming ``where`` otherwise."""
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: expected a non-empty list of numbers. Got "
                        f"{type(value).__name__} instead.", where)
    if len(value) > MAX_DIM:
        raise DataError(f"{where}: at most {MAX_DIM} dimensions. Got {len(value)}.", where)
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise DataError(f"{where}: every element must be a number.", where)
    arr = np.asarray(value, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise DataError(f"{where}: NaN or infinite values are not an embedding.", where)
    return value


def _pack(x: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(x, dtype="<f4").tobytes()).decode()


def _unpack(text: str, dim: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(-1, dim)


def store_reference(conn: Connection, version_id: int, embeddings: Any) -> dict[str, Any]:
    """Keep a seeded sample of the reference vectors (replacing any); what was kept."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or len(x) < MIN_ROWS:
        raise DataError(f"embeddings: expected a list of at least {MIN_ROWS} vectors of one "
                        f"length. Got shape {x.shape}.", "embeddings")
    keep = sample_positions(len(x), REFERENCE_ROWS, (int(version_id), 7))
    doc = {"dim": int(x.shape[1]), "rows": len(keep), "data": _pack(x[keep])}
    kv.put(conn, reference_key(version_id), doc)
    return {"embeddings": len(keep), "received": len(x), "dimensions": int(x.shape[1])}


def reference_dimensions(conn: Connection, version_id: int) -> int | None:
    """The length of the version's reference vectors (None: no reference)."""
    doc = kv.get(conn, reference_key(version_id))
    return None if doc is None else int(doc["dim"])


def read_reference(conn: Connection, version_id: int) -> np.ndarray | None:
    doc = kv.get(conn, reference_key(version_id))
    return None if doc is None else _unpack(doc["data"], int(doc["dim"]))


def store_window(conn: Connection, model_id: int, version_id: int, ts: Sequence[float],
                 embeddings: Sequence[Sequence[float]], now: float) -> int:
    """Keep one batch's accepted vectors of one version, one document per hour; drop the
    model's documents older than ``KEEP_SECONDS``. Returns how many vectors were kept."""
    if not len(ts):
        return 0
    times = np.asarray(ts, dtype=np.float64)
    x = np.asarray(embeddings, dtype=np.float32)
    hours = (times // _HOUR).astype(np.int64)
    for h in np.unique(hours).tolist():
        at = np.flatnonzero(hours == h)
        key = f"{_prefix(model_id)}{int(version_id)}:{h:010d}:{uuid.uuid4().hex[:12]}"
        kv.create(conn, key, {"dim": int(x.shape[1]), "ts": times[at].tolist(),
                              "data": _pack(x[at])})
    old = [k for k in _keys(conn, model_id) if _hour_of(k) * _HOUR < now - KEEP_SECONDS]
    for i in range(0, len(old), 500):
        conn.execute(delete(kv_state).where(kv_state.c.key.in_(old[i:i + 500])))
    return len(times)


def _keys(conn: Connection, model_id: int, version_id: int | None = None) -> list[str]:
    prefix = _prefix(model_id) + ("" if version_id is None else f"{int(version_id)}:")
    return list(conn.execute(select(kv_state.c.key).where(
        kv_state.c.key.like(prefix.replace("_", r"\_") + "%", escape="\\"))).scalars())


def _hour_of(key: str) -> int:
    return int(key.split(":")[3])


class EmbeddingDriftWindows:
    """The ``embedding_drift`` value of windows, cached (the alert loop, REST and the page
    ask for the same windows)."""

    def __init__(self) -> None:
        self._cache: OrderedDict[tuple[Any, ...], tuple[Any, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def compute(self, conn: Connection, model_id: int, version_id: int, t0: float,
                t1: float, n_rows: int) -> tuple[dict[str, Any] | None, str | None]:
        """``(value, None)`` or ``(None, why)`` for the window ``[t0, t1)``."""
        key = (model_id, version_id, t0, t1, n_rows)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        out = self._compute(conn, model_id, version_id, t0, t1)
        with self._lock:
            self._cache[key] = out
            while len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        return out

    @staticmethod
    def current(conn: Connection, model_id: int, version_id: int, t0: float, t1: float
                ) -> np.ndarray | None:
        """The window's stored vectors (all of them, oldest hour first), None when none."""
        first, last = int(t0 // _HOUR), int(np.ceil(t1 / _HOUR))
        keys = sorted(k for k in _keys(conn, model_id, version_id)
                      if first <= _hour_of(k) < last)
        parts = []
        for k in keys:
            doc = kv.get(conn, k)
            if doc is None:
                continue
            ts = np.asarray(doc["ts"], dtype=np.float64)
            keep = (ts >= t0) & (ts < t1)
            if keep.any():
                x = _unpack(doc["data"], int(doc["dim"]))
                parts.append((x.shape[1], x[keep]))
        if not parts:
            return None
        dims = {d for d, _ in parts}
        if len(dims) > 1:
            raise DataError(f"the window's embeddings have {len(dims)} different lengths "
                            f"({sorted(dims)})", "embedding")
        return np.concatenate([p for _, p in parts])

    def _compute(self, conn: Connection, model_id: int, version_id: int, t0: float,
                 t1: float) -> tuple[dict[str, Any] | None, str | None]:
        from aiwarden.images import mmd_test

        ref = read_reference(conn, version_id)
        if ref is None:
            return None, ("no reference embeddings for this version: PUT "
                          ".../versions/{v}/embedding-reference")
        try:
            cur = self.current(conn, model_id, version_id, t0, t1)
        except DataError as exc:
            return None, str(exc)
        if cur is None or len(cur) < MIN_ROWS:
            return None, (f"{0 if cur is None else len(cur)} embeddings in the window; "
                          f"at least {MIN_ROWS} are needed")
        if cur.shape[1] != ref.shape[1]:
            return None, (f"the window's embeddings have {cur.shape[1]} dimensions, the "
                          f"reference's {ref.shape[1]}")
        n = len(cur)
        cur = cur[sample_positions(n, WINDOW_ROWS, (int(version_id), int(t0), int(t1)))]
        res = mmd_test(ref.astype(np.float64), cur.astype(np.float64),
                       n_permutations=N_PERMUTATIONS, alpha=ALPHA,
                       max_samples=max(REFERENCE_ROWS, WINDOW_ROWS), seed=0)
        return {"mmd2": res.statistic, "p_value": res.p_value, "drifted": int(
            res.drift_detected), "bandwidth": res.bandwidth, "n_reference": res.n_reference,
            "n_current": res.n_current, "n_window": n, "n_permutations": res.n_permutations,
            "alpha": ALPHA, "method": "mmd_rbf_permutation"}, None


#: the server's windows (one process, one cache; the metric is a pure function of the store)
EMBEDDING_DRIFT = EmbeddingDriftWindows()
