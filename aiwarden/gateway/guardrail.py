"""Guardrails on chat completions: check the prompt before it is forwarded and the answer
after, and decide per the model's :class:`GuardrailPolicy` (docs/guardrails.md).

A *verdict* says what happens to one text: ``block`` (the client gets the policy's
fallback), ``redact`` (PII/secret spans replaced by ``[EMAIL]``...), ``flag`` (passed on,
recorded) or nothing. The strongest action wins. A verdict names categories only, never
the matched text.

Streaming (:class:`StreamGuard`): text is accumulated and released sentence by sentence;
before a sentence is released the evaluators run on it with up to ``max_hold_chars`` of the
text before it (context across sentences counts), so a blocked sentence never reaches the
client. A run of text
without a sentence end is released, checked, at the last space once it is longer than
``max_hold_chars``.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiwarden.errors import DataError
from aiwarden.gateway.guardrail_policy import GuardrailPolicy
from aiwarden.llm.findings import Finding
from aiwarden.llm.redact import redact

__all__ = ["Guard", "StreamGuard", "Verdict"]

log = logging.getLogger("aiwarden.gateway")

_RANK = {None: 0, "flag": 1, "redact": 2, "block": 3}
_CLASSES = {"safety": "SafetyEvaluator", "pii": "PiiEvaluator", "secrets": "SecretsEvaluator",
            "injection": "InjectionEvaluator", "refusal": "RefusalEvaluator"}
# a sentence ends at . ! ? or a newline followed by white space (or a newline itself)
_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s+|\n")


#: Content part types and the field that holds their text (checked).
TEXT_PARTS = {"text": "text", "refusal": "refusal"}
#: Content part types without text, passed on unchecked.
OPAQUE_PARTS = ("image_url", "input_audio", "file")


def _text_key(part: Any, where: str) -> str | None:
    """The field of a content part that holds its text (None: a part without text); a
    DataError naming ``where`` for a part the guardrail does not know."""
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in OPAQUE_PARTS:
        return None
    key = TEXT_PARTS.get(kind) if isinstance(kind, str) else None
    if key is None or not isinstance(part.get(key), str):
        raise DataError(f"{where}: a content part the guardrail cannot check (expected "
                        f"{{type: text, text}}, or a {', '.join(OPAQUE_PARTS)} part); it is "
                        "refused rather than forwarded unchecked.", where)
    return key


@functools.lru_cache(maxsize=16)
def _evaluator(name: str, fld: str) -> Any:
    mod = importlib.import_module(f"aiwarden.llm.evaluators.{name}")
    return getattr(mod, _CLASSES[name])(field=fld)


@dataclass
class Verdict:
    """What the policy does with one text: ``action`` (None: nothing found that the
    policy names) and the categories per action."""

    action: str | None = None
    categories: dict[str, list[str]] = field(default_factory=dict)  # action → categories
    text: str | None = None  # the text after redaction (None: unchanged)

    def add(self, action: str, category: str) -> None:
        cats = self.categories.setdefault(action, [])
        if category not in cats:
            cats.append(category)
        if _RANK[action] > _RANK[self.action]:
            self.action = action

    def merge(self, other: Verdict) -> None:
        for action, cats in other.categories.items():
            for c in cats:
                self.add(action, c)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action,
                "categories": {a: sorted(c) for a, c in self.categories.items()}}


class Guard:
    """The policy's evaluators, ready to run on prompts and answers."""

    def __init__(self, policy: GuardrailPolicy) -> None:
        self.policy = policy
        self._input = [_evaluator(n, "input") for n in policy.evaluators("input")]
        self._output = [_evaluator(n, "output") for n in policy.evaluators("output")]

    def _judge(self, evaluators: Sequence[Any], text: str,
               redact_from: int = 0) -> tuple[Verdict, list[Finding]]:
        v, spans = Verdict(), []
        if not text:
            return v, spans
        for ev in evaluators:
            try:
                found = ev.evaluate([text])[0]
            except Exception as exc:  # the policy says: fail closed (block) or flag
                log.warning("guardrail: the %s evaluator failed (%s: %s); %s", ev.name,
                            type(exc).__name__, exc, self.policy.on_error)
                v.add(self.policy.on_error, f"{ev.name}_failed")
                continue
            for f in found:
                action = self.policy.action_of(f.category)
                if action is None:
                    continue
                if action == "redact":
                    if f.whole_text or f.end <= redact_from:
                        continue  # already released, redacted then
                    spans.append(f)
                v.add(action, f.category)
        return v, spans

    def check_input(self, messages: list[Any]) -> tuple[Verdict, list[dict]]:
        """The verdict on the prompt and the messages to forward (redacted where asked).
        System messages are the operator's, not checked. A message's content is a text or
        a list of content parts: the text parts are checked together (joined, so context
        across parts counts) and each redacted in place; image, audio and file parts go on
        as they are. Any other shape is a DataError naming it (422): what the guardrail
        cannot read is not forwarded unchecked."""
        verdict, out = Verdict(), []
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise DataError(f"messages[{i}]: expected an object {{role, content}}.",
                                f"messages[{i}]")
            content = m.get("content")
            if m.get("role") == "system" or content is None:
                out.append(m)
                continue
            if isinstance(content, str):
                v, spans = self._judge(self._input, content)
                verdict.merge(v)
                out.append({**m, "content": redact(content, spans)} if spans else m)
                continue
            if not isinstance(content, list):
                raise DataError(f"messages[{i}].content: expected a text or a list of content "
                                f"parts, got {type(content).__name__}.",
                                f"messages[{i}].content")
            keys = [_text_key(p, f"messages[{i}].content[{j}]") for j, p in enumerate(content)]
            texts = [p[k] for p, k in zip(content, keys, strict=True) if k]
            v, spans = self._judge(self._input, "\n".join(texts))
            verdict.merge(v)
            if spans:
                content, at = list(content), 0
                for j, k in enumerate(keys):
                    if not k:
                        continue
                    text = content[j][k]
                    mine = [replace(f, start=max(f.start, at) - at,
                                    end=min(f.end, at + len(text)) - at)
                            for f in spans if f.start < at + len(text) and f.end > at]
                    if mine:
                        content[j] = {**content[j], k: redact(text, mine)}
                    at += len(text) + 1
                m = {**m, "content": content}
            out.append(m)
        return verdict, out

    def check_output(self, text: str) -> Verdict:
        v, spans = self._judge(self._output, text)
        if spans and v.action != "block":
            v.text = redact(text, spans)
        return v


