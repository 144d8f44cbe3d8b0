"""Images named by a key in the artifact store: ``"image_uri": "artifacts://images/..."``.

A kiosk that already uploads its photographs to the store (a shared folder, S3) logs the
key instead of sending the bytes again. Only keys under ``images/`` are read: the registry
keeps model artifacts at ``<model>/<sha256>.<ext>``, and an ingest key should not make the
server read those as images. A key that is not there quarantines its row as
``missing_file`` (the rest of the batch is stored); a store that cannot be read at all
refuses the request (503: nothing stored, the client retries).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aiwarden.errors import DataError
from aiwarden.images import DecodeFailure
from aiwarden.registry import ArtifactStore, ArtifactStoreError

__all__ = ["PREFIX", "SCHEME", "StoredImage", "parse_image_uri", "read_stored"]

log = logging.getLogger(__name__)

SCHEME = "artifacts://"
PREFIX = "images/"
MAX_KEY = 1024
_READERS = 8  # concurrent reads: an object store answers each in tens of ms


@dataclass(frozen=True)
class StoredImage:
    """An image still in the artifact store, read just before it is measured."""

    key: str


def parse_image_uri(value: Any, where: str) -> StoredImage:
    """``artifacts://images/<path>`` -> its key; anything else a DataError naming ``where``."""
    example = f'"{SCHEME}{PREFIX}kiosk/2026-12-07/a1.jpg"'
    if not isinstance(value, str):
        raise DataError(f"{where}: expected text such as {example}; got "
                        f"{type(value).__name__}.", where)
    if not value.startswith(SCHEME):
        raise DataError(f"{where}: only images in the server's artifact store can be named "
                        f"(a URI starting with {SCHEME!r}, e.g. {example}); other schemes "
                        "are not fetched. Send other images as bytes.", where)
    key = value[len(SCHEME):]
    parts = key.split("/")
    if (not key.startswith(PREFIX) or len(key) > MAX_KEY or len(parts) < 2
            or any(p in ("", ".", "..") for p in parts) or "\\" in key
            or any(ord(c) < 32 for c in key)):
        raise DataError(f"{where}: the key must lie under {PREFIX!r} in the artifact store, "
                        f"with no empty, '.' or '..' parts, control characters or "
                        f"backslashes, at most {MAX_KEY} characters (e.g. {example}).", where)
    return StoredImage(key)


def read_stored(store: ArtifactStore, images: Sequence[Any], max_bytes: int,
                db: Any = None) -> list[Any]:
    """``images`` with each :class:`StoredImage` replaced by its bytes (at most
    ``max_bytes`` + 1 read: more is ``too_large_file``) or a ``missing_file``
    :class:`DecodeFailure`. Raises :class:`ArtifactStoreError` when the store fails.
    ``db``: keys the registry holds a model artifact at are never read (a model named
    ``images`` keeps its artifacts under ``images/``)."""
    wanted = [i for i, im in enumerate(images) if isinstance(im, StoredImage)]
    if not wanted:
        return list(images)
    artifacts = _artifact_keys(db, {images[i].key for i in wanted}) if db is not None else set()

    def read(i: int) -> bytes | DecodeFailure:
        key = images[i].key
        if key in artifacts:
            return DecodeFailure("missing_file", f"No image {key!r} in the artifact store "
                                                 "(the key holds a registered model artifact).")
        try:
            data = store.head(key, max_bytes + 1)
        except ArtifactStoreError:
            raise
        except Exception as exc:
            log.error("reading image %s from the artifact store failed: %r", key, exc)
            raise ArtifactStoreError("The artifact store could not be read (setting "
                                     "artifacts_url); nothing was stored. The server log has "
                                     "the details.", "artifacts_url") from None
        if data is None:
            return DecodeFailure("missing_file", f"No object {key!r} in the artifact store.")
        if len(data) > max_bytes:
            return DecodeFailure("too_large_file", f"{key!r} has more than {max_bytes} bytes.",
                                 file_size=len(data))
        return data

    out = list(images)
    if len(wanted) == 1:
        out[wanted[0]] = read(wanted[0])
        return out
    with ThreadPoolExecutor(min(_READERS, len(wanted))) as pool:
        for i, data in zip(wanted, pool.map(read, wanted), strict=True):
            out[i] = data
    return out


def _artifact_keys(db: Any, keys: set[str]) -> set[str]:
    """Which of ``keys`` the registry stores a model artifact at."""
    from sqlalchemy import select

    from aiwarden.store.tables import model_artifacts

    with db.read() as conn:
        return set(conn.execute(select(model_artifacts.c.uri)
                                .where(model_artifacts.c.uri.in_(sorted(keys)))).scalars())
