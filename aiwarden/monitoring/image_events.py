"""Image events in: decode, measure, keep a thumbnail, then log the properties as ordinary
numeric features through the tabular ingest (docs/images.md).

Decoding, measuring and thumbnailing happen before the tabular ingest takes the model's
write lock, in worker processes (aiwarden.images' MeasurePool: they hold the GIL, which in
the server process slowed tabular requests answered meanwhile), a chunk of images at a time
(memory is bounded by a chunk and by aiwarden.images' byte and pixel limits); at most a few
requests at once, beyond that PoolBusy (the route answers 429 with Retry-After). An image
that does not decode, or whose quality finding makes its properties meaningless (a constant
frame, corrupt JPEG data), becomes a quarantined row with the reason through the same
ingest, so it is counted in the version's quarantine metric and listed at
GET /models/{m}/quarantine; the batch's other rows are stored. Thumbnails of every
decodable image are kept on disk, bounded per model.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiwarden.errors import DataError
from aiwarden.images import FAILURES, DecodeFailure, PropertyTable, quality
from aiwarden.images._pool import MeasurePool, shared, thumbnail_jpeg, write_atomic

__all__ = ["QUARANTINED", "ImageIngestResult", "ThumbnailStore", "ingest_images"]

#: Per-image quality findings that quarantine the row (besides every decode failure).
#: Duplicates are reported but kept: a kiosk photographs the same fruit all day.
QUARANTINED = FAILURES | {"non_finite", "wrong_mode", "constant", "garbled", "too_small",
                          "too_large", "extreme_aspect"}
FIELD = "image"


@dataclass
class ImageIngestResult:
    received: int = 0
    embeddings: int = 0  # vectors kept for embedding drift (the accepted rows' only)
    images_quarantined: int = 0
    thumbnails: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)
    ingest: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.ingest)
        out.update(images=self.received, images_quarantined=self.images_quarantined,
                   thumbnails=self.thumbnails, findings=self.findings[:100])
        if self.embeddings:
            out["embeddings"] = self.embeddings
        return out


class ThumbnailStore:
    """Small JPEGs under ``root/<model id>/``, named by a hash of the prediction id (no path
    from the request ever reaches the file system). Per model at most ``max_count`` files and
    ``max_bytes`` bytes, none older than ``max_age_s``: the oldest go first."""

    def __init__(self, root: Path | str, *, side: int = 128, max_count: int = 2000,
                 max_bytes: int = 32_000_000, max_age_s: float = 30 * 86400) -> None:
        for name, value in (("side", side), ("max_count", max_count), ("max_bytes", max_bytes)):
            if not isinstance(value, int) or value < 1:
                raise DataError(f"The {name!r} parameter of ThumbnailStore must be a positive "
                                f"int. Got {value!r} instead.", name)
        self.root, self.side = Path(root), side
        self.max_count, self.max_bytes, self.max_age_s = max_count, max_bytes, max_age_s
        self._since_prune: dict[int, int] = {}  # thumbnails written since the last prune
        self._lock = threading.Lock()

    def path(self, model_id: int, prediction_id: str) -> Path:
        digest = hashlib.blake2b(prediction_id.encode(), digest_size=16).hexdigest()
        return self.root / str(int(model_id)) / f"{digest}.jpg"

    def save(self, model_id: int, prediction_id: str, image: Any) -> int:
        return self.write(model_id, prediction_id, thumbnail_jpeg(image, self.side))

    def write(self, model_id: int, prediction_id: str, data: bytes) -> int:
        """Keep an already made thumbnail (``thumbnail_jpeg``, e.g. from a worker)."""
        target = self.path(model_id, prediction_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
        return len(data)

    def read(self, model_id: int, prediction_id: str) -> bytes | None:
        try:
            return self.path(model_id, prediction_id).read_bytes()
        except OSError:
            return None

    def prune_due(self, model_id: int, written: int) -> int:
        """Prune once a twentieth of ``max_count`` has been written since the last prune.

        Why not every request: listing and stat-ing up to ``max_count`` files per image
        batch held the server's GIL longer than the batch's own rows did. The folder holds
        at most ``max_count`` + ``max_count // 20`` files between prunes."""
        step = max(1, self.max_count // 20)
        with self._lock:
            n = self._since_prune.get(model_id, 0) + written
            due = n >= step
            self._since_prune[model_id] = 0 if due else n
        return self.prune(model_id) if due else 0

    def prune(self, model_id: int, now: float | None = None) -> int:
        """Drop the oldest thumbnails beyond the bounds; returns how many went."""
        folder = self.root / str(int(model_id))
        now = time.time() if now is None else now
        files = []
        try:  # os.scandir: pathlib's glob and stat cost 4x the system calls' own time
            with os.scandir(folder) as entries:
                for e in entries:
                    with contextlib.suppress(OSError):
                        if e.name.endswith(".jpg"):
                            st = e.stat()
                            files.append((st.st_mtime, st.st_size, e.path))
                        elif e.name.endswith(".tmp") and now - e.stat().st_mtime > 3600:
                            os.unlink(e.path)  # a write its process never finished
        except OSError:  # no folder yet
            return 0
        files.sort(reverse=True)  # newest first
        kept, total, gone = 0, 0, 0
        for mtime, size, path in files:
            if (kept < self.max_count and total + size <= self.max_bytes
                    and now - mtime <= self.max_age_s):
                kept, total = kept + 1, total + size
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            gone += 1
        return gone


def ingest_images(monitor: Any, name: str, metas: list[dict[str, Any]],
                  images: list[bytes | DecodeFailure], thumbs: ThumbnailStore | None,
                  pool: MeasurePool | None = None, where: str = "rows", **decode_options: Any
                  ) -> ImageIngestResult:
    """``metas[i]`` is the row of ``images[i]`` (prediction_id, prediction, scores,
    timestamp, features, tags...); its ``features`` gain the image's properties. ``pool``:
    where images are measured (None: the process's shared pool); raises ``PoolBusy``, and
    ``DataError`` naming ``{where}[i].embedding`` for a vector that is not the length of its
    version's embedding reference (nothing stored)."""
    model = monitor.model(name)  # an unknown model: 404 before any decoding
    _check_dimensions(monitor, name, metas, where)
    res = ImageIngestResult(received=len(images))
    keep_at = None if thumbs is None else _thumbnail_paths(thumbs, model.id, metas)
    measured = (pool or shared()).measure(images, thumbs.side if thumbs else None,
                                          keep_at=keep_at, **decode_options)
    # checked by the route (image_routes); kept beside the events for embedding drift
    embeddings = [meta.pop("embedding", None) for meta in metas]
    table = measured.table
    res.thumbnails = measured.kept
    report = quality(table)
    rejected: dict[int, tuple[str, str]] = {}
    for f in report.findings:
        res.findings.append(f.to_dict())
        if f.reason in QUARANTINED and f.index not in rejected:
            rejected[f.index] = (FIELD, f"{f.reason}: {f.message}")
    res.images_quarantined = len(rejected)
    props = _property_rows(table, len(metas))
    rows = [_row(meta, p) for meta, p in zip(metas, props, strict=True)]
    res.ingest = monitor.log_predictions(name, rows, rejected=rejected).to_dict()
    if any(e is not None for e in embeddings):
        res.embeddings = _store_embeddings(monitor, name, model.id, metas, embeddings,
                                           rejected, res.ingest)
    if thumbs is not None and res.thumbnails:
        thumbs.prune_due(model.id, res.thumbnails)
    return res


def _check_dimensions(monitor: Any, name: str, metas: list[dict[str, Any]],
                      where: str) -> None:
    """Refuse a vector whose length is not its version's reference's: one such row once
    made the whole window's embedding drift ``null`` (two lengths), silencing the rule."""
    from aiwarden.monitoring.image_embeddings import reference_dimensions
    from aiwarden.store import models_repo
    from aiwarden.store.models_repo import NotFound

    wanted = [(i, meta) for i, meta in enumerate(metas) if meta.get("embedding") is not None]
    if not wanted:
        return
    dims: dict[Any, int | None] = {}
    with monitor.db.read() as conn:
        m = models_repo.get_model(conn, name)
        for i, meta in wanted:
            version = meta.get("version")
            if version not in dims:
                try:
                    v = models_repo.get_version(conn, m, None if version is None
                                                else str(version))
                except NotFound:  # the ingest names the unknown version
                    dims[version] = None
                else:
                    dims[version] = reference_dimensions(conn, v.id)
            dim, got = dims[version], len(meta["embedding"])
            if dim is not None and got != dim:
                raise DataError(f"{where}[{i}].embedding: {got} dimensions, but the version's "
                                f"embedding reference has {dim}. Nothing was stored.",
                                f"{where}[{i}].embedding")


def _store_embeddings(monitor: Any, name: str, model_id: int, metas: list[dict[str, Any]],
                      embeddings: list[Any], rejected: dict[int, tuple[str, str]],
                      ingest: dict[str, Any]) -> int:
    """The accepted rows' embeddings, by the version each row was logged to (a quarantined
    image or a row the ingest refused leaves none: its prediction is not in the window)."""
    from aiwarden.monitoring.image_embeddings import store_window
    from aiwarden.monitoring.windows import parse_instant
    from aiwarden.store import models_repo
    from aiwarden.store.models_repo import NotFound

    refused = {int(e["row"]) for e in ingest.get("errors", []) if "row" in e}
    now = time.time()
    groups: dict[Any, tuple[list[float], list[Any]]] = {}
    for i, (meta, emb) in enumerate(zip(metas, embeddings, strict=True)):
        if emb is None or i in rejected or i in refused:
            continue
        ts = meta.get("timestamp")
        try:
            at = now if ts is None else parse_instant(ts, "timestamp")
        except (ValueError, TypeError):
            continue
        times, vecs = groups.setdefault(meta.get("version"), ([], []))
        times.append(at)
        vecs.append(emb)
    kept = 0
    with monitor.db.write(model_id) as conn:
        m = models_repo.get_model(conn, name)
        for version, (times, vecs) in groups.items():
            try:
                v = models_repo.get_version(conn, m, None if version is None else str(version))
            except NotFound:  # no such version was stored: none of its rows were either
                continue
            kept += store_window(conn, model_id, v.id, times, vecs, now)
    return kept


def _thumbnail_paths(thumbs: ThumbnailStore, model_id: int, metas: list[dict[str, Any]]
                     ) -> list[str | None]:
    """Where each image's thumbnail goes (None: no usable prediction id to find it by)."""
    out: list[str | None] = []
    for meta in metas:
        pid = meta.get("prediction_id")
        ok = isinstance(pid, str | int) and not isinstance(pid, bool)
        out.append(str(thumbs.path(model_id, str(pid))) if ok else None)
    return out


def _property_rows(table: PropertyTable, n: int) -> list[dict[str, float | None]]:
    """Each image's numeric properties (NaN as None), a column converted at a time: indexing
    numpy per image and property held the server's GIL for 4% of an image batch."""
    columns = {k: [None if x != x else x for x in v.tolist()]
               for k, v in table.numeric().items()}
    if not columns:
        return [{} for _ in range(n)]
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _row(meta: dict[str, Any], props: dict[str, float | None]) -> dict[str, Any]:
    """The event's row with the numeric properties as features (NaN as missing), always
    under ``features``: a request whose rows mixed both forms had each property named
    twice in ``ignored_columns`` (``aspect_ratio`` and ``features.aspect_ratio``)."""
    row = dict(meta)
    feats = row.get("features")
    if feats is None or isinstance(feats, dict):
        row["features"] = {**(feats or {}), **props}
    else:  # not an object: ingest quarantines the row for it; the properties stay flat
        row.update(props)
    return row
