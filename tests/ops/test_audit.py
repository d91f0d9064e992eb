"""The audit trail: admin actions are chained by hash, listed newest first, and any edited, deleted
or reordered row is found by ``gateway audit verify`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from gateway.cli import main
from gateway.ops.audit import Audit
from gateway.stores.backends import open_ops_store
from gateway.stores.ops import GENESIS, OpsStore, Switch
from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_runner import run_gateway
from tests.helpers import ADMIN_KEY, REVIEWER_KEY, base_config

ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


def test_admin_actions_are_audited_listed_and_verified(
        fake: FakeOpenAI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = base_config(fake.url, tmp_path)
    with run_gateway(cfg) as gw:
        made = httpx.post(gw.url + "/admin/keys", headers=ADMIN,
                          json={"team": "search", "name": "bot"}).json()
        httpx.delete(gw.url + f"/admin/keys/{made['id']}", headers=ADMIN)
        httpx.put(gw.url + "/admin/switches/model/mock", headers=ADMIN, json={"reason": "x"})
        gw.call(gw.services.audit.record("reviewer:cfg:abc@search", "flag.review", "flag:f1",
                                         {"verdict": "confirmed"}))
        page = httpx.get(gw.url + "/admin/audit?limit=3", headers=ADMIN).json()
        assert [i["action"] for i in page["items"]] == ["flag.review", "model.disable",
                                                        "key.revoke"]
        assert page["items"][2]["target"] == f"key:{made['id']}"
        assert page["items"][2]["details"] == {"team": "search"}
        assert page["items"][0]["prev_hash"] == page["items"][1]["hash"]
        rest = httpx.get(gw.url + f"/admin/audit?limit=3&cursor={page['next_cursor']}",
                         headers=ADMIN).json()
        assert [i["action"] for i in rest["items"]] == ["key.create"]
        assert rest["items"][0]["prev_hash"] == GENESIS and rest["next_cursor"] is None
        assert httpx.get(gw.url + "/admin/audit", headers={
            "authorization": f"Bearer {REVIEWER_KEY}"}).status_code == 403
        ok = httpx.get(gw.url + "/admin/audit/verify", headers=ADMIN).json()
        assert ok["ok"] and ok["rows"] == 4
        head = ok["head"]
        argv = ["--url", gw.url, "--key", ADMIN_KEY]
        assert main(["audit", "verify", *argv]) == 0
        assert main(["audit", "list", *argv]) == 0
    out = capsys.readouterr().out
    assert "audit trail OK: 4 rows" in out and "model.disable" in out

    config = tmp_path / "gw.yaml"
    config.write_text(yaml.safe_dump(cfg))
    assert main(["audit", "verify", "--config", str(config), "--head", head]) == 0

    db = sqlite3.connect(tmp_path / "gw.db")
    with db:  # an insider widens a revocation into something else
        db.execute("UPDATE audit_log SET details = '{\"team\":\"other\"}' WHERE seq = 2")
    capsys.readouterr()
    assert main(["audit", "verify", "--config", str(config)]) == 2
    assert "BROKEN at row 2" in capsys.readouterr().out
    with db:
        db.execute("UPDATE audit_log SET details = '{\"team\":\"search\"}' WHERE seq = 2")
    assert main(["audit", "verify", "--config", str(config)]) == 0
    with db:  # the last row removed: the chain is shorter but whole, the head gives it away
        db.execute("DELETE FROM audit_log WHERE seq = 4")
    assert main(["audit", "verify", "--config", str(config)]) == 0
    assert main(["audit", "verify", "--config", str(config), "--head", head]) == 2
    db.close()


# --- the store contract, on both backends ---------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
async def store_and_sql(request: pytest.FixtureRequest, tmp_path: Path
                        ) -> AsyncIterator[tuple[OpsStore, Any]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/ops.db"

        async def run_sql(sql: str) -> None:
            def go() -> None:
                with sqlite3.connect(tmp_path / "ops.db") as db:
                    db.execute(sql)
            await asyncio.to_thread(go)
    else:
        url = request.getfixturevalue("postgres_url")

        async def run_sql(sql: str) -> None:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()
    store = open_ops_store(url)
    await store.open()
    try:
        yield store, run_sql
    finally:
        await store.close()


async def test_chain_detects_edit_delete_and_reorder(store_and_sql: tuple[OpsStore, Any]
                                                     ) -> None:
    store, run_sql = store_and_sql
    audit = Audit(store)
    await asyncio.gather(*(audit.record("admin:k", "key.create", f"key:{i}", {"i": i})
                           for i in range(6)))  # concurrent appends still form one chain
    ok = await audit.verify()
    assert ok.ok and ok.rows == 6
    await run_sql("UPDATE audit_log SET actor = 'admin:someone-else' WHERE seq = 3")
    bad = await audit.verify()
    assert (bad.ok, bad.bad_seq, bad.rows) == (False, 3, 2)
    assert "edited" in (bad.reason or "")
    await run_sql("UPDATE audit_log SET actor = 'admin:k' WHERE seq = 3")
    assert (await audit.verify()).ok
    await run_sql("DELETE FROM audit_log WHERE seq = 4")
    gone = await audit.verify()
    assert (gone.ok, gone.bad_seq) == (False, 5) and "missing" in (gone.reason or "")
    await run_sql("UPDATE audit_log SET seq = 4 WHERE seq = 5")  # renumber to hide the hole
    hidden = await audit.verify()
    assert (hidden.ok, hidden.bad_seq) == (False, 4)


async def test_switches_round_trip(store_and_sql: tuple[OpsStore, Any]) -> None:
    store, _ = store_and_sql
    await store.set_switch(Switch("model", "m", "why", "admin:k", 1.0))
    await store.set_switch(Switch("model", "m", "again", "admin:k", 2.0))
    await store.set_switch(Switch("team", "t", "", "admin:k", 3.0))
    assert [(s.kind, s.name, s.reason) for s in await store.switches()] == [
        ("model", "m", "again"), ("team", "t", "")]
    assert await store.delete_switch("model", "m")
    assert not await store.delete_switch("model", "m")
    assert [s.name for s in await store.switches()] == ["t"]
