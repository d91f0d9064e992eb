"""Budget alerts reach a real webhook: once per threshold per period, retried while it fails."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from gateway.auth import Principal
from gateway.budget.budgets import Budgets
from gateway.budget.scopes import usd_to_micros
from gateway.ops.alerts import Alert, AlertSender
from gateway.pricing import Estimate
from gateway.settings import parse_settings


@dataclass
class Receiver:
    """A webhook that answers 503 to the first ``fail_first`` deliveries."""

    fail_first: int = 0
    url: str = ""
    calls: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def hook(request: web.Request) -> web.Response:
        rec.calls += 1
        rec.times.append(asyncio.get_running_loop().time())
        if rec.calls <= rec.fail_first:
            return web.Response(status=503)
        rec.received.append(orjson.loads(await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield rec
    finally:
        await runner.cleanup()


def alert(url: str | None, threshold: float = 0.5) -> Alert:
    return Alert("t", None, "usd", "month", "2026-11", 5.0, 10.0, threshold, url)


async def until(cond: Any, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def test_retried_with_backoff_until_delivered(receiver: Receiver) -> None:
    receiver.fail_first = 2
    sender = AlertSender(backoff_s=0.05)
    await sender.start()
    try:
        sender.send(alert(receiver.url))
        await until(lambda: sender.records[0].status == "delivered")
    finally:
        await sender.close()
    assert receiver.calls == 3 and sender.records[0].attempts == 3
    assert receiver.received == [{"team": "t", "key": None, "metric": "usd", "period": "month",
                                  "period_id": "2026-11", "spent": 5.0, "limit": 10.0,
                                  "threshold": 0.5}]
    gaps = [b - a for a, b in zip(receiver.times, receiver.times[1:], strict=False)]
    assert gaps[1] >= gaps[0] * 1.5  # the backoff doubles
    assert sender.records[0].public()["status"] == "delivered"


async def test_gives_up_and_records_the_failure(receiver: Receiver) -> None:
    receiver.fail_first = 100
    sender = AlertSender(backoff_s=0.01, max_attempts=3)
    await sender.start()
    try:
        sender.send(alert(receiver.url))
        await until(lambda: sender.records[0].status == "failed")
    finally:
        await sender.close()
    assert sender.failed == 1 and sender.records[0].last_error == "HTTP 503"


async def test_unreachable_webhook_and_full_queue() -> None:
    sender = AlertSender(backoff_s=0.01, max_attempts=2, max_queue=1, concurrency=1)
    sender.send(alert("http://127.0.0.1:9/nothing-listens"))  # not started: stays queued
    sender.send(alert("http://127.0.0.1:9/nothing-listens", 0.8))
    sender.send(alert(None, 1.0))
    assert [r.status for r in sender.records] == ["pending", "dropped", "no_webhook"]
    await sender.start()
    try:
        await until(lambda: sender.records[0].status == "failed")
    finally:
        await sender.close()
    assert "Connect" in (sender.records[0].last_error or "")


async def test_budget_sends_each_threshold_once(receiver: Receiver) -> None:
    receiver.fail_first = 1
    settings = parse_settings({
        "models": [{"name": "m", "provider": "mock"}],
        "teams": [{"name": "t", "keys": ["sk-t"],
                   "budget": {"usd": 1.0, "alert_at": [0.5, 0.8, 1.0],
                              "alert_webhook": receiver.url}}],
    })
    budgets = Budgets(settings, alerts=AlertSender(backoff_s=0.02))
    await budgets.open()
    p = Principal("client", "cfg:x", settings.teams[0])
    try:
        for _ in range(12):
            hold = await budgets.reserve(p, Estimate(1, 1, usd_to_micros(0.01)))
            await hold.settle(usd_to_micros(0.09))
        await until(lambda: len(receiver.received) == 3)
    finally:
        await budgets.close()
    got = sorted(receiver.received, key=lambda r: float(r["threshold"]))  # the first was retried
    assert [r["threshold"] for r in got] == [0.5, 0.8, 1.0]
    assert [r["spent"] for r in got] == [pytest.approx(x) for x in (0.54, 0.81, 1.08)]
    assert all(r["team"] == "t" and r["limit"] == 1.0 for r in got)
