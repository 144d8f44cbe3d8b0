"""What mutes an alert: silences (set by people, with expiry) and inhibition rules (config).

Both are pure: they take labels and ``now`` and say yes or no, so the dispatcher applies
them at the moment it would notify, and a silence that expires or a source alert that
resolves stops muting at exactly that moment.

Examples
--------
>>> s = Silence(id="s1", matchers=parse_matchers('model="fraud"'), starts_at=0, ends_at=3600,
...             created_by="ana", comment="retraining")
>>> s.is_silenced({"model": "fraud", "severity": "warning"}, now=10)
True
>>> s.expire(now=20).is_silenced({"model": "fraud"}, now=30)
False
>>> rule = InhibitRule.from_config({"source_matchers": ["severity=critical"],
...                                 "target_matchers": ["severity=warning"],
...                                 "equal": ["model"]})
>>> firing = {"fp1": {"severity": "critical", "model": "a"}}
>>> rule.inhibits({"severity": "warning", "model": "a"}, firing)
True
>>> rule.inhibits({"severity": "warning", "model": "b"}, firing)
False
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from aiwarden.alerting.routing import Matcher, fail, matches_all, parse_matchers
from aiwarden.errors import ParameterError
from aiwarden.monitoring.windows import parse_instant

__all__ = ["InhibitRule", "Inhibitor", "NoSuchSilence", "Silence", "SilenceExpired",
           "Silences"]

_INHIBIT_KEYS = ("source_matchers", "target_matchers", "source_match", "target_match",
                 "source_match_re", "target_match_re", "equal")


class SilenceExpired(ParameterError):
    """Expiring a silence that already ended: a conflict with its state (HTTP 409)."""


class NoSuchSilence(ParameterError):
    """No silence has that id (HTTP 404)."""


@dataclass(frozen=True)
class Silence:
    """Mutes alerts whose labels match every matcher while ``starts_at <= now < ends_at``.

    Times are epoch seconds (ISO 8601 strings and datetimes are accepted). At least one
    matcher must not match the empty string, so no silence can mute everything by accident.
    """

    matchers: tuple[Matcher, ...]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        owner = f"silence {self.id!r}"
        if not isinstance(self.id, str) or not self.id.strip():
            raise fail("id", "a silence", "a non-empty str", self.id)
        object.__setattr__(self, "matchers", parse_matchers(self.matchers, "matchers"))
        if not self.matchers or all(m.matches({}) for m in self.matchers):
            raise fail("matchers", owner, "matchers of which at least one does not match "
                       "the empty string", [str(m) for m in self.matchers])
        starts = parse_instant(self.starts_at, "starts_at")
        ends = parse_instant(self.ends_at, "ends_at")
        if ends < starts:
            raise fail("ends_at", owner, f"not before starts_at ({starts:g})", self.ends_at)
        object.__setattr__(self, "starts_at", starts)
        object.__setattr__(self, "ends_at", ends)
        if not isinstance(self.created_by, str) or not self.created_by.strip():
            raise fail("created_by", owner, "a non-empty str", self.created_by)
        if not isinstance(self.comment, str):
            raise fail("comment", owner, "a str", self.comment)

    def state(self, now: float) -> str:
        """``pending`` before it starts, ``active``, then ``expired``."""
        if now < self.starts_at:
            return "pending"
        return "active" if now < self.ends_at else "expired"

    def is_silenced(self, labels: Mapping[str, str], now: float) -> bool:
        """Whether this silence mutes an alert with ``labels`` at ``now``."""
        return self.state(now) == "active" and matches_all(self.matchers, labels)

    def expire(self, now: float) -> Silence:
        """This silence ending at ``now`` (a pending one never starts)."""
        if self.state(now) == "expired":
            raise SilenceExpired(f"Cannot expire silence {self.id!r}: it already expired.",
                                 "id")
        return replace(self, starts_at=min(self.starts_at, now), ends_at=now)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "matchers": [m.to_dict() for m in self.matchers],
                "starts_at": self.starts_at, "ends_at": self.ends_at,
                "created_by": self.created_by, "comment": self.comment}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Silence:
        """Read :meth:`to_dict` output (or the same with matcher strings, from an API)."""
        known = ("id", "matchers", "starts_at", "ends_at", "created_by", "comment")
        unknown = sorted(k for k in d if k not in known)
        if unknown:
            raise ParameterError(f"The {unknown[0]!r} field of a silence is not known. "
                                 f"Valid fields are {sorted(known)}.", unknown[0])
        for k in ("matchers", "starts_at", "ends_at", "created_by"):
            if k not in d:
                raise ParameterError(f"The {k!r} field of a silence is required.", k)
        kw = {k: d[k] for k in known if k in d and k != "id"}
        return cls(**kw, **({"id": d["id"]} if d.get("id") is not None else {}))


class Silences:
    """The set of silences, by id; mutable because people add and expire them."""

    def __init__(self, silences: Iterable[Silence] = ()) -> None:
        self._by_id: dict[str, Silence] = {}
        for s in silences:
            self.add(s)

    def add(self, silence: Silence) -> Silence:
        """Add or replace (same id) a silence."""
        if not isinstance(silence, Silence):
            raise fail("silence", "Silences.add", "a Silence", silence)
        self._by_id[silence.id] = silence
        return silence

    def get(self, id: str) -> Silence:
        try:
            return self._by_id[id]
        except KeyError:
            raise NoSuchSilence(f"No silence has id {id!r}.", "id") from None

    def expire(self, id: str, now: float) -> Silence:
        """End silence ``id`` at ``now``; it stays listed (as expired) for the record."""
        return self.add(self.get(id).expire(now))

    def silenced_by(self, labels: Mapping[str, str], now: float) -> list[str]:
        """Ids of the silences muting ``labels`` at ``now``, sorted."""
        return sorted(s.id for s in self._by_id.values() if s.is_silenced(labels, now))

    def is_silenced(self, labels: Mapping[str, str], now: float) -> bool:
        return any(s.is_silenced(labels, now) for s in self._by_id.values())

    def gc(self, now: float, keep_for: float = 5 * 86400.0) -> list[str]:
        """Forget silences expired more than ``keep_for`` seconds ago; return their ids."""
        old = sorted(i for i, s in self._by_id.items() if s.ends_at + keep_for <= now)
        for i in old:
            del self._by_id[i]
        return old

    def __iter__(self) -> Iterator[Silence]:
        return iter(sorted(self._by_id.values(), key=lambda s: (s.starts_at, s.id)))

    def __len__(self) -> int:
        return len(self._by_id)

    def to_dict(self) -> dict[str, Any]:
        return {"silences": [s.to_dict() for s in self]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Silences:
        return cls(Silence.from_dict(s) for s in d.get("silences", []))


@dataclass(frozen=True)
class InhibitRule:
    """A firing source alert mutes target alerts that share the ``equal`` labels' values.

    An alert never inhibits itself, even when it matches both sides (Alertmanager rule).
    """

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], where: str = "inhibit_rules") -> InhibitRule:
        """Alertmanager's keys: ``source_matchers``, ``target_matchers``, ``equal``
        (and the older ``source_match``/``source_match_re`` and target equivalents)."""
        if not isinstance(cfg, Mapping):
            raise fail(where, "the routing config", "a mapping", cfg)
        unknown = sorted(str(k) for k in cfg if k not in _INHIBIT_KEYS)
        if unknown:
            raise ParameterError(f"The '{where}.{unknown[0]}' field of the routing config is "
                                 f"not known. Valid fields are {sorted(_INHIBIT_KEYS)}.",
                                 f"{where}.{unknown[0]}")
        sides = []
        for side in ("source", "target"):
            ms = parse_matchers(cfg.get(f"{side}_matchers"), f"{where}.{side}_matchers")
            ms += parse_matchers(cfg.get(f"{side}_match"), f"{where}.{side}_match")
            regexes = cfg.get(f"{side}_match_re") or {}
            if not isinstance(regexes, Mapping):
                raise fail(f"{where}.{side}_match_re", "the routing config",
                           "a mapping of label names to regexes", regexes)
            ms += parse_matchers([{"name": k, "op": "=~", "value": v}
                                  for k, v in regexes.items()], f"{where}.{side}_match_re")
            if not ms:
                raise ParameterError(f"The '{where}.{side}_matchers' field of the routing "
                                     f"config is required.", f"{where}.{side}_matchers")
            sides.append(ms)
        equal = cfg.get("equal") or []
        if isinstance(equal, str) or not isinstance(equal, Sequence) \
                or not all(isinstance(e, str) and e for e in equal):
            raise fail(f"{where}.equal", "the routing config", "a list of label names", equal)
        return cls(sides[0], sides[1], tuple(equal))

    def inhibits(self, target: Mapping[str, str], sources: Mapping[str, Mapping[str, str]],
                 fingerprint: str | None = None) -> bool:
        """Whether any of ``sources`` (firing alerts' labels by fingerprint) mutes ``target``.

        ``fingerprint`` is the target's own, so that it is not counted as its own source.
        """
        return Inhibitor([self], sources).inhibited(target, fingerprint)


class Inhibitor:
    """Inhibition rules applied to one snapshot of firing alerts.

    Sources are indexed by their ``equal`` label values once, so checking many targets
    against many sources costs a dict lookup each rather than a scan.
    """

    def __init__(self, rules: Iterable[InhibitRule],
                 sources: Mapping[str, Mapping[str, str]]) -> None:
        self._index: list[tuple[InhibitRule, dict[tuple[str, ...], set[str]]]] = []
        for rule in rules:
            by_equal: dict[tuple[str, ...], set[str]] = {}
            for fp, labels in sources.items():
                if matches_all(rule.source, labels):
                    by_equal.setdefault(tuple(labels.get(e, "") for e in rule.equal),
                                        set()).add(fp)
            if by_equal:
                self._index.append((rule, by_equal))

    def inhibited(self, labels: Mapping[str, str], fingerprint: str | None = None) -> bool:
        """Whether some rule's firing source mutes an alert with ``labels``."""
        for rule, by_equal in self._index:
            if matches_all(rule.target, labels):
                fps = by_equal.get(tuple(labels.get(e, "") for e in rule.equal), set())
                if fps - {fingerprint}:
                    return True
        return False
