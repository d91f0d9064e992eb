"""The stream guard: output rules and placeholder restoration on a stream, without buffering it.

One guard owns the windowing for every check. Per window (one text of one choice: its content, a
tool call's arguments, its reasoning...) it keeps the text not yet released and holds back its
last ``holdback_chars``: a match no longer than that which ends in text still to
come must start inside the held tail, so it is seen whole before any of it leaves. Text before
the tail is released once it has grown by ``step_chars`` (fewer scans), except that the cut never
falls inside a finding or a ``<PLACEHOLDER_N>``. Whole-text checks (json, refusal) run once the
choice is finished. A ``block`` stops the stream; the relay then ends it with
``finish_reason: "content_filter"``. Side texts (reasoning, a refusal, a transcript) get the span
checks only, and texts that arrive whole (a tool's name) are checked and released at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.checks.base import ScanContext
from gateway.guardrails.enforce import MAX_PLACEHOLDER_CHARS, Vault, apply, rule_entries
from gateway.guardrails.policy import Policy
from gateway.guardrails.runner import Guardrails
from gateway.records import RequestRecord


@dataclass
class _Choice:
    whole: bool = True  # whole-answer checks (json, refusal) judge it when it finishes
    pending: str = ""  # provider text received, not yet released
    full: list[str] = field(default_factory=list)  # everything received, for whole-text checks
    stored: list[str] = field(default_factory=list)  # released text, every finding replaced
    stored_len: int = 0


class StreamGuard:
    def __init__(self, guardrails: Guardrails, policy: Policy, vault: Vault,
                 record: RequestRecord, request: dict[str, Any]) -> None:
        self._g = guardrails
        self._policy = policy
        self._vault = vault
        self._record = record
        self._ctx = ScanContext("output", request, final=False)
        self._enforce = not policy.shadow
        self._hold = policy.holdback_chars
        self._step = policy.step_chars
        # One window per text of the answer, (choice index, the wire format's name for the
        # text): "content" for a choice's content (see dialects.base.StreamFilter).
        self._choices: dict[tuple[int, str], _Choice] = {}
        self.blocked = False
        #: Fields no rule can check (logprobs, audio) are removed when output rules apply.
        self.strips = policy.redacts_output

    async def feed(self, key: tuple[int, str], text: str, *, whole: bool = True) -> str:
        """Take provider text for one window; return what may be sent to the client now."""
        c = self._choices.get(key)
        if c is None:
            c = self._choices[key] = _Choice(whole)
        c.pending += text
        c.full.append(text)
        if len(c.pending) < self._hold + self._step:
            return ""
        return await self._release(c, final=False)

    async def check(self, key: tuple[int, str], text: str) -> str:
        """A text that arrives whole (a tool's name, a field outside the delta): scanned and
        released at once, span checks only."""
        c = self._choices.get(key)
        if c is None:
            c = self._choices[key] = _Choice(whole=False)
        c.pending += text
        return await self._release(c, final=True)

    def keys(self, index: int) -> list[tuple[int, str]]:
        return [k for k in self._choices if k[0] == index]

    async def finish(self, key: tuple[int, str]) -> str:
        """The text ended: scan and release what is held, and run whole-text checks."""
        c = self._choices.setdefault(key, _Choice())
        out = await self._release(c, final=True)
        whole = [r for r in self._policy.output_rules if type(r.check).whole_text]
        if whole and c.whole and not self.blocked:
            text = "".join(c.full)
            ctx = ScanContext("output", self._ctx.request, final=True)
            dets = await self._g.detect(whole, text, ctx)
            if dets:
                self._fire(apply(text, dets, None, enforce=self._enforce).fired, c, base=0)
                if self._enforce and any(d.rule.action == "block" for d in dets):
                    self.blocked = True
                    return ""
        return out

    async def finish_all(self) -> str:
        """The stream ended without finish reasons: release what is held of the content."""
        return "".join([await self.finish(k) for k in list(self._choices) if k[1] == "content"])

    def stored_response(self) -> str:
        return "\n\n".join("".join(c.stored) for c in self._choices.values())

    async def _release(self, c: _Choice, *, final: bool) -> str:
        text = c.pending
        if not text:
            return ""
        rules = [r for r in self._policy.output_rules if not type(r.check).whole_text]
        dets = await self._g.detect(rules, text, self._ctx) if rules else []
        cut = len(text) if final else self._safe_cut(text, dets)
        released = [d for d in dets if d.finding.end <= cut]
        result = apply(text[:cut], released, None, enforce=self._enforce)
        self._fire(result.fired, c, base=c.stored_len)
        c.stored.append(result.stored)
        c.stored_len += len(result.stored)
        c.pending = text[cut:]
        if result.blocked or (self._enforce and any(
                d.rule.action == "block" for d in dets)):
            self.blocked = True
            return ""
        return self._vault.restore(result.text)

    def _safe_cut(self, text: str, dets: list[Any]) -> int:
        cut = max(0, len(text) - self._hold)
        for d in dets:  # never cut through a finding: hold all of it back
            if d.finding.start < cut < d.finding.end:
                cut = d.finding.start
        if self._vault:
            # Never cut through a placeholder: it is restored only when seen whole.
            lt = text.rfind("<", max(0, cut - MAX_PLACEHOLDER_CHARS), cut)
            if lt != -1 and text.find(">", lt, cut) == -1:
                cut = lt
        return cut

    def _fire(self, fired: list[Any], c: _Choice, base: int) -> None:
        if not fired:
            return
        self._record.note_rules(rule_entries(fired, shadow=self._policy.shadow, base=base))
