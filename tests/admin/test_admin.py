"""The admin API: keys made at run time, spend, the request log, and team scoping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.gateway_runner import RunningGateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY, OTHER_KEY, REVIEWER_KEY

MSG = [{"role": "user", "content": "hi"}]


def get(gw: RunningGateway, path: str, key: str = ADMIN_KEY) -> httpx.Response:
    return httpx.get(gw.url + path, headers={"authorization": f"Bearer {key}"} if key else {})


def chat(gw: RunningGateway, key: str, model: str = "gpt-test") -> Any:
    return openai.OpenAI(base_url=gw.v1, api_key=key, max_retries=0).chat.completions.create(
        model=model, messages=MSG)  # type: ignore[arg-type]


def test_created_key_works_is_listed_without_secret_and_can_be_revoked(
        gw: RunningGateway, tmp_path: Path) -> None:
    r = httpx.post(gw.url + "/admin/keys", json={"team": "search", "name": "ci-bot"},
                   headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 201
    made = r.json()
    assert made["team"] == "search" and made["key"].startswith("sk-gw-")
    assert chat(gw, made["key"]).choices
    listed = get(gw, "/admin/keys?team=search").json()["items"]
    assert [k["id"] for k in listed] == [made["id"]]
    assert "key" not in listed[0] and "key_hash" not in listed[0]
    # Only the hash is stored: the secret is nowhere in the database file.
    gw.flush()
    assert made["key"].encode() not in (tmp_path / "gw.db").read_bytes()
    gw.flush()
    rec = get(gw, "/admin/requests?limit=1").json()["items"][0]
    assert rec["key_id"] == made["id"]
    d = httpx.delete(gw.url + f"/admin/keys/{made['id']}",
                     headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert d.status_code == 200 and d.json()["revoked"] is True
    with pytest.raises(openai.AuthenticationError):
        chat(gw, made["key"])


def test_reviewer_cannot_make_keys_and_unknown_key_id_is_404(gw: RunningGateway) -> None:
    r = httpx.post(gw.url + "/admin/keys", json={"team": "search", "name": "x"},
                   headers={"authorization": f"Bearer {REVIEWER_KEY}"})
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error"
    r = httpx.delete(gw.url + "/admin/keys/key_nope",
                     headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 404
    r = httpx.post(gw.url + "/admin/keys", json={"team": "nope"},
                   headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 400


def test_client_keys_cannot_use_admin_api(gw: RunningGateway) -> None:
    assert get(gw, "/admin/spend", CLIENT_KEY).status_code == 401
    assert get(gw, "/admin/spend", "").status_code == 401


def test_spend_grouped_and_scoped(gw: RunningGateway) -> None:
    for _ in range(3):
        chat(gw, CLIENT_KEY)
    chat(gw, CLIENT_KEY, "mock")
    chat(gw, OTHER_KEY, "mock")
    gw.flush()
    body = get(gw, "/admin/spend?team=search&group_by=model").json()
    rows = {r["group"]: r for r in body["rows"]}
    assert rows["gpt-test"]["requests"] == 3
    assert rows["gpt-test"]["cost_usd"] == pytest.approx(3 * 29e-6)
    assert rows["gpt-test"]["prompt_tokens"] == 33
    assert body["total_cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in body["rows"]))
    by_team = {r["group"] for r in get(gw, "/admin/spend?group_by=team").json()["rows"]}
    assert {"search", "other"} <= by_team
    day = get(gw, "/admin/spend?group_by=day&since=2020-01-01").json()["rows"]
    assert len(day) == 1 and len(day[0]["group"]) == 10
    assert get(gw, "/admin/spend?group_by=day&until=2020-01-01").json()["rows"] == []
    assert get(gw, "/admin/spend?group_by=nope").status_code == 400
    # A reviewer sees only its own team; another team is 404, as if it did not exist.
    mine = get(gw, "/admin/spend?group_by=team", REVIEWER_KEY).json()["rows"]
    assert [r["group"] for r in mine] == ["search"]
    assert get(gw, "/admin/spend?team=other", REVIEWER_KEY).status_code == 404
    assert get(gw, "/admin/teams/other/budget", REVIEWER_KEY).status_code == 404
    assert get(gw, "/admin/teams/search/budget", REVIEWER_KEY).status_code == 200


def test_requests_log_pagination_and_filters(gw: RunningGateway) -> None:
    for _ in range(5):
        chat(gw, CLIENT_KEY)
    gw.flush()
    first = get(gw, "/admin/requests?team=search&limit=2").json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    seen = [i["request_id"] for i in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = get(gw, f"/admin/requests?team=search&limit=2&cursor={cursor}").json()
        seen += [i["request_id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 5
    assert get(gw, "/admin/requests?cursor=garbage").status_code == 400
    assert get(gw, "/admin/requests?limit=0").status_code == 400
    assert get(gw, "/admin/requests?flagged=true").json()["items"] == []


def test_budget_endpoint_shape(gw: RunningGateway) -> None:
    chat(gw, CLIENT_KEY)
    b = get(gw, "/admin/teams/search/budget").json()
    assert set(b) >= {"team", "period", "period_start", "period_end", "limit_usd", "spent_usd",
                      "reserved_usd", "remaining_usd"}
    assert b["limit_usd"] == 100 and b["spent_usd"] == pytest.approx(29e-6)
    assert b["reserved_usd"] == 0
    assert get(gw, "/admin/teams/nope/budget").status_code == 404
