"""The local embedding model (the embeddings extra) on a tiny model2vec folder built here:
vectors equal the mean of the tokens' rows computed by hand, texts with no known token get
none, and a bad folder or a missing extra is refused in one line, never downloaded."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from tokenizers import Tokenizer

from aiwarden.errors import ParameterError
from aiwarden.llm.embeddings import INSTALL_HINT, LocalEmbedder
from tests.llm import tiny_embedding_model


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_embedding_model.build(tmp_path_factory.mktemp("m2v") / "tiny")


def test_vectors_are_the_normalised_mean_of_the_token_rows(folder: Path) -> None:
    emb = LocalEmbedder(folder)
    matrix = load_file(str(folder / "model.safetensors"))["embeddings"].astype(np.float64)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    unk = tok.token_to_id("[UNK]")
    texts = ["Where is my order 1234", "refund payment 7 to my card", "wo ist meine Bestellung"]
    got = emb.embed(texts)
    for text, vec in zip(texts, got, strict=True):
        ids = [i for i in tok.encode(text, add_special_tokens=False).ids if i != unk]
        mean = matrix[ids].mean(axis=0)
        np.testing.assert_allclose(vec, mean / np.linalg.norm(mean), atol=1e-5)
    assert emb.dim == 16 == len(got[0])
    assert emb.source.startswith("model2vec:tiny:") and len(emb.source) == len(
        "model2vec:tiny:") + 12
    assert LocalEmbedder(folder).source == emb.source  # the same matrix, the same source


def test_texts_without_a_known_token_get_no_vector(folder: Path) -> None:
    assert LocalEmbedder(folder).embed(["", "   ", "zzz qqq 42", "my order"])[:3] == [
        None, None, None]
    assert LocalEmbedder(folder).embed([]) == []


def test_a_path_that_is_not_a_folder_is_refused_not_downloaded(tmp_path: Path) -> None:
    for path in ("minishlab/potion-base-8M", str(tmp_path / "missing")):
        with pytest.raises(ParameterError, match="is not a folder") as exc:
            LocalEmbedder(path, field="AIWARDEN_EMBEDDING_MODEL")
        assert str(exc.value).startswith("AIWARDEN_EMBEDDING_MODEL: ")
        assert "\n" not in str(exc.value)


def test_a_folder_that_is_no_model_says_why(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ParameterError, match="could not be loaded as a model2vec model") as exc:
        LocalEmbedder(tmp_path)
    assert "\n" not in str(exc.value)


def test_a_missing_extra_names_it(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "model2vec", None)  # import model2vec now fails
    with pytest.raises(ParameterError) as exc:
        LocalEmbedder(folder)
    assert str(exc.value) == (f"embedding_model is set but model2vec is not installed: "
                              f"{INSTALL_HINT}")
    assert INSTALL_HINT == "pip install 'aiwarden[embeddings]'"
