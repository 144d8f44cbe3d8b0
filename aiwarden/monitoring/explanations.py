"""Explanations of logged predictions and of windows: the store and the registry around
the pure :mod:`aiwarden.explain` engine, for the REST API, the CLI and the dashboard.

A row is explained by the model of the version that served it (or the version asked for),
against a background drawn from that version's reference sample, so "why did v2 refuse
order 42" is answered by v2 as it was registered. Only pickle-free artifacts are loaded
here: explaining is a read, and a read must never unpickle. Answers are cached per
artifact digest, rows and options (the same request twice costs one computation).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import orjson
import pandas as pd

from aiwarden.errors import AiwardenError, DataError, without_paths
from aiwarden.monitoring import rows as row_format
from aiwarden.monitoring.multivariate_window import window_rows
from aiwarden.monitoring.service import Monitor
from aiwarden.store import models_repo as repo
from aiwarden.tabular_io import read_parquet

__all__ = ["MAX_ROWS", "Explanations"]

log = logging.getLogger(__name__)

MAX_ROWS = 1000  # rows or ids per request: Kernel SHAP and LIME cost seconds per row
MAX_SAMPLED = 100_000  # window rows read for one importance answer
# model rows one request may evaluate through a black-box explainer (rows x evaluations x
# background rows): a minute or two of a scikit-learn pipeline's CPU (~50k rows/s); beyond
# it a 422 says what to lower
MAX_EVALUATIONS = 5_000_000
#: rows of a window explained for its importance when the request names no number, and the
#: fewest a black-box explainer's budget may lower that to
SAMPLE_SIZE, MIN_SAMPLE = 500, 20
#: interventional Tree SHAP's (row x background row x tree x level) visits per request: about
#: two minutes of a core (shap's C code, ~0.08 us a visit)
MAX_TREE_WORK = 1_500_000_000
_UNPICKLING = ("pickle", "joblib")
_CACHE_ENTRIES = 512


class _Lru:
    """A small thread-safe LRU of computed answers (JSON-ready dicts)."""

    def __init__(self, size: int) -> None:
        self.size, self._items, self._lock = size, OrderedDict[str, Any](), threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def _key(*parts: Any) -> str:
    return hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SERIALIZE_NUMPY,
                                       default=str)).hexdigest()


class Explanations:
    """Explain rows, logged predictions and windows of a monitored, registered model.

    ``registry`` is called when a model is needed (the server opens its registry lazily).
    """

    def __init__(self, monitor: Monitor, registry: Callable[[], Any]) -> None:
        self.monitor, self._registry = monitor, registry
        self._answers = _Lru(_CACHE_ENTRIES)
        self._models = _Lru(8)
        self._methods = _Lru(_CACHE_ENTRIES)  # (method,) per artifact, method and task

    # ---------------------------------------------------------------- inputs
    def _version_inputs(self, name: str, version: str) -> tuple[Any, list[str], pd.DataFrame,
                                                                 str]:
        """(model, feature names, background reference rows, artifact digest)."""
        reg = self._registry()
        try:
            info = reg.get(name, version)
        except repo.NotFound:
            raise DataError(
                f"Version {version!r} of {name!r} has no registered model: explanations need "
                f"the model itself. Registered versions: {self._registered(name)}; name one "
                "(version / --version), or register this one "
                f"(`aiwarden registry register {name} FILE --version {version}`).",
                "version") from None
        if info.format in _UNPICKLING:
            raise DataError(
                f"Version {version!r} of {name!r} is a {info.format} artifact; explanations "
                "load pickle-free artifacts only (register it as skops or ONNX).", "version")
        model = self._models.get(info.sha256)
        if model is None:
            model = reg.load(name, info.version)
            self._models.put(info.sha256, model)
        with self.monitor.db.read() as conn:
            m = repo.get_model(conn, name)
            v = repo.get_version(conn, m, version)
            ref = self.monitor.refs.get(conn, v.id)
            blob = repo.load_sample(conn, v.id)
            if blob is None:
                src = repo.reference_source(conn, v.id)
                blob = None if src is None else repo.load_sample(conn, src)
        if ref is None or blob is None:
            raise DataError(
                f"Version {version!r} of {name!r} has no reference sample: explanations are "
                "measured against a background drawn from it (upload a reference).", "version")
        sample = read_parquet(blob).to_pandas()
        declared = getattr(model, "inputs", None)
        features = list(declared) if declared else list(ref.schema_.features)
        missing = [f for f in features if f not in sample.columns]
        if missing:
            raise DataError(f"The reference sample of {name!r} version {version!r} lacks the "
                            f"model input(s) {missing[:10]}.", "version")
        return model, features, sample[features], info.sha256

    def _registered(self, name: str) -> list[str]:
        try:
            return [v.version for v in self._registry().versions(name)][-10:]
        except repo.NotFound:
            return []

    def _serving(self, name: str, version: str | None) -> str:
        return str(self.monitor.version(name, version)["version"])

    def _method(self, model: Any, background: pd.DataFrame, digest: str, opts: Any
                ) -> str | None:
        """:func:`_resolve`, once per artifact, asked method and task."""
        key = _key("method", digest, opts.method, opts.task)
        hit = self._methods.get(key)
        if hit is None:
            hit = (_resolve(model, background, opts),)
            self._methods.put(key, hit)
        return hit[0]

    def _reference(self, name: str, version: str, model: Any, background: pd.DataFrame,
                   digest: str, opts: Any, sample_size: int,
                   should_stop: Callable[[], bool] | None = None) -> Any:
        """The reference's importance, computed once per artifact and options: a request
        for fewer rows than a stored answer reuses it (more rows of the same reference, a
        tighter interval); one for more replaces it. The RCA (200 rows) and the API (500)
        thus share one computation whichever comes first."""
        from aiwarden.explain import global_importance

        key = _key("reference", digest, opts.to_dict())
        stored = self._answers.get(key)
        if stored is not None and stored[0] >= min(sample_size, len(background)):
            return stored[1]
        imp = _model_call(lambda: global_importance(
            model, background, background, opts, sample_size=sample_size,
            should_stop=should_stop), name, version)
        self._answers.put(key, (sample_size, imp))
        return imp

    # --------------------------------------------------------------- per row
    def explain(self, name: str, *, prediction_ids: Sequence[str] | None = None,
                rows: Sequence[Mapping[str, Any]] | None = None, version: str | None = None,
                options: Mapping[str, Any] | None = None,
                should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Explanations of logged predictions (by id; each by the version that served it
        unless ``version`` is given) or of rows sent now (by ``version``, default the one
        serving). ``should_stop`` (the server: has the client left?) is asked between
        chunks of the work; True raises :class:`~aiwarden.errors.Cancelled`."""
        from aiwarden.explain import ExplainOptions

        opts = ExplainOptions.from_dict(options)
        if (prediction_ids is None) == (rows is None):
            raise DataError("Send either prediction_ids or rows.", "prediction_ids")
        asked = list(prediction_ids if prediction_ids is not None else rows or [])
        if not asked:
            field = "prediction_ids" if prediction_ids is not None else "rows"
            raise DataError(f"{field} is empty: nothing to explain.", field)
        if len(asked) > MAX_ROWS:
            field = "prediction_ids" if prediction_ids is not None else "rows"
            raise DataError(f"At most {MAX_ROWS} {field} per request; got {len(asked)}.", field)
        missing: list[str] = []
        if prediction_ids is not None:
            found = self.monitor.events_by_id(name, [str(p) for p in prediction_ids])
            missing = found["missing"]
            frame = found["table"].to_pandas()
            versions = [version or v for v in found["versions"]]
            ids: list[Any] = frame[row_format.PID].tolist() if len(frame) else []
        else:
            frame = pd.DataFrame([_flat(r, i) for i, r in enumerate(asked)])
            versions = [self._serving(name, version)] * len(frame)
            ids = [None] * len(frame)
        out: list[dict[str, Any] | None] = [None] * len(frame)
        used: dict[str, dict[str, Any]] = {}
        for ver in dict.fromkeys(versions):
            at = [i for i, v in enumerate(versions) if v == ver]
            answer = self._explain_version(name, ver, frame.iloc[at], opts, should_stop)
            used[ver] = {k: v for k, v in answer.items() if k != "explanations"}
            schema = self._schema(name, ver) if prediction_ids is not None else None
            probability = (self._class_probability(name, ver, frame.iloc[at],
                                                   answer["explanations"])
                           if schema is not None and len(schema.score_columns) > 1 else None)
            for j, (i, e) in enumerate(zip(at, answer["explanations"], strict=True)):
                out[i] = {**e, "row": i, "prediction_id": ids[i], "version": ver}
                if schema is not None:
                    out[i]["logged"] = logged_output(
                        e, frame.iloc[i], schema,
                        None if probability is None else probability[j])
        disagree = [e["prediction_id"] for e in out
                    if e is not None and (e.get("logged") or {}).get("agrees") is False]
        return {"model": name, "versions": used, "explanations": out, "missing": missing,
                **({"disagree": disagree} if prediction_ids is not None else {})}

    def _class_probability(self, name: str, version: str, frame: pd.DataFrame,
                           explained: list[dict[str, Any]]) -> list[float | None] | None:
        """The model's probability of each row's explained class, for margins only (a
        multiclass margin is a logit: the logged probability compares with the model's
        ``predict_proba``, not with the margin). None when no explanation is a margin."""
        if not any(e.get("output_space") == "margin" for e in explained):
            return None
        from aiwarden.explain._model import adapt

        model, features, background, _ = self._version_inputs(name, version)
        x = _typed(frame[features].reset_index(drop=True), background)
        try:
            adapter, x, _ = adapt(model, x, background.iloc[:2])
            proba = adapter.proba(x)
        except Exception as exc:  # the explanation stands; only the comparison is missing
            log.warning("no probabilities of %s version %s to compare: %s", name, version, exc)
            return None
        classes = [str(c) for c in adapter.classes or []]
        out: list[float | None] = []
        for r, e in enumerate(explained):
            cls = str(e.get("explained_class"))
            out.append(float(proba[r, classes.index(cls)]) if cls in classes
                       and proba.shape[1] == len(classes) else None)
        return out

    def _schema(self, name: str, version: str) -> Any:
        with self.monitor.db.read() as conn:
            v = repo.get_version(conn, repo.get_model(conn, name), version)
            ref = self.monitor.refs.get(conn, v.id)
        return None if ref is None else ref.schema_

    def _explain_version(self, name: str, version: str, frame: pd.DataFrame,
                         opts: Any, should_stop: Callable[[], bool] | None = None
                         ) -> dict[str, Any]:
        from aiwarden.explain import explain_rows

        model, features, background, digest = self._version_inputs(name, version)
        _within_budget(opts, len(frame), "rows", self._method(model, background, digest,
                                                              opts), model)
        absent = [f for f in features if f not in frame.columns]
        if absent:
            raise DataError(f"The rows lack the input(s) {absent[:10]} of {name!r} version "
                            f"{version!r}.", absent[0])
        x = _typed(frame[features].reset_index(drop=True), background)
        key = _key("rows", digest, opts.to_dict(), features, x.to_numpy().tolist())
        hit = self._answers.get(key)
        if hit is not None:
            return hit
        answer = _model_call(lambda: explain_rows(
            model, x, background, opts, should_stop=should_stop).to_dict(), name, version)
        self._answers.put(key, answer)
        return answer

    # ------------------------------------------------------------ for the RCA
    def reference_importance(self, name: str, version: str, sample_size: int = 200
                             ) -> tuple[dict[str, float] | None, str | None]:
        """Mean |SHAP| per input over the version's reference sample (what the model leans
        on), or None and why not (no registered model, a pickle, no shap): the RCA weighs
        drifted features by it when it can and says so when it cannot."""
        from aiwarden.explain import ExplainOptions

        try:
            model, _, background, digest = self._version_inputs(name, version)
            opts = ExplainOptions()
            if self._method(model, background, digest, opts) not in ("tree", "linear"):
                return None, ("a black-box model (a pipeline, ONNX, categorical inputs): its "
                              "importance is computed on request (GET /importance), not "
                              "inside an RCA")
            imp = self._reference(name, version, model, background, digest, opts,
                                  sample_size)
        except AiwardenError as exc:
            return None, str(exc)
        return dict(imp.as_mapping()), None

    # ------------------------------------------------------------- per window
    def importance(self, name: str, *, version: str | None = None, start: Any = None,
                   end: Any = None, sample_size: int | None = None,
                   where: Sequence[Sequence[Any]] | None = None,
                   options: Mapping[str, Any] | None = None,
                   should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Global importance of a window's rows (a seeded sample, with bootstrap intervals),
        the reference's for comparison, their attribution drift, and optionally the
        importance inside a slice against the rest. ``should_stop``: as in :meth:`explain`
        (asked inside each of the three explanations and between them). ``sample_size``
        None: :data:`SAMPLE_SIZE` rows, fewer when a black-box explainer would exceed the
        budget with them (the answer's ``sample_size`` says how many; the interval widens)."""
        from aiwarden.explain import (
            ExplainOptions,
            attribution_drift,
            global_importance,
            slice_importance,
        )

        opts = ExplainOptions.from_dict(options)
        ver = self._serving(name, version)
        model, features, background, digest = self._version_inputs(name, ver)
        _check_where(where, background)
        sample_size = _fitted_sample(opts, sample_size, 3 if where else 2,
                                     self._method(model, background, digest, opts), model)
        # (the window's sample, the reference's, a slice's rest)
        t0, t1 = self.monitor._window(start, end)
        _, data = self.monitor.window(name, t0, t1, ver)
        if data.rows == 0:
            raise DataError(f"No logged predictions of {name!r} version {ver!r} in the window: "
                            "nothing to explain.", "start")
        # a seeded sample read from the batches that hold it, never the whole window: a
        # slice needs more rows so that both it and the rest keep enough after the split
        wanted = min(MAX_SAMPLED, sample_size * (20 if where else 1))
        with self.monitor.db.read() as conn:
            m = repo.get_model(conn, name)
            sampled = window_rows(conn, m.id, ver, t0, t1, data.rows, features, wanted,
                                  opts.seed)
        if sampled.num_rows == 0:
            raise DataError(f"No logged predictions of {name!r} version {ver!r} in the window: "
                            "nothing to explain.", "start")
        window = sampled.to_pandas()
        key = _key("window", digest, opts.to_dict(), sample_size, where, data.rows, t0, t1)
        hit = self._answers.get(key)
        if hit is not None:
            return hit
        window = _typed(window, background)
        ref_imp = self._reference(name, ver, model, background, digest, opts, sample_size,
                                  should_stop)
        win_imp = replace(_model_call(lambda: global_importance(
            model, window, background, opts, sample_size=sample_size,
            should_stop=should_stop), name, ver),
            n_rows=int(data.rows))  # the interval is of a sample of the whole window
        answer: dict[str, Any] = {
            "model": name, "version": ver, "rows": int(data.rows), "sample_size": sample_size,
            "importance": win_imp.to_dict(), "reference": ref_imp.to_dict(),
            "drift": attribution_drift(ref_imp, win_imp).to_dict()}
        if where:
            answer["slice"] = _model_call(lambda: slice_importance(
                model, window, background, [tuple(c) for c in where], opts,
                sample_size=sample_size, should_stop=should_stop).to_dict(), name, ver)
        self._answers.put(key, answer)
        return answer


def _resolve(model: Any, background: pd.DataFrame, opts: Any) -> str | None:
    """The explainer ``opts`` resolves to for this model (``tree``, ``linear``,
    ``permutation``, ``kernel``, ``lime``), read from two background rows; None when the
    model cannot be adapted (the explainer itself then says what is wrong, at no cost)."""
    from aiwarden.explain._attributions import resolve_method
    from aiwarden.explain._model import adapt

    head = background.head(2)
    try:
        adapter, _, seen = adapt(model, head, head, opts.task)
        return resolve_method(adapter, seen, opts.method)
    except AiwardenError:
        return None


def _per_row(opts: Any, method: str | None) -> int | None:
    """Model rows a black-box explainer evaluates per explained row (None: Tree or Linear
    SHAP, which cost a pass over the trees or weights instead)."""
    if method in (None, "tree", "linear"):
        return None
    per_row = max(opts.max_evals or 500, opts.kernel_samples or 0,
                  opts.lime_samples if opts.method == "lime" else 0)
    return per_row * (1 if opts.method == "lime" else opts.background_size)


def _tree_units(model: Any, opts: Any) -> int | None:
    """Interventional Tree SHAP's work per explained row, in (background row x tree x
    level) visits, from the model's own settings (None: the path-dependent algorithm, a
    pass over the trees). Measured: ~0.08 us a visit (a 300-tree forest, 1000 background
    rows: 1.8 CPU-s for 5 rows)."""
    from aiwarden.explain._attributions import tree_perturbation
    from aiwarden.explain._model import unwrap

    model = unwrap(model)[0]  # a registry predictor: its estimator holds the settings
    if tree_perturbation(model, opts.tree_perturbation) != "interventional":
        return None
    trees, depth = getattr(model, "n_estimators", None), getattr(model, "max_depth", None)
    trees = trees if isinstance(trees, int) and trees > 0 else 1
    depth = depth if isinstance(depth, int) and 0 < depth <= 20 else 20 if depth else 12
    return opts.background_size * trees * depth


def _fitted_sample(opts: Any, asked: int | None, passes: int, method: str | None,
                   model: Any = None) -> int:
    """The sample size to explain: ``asked``, checked against the budget; or, not asked,
    :data:`SAMPLE_SIZE` lowered to what the budget allows (no fewer than
    :data:`MIN_SAMPLE`: the default must work on a pipeline too, not answer a 422)."""
    if asked is None:
        cost = _per_row(opts, method)
        units = _tree_units(model, opts) if method == "tree" else None
        asked = SAMPLE_SIZE
        if cost is not None:
            asked = max(MIN_SAMPLE, min(SAMPLE_SIZE, MAX_EVALUATIONS // (cost * passes)))
        elif units:
            asked = max(MIN_SAMPLE, min(SAMPLE_SIZE, MAX_TREE_WORK // (units * passes)))
    _within_budget(opts, asked * passes, "sample_size", method, model)
    return asked


def _within_budget(opts: Any, rows: int, field: str, method: str | None,
                   model: Any = None) -> None:
    """Refuse a request whose black-box explanation would evaluate the model on more than
    :data:`MAX_EVALUATIONS` rows, or whose interventional Tree SHAP would make more than
    :data:`MAX_TREE_WORK` visits (each about a minute or two of a core)."""
    if method == "tree":
        units = _tree_units(model, opts)
        if units and rows * units > MAX_TREE_WORK:
            raise DataError(
                f"This explanation would make about {rows * units:,} tree visits ({rows} rows "
                f"x {opts.background_size} background rows x the trees' size); at most "
                f"{MAX_TREE_WORK:,} per request: lower {field} or background_size, or ask "
                "tree_perturbation 'tree_path_dependent'.", field)
        return
    per = _per_row(opts, method)
    if per is None:
        return
    per_row = per // (1 if opts.method == "lime" else opts.background_size)
    cost = rows * per
    if cost > MAX_EVALUATIONS:
        raise DataError(f"This explanation would evaluate the model on about {cost:,} rows "
                        f"({rows} x {per_row} evaluations x the background); at most "
                        f"{MAX_EVALUATIONS:,} per request: lower {field}, max_evals or "
                        "background_size.", field)


def _check_where(where: Any, background: pd.DataFrame) -> None:
    """A slice condition names an input, compares a number with a numeric one and a text
    with a category, before any explaining starts."""
    for i, (feature, op, value) in enumerate(where or []):
        if feature not in background.columns:
            raise DataError(f"where[{i}]: {feature!r} is not an input of the model; inputs: "
                            f"{list(background.columns)[:20]}.", "where")
        numeric = (pd.api.types.is_numeric_dtype(background[feature])
                   and not pd.api.types.is_bool_dtype(background[feature]))
        if numeric and not isinstance(value, int | float):
            raise DataError(f"where[{i}]: {feature} is numeric; compare it with a number.",
                            "where")
        if not numeric and op != "==":
            raise DataError(f"where[{i}]: {feature} is not numeric; use ==.", "where")


def _model_call(work: Callable[[], Any], name: str, version: str) -> Any:
    """Run the explainers; the model's own failure on these inputs is the caller's 422 (a
    category it never saw, a shape it refuses), not the server's 500."""
    try:
        return work()
    except AiwardenError:
        raise
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:  # onnxruntime's, LightGBM's, shap's own: all plain Exceptions
        raise DataError(f"{name!r} version {version!r} could not be explained on these rows: "
                        f"{type(exc).__name__}: {without_paths(str(exc))[:300]}",
                        "rows") from None


def _typed(frame: pd.DataFrame, background: pd.DataFrame) -> pd.DataFrame:
    """Rows typed as the reference sample holds each input (what the model was fitted on):
    stored rows keep categories as text, a JSON row may send 4 for 4.0. A value that cannot
    take the type is refused naming its row and feature."""
    out = {}
    for name in frame.columns:
        values, kind = frame[name].tolist(), background[name].dtype
        for i, v in enumerate(values):
            if not (v is None or isinstance(v, str | int | float | bool | np.generic)):
                raise DataError(f"rows[{i}].{name}: expected a number, a text or null, got "
                                f"{type(v).__name__}.", f"rows[{i}].{name}")
        if pd.api.types.is_bool_dtype(kind):
            truth = {"true": True, "false": False, "1": True, "0": False}
            col = [v if v is None or isinstance(v, bool) else truth.get(str(v).lower(), v)
                   for v in values]
            bad = [i for i, v in enumerate(col) if not (v is None or isinstance(v, bool))]
        elif pd.api.types.is_numeric_dtype(kind):
            col = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").tolist()
            bad = [i for i, (v, c) in enumerate(zip(values, col, strict=True))
                   if isinstance(v, bool) or (v is not None and not (
                       isinstance(v, float) and np.isnan(v)) and pd.isna(c))]
        else:
            col = [None if v is None else v if isinstance(v, str) else
                   str(v).lower() if isinstance(v, bool) else str(v) for v in values]
            bad = []
        if bad:
            i = bad[0]
            raise DataError(f"rows[{i}].{name}: {str(values[i])[:40]!r} is not a "
                            f"{'boolean' if pd.api.types.is_bool_dtype(kind) else 'number'}, "
                            f"as the model's reference holds it.", f"rows[{i}].{name}")
        numeric = pd.api.types.is_numeric_dtype(kind) and not pd.api.types.is_bool_dtype(kind)
        out[name] = pd.Series(col, dtype=np.float64 if numeric else object)
    return pd.DataFrame(out)


def _flat(row: Any, i: int) -> dict[str, Any]:
    """A row sent to explain, flat (``{"amount": 4}``) or nested (``{"features": {...}}``)."""
    if not isinstance(row, Mapping):
        raise DataError(f"rows[{i}]: expected an object of feature values, got "
                        f"{type(row).__name__}.", f"rows[{i}]")
    nested = row.get("features")
    if isinstance(nested, Mapping):
        return {**{k: v for k, v in row.items() if k != "features"}, **nested}
    return dict(row)


#: how far a logged probability may sit from the model's own (clients round scores)
PROBABILITY_TOLERANCE = 0.01
#: relative distance for a logged regression prediction
PREDICTION_TOLERANCE = 1e-3


def logged_output(e: Mapping[str, Any], row: pd.Series, schema: Any,
                  probability: float | None = None) -> dict[str, Any]:
    """The logged score or prediction beside the registered model's output on the logged
    features. Why: an explanation is of what the registered model computes; if the served
    model or its inputs were different (another artifact, a preprocessing step outside the
    model), the logged answer disagrees and the explanation does not explain it.
    ``probability``: the model's probability of the explained class, which a multiclass
    margin (a logit) cannot be turned into on its own."""
    from aiwarden.engine.schema import Role

    space, output, cls = e.get("output_space"), e.get("output"), e.get("explained_class")
    complement = False  # compared with 1 - score
    if output is None:
        return {"value": None, "reason": "the model gave no finite output for this row"}
    if space == "prediction":
        column, comparable = schema.column_for(Role.PREDICTION), float(output)
        what = "prediction"
    else:
        scores = schema.score_columns
        match = [c for c in scores if c.label is not None and str(c.label) == str(cls)]
        single = scores[0] if len(scores) == 1 else None
        # a binary model's one score is its last class's: the other class's is 1 - score
        complement = (not match and single is not None and len(schema.classes) == 2
                      and str(cls) == str(schema.classes[0]))
        column = (match[0].name if match else single.name
                  if single is not None and (single.label is None or complement) else None)
        what = "score"
        if space == "margin" and len(scores) != 1:
            if probability is None:
                return {"value": None, "reason": "the model's probability of the explained "
                                                 "class could not be computed to compare"}
            comparable = probability
        elif space == "margin":
            comparable = float(1 / (1 + np.exp(-float(output))))
        else:
            comparable = float(output)
    raw = row.get(column) if column is not None else None
    try:
        value = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        value = None
    if value is None or not np.isfinite(value):
        return {"value": None, "reason": f"no {what} of class {cls!r} was logged"
                if what == "score" and cls is not None else f"no {what} was logged"}
    if what == "score" and complement:
        value = 1.0 - value
    diff = comparable - value
    tol = (PROBABILITY_TOLERANCE if what == "score"
           else PREDICTION_TOLERANCE * max(abs(value), abs(comparable), 1e-9))
    return {"value": value, "model": comparable, "difference": diff,
            "agrees": bool(abs(diff) <= tol),
            "compared": f"logged {what} {column!r} vs the model's {_compared(space, scores)}"}


def _compared(space: str | None, scores: Sequence[Any]) -> str:
    if space != "margin":
        return str(space)
    return ("probability (sigmoid of the margin)" if len(scores) == 1
            else "probability (predict_proba; the margin is a logit)")
