"""Training-set audit: quality findings, label issues and embedding outliers, by file name.

``audit_images(source)`` reads a folder (``DIR/<label>/<file>`` or
``DIR/<split>/<label>/<file>``) or a manifest (CSV/JSON/JSONL with ``path``, ``label`` and
optionally ``split``), streams the images in chunks (memory bounded by the chunk, not the
set), and returns an :class:`AuditReport` whose ``findings`` a retraining gate can key on.

Label issues come from confident learning (cleanlab) on out-of-fold class probabilities:
the caller's, or a quick model's (a logistic regression on 8x8 RGB thumbnails and the image
properties, ``cross_val_predict``). A quick model that cannot tell the classes apart
(out-of-fold accuracy below ``min_model_accuracy``) would flag noise, so label issues are
then skipped and the report says why. Outliers are images whose mean distance to their
``k`` nearest neighbours (in the caller's embeddings, or the standardised thumbnail
features: 5 principal components of 8x8 thumbnails and the image properties) is more than
``outlier_z`` robust standard deviations above the median.
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aiwarden.errors import DataError, ParameterError
from aiwarden.images._decode import MAX_BYTES, Decoded, DecodeFailure, decode
from aiwarden.images._deps import cleanlab_filter, pil
from aiwarden.images._properties import PropertyTable, compute_properties, concat
from aiwarden.images._quality import FAILURES, Finding, quality

__all__ = ["EXTENSIONS", "AuditReport", "ImageRef", "audit_images", "load_source"]

EXTENSIONS = frozenset((".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp",
                        ".ppm", ".npy"))
SPLITS = frozenset(("train", "training", "val", "valid", "validation", "test", "holdout",
                    "production", "prod", "eval"))
_FEATURE_PROPS = ("aspect_ratio", "brightness", "contrast", "saturation", "entropy",
                  "channel_std_max")


@dataclass(frozen=True)
class ImageRef:
    path: str  # as written in the manifest, or relative to the folder
    file: Path
    label: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class AuditReport:
    source: str
    images: int
    classes: dict[str, int]
    findings: tuple[Finding, ...]
    label_check: str
    notes: tuple[str, ...] = ()
    table: PropertyTable | None = field(default=None, repr=False)

    @property
    def flagged(self) -> list[str]:
        return sorted({f.name or str(f.index) for f in self.findings})

    def by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(f.reason for f in self.findings).items()))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "images": self.images, "classes": self.classes,
                "flagged": len(self.flagged), "counts": self.by_reason(),
                "label_check": self.label_check, "notes": list(self.notes),
                "findings": [f.to_dict() for f in self.findings]}


def load_source(source: str | os.PathLike[str]) -> list[ImageRef]:
    """The images a folder or a manifest names, in a stable order."""
    src = Path(source)
    if src.is_dir():
        return _from_folder(src)
    if not src.is_file():
        raise DataError(f"{source}: no such file or folder.", "source")
    suffix = src.suffix.lower()
    if suffix == ".csv":
        with src.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    elif suffix in (".json", ".jsonl"):
        text = src.read_text(encoding="utf-8")
        try:
            doc = ([json.loads(line) for line in text.splitlines() if line.strip()]
                   if suffix == ".jsonl" else json.loads(text))
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: not valid JSON: {exc}.", "source") from None
        rows = doc.get("images") if isinstance(doc, dict) else doc
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise DataError(f"{source}: a JSON manifest must be a list of objects (or "
                            f"{{\"images\": [...]}}) with path and label.", "source")
    else:
        raise DataError(f"{source}: a manifest must be .csv, .json or .jsonl (or give a "
                        f"folder). Got {suffix or 'no suffix'}.", "source")
    refs = []
    for n, row in enumerate(rows, start=1):
        row = {str(k).strip().lower(): v for k, v in row.items()}
        path = row.get("path") or row.get("file") or row.get("image")
        if not path:
            raise DataError(f"{source}: row {n} has no path (columns: path, label, split).",
                            "path")
        label = row.get("label")
        split = row.get("split")
        refs.append(ImageRef(str(path), src.parent / str(path),
                             None if label in (None, "") else str(label),
                             None if split in (None, "") else str(split).lower()))
    return refs


def _from_folder(root: Path) -> list[ImageRef]:
    refs = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith(".") or Path(name).suffix.lower() not in EXTENSIONS:
                continue
            file = Path(dirpath) / name
            parts = file.relative_to(root).parts
            split = parts[0].lower() if len(parts) >= 3 and parts[0].lower() in SPLITS else None
            rest = parts[1:] if split else parts
            label = rest[0] if len(rest) >= 2 else None
            refs.append(ImageRef("/".join(parts), file, label, split))
    return refs


def _read(ref: ImageRef, max_bytes: int) -> Any:
    try:
        size = ref.file.stat().st_size
        if size > max_bytes:
            return DecodeFailure("too_large_file", f"The file has {size} bytes, more than "
                                 f"max_bytes={max_bytes}.", size)
        if ref.file.suffix.lower() == ".npy":
            try:
                return np.load(ref.file, allow_pickle=False)
            except ValueError as exc:
                return DecodeFailure("wrong_shape", f"Not a plain numpy array: {exc}.", size)
        return ref.file.read_bytes()
    except OSError as exc:
        return DecodeFailure("missing_file", f"Cannot read {ref.path}: {exc.strerror}.")


def _scan(refs: Sequence[ImageRef], chunk: int, max_bytes: int, decode_options: dict[str, Any]
          ) -> tuple[PropertyTable, np.ndarray]:
    """Properties and 8x8 RGB thumbnails (NaN rows where decoding failed), chunk by chunk."""
    tables, thumbs = [], np.full((len(refs), 192), np.nan, dtype=np.float32)
    box = pil().Resampling.BOX
    for start in range(0, len(refs), chunk):
        decoded = []
        for ref in refs[start:start + chunk]:
            item = _read(ref, max_bytes)
            decoded.append(item if isinstance(item, DecodeFailure)
                           else decode(item, max_bytes=max_bytes, **decode_options))
        tables.append(compute_properties(decoded))
        for j, d in enumerate(decoded):
            if isinstance(d, Decoded):
                small = d.image.resize((8, 8), box)
                thumbs[start + j] = np.asarray(small, np.float32).ravel() / 255
    return concat(tables), thumbs


def audit_images(source: str | os.PathLike[str] | Sequence[ImageRef], *,
                 probabilities: Any = None, classes: Sequence[str] | None = None,
                 embeddings: Any = None, label_issues: bool = True, outliers: bool = True,
                 folds: int = 5, min_model_accuracy: float = 0.7, outlier_z: float = 10.0,
                 k: int = 5, chunk: int = 256, max_bytes: int = MAX_BYTES, seed: int = 0,
                 **quality_options: Any) -> AuditReport:
    """Audit a training set; ``report.findings`` name each problem image by path.

    ``probabilities``: out-of-fold class probabilities, one row per image in source order,
    columns in ``classes`` order (default: the sorted labels). ``embeddings``: one row per
    image, for the outlier check (default: thumbnail features)."""
    refs = list(source) if not isinstance(source, (str, os.PathLike)) else load_source(source)
    if not refs:
        raise DataError(f"{source}: no images found (extensions: "
                        f"{', '.join(sorted(EXTENSIONS))}).", "source")
    decode_keys = {"max_side", "max_pixels", "formats"}
    decode_options = {k2: v for k2, v in quality_options.items() if k2 in decode_keys}
    quality_options = {k2: v for k2, v in quality_options.items() if k2 not in decode_keys}
    table, thumbs = _scan(refs, chunk, max_bytes, decode_options)
    names = [r.path for r in refs]
    splits = [r.split for r in refs]
    findings = [f for f in quality(table, names=names, **quality_options).findings
                if f.related is None or splits[f.related] == splits[f.index]]  # else leakage
    notes: list[str] = []
    bad = {f.index for f in findings if f.reason in FAILURES or f.reason in ("constant",
                                                                             "garbled")}
    findings += _leakage(refs, table, names, quality_options)
    good = np.array([i not in bad for i in range(len(refs))], dtype=bool)
    feats = _features(table, thumbs)
    label_check = "not run: no labels"
    labels = [r.label for r in refs]
    counts = dict(sorted(Counter(x for x in labels if x is not None).items()))
    if label_issues and counts:
        label_check, found = _label_issues(labels, good, feats, probabilities, classes,
                                           folds, min_model_accuracy, seed, names)
        findings += found
    elif not label_issues:
        label_check = "not run: turned off"
    if outliers:
        emb = (_default_embedding(feats, good, seed) if embeddings is None
               else np.asarray(embeddings, np.float64))
        if len(emb) != len(refs):
            raise DataError(f"The embeddings have {len(emb)} rows for {len(refs)} images.",
                            "embeddings")
        findings += _outliers(emb, good, k, outlier_z, names, notes)
    findings.sort(key=lambda f: (f.index, f.reason))
    return AuditReport(str(source) if isinstance(source, (str, os.PathLike)) else "images",
                       len(refs), counts, tuple(findings), label_check, tuple(notes), table)


def _features(table: PropertyTable, thumbs: np.ndarray) -> np.ndarray:
    props = np.stack([table.columns[c] for c in _FEATURE_PROPS], axis=1)
    props[:, 0] = np.log(props[:, 0])
    sharp = np.log1p(table.columns["sharpness"])[:, None]
    return np.hstack([thumbs, props, sharp]).astype(np.float64)


def _default_embedding(feats: np.ndarray, good: np.ndarray, seed: int) -> np.ndarray:
    """5 principal components of the standardised thumbnails next to the properties: the
    thumbnail's 192 dimensions alone drown what the properties see (static, a photo)."""
    from sklearn.decomposition import PCA

    out = np.full((len(feats), 5 + feats.shape[1] - 192), np.nan)
    rows = good & np.isfinite(feats).all(axis=1)
    if rows.sum() < 6:  # 5 components need 5 images; _outliers then wants more than k + 2
        return out
    thumb = feats[rows, :192]
    sd = thumb.std(axis=0)
    thumb = (thumb - thumb.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    pcs = PCA(5, random_state=seed).fit_transform(thumb)
    out[rows] = np.hstack([pcs, feats[rows, 192:]])
    return out


def _leakage(refs: Sequence[ImageRef], table: PropertyTable, names: list[str],
             options: dict[str, Any]) -> list[Finding]:
    """Images of other splits that (nearly) repeat a training image."""
    from aiwarden.images._quality import leakage

    splits = [r.split for r in refs]
    train = np.array([s in ("train", "training") for s in splits])
    other = np.array([s is not None and s not in ("train", "training") for s in splits])
    if not train.any() or not other.any():
        return []
    sub = PropertyTable({k: v[train] for k, v in table.columns.items()})
    tidx = np.flatnonzero(train)
    found = []
    near = {k: options[k] for k in ("near_distance", "near_distance_64", "near_distance_loose",
                                          "near_colour")
            if k in options}
    for i, j, dist in leakage(table, sub, other & table.ok, **near):
        jj = int(tidx[j])
        found.append(Finding(i, "leakage", f"{refs[i].split} image repeats training image "
                             f"{names[jj]} (pHash distance {dist} of 256)", names[i], jj,
                             names[jj], float(dist)))
    return found


def _label_issues(labels: list[str | None], good: np.ndarray, feats: np.ndarray,
                  probabilities: Any, classes: Sequence[str] | None, folds: int,
                  min_accuracy: float, seed: int, names: list[str]
                  ) -> tuple[str, list[Finding]]:
    known = sorted({x for x in labels if x is not None})
    classes = list(classes) if classes is not None else known
    unknown = set(known) - set(classes)
    if unknown:
        raise ParameterError(f"The labels {sorted(unknown)} are not in classes {classes}.",
                             "classes")
    if len(classes) < 2:
        return "not run: one class only", []
    rows = np.array([good[i] and labels[i] is not None for i in range(len(labels))])
    idx = np.flatnonzero(rows)
    y = np.array([classes.index(labels[i]) for i in idx])  # type: ignore[arg-type]
    if probabilities is not None:
        proba = np.asarray(probabilities, np.float64)
        if proba.shape != (len(labels), len(classes)):
            raise DataError(f"The probabilities must have shape ({len(labels)}, "
                            f"{len(classes)}) (images, classes). Got {proba.shape} instead.",
                            "probabilities")
        proba = proba[idx]
        how = "given out-of-fold probabilities"
    else:
        per_class = np.bincount(y, minlength=len(classes))
        keep = per_class[y] >= 2  # a class needs 2 readable images to be cross-validated
        left_out = [classes[c] for c in np.flatnonzero(per_class == 1)]
        idx, y = idx[keep], y[keep]
        present = np.unique(y)
        if len(present) < 2:
            return "not run: fewer than 2 classes with 2 or more readable images", []
        classes = [classes[c] for c in present]
        y = np.searchsorted(present, y)
        cv = min(folds, int(np.bincount(y).min()))
        proba = _quick_model(feats[idx], y, cv, seed, len(classes))
        acc = float((proba.argmax(axis=1) == y).mean())
        how = (f"quick model (logistic regression on 8x8 thumbnails and properties, "
               f"{cv}-fold out-of-fold accuracy {acc:.3f})")
        if left_out:
            how += f"; left out, one readable image only: {', '.join(left_out)}"
        if acc < min_accuracy:
            return (f"not run: the {how} is below min_model_accuracy={min_accuracy}; pass "
                    f"out-of-fold probabilities from your model"), []
    issues = cleanlab_filter().find_label_issues(y, proba,
                                                 return_indices_ranked_by="self_confidence")
    found = []
    for a in issues:
        i = int(idx[a])
        guess = int(proba[a].argmax())
        found.append(Finding(i, "label_issue", f"labelled {labels[i]!r}, looks like "
                             f"{classes[guess]!r} (p={proba[a, guess]:.2f}; "
                             f"p(label)={proba[a, y[a]]:.2f})", names[i],
                             score=float(proba[a, y[a]])))
    return f"confident learning (cleanlab) on {how}", found


def _quick_model(x: np.ndarray, y: np.ndarray, cv: int, seed: int, n_classes: int
                 ) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.nan_to_num(x)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))
    folds = StratifiedKFold(cv, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, x, y, cv=folds, method="predict_proba")
    if proba.shape[1] == n_classes:
        return proba
    full = np.zeros((len(y), n_classes))
    full[:, np.unique(y)] = proba
    return full


def _outliers(emb: np.ndarray, good: np.ndarray, k: int, z: float, names: list[str],
              notes: list[str]) -> list[Finding]:
    from sklearn.neighbors import NearestNeighbors

    rows = good & np.isfinite(emb).all(axis=1)
    idx = np.flatnonzero(rows)
    if len(idx) <= k + 2:
        notes.append(f"outliers: not run, {len(idx)} usable images (need more than {k + 2})")
        return []
    x = emb[idx]
    sd = x.std(axis=0)
    x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    score = dist[:, 1:].mean(axis=1)
    med = np.median(score)
    mad = 1.4826 * np.median(np.abs(score - med))
    if mad <= 0:
        return []
    robust = (score - med) / mad
    found = []
    for a in np.flatnonzero(robust > z):
        i = int(idx[a])
        found.append(Finding(i, "outlier", f"mean distance to its {k} nearest images is "
                             f"{robust[a]:.1f} robust SDs above the median", names[i],
                             score=float(robust[a])))
    return found
