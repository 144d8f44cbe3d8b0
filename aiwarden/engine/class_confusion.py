"""Per-class numbers of a confusion matrix: recall, precision, F1 and the confused pairs.

Why a separate result: :class:`~aiwarden.engine.performance.ClassificationStats` already
keeps the confusion matrix of every time bucket (it merges by addition), but its metrics
are averages over classes. A kiosk that starts calling bananas cucumbers shows up in one
cell of the matrix long before it moves the macro F1: this reads that cell.

``matrix[i, j]`` counts labelled rows of true class ``classes[i]`` predicted as
``classes[j]`` (as ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=classes)``).
The rate of the pair ``a -> b`` is ``matrix[a, b] / support(a)``: the share of the true
``a`` rows called ``b`` (what "bananas called cucumbers" means). Undefined values are
NaN: recall and pair rates of a class without true rows, precision of a class never
predicted, F1 when both are empty. Recall and precision agree with
``sklearn.metrics.recall_score`` / ``precision_score(average=None)`` (tested).
:meth:`ClassConfusion.per_class` and :meth:`ClassConfusion.to_dict` are JSON-safe: None
where the value is undefined.

Examples
--------
>>> cc = ClassConfusion.from_labels(["banana", "banana", "apple", "banana"],
...                                 ["cucumber", "banana", "apple", "cucumber"],
...                                 classes=["apple", "banana", "cucumber"])
>>> cc.pair("banana", "cucumber")
{'count': 2, 'rate': 0.6666666666666666}
>>> [(p["true"], p["pred"], p["count"]) for p in cc.pairs()]
[('banana', 'cucumber', 2)]
>>> round(cc.per_class()[1]["recall"], 3)
0.333
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aiwarden.errors import ParameterError, check_param

__all__ = ["CLASS_STATS", "PAIR_ARROW", "PAIR_STATS", "ClassConfusion", "class_index", "split_pair"]

PAIR_ARROW = "->"
PAIR_STATS = ("rate", "count")
CLASS_STATS = ("recall", "precision", "f1")


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.full(np.broadcast(a, b).shape, np.nan), where=b > 0)


def split_pair(text: str, classes: Sequence[Any], field: str = "pair") -> tuple[int, int]:
    """Indices of ``"true->pred"`` in ``classes``; a class name may itself hold ``->``, so
    every split is tried. Unknown names are a ParameterError naming ``field``."""
    names = [str(c) for c in classes]
    cut = [i for i in range(len(text)) if text.startswith(PAIR_ARROW, i)]
    for i in cut:
        a, b = text[:i], text[i + len(PAIR_ARROW):]
        if a in names and b in names:
            if a == b:
                break
            return names.index(a), names.index(b)
    if not cut:
        raise ParameterError(f"{field}: expected 'true->predicted', e.g. 'banana->cucumber'; "
                             f"got {text!r}.", field)
    a, b = text[:cut[0]], text[cut[0] + len(PAIR_ARROW):]
    if a == b:
        raise ParameterError(f"{field}: a pair names two different classes; got {text!r}.",
                             field)
    unknown = [x for x in (a, b) if x not in names]
    raise ParameterError(f"{field}: {', '.join(map(repr, unknown))} is not a class of the "
                         f"model; its classes are {_listed(names)}.", field)


def class_index(name: str, classes: Sequence[Any], field: str = "class") -> int:
    """Index of ``name`` in ``classes``, or a ParameterError naming ``field``."""
    names = [str(c) for c in classes]
    if name not in names:
        raise ParameterError(f"{field}: {name!r} is not a class of the model; its classes "
                             f"are {_listed(names)}.", field)
    return names.index(name)


def _listed(names: list[str], most: int = 20) -> str:
    shown = ", ".join(map(repr, names[:most]))
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


@dataclass(frozen=True, eq=False)
class ClassConfusion:
    """A confusion matrix with its classes; see the module docstring."""

    classes: tuple[Any, ...]
    matrix: np.ndarray

    def __post_init__(self) -> None:
        c = len(self.classes)
        check_param(self.matrix.shape == (c, c), "matrix", "ClassConfusion",
                    f"a ({c}, {c}) array of counts", self.matrix.shape)

    @classmethod
    def from_stats(cls, stats: Any) -> ClassConfusion:
        """From :class:`~aiwarden.engine.performance.ClassificationStats` (one bucket or a
        merged window): no rows are read again."""
        return cls(tuple(stats.classes), np.asarray(stats.confusion, dtype=np.int64))

    @classmethod
    def from_labels(cls, y_true: Any, y_pred: Any, *, classes: Any) -> ClassConfusion:
        """From raw labels (rows whose true or predicted class is not in ``classes`` are
        left out), through the same counting as the server's buckets."""
        from aiwarden.engine.performance import ClassificationStats

        return cls.from_stats(ClassificationStats.from_arrays(y_true, y_pred, classes=classes))

    @property
    def n(self) -> int:
        return int(self.matrix.sum())

    def __add__(self, other: ClassConfusion) -> ClassConfusion:
        check_param(isinstance(other, ClassConfusion) and other.classes == self.classes,
                    "other", "ClassConfusion.__add__",
                    f"a ClassConfusion of classes {list(self.classes)}",
                    getattr(other, "classes", other))
        return ClassConfusion(self.classes, self.matrix + other.matrix)

    def arrays(self) -> dict[str, np.ndarray]:
        """Per class, in ``classes`` order: support, predicted, recall, precision, f1."""
        cm = self.matrix
        support, predicted, tp = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
        return {"support": support, "predicted": predicted, "recall": _div(tp, support),
                "precision": _div(tp, predicted), "f1": _div(2 * tp, support + predicted)}

    def per_class(self) -> list[dict[str, Any]]:
        a = self.arrays()
        return [{"class": c, **{k: (int(v[i]) if k in ("support", "predicted")
                                    else _num(v[i])) for k, v in a.items()}}
                for i, c in enumerate(self.classes)]

    def rates(self) -> np.ndarray:
        """``rates[i, j]``: share of true ``classes[i]`` rows predicted ``classes[j]``."""
        return _div(self.matrix, self.matrix.sum(axis=1)[:, None])

    def pair(self, true: Any, pred: Any) -> dict[str, Any]:
        i, j = class_index(str(true), self.classes, "true"), class_index(
            str(pred), self.classes, "pred")
        return {"count": int(self.matrix[i, j]), "rate": _num(self.rates()[i, j])}

    def pairs(self, top: int | None = None, by: str = "count") -> list[dict[str, Any]]:
        """Off-diagonal pairs with at least one row, most confused first (by ``count`` or
        ``rate``, ties by the other, then by class order)."""
        check_param(by in PAIR_STATS, "by", "ClassConfusion.pairs", f"one of {PAIR_STATS}", by)
        rates = np.nan_to_num(self.rates())
        i, j = np.nonzero(self.matrix)
        off = i != j
        i, j = i[off], j[off]
        counts, r = self.matrix[i, j], rates[i, j]
        first, second = (counts, r) if by == "count" else (r, counts)
        order = np.lexsort((j, i, -second, -first))
        if top is not None:
            order = order[:top]
        return [{"true": self.classes[i[k]], "pred": self.classes[j[k]],
                 "count": int(counts[k]), "rate": float(r[k])} for k in order]

    def to_dict(self, top: int | None = 10) -> dict[str, Any]:
        return {"classes": list(self.classes), "n": self.n, "matrix": self.matrix.tolist(),
                "per_class": self.per_class(), "pairs": self.pairs(top)}


def _num(v: Any) -> float | None:
    """JSON-safe: NaN is None."""
    v = float(v)
    return v if np.isfinite(v) else None
