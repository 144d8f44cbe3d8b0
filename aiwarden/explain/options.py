"""The knobs of an explanation, in one frozen object the server can read from a request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from aiwarden.errors import ParameterError, check_param

__all__ = ["LIME_GAP_SD", "LIME_START", "METHODS", "ExplainOptions"]

#: ``auto`` picks tree, linear or permutation from the model (docs/explain.md).
METHODS = ("auto", "tree", "linear", "permutation", "kernel", "lime")
_OWNER = "ExplainOptions"
#: LIME's first sample count when the caller does not fix ``lime_samples``
LIME_START = 10_000
#: a gap between adjacent |weights| counts as resolved at this many seed standard deviations
LIME_GAP_SD = 3.0


class _Grown(int):
    """``lime_samples`` when the caller left it unset: an int (what a cost estimate reads)
    that says the count may grow (explain/_attributions.py ``_lime``)."""

    def __repr__(self) -> str:
        return f"{int(self)} (grows)"


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
tests/explain/test_lime_stability.py). Left unset (None), the count starts at 10,000 and
doubles (at most to ``lime_max_samples``) until the gaps between adjacent |weights| among
the first ``lime_top`` + 1 ranks are ``LIME_GAP_SD`` seed standard deviations wide, else the
explanation reports the unresolved ties; a set count is used as it is (lime's own answer).
``max_evals`` bounds
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
    lime_samples: int | None = None  # None: adaptive from LIME_START (read as an int)
    lime_max_samples: int = 80_000
    lime_top: int = 5
    lime_background: int = 5000
    tree_perturbation: str = "auto"
    target_class: Any = None
    task: str = "auto"

    def __post_init__(self) -> None:
        check_param(self.method in METHODS, "method", _OWNER, f"one of {list(METHODS)}",
                    self.method)
        check_param(isinstance(self.seed, int) and not isinstance(self.seed, bool)
                    and self.seed >= 0, "seed", _OWNER, "an int >= 0", self.seed)
        if self.lime_samples is None:
            object.__setattr__(self, "lime_samples", _Grown(LIME_START))
        for name, low in (("background_size", 1), ("kernel_background", 1),
                          ("lime_samples", 100), ("lime_background", 1),
                          ("lime_max_samples", 100), ("lime_top", 1)):
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

    @property
    def lime_adaptive(self) -> bool:
        """Whether LIME's sample count may grow (the caller did not fix it)."""
        return isinstance(self.lime_samples, _Grown)

    def with_(self, **changes: Any) -> ExplainOptions:
        """A copy with ``changes``; unknown names are an error naming the valid ones."""
        unknown = sorted(set(changes) - {f.name for f in fields(self)})
        if unknown:
            raise ParameterError(f"Unknown explain option(s) {unknown}; valid: "
                                 f"{[f.name for f in fields(self)]}.", unknown[0])
        if "lime_samples" not in changes and self.lime_adaptive:
            changes["lime_samples"] = None  # stays adaptive
        return replace(self, **changes)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> ExplainOptions:
        return cls().with_(**dict(d or {}))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["lime_samples"] = None if self.lime_adaptive else int(self.lime_samples)
        return d
