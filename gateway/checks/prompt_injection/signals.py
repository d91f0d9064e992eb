"""Phrase signals and the one pass over a text's words that finds them.

A signal is a regular expression with a weight. Most of them begin with one of a few words
("ignore", "disregard", ...): they are *anchored*, and are tried only where one of those words
starts (``Signal.starts``), with ``pattern.match`` at that spot. One ``[^\\W\\d_]+`` pass over the
text finds the word starts and looks their first letters up in a table, so a 2 KB jailbreak costs a
few hundred dictionary look-ups and short matches instead of some forty full regex searches (each
``re`` search with a leading ``\\b`` and a case-insensitive alternation tries every position).
Matches are the ones ``pattern.finditer`` would give: a signal's next try starts after its last
match, as ``finditer`` does (``tests/checks/test_prompt_injection.py`` checks both agree).

The few signals that cannot be anchored on a word (role markers like ``<|im_start|>``, CJK
phrases, ``X's birth date``) are *gated*: they run with ``finditer`` when one of their ``needs``
substrings occurs in the lower-cased text (always on non-ASCII text, where case folding can turn a
letter into another one: the Kelvin sign matches ``k`` under ``IGNORECASE``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple


class Hit(NamedTuple):
    """One piece of evidence: ``text[start:end]``, of a kind, worth ``weight``."""

    weight: float
    start: int
    end: int
    kind: str  # a signal's key ("override#0"), or a shape's name ("divider")

_WORD = re.compile(r"[^\W\d_]+")
_ASCII_WORD = re.compile(r"[a-z]+")
_KEY = 4  # starters are looked up by their first four letters; shorter ones are whole words


@dataclass(frozen=True, slots=True)
class Signal:
    """``pattern`` found is evidence of an injection, worth ``weight`` (0-1)."""

    label: str
    weight: float
    pattern: re.Pattern[str]
    # Anchored: every match begins with one of these (lower-case letters). Starters of four or
    # more letters are prefixes ("jailbr" covers jailbreak and jailbroken); shorter ones are whole
    # words ("dan", "i": "I'm" is the word "i" then an apostrophe). Empty: a gated signal.
    starts: tuple[str, ...] = ()
    # Gated: run only when one of these occurs in the lower-cased text (empty: always).
    needs: tuple[str, ...] = ()


def signal(label: str, weight: float, pattern: str, flags: int = re.IGNORECASE, *,
           starts: str = "", needs: tuple[str, ...] = ()) -> Signal:
    """A ``Signal`` with its starters written as one space-separated string."""
    return Signal(label, weight, re.compile(pattern, flags), tuple(starts.split()), needs)


@dataclass(frozen=True)
class PhraseTable:
    """Signals, indexed by the first letters of the words their matches begin with."""

    signals: tuple[Signal, ...]
    _index: Mapping[str, tuple[int, ...]] = field(init=False)
    _gated: tuple[int, ...] = field(init=False)
    _matchers: tuple[Callable[[str, int], re.Match[str] | None], ...] = field(init=False)
    _kinds: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        index: dict[str, list[int]] = {}
        for i, sig in enumerate(self.signals):
            for word in sig.starts:
                ids = index.setdefault(word[:_KEY], [])
                if i not in ids:
                    ids.append(i)
        frozen = MappingProxyType({k: tuple(v) for k, v in index.items()})
        object.__setattr__(self, "_index", frozen)
        gated = tuple(i for i, s in enumerate(self.signals) if not s.starts)
        object.__setattr__(self, "_gated", gated)
        object.__setattr__(self, "_matchers", tuple(s.pattern.match for s in self.signals))
        kinds = tuple(f"{s.label}#{i}" for i, s in enumerate(self.signals))
        object.__setattr__(self, "_kinds", kinds)

    def hits(self, text: str) -> Iterator[Hit]:
        """Every signal's matches in ``text``, as ``finditer`` would find them."""
        get, matchers, signals = self._index.get, self._matchers, self.signals
        resume = [0] * len(signals)  # signal -> where its next match may start
        ascii_text = text.isascii()
        low = text.lower()
        # Lower-casing keeps offsets unless a character changes length ("İ" -> "i̇").
        same = ascii_text or len(low) == len(text)
        words = (_ASCII_WORD if ascii_text else _WORD).finditer(low if same else text)
        for word in words:
            w = word.group() if same else word.group().lower()
            ids = get(w[:_KEY] if len(w) >= _KEY else w)
            if ids is None:
                continue
            pos = word.start()
            for i in ids:
                if pos < resume[i]:
                    continue
                m = matchers[i](text, pos)
                if m is not None:
                    resume[i] = max(m.end(), pos + 1)
                    yield Hit(signals[i].weight, m.start(), m.end(), self._kinds[i])
        yield from self.gated_hits(text, low if ascii_text else None)

    def gated_hits(self, text: str, low: str | None) -> Iterator[Hit]:
        """Gated signals' matches; ``low``: the lower-cased text when it is ASCII, else None."""
        for i in self._gated:
            sig = self.signals[i]
            if low is not None and sig.needs and not any(k in low for k in sig.needs):
                continue
            for m in sig.pattern.finditer(text):
                yield Hit(sig.weight, m.start(), m.end(), self._kinds[i])


def combined(hits: Iterable[Hit]) -> float:
    """Independent kinds of evidence combined: 1 - prod(1 - w), each kind counted once at its
    strongest (a weak cue said twice is no stronger), rounded for stable output."""
    best: dict[str, float] = {}
    for h in hits:
        if h.weight > best.get(h.kind, 0.0):
            best[h.kind] = h.weight
    miss = 1.0
    for w in best.values():
        miss *= 1.0 - w
    return round(1.0 - miss, 4)
