"""A tiny model2vec model built at test time (never downloaded): a word-level tokenizer
trained with ``tokenizers`` on a few hundred generated prompts (the text drift tests'
templates), and a seeded random embedding matrix, saved as the folder layout
:class:`aiwarden.llm.embeddings.LocalEmbedder` loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.engine.test_text_drift import BILLING, GERMAN, ORDERS, prompts


def sentences() -> list[str]:
    return prompts(ORDERS, 200, 0) + prompts(BILLING, 200, 1) + prompts(GERMAN, 100, 2)


def build(folder: Path, dim: int = 16, seed: int = 0) -> Path:
    """Train the tokenizer (words seen 3 times or more: no order numbers), draw the
    matrix, save; returns ``folder``."""
    from model2vec import StaticModel
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(sentences(), trainers.WordLevelTrainer(
        special_tokens=["[UNK]", "[PAD]"], min_frequency=3))
    vectors = np.random.default_rng(seed).normal(size=(tok.get_vocab_size(), dim))
    StaticModel(vectors.astype(np.float32), tok, normalize=True).save_pretrained(folder)
    return folder
