"""The ``text_drift`` metric of a window: its stored prompts against the version's reference
prompts (docs/llm.md, "Text drift").

The reference prompts (and embeddings) are a seeded sample of the version's LLM reference
events, stored in ``kv_state`` when the reference is uploaded, after the model's privacy
policy (so redacted current prompts are compared with redacted reference prompts). A
window's side is a seeded sample of at most ``rows`` of its events stored in ``llm_events``
(the texts the privacy policy kept). Two detectors run (:mod:`aiwarden.engine.text_drift`):
the hashed char n-gram domain classifier on the prompts, and MMD on the embeddings when
both sides carry enough of them. A thin window or reference answers ``None`` with a reason.
Results are cached per (version, window, row count), like multivariate drift.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, select

from aiwarden.engine.text_drift import TextDomainClassifierDrift, mmd_rbf
from aiwarden.llm.embeddings import EVENT_SOURCE
from aiwarden.llm.events import input_text
from aiwarden.monitoring.seeded_sample import sample_positions
from aiwarden.store import kv
from aiwarden.store.tables import llm_events

__all__ = ["TextDriftSettings", "TextDriftWindows", "reference_key", "store_reference"]

_CACHE = 256
_CHUNK = 500


def reference_key(version_id: int) -> str:
    return f"llm_text_ref:{int(version_id)}"


@dataclass(frozen=True)
class TextDriftSettings:
    """``rows``: prompts sampled a side; ``min_rows``: fewer and the metric says so;
    ``embedding_rows``: embeddings kept a side (MMD is quadratic in them)."""

    rows: int = 1000
    min_rows: int = 50
    embedding_rows: int = 300
    n_permutations: int = 200


def store_reference(conn: Connection, version_id: int, prompts: Sequence[str],
                    embeddings: Sequence[Sequence[float] | None],
                    settings: TextDriftSettings = TextDriftSettings(), *,
                    sources: Sequence[str] | None = None) -> dict[str, Any]:
    """Keep a seeded sample of the reference prompts and embeddings (replacing any).

    ``sources`` says where each embedding came from (``"event"``, or the local model's
    :attr:`~aiwarden.llm.embeddings.LocalEmbedder.source`); only the commonest source's
    are kept, and windows compare only embeddings of that source with them."""
    keep = sample_positions(len(prompts), settings.rows, (version_id, 0))
    srcs = list(sources) if sources is not None else [EVENT_SOURCE] * len(embeddings)
    counts = Counter(s for e, s in zip(embeddings, srcs, strict=True) if e)
    source = counts.most_common(1)[0][0] if counts else EVENT_SOURCE
    embs = [e for e, s in zip(embeddings, srcs, strict=True) if e and s == source]
    keep_e = sample_positions(len(embs), settings.embedding_rows, (version_id, 1))
    doc = {"prompts": [prompts[i] for i in keep], "embeddings": [embs[i] for i in keep_e],
           "embedding_source": source}
    kv.put(conn, reference_key(version_id), doc)
    return {"prompts": len(doc["prompts"]), "embeddings": len(doc["embeddings"]),
            "embedding_source": source}


class TextDriftWindows:
    def __init__(self, settings: TextDriftSettings = TextDriftSettings()) -> None:
        self.settings = settings
        self._cache: OrderedDict[tuple[Any, ...], tuple[Any, str | None]] = OrderedDict()
        self._lock = threading.Lock()

    def compute(self, db: Any, conn: Connection, model_id: int, version_id: int,
                version: str, ref: Any, t0: float, t1: float, n_rows: int
                ) -> tuple[dict[str, Any] | None, str | None]:
        """``(value, None)`` or ``(None, why)`` for the window ``[t0, t1)``."""
        doc = kv.get(conn, reference_key(version_id))
        key = (version_id, t0, t1, n_rows, None if doc is None else len(doc["prompts"]))
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        out = self._compute(conn, model_id, version_id, version, doc, t0, t1)
        with self._lock:
            self._cache[key] = out
            while len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        return out

    def _current(self, conn: Connection, model_id: int, version_id: int, version: str,
                 t0: float, t1: float, source: str
                 ) -> tuple[list[str], list[list[float]], int, int]:
        """A seeded sample of the window's stored prompts, its embeddings of ``source``,
        how many events of the window had no prompt text stored (withheld or no input), and
        how many embeddings of another source were left out."""
        s = self.settings
        where = and_(llm_events.c.model_id == model_id, llm_events.c.version == version,
                     llm_events.c.ts >= t0, llm_events.c.ts < t1)
        ids = list(conn.execute(select(llm_events.c.id).where(where)
                                .order_by(llm_events.c.id)).scalars())
        picked = [ids[i] for i in sample_positions(len(ids), s.rows, (version_id, t0, t1))]
        prompts, embs, missing, other = [], [], 0, 0
        for i in range(0, len(picked), _CHUNK):
            for inp, detail in conn.execute(select(llm_events.c.input, llm_events.c.detail)
                                            .where(llm_events.c.id.in_(picked[i:i + _CHUNK]))
                                            .order_by(llm_events.c.id)):
                text = input_text(orjson.loads(inp)) if inp else ""
                if text:
                    prompts.append(text)
                else:
                    missing += 1
                d = orjson.loads(detail) if detail else {}
                emb = d.get("embedding")
                if not emb:
                    continue
                if (d.get("embedding_source") or EVENT_SOURCE) != source:
                    other += 1
                elif len(embs) < s.embedding_rows:
                    embs.append(emb)
        return prompts, embs, missing, other

    def _compute(self, conn: Connection, model_id: int, version_id: int, version: str,
                 doc: Any, t0: float, t1: float) -> tuple[dict[str, Any] | None, str | None]:
        s = self.settings
        if doc is None:
            return None, (f"version {version!r} has no LLM reference prompts: upload them with "
                          f"PUT /models/{{name}}/versions/{version}/llm-reference")
        ref_prompts = doc["prompts"]
        if len(ref_prompts) < s.min_rows:
            return None, (f"the reference has {len(ref_prompts)} prompts; text drift needs at "
                          f"least {s.min_rows}")
        source = doc.get("embedding_source", EVENT_SOURCE)
        prompts, embs, missing, other = self._current(conn, model_id, version_id, version,
                                                      t0, t1, source)
        if len(prompts) < s.min_rows:
            extra = (f" ({missing} events without a stored prompt: no input, or texts "
                     "withheld)" if missing else "")
            return None, (f"{len(prompts)} prompts stored in this window{extra}; text drift "
                          f"needs at least {s.min_rows}")
        det = TextDomainClassifierDrift(max_texts=s.rows, random_state=version_id % 2**31)
        res = det.fit(ref_prompts).compare(prompts)
        value: dict[str, Any] = {
            "auc": res.auc, "auc_lower": res.auc_ci[0], "auc_upper": res.auc_ci[1],
            "threshold": res.threshold, "drifted": float(res.drift_detected),
            "n_reference": res.n_reference, "n_current": res.n_current,
            "top_ngrams": res.top_ngrams, "reasons": {}}
        if res.ngram_reason:
            value["reasons"]["top_ngrams"] = res.ngram_reason
        value.update(self._embeddings(doc["embeddings"], embs, value["reasons"], source,
                                      other))
        return value, None

    def _embeddings(self, ref: list[list[float]], cur: list[list[float]],
                    reasons: dict[str, str], source: str, other: int) -> dict[str, Any]:
        s = self.settings
        none = {"embedding_mmd2": None, "embedding_p_value": None, "embedding_drifted": None}
        if len(ref) < s.min_rows or len(cur) < s.min_rows:
            extra = (f" ({other} embeddings of another source than the reference's "
                     f"{source!r} left out)" if other else "")
            reasons["embedding_p_value"] = (
                f"embeddings: {len(ref)} in the reference, {len(cur)} in this window{extra}; "
                f"MMD needs at least {s.min_rows} a side")
            return none
        widths = {len(e) for e in (*ref, *cur)}
        if len(widths) > 1:
            reasons["embedding_p_value"] = f"embeddings of different widths: {sorted(widths)}"
            return none
        r = mmd_rbf(ref, cur, n_permutations=s.n_permutations, max_rows=s.embedding_rows)
        return {"embedding_mmd2": r.mmd2, "embedding_p_value": r.p_value,
                "embedding_drifted": float(r.drift_detected)}
