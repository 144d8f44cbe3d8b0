"""Model-based evaluators the operator plugs in: an OpenAI-compatible moderation endpoint, or
a local classifier (a Python function). None is on by default.

The rule-based evaluators miss wording they were not written for (docs/llm-evaluators.md,
"What they miss"); a moderation model or the operator's own classifier can add what they
miss. Their findings are safety findings (self_harm, violence, hate, sexual), so they count
in ``llm_unsafe`` and ``llm_unsafe_<category>`` beside the rules' own, and every rule, slice
and chart on those columns sees them.

A model call can hang or fail, and ingest must not wait on it: each call has a timeout, and
a circuit breaker stops calling after ``failures`` consecutive failures for ``reset``
seconds (then one trial call). A skipped or failed evaluator is named with the reason in the
ingest answer (``evaluators_skipped``); the rule-based findings stand. Calls to an endpoint
go through the egress policy (``AIWARDEN_EGRESS_ALLOW``), and the API key is read from the
environment variable the config names: the file never holds it, and it is never logged.

The config, a YAML file (server setting ``llm_evaluators``, ``AIWARDEN_LLM_EVALUATORS``)::

    evaluators:
      - name: moderation
        kind: openai_moderation          # POST {"input": [...], "model": ...}
        url: https://api.openai.com/v1/moderations
        model: omni-moderation-latest    # optional
        api_key_env: OPENAI_API_KEY      # optional
        threshold: 0.5                   # a category score this high flags (default: the
                                         # endpoint's own "categories" booleans)
        timeout: 2.0                     # seconds for one ingest batch's calls
        failures: 5                      # consecutive failures that open the breaker
        reset: 30                        # seconds it stays open
      - name: house-classifier
        kind: python
        entry_point: mypackage.safety:score   # texts -> one {category: score} per text
        threshold: 0.8
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aiwarden.errors import AiwardenError, ParameterError
from aiwarden.llm.findings import Finding

__all__ = ["CATEGORY_MAP", "CircuitBreaker", "EvaluatorUnavailable", "ModerationEvaluator",
           "PythonEvaluator", "load_external"]

log = logging.getLogger(__name__)

CATEGORIES = ("self_harm", "violence", "hate", "sexual")
#: OpenAI moderation categories (and the usual spellings of others) -> safety categories
CATEGORY_MAP = {
    "self-harm": "self_harm", "self-harm/intent": "self_harm",
    "self-harm/instructions": "self_harm", "self_harm": "self_harm",
    "violence": "violence", "violence/graphic": "violence", "illicit/violent": "violence",
    "hate": "hate", "hate/threatening": "hate", "harassment": "hate",
    "harassment/threatening": "hate",
    "sexual": "sexual", "sexual/minors": "sexual",
}
_BATCH = 32  # texts per moderation call


class EvaluatorUnavailable(AiwardenError):
    """The evaluator was not asked (breaker open) or did not answer (timeout, error)."""


class CircuitBreaker:
    """Closed: calls go through. ``failures`` in a row open it for ``reset`` seconds, then
    one trial call decides (half-open): a success closes it, a failure opens it again."""

    def __init__(self, failures: int = 5, reset: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.failures, self.reset, self._clock = failures, reset, clock
        self._lock = threading.Lock()
        self._count = 0
        self._open_until: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        with self._lock:
            if self._open_until is None:
                return "closed"
            return "open" if self._clock() < self._open_until else "half-open"

    def allow(self) -> float | None:
        """None when a call may go; else the seconds until the next trial."""
        with self._lock:
            if self._open_until is None:
                return None
            left = self._open_until - self._clock()
            if left > 0 or self._trial:
                return max(left, 0.0)
            self._trial = True  # this call is the one trial
            return None

    def success(self) -> None:
        with self._lock:
            self._count, self._open_until, self._trial = 0, None, False

    def failure(self) -> bool:
        """Count a failure; True when this one opened the breaker."""
        with self._lock:
            self._count += 1
            reopened = self._trial
            self._trial = False
            if reopened or self._count >= self.failures:
                was_closed = self._open_until is None
                self._open_until = self._clock() + self.reset
                return was_closed or reopened
            return False


class _Guarded:
    """A breaker and a timeout around ``_scores``; findings from the scores."""

    name: str
    fields: tuple[str, ...] = ("output",)

    def __init__(self, name: str, threshold: float | None, timeout: float,
                 breaker: CircuitBreaker) -> None:
        self.name, self.threshold, self.timeout, self.breaker = name, threshold, timeout, breaker

    def _scores(self, texts: Sequence[str]) -> list[tuple[dict[str, float], set[str]]]:
        raise NotImplementedError

    def evaluate(self, texts: Sequence[str]) -> list[list[Finding]]:
        wait = self.breaker.allow()
        if wait is not None:
            raise EvaluatorUnavailable(
                f"not asked: its circuit breaker is open after {self.breaker.failures} "
                f"failures in a row (next trial in {wait:.0f} s)")
        try:
            scored = self._scores(list(texts))
            if len(scored) != len(texts):
                raise EvaluatorUnavailable(f"answered {len(scored)} results for "
                                           f"{len(texts)} texts")
        except Exception as exc:
            if self.breaker.failure():
                log.warning("LLM evaluator %s: circuit breaker open for %.0f s after: %s",
                            self.name, self.breaker.reset, _why(exc))
            if isinstance(exc, EvaluatorUnavailable):
                raise
            raise EvaluatorUnavailable(_why(exc)) from None
        self.breaker.success()
        return [self._findings(scores, flagged) for scores, flagged in scored]

    def _findings(self, scores: dict[str, float], flagged: set[str]) -> list[Finding]:
        out = []
        for category in CATEGORIES:
            score = scores.get(category, 0.0)
            hit = (category in flagged if self.threshold is None
                   else score >= self.threshold)
            if hit:
                out.append(Finding("safety", category, "output", -1, -1,
                                   float(min(max(score, 0.0), 1.0)),
                                   f"{self.name}: {category} {score:.2f}"))
        return out


def _why(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException | FutureTimeout):
        return "no answer within its timeout"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}"[:300]


def _fold(raw: Mapping[str, Any]) -> dict[str, float]:
    """Per safety category, the largest score of the endpoint categories that map to it."""
    out: dict[str, float] = {}
    for key, value in raw.items():
        category = CATEGORY_MAP.get(str(key).lower())
        if category is None or isinstance(value, bool):
            continue
        try:
            score = float(value)
        except (TypeError, ValueError):
            continue
        out[category] = max(out.get(category, 0.0), score)
    return out


class ModerationEvaluator(_Guarded):
    """An OpenAI-compatible ``/v1/moderations`` endpoint."""

    def __init__(self, name: str, url: str, *, model: str | None = None,
                 api_key_env: str | None = None, threshold: float | None = None,
                 timeout: float = 2.0, breaker: CircuitBreaker | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(name, threshold, timeout, breaker or CircuitBreaker())
        self.url, self.model, self.api_key_env = url, model, api_key_env
        self._http = httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)

    def _scores(self, texts: Sequence[str]) -> list[tuple[dict[str, float], set[str]]]:
        headers = {}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        out: list[tuple[dict[str, float], set[str]]] = []
        deadline = time.monotonic() + self.timeout  # for the whole batch, not per call
        for start in range(0, len(texts), _BATCH):
            part = list(texts[start:start + _BATCH])
            body: dict[str, Any] = {"input": part}
            if self.model:
                body["model"] = self.model
            left = deadline - time.monotonic()
            if left <= 0:
                raise httpx.TimeoutException("the batch's time ran out")
            r = self._http.post(self.url, json=body, headers=headers, timeout=left)
            r.raise_for_status()
            results = r.json().get("results")
            if not isinstance(results, list) or len(results) != len(part):
                raise EvaluatorUnavailable("its answer has no 'results' list of one result "
                                           "per input")
            for res in results:
                res = res if isinstance(res, Mapping) else {}
                scores = _fold(res.get("category_scores") or {})
                flags = res.get("categories") or {}
                flagged = {CATEGORY_MAP[k.lower()] for k, v in flags.items()
                           if v is True and k.lower() in CATEGORY_MAP}
                out.append((scores, flagged))
        return out


class PythonEvaluator(_Guarded):
    """The operator's function: ``f(texts) -> [{category: score}, ...]`` (one per text)."""

    def __init__(self, name: str, function: Callable[[list[str]], Any], *,
                 threshold: float = 0.5, timeout: float = 2.0,
                 breaker: CircuitBreaker | None = None) -> None:
        super().__init__(name, threshold, timeout, breaker or CircuitBreaker())
        self.function = function
        self._pool = ThreadPoolExecutor(1, thread_name_prefix=f"evaluator-{name}")

    def _scores(self, texts: Sequence[str]) -> list[tuple[dict[str, float], set[str]]]:
        # a call that overruns is abandoned, not killed: the thread finishes on its own
        answer = self._pool.submit(self.function, list(texts)).result(timeout=self.timeout)
        return [(_fold(a) if isinstance(a, Mapping) else {}, set()) for a in answer]


