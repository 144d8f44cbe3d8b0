"""The evaluators' shortcuts decide exactly what the full patterns decide.

Each shortcut (a screen before a regex, a search started where a match can start) is checked
against the plain regex it replaces on random texts built from the pieces that matter.
"""

from __future__ import annotations

import random

from aiwarden.llm.evaluators import injection, output, refusal, safety


def _texts(pieces: list[str], n: int, seed: int, most: int = 12) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(pieces) for _ in range(rnd.randint(1, most))) for _ in range(n)]


def test_complete_end_equals_the_end_regex() -> None:
    pieces = ["- ", "* ", "+ ", "# ", "## ", "1. ", "12) ", "\n", "\n\n", " ", "  ", "\t",
              "word", "x", ".", "!", "```", "http://a.b/c", "https://x", "http://", "(", ")",
              "\u2600", "\U0001F600", "'", "3rd", "-", "#", "\r", "\u00a0", "é"]
    texts = [t.strip() for t in _texts(pieces, 40_000, 1)]
    texts = [t for t in texts if t]
    got = [output._complete_end(t) for t in texts]
    want = [bool(output._COMPLETE_END.search(t)) for t in texts]
    assert got == want
    assert 0 < sum(want) < len(want)  # both answers occur


def test_refusal_screen_never_hides_a_refusal() -> None:
    words = ["I", "i", "I'm", "I am", "sorry,", "SORRY", "afraid", "but", "can't", "cannot",
             "can", "not", "won't", "will", "unable", "able", "to", "help", "assist",
             "decline", "refuse", "must", "don't", "do", "as an AI", "language model",
             "that's", "something", "comfortable", "going", "request", "violates",
             "unfortunately,", "we", "\u017forry", "\u212aind", "é", "hello", "this is"]
    pieces = [w + sep for w in words for sep in (" ", "  ", "\n")]
    texts = _texts(pieces, 60_000, 2, most=14)
    hits = 0
    for t in texts:
        found = refusal._REFUSAL.search(t) is not None
        hits += found
        assert refusal._may_refuse(t) or not found, t
    assert hits > 100
    ev, plain = refusal.RefusalEvaluator(), []
    for t in texts[:5000]:  # the evaluator as a whole equals the bare regex
        u = t.replace("\u2019", "'")
        limit = len(u) if len(u) <= ev.short_chars else ev.lead_chars
        m = refusal._REFUSAL.search(u, 0, limit + 80)
        plain.append([(m.start(), m.end())] if m is not None and m.start() <= limit else [])
    assert [[(f.start, f.end) for f in fs] for fs in ev.evaluate(texts[:5000])] == plain


def test_quote_screen_and_anchor_search_equal_the_plain_scans() -> None:
    pieces = ["\"", "'", "\u201c", "\u201d", "\u2018", "\u2019", "\u00ab", "\u00bb", "word",
              " ", ". ", "!\n", "kill", "yourself", "you", "it's", "\u0130", "end", "life",
              "-", "_", "x"]
    for t in _texts(pieces, 20_000, 3, most=20):
        t = safety._normalise(t)
        ctx = safety._Context(t)
        ctx.quoted(0, 0)
        assert ctx._quotes == [m.span() for m in safety._C["quoted"].finditer(t)]
        assert ctx._sentence_ends() == [m.end() for m in safety._C["sentence_end"].finditer(t)]
        spans = ctx.spans()
        words = safety._SentenceWords(t, spans, ctx.lower)
        for hits in (frozenset({"kill"}), frozenset({"yourself", "end"}), frozenset({"x"}),
                     frozenset({"life", "it", "s"})):
            hits = hits & words.every
            want = [sp for sp in spans if not hits.isdisjoint(safety._words(t, *sp))]
            assert words.sentences_with(hits) == want, (t, hits)


