"""Literal-prefix screens for alternation regexes: the same matches, found faster.

Python's ``re`` scans for a match start quickly only when the pattern opens with a literal or
a set of single literals; a rule that opens with ``\\b`` (every lexicon rule does) is tried at
every position of the text, branch by branch: ~50-100 ns per character and branch. From a
pattern's parse tree :func:`literal_prefixes` derives the strings every match must begin with
(assertions such as ``\\b`` skipped, so the set is a superset of the real starts); a regex of
those literals finds candidate positions at C speed, and the rule is tried only there with
``match``. :func:`finditer` yields exactly what ``rx.finditer(text, pos, endpos)`` yields:
``search`` tries positions left to right with the same matcher ``match`` uses at one
position, and the screen skips only positions where no match can start.

With the ``fast`` extra (``pip install 'aiwarden[fast]'``: pyahocorasick), a rule's prefixes
are found in one pass of an Aho-Corasick automaton instead of one ``str.find`` per prefix:
the same positions (every occurrence of every prefix in the range), so the same matches;
without it, ``str.find`` (slower, nothing else differs).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from re import (
    Match,
    Pattern,
    _parser,  # type: ignore[attr-defined]
)
from re import _constants as C  # type: ignore[attr-defined]
from typing import Any

__all__ = ["Screened", "automaton_of", "finditer", "have_automaton", "literal_prefixes"]

_ZERO_WIDTH = {C.AT, C.ASSERT, C.ASSERT_NOT}
_REPEATS = {C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", C.MAX_REPEAT)}
_MAX_SET = 12  # a character set wider than this ends the prefix (too many candidates)
_STOP = object()  # a parse item of unknown content: the prefix ends there
_LIMIT = 4000  # more distinct prefixes than this: no screen (the pattern is too open)

try:  # the ``fast`` extra: a compiled multi-string matcher (the results are the same without)
    import ahocorasick as _ac
except ImportError:  # pragma: no cover - exercised by the tests with automaton=False
    _ac = None


def have_automaton() -> bool:
    """True when the ``fast`` extra's Aho-Corasick automaton is installed."""
    return _ac is not None


def automaton_of(words: tuple[str, ...]) -> Any:
    """An Aho-Corasick automaton of ``words`` (each word's value is its length), or None
    without the ``fast`` extra."""
    if _ac is None or not words:
        return None
    a = _ac.Automaton()
    for w in words:
        a.add_word(w, len(w))
    a.make_automaton()
    return a


def _chars(items: list) -> list[str] | None:
    """The characters a parsed character set matches, None when open or wide."""
    out: list[str] = []
    for op, av in items:
        if op is C.LITERAL:
            out.append(chr(av))
        elif op is C.RANGE and av[1] - av[0] < _MAX_SET:
            out.extend(chr(c) for c in range(av[0], av[1] + 1))
        else:  # NEGATE, CATEGORY, a wide range
            return None
    return out if len(out) <= _MAX_SET else None


def _prefixes(items: list, k: int) -> set[str]:
    """Strings of at most ``k`` characters that every match of ``items`` begins with."""
    if k == 0 or not items:
        return {""}
    head, rest = items[0], items[1:]
    if head is _STOP:
        return {""}
    op, av = head
    if op in _ZERO_WIDTH:
        return _prefixes(rest, k)
    if op is C.LITERAL:
        return {chr(av) + s for s in _prefixes(rest, k - 1)}
    if op is C.IN:
        chars = _chars(av)
        if chars is None:
            return {""}
        tails = _prefixes(rest, k - 1)
        return {c + s for c in chars for s in tails}
    if op is C.BRANCH:
        out: set[str] = set()
        for alt in av[1]:
            out |= _prefixes([*alt.data, *rest], k)
            if len(out) > _LIMIT:
                return {""}
        return out
    if op is C.SUBPATTERN:
        return _prefixes([*av[-1].data, *rest], k)
    if op in _REPEATS:
        lo, hi, sub = av
        if hi == 0:
            return _prefixes(rest, k)
        # one pass through the repeat then anything: a superset of every iteration count
        once = _prefixes([*sub.data, _STOP], k) if not (lo == hi == 1) else \
            _prefixes([*sub.data, *rest], k)
        return once | _prefixes(rest, k) if lo == 0 else once
    return {""}  # ANY, CATEGORY, GROUPREF, ...: the prefix ends here


