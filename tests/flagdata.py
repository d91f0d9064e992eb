"""Flagged records for the review-queue tests, and a way to put them through a real gateway."""

from __future__ import annotations

from gateway.records import FindingEntry, RequestRecord, RuleEntry
from tests.gateway_runner import RunningGateway

BASE = 1_699_920_000.0


def rule(name: str, check: str, action: str = "flag") -> RuleEntry:
    return RuleEntry(name, check, action, "", False, (FindingEntry("EMAIL_ADDRESS", 0.93, 8, 23),))


def flagged(request_id: str, at: float, team: str = "search", model: str = "gpt-test",
            rules: list[RuleEntry] | None = None) -> RequestRecord:
    return RequestRecord(request_id=request_id, created_at=at, endpoint="chat", team=team,
                         key_id="cfg:client", model=model, flagged=True,
                         rules=rules or [rule("emails", "pii")],
                         review_prompt="mail to <EMAIL_ADDRESS> please",
                         review_response="=HYPERLINK(\"x\")")


def submit(gw: RunningGateway, *records: RequestRecord) -> None:
    """Through the gateway's own writer (on its loop, as the request path does), then flush."""
    async def go() -> None:
        for r in records:
            gw.services.submit(r)

    gw.call(go())
    gw.flush()
