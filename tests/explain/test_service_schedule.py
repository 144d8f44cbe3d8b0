"""The explanation service and the attribution schedule on a real SQLite store: the
reference importance is computed once per artifact and options (a smaller sample reuses a
larger one), and a bounded pass of the schedule checks one model per call, round robin."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from bench.explain_schedule import seed_models


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from aiwarden.alerting.evaluator import Evaluator
    from aiwarden.monitoring.service import Monitor
    from aiwarden.registry.service import Registry
    from aiwarden.store.database import Database

    tmp = tmp_path_factory.mktemp("svc")
    db = Database(f"sqlite:///{tmp}/t.db")
    db.migrate()
    mon = Monitor(db)
    reg = Registry(db, f"file://{tmp}/artifacts")
    now = time.time()
    names = seed_models(mon, reg, 3, now)
    evaluator = Evaluator(mon)
    assert evaluator.evaluate_once().evaluated  # holds the evaluator lease
    yield {"mon": mon, "reg": reg, "names": names, "now": now, "holder": evaluator.holder}
    db.dispose()


def _svc(setup: dict[str, Any]) -> Any:
    from aiwarden.monitoring.explanations import Explanations

    return Explanations(setup["mon"], lambda: setup["reg"])


def test_the_rca_reuses_the_apis_larger_reference_sample(setup) -> None:
    svc, name = _svc(setup), setup["names"][0]
    api = svc.importance(name, version="1", sample_size=300)
    assert api["reference"]["n_explained"] == 300
    rca, why = svc.reference_importance(name, "1", sample_size=200)
    assert why is None
    assert rca == {f["feature"]: f["importance"] for f in api["reference"]["features"]}


def test_a_larger_sample_replaces_a_smaller_one(setup) -> None:
    svc, name = _svc(setup), setup["names"][1]
    small, _ = svc.reference_importance(name, "1", sample_size=100)
    api = svc.importance(name, version="1", sample_size=300)
    assert api["reference"]["n_explained"] == 300  # not the 100-row answer
    again, _ = svc.reference_importance(name, "1", sample_size=100)
    assert again == {f["feature"]: f["importance"] for f in api["reference"]["features"]}
    assert again != small


def test_a_bounded_pass_checks_one_model_round_robin(setup) -> None:
    from aiwarden.monitoring.attribution_watch import AttributionWatch
    from aiwarden.store import kv
    from aiwarden.store import models_repo as repo

    watch = AttributionWatch(_svc(setup), setup["holder"])
    assert watch.opted_in()  # their attribution_drift rules: the loop warms shap at start
    at = time.time()
    made = [watch.run_due(at, limit=1) for _ in range(4)]
    assert made == [1, 1, 1, 0]  # one version, one window each; then none is due
    mon = setup["mon"]
    with mon.db.read() as conn:
        last = {n: kv.get(conn, f"attribution:{repo.get_model(conn, n).id}:checks", [])
                for n in setup["names"]}
    assert all(len(c) == 1 and c[0]["at"] == at and c[0]["ndcg"] > 0
               for c in last.values()), last
    assert watch.run_due(at + 3600) == 3  # unbounded: every model due again
