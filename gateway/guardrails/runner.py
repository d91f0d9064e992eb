"""Running a team's policy on a request and on its answer, off the event loop.

Scanning is CPU-bound, so it runs in a small thread pool behind a limiter and a timeout; a scan
that times out fails closed (503 ``guardrail_timeout`` on input, a withheld answer on output).
Each check's cheap pre-filter runs first, on the loop, so clean text never pays for the thread
hop or the expensive recognizers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from gateway.checks.base import ScanContext
from gateway.errors import ContentPolicyViolation, GuardrailTimeout
from gateway.guardrails.enforce import (
    Applied,
    Detection,
    Vault,
    apply,
    prefiltered,
    rule_entries,
    scan,
)
from gateway.guardrails.policy import Policy, Rule, load_policies
from gateway.records import RequestRecord, RuleEntry
from gateway.settings import Settings

log = logging.getLogger("gateway.guardrails")
T = TypeVar("T")

SCAN_TIMEOUT_S = 5.0
MAX_CONCURRENT_SCANS = 32
#: Input texts whose detections are remembered (about 100 bytes each).
MEMO_ENTRIES = 8192
_SEPARATOR = "\n\n"


class TextSlot(Protocol):
    """A text of a request or an answer, wherever its dialect keeps it; ``set`` rewrites it."""

    @property
    def text(self) -> str: ...

    @property
    def whole(self) -> bool:
        """Whether whole-answer checks (json, refusal) judge it; False for a side text."""

    def set(self, value: str) -> None: ...


class Guardrails:
    def __init__(self, settings: Settings) -> None:
        self.policies = load_policies(settings)
        self._by_team = {t.name: self.policies[t.policy] for t in settings.teams if t.policy}
        self._pool: ThreadPoolExecutor | None = None
        self._limit: asyncio.Semaphore | None = None
        self._memo: OrderedDict[bytes, list[Detection]] = OrderedDict()

    def for_team(self, team: str | None) -> Policy | None:
        return self._by_team.get(team) if team else None

    async def start(self) -> None:
        if self.policies:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="scan")
            self._limit = asyncio.Semaphore(MAX_CONCURRENT_SCANS)
            await self.run(self._warm)

    def _warm(self) -> None:
        for policy in self.policies.values():
            for rule in (*policy.input_rules, *policy.output_rules):
                rule.check.scan("warm up: a@b.co 4111 1111 1111 1111", ScanContext(rule.direction))

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-bound work in the scan pool, bounded in concurrency and time."""
        assert self._pool is not None and self._limit is not None
        loop = asyncio.get_running_loop()
        async with self._limit:
            try:
                async with asyncio.timeout(SCAN_TIMEOUT_S):  # no extra task, unlike wait_for
                    return await loop.run_in_executor(self._pool, fn, *args)
            except TimeoutError:
                raise GuardrailTimeout("The content checks did not finish in time.") from None

    async def detect(self, rules: Sequence[Rule], text: str, ctx: ScanContext
                     ) -> list[Detection]:
        candidates = prefiltered(rules, text)
        if not candidates:
            return []
        return await self.run(scan, candidates, text, ctx)

    async def detect_all(self, rules: Sequence[Rule], texts: Sequence[str], ctx: ScanContext,
                         side: Sequence[bool] = ()) -> list[list[Detection]]:
        """Detections for each text, with one trip to the scan pool for all of them (a thread
        hop costs more than scanning a short message). ``side[i]``: text ``i`` is a side text,
        which whole-text checks do not judge."""
        out: list[list[Detection]] = [[] for _ in texts]
        work: list[tuple[int, list[Rule], bytes | None]] = []
        for i, text in enumerate(texts):
            cands = prefiltered(rules, text)
            if side and side[i]:
                cands = [r for r in cands if not type(r.check).whole_text]
            if not cands:
                continue
            key = self._memo_key(rules, cands, text, ctx)
            hit = self._memo.get(key) if key is not None else None
            if hit is not None:
                out[i] = hit
                continue
            work.append((i, cands, key))
        if not work:
            return out

        def scan_all() -> list[list[Detection]]:
            return [scan(cands, texts[i], ctx) for i, cands, _ in work]

        for (i, _, key), dets in zip(work, await self.run(scan_all), strict=True):
            out[i] = dets
            if key is not None:
                self._memo[key] = dets
                if len(self._memo) > MEMO_ENTRIES:
                    self._memo.popitem(last=False)
        return out

    def _memo_key(self, rules: Sequence[Rule], cands: list[Rule], text: str,
                  ctx: ScanContext) -> bytes | None:
        """Input texts repeat (the system prompt and the conversation so far are resent every
        turn), so their detections are remembered, keyed by a hash: the memo holds offsets and
        labels, never text. Checks that read the request (whole-text ones) are not memoized."""
        if ctx.direction != "input" or any(type(r.check).whole_text for r in cands):
            return None
        digest = hashlib.blake2b(text.encode(), digest_size=16)
        digest.update(id(rules).to_bytes(8, "little"))
        return digest.digest()

    # -- input --------------------------------------------------------------------------------

    async def check_input(self, policy: Policy, slots: Sequence[TextSlot],
                          request: Mapping[str, Any], record: RequestRecord) -> Vault:
        """Scan the request's texts and rewrite them in place (they are the upstream's copy);
        raise on an input block. ``request`` is the body the checks may read (``model``)."""
        vault = Vault()
        if not policy.input_rules:
            return vault
        ctx = ScanContext("input", request)
        enforce = not policy.shadow
        stored: list[str] = []
        entries: list[RuleEntry] = []
        blocked = False
        base = 0
        found = await self.detect_all(policy.input_rules, [s.text for s in slots], ctx)
        for slot, dets in zip(slots, found, strict=True):
            result: Applied = apply(slot.text, dets, vault, enforce=enforce)
            if dets:
                entries += rule_entries(result.fired, shadow=policy.shadow, base=base)
                blocked = blocked or result.blocked
                if enforce and result.text != slot.text:
                    slot.set(result.text)
            stored.append(result.stored)
            base += len(result.stored) + len(_SEPARATOR)
        if entries:
            record.note_rules(entries)
        # Kept on the record for the review queue, in case this request is flagged later (by
        # an output rule). Only the version with every finding replaced is ever kept.
        record.review_prompt = _SEPARATOR.join(stored)
        if blocked:
            raise ContentPolicyViolation(
                "The request was blocked by the content policy: "
                + ", ".join(sorted({e.rule for e in entries if e.action == "block"})) + ".")
        return vault

    # -- output (non-streamed) ----------------------------------------------------------------

    async def check_output(self, policy: Policy, slots: Sequence[TextSlot], vault: Vault,
                           record: RequestRecord, request: Mapping[str, Any]) -> bool:
        """Apply output rules to an answer's texts and restore placeholders in them, in place;
        True when the answer must be withheld (its dialect knows how)."""
        entries: list[RuleEntry] = []
        stored: list[str] = []
        blocked = False
        base = 0
        ctx = ScanContext("output", request)
        enforce = not policy.shadow
        found = await self.detect_all(policy.output_rules, [s.text for s in slots], ctx,
                                      [not s.whole for s in slots])
        for slot, dets in zip(slots, found, strict=True):
            result = apply(slot.text, dets, None, enforce=enforce)
            if dets:
                entries += rule_entries(result.fired, shadow=policy.shadow, base=base)
                blocked = blocked or result.blocked
            stored.append(result.stored)
            base += len(result.stored) + len(_SEPARATOR)
            slot.set(vault.restore(result.text))
        if entries or record.flagged:
            record.note_rules(entries)
            record.review_response = _SEPARATOR.join(stored)
        return blocked

