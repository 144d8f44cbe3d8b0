"""ONNX models run with onnxruntime: columns are fed by input name (one input per column)
or stacked into the single input tensor in ``inputs`` order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from aiwarden.errors import DataError
from aiwarden.registry._errors import ArtifactFormatError, ArtifactStoreError, why
from aiwarden.registry.predictor import Predictor, to_frame

__all__ = ["OnnxPredictor", "check_onnx", "session"]

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
           "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(string)": object,
           "tensor(bool)": np.bool_}


def _ort() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise ArtifactStoreError("ONNX artifacts need onnxruntime: pip install "
                                 "'aiwarden[registry]'.", "format") from None
    return onnxruntime


def check_onnx(data: bytes) -> None:
    """Refuse any tensor stored outside the model: onnxruntime, loading from bytes, resolves
    an external tensor's path against the server's working directory, so a model could
    read the server's own files (its database, secrets) and answer them through /predict."""
    try:
        import onnx
    except ImportError:
        raise ArtifactStoreError("ONNX artifacts need onnx to be checked: pip install "
                                 "'aiwarden[registry]'.", "format") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ArtifactFormatError(f"Not an ONNX model: {why(exc)}", "artifact") from None
    for tensor in _tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
            raise ArtifactFormatError(f"The ONNX tensor {tensor.name!r} refers to external "
                                      "data; register a self-contained model.", "artifact")


def _tensors(model: Any) -> Iterator[Any]:
    """Every TensorProto anywhere in the model, found by walking the protobuf itself (not a
    list of known places): initializers, sparse values and indices, node attributes
    (``value``, ``sparse_value``, ``tensors``...), subgraphs, functions, training info."""
    stack = [model]
    while stack:
        msg = stack.pop()
        if msg.DESCRIPTOR.full_name == "onnx.TensorProto":
            yield msg
        for field, value in msg.ListFields():
            if field.message_type is None:
                continue
            if field.message_type.GetOptions().map_entry:
                continue  # ONNX has no map fields holding tensors
            if _repeated(field):
                stack.extend(value)
            else:
                stack.append(value)


def _repeated(field: Any) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 5.28; ``label`` before
    return bool(flag) if flag is not None else field.label == field.LABEL_REPEATED


def session(data: bytes) -> Any:
    """An onnxruntime session; the model is checked again here, so a version registered
    before a check existed cannot read files either."""
    ort = _ort()
    check_onnx(data)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # one request is small; threads cost more than they give
    try:
        return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise ArtifactFormatError(f"onnxruntime cannot load the artifact: {why(exc)}",
                                  "artifact") from None


class OnnxPredictor(Predictor):
    format = "onnx"

    def __init__(self, sess: Any, **kw: Any) -> None:
        super().__init__(**kw)
        self.session = sess
        self._inputs = sess.get_inputs()
        self._outputs = [o.name for o in sess.get_outputs()]
        self._classes: list[Any] | None = None

    @property
    def classes(self) -> list[Any] | None:
        return self._classes

    def _feed(self, data: Any) -> dict[str, np.ndarray]:
        frame = to_frame(data)
        if len(self._inputs) == 1:
            inp = self._inputs[0]
            x = self._columns(frame)
            arr = x.to_numpy() if isinstance(x, pd.DataFrame) else x
            return {inp.name: arr.astype(_DTYPES.get(inp.type, np.float32))}
        if isinstance(frame, np.ndarray):
            raise DataError("This ONNX model takes one input per column: pass named columns.")
        missing = [i.name for i in self._inputs if i.name not in frame.columns]
        if missing:
            raise DataError(f"The input lacks the column(s) {missing} that {self.model} "
                            f"version {self.version} needs.", missing[0])
        return {i.name: frame[[i.name]].to_numpy().astype(_DTYPES.get(i.type, np.float32))
                for i in self._inputs}

    def _run(self, data: Any) -> list[Any]:
        return self.session.run(None, self._feed(data))

    def predict(self, frame: Any) -> np.ndarray:
        out = np.asarray(self._run(frame)[0])
        return out.ravel() if out.ndim == 2 and out.shape[1] == 1 else out

    def predict_proba(self, frame: Any) -> np.ndarray:
        outs = self._run(frame)
        i = next((k for k, n in enumerate(self._outputs) if "prob" in n.lower()),
                 1 if len(outs) > 1 else None)
        if i is None:
            raise DataError(f"{self.model} version {self.version}: the ONNX model has no "
                            "probability output.")
        probs = outs[i]
        if isinstance(probs, list):  # skl2onnx's ZipMap: one {class: probability} per row
            if probs:
                self._classes = list(probs[0].keys())
            return np.array([list(row.values()) for row in probs], dtype=np.float64)
        return np.asarray(probs)
