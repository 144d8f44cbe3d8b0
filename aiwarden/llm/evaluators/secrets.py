"""Credentials in text: provider key and token shapes, JWTs, PEM private keys, and generic
``api_key = "..."`` assignments whose value looks random.

Provider shapes are exact prefixes and lengths (AWS ``AKIA...``, GitHub ``ghp_``/``github_pat_``,
Slack ``xox?-``, Stripe ``sk_live_``, Google ``AIza``, OpenAI ``sk-``); a JWT counts only when
its header decodes to a JSON object with ``alg``; a generic assignment counts only when its value
has at least ``min_entropy`` bits of Shannon entropy per character, so ``password = "changeme"``
and placeholders stay quiet. An AWS secret key (40 base64 characters) counts only near an access
key id or a name that says it is one.

Examples
--------
>>> sec = SecretsEvaluator()
>>> text = 'export GITHUB_TOKEN=ghp_' + 'a1B2c3D4e5' * 3 + 'f6G7h8'
>>> [(f.category, text[f.start:f.start + 8]) for f in sec.evaluate([text])[0]]
[('github_token', 'ghp_a1B2')]
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter

from aiwarden.errors import check_param
from aiwarden.llm.evaluators._scan import Disjoint, Rule, Span, SpanEvaluator

__all__ = ["CATEGORIES", "SecretsEvaluator", "shannon_entropy"]

# category -> (pattern, severity), in the order they claim overlapping text.
_SHAPES: dict[str, tuple[str, float]] = {
    "private_key": (r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
                    r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[\s\S]*)",
                    1.0),
    "aws_access_key": (r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)"
                       r"[A-Z2-7]{16}\b", 0.9),
    "github_token": (r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{50,251})\b",
                     0.95),
    "slack_token": (r"\bxox[abposr]-(?:[0-9]+-)+[A-Za-z0-9-]{8,}|"
                    r"https://hooks\.slack\.com/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+",
                    0.9),
    "stripe_key": (r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,247}\b", 0.95),
    "google_api_key": (r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])", 0.9),
    "openai_key": (r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,200}(?![A-Za-z0-9_-])",
                   0.95),
    "jwt": (r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", 0.8),
}
# A shape's pattern runs only when one of its literal markers is in the text (a C substring
# search), so ordinary prose costs a few ``in`` tests, not eight regex scans.
_MARKERS = {
    "private_key": ("PRIVATE KEY",),
    "aws_access_key": ("AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA",
                       "AROA", "APKA"),
    "github_token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "slack_token": ("xox", "hooks.slack.com"),
    "stripe_key": ("_live_", "_test_"),
    "google_api_key": ("AIza",),
    "openai_key": ("sk-",),
    "jwt": ("eyJ",),
}
_ASSIGN_WORDS = ("key", "secret", "token", "pass", "pwd", "auth")
_SEVERITY = {k: s for k, (_, s) in _SHAPES.items()}

# name = "value" / name: value / "name": "value" where name says it holds a secret.
_ASSIGN = re.compile(
    r"(?i)(?P<name>[A-Za-z0-9_.-]*(?:api[_-]?key|apikey|secret|token|passw(?:or)?d|passwd|pwd|"
    r"access[_-]?key|private[_-]?key|client[_-]?secret|auth)[A-Za-z0-9_.-]*)[\"']?"
    r"\s*(?::=|=>|[:=])\s*(?P<q>[\"'`]?)(?:(?:Bearer|Basic|Token)\s+)?"
    r"(?P<value>[^\s\"'`,;)}\]]{8,})(?P=q)")
# What every match of _ASSIGN has from inside its name on: the rest of the name, then the
# separator. A name runs to the end of its run of name characters (any shorter name is
# followed by a name character, not a quote, space or separator), so where this fails at a
# secret word no assignment's name holds that word.
_ASSIGN_TAIL = re.compile(r"(?i)[A-Za-z0-9_.-]*[\"']?\s*(?::=|=>|[:=])")
_HEX = re.compile(r"[0-9a-fA-F]+")
# snake_case or kebab-case words ("everyone_loves_gifts_2024") are names, not keys
_WORDY = re.compile(r"(?:[a-z]+|\d{1,4})(?:[_.-](?:[a-z]+|\d{1,4}))+")
_AWS_SECRET = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_SECRET_NAME = re.compile(r"(?i)aws.{0,20}secret|secret.{0,10}access")
_PLACEHOLDER = re.compile(r"(?i)^(?:x+|\*+|<.*|\$\{.*|\{\{.*|%\(.*|.*(?:your|example|"
                          r"placeholder|changeme|dummy|redacted|here|xxxx).*)$")
_SKIP_VALUE = re.compile(r"(?i)^(?:os\.environ|process\.env|env\(|getenv|true|false|none|null)")

#: Categories this evaluator can report.
CATEGORIES = (*_SHAPES, "aws_secret_key", "api_key")


def shannon_entropy(s: str) -> float:
    """Shannon entropy of ``s`` in bits per character (0 for an empty string).

    >>> shannon_entropy("aaaa"), shannon_entropy("abcd")
    (0.0, 2.0)
    """
    if not s:
        return 0.0
    n = len(s)
    return max(0.0, -sum(c / n * math.log2(c / n) for c in Counter(s).values()))


def _jwt_ok(token: str) -> bool:
    head = token.split(".", 1)[0]
    try:
        doc = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(doc, dict) and "alg" in doc


def _mixed(s: str) -> bool:
    """Random keys mix letters and digits; a word list (``sk-learn-model-...``) does not."""
    return any(c.isdigit() for c in s) and any(c.isalpha() for c in s)


def _jwt_match_ok(text: str, m: re.Match[str]) -> bool:
    return _jwt_ok(m.group())


def _openai_ok(text: str, m: re.Match[str]) -> bool:
    return _mixed(m.group()[3:])


def _aws_secret_ok(text: str, m: re.Match[str]) -> bool:
    v = m.group()
    return _mixed(v) and shannon_entropy(v) >= 4.0


_VALIDATORS = {"jwt": _jwt_match_ok, "openai_key": _openai_ok}
# The provider shapes, in the order they claim overlapping text.
# Shapes with many markers test them with one literal-led regex (one C scan, not 6-11).
_HINTS = {"aws_access_key": re.compile(r"A(?:KIA|SIA|BIA|CCA|GPA|IDA|IPA|NPA|NVA|ROA|PKA)"),
          "github_token": re.compile(r"gh[pousr]_|github_pat_")}
_SHAPE_RULES = tuple(Rule(cat, re.compile(p), _VALIDATORS.get(cat),
                          () if cat in _HINTS else _MARKERS[cat], hint=_HINTS.get(cat))
                     for cat, (p, _) in _SHAPES.items())
_AWS_SECRET_RULE = Rule("aws_secret_key", _AWS_SECRET, _aws_secret_ok)


def _assignments(text: str, lower: str) -> list[re.Match[str]]:
    """``_ASSIGN.finditer(text)``, but tried only where a name holding a secret word starts.

    The pattern opens with a name (``[A-Za-z0-9_.-]*``), so a plain scan tries it at every
    character: 1 ms on 1 kB. Every match's name contains one of ``_ASSIGN_WORDS``, so the
    pattern is matched at the start of the names around those words (found with ``str.find``).
    """
    if len(lower) != len(text):  # a character whose lower case is longer: positions differ
        return list(_ASSIGN.finditer(text))
    starts = set()
    tail = _ASSIGN_TAIL.match
    for w in _ASSIGN_WORDS:
        i = lower.find(w)
        while i >= 0:
            if not tail(text, i):  # "reset the password from ...": no separator after the name
                i = lower.find(w, i + len(w))
                continue
            j = i
            while j and (lower[j - 1].isascii() and (lower[j - 1].isalnum()
                                                     or lower[j - 1] in "_.-")):
                j -= 1
            starts.add(j)
            i = lower.find(w, i + len(w))
    out: list[re.Match[str]] = []
    end = 0
    for j in sorted(starts):
        if j >= end:
            m = _ASSIGN.match(text, j)
            if m:
                out.append(m)
                end = m.end()
    return out


class SecretsEvaluator(SpanEvaluator):
    """Finds API keys, tokens, JWTs, private keys and high-entropy secret assignments.

    Parameters
    ----------
    field : str
        Which text of an event this instance reads; written into each finding.
    min_entropy : float
        Bits per character a generic ``name = value`` secret needs (default 3.5: random
        base64/hex of 16+ characters has 3.7-6; words and ``changeme123`` stay below).
    min_length : int
        Shortest generic value considered (default 12).
    """

    name = "secrets"

    def __init__(self, field: str = "output", min_entropy: float = 3.5,
                 min_length: int = 12) -> None:
        super().__init__(field)
        check_param(isinstance(min_entropy, int | float) and 0 <= min_entropy <= 8,
                    "min_entropy", "SecretsEvaluator", "a number in [0, 8]", min_entropy)
        check_param(isinstance(min_length, int) and 4 <= min_length <= 1000, "min_length",
                    "SecretsEvaluator", "an int in [4, 1000]", min_length)
        self.min_entropy = float(min_entropy)
        self.min_length = min_length

    def _threshold(self, value: str) -> float:
        """Hex can hold at most 4 bits per character: a random hex key has ~3.7, so hex values
        need ``min_entropy - 0.5`` (3.0 by default, as detect-secrets uses)."""
        return self.min_entropy - 0.5 if _HEX.fullmatch(value) else self.min_entropy

    def _assigned_ok(self, value: str) -> bool:
        """A generic ``name = value`` holds a secret: long, not a placeholder, random."""
        return (len(value) >= self.min_length and not _PLACEHOLDER.match(value)
                and not _SKIP_VALUE.match(value) and not _WORDY.fullmatch(value)
                and shannon_entropy(value) >= self._threshold(value))

    def _spans(self, text: str) -> list[Span]:
        kept = Disjoint()  # a prompt of thousands of keys: bisection, not a scan per span

        def keep(spans: list[Span]) -> None:  # one rule's matches never overlap each other
            for sp in [sp for sp in spans if not kept.overlaps(sp[0], sp[1])]:
                kept.add(sp)

        for rule in _SHAPE_RULES:
            if rule.gated(text):
                keep(rule.spans(text))
        lower = text.lower()
        if (any(c == "aws_access_key" for *_, c in kept.spans)
                or ("secret" in lower and _AWS_SECRET_NAME.search(text))):
            keep(_AWS_SECRET_RULE.spans(text))
        if ("=" in text or ":" in text) and any(w in lower for w in _ASSIGN_WORDS):
            keep([(*m.span("value"), "api_key") for m in _assignments(text, lower)
                  if self._assigned_ok(m.group("value"))])
        return sorted(kept.spans)

    def _severity(self, text: str, start: int, category: str) -> float:
        """Live credentials are severe; a Stripe test-mode key exposes no money (0.5)."""
        if category == "stripe_key" and text.startswith("_test_", start + 2):
            return 0.5
        return _SEVERITY.get(category, 0.8)

    def _detail(self, category: str) -> str:
        return f"{category} shape"
