"""A local embedding model for prompts that arrive without an ``embedding`` (docs/llm.md,
"Text drift"), so the ``text_drift`` metric's embedding drift works without the caller
computing embeddings.

The model is a `model2vec <https://github.com/MinishLab/model2vec>`_ static embedding
model (``pip install 'aiwarden[embeddings]'``): a folder holding a tokenizer
(``tokenizer.json``), an embedding matrix (``model.safetensors``) and ``config.json``. A
text's vector is the mean of its tokens' rows: no PyTorch, no GPU, a batch of texts is one
tokenizer call and one gather. It loads only from a local folder: a path that does not
exist is refused here, so it is never looked up on a model hub.

Each vector says where it came from (:attr:`LocalEmbedder.source`: the folder's name and a
hash of its matrix), so drift never compares one model's vectors with another's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aiwarden.errors import ParameterError

__all__ = ["EVENT_SOURCE", "INSTALL_HINT", "LocalEmbedder"]

INSTALL_HINT = "pip install 'aiwarden[embeddings]'"
#: The source of an embedding the event carried.
EVENT_SOURCE = "event"
_DIGITS = 6  # significant digits kept per vector (of its largest number): short JSON
_MAX_DIM = 4096  # as events' own embeddings (aiwarden.llm.events.MAX_EMBEDDING)


class LocalEmbedder:
    """A model2vec model loaded from ``path`` (a folder); ``embed(texts)`` in batches.

    ``field`` names the setting in error messages (e.g. ``AIWARDEN_EMBEDDING_MODEL``).
    """

    def __init__(self, path: str | Path, *, field: str = "embedding_model",
                 batch_size: int = 1024) -> None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise ParameterError(f"{field}: {str(path)!r} is not a folder; give the local "
                                 "folder of a model2vec model (models are never downloaded).",
                                 field)
        try:
            from model2vec import StaticModel
        except ImportError:
            raise ParameterError(f"{field} is set but model2vec is not installed: "
                                 f"{INSTALL_HINT}", field) from None
        try:
            self.model_ = StaticModel.from_pretrained(folder, force_download=False)
        except Exception as exc:  # a folder that is no model2vec model: say which and why
            raise ParameterError(f"{field}: {str(path)!r} could not be loaded as a model2vec "
                                 f"model: {str(exc).splitlines()[0]}", field) from None
        matrix = np.asarray(self.model_.embedding)
        if not 1 <= self.model_.dim <= _MAX_DIM:
            raise ParameterError(f"{field}: the model in {str(path)!r} makes vectors of "
                                 f"{self.model_.dim} numbers; at most {_MAX_DIM} are kept.",
                                 field)
        digest = hashlib.sha256(np.ascontiguousarray(matrix).tobytes()).hexdigest()[:12]
        self.path, self.batch_size = folder, batch_size
        self.source = f"model2vec:{folder.resolve().name}:{digest}"

    @property
    def dim(self) -> int:
        return int(self.model_.dim)

    def embed(self, texts: Sequence[str]) -> list[list[float] | None]:
        """One vector per text, ``None`` for a text with no known token (an empty text, or
        only tokens outside the vocabulary: a zero vector says nothing about the text)."""
        out: list[list[float] | None] = [None] * len(texts)
        todo = [i for i, t in enumerate(texts) if t and t.strip()]
        if not todo:
            return out
        vecs = np.asarray(self._encode([texts[i] for i in todo]), dtype=np.float64)
        top = np.abs(vecs).max(axis=1)
        for i, v, m in zip(todo, vecs, top, strict=True):
            if m > 0 and np.isfinite(m):
                out[i] = np.round(v, _DIGITS - 1 - int(np.floor(np.log10(m)))).tolist()
        return out

    def _encode(self, texts: list[str]) -> Any:
        return self.model_.encode(texts, batch_size=self.batch_size, show_progress_bar=False,
                                  use_multiprocessing=False)