def literal_prefixes(pattern: str, flags: int = 0, k: int = 4) -> list[str] | None:
    """The shortest strings (at most ``k`` characters) one of which starts every match.

    None when a match may start with a character the parse tree leaves open (then no screen
    applies). Case-sensitive patterns only: ``re.IGNORECASE`` returns None.
    """
    if flags & re.IGNORECASE:
        return None
    tree = _parser.parse(pattern, flags)
    if tree.state.flags & re.IGNORECASE:  # an inline (?i)
        return None
    found = _prefixes(list(tree.data), k)
    if "" in found:
        return None
    # a string with a shorter one as its prefix adds no candidate position
    keep: list[str] = []
    for s in sorted(found, key=len):
        if not any(s.startswith(p) for p in keep):
            keep.append(s)
    return sorted(keep)


class Screened:
    """A compiled regex with the literal prefixes of its match starts (None: no screen).

    ``automaton``: find the prefixes with an Aho-Corasick automaton (None: when the ``fast``
    extra is installed; False: never, ``str.find`` per prefix). Only for text whose indices
    are code points either way: ASCII text (what the safety rules screen).
    """

    __slots__ = ("_automaton", "prefixes", "rx")

    def __init__(self, rx: Pattern[str], k: int = 6, min_len: int = 3,
                 automaton: bool | None = None) -> None:
        self.rx = rx
        pre = literal_prefixes(rx.pattern, rx.flags, k)
        # a one- or two-character prefix ("a", "'s") occurs too often to screen anything
        self.prefixes = None if pre is None or min(map(len, pre)) < min_len else tuple(pre)
        self._automaton = (automaton_of(self.prefixes) if automaton is not False
                           and self.prefixes is not None else None)

    def finditer(self, text: str, pos: int = 0, endpos: int | None = None
                 ) -> Iterator[Match[str]]:
        """``self.rx.finditer(text, pos, endpos)``, the same matches."""
        end = len(text) if endpos is None else endpos
        if self._automaton is not None:
            return _matches_at(self.rx, {e - n + 1 for e, n in self._automaton.iter(
                text, pos, end)}, text, pos, end)
        return finditer(self.rx, self.prefixes, text, pos, end)


def finditer(rx: Pattern[str], prefixes: tuple[str, ...] | None, text: str, pos: int,
             endpos: int) -> Iterator[Match[str]]:
    """Matches of ``rx`` in ``text[pos:endpos]`` as ``finditer`` gives them, tried only where
    one of ``prefixes`` (every match start's literal prefixes) occurs.

    The prefixes are found with ``str.find`` (C speed, no per-position regex work); a match
    never starts elsewhere, and ``rx.match`` at a position is what ``search`` tries there.
    """
    if prefixes is None:
        yield from rx.finditer(text, pos, endpos)
        return
    find = text.find
    starts: set[int] = set()
    for p in prefixes:
        i = find(p, pos, endpos)
        while i >= 0:
            starts.add(i)
            i = find(p, i + 1, endpos)
    yield from _matches_at(rx, starts, text, pos, endpos)


def _matches_at(rx: Pattern[str], starts: set[int], text: str, pos: int, endpos: int
                ) -> Iterator[Match[str]]:
    """``rx``'s matches tried at ``starts`` left to right, as ``finditer`` resumes."""
    if not starts:
        return
    match = rx.match
    cur = pos
    for i in sorted(starts):
        if i < cur:
            continue  # inside the previous match: finditer resumes at its end
        m = match(text, i, endpos)
        if m is not None:
            yield m
            cur = m.end()  # every match starts with a non-empty prefix: never empty
