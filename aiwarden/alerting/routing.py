"""Label matchers and the Alertmanager-style routing tree, as pure functions of labels.

A route config (a dict, or YAML text)::

    receiver: ops                     # the root needs one; children inherit it
    group_by: [model, rule]           # ['...'] groups by every label; [] is one group
    group_wait: 30s                   # first notification of a new group
    group_interval: 5m                # later changes to a notified group
    repeat_interval: 4h               # re-notify an unchanged firing group
    routes:
      - matchers: ['severity="critical"', 'model=~"fraud.*"']
        receiver: pager
        continue: true                # keep looking at the next siblings too
      - match: {team: ml}             # equality shorthand; match_re for regexes
        receiver: ml-team

:meth:`Router.match` walks it depth first: a route whose matchers hold tries its children
in order and stops at the first that matches unless that child has ``continue``; a route
none of whose children match handles the alert itself. Unset fields come from the parent.
The groups, timers, silences and inhibition built on this live in
:mod:`aiwarden.alerting.grouping` and :mod:`aiwarden.alerting.silences`.

Examples
--------
>>> router = Router.from_config({"receiver": "ops", "routes": [
...     {"matchers": ["severity=critical"], "receiver": "pager"}]})
>>> [r.receiver for r in router.match({"severity": "critical", "model": "fraud"})]
['pager']
>>> [r.receiver for r in router.match({"severity": "warning"})]
['ops']
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from aiwarden import _yaml as bounded_yaml
from aiwarden.errors import ParameterError
from aiwarden.monitoring.windows import parse_duration

__all__ = ["OPS", "Matcher", "Route", "Router", "matches_all", "parse_matchers"]

OPS = ("=", "!=", "=~", "!~")
GROUP_BY_ALL = "..."
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# name, operator (two-character ones first), then a quoted or a bare value up to , or }
_ONE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*'
                  r'("(?:[^"\\]|\\.)*"|[^,}"]*?)\s*(?:,|$)')
_ROUTE_KEYS = ("receiver", "matchers", "match", "match_re", "group_by", "group_wait",
               "group_interval", "repeat_interval", "continue", "routes")
_DEFAULTS = {"group_wait": 30.0, "group_interval": 300.0, "repeat_interval": 4 * 3600.0}


def fail(where: str, owner: str, expected: str, got: object) -> ParameterError:
    """The house-style error naming the field (``where``) that was wrong."""
    return ParameterError(f"The {where!r} field of {owner} must be {expected}. "
                          f"Got {got!r} instead.", where)


@dataclass(frozen=True)
class Matcher:
    """``name op value`` on one label; a missing label counts as the empty string.

    Regexes must match the whole value (``=~"fraud"`` does not match ``fraud-v2``), as in
    Alertmanager, so that a matcher means the same thing wherever it is read.
    """

    name: str
    op: str
    value: str
    _re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise fail("name", "Matcher", "a label name like 'model'", self.name)
        if self.op not in OPS:
            raise fail("op", "Matcher", f"one of {list(OPS)}", self.op)
        if not isinstance(self.value, str):
            raise fail("value", "Matcher", "a str", self.value)
        if self.op in ("=~", "!~"):
            try:
                object.__setattr__(self, "_re", re.compile(f"(?:{self.value})\\Z"))
            except re.error as exc:
                raise ParameterError(f"The 'value' field of Matcher must be a valid regex. "
                                     f"Got {self.value!r} instead ({exc}).", "value") from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher."""
        v = labels.get(self.name, "")
        if self._re is not None:
            return (self._re.match(v) is not None) == (self.op == "=~")
        return (v == self.value) == (self.op == "=")

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value, ensure_ascii=False)}"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "matcher") -> Matcher:
        """Read ``{name, op, value}`` or Alertmanager's ``{name, value, isRegex, isEqual}``."""
        if "op" in d:
            op = d["op"]
        else:  # Alertmanager's silence API shape
            op = {(True, False): "=", (False, False): "!=", (True, True): "=~",
                  (False, True): "!~"}[(bool(d.get("isEqual", True)), bool(d.get("isRegex")))]
        try:
            return cls(d.get("name"), op, d.get("value"))  # type: ignore[arg-type]
        except ParameterError as exc:
            raise ParameterError(f"{where}: {exc}", f"{where}.{exc.field}") from None

    @classmethod
    def parse(cls, text: str, where: str = "matcher") -> Matcher:
        """One matcher from text: ``severity="critical"``, ``model=~fraud.*``."""
        found = parse_matchers(text, where)
        if len(found) != 1:
            raise fail(where, "a matcher", "exactly one matcher", text)
        return found[0]


