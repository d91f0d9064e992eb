"""/metrics after known traffic: every documented metric is present with the value that traffic
implies, and with several workers the numbers are summed over all of them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_runner import GatewayProcess, run_gateway
from tests.helpers import CLIENT_KEY, base_config

MSG = [{"role": "user", "content": "hi"}]
POLICY = {"output": [{"check": "regex", "name": "upstream-word", "patterns": ["fake upstream"],
                      "action": "flag"}]}


def value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}``; 0.0 when absent (a counter that never moved)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def names(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def post(url: str, body: dict[str, Any], key: str = CLIENT_KEY) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=10,
                      headers={"authorization": f"Bearer {key}"})


def test_metrics_after_known_traffic(fake: FakeOpenAI, tmp_path: Path) -> None:
    pdir = tmp_path / "policies"
    pdir.mkdir()
    (pdir / "watch.yaml").write_text(yaml.safe_dump(POLICY))
    cfg = base_config(fake.url, tmp_path, policies_dir=str(pdir))
    cfg["teams"][0]["policy"] = "watch"
    with run_gateway(cfg) as gw:
        usages = [post(gw.url, {"model": "gpt-test", "messages": MSG}).json()["usage"]
                  for _ in range(2)]
        with httpx.stream("POST", gw.url + "/v1/chat/completions", timeout=10,
                          headers={"authorization": f"Bearer {CLIENT_KEY}"},
                          json={"model": "gpt-test", "messages": MSG, "stream": True,
                                "stream_options": {"include_usage": True}}) as r:
            lines = [line for line in r.iter_lines() if line.startswith("data: {")]
        usages.append(httpx.Response(200, content=lines[-1][6:]).json()["usage"])
        assert post(gw.url, {"model": "gpt-test", "messages": MSG}, key="bad").status_code == 401
        fake.mode = "status:500"
        assert post(gw.url, {"model": "gpt-test", "messages": MSG}).status_code == 502
        gw.flush()
        text = httpx.get(gw.url + "/metrics").text
        # Budget figures are copied at most once a second (they may live in Redis): poll.
        deadline = time.monotonic() + 5
        while value(text, "gateway_budget_remaining_usd", team="search") == 100.0 and (
                time.monotonic() < deadline):
            time.sleep(0.2)
            text = httpx.get(gw.url + "/metrics").text

    ok = {"team": "search", "model": "gpt-test"}
    assert value(text, "gateway_requests_total", **ok, endpoint="chat", status="200") == 3
    assert value(text, "gateway_requests_total", **ok, endpoint="chat", status="502") == 1
    assert value(text, "gateway_requests_total", team="-", model="-", status="401") == 1
    assert value(text, "gateway_request_duration_seconds_count", **ok, endpoint="chat") == 4
    assert value(text, "gateway_upstream_duration_seconds_count", model="gpt-test") == 3
    assert value(text, "gateway_overhead_duration_seconds_count", model="gpt-test") == 3
    assert value(text, "gateway_time_to_first_token_seconds_count", **ok) == 1
    prompt = sum(u["prompt_tokens"] for u in usages)
    completion = sum(u["completion_tokens"] for u in usages)
    assert value(text, "gateway_tokens_total", **ok, kind="prompt") == prompt
    assert value(text, "gateway_tokens_total", **ok, kind="completion") == completion
    cost = (prompt * 1.0 + completion * 2.0) / 1e6  # the configured prices, USD per token
    assert value(text, "gateway_cost_usd_total", **ok) == pytest.approx(cost)
    assert value(text, "gateway_budget_remaining_usd", team="search") == pytest.approx(
        100 - cost, abs=1e-6)
    assert value(text, "gateway_rule_hits_total", rule="upstream-word", action="flag") == 3
    assert value(text, "gateway_log_queue_depth") == 0
    assert value(text, "gateway_log_records_dropped_total") == 0
    assert value(text, "gateway_store_errors_total", store="logs") == 0
    assert value(text, "gateway_budget_degraded") == 0
    assert {"gateway_store_errors_total", "gateway_budget_store_errors_total",
            "gateway_log_records_dropped_total", "gateway_kill_switches_active"} <= names(text)


@pytest.mark.timeout(120)
def test_workers_are_summed(fake: FakeOpenAI, tmp_path: Path) -> None:
    cfg = base_config(fake.url, tmp_path)
    with GatewayProcess(cfg, tmp_path / "run", workers=2) as gw:
        for _ in range(12):  # new connections: the kernel spreads them over both workers
            assert post(gw.url, {"model": "mock", "messages": MSG}).status_code == 200
        for _ in range(4):  # whichever worker answers the scrape, the sum is the same
            text = httpx.get(gw.url + "/metrics").text
            assert value(text, "gateway_requests_total", team="search", model="mock",
                         status="200") == 12
