"""Turning detections into block / redact / mask / flag, in one place.

Checks only report findings. This module decides what each finding does to the text the provider
or the client sees, keeps the per-request placeholder ``Vault`` for masking, and builds the copy
that is stored for review, in which *every* finding is replaced (even a ``flag``), so that stored
prompts and responses never hold a raw match. Rules fired are described by label, score and
offsets into that stored copy, never by the matched text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gateway.checks.base import Finding, ScanContext, resolve_overlaps
from gateway.guardrails.policy import Rule
from gateway.records import FindingEntry, RuleEntry

_PLACEHOLDER = re.compile(r"<([A-Z][A-Z0-9_]*?)_(\d+)>")
#: Longest placeholder we ever emit; the stream guard never cuts inside one.
MAX_PLACEHOLDER_CHARS = 48


@dataclass(frozen=True, slots=True)
class Detection:
    rule: Rule
    finding: Finding


@dataclass
class Vault:
    """Request-scoped placeholders: the same value always gets the same ``<LABEL_N>``."""

    by_value: dict[tuple[str, str], str] = field(default_factory=dict)
    by_placeholder: dict[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def placeholder(self, label: str, value: str) -> str:
        key = (label, value)
        ph = self.by_value.get(key)
        if ph is None:
            n = self.counters.get(label, 0) + 1
            self.counters[label] = n
            ph = f"<{label}_{n}>"
            self.by_value[key] = ph
            self.by_placeholder[ph] = value
        return ph

    def restore(self, text: str) -> str:
        if not self.by_placeholder or "<" not in text:
            return text
        return _PLACEHOLDER.sub(lambda m: self.by_placeholder.get(m.group(0), m.group(0)), text)

    def __bool__(self) -> bool:
        return bool(self.by_placeholder)


def prefiltered(rules: Sequence[Rule], text: str) -> list[Rule]:
    """The rules whose cheap pre-filter says the text may hold a finding."""
    return [r for r in rules if r.check.prefilter(text)]


def scan(rules: Sequence[Rule], text: str, ctx: ScanContext) -> list[Detection]:
    """Run every rule's check on one text (synchronous: call it in a worker thread)."""
    out: list[Detection] = []
    for rule in rules:
        if type(rule.check).whole_text and not ctx.final:
            continue
        for f in rule.check.scan(text, ctx):
            # A documentation example (AKIAIOSFODNN7EXAMPLE) does not refuse or queue a request,
            # but mask/redact still replace it: a wrong guess there costs nothing.
            if f.example and rule.action in ("block", "flag"):
                continue
            if 0 <= f.start <= f.end <= len(text):
                out.append(Detection(rule, f))
    return out


_PRIORITY = {"block": 3, "mask": 2, "redact": 1, "flag": 0}


def _disjoint(dets: Iterable[Detection]) -> list[Detection]:
    """Resolve overlaps: a stronger action wins a contested span, then the checks' own order."""
    by_finding: dict[Finding, Detection] = {}
    ranked: list[Finding] = []
    for d in sorted(dets, key=lambda d: -_PRIORITY[d.rule.action]):
        f = Finding(d.finding.label, d.finding.start, d.finding.end,
                    d.finding.score + _PRIORITY[d.rule.action])  # action outranks score
        by_finding.setdefault(f, d)
        ranked.append(f)
    return [by_finding[f] for f in resolve_overlaps(ranked)]


@dataclass
class Applied:
    """One text after enforcement."""

    text: str  # what goes on (to the provider or the client)
    stored: str  # the copy kept for review: every finding replaced
    blocked: bool
    fired: list[tuple[Detection, int, int]]  # detection and its span in ``stored``


def apply(text: str, dets: Sequence[Detection], vault: Vault | None, *, enforce: bool,
          whole_text_spans: bool = True) -> Applied:
    """Apply the actions of ``dets`` to ``text``; in shadow mode (enforce=False) change nothing.

    Findings that cover the whole text (json, refusal, token limits) are verdicts about the text:
    they are recorded but replace nothing in the stored copy.
    """
    spans = _disjoint([d for d in dets if not (whole_text_spans and _is_verdict(d))])
    blocked = enforce and any(d.rule.action == "block" for d in dets)
    out: list[str] = []
    stored: list[str] = []
    fired: list[tuple[Detection, int, int]] = []
    pos = 0
    stored_len = 0
    for d in spans:
        f = d.finding
        before = text[pos:f.start]
        out.append(before)
        stored.append(before)
        stored_len += len(before)
        value = text[f.start:f.end]
        if enforce and d.rule.action == "mask" and vault is not None:
            replacement = vault.placeholder(f.label, value)
        else:
            replacement = f"<{f.label}>"
        out.append(replacement if enforce and d.rule.action in ("mask", "redact") else value)
        stored.append(replacement)
        fired.append((d, stored_len, stored_len + len(replacement)))
        stored_len += len(replacement)
        pos = f.end
    out.append(text[pos:])
    stored.append(text[pos:])
    stored_text = "".join(stored)
    fired += [(d, 0, len(stored_text)) for d in dets if whole_text_spans and _is_verdict(d)]
    return Applied("".join(out), stored_text, blocked, fired)


def _is_verdict(d: Detection) -> bool:
    return type(d.rule.check).whole_text


def rule_entries(fired: Iterable[tuple[Detection, int, int]], *, shadow: bool, base: int = 0
                 ) -> list[RuleEntry]:
    """The record's entries: one per rule that fired, findings as label/score/offsets (``base``
    is where this text starts in the stored copy)."""
    by_rule: dict[tuple[str, str], tuple[Rule, list[FindingEntry]]] = {}
    for d, start, end in fired:
        r = d.rule
        found = by_rule.setdefault((r.direction, r.name), (r, []))[1]
        found.append(FindingEntry(d.finding.label, round(d.finding.score, 4),
                                  base + start, base + end))
    return [RuleEntry(r.name, r.check_name, r.action, r.direction, shadow, tuple(found))
            for r, found in by_rule.values()]
