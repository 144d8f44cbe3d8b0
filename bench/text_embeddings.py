"""The local embedding model at LLM ingest (the embeddings extra): prompts per second per
core, and what it adds to the ingest's storing step.

The model is built here with potion-base-8M's shape (a 29,528-token word-level vocabulary,
256 numbers a vector, seeded random matrix; nothing is downloaded), saved and loaded through
:class:`aiwarden.llm.embeddings.LocalEmbedder` as the server loads it. The prompts are
~200 characters of vocabulary words (a tenth unknown). Timed with process CPU time (one
core; model2vec's multiprocessing is off), median of ``--repeats``, next to a baseline in the
same run: scikit-learn's ``HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5))``
transform of the same prompts (the text drift classifier's featurisation).

Usage::

    .venv/bin/python bench/text_embeddings.py
    .venv/bin/python bench/text_embeddings.py --prompts 5000 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

VOCAB, DIM = 29_528, 256


def build(folder: Path) -> Path:
    from model2vec import StaticModel
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    words = ["[UNK]", "[PAD]"] + [f"w{i:05d}" for i in range(VOCAB - 2)]
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)},
                                     unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    matrix = np.random.default_rng(0).normal(size=(VOCAB, DIM)).astype(np.float32)
    StaticModel(matrix, tok, normalize=True).save_pretrained(folder)
    return folder


def prompts(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        ids = rng.integers(2, VOCAB, 30)
        words = [f"w{i - 2:05d}" if rng.random() > 0.1 else "zzzz" for i in ids]
        out.append(" ".join(words)[:200])
    return out


def records(texts: list[str]) -> list[dict]:
    """Stored-event records as ``llm_ingest._record`` makes them (input JSON, detail JSON)."""
    return [{"input": orjson.dumps([{"role": "user", "content": t}]).decode(),
             "detail": orjson.dumps({"tokens_in": 50, "embedding": None}).decode()}
            for t in texts]


def cpu(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return max(statistics.median(times), 1e-9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=3000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    from sklearn.feature_extraction.text import HashingVectorizer

    from aiwarden.llm.embeddings import LocalEmbedder
    from aiwarden.monitoring.llm_ingest import _embed_records

    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average at start {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        emb = LocalEmbedder(build(Path(tmp) / "potion-shaped"))
        print(f"model: {VOCAB} tokens x {DIM}, built and loaded in "
              f"{time.perf_counter() - t0:.2f} s (source {emb.source})")
        texts = prompts(args.prompts)
        emb.embed(texts[:10])  # warm the tokenizer untimed
        vec = HashingVectorizer(analyzer="char_wb", ngram_range=(3, 5), n_features=2**18,
                                alternate_sign=False)
        base = cpu(lambda: vec.transform(texts), args.repeats)
        ours = cpu(lambda: emb.embed(texts), args.repeats)
        stored = cpu(lambda: _embed_records(records(texts), emb), args.repeats)
        floor_records = cpu(lambda: records(texts), args.repeats)
    n = len(texts)
    print(f"{n} prompts of ~200 characters, CPU seconds, median of {args.repeats}:")
    print(f"  baseline HashingVectorizer char_wb (3, 5)  {base:8.4f} s  {n / base:10,.0f}/s")
    print(f"  LocalEmbedder.embed                       {ours:8.4f} s  {n / ours:10,.0f}/s  "
          f"x{ours / base:.2f} of the baseline")
    extra = max(stored - floor_records, 1e-9)
    print(f"  ingest step (_embed_records, JSON in/out) {extra:8.4f} s  {n / extra:10,.0f}/s  "
          f"({extra / n * 1e6:.0f} us a prompt)")


if __name__ == "__main__":
    main()
