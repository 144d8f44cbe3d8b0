"""The knobs of an explanation, in one frozen object the server can read from a request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from aiwarden.errors import ParameterError, check_param

__all__ = ["METHODS", "ExplainOptions"]

#: ``auto`` picks tree, linear or permutation from the model (docs/explain.md).
METHODS = ("auto", "tree", "linear", "permutation", "kernel", "lime")
_OWNER = "ExplainOptions"


@dataclass(frozen=True)
class ExplainOptions:
    """How to explain.

    ``background_size`` reference rows (a seeded sample) are the background every SHAP value
    is measured against; Kernel SHAP shrinks them further to ``kernel_background`` k-means
    centres (a seeded sample when a column is categorical) because its cost grows with
    background x samples. LIME reads only statistics of its background (quartiles, category
    frequencies), so it takes a larger seeded sample, ``lime_background`` rows: quartiles of
    100 rows move with the seed and so would the explanation. ``lime_samples`` perturbed rows
fit each LIME surrogate: twice LIME's own 5,000, because at 5,000 the weights' seed noise
(sd ~0.014 of a probability) reorders the fifth feature in 18 of 24 rows of a test set
with five informative and three noise features, at 10,000 in 3 of 24 (40,000: none;
tests/explain/test_lime_stability.py). ``max_evals`` bounds
    Permutation SHAP's model calls per row (None: ``max(500, 2 * features + 1)``).
    ``tree_perturbation`` is shap's ``feature_perturbation``
    for trees: ``interventional`` measures against the background like every other method;
    ``tree_path_dependent`` uses the training covers in the trees instead (faster, and the
    base value is then the training mean); ``auto`` is interventional except for
    scikit-learn's HistGradientBoosting*, whose interventional SHAP in shap 0.51 does not add
    up to the model's output (it reads the rows as float32; residuals up to 0.3 measured)
    while the path-dependent algorithm does to 1e-14, and for XGBoost with more than two
    classes (shap's margin missed XGBoost 3.2's per-class intercepts by up to 0.18; XGBoost's
    own path-dependent contributions add up). ``target_class`` is the class whose output is
    explained (None: the positive class of a binary model, the predicted class of each row
    for more classes). ``task`` overrides classifier detection for a black box.
    """

    method: str = "auto"
    seed: int = 0
    background_size: int = 100
    kernel_background: int = 20
    kernel_samples: int | None = None
    max_evals: int | None = None
    lime_samples: int = 10_000
    lime_background: int = 5000
    tree_perturbation: str = "auto"
    target_class: Any = None
    task: str = "auto"

    def __post_init__(self) -> None:
        check_param(self.method in METHODS, "method", _OWNER, f"one of {list(METHODS)}",
                    self.method)
        check_param(isinstance(self.seed, int) and not isinstance(self.seed, bool)
                    and self.seed >= 0, "seed", _OWNER, "an int >= 0", self.seed)
        for name, low in (("background_size", 1), ("kernel_background", 1),
                          ("lime_samples", 100), ("lime_background", 1)):
            value = getattr(self, name)
            check_param(isinstance(value, int) and not isinstance(value, bool)
                        and low <= value <= 1_000_000, name, _OWNER,
                        f"an int in [{low}, 1000000]", value)
        for name in ("kernel_samples", "max_evals"):
            value = getattr(self, name)
            check_param(value is None or (isinstance(value, int) and not isinstance(value, bool)
                                          and 1 <= value <= 10_000_000), name, _OWNER,
                        "None or an int in [1, 10000000]", value)
        check_param(self.tree_perturbation in ("auto", "interventional", "tree_path_dependent"),
                    "tree_perturbation", _OWNER,
                    "'auto', 'interventional' or 'tree_path_dependent'", self.tree_perturbation)
        check_param(self.task in ("auto", "classification", "regression"), "task", _OWNER,
                    "'auto', 'classification' or 'regression'", self.task)

    def with_(self, **changes: Any) -> ExplainOptions:
        """A copy with ``changes``; unknown names are an error naming the valid ones."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ParameterError(f"Unknown explain option(s) {unknown}; valid: "
                                 f"{[f.name for f in fields(self)]}.", unknown[0])
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> ExplainOptions:
        return cls().with_(**dict(d or {}))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
