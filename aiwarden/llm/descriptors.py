"""Events and their findings become flat ``llm_*`` columns: what the tabular engine profiles.

Every column comes from an evaluator or from the event itself. When an evaluator is not
available (not installed, failed to load or failed on the batch), its columns are left out
and :func:`absent_columns` says why: a missing evaluator never reads as "0 % unsafe".

Examples
--------
>>> from aiwarden.llm.events import parse_events
>>> from aiwarden.llm.findings import Finding
>>> (_, ev), = parse_events([{"request_id": "a", "output": "go on", "tokens_out": 2}])[0]
>>> cols = descriptors([ev], [[Finding("safety", "self_harm", "output", 0, 5, 0.9)]],
...                    ran={"safety"})
>>> int(cols["llm_unsafe"][0]), int(cols["llm_unsafe_self_harm"][0]), "llm_pii" in cols
(1, 1, False)
"""

from __future__ import annotations

import importlib
from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from aiwarden.llm.events import LLMEvent
from aiwarden.llm.findings import Finding

__all__ = ["EVALUATOR_COLUMNS", "EVALUATOR_MODULES", "FEEDBACK", "NUMERIC_COLUMNS",
           "PROVIDER_MODEL", "READS", "SAFETY_CATEGORIES", "absent_columns", "descriptors",
           "load_evaluators", "run_evaluators"]

SAFETY_CATEGORIES = ("self_harm", "violence", "hate", "sexual")
FEEDBACK = "llm_feedback"
PROVIDER_MODEL = "llm_provider_model"
#: Columns each evaluator produces (absent, with a reason, when it is not available).
EVALUATOR_COLUMNS: dict[str, tuple[str, ...]] = {
    "safety": ("llm_unsafe", *(f"llm_unsafe_{c}" for c in SAFETY_CATEGORIES)),
    "pii": ("llm_pii", "llm_pii_count"),
    "secrets": ("llm_secret",),
    "injection": ("llm_injection",),
    "refusal": ("llm_refusal",),
    "output": ("llm_empty", "llm_truncated"),
    "groundedness": ("llm_groundedness",),
}
_EVENT_COLUMNS = ("llm_output_chars", "llm_input_chars", "llm_tokens_in", "llm_tokens_out",
                  "llm_cost", "llm_latency_ms", FEEDBACK)
#: Every numeric descriptor, in schema order.
NUMERIC_COLUMNS = (*[c for cols in EVALUATOR_COLUMNS.values() for c in cols], *_EVENT_COLUMNS)
#: Where each evaluator lives: ``aiwarden.llm.evaluators.<module>``.
EVALUATOR_MODULES = {"safety": "safety", "pii": "pii", "secrets": "secrets",
                     "injection": "injection", "refusal": "refusal", "output": "output",
                     "groundedness": "groundedness"}


def load_evaluators() -> tuple[list[Any], dict[str, str]]:
    """The rule-based evaluators that import, and ``name → reason`` for those that do not.

    Imported lazily (each evaluator is its own module) so a missing or broken one costs
    only its columns.
    """
    found, missing = [], {}
    for name, module in EVALUATOR_MODULES.items():
        try:
            mod = importlib.import_module(f"aiwarden.llm.evaluators.{module}")
        except Exception as exc:  # not installed, or broken: it costs its columns only
            missing[name] = (f"the {name} evaluator is not available "
                             f"({type(exc).__name__}: {exc})")
            continue
        evs = _instances(mod, name)
        if not evs:
            missing[name] = (f"aiwarden.llm.evaluators.{module} has no evaluator named "
                             f"{name!r} that can be made without arguments")
        found += evs
    return found, missing


#: The texts each evaluator reads on ingest (one instance per field when its class takes
#: ``field=``): private values are looked for everywhere, since every stored text is
#: redacted with their spans.
READS: dict[str, tuple[str, ...]] = {
    "pii": ("output", "input", "context"), "secrets": ("output", "input", "context"),
    "safety": ("output",), "refusal": ("output",), "output": ("output",),
    "injection": ("input",)}


