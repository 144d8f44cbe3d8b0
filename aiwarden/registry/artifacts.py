"""Where artifact bytes live: a local folder by default, or any fsspec URL (s3://, gs://,
memory://). The database keeps each artifact's key relative to the store's root, so a
store can move (a new ``AIWARDEN_ARTIFACTS_URL``) without rewriting rows.

>>> import tempfile
>>> store = open_store(tempfile.mkdtemp())
>>> store.put("fraud/abc.skops", b"bytes")
>>> store.get("fraud/abc.skops")
b'bytes'
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from aiwarden.registry._errors import ArtifactStoreError

__all__ = ["ArtifactStore", "FsspecStore", "LocalStore", "default_artifacts_url", "open_store"]

log = logging.getLogger(__name__)


class ArtifactStore(Protocol):
    url: str

    def put(self, key: str, data: bytes) -> None: ...

    def get(self, key: str) -> bytes: ...

    def head(self, key: str, limit: int) -> bytes | None: ...


def default_artifacts_url(data_dir: str | os.PathLike[str]) -> str:
    """``<data dir>/artifacts``: beside the SQLite file, so one folder holds everything."""
    return str(Path(data_dir).resolve() / "artifacts")


def _missing(url: str, key: str) -> ArtifactStoreError:
    """A missing file: its location goes to the log, the message names only the key."""
    log.error("artifact %s is missing from the store %s", key, url)
    return ArtifactStoreError(f"The artifact {key!r} is missing from the artifact store.",
                              "uri")


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ArtifactStoreError(f"Invalid artifact key {key!r}.", "uri")
    return key


class LocalStore:
    """A folder; writes are atomic (temporary file, fsync, rename)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = str(self.root)

    def put(self, key: str, data: bytes) -> None:
        path = self.root / _check_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        path = self.root / _check_key(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise _missing(self.url, key) from None

    def head(self, key: str, limit: int) -> bytes | None:
        """At most ``limit`` bytes of the object; None when there is none. Never from outside
        the root: a symbolic link out of the store counts as none (image events name
        objects by key, and the key comes from a client)."""
        path = (self.root / _check_key(key)).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            return None
        try:
            with path.open("rb") as f:
                return f.read(limit)
        except FileNotFoundError:  # removed meanwhile
            return None

    def __repr__(self) -> str:
        return f"LocalStore({self.url!r})"


class FsspecStore:
    """Any fsspec filesystem; fsspec (and its protocol's package, e.g. s3fs) is optional."""

    def __init__(self, url: str, **options: Any) -> None:
        try:
            import fsspec
        except ImportError:
            raise ArtifactStoreError(
                f"The artifact store ({url.split('://')[0]}://) needs fsspec: pip install "
                "'aiwarden[registry]' "
                "(plus the protocol's package, e.g. s3fs for s3://).", "artifacts_url") from None
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            log.error("cannot open the artifact store %s: %s", url, exc)
            raise ArtifactStoreError(f"Cannot open the artifact store (setting artifacts_url, "
                                     f"AIWARDEN_ARTIFACTS_URL): {type(exc).__name__}; the "
                                     "server log has the details.", "artifacts_url") from None
        self.root = root.rstrip("/")
        self.url = url

    def _path(self, key: str) -> str:
        return f"{self.root}/{_check_key(key)}"

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(path, data)

    def get(self, key: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._path(key)))
        except FileNotFoundError:
            raise _missing(self.url, key) from None

    def head(self, key: str, limit: int) -> bytes | None:
        """At most ``limit`` bytes of the object (a ranged read where the protocol has one);
        None when there is none."""
        try:
            return bytes(self.fs.cat_file(self._path(key), start=0, end=limit))
        except (FileNotFoundError, IsADirectoryError):
            return None

    def __repr__(self) -> str:
        return f"FsspecStore({self.url!r})"


def open_store(url: str | os.PathLike[str]) -> LocalStore | FsspecStore:
    """A :class:`LocalStore` for a path or ``file://`` URL, else an :class:`FsspecStore`."""
    text = os.fspath(url)
    if text.startswith("file://"):
        return LocalStore(text[len("file://"):])
    if "://" in text:
        return FsspecStore(text)
    return LocalStore(text)
