"""One run, step by step: data, data and label gates, training, the candidate's gates,
registration and promotion. Each step is recorded on the run as it happens.

The candidate's metrics are computed here, on the training and holdout rows, from its own
predictions: a pipeline's self-reported numbers are kept for the record but never trusted
by a gate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from aiwarden.training import gates, store
from aiwarden.training.candidate import (
    champion_predictions,
    infra_gate,
    load_candidate,
    predictions,
)
from aiwarden.training.contract import TrainingContext
from aiwarden.training.data import labelled_rows, parquet_bytes, split
from aiwarden.training.local_executor import Job, Outcome, run_local
from aiwarden.training.spec import PipelineSpec

if TYPE_CHECKING:
    from aiwarden.training.service import TrainingService

__all__ = ["RunSteps", "infra_limit", "metric_value", "predict_limit"]

_MAX_TRAIN_SCORED = 100_000  # rows of the training set the candidate predicts for the gap


def metric_value(metric: str, y: np.ndarray, pred: np.ndarray) -> float:
    if metric == "roc_auc":
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(y, pred))
    if metric == "mae":
        return float(np.mean(np.abs(y.astype(float) - pred.astype(float))))
    return float(np.mean(y.astype(str) == pred.astype(str)))


class RunSteps:
    def __init__(self, service: TrainingService, run: store.RunRow) -> None:
        self.svc, self.run = service, run
        self.spec = PipelineSpec.model_validate(run.spec)
        self.model = self.spec.model
        self.run_dir = Path(run.run_dir or service.run_root / f"run-{run.id}")
        self.data: dict[str, Any] = {}
        self.gates: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {"steps": []}
        self.version: str | None = None
        self._beat = 0.0
        self._per_row_ms = 0.0  # the infra gate's p95 for one row: the watchdog's scale

    # ------------------------------------------------------------ recording
    def step(self, text: str, **detail: Any) -> None:
        self.result["steps"].append({"at": time.time(), "text": text, **detail})
        self.beat(force=True)
        self.svc._event(self.model, f"Run #{self.run.id}: {text}", {"run": self.run.id,
                                                                     **detail})

    def beat(self, force: bool = False) -> bool:
        """Heartbeat (and progress) at most every ``heartbeat`` s; False: cancel."""
        now = time.time()
        if not force and now - self._beat < self.svc.heartbeat:
            return False
        self._beat = now
        with self.svc.monitor.db.write(self.run.model_id) as conn:
            store.heartbeat(conn, self.run.id, self.svc.holder, now, data=self.data,
                            gates=self.gates, result=self.result)
            return store.cancel_requested(conn, self.run.id)

    def stop_now(self) -> bool:
        """The executor's question, many times a second: cancelled, or the server stopping
        (a run is never left training behind a server that is gone)."""
        return self.svc._stopping.is_set() or self.beat()

    def gate(self, result: gates.GateResult) -> bool:
        self.gates.append(result.to_dict())
        self.step(f"{result.gate} gate {'passed' if result.passed else 'refused'}: "
                  f"{result.reason}", gate=result.gate, passed=result.passed)
        return result.passed

    def finish(self, state: str, reason: str) -> None:
        with self.svc.monitor.db.write(self.run.model_id) as conn:
            if state == "cancelled":  # who asked, as the cancel recorded it
                reason = (store.get_run(conn, self.run.id).reason or reason)
            ended = store.finish(conn, self.run.id, self.svc.holder, state, reason, time.time(),
                                 data=self.data, gates=self.gates, result=self.result,
                                 version=self.version)
        if ended:
            self.svc._event(self.model, f"Run #{self.run.id} {state}: {reason}",
                            {"run": self.run.id, "state": state, "version": self.version})

    # ---------------------------------------------------------------- steps
    def run_all(self) -> tuple[str, str]:
        if self.spec.data.images is not None:
            verdict = self._image_audit()
            if verdict == "blocked":
                return verdict, self.gates[-1]["reason"]
            if verdict == "cancelled":
                return ("failed", "the server stopped during the image audit; queue a new "
                        "run") if self.svc._stopping.is_set() else (
                        "cancelled", "cancelled during the image audit")
        if self.svc.monitor.model(self.model).task == "text_generation":
            return self._run_text()
        ref, schema = self._serving_reference()
        from aiwarden.training.service import default_metric, features_of

        target, features = features_of(schema)
        events = self.svc.monitor.export_events(
            self.model, start=time.time() - _seconds(self.spec.data.window), end=time.time())
        rows = labelled_rows(events, target=target, features=features)
        self.data |= {"rows": rows.num_rows, "window": self.spec.data.window}
        ok, rows = self._data_gate(ref, rows)
        if not ok:
            return "blocked", self.gates[-1]["reason"]
        if "prediction_id" in rows.column_names:
            rows = rows.drop_columns(["prediction_id"])
        if self.spec.gates.labels and not self.gate(gates.label_gate(
                rows.drop_columns(["timestamp"]), target, features=features,
                reference_counts=_label_counts(ref, target))):
            return "blocked", self.gates[-1]["reason"]
        ok, extra = self._extra(ref)
        if not ok:
            return "blocked", self.gates[-1]["reason"]
        data = split(rows, now=time.time(), holdout_window=(
            None if self.spec.holdout.window is None else _seconds(self.spec.holdout.window)),
            share=self.spec.holdout.share, seed=self.spec.holdout.seed,
            min_rows=self.spec.data.min_rows, extra=extra)
        self.data |= data.lineage | {"window": self.spec.data.window}
        self.step(f"data ready: {data.train.num_rows} training rows, {data.holdout.num_rows} "
                  f"holdout rows ({data.lineage['holdout']})", sha256=data.lineage["sha256"])
        outcome = self._train(data, target, features, str(schema.task))
        self.result |= {"seconds": round(outcome.seconds, 3),
                        "peak_memory_mb": round(outcome.peak_memory_mb, 1),
                        "exit_code": outcome.exit_code}
        if outcome.state == "cancelled" and self.svc._stopping.is_set():
            return "failed", "the server stopped while it trained; queue a new run"
        if outcome.state != "succeeded" or outcome.result is None:
            return outcome.state, outcome.reason
        self.result["reported_metrics"] = {"train": outcome.result.train_metrics,
                                           "holdout": outcome.result.holdout_metrics}
        loaded, refused = load_candidate(outcome.result.artifact, outcome.result.format,
                                         self.svc.registry.trusted_types)
        if refused is not None:
            self.gate(refused)
            return "blocked", refused.reason
        holdout = self._holdout = data.holdout.to_pandas()
        verdict = self._infra(loaded, holdout[features])
        if verdict == "blocked":
            return "blocked", self.gates[-1]["reason"]
        if verdict == "cancelled":
            return ("failed", "the server stopped during the infra gate; queue a new run"
                    ) if self.svc._stopping.is_set() else (
                    "cancelled", "cancelled during the infra gate")
        self._per_row_ms = float(self.gates[-1]["evidence"].get("p95_ms") or 0.0)
        has_scores = callable(getattr(loaded.predictor, "predict_proba", None))
        metric = self.spec.gates.metric or default_metric(schema.task, has_scores)
        try:
            return self._judge(loaded, data, holdout, target, features, metric)
        except _Hung as hung:
            if hung.gate is not None:
                self.gate(gates.GateResult(hung.gate, False, hung.reason, hung.evidence))
            return hung.state, hung.reason

    def _judge(self, loaded: Any, data: Any, holdout: Any, target: str,
               features: list[str], metric: str) -> tuple[str, str]:
        """The gates after the infra gate; every prediction in them is watched
        (:meth:`_watched`): a candidate fine on the infra gate's 200 rows may still hang on
        the whole holdout, and so may the champion."""
        kind = "score" if metric == "roc_auc" else "label"
        y_hold = holdout[target].to_numpy()
        first = "overfit" if self.spec.gates.max_overfit_gap is not None else (
            "slices" if self.spec.gates.slice_min_drop is not None else "comparison")
        cand = self._watched(lambda: predictions(loaded.predictor, holdout[features], kind),
                             first, len(holdout))
        if not self._overfit(loaded, data.train, target, features, metric, kind, y_hold, cand):
            return "blocked", self.gates[-1]["reason"]
        champ, champ_version = self._watched(lambda: champion_predictions(
            self.svc.registry, self.model, holdout[features], kind), None, len(holdout))
        if champ is None:
            self.step(f"comparison and slice gates skipped: {champ_version}")
        else:
            self.data["champion"] = champ_version
            # slices first: when a group fails, saying which beats an overall "worse"
            if self.spec.gates.slice_min_drop is not None:
                labels_champ = self._watched(lambda: predictions(
                    self.svc.registry.load(self.model, alias="champion"), holdout[features],
                    "label"), None, len(holdout)) if kind == "score" else champ
                labels_cand = (self._watched(lambda: predictions(
                    loaded.predictor, holdout[features], "label"), "slices", len(holdout))
                    if kind == "score" else cand)
                task = "regression" if metric == "mae" else "classification"
                if not self.gate(gates.slice_gate(
                        holdout[features], y_hold, labels_champ, labels_cand, task=task,
                        alpha=self.spec.gates.alpha,
                        min_drop=self.spec.gates.slice_min_drop)):
                    return "blocked", self.gates[-1]["reason"]
            if not self.gate(gates.comparison_gate(
                    y_hold, champ, cand, metric=metric, alpha=self.spec.gates.alpha,
                    min_value=self.spec.gates.min_value,
                    require_better=self.spec.gates.require_better)):
                return "blocked", self.gates[-1]["reason"]
        self._register(loaded)
        return "succeeded", self._promote()

    def _run_text(self) -> tuple[str, str]:
        """A text model (a prompt template, a fine-tune): its dataset is a file, audited by
        the LLM evaluators before anything trains on it; no labels, so no comparison or slice
        gate (the canary's unsafe rate judges the candidate in production)."""
        from aiwarden.llm.audit import DEFAULT_EVALUATORS, load_evaluators_named
        from aiwarden.tabular_io import read_file
        from aiwarden.training.data import TrainingData

        if not self.spec.data.uri:
            return "failed", ("a text model's pipeline reads its dataset from data.uri (a "
                              "JSONL, CSV or Parquet file)")
        table = read_file(self.spec.data.uri)
        texts = [f.name for f in table.schema if pa.types.is_string(f.type)
                 or pa.types.is_large_string(f.type) or pa.types.is_list(f.type)]
        if self.spec.gates.text_audit:
            evaluators, _ = load_evaluators_named(list(DEFAULT_EVALUATORS))
            if not self.gate(gates.text_audit_gate(table, texts, evaluators)):
                return "blocked", self.gates[-1]["reason"]
        hold = np.zeros(table.num_rows, dtype=bool)
        rng = np.random.default_rng(self.spec.holdout.seed)
        hold[rng.choice(table.num_rows, round(table.num_rows * self.spec.holdout.share),
                        replace=False)] = True
        data = TrainingData(table.filter(pa.array(~hold)), table.filter(pa.array(hold)), {})
        self.data |= {"rows": table.num_rows, "train_rows": data.train.num_rows,
                      "holdout_rows": data.holdout.num_rows, "uri": self.spec.data.uri,
                      "sha256": _sha256(self.spec.data.uri)}
        outcome = self._train(data, "", texts, "text_generation")
        self.result |= {"seconds": round(outcome.seconds, 3),
                        "peak_memory_mb": round(outcome.peak_memory_mb, 1)}
        if outcome.state == "cancelled" and self.svc._stopping.is_set():
            return "failed", "the server stopped while it trained; queue a new run"
        if outcome.state != "succeeded" or outcome.result is None:
            return outcome.state, outcome.reason
        loaded, refused = load_candidate(outcome.result.artifact, outcome.result.format,
                                         self.svc.registry.trusted_types)
        if refused is not None:
            self.gate(refused)
            return "blocked", refused.reason
        self.gate(gates.GateResult("infra", True, f"loads as {loaded.format}",
                                   {"format": loaded.format, "size": len(loaded.data)}))
        self._register(loaded)
        return "succeeded", self._promote()

    def _image_audit(self) -> str:
        """The image set's audit, before anything else reads or trains: a truncated JPEG
        named by path here costs seconds; found by the training function, a run. The audit
        runs in a thread so the run keeps its heartbeat (a large set takes minutes)."""

        source = str(self.spec.data.images)
        self.data["images"] = source
        limits = self.spec.gates.image_audit
        if limits is None:
            self.step("image audit gate skipped (gates.image_audit is null)")
            return "passed"
        state, out, _ = self._in_thread(
            lambda: gates.image_audit_gate(source, limits.model_dump()),
            f"aiwarden-image-audit-{self.run.id}")
        if state == "stopped":  # the thread is left to finish on its own; nothing reads it
            return "cancelled"
        if not out:  # the thread raised: a bug of ours, said as the gate's refusal
            out.append(gates.GateResult("image_audit", False, "the image audit stopped "
                                        "with an internal error (see the server log)",
                                        {"source": source}))
        evidence = out[0].evidence
        if "images" in evidence:
            self.data["image_count"] = evidence["images"]
        return "passed" if self.gate(out[0]) else "blocked"

    def _infra(self, loaded: Any, frame: Any) -> str:
        """The infra gate in a thread, watched: the candidate's predict is its own code
        (a custom step may wait on anything), so a call that never returns must neither
        hold the run past ``infra_limit`` seconds nor make it deaf to a cancel."""

        budget = self.spec.gates.latency_budget_ms
        limit = infra_limit(budget)
        state, out, _ = self._in_thread(lambda: infra_gate(loaded, frame, budget),
                                        f"aiwarden-infra-gate-{self.run.id}", limit)
        if state == "stopped":  # the thread is left to its call; nothing reads it
            return "cancelled"
        if state == "late":
            self.gate(gates.GateResult(
                "infra", False, f"too slow: the candidate's predictions did not finish "
                f"within {limit:g} s (a predict call that does not return)",
                {"format": loaded.format, "limit_s": limit, "budget_ms": budget}))
            return "blocked"
        if not out:  # the thread raised: a bug of ours, said as the gate's refusal
            out.append(gates.GateResult("infra", False, "the infra gate stopped with an "
                                        "internal error (see the server log)",
                                        {"format": loaded.format}))
        return "passed" if self.gate(out[0]) else "blocked"

    def _watched(self, call: Callable[[], Any], gate: str | None, rows: int) -> Any:
        """``call()`` (predictions) in a thread, watched as the infra gate is: a call that
        does not return within :func:`predict_limit` seconds ends the run (``gate``: the
        candidate's, refused by that gate; None: the champion's, a failure), and a cancel
        or the server stopping is answered meanwhile. What it raises is raised here."""

        limit = predict_limit(rows, self._per_row_ms)
        state, out, err = self._in_thread(call, f"aiwarden-predict-{self.run.id}", limit,
                                          keep_error=True)
        if state == "stopped":  # the thread is left to its call; nothing reads it
            raise _Hung(*(("failed", "the server stopped while the candidate was "
                           "judged; queue a new run") if self.svc._stopping.is_set()
                          else ("cancelled", "cancelled while the candidate was judged")))
        if state == "late":
            who = "candidate's" if gate is not None else "champion's"
            raise _Hung("blocked" if gate is not None else "failed",
                        f"the {who} predictions on {rows} rows did not finish within "
                        f"{limit:g} s (a predict call that does not return)", gate,
                        {"rows": rows, "limit_s": limit, "per_row_ms": self._per_row_ms})
        if err:
            raise err[0]
        return out[0]

    def _in_thread(self, call: Callable[[], Any], name: str, limit: float | None = None,
                   *, keep_error: bool = False
                   ) -> tuple[str, list[Any], list[BaseException]]:
        """``call()`` in a daemon thread while the run stays responsive: ``("stopped", ...)``
        on a cancel or the server stopping, ``("late", ...)`` past ``limit`` seconds, else
        ``("done", [result] or [], [error] or [])``. Without ``keep_error`` what it raises
        is left to the thread (the caller reads an empty result as an internal error)."""
        import threading

        out: list[Any] = []
        err: list[BaseException] = []

        def target() -> None:
            if not keep_error:
                out.append(call())
                return
            try:
                out.append(call())
            except BaseException as exc:  # handed to the run's thread
                err.append(exc)

        worker = threading.Thread(target=target, daemon=True, name=name)
        started = time.monotonic()
        worker.start()
        while worker.is_alive():
            worker.join(0.5)
            if not worker.is_alive():
                break
            if self.stop_now():
                return "stopped", out, err
            if limit is not None and time.monotonic() - started > limit:
                return "late", out, err
        return "done", out, err

    def _serving_reference(self) -> tuple[Any, Any]:
        from aiwarden.store import models_repo as repo

        monitor = self.svc.monitor
        with monitor.db.read() as conn:
            v = repo.get_version(conn, repo.get_model(conn, self.model))
            ref = monitor.refs.get(conn, v.id)
            # the version whose stored reference ``ref`` is (v's own, or the one it inherits)
            self._reference_id = v.id if v.fingerprint is not None else (
                repo.reference_source(conn, v.id))
        if ref is None:
            raise ValueError(f"the serving version {v.version} of {self.model!r} has no "
                             "reference: nothing to validate training data against")
        self.data["reference_version"] = v.version
        return ref, ref.schema_

    def _data_gate(self, ref: Any, rows: pa.Table) -> tuple[bool, pa.Table]:
        result, kept = gates.data_gate(ref, rows, policy=self.spec.gates.data_policy,
                                       max_bad_share=self.spec.gates.max_bad_share)
        if kept.num_rows != rows.num_rows:
            self.data["quarantined_rows"] = rows.num_rows - kept.num_rows
        return self.gate(result), kept

    def _extra(self, ref: Any) -> tuple[bool, pa.Table | None]:
        """(False: the file was blocked, the rows to union with the window): the file and the
        previous run's training set, each said in the lineage (a version trained on them must
        name them). The file passes the data gate as the window does, its rows named by their
        position in it; the previous set passed it in its own run."""
        parts, said = [], []
        if self.spec.data.uri:
            table = _read_table(self.spec.data.uri)
            result, kept = gates.data_gate(ref, table, policy=self.spec.gates.data_policy,
                                           max_bad_share=self.spec.gates.max_bad_share)
            said.append({"uri": self.spec.data.uri, "rows": kept.num_rows}
                        | ({"quarantined_rows": table.num_rows - kept.num_rows}
                           if kept.num_rows != table.num_rows else {}))
            self.data["extra"] = said
            if not self.gate(replace(result, gate="data_file",
                                     reason=f"{self.spec.data.uri}: {result.reason}")):
                return False, None
            parts.append(kept)
        if self.spec.data.union_previous:
            prev, run_id = self._previous_train()
            if prev is not None:
                parts.append(prev)
                said.append({"previous_run": run_id, "rows": prev.num_rows})
        if said:
            self.data["extra"] = said
        return True, pa.concat_tables(parts, promote_options="default") if parts else None

    def _previous_train(self) -> tuple[pa.Table | None, int | None]:
        """(the training rows of the model's latest succeeded run, its id)."""
        with self.svc.monitor.db.read() as conn:
            done = store.list_runs(conn, self.run.model_id, states=("succeeded",), limit=1)
        if not done or not done[0].run_dir:
            return None, None
        path = Path(done[0].run_dir) / "train.parquet"
        return (_read_table(str(path)), done[0].id) if path.is_file() else (None, None)

    def _train(self, data: Any, target: str, features: list[str], task: str) -> Outcome:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        train_path, holdout_path = self.run_dir / "train.parquet", self.run_dir / "holdout.parquet"
        train_path.write_bytes(parquet_bytes(data.train))
        holdout_path.write_bytes(parquet_bytes(data.holdout))
        ctx = TrainingContext(self.run.id, self.model, task, target, features, str(train_path),
                              str(holdout_path), str(self.run_dir), dict(self.spec.params),
                              self.spec.data.images)
        ex = self.spec.executor
        job = Job(ctx, entry=self.spec.entry,
                  command=tuple(self.spec.command) if self.spec.command else None,
                  time_limit=_seconds(ex.time_limit), memory_mb=ex.memory_mb)
        self.step(f"training on the {ex.kind} executor")
        should_cancel: Callable[[], bool] = self.stop_now
        if ex.kind == "dask":
            from aiwarden.training.dask_executor import run_dask

            return run_dask(job, ex.address or self.svc.dask_client, should_cancel=should_cancel,
                            egress=self.svc.egress)
        return run_local(job, should_cancel=should_cancel, warm=self.svc.warm)

    def _overfit(self, loaded: Any, train: pa.Table, target: str, features: list[str],
                 metric: str, kind: str, y_hold: np.ndarray, cand: np.ndarray) -> bool:
        if self.spec.gates.max_overfit_gap is None:
            return True
        scored = train if train.num_rows <= _MAX_TRAIN_SCORED else train.take(pa.array(
            np.random.default_rng(0).choice(train.num_rows, _MAX_TRAIN_SCORED, replace=False)))
        frame = scored.to_pandas()
        name = self.spec.gates.overfit_metric or metric
        own = "score" if name == "roc_auc" else "label"
        if own != kind:  # the gap is on another metric than the comparison's
            cand = self._watched(lambda: predictions(loaded.predictor,
                                                     self._holdout[features], own),
                                 "overfit", len(self._holdout))
        on_train = metric_value(name, frame[target].to_numpy(), self._watched(
            lambda: predictions(loaded.predictor, frame[features], own), "overfit",
            len(frame)))
        on_hold = metric_value(name, y_hold, cand)
        self.result["metrics"] = {"train": {name: on_train}, "holdout": {name: on_hold}}
        return self.gate(gates.overfit_gate({name: on_train}, {name: on_hold}, metric=name,
                                            max_gap=self.spec.gates.max_overfit_gap))

    def _register(self, loaded: Any) -> None:
        info = self.svc.registry.register(
            self.model, loaded.data, format=loaded.format, filename=loaded.filename,
            metadata={"lineage": {"run": self.run.id, "trigger": self.run.trigger,
                                  "data": {k: self.data.get(k) for k in (
                                      "sha256", "rows", "train_rows", "holdout_rows",
                                      "extra_rows", "extra", "window", "first_event",
                                      "last_event", "quarantined_rows", "images",
                                      "image_count")},
                                  "code": self.spec.entry or self.spec.command,
                                  "gates": [g["gate"] for g in self.gates]},
                      "params": self.spec.params,
                      "metrics": (self.result.get("metrics") or {}).get("holdout", {})},
            actor=f"training-run-{self.run.id}", admin=False, trust=False)
        self.version = info.version
        self._pin_reference()
        self.step(f"registered as version {info.version}", version=info.version)

    def _pin_reference(self) -> None:
        """The candidate is monitored against the reference its training data was checked
        against, for good: left to inherit, it would take the serving version's while a
        canary and another once promoted, and its stored profiles could not be merged."""
        from aiwarden.store import models_repo as repo

        source = getattr(self, "_reference_id", None)
        if source is None:
            return
        monitor = self.svc.monitor
        with monitor.db.write(self.run.model_id) as conn:
            m = repo.get_model(conn, self.model)
            pinned = repo.copy_reference(conn, source, repo.get_version(conn, m, self.version))
            src = repo.get_version_by_id(conn, source)
        if pinned:
            self.data["monitored_with_reference_of"] = src.version if src else None

    def _promote(self) -> str:
        p = self.spec.promotion
        reg = self.svc.registry
        reg.set_alias(self.model, "challenger", self.version, actor="aiwarden-training",
                      reason=f"run #{self.run.id} passed its gates")
        if "champion" not in reg.aliases(self.model):  # no one to canary beside
            self.result["promotion"] = {"state": "challenger"}
            return (f"version {self.version} is the challenger; the model has no champion "
                    "to compare it with or canary it beside: promote it by hand")
        if p.mode == "manual" or self.svc.policies is None:
            self.result["promotion"] = {"state": "challenger"}
            return f"version {self.version} is the challenger; promote it by hand"
        policy = ({"mode": "canary", "challenger": "@challenger", "percent": p.share * 100}
                  if p.mode == "canary" else {"mode": "shadow", "challenger": "@challenger"})
        self.svc.policies.set(self.model, policy, actor="aiwarden-training",
                              reason=f"run #{self.run.id}: {p.mode} of version {self.version}")
        now = time.time()
        self.result["promotion"] = {"state": p.mode, "at": now, "hold": p.hold,
                                    "hold_until": now + _seconds(p.hold)}
        return (f"version {self.version} in {p.mode} at {p.share:.0%} for {p.hold}; promoted "
                "when it holds" if p.mode == "canary" else
                f"version {self.version} in shadow; promote it by hand")


def infra_limit(budget_ms: float | None) -> float:
    """Seconds the infra gate may take in all: its 151 calls (one batch, 50 rows three times)
    twice over at the budget, plus 30 s for loading and a loaded machine; 10 min unbudgeted."""
    return 600.0 if budget_ms is None else 30.0 + 2 * 151 * budget_ms / 1000


def predict_limit(rows: int, per_row_ms: float) -> float:
    """Seconds one batch prediction after the infra gate may take: 30 s plus four times
    the rows at the infra gate's p95 for one row (at least 1 ms): a batch is far faster per
    row than single calls, so a model that predicted those rows in time passes easily."""
    return 30.0 + 4 * rows * max(per_row_ms, 1.0) / 1000


class _Hung(Exception):
    """A watched prediction ended the run: its state and reason, and the gate refused
    (None: nothing to put on a gate)."""

    def __init__(self, state: str, reason: str, gate: str | None = None,
                 evidence: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.state, self.reason, self.gate, self.evidence = state, reason, gate, evidence or {}


def _seconds(value: str) -> float:
    from aiwarden.monitoring.windows import parse_duration

    return parse_duration(value, "duration")


def _label_counts(ref: Any, target: str) -> dict[str, int] | None:
    """The reference's class counts of the target (None: no labels in the reference)."""
    prof = ref.profile_.columns.get(target)
    binning = ref.binnings_.get(target)
    cats = getattr(binning, "categories", None)
    if prof is None or cats is None or not hasattr(prof, "counts"):
        return None
    return {c: int(n) for c, n in zip(cats, prof.counts[:len(cats)], strict=True)}


def _sha256(path: str) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_table(uri: str) -> pa.Table:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if uri.endswith(".csv"):
        return pcsv.read_csv(uri)
    return pq.read_table(uri)
