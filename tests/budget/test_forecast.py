"""Spend forecasts: known answers on synthetic history, then the same numbers from
GET /admin/spend?forecast=true and in ``gateway spend``'s table."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from gateway.budget.forecast import compute
from gateway.budget.scopes import period_bounds
from gateway.cli import main
from gateway.records import RequestRecord
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_runner import run_gateway
from tests.helpers import ADMIN_KEY, REVIEWER_KEY, base_config

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def days(n: int, usd: float, start: datetime = NOV) -> dict[str, int]:
    return {(start + timedelta(days=i)).strftime("%Y-%m-%d"): round(usd * 1e6) for i in range(n)}


def test_steady_burn_known_answer() -> None:
    # $2 a day for the first 10 days of a 30-day month, $50 budget.
    f = compute("t", "month", NOV, DEC, 50_000_000, days(10, 2.0), NOV + timedelta(days=10))
    assert f.spent_micros == 20_000_000
    assert f.burn_micros_per_day == 2_000_000
    assert f.projected_micros == 60_000_000  # 20 + 2 * 20 remaining days
    assert f.runs_out_at == datetime(2026, 11, 26, tzinfo=UTC)  # (50 - 20) / 2 = 15 days on
    assert f.runs_out_within_period and not f.exhausted


def test_budget_that_lasts_the_period_and_one_already_spent() -> None:
    now = NOV + timedelta(days=15, hours=12)  # 15.5 days in
    f = compute("t", "month", NOV, DEC, 100_000_000, days(15, 1.0) | days(1, 0.5, NOV + timedelta(
        days=15)), now)
    assert f.burn_micros_per_day == 1_000_000  # 15.5 USD over 15.5 days
    assert f.projected_micros == 30_000_000
    # 84.5 days of budget left, 14.5 days of period: it renews first, so no date.
    assert f.runs_out_at is None and f.after_period_end and not f.runs_out_within_period
    spent = compute("t", "month", NOV, DEC, 10_000_000, days(5, 3.0), NOV + timedelta(days=5))
    assert spent.exhausted and spent.runs_out_at is None
    idle = compute("t", "month", NOV, DEC, 10_000_000, {}, NOV + timedelta(days=5))
    assert (idle.burn_micros_per_day, idle.projected_micros, idle.runs_out_at) == (0, 0, None)
    unlimited = compute("t", "month", NOV, DEC, None, days(2, 1.0), NOV + timedelta(days=2))
    assert unlimited.projected_micros == 30_000_000 and unlimited.runs_out_at is None


def test_total_budget_counts_from_the_first_day_with_spend() -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    f = compute("t", "total", epoch, None, 30_000_000, days(4, 2.5), NOV + timedelta(days=4))
    assert f.burn_micros_per_day == 2_500_000 and f.projected_micros is None
    assert f.runs_out_at == NOV + timedelta(days=12)


def test_forecast_from_the_api_and_the_cli(fake: FakeOpenAI, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    now = time.time()
    start, end = period_bounds("month", now)
    assert end is not None
    cfg = base_config(fake.url, tmp_path)
    with run_gateway(cfg) as gw:
        # Synthetic history: $3 of spend an hour after the period began, and $1 an hour ago.
        records = []
        for at, micros in ((start.timestamp() + 3600, 3_000_000), (now - 3600, 1_000_000)):
            rec = RequestRecord(f"req_{uuid.uuid4().hex}", max(at, start.timestamp()), "chat",
                                team="search", key_id="k", model="gpt-test")
            rec.cost_micros = micros
            records.append(rec)
        gw.call(gw.services.log_store.write_records(records))
        r = httpx.get(gw.url + "/admin/spend?group_by=team&forecast=true",
                      headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 200
        body = r.json()
        by_team = {f["team"]: f for f in body["forecasts"]}
        assert set(by_team) == {"search", "other"}
        f = by_team["search"]
        elapsed = max((now - start.timestamp()) / 86400, 1 / 24)
        assert f["spent_usd"] == 4.0 and f["limit_usd"] == 100.0
        assert f["burn_rate_usd_per_day"] == pytest.approx(4.0 / elapsed, rel=1e-3)
        left = (end.timestamp() - now) / 86400
        assert f["projected_usd"] == pytest.approx(4.0 + 4.0 / elapsed * left, rel=1e-3)
        assert by_team["other"]["limit_usd"] is None and by_team["other"]["runs_out_at"] is None
        reviewer = httpx.get(gw.url + "/admin/spend?forecast=true",
                             headers={"authorization": f"Bearer {REVIEWER_KEY}"}).json()
        assert [x["team"] for x in reviewer["forecasts"]] == ["search"]  # own team only

        assert main(["spend", "--by", "team", "--url", gw.url, "--key", ADMIN_KEY]) == 0
    out = capsys.readouterr().out
    assert "burn rate" in out and "budget runs out" in out
    assert "search" in out and "$4.00" in out and "$100.00" in out


def test_a_budget_that_outlasts_the_period_says_so() -> None:
    """Issue 13, item 6: a cent spent against $100 ran out "in the year 8951" (or overflowed
    the date type: 500). Beyond the period the forecast says so, with no date."""
    now = NOV + timedelta(hours=1)
    tiny = compute("t", "month", NOV, DEC, 100_000_000, {"2026-11-01": 1}, now)
    assert (tiny.runs_out_at, tiny.runs_out_within_period, tiny.after_period_end) == (
        None, False, True)
    public = tiny.public()
    assert public["runs_out_at"] is None and public["after_period_end"] is True
    idle = compute("t", "month", NOV, DEC, 10_000_000, {}, now)
    assert idle.after_period_end and idle.runs_out_at is None
    # A total budget has no period end: a date more than a century away is not given either.
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    total = compute("t", "total", epoch, None, 100_000_000, {"2026-11-01": 1}, now)
    assert total.runs_out_at is None and total.after_period_end
    soon = compute("t", "total", epoch, None, 30_000_000, days(4, 2.5), NOV + timedelta(days=4))
    assert soon.runs_out_at == NOV + timedelta(days=12) and not soon.after_period_end
    spent = compute("t", "month", NOV, DEC, 10_000_000, days(5, 3.0), NOV + timedelta(days=5))
    assert spent.exhausted and not spent.after_period_end
    unlimited = compute("t", "month", NOV, DEC, None, days(2, 1.0), NOV + timedelta(days=2))
    assert not unlimited.after_period_end


def test_readme_steps_tiny_spend_big_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    """The README's quick start: the demo's $10 budget, one request to the mock model, then
    ``gateway spend``: it printed a traceback (OverflowError), the API answered 500."""
    cfg = {"server": {"admin_keys": [ADMIN_KEY]},
           "stores": {"budgets": "memory://", "logs": f"sqlite:///{tmp_path}/gw.db"},
           "models": [{"name": "mock", "provider": "mock",
                       "price": {"input_per_mtok": 0.15, "output_per_mtok": 0.60}}],
           "teams": [{"name": "demo", "keys": ["sk-demo-test"],
                      "budget": {"usd": 10.0, "period": "month"}}]}
    with run_gateway(cfg) as gw:
        r = httpx.post(gw.v1 + "/chat/completions", timeout=10,
                       headers={"authorization": "Bearer sk-demo-test"},
                       json={"model": "mock", "messages": [{"role": "user", "content": "hello"}]})
        assert r.status_code == 200
        gw.flush()
        r = httpx.get(gw.url + "/admin/spend?forecast=true",
                      headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 200, r.text
        (f,) = r.json()["forecasts"]
        assert f["runs_out_at"] is None and f["after_period_end"] and not f[
            "runs_out_within_period"]
        assert main(["spend", "--url", gw.url, "--key", ADMIN_KEY]) == 0
    out = capsys.readouterr().out
    assert "after period end" in out and "demo" in out
