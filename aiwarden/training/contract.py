"""What a training function receives and returns: the one contract every executor keeps.

A pipeline's ``entry`` is ``package.module:function``; the function is called with a
``TrainingContext`` and returns a ``TrainingResult``. A pipeline's ``command`` gets the
context as JSON in the file named by ``AIWARDEN_TRAINING_CONTEXT`` and writes the result as
JSON to ``result.json`` in its run directory. Either way the run happens in a process of its
own (the server never imports user code), so the same pipeline runs unchanged on the local
executor and on a Dask cluster.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CONTEXT_ENV", "RESULT_FILE", "TrainingContext", "TrainingResult"]

CONTEXT_ENV = "AIWARDEN_TRAINING_CONTEXT"
CONTEXT_FILE = "context.json"
RESULT_FILE = "result.json"


@dataclass(frozen=True)
class TrainingContext:
    """The run's inputs: Parquet files of the training and holdout rows, the pipeline's
    parameters, and a run directory the function may write its artifact into."""

    run_id: int
    model: str
    task: str
    target: str
    features: list[str]
    train_path: str
    holdout_path: str
    run_dir: str
    params: dict[str, Any] = field(default_factory=dict)
    images: str | None = None  # the pipeline's data.images (a folder or manifest), audited

    def load_train(self) -> Any:
        """The training rows as a pandas DataFrame."""
        import pandas as pd

        return pd.read_parquet(self.train_path)

    def load_holdout(self) -> Any:
        import pandas as pd

        return pd.read_parquet(self.holdout_path)

    def path(self, name: str) -> str:
        """A file in the run directory (where the artifact should go)."""
        return str(Path(self.run_dir) / name)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainingContext:
        return cls(**json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class TrainingResult:
    """The candidate: an artifact file in a safe format (skops, ONNX, a prompt template,
    ...: what the registry accepts without ``trust``) and its metrics on the training and
    holdout rows (the overfitting gate compares them)."""

    artifact: str
    format: str | None = None  # None: the registry infers it from the file
    train_metrics: dict[str, float] = field(default_factory=dict)
    holdout_metrics: dict[str, float] = field(default_factory=dict)
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingResult:
        known = {k: d[k] for k in ("artifact", "format", "train_metrics", "holdout_metrics",
                                   "notes") if k in d}
        if not isinstance(known.get("artifact"), str) or not known["artifact"]:
            raise ValueError("the result names no artifact file ('artifact')")
        for key in ("train_metrics", "holdout_metrics"):
            value = known.get(key, {})
            if not isinstance(value, dict) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in value.values()):
                raise ValueError(f"'{key}' must map metric names to numbers")
        return cls(**known)
