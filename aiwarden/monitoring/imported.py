"""References and batch profiles computed away from the server (``aiwarden profile`` on
Spark, Dask or the local streamed engine), stored as if the server had counted them.

Why: a billion rows a day should not cross the network as rows when their profile is tens of
kilobytes, and a reference fitted on the whole training set beats one fitted on
what fits in a request. The engine checks the JSON first (:mod:`aiwarden.engine.imported`);
here it is stored:

* a reference becomes the version's immutable reference, exactly as ``PUT .../reference``
  would, with the sample of rows sent beside it (``sample``: columns of rows; multivariate
  drift, explanations and the root-cause classifier need one); without it those say so;
* a batch profile is stamped at one instant ``at`` and appended, like an ingest request,
  to the bucket holding ``at`` and every rollup above it, so a window counts the whole
  batch if and only if it contains ``at``. Its ``batch`` name is kept: the same batch sent
  twice (a retried job) is refused, never counted twice.
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson

from aiwarden.engine.imported import profile_from_dict_checked, reference_from_dict_checked
from aiwarden.engine.schema import Role
from aiwarden.errors import DataError, ParameterError, SchemaError
from aiwarden.monitoring.bucket import BucketData
from aiwarden.monitoring.profiles import append_partials
from aiwarden.monitoring.rows import MAX_AHEAD_S
from aiwarden.monitoring.service import sample_parquet
from aiwarden.monitoring.windows import parse_instant, to_iso
from aiwarden.store import kv
from aiwarden.store import models_repo as repo
from aiwarden.tabular_io import JSON, read_table

__all__ = ["add_batch_profile", "store_reference", "stored_reference"]

_BATCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,63}")  # kv keys hold 100
_BATCH_KEY = "profile.batch:{version_id}:{batch}"  # kv: one per batch taken


def store_reference(monitor: Any, name: str, version: str, d: Any) -> dict[str, Any]:
    """Check and store a ``Reference.to_dict()`` as ``version``'s reference; an optional
    ``sample`` key (``{column: [values]}``) is the reference's sample of rows."""
    m, existing = monitor.reference_target(name, version)
    rows = d.get("sample") if isinstance(d, dict) else None
    if isinstance(d, dict):
        d = {k: v for k, v in d.items() if k != "sample"}
    ref = reference_from_dict_checked(d)
    sample, kept = (None, None) if rows is None else _sample(
        ref, rows, monitor.settings.sample_rows)
    if existing is not None and existing.schema is not None and existing.schema != ref.schema_:
        raise SchemaError(f"Version {version!r} was registered with a schema, and the "
                          "uploaded reference's schema differs from it.", "reference.schema")
    if m.task and ref.schema_.task.value not in (m.task, "none"):
        raise SchemaError(f"Model {name!r} is a {m.task} model; the reference is for "
                          f"{ref.schema_.task.value}.", "reference.schema.task")
    declared = monitor.declared_segments(m.id) or []
    unmarked = [c for c in declared if c not in ref.schema_
                or ref.schema_[c].role != Role.SEGMENT]
    if unmarked:
        raise SchemaError(f"Model {name!r} declares the segment columns {declared}; the "
                          f"reference does not mark {unmarked} as segments: fit it with "
                          f"segments={declared} (aiwarden profile --fit --segments "
                          f"{','.join(declared)}).", "reference.schema")
    out = monitor.store_reference(m, existing, version, ref, ref.profile_.n_rows, sample)
    return out | {"source": "profile", "sample": kept}


def _sample(ref: Any, rows: Any, limit: int) -> tuple[bytes, int]:
    """The sample's columns as a table (read as the reference upload reads JSON columns),
    holding the schema's feature columns, down-sampled to the server's sample size."""
    if not isinstance(rows, dict) or not rows or not all(
            isinstance(v, list) for v in rows.values()):
        raise DataError("sample: expected an object of columns, {name: [values]}, with at "
                        "least one column.", "sample")
    try:
        table = read_table(orjson.dumps(rows), JSON)
    except DataError as exc:
        raise DataError(f"sample: {exc}", "sample") from None
    missing = [c for c in ref.schema_.features if c not in table.column_names]
    if missing:
        raise DataError(f"sample: lacks the feature columns {missing[:5]} of the reference's "
                        "schema.", f"sample.{missing[0]}")
    if table.num_rows == 0:
        raise DataError("sample: has no rows.", "sample")
    return sample_parquet(table, limit), min(table.num_rows, limit)


def add_batch_profile(monitor: Any, name: str, version: str, d: Any, *, batch: Any,
                      at: Any, now: float | None = None) -> dict[str, Any]:
    """Check a ``Profile.to_dict()`` against ``version``'s reference and add it to the
    windows at ``at``; a ``batch`` name already taken is a conflict."""
    if not isinstance(batch, str) or not _BATCH.fullmatch(batch):
        raise ParameterError(f"batch: expected 1-64 letters, digits or ._:@+- (starting with "
                             f"a letter or digit); got {batch!r}.", "batch")
    if at is None:
        raise ParameterError("at: the instant the batch is counted at (ISO 8601 or epoch "
                             "seconds) is required.", "at")
    t = parse_instant(at, "at")
    now = time.time() if now is None else now
    if t > now + MAX_AHEAD_S:
        raise ParameterError(f"at: {to_iso(t)} is more than {MAX_AHEAD_S // 3600} hours ahead "
                             "of the server's clock.", "at")
    levels = monitor.levels
    m, v, ref = _resolved(monitor, name, version)
    if ref is None:
        raise DataError(f"Version {version!r} of {name!r} has no reference to count a "
                        "profile on: upload one first (PUT .../reference).", "version")
    prof = profile_from_dict_checked(ref, d)
    start = int(t // levels[0] * levels[0])
    # a labels-only profile (no rows) is labels joined late, as the label route counts them
    labels = prof.performance.n if prof.n_rows == 0 and prof.performance is not None else 0
    data = BucketData(rows=prof.n_rows, profile=prof, labels=int(labels))
    with monitor.db.write(m.id) as conn:
        key = _BATCH_KEY.format(version_id=v.id, batch=batch)
        if not kv.create(conn, key, {"at": t, "rows": prof.n_rows, "received": now}):
            raise repo.Conflict(f"Batch {batch!r} of {name!r} version {version!r} was taken "
                                "already; a batch is counted once (name a new one).", "batch")
        append_partials(conn, m.id, v.id, {start: data}, levels)
    return {"model": name, "version": version, "batch": batch, "rows": prof.n_rows,
            "at": to_iso(t), "bucket": to_iso(start)}


def stored_reference(monitor: Any, name: str, version: str) -> dict[str, Any]:
    """A version's reference as ``Reference.to_dict()``: what a distributed job profiles on."""
    _, _, ref = _resolved(monitor, name, version)
    if ref is None:
        raise repo.NotFound(f"Version {version!r} of {name!r} has no reference.", "version")
    return ref.to_dict()


def _resolved(monitor: Any, name: str, version: str) -> tuple[Any, Any, Any]:
    """``(model, version, its reference or None)``; 404s name what is missing."""
    with monitor.db.read() as conn:
        m = repo.get_model(conn, name)
        v = repo.get_version(conn, m, version)
        return m, v, monitor.refs.get(conn, v.id)