def _instances(mod: Any, name: str) -> list[Any]:
    import inspect

    for value in vars(mod).values():
        if not (isinstance(value, type) and getattr(value, "name", None) == name
                and callable(getattr(value, "evaluate", None))
                and value.__module__ == mod.__name__):
            continue
        try:
            takes_field = "field" in inspect.signature(value).parameters
            if takes_field and name in READS:
                return [value(field=f) for f in READS[name]]
            return [value()]
        except (TypeError, ValueError):
            return []
    return []


def _texts(events: Sequence[LLMEvent], fld: str) -> list[Any]:
    if fld == "output":
        return [e.output for e in events]
    if fld == "input":
        return [e.input for e in events]
    if fld == _USERS:
        return [_without_system(e) for e in events]
    return ["\n\n".join(e.context) for e in events]


#: The input as the injection evaluator reads it: the system messages are the operator's,
#: not an attack (the guardrail does not check them either), and their ``system:`` line
#: prefix, added when the messages are written as one text, looks like a role delimiter.
_USERS = "input without system messages"


def _without_system(e: LLMEvent) -> str:
    """The input text with each system message's line blanked: the same length, so the
    spans of what is found still point into the stored input text."""
    text = e.input
    if not any(m["role"] == "system" for m in e.messages):
        return text
    lines = [f"{m['role']}: {m['content']}" for m in e.messages]
    masked = "\n".join("".join(c if c == "\n" else " " for c in line)
                       if m["role"] == "system" else line
                       for m, line in zip(e.messages, lines, strict=True))
    return masked if len(masked) == len(text) else text


#: Fields whose empty text no evaluator reads: an event without input messages or retrieved
#: context has nothing there to find (the output is always read, empty or not: "empty").
_SKIP_EMPTY = ("input", "context")


def run_evaluators(events: Sequence[LLMEvent], evaluators: Sequence[Any]
                   ) -> tuple[list[list[Finding]], set[str], dict[str, str]]:
    """Findings per event, the evaluators that ran, and why the others did not.

    An evaluator reading one field gets that field's texts; one reading several (e.g.
    groundedness: output and context) gets one tuple per event in its ``fields`` order.
    An evaluator reading only the input or the context gets only the events that have one.
    The output evaluator also gets the events' ``finish_reasons`` (truncation is then
    certain). An evaluator that raises is reported (its columns are left out), never fatal.
    """
    out: list[list[Finding]] = [[] for _ in events]
    ran: set[str] = set()
    failed: dict[str, str] = {}
    if not events:
        return out, {e.name for e in evaluators}, failed
    cache: dict[str, list[Any]] = {}

    def texts_of(fld: str) -> list[Any]:
        if fld not in cache:
            cache[fld] = _texts(events, fld)
        return cache[fld]

    for ev in evaluators:
        fields = tuple(ev.fields)
        rows: list[int] | None = None  # the events evaluated (None: all)
        if len(fields) == 1:
            texts = texts_of(_USERS if ev.name == "injection" and fields == ("input",)
                             else fields[0])
            if fields[0] in _SKIP_EMPTY:
                rows = [i for i, t in enumerate(texts) if t]
                if len(rows) == len(texts):
                    rows = None
                else:
                    texts = [texts[i] for i in rows]
        else:
            texts = list(zip(*(texts_of(f) for f in fields), strict=True))
        reasons = None
        if ev.name == "output" and fields == ("output",) and any(e.finish_reason for e in events):
            reasons = [e.finish_reason for e in events]
            reasons = reasons if rows is None else [reasons[i] for i in rows]
        try:
            found = _evaluate_distinct(ev, texts, reasons)
        except Exception as exc:
            failed[ev.name] = f"the {ev.name} evaluator failed: {type(exc).__name__}: {exc}"
            continue
        ran.add(ev.name)
        for i, fs in zip(range(len(events)) if rows is None else rows, found, strict=True):
            if fs:
                out[i].extend(fs)
    return out, ran, failed