def _unquote(raw: str, where: str) -> str:
    if raw.startswith('"'):
        try:
            return str(json.loads(raw))
        except json.JSONDecodeError:
            raise fail(where, "a matcher", "a well-quoted value", raw) from None
    return raw


def _parse_text(text: str, where: str) -> list[Matcher]:
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1].strip()
    out: list[Matcher] = []
    pos = 0
    while pos < len(body):
        m = _ONE.match(body, pos)
        if m is None or m.end() == pos:
            raise fail(where, "a matcher list", 'matchers like \'severity="critical"\'', text)
        name, op, raw = m.groups()
        try:
            out.append(Matcher(name, op, _unquote(raw, where)))
        except ParameterError as exc:
            raise ParameterError(f"{where}: {exc}", where) from None
        pos = m.end()
    if not out:
        raise fail(where, "a matcher list", "at least one matcher", text)
    return out


def parse_matchers(spec: object, where: str = "matchers") -> tuple[Matcher, ...]:
    """Matchers from any of the shapes configs use; errors name ``where``.

    ``'a="b", c=~"d.*"'`` (braces optional), a list of such strings or of
    ``{name, op, value}`` dicts, or a mapping ``{label: value}`` meaning equality.
    """
    if spec is None:
        return ()
    if isinstance(spec, Matcher):
        return (spec,)
    if isinstance(spec, str):
        return tuple(_parse_text(spec, where))
    if isinstance(spec, Mapping):
        out = []
        for k, v in spec.items():
            if isinstance(v, bool) or not isinstance(v, str | int | float):
                raise fail(f"{where}.{k}", "a matcher", "a str", v)
            try:
                out.append(Matcher(str(k), "=", str(v)))
            except ParameterError:
                raise fail(where, "a matcher", "a mapping of label names to values", k) from None
        return tuple(out)
    if isinstance(spec, Sequence):
        out = []
        for i, item in enumerate(spec):
            w = f"{where}[{i}]"
            if isinstance(item, Matcher):
                out.append(item)
            elif isinstance(item, str):
                out.extend(_parse_text(item, w))
            elif isinstance(item, Mapping):
                out.append(Matcher.from_dict(item, w))
            else:
                raise fail(w, "a matcher list", "a str or a {name, op, value} mapping", item)
        return tuple(out)
    raise fail(where, "a matcher list", "a str, a list or a mapping", spec)


