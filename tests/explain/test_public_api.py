"""The public surface is pinned; a missing extra is one line naming it; no server import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import aiwarden.explain as explain
from aiwarden.explain import MissingExtraError, explain_rows
from tests.explain.conftest import data


def test_public_names_are_pinned() -> None:
    assert sorted(explain.__all__) == sorted([
        "INSTALL_HINT", "METHODS", "AttributionDrift", "DriftImpact", "ExplainOptions",
        "Explanation", "FeatureAttributionShift", "FeatureContribution", "FeatureImportance",
        "GlobalImportance", "MissingExtraError", "RowExplanations", "SliceImportance",
        "attribution_drift", "explain_rows", "global_importance", "importance_from_values",
        "ndcg", "slice_importance", "weigh_drift"])


def test_importing_explain_loads_neither_shap_nor_the_server() -> None:
    code = ("import sys, aiwarden.explain; "
            "print(sorted(m for m in ('shap', 'lime', 'aiwarden.server', 'aiwarden.registry')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("module", "method"), [("shap", "auto"), ("lime", "lime")])
def test_a_missing_extra_is_one_line_naming_it(monkeypatch, module, method) -> None:
    from sklearn.linear_model import LogisticRegression

    x, y, _ = data(200)
    model = LogisticRegression().fit(x, y)
    monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
    if module == "lime":
        monkeypatch.setitem(sys.modules, "lime.lime_tabular", None)
    with pytest.raises(MissingExtraError) as exc:
        explain_rows(model, x.iloc[:2], x, method=method)
    text = str(exc.value)
    assert "\n" not in text and "pip install 'aiwarden[explain]'" in text
    assert module in text and isinstance(exc.value, ImportError)


def test_options_round_trip_and_name_bad_values() -> None:
    from aiwarden.errors import ParameterError

    opts = explain.ExplainOptions.from_dict({"method": "tree", "seed": 3})
    assert explain.ExplainOptions.from_dict(opts.to_dict()) == opts
    with pytest.raises(ParameterError, match="'background_size' parameter of ExplainOptions "
                                             "must be an int in"):
        explain.ExplainOptions(background_size=0)
