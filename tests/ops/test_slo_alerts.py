"""SLO and drift alerts reach a real webhook receiver (retried while it fails at first): an error
rate breach, a latency breach, and a drift in output length after the upstream changes."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_runner import RunningGateway, run_gateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY, base_config

MSG = [{"role": "user", "content": "hi"}]


@dataclass
class Receiver:
    """A webhook that answers 503 to the first ``fail_first`` deliveries."""

    url: str = ""
    fail_first: int = 0
    calls: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    lock = threading.Lock()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            with lock:
                rec.calls += 1
                failing = rec.calls <= rec.fail_first
                if not failing:
                    rec.received.append(json.loads(body))
            self.send_response(503 if failing else 204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()


def gateway(fake: FakeOpenAI, tmp_path: Path, receiver: Receiver,
            rules: list[dict[str, Any]], window_s: float = 1.0) -> Any:
    cfg = base_config(fake.url, tmp_path)
    cfg["alerts"] = {"webhook": receiver.url, "window_s": window_s, "baseline_s": 30,
                     "check_interval_s": 0.1, "min_requests": 4, "cooldown_s": 60,
                     "rules": rules}
    return run_gateway(cfg)


def chat(gw: RunningGateway, n: int, **extra: Any) -> None:
    for _ in range(n):
        httpx.post(gw.v1 + "/chat/completions", timeout=10,
                   headers={"authorization": f"Bearer {CLIENT_KEY}"},
                   json={"model": "gpt-test", "messages": MSG, **extra})


def until(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_error_rate_alert_is_retried_until_delivered(fake: FakeOpenAI, tmp_path: Path,
                                                      receiver: Receiver) -> None:
    receiver.fail_first = 2
    rules = [{"kind": "error_rate", "name": "errors", "threshold": 0.5}]
    with gateway(fake, tmp_path, receiver, rules) as gw:
        chat(gw, 1)
        fake.mode = "status:500"
        chat(gw, 4)
        until(lambda: bool(receiver.received))
        alert = receiver.received[0]
        assert (alert["kind"], alert["rule"], alert["model"], alert["signal"]) == (
            "error_rate", "errors", "gpt-test", "error_rate")
        # Judged as soon as the window holds min_requests (4): at 3 of 4 or 4 of 5 failed.
        assert alert["value"] in (0.75, 0.8) and alert["threshold"] == 0.5
        assert receiver.calls == 3  # two failures, then delivered
        listed = httpx.get(gw.url + "/admin/alerts",
                           headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()["items"]
        assert listed[0]["status"] == "delivered" and listed[0]["attempts"] == 3
        chat(gw, 4)
        time.sleep(0.5)
        assert len(receiver.received) == 1  # the cooldown holds the same alert back
        metrics = httpx.get(gw.url + "/metrics").text
        assert ('gateway_ops_alerts_total{kind="error_rate:error_rate",model="gpt-test"} 1.0'
                in metrics)


@pytest.fixture
def slow_upstream() -> Iterator[dict[str, float]]:
    """A minimal OpenAI-compatible upstream whose answers take ``delay_s``."""
    state = {"delay_s": 0.0}

    class Upstream(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            time.sleep(state["delay_s"])
            body = json.dumps({
                "id": "c", "object": "chat.completion", "created": 1, "model": "slow",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    state["port"] = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def test_latency_p95_alert_when_the_upstream_slows_down(
        fake: FakeOpenAI, tmp_path: Path, receiver: Receiver,
        slow_upstream: dict[str, float]) -> None:
    fake.url = f"http://127.0.0.1:{int(slow_upstream['port'])}/v1"
    rules = [{"kind": "latency_p95", "threshold": 150, "webhook": receiver.url}]
    with gateway(fake, tmp_path, receiver, rules, window_s=2.0) as gw:
        chat(gw, 4)
        time.sleep(0.4)
        assert receiver.received == []  # fast answers: no alert
        time.sleep(2.0)  # they leave the window
        slow_upstream["delay_s"] = 0.2
        chat(gw, 5)
        until(lambda: bool(receiver.received))
        alert = receiver.received[0]
        assert alert["signal"] == "latency_p95_ms" and alert["value"] > 150


def test_drift_in_output_length_after_the_upstream_changes(fake: FakeOpenAI, tmp_path: Path,
                                                           receiver: Receiver) -> None:
    rules = [{"kind": "drift", "name": "drift", "factor": 3, "signals": ["output_tokens"]}]
    with gateway(fake, tmp_path, receiver, rules) as gw:
        chat(gw, 20)  # the baseline: short answers
        time.sleep(1.3)  # they leave the window and become the trailing baseline
        chat(gw, 4)
        time.sleep(0.4)
        assert receiver.received == []  # same behaviour: no drift
        time.sleep(1.1)
        fake.reply = " ".join(["much"] * 60) + " longer answer than before."
        chat(gw, 4)
        until(lambda: bool(receiver.received))
        alert = receiver.received[0]
        assert (alert["kind"], alert["signal"], alert["model"]) == (
            "drift", "output_tokens", "gpt-test")
        assert alert["value"] > 3 * alert["baseline"] and alert["ratio"] > 3
        assert alert["baseline_requests"] >= 20
