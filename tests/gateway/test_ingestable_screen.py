"""The ingest pre-check's screen (gateway/_ingestable.py) takes a batch column by column;
it must pass exactly the batches the value-by-value rule passes, whatever the rows' shapes
(shared columns, a row missing one, a row with a column of its own, tags), and one row."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd

from aiwarden.engine.schema import infer_schema
from aiwarden.gateway._ingestable import _NUMBER, _SCALAR, IngestCheck
from aiwarden.gateway._rows import Item

SCHEMA = infer_schema(pd.DataFrame({"amount": [1.0, 2.5], "hour": [3, 4],
                                    "merchant": ["a", "b"], "country": ["FR", "DE"]}))
VALUES = [1, 2.5, None, np.float64(1.5), np.int64(3), "x", True, np.bool_(False), [1], {"a": 1},
          b"x", 1 + 2j]


def _by_value(check: IngestCheck, items: list[Item]) -> bool:
    """The rule, value by value: a number in a numerical column, a plain scalar elsewhere,
    no NUL in an id."""
    if any("\x00" in it.prediction_id for it in items):
        return False
    return all(type(v) in (_NUMBER if k in check.numeric else _SCALAR)
               for it in items for part in (it.features, it.tags or {})
               for k, v in part.items())


def _row(rng: random.Random, plain: bool) -> dict:
    row = {"amount": rng.choice([1.0, 2, None]), "hour": 3, "merchant": "a", "country": "FR"}
    if not plain:
        row[rng.choice([*row, "extra"])] = rng.choice(VALUES)
        if rng.random() < 0.3:
            row.pop(rng.choice(list(row)))
    return row


def test_the_column_screen_passes_what_the_value_rule_passes() -> None:
    assert IngestCheck.of(SCHEMA).numeric == {"amount", "hour"}
    check, rng, passed = IngestCheck.of(SCHEMA), random.Random(7), 0
    for trial in range(3000):
        n = rng.choice([1, 2, 5, 40])
        bad = rng.randrange(n) if trial % 2 else -1
        items = [Item("\x00" if i == bad and trial % 7 == 0 else f"id{i}",
                      _row(rng, i != bad), None if rng.random() < 0.7 else
                      {"team": rng.choice(VALUES[:8])}, True) for i in range(n)]
        expected = _by_value(check, items)
        assert check._plain(items) is expected, items
        passed += expected
    assert 300 < passed < 2700  # both verdicts were exercised
    assert IngestCheck(None)._plain([Item("a\x00", {"amount": [1]}, None, True)]) is False
    assert IngestCheck(None)._plain([Item("a", {"amount": [1]}, None, True)]) is True