def _evaluate_distinct(ev: Any, texts: list[Any], reasons: list[str | None] | None
                       ) -> list[list[Finding]]:
    """``ev.evaluate`` of each distinct text once (with its finish reason, if given), its
    findings shared by the events that repeat it: system prompts, retrieved passages and
    canned answers come back often within a batch, and an evaluator reads one text at a
    time (findings are frozen, so sharing them is safe)."""
    keys = texts if reasons is None else list(zip(texts, reasons, strict=True))
    slot: dict[Any, int] = {}
    where = [slot.setdefault(k, len(slot)) for k in keys]
    if len(slot) == len(keys):
        uniq, uniq_reasons = texts, reasons
    else:
        firsts: list[int] = []  # where each distinct text first comes (slots are in order)
        for i, w in enumerate(where):
            if w == len(firsts):
                firsts.append(i)
        uniq = [texts[i] for i in firsts]
        uniq_reasons = None if reasons is None else [reasons[i] for i in firsts]
    if not uniq:
        return []
    found = (ev.evaluate(uniq) if uniq_reasons is None
             else ev.evaluate(uniq, finish_reasons=uniq_reasons))
    if len(found) != len(uniq):
        raise ValueError(f"returned {len(found)} lists for {len(uniq)} texts")
    return found if uniq is texts else [found[w] for w in where]


def absent_columns(ran: Collection[str], why: dict[str, str] | None = None) -> dict[str, str]:
    """``column → reason`` of the evaluator columns left out because their evaluator did
    not run."""
    why = why or {}
    return {col: why.get(name, f"the {name} evaluator did not run")
            for name, cols in EVALUATOR_COLUMNS.items() if name not in ran for col in cols}


def descriptors(events: Sequence[LLMEvent], findings: Sequence[Sequence[Finding]], *,
                ran: Collection[str] | None = None) -> dict[str, np.ndarray]:
    """The ``llm_*`` columns of ``events`` (one value per event).

    ``ran``: the evaluators whose findings are in ``findings`` (default: all); the columns
    of the others are left out. 0/1 columns are floats so rates are their means;
    ``llm_groundedness`` is 1 - the severity of the worst "ungrounded" finding, NaN without
    context; ``llm_feedback`` is NaN (feedback joins later, like labels); unknown tokens,
    cost and latency are NaN.
    """
    n = len(events)
    ran = set(EVALUATOR_COLUMNS) if ran is None else set(ran)
    flags: dict[str, np.ndarray] = {}

    def flag(col: str) -> np.ndarray:
        return flags.setdefault(col, np.zeros(n))

    pii_count = np.zeros(n)
    ungrounded = np.zeros(n)
    for i, fs in enumerate(findings):
        for f in fs:
            ev = f.evaluator
            if ev == "safety" and f.field == "output":
                flag("llm_unsafe")[i] = 1
                if f.category in SAFETY_CATEGORIES:
                    flag(f"llm_unsafe_{f.category}")[i] = 1
            elif ev == "pii":
                flag("llm_pii")[i] = 1
                pii_count[i] += 1
            elif ev == "secrets":
                flag("llm_secret")[i] = 1
            elif ev == "injection" and f.field == "input":
                flag("llm_injection")[i] = 1
            elif ev == "refusal" and f.field == "output":
                flag("llm_refusal")[i] = 1
            elif ev == "output" and f.category in ("empty", "truncated"):
                flag(f"llm_{f.category}")[i] = 1
            elif ev == "groundedness" and f.category == "ungrounded":
                ungrounded[i] = max(ungrounded[i], float(f.severity))
    out: dict[str, np.ndarray] = {}
    for name, cols in EVALUATOR_COLUMNS.items():
        if name not in ran:
            continue
        for col in cols:
            if col == "llm_pii_count":
                out[col] = pii_count
            elif col == "llm_groundedness":
                has_context = np.array([bool(e.context) for e in events], dtype=bool)
                out[col] = np.where(has_context, 1.0 - ungrounded, np.nan)
            else:
                out[col] = flags.get(col, np.zeros(n))
    out["llm_output_chars"] = np.array([e.output_chars for e in events], dtype=float)
    out["llm_input_chars"] = np.array([e.input_chars for e in events], dtype=float)
    for col, attr in (("llm_tokens_in", "tokens_in"), ("llm_tokens_out", "tokens_out"),
                      ("llm_cost", "cost"), ("llm_latency_ms", "latency_ms")):
        out[col] = np.array([np.nan if getattr(e, attr) is None else getattr(e, attr)
                             for e in events], dtype=float)
    out[FEEDBACK] = np.full(n, np.nan)
    out[PROVIDER_MODEL] = np.array([e.provider_model for e in events], dtype=object)
    return out
