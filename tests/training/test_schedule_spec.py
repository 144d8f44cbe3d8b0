"""Pipeline declarations: cron schedules (croniter) and the spec's field-naming errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from aiwarden.training.schedule import check_cron, due_between, next_after
from aiwarden.training.spec import PipelineSpec


def _at(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_cron_slots_are_utc_and_a_long_sleep_starts_one_run() -> None:
    before = _at(2026, 12, 5, 2, 59)
    assert next_after("0 3 * * *", before) == _at(2026, 12, 5, 3, 0)
    assert due_between("0 3 * * *", before, before + 30) is None
    assert due_between("0 3 * * *", before, _at(2026, 12, 5, 3, 0)) == _at(2026, 12, 5, 3, 0)
    # three days asleep: the latest missed slot only
    assert due_between("0 3 * * *", before, _at(2026, 12, 8, 1, 0)) == _at(2026, 12, 7, 3, 0)
    with pytest.raises(ValueError, match="not a valid cron"):
        check_cron("61 * * * *")
    with pytest.raises(ValueError, match="5-field"):
        check_cron("@daily")


def test_a_spec_names_the_field_it_refuses() -> None:
    ok = PipelineSpec.model_validate({"model": "fraud", "entry": "fraud_train.pipeline:train",
                                      "triggers": {"schedule": "0 3 * * 1",
                                                   "on_alerts": ["feature-drift"]}})
    assert ok.data.window == "7d" and ok.executor.kind == "local"
    cases = [({"entry": "not an entry"}, "entry"),
             ({"entry": "a.b:c", "command": ["python", "t.py"]}, "exactly one"),
             ({"entry": "a.b:c", "data": {"window": "a week"}}, "window"),
             ({"entry": "a.b:c", "data": {"source": "file"}}, "data.uri"),
             ({"entry": "a.b:c", "triggers": {"schedule": "every day"}}, "schedule"),
             ({"entry": "a.b:c", "gates": {"alpha": 2}}, "alpha"),
             ({"entry": "a.b:c", "executor": {"kind": "kubernetes"}}, "kind"),
             ({"entry": "a.b:c", "retries": 3}, "retries")]
    for extra, named in cases:
        with pytest.raises(ValidationError, match=named):
            PipelineSpec.model_validate({"model": "fraud", **extra})
