"""The review queue's admin API through a real gateway: filters, pagination, team isolation,
verdict history, rule precision and export.

Flagged records reach the queue the way production ones do: submitted to the running gateway's
background writer, which writes them to the log store.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from gateway.records import RequestRecord
from gateway.stores.sql.flags import flag_id
from tests.flagdata import BASE, flagged, rule, submit
from tests.gateway_runner import RunningGateway, run_gateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY, REVIEWER_KEY, base_config

OTHER_REVIEWER = "sk-test-other-reviewer"


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[RunningGateway]:
    cfg = base_config("http://127.0.0.1:9/v1", tmp_path)
    cfg["teams"][1]["reviewer_keys"] = [OTHER_REVIEWER]
    with run_gateway(cfg) as g:
        submit(g,
               flagged("s1", BASE + 1),
               flagged("s2", BASE + 2, model="mock", rules=[rule("hosts", "regex")]),
               flagged("s3", BASE + 3, rules=[rule("emails", "pii"), rule("hosts", "regex")]),
               flagged("o1", BASE + 4, team="other"),
               flagged("s4", BASE + 86400, rules=[rule("keys", "secrets", "block")]),
               RequestRecord("plain", BASE, "chat", team="search"))
        yield g


def call(gw: RunningGateway, method: str, path: str, key: str = ADMIN_KEY,
         **kw: Any) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.request(method, gw.url + path, headers=headers, **kw)


def request_ids(gw: RunningGateway, query: str, key: str = ADMIN_KEY) -> list[str]:
    """Every page of GET /admin/flags?<query>&limit=2, following next_cursor."""
    out: list[str] = []
    cursor = ""
    while True:
        r = call(gw, "GET", f"/admin/flags?limit=2&{query}{cursor}", key)
        assert r.status_code == 200, r.text
        body = r.json()
        out += [i["request_id"] for i in body["items"]]
        if body["next_cursor"] is None:
            return out
        cursor = f"&cursor={body['next_cursor']}"


def test_filters_and_pagination(gw: RunningGateway) -> None:
    assert request_ids(gw, "") == ["s4", "o1", "s3", "s2", "s1"]
    assert request_ids(gw, "team=search") == ["s4", "s3", "s2", "s1"]
    assert request_ids(gw, "check=regex") == ["s3", "s2"]
    assert request_ids(gw, "rule=emails&team=search") == ["s3", "s1"]
    assert request_ids(gw, "model=mock") == ["s2"]
    assert request_ids(gw, "since=2023-11-14T00:00:02Z&until=1699920004") == ["s3", "s2"]
    assert request_ids(gw, "status=confirmed") == []
    r = call(gw, "GET", "/admin/flags?team=search&counts=1")
    assert r.json()["counts"] == {"open": 4, "confirmed": 0, "dismissed": 0}


def test_item_shape(gw: RunningGateway) -> None:
    item = call(gw, "GET", f"/admin/flags/{flag_id('s3')}").json()
    assert {k: item[k] for k in ("id", "request_id", "team", "key_id", "model", "status",
                                 "prompt", "reviews")} == {
        "id": flag_id("s3"), "request_id": "s3", "team": "search", "key_id": "cfg:client",
        "model": "gpt-test", "status": "open", "prompt": "mail to <EMAIL_ADDRESS> please",
        "reviews": []}
    assert item["created_at"] == BASE + 3
    assert item["rules"][1] == rule("hosts", "regex").public()
    assert set(item["rules"][0]["findings"][0]) == {"label", "score", "start", "end"}


@pytest.mark.parametrize("query,param", [("status=maybe", "status"), ("cursor=zz%25", "cursor"),
                                         ("since=yesterday", "since"), ("limit=0", "limit")])
def test_bad_filters_are_400(gw: RunningGateway, query: str, param: str) -> None:
    r = call(gw, "GET", f"/admin/flags?{query}")
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_team_isolation(gw: RunningGateway) -> None:
    assert request_ids(gw, "", REVIEWER_KEY) == ["s4", "s3", "s2", "s1"]
    assert request_ids(gw, "", OTHER_REVIEWER) == ["o1"]
    assert call(gw, "GET", "/admin/flags?team=other", REVIEWER_KEY).status_code == 404
    assert call(gw, "GET", "/admin/flags?team=nope").status_code == 404
    theirs = flag_id("o1")
    assert call(gw, "GET", f"/admin/flags/{theirs}", REVIEWER_KEY).status_code == 404
    r = call(gw, "POST", f"/admin/flags/{theirs}/review", REVIEWER_KEY,
             json={"verdict": "dismissed"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    # Nothing was recorded on the other team's item.
    assert call(gw, "GET", f"/admin/flags/{theirs}").json()["reviews"] == []
    assert call(gw, "GET", "/admin/flags/flg_unknown").status_code == 404
    assert call(gw, "GET", "/admin/flags", CLIENT_KEY).status_code == 401
    assert call(gw, "GET", "/admin/flags", "").status_code == 401
    stats = call(gw, "GET", "/admin/rules/stats", OTHER_REVIEWER).json()["items"]
    assert [(s["rule"], s["open"]) for s in stats] == [("emails", 1)]


def test_verdict_history(gw: RunningGateway) -> None:
    fid = flag_id("s1")
    r = call(gw, "POST", f"/admin/flags/{fid}/review", REVIEWER_KEY,
             json={"verdict": "dismissed", "note": "test address"})
    assert r.status_code == 200 and r.json()["status"] == "dismissed"
    r = call(gw, "POST", f"/admin/flags/{fid}/review", ADMIN_KEY,
             json={"verdict": "confirmed", "note": "customer data after all"})
    item = r.json()
    assert item["status"] == "confirmed"
    reviews = item["reviews"]
    assert [(v["verdict"], v["note"]) for v in reviews] == [
        ("dismissed", "test address"), ("confirmed", "customer data after all")]
    reviewers = {v["reviewer"] for v in reviews}
    assert len(reviewers) == 2 and all(x.startswith("cfg:") for x in reviewers)
    assert REVIEWER_KEY not in r.text and ADMIN_KEY not in r.text
    assert reviews[0]["at"] <= reviews[1]["at"]
    assert request_ids(gw, "status=confirmed") == ["s1"]


@pytest.mark.parametrize("body,param", [({"verdict": "maybe"}, "verdict"), ({}, "verdict"),
                                        ({"verdict": "confirmed", "note": 5}, "note"),
                                        ({"verdict": "confirmed", "note": "x" * 2001}, "note")])
def test_bad_verdicts_are_400(gw: RunningGateway, body: dict[str, Any], param: str) -> None:
    r = call(gw, "POST", f"/admin/flags/{flag_id('s1')}/review", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == param
    assert call(gw, "POST", f"/admin/flags/{flag_id('s1')}/review",
                content=b"{nope").status_code == 400


def test_rule_precision_follows_verdicts(gw: RunningGateway) -> None:
    def precision() -> dict[str, Any]:
        items = call(gw, "GET", "/admin/rules/stats?team=search").json()["items"]
        return {s["rule"]: s["precision"] for s in items}

    assert precision() == {"emails": None, "hosts": None, "keys": None}
    for rid, v in (("s1", "confirmed"), ("s3", "dismissed"), ("s2", "dismissed")):
        call(gw, "POST", f"/admin/flags/{flag_id(rid)}/review", json={"verdict": v})
    assert precision() == {"emails": 0.5, "hosts": 0.0, "keys": None}


def test_export_jsonl_and_csv(gw: RunningGateway) -> None:
    r = call(gw, "GET", "/admin/flags/export?format=jsonl&team=search&check=regex&limit=1")
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    assert "attachment" in r.headers["content-disposition"]
    rows = [orjson.loads(line) for line in r.content.splitlines()]
    assert [x["request_id"] for x in rows] == ["s3", "s2"]  # every page, not just one
    assert rows[0] == call(gw, "GET", f"/admin/flags/{flag_id('s3')}").json()

    r = call(gw, "GET", "/admin/flags/export?format=csv", REVIEWER_KEY)
    assert r.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert [x["request_id"] for x in table] == ["s4", "s3", "s2", "s1"]
    assert table[1]["rules"] == "emails hosts" and table[1]["checks"] == "pii regex"
    assert table[1]["response"].startswith("'=")  # no formula injection in spreadsheets
    assert call(gw, "GET", "/admin/flags/export?format=xml").status_code == 400
