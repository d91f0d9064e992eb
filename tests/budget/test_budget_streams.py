"""A stream that outgrows its budget hold is topped up, then ended cleanly when money runs out."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.fakes.openai_upstream import running_fake_openai
from tests.gateway_runner import run_gateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY, base_config

LIMIT_USD = 0.0002  # 200 micro-dollars: about 95 output tokens at $2 per million


def test_stream_is_cut_with_length_when_the_budget_runs_out(tmp_path: Path) -> None:
    with running_fake_openai() as fake:
        # The upstream ignores max_tokens and talks far past what was reserved.
        fake.reply = " ".join(f"word{i}" for i in range(400))
        fake.chunks = 200
        cfg = base_config(fake.url, tmp_path)
        cfg["teams"][0]["budget"] = {"usd": LIMIT_USD, "period": "month"}
        with run_gateway(cfg) as gw:
            c = openai.OpenAI(base_url=gw.v1, api_key=CLIENT_KEY, max_retries=0)
            chunks = list(c.chat.completions.create(
                model="gpt-test", max_tokens=5, stream=True,
                messages=[{"role": "user", "content": "talk"}]))
            text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
            assert chunks[-1].choices[0].finish_reason == "length"
            assert 10 < len(text.split()) < 400  # topped up past the estimate, then cut
            # The hold is settled just after [DONE] has gone out: wait for it.
            deadline = time.monotonic() + 5
            status: dict[str, Any] = gw.call(gw.services.budgets.status("search"))
            while status["reserved_usd"] and time.monotonic() < deadline:
                time.sleep(0.05)
                status = gw.call(gw.services.budgets.status("search"))
            assert status["reserved_usd"] == 0
            # Nothing was delivered past the budget; the one chunk the upstream had already
            # generated when the money ran out (2 words, at most 6 tokens = 12 micro-dollars)
            # is billed, because the provider bills it too.
            assert 0 < status["spent_usd"] <= LIMIT_USD + 12e-6
            gw.flush()
            rec = httpx.get(gw.url + "/admin/requests?limit=1",
                            headers={"authorization": f"Bearer {ADMIN_KEY}"}).json()["items"][0]
            assert (rec["status"], rec["error_code"], rec["finish_reason"]) == (
                200, "budget_exceeded", "length")
            assert rec["cost_usd"] == status["spent_usd"]
            # The next request is refused: the budget is spent.
            try:
                c.chat.completions.create(model="gpt-test", max_tokens=5,
                                          messages=[{"role": "user", "content": "more"}])
                raise AssertionError("expected a refusal")
            except openai.RateLimitError as e:
                assert e.code == "budget_exceeded"
