"""The demo's training function: the retraining pipeline of ``fraud-detector`` runs it.

It trains the fraud model the way the demo's versions are built (aiwarden.demo.models) on the
run's training rows and saves it with skops. ``params.label_bug`` simulates the labelling bug
that made version 2: that share of the transactions under $10 relabelled as fraud, the way
card-testing bursts polluted the chargeback feed. The run's own data gates cannot see it (the
rows they check carry the true labels); the slice gate sees what the candidate learned.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from aiwarden.training.contract import TrainingContext, TrainingResult

__all__ = ["SKOPS_TYPES", "train", "trust_demo_model"]

#: the types a skops file of the demo's model holds beyond skops' defaults; the demo's own
#: loopback server trusts them (``AIWARDEN_SKOPS_TRUSTED``), or no candidate could register
SKOPS_TYPES = ("functools.partial",
               "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
               "sklearn.utils.validation.check_array")


def trust_demo_model() -> None:
    """Add the demo model's types to ``AIWARDEN_SKOPS_TRUSTED`` (read when the server's
    registry is made)."""
    have = [t for t in os.environ.get("AIWARDEN_SKOPS_TRUSTED", "").split(",") if t.strip()]
    os.environ["AIWARDEN_SKOPS_TRUSTED"] = ",".join(
        have + [t for t in SKOPS_TYPES if t not in have])


def train(ctx: TrainingContext) -> TrainingResult:
    try:
        import skops.io as sio
    except ImportError:
        raise ImportError("The demo's training saves skops files: pip install "
                          "'aiwarden[registry]'") from None
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    from aiwarden.demo.models import FEATURES, _pipeline

    params: dict[str, Any] = dict(ctx.params)
    bug = float(params.pop("label_bug", 0.0))
    seed = int(params.pop("seed", 0))
    train_df, holdout = ctx.load_train(), ctx.load_holdout()
    y = train_df[ctx.target].to_numpy().astype(int)
    if bug:
        hit = (train_df["amount"] < 10).to_numpy() & (
            np.random.default_rng(seed).random(len(y)) < bug)
        y = np.where(hit, 1, y)
        print(f"label bug: {int(hit.sum())} transactions under $10 relabelled as fraud")
    # one thread: OpenMP on a busy small machine is tens of times slower, not faster
    with threadpool_limits(1):
        model = _pipeline(seed, **params).fit(train_df[FEATURES], y)
        metrics = [{"roc_auc": float(roc_auc_score(
            df[ctx.target], model.predict_proba(df[FEATURES])[:, 1]))}
            if df[ctx.target].nunique() == 2 else {} for df in (train_df, holdout)]
    with open(ctx.path("model.skops"), "wb") as f:
        f.write(sio.dumps(model))
    print(f"trained on {len(y)} rows; roc_auc train, holdout: {metrics}")
    return TrainingResult("model.skops", format="skops", train_metrics=metrics[0],
                          holdout_metrics=metrics[1])
