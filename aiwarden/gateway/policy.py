"""Traffic policies: which version answers a request, and which one gets a silent copy.

A policy is pure data plus one pure function, :meth:`TrafficPolicy.route`, from a number
in [0, 1) to an arm. The number is a hash of a routing key (a sticky key such as a
customer id, else the caller's prediction id), so a key always lands on the same arm and
raising a canary from 20 % to 40 % keeps every key that was already on the challenger.

>>> p = TrafficPolicy.from_dict({"mode": "canary", "percent": 20, "challenger": "2"})
>>> p.route(0.1), p.route(0.5)
('2', None)
>>> TrafficPolicy.from_dict({"mode": "ab", "weights": {"1": 3, "2": 1}}).route(0.8)
'2'
>>> parse_weights("v1=50,v2=50")
{'v1': 50.0, 'v2': 50.0}
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiwarden.errors import ParameterError
from aiwarden.registry.records import check_alias, check_name

__all__ = ["MODES", "TrafficPolicy", "parse_weights", "unit_hash"]

MODES = ("off", "canary", "shadow", "ab")
_KEYS = {"mode", "challenger", "percent", "weights", "sticky_key", "alias"}


def unit_hash(salt: str, key: str) -> float:
    """A stable number in [0, 1) for ``key`` (BLAKE2b, so every process agrees)."""
    digest = hashlib.blake2b(f"{salt}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def check_target(value: Any, field: str) -> str:
    """A version label, or ``@alias`` (the policy then follows the alias when it moves)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value.startswith("@"):
        check_alias(value[1:])
        return value
    return check_name(value, field)


@dataclass(frozen=True)
class TrafficPolicy:
    """How a model's requests are split between its versions.

    ``mode``: ``off`` (the served alias answers everything), ``canary`` (``percent`` % of
    requests go to ``challenger``), ``shadow`` (the served alias answers, ``challenger``
    gets a copy in the background) or ``ab`` (``weights``: target → relative weight).
    Targets are version labels or ``@alias``. ``sticky_key`` names a feature or tag whose
    value decides the arm, so one customer always meets one version. ``alias`` is the
    served alias the policy applies to (``champion``): a gateway serving another alias of
    the model (``staging``) answers with that alias alone.
    """

    mode: str = "off"
    challenger: str | None = None
    percent: float = 0.0
    weights: tuple[tuple[str, float], ...] = ()
    sticky_key: str | None = None
    alias: str = "champion"

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any] | None) -> TrafficPolicy:
        """A checked policy; every problem names its field."""
        doc = dict(doc or {})
        unknown = sorted(set(doc) - _KEYS)
        if unknown:
            raise ParameterError(f"Unknown traffic policy field(s) {unknown}; use "
                                 f"{sorted(_KEYS)}.", unknown[0])
        mode = doc.get("mode", "off")
        if mode not in MODES:
            raise ParameterError(f"mode: expected one of {list(MODES)}; got {mode!r}.", "mode")
        sticky = doc.get("sticky_key")
        if sticky is not None and (not isinstance(sticky, str) or not sticky.strip()):
            raise ParameterError("sticky_key: expected the name of a feature or tag; got "
                                 f"{sticky!r}.", "sticky_key")
        alias = check_alias(doc.get("alias") or "champion")
        if mode == "off":
            return cls(alias=alias)
        if mode in ("canary", "shadow"):
            if doc.get("challenger") in (None, ""):
                raise ParameterError(f"challenger: a {mode} needs the version (or @alias) "
                                     "that gets the traffic.", "challenger")
            challenger = check_target(doc["challenger"], "challenger")
            percent = 0.0
            if mode == "canary":
                percent = doc.get("percent")
                if (isinstance(percent, bool) or not isinstance(percent, int | float)
                        or not math.isfinite(percent) or not 0 <= percent <= 100):
                    raise ParameterError("percent: expected a number in [0, 100] (the share "
                                         f"of requests for the challenger); got {percent!r}.",
                                         "percent")
            return cls(mode, challenger, float(percent), (),
                       sticky if mode == "canary" else None, alias)
        weights = doc.get("weights")
        if not isinstance(weights, Mapping) or not weights:
            raise ParameterError("weights: an A/B test needs {target: weight, ...}.", "weights")
        pairs = []
        for target, w in weights.items():
            t = check_target(target, f"weights.{target}")
            if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) \
                    or w < 0:
                raise ParameterError(f"weights.{target}: expected a number >= 0; got {w!r}.",
                                     f"weights.{target}")
            pairs.append((t, float(w)))
        if sum(w for _, w in pairs) <= 0:
            raise ParameterError("weights: at least one weight must be > 0.", "weights")
        return cls("ab", None, 0.0, tuple(pairs), sticky, alias)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.mode}
        if self.mode in ("canary", "shadow"):
            out["challenger"] = self.challenger
        if self.mode == "canary":
            out["percent"] = self.percent
        if self.mode == "ab":
            out["weights"] = dict(self.weights)
        if self.sticky_key is not None:
            out["sticky_key"] = self.sticky_key
        if self.alias != "champion":
            out["alias"] = self.alias
        return out

    @property
    def targets(self) -> list[str]:
        """Every version label or ``@alias`` the policy names."""
        if self.mode == "ab":
            return [t for t, _ in self.weights]
        return [self.challenger] if self.challenger is not None else []

    def route(self, u: float) -> str | None:
        """The target that answers a request whose key hashes to ``u`` (None: the served
        alias). Shadow copies are not routing: the served alias always answers."""
        if self.mode == "canary":
            return self.challenger if u * 100 < self.percent else None
        if self.mode == "ab":
            total = sum(w for _, w in self.weights)
            edge = 0.0
            for target, w in self.weights:
                edge += w / total
                if u < edge and w > 0:
                    return target
            return next(t for t, w in reversed(self.weights) if w > 0)
        return None


def parse_weights(text: str) -> dict[str, float]:
    """``"v1=50,v2=50"`` → ``{"v1": 50.0, "v2": 50.0}`` (the CLI's ``--ab``)."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        target, sep, weight = part.partition("=")
        try:
            if not sep:
                raise ValueError
            out[target.strip()] = float(weight)
        except ValueError:
            raise ParameterError(f"weights: expected TARGET=WEIGHT pairs separated by commas; "
                                 f"got {part!r}.", "weights") from None
    if not out:
        raise ParameterError("weights: expected TARGET=WEIGHT pairs, e.g. v1=50,v2=50.",
                             "weights")
    return out
