"""Artifact formats, registered by name; an unknown name lists the valid ones.

``runs_code`` marks formats whose loading executes arbitrary code (unpickling, calling an
entry point): they load only with an admin's explicit trust recorded on the version.
skops loads by rebuilding known types; types beyond skops' defaults and the allow-list
(scikit-learn wrappers of XGBoost and LightGBM, plus ``AIWARDEN_SKOPS_TRUSTED``) need
that same trust. Deny by default: only data types, ML libraries' types and the operator's
``AIWARDEN_TRUSTED_MODULES`` may be trusted at all (aiwarden.registry._skops_types).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import os
import re
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiwarden.registry import _onnx, _skops_types
from aiwarden.registry._errors import ArtifactFormatError, UntrustedArtifactError, why
from aiwarden.registry.predictor import EstimatorPredictor, Predictor, PromptTemplate

__all__ = ["FORMATS", "WRAPPER_TYPES", "ArtifactFormat", "detect_format", "get_format"]

WRAPPER_TYPES = (
    "collections.OrderedDict",
    "lightgbm.basic.Booster", "lightgbm.sklearn.LGBMClassifier",
    "lightgbm.sklearn.LGBMRegressor", "lightgbm.sklearn.LGBMRanker",
    "xgboost.core.Booster", "xgboost.sklearn.XGBClassifier", "xgboost.sklearn.XGBRegressor",
    "xgboost.sklearn.XGBRanker",
)
_ENTRY = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")
MAX_PROMPT_BYTES = 1_000_000  # a prompt template is text a person wrote, not a data set
#: zip-based artifacts (skops): bounds on what members declare they inflate to, checked in
#: the central directory before a byte is inflated (a 1.5 MB zip of one 1.5 GB schema.json
#: took 3.4 GB and 82 s to refuse). zipfile never inflates past a member's declared size.
MAX_MEMBER_BYTES = 512 * 2**20
MAX_TOTAL_BYTES = 1024 * 2**20
MAX_SCHEMA_BYTES = 32 * 2**20  # skops' schema.json: a forest of 1,000 trees is a few MB
MAX_RATIO, RATIO_FROM = 200, 16 * 2**20  # inflation ratio allowed past 16 MB of a member


@dataclass(frozen=True)
class ArtifactFormat:
    name: str
    extensions: tuple[str, ...]
    runs_code: bool
    description: str

    def untrusted_types(self, data: bytes) -> list[str]:
        """skops: the types skops does not trust by default (read without loading)."""
        if self.name != "skops":
            return []
        sio = _skops()
        check_zip(data, "skops")
        try:
            types = sorted(sio.get_untrusted_types(data=data))
        except Exception as exc:  # zipfile/json errors of a malformed file
            raise ArtifactFormatError(f"Not a skops file: {why(exc)}", "artifact") from None
        bad = _skops_types.refused(types)
        if bad:  # whoever vouches: loading would call them with the file's arguments
            raise ArtifactFormatError(
                f"The skops artifact names {bad}: loading it would call them with arguments "
                "the file chooses. aiwarden trusts only plain data types and the types of ML "
                "libraries (scikit-learn, numpy, scipy, XGBoost, LightGBM, pandas data), "
                "plus the server's AIWARDEN_TRUSTED_MODULES, with or without trust=true.",
                "trusted_types")
        return types

    def check(self, data: bytes, entry_point: str | None) -> None:
        """Cheap structural checks before anything is trusted or stored."""
        if self.name == "python":
            if not entry_point or not _ENTRY.fullmatch(entry_point):
                raise ArtifactFormatError("The python format needs entry_point='module:function'"
                                          f"; got {entry_point!r}.", "entry_point")
        elif entry_point:
            raise ArtifactFormatError(f"entry_point applies to the python format only, not "
                                      f"{self.name!r}.", "entry_point")
        if self.name == "onnx":
            _onnx.check_onnx(data)
        elif self.name == "prompt":
            _prompt_text(data)
        elif not data and self.name != "python":
            raise ArtifactFormatError("The artifact is empty.", "artifact")

    def load(self, data: bytes, *, trusted_types: Sequence[str] = (), trusted: bool = False,
             entry_point: str | None = None, **kw: Any) -> Predictor:
        """A predictor. ``trusted`` must be True for formats that run code."""
        if self.runs_code and not trusted:
            raise UntrustedArtifactError(
                f"{kw.get('model', '')} version {kw.get('version', '')} is a {self.name} "
                "artifact that no admin trusted; refusing to load it.", "trust")
        if self.name == "skops":
            return EstimatorPredictor(_a_model(_load_skops(data, trusted_types), "skops"),
                                      "skops", **kw)
        if self.name == "onnx":
            return _onnx.OnnxPredictor(_onnx.session(data), **kw)
        if self.name == "prompt":
            return PromptTemplate(_prompt_text(data), **kw)
        if self.name == "pickle":
            import pickle

            return EstimatorPredictor(_a_model(_guard(lambda: pickle.loads(data)), "pickle"),
                                      "pickle", **kw)
        if self.name == "joblib":
            import joblib

            return EstimatorPredictor(
                _a_model(_guard(lambda: joblib.load(io.BytesIO(data))), "joblib"), "joblib", **kw)
        obj = _call_entry_point(str(entry_point), data)
        return EstimatorPredictor(obj, "python", **kw)


def check_zip(data: bytes, what: str) -> None:
    """Refuse a zip whose members declare too much inflated data (or inflate too steeply),
    naming the member, before anything is read; then read skops' schema.json bounded."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArtifactFormatError(f"Not a {what} file (a zip archive): {why(exc)}",
                                  "artifact") from None
    total = 0
    for m in members:
        total += m.file_size
        ratio = m.file_size / max(m.compress_size, 1)
        if (m.file_size > MAX_MEMBER_BYTES or total > MAX_TOTAL_BYTES
                or (m.filename == "schema.json" and m.file_size > MAX_SCHEMA_BYTES)
                or (m.file_size > RATIO_FROM and ratio > MAX_RATIO)):
            raise ArtifactFormatError(
                f"The {what} archive's member {m.filename!r} inflates to {m.file_size:,} "
                f"bytes from {m.compress_size:,} (archive total so far {total:,}); aiwarden "
                f"reads at most {MAX_MEMBER_BYTES:,} bytes a member ({MAX_SCHEMA_BYTES:,} for "
                f"schema.json), {MAX_TOTAL_BYTES:,} in all, at most {MAX_RATIO}x inflated.",
                "artifact")
    if what == "skops":
        try:
            with archive.open("schema.json") as f:
                f.read(MAX_SCHEMA_BYTES + 1)  # bounded: a lying header cannot inflate more
        except KeyError:
            raise ArtifactFormatError("Not a skops file: it has no schema.json.",
                                      "artifact") from None
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise ArtifactFormatError(f"Not a skops file: schema.json: {why(exc)}",
                                      "artifact") from None