def test_injection_screens_equal_running_every_family() -> None:
    blob = "aGVsbG8gd29ybGQgdGhpcyBpcyBhIHRlc3Qgb2YgYmFzZTY0IGVuY29kaW5nIQ=="
    words = ["ignore", "previous", "instructions", "decode", "this", "base64", "Follow", "the",
             "following", "hex", blob, blob[:47], blob[:48] + "!", "\u200b", "\u017f",
             "translate", "rot13", "x", "DAN", "system:", "\n", "a1b2" * 13,
             # mixed case for the lower-cased ASCII path: literals, classes and anchors
             "[INST]", "[/inst]", "<<SYS>>", "<</Sys>>", "<|IM_START|>", "### System", "SYSTEM:",
             "IGNORE", "Previous", "Dan", "Developer", "MODE", "Pretend", "You're", "EVIL",
             "AGVSBG8GD29YBGQGDGHPCYBPCYBHIHRLC3QGB2YGYMFZZTY0IGVUY29KAW5NIQ=="]
    pieces = [w + sep for w in words for sep in (" ", "", "\n")]
    texts = _texts(pieces, 20_000, 4, most=10)
    ev = injection.InjectionEvaluator()
    plain = []
    for text in texts:
        t = text.replace("\u2019", "'")
        fs = sorted(((m.start(), m.end(), d) for d, _, _, rx in injection._COMPILED
                     for m in rx.finditer(t)), key=lambda x: x[0])
        plain.append(fs)
    got = [[(f.start, f.end, f.detail) for f in fs] for fs in ev.evaluate(texts)]
    assert got == plain
    assert sum(any(d == "obfuscation" for *_, d in fs) for fs in plain) > 100
    assert {d for fs in plain for *_, d in fs} >= {"override", "jailbreak", "delimiter",
                                                     "obfuscation"}
    for _, _, _, rx in injection._COMPILED_LOWER:  # no upper case left outside A-Za-z classes
        import re
        assert not re.search(r"[A-Z]", re.sub(r"\\U[0-9A-F]{8}|\\.|\[A-Za-z[^\]]*\]", "",
                                               rx.pattern))


def test_gate_equals_the_counter_form() -> None:
    """The word gate (list.count for the l2 norm, Python floats) equals the form it replaced
    (a Counter and numpy scalars) bit for bit."""
    import math
    from collections import Counter
    from itertools import repeat

    import numpy as np

    from aiwarden.llm.evaluators._safety_model import _TOKEN, _sigmoid, load_default

    m = load_default()
    vocab = [*sorted(m.gate_words)[::50], "kill", "yourself", "you", "the", "die", "zzq"]
    rnd = random.Random(5)
    texts = [" ".join(rnd.choice(vocab) for _ in range(rnd.randint(0, 90))) for _ in range(3000)]
    texts += ["", "!!", "a b", "İstanbul kill KILL kill"]
    get, b = m.gate_words.get, m.gate_intercept
    z = np.full(len(texts), b)
    for i, t in enumerate(texts):
        toks = _TOKEN.findall(t.lower())
        if not toks:
            continue
        n = len(toks)
        sq = n if len(set(toks)) == n else sum(k * k for k in Counter(toks).values())
        z[i] += math.fsum(map(get, toks, repeat(0.0))) / math.sqrt(sq)
    want = _sigmoid(z)
    got = m.gate_proba_words(texts)
    assert got.dtype == want.dtype and got.tolist() == want.tolist()


def test_fast_token_regex_gives_the_vectorizer_tokens() -> None:
    """``\\w\\w+`` finds the tokens of HashingVectorizer's ``(?u)\\b\\w\\w+\\b`` (the gate and the
    scorer's four-word minimum use it)."""
    from aiwarden.llm.evaluators._safety_model import _TOKEN, _TOKEN_FAST

    pieces = ["a", "b", "kill", "you", "x", " ", "  ", ".", "'", "-", "_", "__", "9", "42", "é",
              "İ", "ß", "日本", "\u0301", "\n", "don't", "e-mail", "—", "a_b", "3.5", "ǅ", "™"]
    texts = _texts(pieces, 5000, seed=9, most=20)
    assert sum(len(_TOKEN.findall(t)) for t in texts) > 10_000
    for t in texts:
        assert _TOKEN_FAST.findall(t) == _TOKEN.findall(t), t
        assert _TOKEN_FAST.findall(t.lower()) == _TOKEN.findall(t.lower()), t
    assert safety._TOKEN.pattern == _TOKEN_FAST.pattern


