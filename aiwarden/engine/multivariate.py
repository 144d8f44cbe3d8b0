"""Multivariate drift on samples: a domain classifier and PCA reconstruction error.

Univariate tests look at one column at a time and miss changes in how columns move together.

* :class:`DomainClassifierDrift` trains a gradient-boosting classifier to tell reference rows
  from current rows. Its cross-validated ROC AUC is 0.5 when the samples are exchangeable and
  grows with any learnable difference; permutation importance names the columns behind it.
* :class:`PCAReconstructionDrift` learns the reference's principal subspace and measures how
  badly current rows are rebuilt from it (NannyML's data reconstruction drift): a broken
  correlation moves rows off the subspace even when every marginal is unchanged.

Both take pandas or polars DataFrames, pyarrow Tables, lists of dicts or dicts of columns and
share one encoding learned on the reference: numerical columns are imputed with the median,
flagged with a missing indicator and standardised; categorical columns are one-hot encoded on
the most frequent reference categories, the rest pooled into one "other" column. One-hot
columns stay 0/1 rather than being standardised, so a rare category cannot dominate the
reconstruction error.

As in the rest of the engine, the default features are the columns whose role is ``feature``
(:func:`~aiwarden.engine.schema.infer_schema`, or a ``schema`` / schema hints given to ``fit``),
so target, prediction, score and id columns need not be in the current batch; ``features=``
overrides this. A value of a numerical column that is not a number is encoded as missing and
counted in the result's ``n_invalid`` (data-quality checks report it); a boolean column accepts
0/1 and true/false text.

The implementation sits in private modules, one a detector: ``_multivariate_classifier``,
``_multivariate_pca``, and ``_multivariate_encoding`` for the input conversion, parameter
checks and encoding both share.

Example
-------
>>> import numpy as np, pandas as pd
>>> rng = np.random.default_rng(0)
>>> x, y = rng.normal(size=(2, 2000))
>>> reference = pd.DataFrame({"a": x, "b": x + 0.3 * rng.normal(size=2000)})
>>> current = pd.DataFrame({"a": y, "b": -y + 0.3 * rng.normal(size=2000)})
>>> PCAReconstructionDrift().fit(reference).compare(current).drift_detected
True
>>> shifted = pd.DataFrame({"a": y + 1.0, "b": y + 0.3 * rng.normal(size=2000)})
>>> result = DomainClassifierDrift(max_rows=1000).fit(reference).compare(shifted)
>>> result.drift_detected, result.features[0]
(True, 'a')
"""

from __future__ import annotations

from aiwarden.engine._multivariate_classifier import DomainClassifierDrift, DomainClassifierResult
from aiwarden.engine._multivariate_classifier import _auc as _auc  # tested against scikit-learn
from aiwarden.engine._multivariate_pca import PCAReconstructionDrift, PCAReconstructionResult

__all__ = [
    "DomainClassifierDrift",
    "DomainClassifierResult",
    "PCAReconstructionDrift",
    "PCAReconstructionResult",
]