def _prompt_text(data: bytes) -> str:
    """A prompt template's text: non-blank UTF-8, at most ``MAX_PROMPT_BYTES``."""
    if len(data) > MAX_PROMPT_BYTES:
        raise ArtifactFormatError(f"A prompt template is at most {MAX_PROMPT_BYTES:,} bytes; "
                                  f"got {len(data):,}.", "artifact")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArtifactFormatError(f"A prompt template must be UTF-8 text: byte {exc.start} is "
                                  "not.", "artifact") from None
    if not text.strip():
        raise ArtifactFormatError("The prompt template is empty.", "artifact")
    return text


def _skops() -> Any:
    try:
        import skops.io as sio
    except ImportError:
        raise ArtifactFormatError("skops artifacts need skops: pip install "
                                  "'aiwarden[registry]'.", "format") from None
    return sio


def _load_skops(data: bytes, trusted_types: Sequence[str]) -> Any:
    bad = _skops_types.refused(trusted_types)
    if bad:  # a version registered before the rule (or its module left the list): never load
        raise UntrustedArtifactError(f"The skops artifact was registered trusting {bad}, "
                                     "which aiwarden never trusts; refusing to load it.",
                                     "trusted_types")
    sio = _skops()
    check_zip(data, "skops")
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return sio.loads(data, trusted=list(trusted_types))
    except UntrustedTypesFoundException as exc:
        raise UntrustedArtifactError(f"The skops artifact holds types nobody trusted: {why(exc)}",
                                     "trusted_types") from None
    except Exception as exc:
        raise ArtifactFormatError(f"skops cannot load the artifact: {why(exc)}",
                                  "artifact") from None


