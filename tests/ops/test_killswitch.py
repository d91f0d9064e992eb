"""Kill switches: a model or team turned off through the admin API answers 503 with a clear code,
on every replica sharing the database, until it is turned back on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_runner import RunningGateway, run_gateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY, OTHER_KEY, REVIEWER_KEY, base_config

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def chat(gw: RunningGateway, key: str = CLIENT_KEY, model: str = "gpt-test") -> httpx.Response:
    return httpx.post(gw.v1 + "/chat/completions", headers={"authorization": f"Bearer {key}"},
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def until_status(gw: RunningGateway, status: int, timeout_s: float = 5.0, **kw: Any
                 ) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        r = chat(gw, **kw)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def test_model_switch_applies_on_every_replica(fake: FakeOpenAI, tmp_path: Path) -> None:
    cfg = base_config(fake.url, tmp_path)
    with run_gateway(cfg) as a, run_gateway(cfg) as b:
        assert chat(b).status_code == 200
        r = httpx.put(a.url + "/admin/switches/model/gpt-test", headers=ADMIN,
                      json={"reason": "provider incident"})
        assert r.status_code == 200 and r.json()["actor"].startswith("admin:")
        here = chat(a)  # at once on the replica that set it
        assert here.status_code == 503
        err = here.json()["error"]
        assert err["code"] == "model_disabled" and err["type"] == "api_error"
        assert "provider incident" in err["message"]
        there = until_status(b, 503)  # within the poll interval on the other one
        assert there.json()["error"]["code"] == "model_disabled"
        assert chat(b, model="mock").status_code == 200  # other models are untouched
        listed = httpx.get(b.url + "/admin/switches", headers=ADMIN).json()["items"]
        assert [(s["kind"], s["name"]) for s in listed] == [("model", "gpt-test")]

        assert httpx.delete(b.url + "/admin/switches/model/gpt-test",
                            headers=ADMIN).status_code == 200
        assert until_status(a, 200).status_code == 200
        assert httpx.delete(b.url + "/admin/switches/model/gpt-test",
                            headers=ADMIN).status_code == 404
        b.flush()
        rows = b.call(b.services.log_store.spend(_query()))
        assert sum(r.requests for r in rows) >= 4  # refused requests are logged too


def _query() -> Any:
    from gateway.stores.logs import SpendQuery

    return SpendQuery(group_by="model")


def test_team_switch_and_audit(fake: FakeOpenAI, tmp_path: Path) -> None:
    with run_gateway(base_config(fake.url, tmp_path)) as gw:
        assert httpx.put(gw.url + "/admin/switches/team/search", headers=ADMIN,
                         json={}).status_code == 200
        r = chat(gw)
        assert r.status_code == 503 and r.json()["error"]["code"] == "team_disabled"
        assert chat(gw, key=OTHER_KEY, model="mock").status_code == 200
        metrics = httpx.get(gw.url + "/metrics").text
        assert 'gateway_kill_switches_active{kind="team"} 1.0' in metrics
        httpx.delete(gw.url + "/admin/switches/team/search", headers=ADMIN)
        assert chat(gw).status_code == 200
        actions = [i["action"] for i in
                   httpx.get(gw.url + "/admin/audit", headers=ADMIN).json()["items"]]
        assert actions == ["team.enable", "team.disable"]


def test_switches_are_for_admins_and_known_names(fake: FakeOpenAI, tmp_path: Path) -> None:
    with run_gateway(base_config(fake.url, tmp_path)) as gw:
        rev = {"authorization": f"Bearer {REVIEWER_KEY}"}
        assert httpx.put(gw.url + "/admin/switches/model/gpt-test", headers=rev,
                         json={}).status_code == 403
        assert httpx.put(gw.url + "/admin/switches/model/nope", headers=ADMIN,
                         json={}).status_code == 404
        assert httpx.put(gw.url + "/admin/switches/region/eu", headers=ADMIN,
                         json={}).status_code == 404
        assert httpx.put(gw.url + "/admin/switches/model/gpt-test", headers=ADMIN,
                         json={"reason": 5}).status_code == 400
