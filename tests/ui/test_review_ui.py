"""The review web page: session and CSRF rules over plain HTTP, then the whole reviewer journey in
headless Chromium (Playwright): log in, filter, open an item, confirm it with the keyboard, see
the rule's precision change, visit the team overview, log out. Every page is screenshotted to
tests/artifacts/ (git-ignored); the queue also to docs/review-queue.png for the README.

Chromium is Debian's (``tests/prepare.sh`` installs it); without it the browser test is skipped
with the reason printed, or fails under CI=true.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.records import FindingEntry, RequestRecord, RuleEntry
from gateway.stores.sql.flags import flag_id
from tests.flagdata import submit
from tests.gateway_runner import RunningGateway, run_gateway
from tests.helpers import ADMIN_KEY, CLIENT_KEY, REVIEWER_KEY, base_config
from tests.services import _unavailable

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
HOUR = 3600.0


def finding(label: str, text: str, part: str, score: float = 0.9) -> dict[str, Any]:
    start = text.index(part)
    return {"label": label, "score": score, "start": start, "end": start + len(part)}


def item(rid: str, age_h: float, team: str, model: str, prompt: str, response: str,
         rules: list[dict[str, Any]]) -> RequestRecord:
    return RequestRecord(request_id=rid, created_at=time.time() - age_h * HOUR, endpoint="chat",
                         team=team, key_id="cfg:app-prod", model=model, flagged=True,
                         rules=[RuleEntry(r["rule"], r["check"], r["action"], r["direction"],
                                          False, tuple(FindingEntry(**f) for f in r["findings"]))
                                for r in rules],
                         review_prompt=prompt, review_response=response,
                         prompt_tokens=420, completion_tokens=180, cost_micros=2_150)


def queue_items() -> list[RequestRecord]:
    """A realistic little queue: PII, internal hosts, a secret, across teams and models."""
    p1 = "Please email the invoice to <EMAIL_ADDRESS> and call <PHONE_NUMBER> today."
    r2 = "The staging box is build-07.corp.example.com, log in there."
    p3 = "Why does my deploy fail with token <SECRET>?"
    p4 = "Summarise this ticket from <EMAIL_ADDRESS>: printer on floor 3 is jammed."
    r5 = "Ask ops on wiki.corp.example.com about the on-call rota."
    p6 = "<script>alert('x')</script> is what the user typed"
    return [
        item("req-a1", 1, "search", "gpt-test", p1, "Sure, I will draft the email.", [
            {"rule": "pii", "check": "pii", "action": "redact", "direction": "input",
             "findings": [finding("EMAIL_ADDRESS", p1, "<EMAIL_ADDRESS>", 0.99),
                          finding("PHONE_NUMBER", p1, "<PHONE_NUMBER>", 0.75)]}]),
        item("req-a2", 3, "search", "mock", "Where can I test the release?", r2, [
            {"rule": "internal-hosts", "check": "regex", "action": "flag", "direction": "output",
             "findings": [finding("internal-hosts", r2, "build-07.corp.example.com", 1.0)]}]),
        item("req-a3", 7, "search", "gpt-test", p3, "(withheld)", [
            {"rule": "secrets", "check": "secrets", "action": "block", "direction": "input",
             "findings": [finding("GITHUB_TOKEN", p3, "<SECRET>", 1.0)]}]),
        item("req-a4", 26, "search", "gpt-test", p4, "The printer on floor 3 is jammed.", [
            {"rule": "pii", "check": "pii", "action": "redact", "direction": "input",
             "findings": [finding("EMAIL_ADDRESS", p4, "<EMAIL_ADDRESS>", 0.97)]}]),
        item("req-a5", 30, "search", "mock", "Who is on call?", r5, [
            {"rule": "internal-hosts", "check": "regex", "action": "flag", "direction": "output",
             "findings": [finding("internal-hosts", r5, "wiki.corp.example.com", 1.0)]}]),
        item("req-a6", 50, "search", "gpt-test", p6, "I cannot run scripts.", [
            {"rule": "prompt-injection", "check": "regex", "action": "flag",
             "direction": "input", "findings": [finding("HTML", p6, "<script>", 0.6)]}]),
        item("req-b1", 2, "other", "mock", "Contact <EMAIL_ADDRESS>", "ok", [
            {"rule": "pii", "check": "pii", "action": "redact", "direction": "input",
             "findings": [{"label": "EMAIL_ADDRESS", "score": 0.9, "start": 8, "end": 23}]}]),
    ]


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[RunningGateway]:
    cfg = base_config("http://127.0.0.1:9/v1", tmp_path)
    # A small budget and a dear model, so three requests show on the overview's budget bar.
    cfg["models"][3].update(price={"input_per_mtok": 2000.0, "output_per_mtok": 4000.0},
                            default_max_tokens=50)
    cfg["teams"][0]["budget"] = {"usd": 0.5, "period": "month"}
    with run_gateway(cfg) as g:
        for _ in range(3):  # real spend against the budget, for the team overview
            r = httpx.post(g.v1 + "/chat/completions", headers={
                "authorization": f"Bearer {CLIENT_KEY}"}, json={
                "model": "mock", "messages": [{"role": "user", "content": "hello there"}]})
            assert r.status_code == 200, r.text
        submit(g, *queue_items())
        yield g


# --- sessions and CSRF over plain HTTP -----------------------------------------------------------


def logged_in(gw: RunningGateway, key: str) -> httpx.Client:
    c = httpx.Client(base_url=gw.url, follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/ui/login").text)
    assert token is not None
    r = c.post("/ui/login", data={"csrf": token.group(1), "key": key})
    assert r.status_code == 303, r.text
    return c


def page_csrf(c: httpx.Client, path: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', c.get(path).text)
    assert m is not None
    return m.group(1)


def test_session_cookie_is_httponly_strict_and_signed(gw: RunningGateway) -> None:
    c = logged_in(gw, ADMIN_KEY)
    cookie = next(h for h in c.cookies.jar if h.name == "gw_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.path == "/ui"
    assert str(cookie.get_nonstandard_attr("SameSite")).lower() == "strict"
    assert ADMIN_KEY not in (cookie.value or "")
    assert c.get("/ui/").status_code == 200
    forged = httpx.Client(base_url=gw.url, follow_redirects=False)
    forged.cookies.set("gw_session", (cookie.value or "")[:-3] + "AAA", path="/ui")
    assert forged.get("/ui/").headers["location"] == "/ui/login"


def test_login_needs_a_reviewer_or_admin_key_and_csrf(gw: RunningGateway) -> None:
    c = httpx.Client(base_url=gw.url, follow_redirects=False)
    token = page_csrf(c, "/ui/login")
    assert c.post("/ui/login", data={"csrf": token, "key": CLIENT_KEY}).status_code == 401
    assert c.post("/ui/login", data={"csrf": "wrong", "key": ADMIN_KEY}).status_code == 403
    assert c.get("/ui/").status_code == 303


def test_posts_without_the_csrf_token_change_nothing(gw: RunningGateway) -> None:
    c = logged_in(gw, ADMIN_KEY)
    fid = flag_id("req-a1")
    r = c.post(f"/ui/flags/{fid}/review", data={"verdict": "confirmed"})
    assert r.status_code == 403
    r = c.post(f"/ui/flags/{fid}/review", data={"verdict": "confirmed", "csrf": "guess"})
    assert r.status_code == 403
    assert gw.call(gw.services.log_store.get_flag(fid))["reviews"] == []
    assert c.post("/ui/logout", data={}).status_code == 403
    token = page_csrf(c, "/ui/")
    r = c.post(f"/ui/flags/{fid}/review", data={"verdict": "confirmed", "csrf": token})
    assert r.status_code == 303
    assert gw.call(gw.services.log_store.get_flag(fid))["status"] == "confirmed"


def test_reviewer_sees_only_their_team(gw: RunningGateway) -> None:
    c = logged_in(gw, REVIEWER_KEY)
    queue = c.get("/ui/").text
    assert flag_id("req-a1") in queue and flag_id("req-b1") not in queue
    assert c.get(f"/ui/flags/{flag_id('req-b1')}").status_code == 404
    token = page_csrf(c, "/ui/")
    r = c.post(f"/ui/flags/{flag_id('req-b1')}/review",
               data={"verdict": "dismissed", "csrf": token})
    assert r.status_code == 404
    assert c.get("/ui/teams/other").status_code == 404
    assert c.get("/ui/teams").headers["location"] == "/ui/teams/search"


def test_stored_text_is_escaped(gw: RunningGateway) -> None:
    c = logged_in(gw, ADMIN_KEY)
    html = c.get(f"/ui/flags/{flag_id('req-a6')}").text
    assert "<script>alert" not in html
    assert '<mark title="prompt-injection' in html and "&lt;script&gt;</mark>" in html


# --- the browser journey -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(pytestconfig: pytest.Config) -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        _unavailable(pytestconfig, f"no {CHROMIUM} for the browser tests "
                                   "(run tests/prepare.sh as root to install Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def precision_of(page: Any, rule: str) -> str:
    return str(page.locator(f'#rule-stats tr[data-rule="{rule}"] td.precision').inner_text()
               ).strip()


def test_review_journey_in_chromium(gw: RunningGateway, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)

    page.goto(gw.url + "/ui/")
    assert page.url.endswith("/ui/login")
    shot(page, "login")
    page.fill("#key", ADMIN_KEY)
    page.click("#login")
    page.wait_for_url(re.compile(r"/ui/$"))
    cookie = next(c for c in context.cookies() if c["name"] == "gw_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the session

    assert page.locator("#queue tbody tr").count() == 7
    assert page.locator('#counts a[data-status="open"] .count').inner_text() == "7"
    shot(page, "queue")

    # Filter: the search team's regex findings.
    page.select_option("#f-team", "search")
    page.fill("#f-check", "regex")
    page.click("#apply")
    page.wait_for_url(re.compile(r"check=regex"))
    assert page.locator("#queue tbody tr").count() == 3
    shot(page, "queue-filtered")
    assert precision_of(page, "internal-hosts").startswith("–")

    # Open the second row with the keyboard, then confirm it with "c".
    page.keyboard.press("j")
    assert "selected" in (page.locator("#queue tbody tr").nth(1).get_attribute("class") or "")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ui/flags/"))
    opened = page.url.split("/ui/flags/")[1].split("?")[0]
    assert opened == flag_id("req-a5")
    assert page.locator("#response mark").inner_text() == "wiki.corp.example.com"
    shot(page, "detail")
    page.fill("#note", "internal wiki host in an answer to a customer")
    page.locator("#note").press("Escape")
    page.keyboard.press("c")
    page.wait_for_url(re.compile(r"done=confirmed"))
    assert page.locator(".notice").count() == 1
    shot(page, "after-confirm")

    # The rule's precision changed from "no verdict yet" to 100%.
    page.goto(gw.url + "/ui/rules?team=search")
    assert precision_of(page, "internal-hosts").startswith("100%")
    shot(page, "rules")
    reviews = gw.call(gw.services.log_store.get_flag(opened))["reviews"]
    assert [(r["verdict"], r["note"]) for r in reviews] == [
        ("confirmed", "internal wiki host in an answer to a customer")]

    # The README's picture: the whole queue, with a verdict in the rule statistics.
    # Saved to the artifacts on every run; copied over docs/ only when asked
    # (UPDATE_DOCS_SCREENSHOTS=1), so a test run leaves the work tree clean.
    page.goto(gw.url + "/ui/?status=all")
    page.screenshot(path=str(ARTIFACTS / "review-queue.png"))
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        page.screenshot(path=str(ROOT / "docs" / "review-queue.png"))

    page.goto(gw.url + "/ui/teams/search")
    assert page.locator("#team-search .big").first.inner_text().startswith("$")
    shot(page, "team")
    page.goto(gw.url + "/ui/teams")
    shot(page, "teams")

    page.click("#logout")
    page.wait_for_url(re.compile(r"/ui/login$"))
    page.goto(gw.url + "/ui/")
    assert page.url.endswith("/ui/login")
    assert not [c for c in context.cookies() if c["name"] == "gw_session"]
    context.close()


def test_session_codec_expiry_secret_and_masking() -> None:
    from gateway.settings import masked, parse_settings
    from gateway.ui.session import SessionCodec, session_secret

    codec = SessionCodec(b"k" * 32, ttl_s=60)
    value, session = codec.issue("sk-some-key", now=1000.0)
    assert codec.read(value, now=1059.0) == session
    assert codec.read(value, now=1061.0) is None  # expired
    assert SessionCodec(b"other" * 8).read(value, now=1000.0) is None  # another deployment
    a = parse_settings({"server": {"admin_keys": ["sk-a"]}})
    b = parse_settings({"server": {"admin_keys": ["sk-a"], "session_secret": "x" * 20}})
    assert session_secret(a) == session_secret(parse_settings({"server": {"admin_keys": ["sk-a"]}}))
    assert session_secret(a) != session_secret(b)
    assert masked(b)["server"]["session_secret"] == "***xxxx"
