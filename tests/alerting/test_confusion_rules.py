"""Rule values of the confusion and class_recall metrics from a window's payload, and what
a rule may say about classes."""

from __future__ import annotations

import numpy as np
import pytest

from aiwarden.alerting.rules import (
    MAX_PAIR_CLASSES,
    Rule,
    check_rule_classes,
    load_rules,
    rule_value,
)
from aiwarden.engine.class_confusion import ClassConfusion
from aiwarden.errors import ParameterError

CLASSES = ("apple", "banana", "cucumber")
#                apple banana cucumber  (predicted)
MATRIX = np.array([[50, 2, 3],     # apple
                   [1, 30, 19],    # banana
                   [0, 4, 0]])     # cucumber: never right


def _payload() -> dict:
    return {"labels": 120, **ClassConfusion(CLASSES, MATRIX).to_dict()}


def _value(**spec: object) -> float | None:
    return rule_value(Rule(name="r", critical=0.5, **spec), _payload())


def test_pairs_and_classes() -> None:
    assert _value(metric="confusion", pair="banana->cucumber") == pytest.approx(19 / 50)
    assert _value(metric="confusion", pair="banana->cucumber", stat="count") == 19
    assert _value(metric="confusion") == 1.0  # cucumber -> banana: 4 of 4
    assert _value(metric="confusion", stat="count") == 19
    assert _value(metric="class_recall", **{"class": "banana"}) == pytest.approx(0.6)
    assert _value(metric="class_recall", stat="precision", **{"class": "apple"}) == \
        pytest.approx(50 / 51)
    assert _value(metric="class_recall") == 0.0  # the worst class: cucumber
    assert _value(metric="class_recall", stat="precision") == 0.0  # cucumber never right
    assert rule_value(Rule(name="r", metric="confusion", critical=1),
                      {"labels": 0, "matrix": None}) is None


def test_unknown_names_raise_naming_the_field() -> None:
    with pytest.raises(ParameterError, match="'kiwi' is not a class") as exc:
        _value(metric="confusion", pair="banana->kiwi")
    assert exc.value.field == "pair"
    with pytest.raises(ParameterError, match="'Banana' is not a class") as exc:
        _value(metric="class_recall", **{"class": "Banana"})
    assert exc.value.field == "class"


def test_pair_star_is_per_pair_and_bounded() -> None:
    rule = load_rules({"rules": [{"name": "r", "metric": "confusion", "pair": "*",
                                  "critical": 0.2}]}).rules[0]
    check_rule_classes(rule, CLASSES)
    many = tuple(f"c{i}" for i in range(MAX_PAIR_CLASSES + 1))
    with pytest.raises(ParameterError, match="at most 30 classes") as exc:
        check_rule_classes(rule, many)
    assert exc.value.field == "pair"
    with pytest.raises(ParameterError, match="at most 30 classes"):
        rule_value(rule, _payload())  # the evaluator splits it into pairs first


@pytest.mark.parametrize(("spec", "where", "words"), [
    ({"metric": "confusion", "pair": "banana"}, "rules[0].pair", "true->predicted"),
    ({"metric": "confusion", "pair": ""}, "rules[0].pair", "at least 1"),
    ({"metric": "performance", "pair": "a->b"}, "rules[0]", "confusion metric only"),
    ({"metric": "confusion", "class": "a"}, "rules[0]", "class_recall metric only"),
    ({"metric": "confusion", "stat": "recall"}, "rules[0]", "not offered"),
])
def test_rule_fields_are_checked(spec: dict, where: str, words: str) -> None:
    with pytest.raises(ParameterError, match=words) as exc:
        load_rules({"rules": [{"name": "r", "critical": 0.5, **spec}]})
    assert exc.value.field == where
