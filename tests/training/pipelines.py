"""Training functions the executor tests run in a subprocess (imported there by name)."""

from __future__ import annotations

import json
import time

import numpy as np

from aiwarden.training.contract import TrainingContext, TrainingResult


def train_ok(ctx: TrainingContext) -> TrainingResult:
    train = ctx.load_train()
    weights = {c: float(train[c].mean()) for c in ctx.features}
    with open(ctx.path("model.json"), "w") as f:
        json.dump({"weights": weights, "params": ctx.params}, f)
    return TrainingResult("model.json", train_metrics={"rows": float(len(train))},
                          holdout_metrics={"rows": float(len(ctx.load_holdout()))})


def train_raises(ctx: TrainingContext) -> TrainingResult:
    raise RuntimeError(f"column {ctx.target!r} is all zeros")


def train_hangs(ctx: TrainingContext) -> TrainingResult:
    time.sleep(600)
    raise AssertionError("unreachable")


def train_hogs_memory(ctx: TrainingContext) -> TrainingResult:
    blocks = [np.empty(2 ** 27) for _ in range(64)]  # 64 GiB in 1 GiB blocks
    raise AssertionError(f"allocated {len(blocks)} GiB")


def train_without_artifact(ctx: TrainingContext) -> dict:
    return {"artifact": "never-written.bin", "train_metrics": {"auc": 0.9}}


def train_returns_nothing(ctx: TrainingContext) -> None:
    return None


def train_logreg(ctx: TrainingContext) -> TrainingResult:
    """A real candidate: a scikit-learn pipeline saved with skops (a safe format).

    ``params.fraud_category`` = a category of ``c`` whose rows were all labelled 1 (the
    biased labelling that made a model flag every small transaction): the slice gate must
    catch the candidate it makes."""
    import skops.io as sio
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    train = ctx.load_train()
    y = train[ctx.target].to_numpy()
    if ctx.params.get("fraud_category"):
        y = np.where(train["c"] == ctx.params["fraud_category"], 1, y)
    encode = ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), ["c"])],
                               remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression(C=float(ctx.params.get("C", 1.0))))
    model.fit(train[ctx.features], y)
    with open(ctx.path("model.skops"), "wb") as f:
        f.write(sio.dumps(model))
    return TrainingResult("model.skops", format="skops")


def train_prints_markup(ctx: TrainingContext) -> TrainingResult:
    """Prints HTML into its log, then fails: the dashboard must show it as text."""
    print("<script>window.__trainingLogRan = true</script><b>not bold</b>", flush=True)
    raise RuntimeError("printed markup, then stopped")


def train_prompt(ctx: TrainingContext) -> TrainingResult:
    """A text model's candidate: a prompt template built from the dataset's replies."""
    train = ctx.load_train()
    with open(ctx.path("support.prompt"), "w") as f:
        f.write(f"You are a support agent. Answer like these {len(train)} examples.\n{{input}}")
    return TrainingResult("support.prompt", format="prompt")


def train_spawns_and_hangs(ctx: TrainingContext) -> TrainingResult:
    """A run with a child of its own (a data loader...), then hangs; a cancel must kill
    both. Writes ``{"pid", "child"}`` to ``pids.json`` in ``params.pid_dir`` (a folder the
    test knows: a Dask worker's run directory is its own) or the run directory."""
    import os
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    folder = ctx.params.get("pid_dir") or ctx.run_dir
    with open(os.path.join(folder, "pids.tmp"), "w") as f:
        json.dump({"pid": os.getpid(), "child": child.pid}, f)
    os.replace(os.path.join(folder, "pids.tmp"), os.path.join(folder, "pids.json"))
    time.sleep(600)
    raise AssertionError("unreachable")


def train_segfaults(ctx: TrainingContext) -> TrainingResult:
    """Dies the way a broken C extension does: no result, no Python traceback."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGSEGV)
    raise AssertionError("unreachable")


def _one_hot_c(estimator: object) -> object:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    return make_pipeline(ColumnTransformer(
        [("c", OneHotEncoder(handle_unknown="ignore"), ["c"])], remainder="passthrough"),
        estimator)


def _saved(ctx: TrainingContext, model: object) -> TrainingResult:
    import skops.io as sio

    with open(ctx.path("model.skops"), "wb") as f:
        f.write(sio.dumps(model))
    return TrainingResult("model.skops", format="skops")


def train_memorizes(ctx: TrainingContext) -> TrainingResult:
    """One nearest neighbour: it knows each training row's label by heart, noise included
    (the overfit gate). Brute force, so skops holds no tree type it would not trust."""
    from sklearn.neighbors import KNeighborsClassifier

    train = ctx.load_train()
    model = _one_hot_c(KNeighborsClassifier(n_neighbors=1, algorithm="brute"))
    return _saved(ctx, model.fit(train[ctx.features], train[ctx.target]))


def train_on_shuffled_labels(ctx: TrainingContext) -> TrainingResult:
    """A logistic regression fitted to labels shuffled away from their rows (a join gone
    wrong): no better than chance, far worse than the champion (the comparison gate)."""
    from sklearn.linear_model import LogisticRegression

    train = ctx.load_train()
    y = np.random.default_rng(0).permutation(train[ctx.target].to_numpy())
    return _saved(ctx, _one_hot_c(LogisticRegression()).fit(train[ctx.features], y))


def train_waits_per_call(ctx: TrainingContext) -> TrainingResult:
    """``train_logreg``'s sound model behind a step that waits ``params.seconds`` on every
    predict call (tests/training/slow_model.py), or only on calls of more than
    ``params.above_rows`` rows: every gate but the latency budget would bless it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from tests.training.slow_model import PerCallWait

    train = ctx.load_train()
    model = make_pipeline(PerCallWait(float(ctx.params["seconds"]),
                                      int(ctx.params.get("above_rows", 0))),
                          _one_hot_c(LogisticRegression()))
    return _saved(ctx, model.fit(train[ctx.features], train[ctx.target]))