def test_batch_tokens_are_the_regex_tokens_of_each_text() -> None:
    """The gate's batch tokeniser (bytes.translate + split for ASCII texts, the regex for the
    rest, NUL between texts) gives each text's ``\\w\\w+`` tokens in order, and refuses a
    batch with a NUL inside a text (the gate then reads each text alone)."""
    import numpy as np

    from aiwarden.llm.evaluators._safety_model import _TOKEN_FAST, _batch_tokens

    pieces = ["a", "b", "kill", "you", "x", " ", "  ", ".", "'", "-", "_", "__", "9", "42", "é",
              "İ", "ß", "日本", "\n", "don't", "e-mail", "—", "a_b", "3.5", "™", "\t", "~",
              "\x7f", "\x1f", "@", "`", "^", "\\", "Z", "AB"]
    texts = [t.lower() for t in _texts(pieces, 6000, seed=13, most=30)]
    texts += [t.lower() for t in _texts([p for p in pieces if p.isascii()], 2000, 14, 30)]
    texts += ["", " ", "a", "ab"]
    assert sum(t.isascii() for t in texts) > 1000 and sum(not t.isascii() for t in texts) > 1000
    for batch in (texts, [t for t in texts if t.isascii()], texts[:1], texts[-3:]):
        toks, hs, sep, sid = _batch_tokens(batch)
        words = [t for t, s in zip(toks, sep.tolist(), strict=True) if not s]
        owner = sid[~sep].tolist()
        got: list[list[str]] = [[] for _ in batch]
        for t, i in zip(words, owner, strict=True):
            got[i].append(t)
        assert got == [_TOKEN_FAST.findall(t) for t in batch]
        groups = len({t.isascii() for t in batch})  # ASCII texts, the others: NUL between
        assert hs.tolist() == [hash(t) for t in toks] and int(sep.sum()) == len(batch) - groups
    assert _batch_tokens(["fine", "nul\0inside"]) is None
    assert _batch_tokens([]) is not None and not np.any(_batch_tokens([])[2])


def test_char_features_equal_the_vectorizer_bit_for_bit() -> None:
    """The scorer's char_wb block built from remembered per-word rows is scikit-learn's
    matrix: same indices, same floats (whitespace runs, Unicode case, empty texts)."""
    from aiwarden.llm.evaluators import _safety_model as sm

    c = sm.vectorizers()[2]
    pieces = ["a", "kill", "you", "yourself", " ", "  ", "\t\t", "\n", ".", "'", "é", "İ", "ß",
              "Σ", "日本", "\u2003", "\x1c", "don't", "AB", "x_y", "die"]
    texts = [*_texts(pieces, 4000, seed=17, most=40), "", " ", "İİ İ"]
    sm._CHAR_CACHE.clear()
    for batch in (texts, texts[:5], texts[::-1], ["", ""]):  # cold, then warm cache
        want, got = c.transform(batch), sm.char_features(batch)
        assert type(got) is type(want) and got.shape == want.shape
        assert got.indptr.tolist() == want.indptr.tolist()
        assert got.indices.tolist() == want.indices.tolist()
        assert got.data.tolist() == want.data.tolist()


def test_gate_decisions_from_bounds_equal_the_computed_gate() -> None:
    """gate_pass_batch decides most sentences from the bounds of their l2 norm: the same
    decisions as thresholding gate_proba_batch, on the labelled sentences and on random word
    soups with repeats (many near the threshold)."""
    import json
    from pathlib import Path

    import numpy as np

    from aiwarden.llm.evaluators._safety_model import load_default

    m = load_default()
    data = Path(__file__).resolve().parents[1] / "data" / "llm_eval" / "safety.jsonl"
    texts = [json.loads(x)["text"] for x in data.read_text().splitlines() if x]
    vocab = [*sorted(m.gate_words)[::40], "kill", "yourself", "you", "the", "die", "zzq", "é"]
    rnd = random.Random(21)
    texts += [" ".join(rnd.choice(vocab[: rnd.randint(2, len(vocab))])
                       for _ in range(rnd.randint(0, 30))) for _ in range(6000)]
    texts += ["", "!!", "a", "nul\0inside kill"]
    p = m.gate_proba_batch(texts)
    assert 0.05 < np.mean(p >= m.gate_threshold) < 0.95
    assert np.sum(np.abs(p - m.gate_threshold) < 0.01) > 20  # near the threshold too
    assert m.gate_pass_batch(texts).tolist() == (p >= m.gate_threshold).tolist()
    assert m.gate_pass_batch(texts[-1:]).tolist() == [bool(p[-1] >= m.gate_threshold)]
    assert m.gate_pass_batch([]).tolist() == []