class StreamGuard:
    """Checks a streamed answer as it arrives: :meth:`feed` deltas (or :meth:`add` them
    and :meth:`release` once per network read), :meth:`finish` at the end. Each returns the
    text that may go to the client now: on the call that blocks, the complete sentences
    before the blocked one (see :attr:`blocked`), and None after that."""

    def __init__(self, guard: Guard) -> None:
        self.guard, self.hold = guard, guard.policy.max_hold_chars
        self.text = ""  # everything received
        self.released = 0  # characters of self.text checked and passed on
        self.verdict = Verdict()
        self._parts: list[str] = []  # added, not yet checked

    @property
    def blocked(self) -> bool:
        return self.verdict.action == "block"

    def _boundary(self) -> int:
        """Where the checked part may end now: after the last complete sentence, else (too
        long a run) at the last space, else nothing yet."""
        end = self.released
        for m in _SENTENCE_END.finditer(self.text, self.released):
            end = m.end()
        if end == self.released and len(self.text) - self.released > self.hold:
            space = self.text.rfind(" ", self.released)
            end = space + 1 if space > self.released else len(self.text)
        return end

    def _context(self) -> int:
        """Where the checked text starts: the released text's last ``max_hold_chars``
        (snapped to a sentence start) give the new sentences their context, without
        reading a long answer again at every sentence."""
        s = self.released - self.hold
        if s <= 0:
            return 0
        m = _SENTENCE_END.search(self.text, s, self.released)
        return m.end() if m else s

    def _check(self, end: int) -> tuple[Verdict, list[Finding], int]:
        ctx = self._context()
        v, spans = self.guard._judge(self.guard._output, self.text[ctx:end],
                                     self.released - ctx)
        return v, spans, ctx

    def _emit(self, v: Verdict, spans: list[Finding], ctx: int, end: int) -> str:
        self.verdict.merge(v)
        off = self.released - ctx  # spans index self.text[ctx:end]; the new text starts here
        local = [replace(f, start=max(f.start, off) - off, end=min(f.end, end - ctx) - off)
                 for f in spans]
        new = self.text[self.released:end]
        self.released = end
        return redact(new, local)

    def _release(self, end: int) -> str | None:
        if end <= self.released:
            return ""
        v, spans, ctx = self._check(end)
        if v.action != "block":
            return self._emit(v, spans, ctx, end)
        # blocked: the sentences before the blocked one still go out, checked one by one
        # (only now: a block is rare, and checking the text at once is the common case)
        ends = [m.end() for m in _SENTENCE_END.finditer(self.text, self.released, end)
                if m.end() < end]
        safe = []
        for e in ends:
            pv, pspans, pctx = self._check(e)
            if pv.action == "block":
                break
            safe.append(self._emit(pv, pspans, pctx, e))
        self.verdict.merge(v)
        return "".join(safe)

    def add(self, delta: str) -> None:
        """Take text without checking it yet (:meth:`release` checks what was added)."""
        if not self.blocked:
            self._parts.append(delta)

    def release(self) -> str | None:
        """Check the complete sentences added so far, in one evaluator run; the text that
        may go out now, or None once blocked."""
        if self.blocked:
            return None
        if self._parts:
            self.text += "".join(self._parts)
            self._parts.clear()
        return self._release(self._boundary())

    def feed(self, delta: str) -> str | None:
        """:meth:`add` then :meth:`release`."""
        self.add(delta)
        return self.release()

    def finish(self) -> str | None:
        """The rest of the text, checked (as :meth:`release`)."""
        if self.blocked:
            return None
        self.text += "".join(self._parts)
        self._parts.clear()
        return self._release(len(self.text))