def matches_all(matchers: Sequence[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher holds (vacuously true for none)."""
    return all(m.matches(labels) for m in matchers)


@dataclass(frozen=True, eq=False)
class Route:
    """One node of the tree, with inherited settings already filled in.

    ``key`` is stable for a given config (path of matchers and positions), so groups and
    their timers can be found again after a restart.
    """

    key: str
    receiver: str
    matchers: tuple[Matcher, ...] = ()
    group_by: tuple[str, ...] = ()
    group_by_all: bool = False
    group_wait: float = _DEFAULTS["group_wait"]
    group_interval: float = _DEFAULTS["group_interval"]
    repeat_interval: float = _DEFAULTS["repeat_interval"]
    continue_: bool = False
    routes: tuple[Route, ...] = ()

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take ``labels`` in this subtree, in order (Alertmanager rules)."""
        if not matches_all(self.matchers, labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            hit = child.match(labels)
            found += hit
            if hit and not child.continue_:
                break
        return found or [self]

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """The labels that decide the group: the ``group_by`` ones the alert has."""
        if self.group_by_all:
            return dict(sorted(labels.items()))
        return {k: labels[k] for k in sorted(self.group_by) if k in labels}

    def walk(self) -> Iterator[Route]:
        """This route and every descendant, depth first."""
        yield self
        for child in self.routes:
            yield from child.walk()


class Router:
    """The routing tree; build it with :meth:`from_config`."""

    def __init__(self, root: Route) -> None:
        self.root = root
        self._by_key = {r.key: r for r in root.walk()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | str) -> Router:
        """Validate and build; errors name the field, e.g. ``route.routes[1].group_wait``."""
        if isinstance(config, str):
            try:
                config = bounded_yaml.safe_load(config)
            except yaml.YAMLError as exc:
                raise ParameterError(f"route: not valid YAML: {exc}", "route") from None
        if isinstance(config, Mapping) and set(config) == {"route"}:
            config = config["route"]
        if not isinstance(config, Mapping):
            raise fail("route", "the routing config", "a mapping", config)
        if config.get("receiver") is None:
            raise ParameterError("The 'route.receiver' field of the routing config is "
                                 "required: the root route catches what no child takes.",
                                 "route.receiver")
        for k in ("matchers", "match", "match_re", "continue"):
            if config.get(k):
                raise ParameterError(f"The 'route.{k}' field of the routing config must be "
                                     f"unset: the root route takes every alert.", f"route.{k}")
        return cls(_build(config, None, "route", 0))

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """The routes that take an alert with ``labels`` (at least the root)."""
        return self.root.match(labels)

    def route(self, key: str) -> Route | None:
        """The route with ``key``, or None when the config no longer has it."""
        return self._by_key.get(key)

    def routes(self) -> list[Route]:
        return list(self._by_key.values())


def _build(cfg: Mapping[str, Any], parent: Route | None, where: str, index: int) -> Route:
    owner = "the routing config"
    unknown = sorted(str(k) for k in cfg if k not in _ROUTE_KEYS)
    if unknown:
        raise ParameterError(f"The '{where}.{unknown[0]}' field of {owner} is not known. "
                             f"Valid fields are {sorted(_ROUTE_KEYS)}.", f"{where}.{unknown[0]}")
    matchers = parse_matchers(cfg.get("matchers"), f"{where}.matchers")
    matchers += parse_matchers(cfg.get("match"), f"{where}.match")
    regexes = cfg.get("match_re") or {}
    if not isinstance(regexes, Mapping):
        raise fail(f"{where}.match_re", owner, "a mapping of label names to regexes", regexes)
    matchers += tuple(m for k, v in regexes.items()
                      for m in parse_matchers([{"name": k, "op": "=~", "value": v}],
                                              f"{where}.match_re"))
    receiver = cfg.get("receiver", parent.receiver if parent else None)
    if not isinstance(receiver, str) or not receiver.strip():
        raise fail(f"{where}.receiver", owner, "a non-empty str", receiver)
    times = {}
    for name, default in _DEFAULTS.items():
        raw = cfg.get(name)
        # group_wait 0s sends a new group's first notification at once (as Alertmanager)
        times[name] = float(parse_duration(raw, f"{where}.{name}",
                                           allow_zero=name == "group_wait")) \
            if raw is not None else (getattr(parent, name) if parent else default)
    group_by, group_all = _group_by(cfg, parent, where)
    cont = cfg.get("continue", False)
    if not isinstance(cont, bool):
        raise fail(f"{where}.continue", owner, "a bool", cont)
    children = cfg.get("routes") or []
    if not isinstance(children, Sequence) or isinstance(children, str):
        raise fail(f"{where}.routes", owner, "a list of routes", children)
    braces = "{" + ",".join(map(str, matchers)) + "}"
    key = braces if parent is None else f"{parent.key}/{index}{braces}"
    node = Route(key, receiver, matchers, group_by, group_all, continue_=cont, **times)
    kids = []
    for i, child in enumerate(children):
        w = f"{where}.routes[{i}]"
        if not isinstance(child, Mapping):
            raise fail(w, owner, "a mapping", child)
        kids.append(_build(child, node, w, i))
    object.__setattr__(node, "routes", tuple(kids))
    return node


def _group_by(cfg: Mapping[str, Any], parent: Route | None, where: str
              ) -> tuple[tuple[str, ...], bool]:
    if "group_by" not in cfg or cfg["group_by"] is None:
        return (parent.group_by, parent.group_by_all) if parent else ((), False)
    raw = cfg["group_by"]
    name = f"{where}.group_by"
    if isinstance(raw, str) or not isinstance(raw, Sequence):
        raise fail(name, "the routing config", "a list of label names or ['...']", raw)
    if GROUP_BY_ALL in raw:
        if len(raw) != 1:
            raise fail(name, "the routing config", "['...'] alone when grouping by all labels",
                       list(raw))
        return (), True
    for label in raw:
        if not isinstance(label, str) or not _NAME.fullmatch(label):
            raise fail(name, "the routing config", "a list of label names", list(raw))
    return tuple(dict.fromkeys(raw)), False