# ------------------------------------------------------------------ the config file
class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    threshold: Annotated[float, Field(ge=0, le=1)] | None = None
    timeout: Annotated[float, Field(gt=0, le=60)] = 2.0
    failures: Annotated[int, Field(ge=1, le=1000)] = 5
    reset: Annotated[float, Field(gt=0, le=86400)] = 30.0


class _Moderation(_Spec):
    kind: Literal["openai_moderation"]
    url: str
    model: str | None = None
    api_key_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None


class _Python(_Spec):
    kind: Literal["python"]
    entry_point: Annotated[str, Field(pattern=r"^[\w.]+:[\w.]+$")]


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    evaluators: list[Annotated[_Moderation | _Python, Field(discriminator="kind")]]


def load_external(path: str | os.PathLike[str], egress: Any) -> tuple[Any, ...]:
    """The evaluators the file configures; a ParameterError naming the field otherwise.
    ``egress``: the EgressPolicy every endpoint URL is checked against (and connected
    through)."""
    from aiwarden._yaml import safe_load

    where = "llm_evaluators"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ParameterError(f"{where}: cannot read {os.fspath(path)!r}: {exc.strerror}.",
                             where) from None
    try:
        doc = _File.model_validate(safe_load(text) or {"evaluators": []})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ParameterError(f"{where}: {field}: {err['msg']}.", field) from None
    names = [s.name for s in doc.evaluators]
    if len(set(names)) != len(names):
        raise ParameterError(f"{where}: evaluator names must differ; got {names}.", "name")
    out: list[Any] = []
    for i, spec in enumerate(doc.evaluators):
        breaker = CircuitBreaker(spec.failures, spec.reset)
        if isinstance(spec, _Moderation):
            try:
                egress.check_url(spec.url)
            except AiwardenError as exc:
                raise ParameterError(f"{where}: evaluators[{i}].url: {exc}",
                                     f"evaluators[{i}].url") from None
            out.append(ModerationEvaluator(
                spec.name, spec.url, model=spec.model, api_key_env=spec.api_key_env,
                threshold=spec.threshold, timeout=spec.timeout, breaker=breaker,
                transport=egress.http_transport()))
        else:
            out.append(PythonEvaluator(spec.name, _function(spec.entry_point, i),
                                       threshold=0.5 if spec.threshold is None
                                       else spec.threshold, timeout=spec.timeout,
                                       breaker=breaker))
    return tuple(out)


def _function(entry: str, i: int) -> Callable[[list[str]], Any]:
    module, _, attr = entry.partition(":")
    try:
        target: Any = importlib.import_module(module)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ParameterError(f"llm_evaluators: evaluators[{i}].entry_point {entry!r}: "
                             f"{type(exc).__name__}: {exc}.",
                             f"evaluators[{i}].entry_point") from None
    if not callable(target):
        raise ParameterError(f"llm_evaluators: evaluators[{i}].entry_point {entry!r} is not "
                             "callable.", f"evaluators[{i}].entry_point")
    return target
