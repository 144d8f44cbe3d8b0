"""Token counts for events that did not send them: tiktoken when it can run, else an estimate.

tiktoken (the optional extra ``tokens``) ships no encodings: it downloads them at first use,
or reads them from ``TIKTOKEN_CACHE_DIR``. Without internet access and without a filled
cache it cannot count, and neither tiktoken nor its BPE files are shipped with aiwarden.
So the counter used is reported (:func:`method`), and when it is the estimate every counted
event is flagged ``tokens_estimated``:

* ASCII (English, code): 1 token per 4 characters (OpenAI's rule of thumb);
* Chinese, Japanese, Korean: 1 token per character;
* any other script (accented Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, ...):
  1 token per 2 characters.

The estimate is a budget guide, not an invoice (it was not measured against tiktoken,
whose encodings cannot be loaded where aiwarden is tested). Anthropic, Google and Mistral
models use their own tokenizers, so their counts are estimates whatever the counter (send
the provider's usage fields).

Examples
--------
>>> estimate_tokens(["Hello world, how are you?", "", "你好世界"]).tolist()
[7.0, 0.0, 4.0]
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["count_tokens", "estimate_tokens", "method"]

_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
#: tokens per character by script (see the module docstring)
ASCII_RATE, CJK_RATE, OTHER_RATE = 0.25, 1.0, 0.5


def estimate_tokens(texts: Sequence[str]) -> np.ndarray:
    """Estimated tokens per text (integers, rounded up)."""
    out = np.zeros(len(texts))
    for i, t in enumerate(texts):
        if not t:
            continue
        if t.isascii():
            out[i] = math.ceil(len(t) * ASCII_RATE)
            continue
        ascii_n = len(t.encode("ascii", "ignore"))
        cjk = len(_CJK.findall(t))
        other = len(t) - ascii_n - cjk
        out[i] = math.ceil(ascii_n * ASCII_RATE + cjk * CJK_RATE + other * OTHER_RATE)
    return out


@functools.lru_cache(maxsize=1)
def _encoding() -> tuple[Any, str]:
    """tiktoken's o200k/cl100k encoding, or ``None`` and why it cannot be used here."""
    try:
        import tiktoken
    except ImportError:
        return None, "tiktoken is not installed (pip install 'aiwarden[tokens]')"
    errors = []
    for name in ("o200k_base", "cl100k_base"):
        try:
            return tiktoken.get_encoding(name), f"tiktoken:{name}"
        except Exception as exc:  # no network and no cached BPE file
            errors.append(f"{name}: {type(exc).__name__}")
    return None, ("tiktoken cannot load an encoding (it downloads them at first use; set "
                  "TIKTOKEN_CACHE_DIR to a folder holding them): " + "; ".join(errors))


def method() -> tuple[str, str | None]:
    """``("tiktoken:<encoding>", None)`` or ``("estimate", why tiktoken is not used)``."""
    enc, what = _encoding()
    return (what, None) if enc is not None else ("estimate", what)


def count_tokens(texts: Sequence[str]) -> tuple[np.ndarray, bool]:
    """Tokens per text and whether they are estimates (tiktoken could not be used)."""
    enc, _ = _encoding()
    if enc is None:
        return estimate_tokens(texts), True
    return np.array([len(enc.encode(t, disallowed_special=())) for t in texts],
                    dtype=float), False
