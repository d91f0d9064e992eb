"""Rule precision judges only the rules that queued an item (issue 13, item 7), end to end.

A real request fires two rules: an input ``pii`` mask (the address is masked, the provider
never sees it) and an output ``regex`` flag (an internal host in the answer), which is what
puts it in the queue. Dismissing the item is a false alarm of the flag rule only: the mask
rule did its job and asked for no review, so it gets no verdict, in the API and on the page.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import yaml

from tests.fakes.openai_upstream import FakeOpenAI
from tests.gateway_runner import run_gateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY, base_config
from tests.ui.test_review_ui import logged_in

POLICY = {"input": [{"check": "pii", "action": "mask", "entities": ["EMAIL_ADDRESS"]}],
          "output": [{"check": "regex", "name": "internal-hosts", "action": "flag",
                      "patterns": [r"\b[a-z0-9-]+\.corp\.example\.com\b"]}]}


def test_a_dismissal_counts_against_the_flagging_rule_only(fake: FakeOpenAI, tmp_path: Path
                                                           ) -> None:
    pdir = tmp_path / "policies"
    pdir.mkdir()
    (pdir / "watch.yaml").write_text(yaml.safe_dump(POLICY))
    cfg = base_config(fake.url, tmp_path, policies_dir=str(pdir))
    cfg["teams"][0]["policy"] = "watch"
    fake.reply = "Ask build-07.corp.example.com, it has the logs."
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    with run_gateway(cfg) as gw:
        r = httpx.post(gw.v1 + "/chat/completions", headers={
            "authorization": f"Bearer {CLIENT_KEY}"}, json={"model": "gpt-test", "messages": [
                {"role": "user", "content": "I am jane.roe@acme-mail.com, where are the logs?"}]})
        assert r.status_code == 200
        gw.flush()
        (item,) = httpx.get(gw.url + "/admin/flags", headers=admin).json()["items"]
        assert [(x["rule"], x["action"]) for x in item["rules"]] == [
            ("pii", "mask"), ("internal-hosts", "flag")]
        r = httpx.post(f"{gw.url}/admin/flags/{item['id']}/review", headers=admin,
                       json={"verdict": "dismissed", "note": "a public test host"})
        assert r.status_code == 200
        stats = httpx.get(gw.url + "/admin/rules/stats", headers=admin).json()["items"]
        assert [(s["rule"], s["dismissed"], s["precision"]) for s in stats] == [
            ("internal-hosts", 1, 0.0)]
        page = logged_in(gw, ADMIN_KEY).get("/ui/rules").text
    rows = re.findall(r'<tr data-rule="([^"]+)">', page)
    assert rows == ["internal-hosts"]
    assert "block or flag" in page  # the page says which rules are judged
