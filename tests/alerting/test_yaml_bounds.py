"""YAML rule files and routing configs: aliases are read, alias bombs and recursive aliases
are refused before anything walks them (a 480-byte file hung the server's event loop)."""

from __future__ import annotations

import time

import pytest
import yaml

from aiwarden import _yaml as bounded_yaml
from aiwarden.alerting.rules import load_rules
from aiwarden.errors import ParameterError


def bomb(levels: int = 9, width: int = 9) -> str:
    """The classic "billion laughs": ``width ** levels`` leaves in a few hundred bytes."""
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    lines.append(f"rules: *a{levels - 1}")
    return "\n".join(lines) + "\n"


def expanded_size(value: object) -> int:
    if isinstance(value, dict):
        return 1 + sum(expanded_size(k) + expanded_size(v) for k, v in value.items())
    if isinstance(value, list):
        return 1 + sum(expanded_size(v) for v in value)
    return 1


def test_a_file_without_aliases_reads_as_pyyaml_reads_it() -> None:
    text = ("rules:\n  - {name: r, model: m, metric: drift, column: x, critical: 0.2}\n"
            "route: {receiver: hook, group_wait: 30s}\nn: [1, 2.5, true, null, '7']\n")
    assert bounded_yaml.safe_load(text) == yaml.safe_load(text)
    assert bounded_yaml.safe_load("") is None and yaml.safe_load("") is None


def test_ordinary_anchors_and_merge_keys_still_work() -> None:
    text = ("rules:\n  - &base {model: m, metric: drift, critical: 0.2, name: a, column: x}\n"
            "  - {<<: *base, name: b, column: y}\n")
    got = bounded_yaml.safe_load(text)
    assert got == yaml.safe_load(text)
    assert [r["column"] for r in got["rules"]] == ["x", "y"]
    assert load_rules(text).rules[1].name == "b"


def test_the_limit_is_on_the_expanded_size() -> None:
    text = bomb(levels=3, width=10)  # 1 + 10 + 100 + 1000 nodes under `rules`
    doc = yaml.safe_load(text)
    size = expanded_size(doc)
    assert bounded_yaml.safe_load(text, max_nodes=size) == doc
    with pytest.raises(bounded_yaml.YamlTooLarge, match="expands to more than"):
        bounded_yaml.safe_load(text, max_nodes=size - 1)


def test_billion_laughs_is_refused_quickly() -> None:
    text = bomb()
    assert len(text) < 600
    t0 = time.process_time()
    with pytest.raises(yaml.YAMLError, match="aliases"):
        bounded_yaml.safe_load(text)
    assert time.process_time() - t0 < 5  # a walk of the expanded document takes hours
    with pytest.raises(ParameterError, match="expands to more than") as err:
        load_rules(text, "rule file")
    assert err.value.field == "rules"


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {k: [1, {j: *a}]}\n"])
def test_a_recursive_alias_is_refused(text: str) -> None:
    assert yaml.safe_load(text)  # PyYAML builds a cyclic object that no walk finishes
    with pytest.raises(bounded_yaml.YamlTooLarge, match="recursive"):
        bounded_yaml.safe_load(text)