def _a_model(obj: Any, fmt: str) -> Any:
    """The loaded object, if it can predict: a dict or a bare transformer is refused at the
    registration's trial load, not when the gateway first needs it."""
    if not callable(getattr(obj, "predict", None)):
        raise ArtifactFormatError(f"The {fmt} artifact holds a {type(obj).__name__}, which "
                                  "has no predict(): it is not a model.", "artifact")
    return obj


def _guard(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:
        raise ArtifactFormatError(f"Cannot load the artifact: {type(exc).__name__}: {why(exc)}",
                                  "artifact") from None


def _local_copy(data: bytes) -> str:
    """A private file holding verified bytes, named by their hash, for entry points."""
    folder = Path(tempfile.gettempdir()) / f"aiwarden-artifacts-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / hashlib.sha256(data).hexdigest()
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    return str(path)


def _call_entry_point(entry_point: str, data: bytes) -> Any:
    """``module:function`` is called with the artifact's local path (None when empty)."""
    module, _, name = entry_point.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ArtifactFormatError(f"Cannot import the entry point {entry_point!r}: {why(exc)}",
                                  "entry_point") from None
    obj = _guard(lambda: fn(_local_copy(data) if data else None))
    if not hasattr(obj, "predict"):
        raise ArtifactFormatError(f"The entry point {entry_point!r} returned a "
                                  f"{type(obj).__name__}, which has no predict().", "entry_point")
    return obj


FORMATS: dict[str, ArtifactFormat] = {f.name: f for f in (
    ArtifactFormat("skops", (".skops",), False, "scikit-learn (and XGBoost/LightGBM wrappers) "
                   "saved with skops.io.dump; loaded with an explicit list of trusted types"),
    ArtifactFormat("onnx", (".onnx",), False, "an ONNX graph run with onnxruntime"),
    ArtifactFormat("python", (), True, "module:function called with the artifact's path; "
                   "returns an object with predict()"),
    ArtifactFormat("pickle", (".pkl", ".pickle"), True, "pickle; admin + trust only"),
    ArtifactFormat("joblib", (".joblib",), True, "joblib; admin + trust only"),
    ArtifactFormat("prompt", (".prompt",), False, "a prompt template (UTF-8 text) of an "
                   "LLM application; versioned and aliased, it does not answer /predict"),
)}


def get_format(name: str) -> ArtifactFormat:
    fmt = FORMATS.get(name)
    if fmt is None:
        raise ArtifactFormatError(f"Unknown artifact format {name!r}; choose from "
                                  f"{sorted(FORMATS)}.", "format")
    return fmt


def detect_format(filename: str | None, entry_point: str | None = None) -> ArtifactFormat:
    """The format a file name's extension implies (``python`` when an entry point is given)."""
    if entry_point:
        return FORMATS["python"]
    suffix = Path(filename or "").suffix.lower()
    for fmt in FORMATS.values():
        if suffix and suffix in fmt.extensions:
            return fmt
    raise ArtifactFormatError(f"Cannot tell the format of {filename!r}: name it, one of "
                              f"{sorted(FORMATS)}.", "format")
