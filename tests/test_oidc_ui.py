"""Single sign-on on the review page, end to end: headless Chromium, real gateways and a real
OpenID provider (oidc-provider under Node, on another loopback address so the browser makes the
same cross-site redirects as in production).

Admins and team reviewers sign in; a forged ``state``, a planted callback, bad ID tokens
(changed after signing, for another client, expired, signed by an unpublished key), a user whose
claim maps to no role, an expired session and log-out are all refused or ended as they must be.
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import orjson
import pytest

from gateway.stores.sql.flags import flag_id
from tests.flagdata import submit
from tests.gateway_runner import RunningGateway, free_port, run_gateway
from tests.helpers import ADMIN_KEY, base_config
from tests.oidc_idp import ADMIN_RESOURCE, CLIENT_ID, CLIENT_SECRET, Idp, run_idp
from tests.services import _unavailable
from tests.ui.test_review_ui import CHROMIUM, CHROMIUM_ARGS, queue_items

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def sso_config(url: str, idp: Idp, tmp: Path, **oidc: Any) -> dict[str, Any]:
    cfg = base_config("http://127.0.0.1:9/v1", tmp)
    cfg["oidc"] = {
        "issuer": idp.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "scopes": ["openid", "email", "profile", "groups"], "redirect_base_url": url,
        "role_claim": "groups",
        "roles": {"gw-admins": "admin", "search-reviewers": "reviewer:search"},
        "audiences": [CLIENT_ID, ADMIN_RESOURCE], "label": "Example SSO",
        "leeway_s": 0, "jwks_min_refresh_s": 0, **oidc}
    return cfg


@dataclass
class Sso:
    idp: Idp
    gw: RunningGateway  # groups claim from the ID token
    short: RunningGateway  # 4-second sessions, role claim only in userinfo


@pytest.fixture(scope="module")
def sso(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Sso]:
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    with run_idp(pytestconfig, urls) as idp:
        main = sso_config(urls[0], idp, tmp_path_factory.mktemp("sso-main"))
        short = sso_config(urls[1], idp, tmp_path_factory.mktemp("sso-short"),
                           role_claim="team_roles", roles={"search-review": "reviewer:search"},
                           session_ttl_s=4)
        with run_gateway(main, port=ports[0]) as gw, run_gateway(short, port=ports[1]) as gw2:
            submit(gw, *queue_items())
            yield Sso(idp, gw, gw2)


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


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    p = context.new_page()
    p.set_default_timeout(15_000)
    try:
        yield p
    finally:
        context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"sso-{name}.png"), full_page=True)


def sign_in(page: Any, gw: RunningGateway, user: str) -> None:
    """From the gateway's login page through the IdP's login form, back to the gateway."""
    page.goto(gw.url + "/ui/")
    assert urlsplit(page.url).path == "/ui/login"
    page.click("#sso")
    page.wait_for_selector('input[name="login"]')  # the IdP's own page, on another site
    assert urlsplit(page.url).hostname == "127.0.0.2"
    page.fill('input[name="login"]', user)
    page.fill('input[name="password"]', "any password")
    page.click('button[type="submit"]')
    page.wait_for_url(lambda u: (u.startswith(gw.url + "/ui/") and "/oidc/" not in u)
                      or "/ui/oidc/callback" in u)
    page.wait_for_load_state()


def cookie(page: Any, name: str) -> dict[str, Any] | None:
    return next((c for c in page.context.cookies() if c["name"] == name), None)


def login_error(page: Any) -> str:
    return str(page.locator("#login-error").inner_text())


# --- signing in ----------------------------------------------------------------------------------


def test_admin_signs_in_reviews_and_logs_out(sso: Sso, page: Any) -> None:
    gw = sso.gw
    page.goto(gw.url + "/ui/login")
    assert page.locator("#sso").inner_text() == "Sign in with Example SSO"
    assert page.locator("#key").count() == 1  # key login stays next to single sign-on
    shot(page, "login")
    sign_in(page, gw, "alice")
    page.wait_for_url(gw.url + "/ui/")
    assert "admin · oidc:alice@example.com" in page.locator(".who").inner_text()
    assert page.locator("#queue tbody tr").count() == 7  # every team's items
    session = cookie(page, "gw_session")
    assert session and session["httpOnly"] and session["sameSite"] == "Strict"
    assert cookie(page, "gw_oidc") is None  # the sign-in state is spent
    assert page.evaluate("document.cookie") == ""
    shot(page, "queue-admin")

    fid = flag_id("req-b1")  # another team's item: an admin may judge it
    page.goto(f"{gw.url}/ui/flags/{fid}")
    page.keyboard.press("c")
    page.wait_for_url(re.compile(r"done=confirmed"))
    reviews = gw.call(gw.services.log_store.get_flag(fid))["reviews"]
    assert [(r["verdict"], r["reviewer"]) for r in reviews] == [
        ("confirmed", "oidc:alice@example.com")]

    # Log out: the session cookie goes, and so does the IdP's session (RP-initiated logout).
    page.goto(gw.url + "/ui/")
    page.click("#logout")
    page.wait_for_url(lambda u: urlsplit(u).hostname == "127.0.0.2")
    shot(page, "idp-logout")
    page.click('button[name="logout"][value="yes"]')
    page.wait_for_url(re.compile(r"/ui/login"))
    assert cookie(page, "gw_session") is None
    page.goto(gw.url + "/ui/")
    assert urlsplit(page.url).path == "/ui/login"
    page.click("#sso")  # the IdP asks for credentials again: its session ended too
    page.wait_for_selector('input[name="login"]')


def test_team_reviewer_sees_only_their_team(sso: Sso, page: Any) -> None:
    gw = sso.gw
    sign_in(page, gw, "bob")
    page.wait_for_url(gw.url + "/ui/")
    assert "reviewer of search · oidc:bob@example.com" in page.locator(".who").inner_text()
    rows = page.locator("#queue tbody tr")
    assert rows.count() == 6
    html = page.content()
    assert flag_id("req-a1") in html and flag_id("req-b1") not in html
    assert page.locator("#f-team option").all_inner_texts() == ["search"]
    shot(page, "queue-reviewer")
    r = page.goto(f"{gw.url}/ui/flags/{flag_id('req-b1')}")  # another team's item
    assert r is not None and r.status == 404
    r = page.goto(f"{gw.url}/ui/teams/other")
    assert r is not None and r.status == 404
    r = page.goto(f"{gw.url}/ui/flags/{flag_id('req-a1')}")
    assert r is not None and r.status == 200


def test_user_whose_claim_maps_to_no_role_is_refused(sso: Sso, page: Any) -> None:
    sign_in(page, sso.gw, "carol")
    message = login_error(page)
    assert "carol@example.com is signed in, but has no role on this gateway" in message
    assert "'groups'" in message and "'marketing'" in message
    assert cookie(page, "gw_session") is None
    shot(page, "no-role")
    page.goto(sso.gw.url + "/ui/")
    assert urlsplit(page.url).path == "/ui/login"


def test_role_claim_from_userinfo_and_sessions_expire(sso: Sso, page: Any) -> None:
    gw = sso.short  # team_roles is only in userinfo; sessions last 4 seconds
    sign_in(page, gw, "bob")
    page.wait_for_url(gw.url + "/ui/")
    assert "reviewer of search" in page.locator(".who").inner_text()
    session = cookie(page, "gw_session")
    assert session is not None
    value = session["value"]
    time.sleep(max(0.0, session["expires"] - time.time()) + 0.5)
    page.goto(gw.url + "/ui/")
    assert urlsplit(page.url).path == "/ui/login"
    # The server checks the expiry it signed, not only the browser: a kept copy is refused too.
    r = httpx.get(gw.url + "/ui/", cookies={"gw_session": value}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"


# --- refused sign-ins ----------------------------------------------------------------------------


def test_forged_state_is_refused(sso: Sso, page: Any) -> None:
    """The browser started a sign-in; an answer arrives with a genuine, unused code for that
    very request (same PKCE challenge and nonce) but another ``state``: refused."""
    gw = sso.gw

    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url))

    def started_request() -> dict[str, str]:
        sent.clear()
        page.goto(gw.url + "/ui/login")
        page.click("#sso")
        page.wait_for_selector('input[name="login"]')
        auth = next(u for u in sent if u.startswith(sso.idp.url + "/auth?"))
        return {k: v[0] for k, v in parse_qs(urlsplit(auth).query).items()}

    request = started_request()
    code = sso.idp.authorize("alice", request)
    page.goto(gw.url + "/ui/oidc/callback?" + urlencode({"code": code, "state": "forged"}))
    assert "does not match the sign-in this browser started (state)" in login_error(page)
    assert cookie(page, "gw_session") is None
    shot(page, "forged-state")
    # The attempt is spent: its state cookie is gone, so even the right state fails now.
    page.goto(gw.url + "/ui/oidc/callback?" + urlencode({"code": code,
                                                         "state": request["state"]}))
    assert "not started in this browser" in login_error(page)
    assert cookie(page, "gw_session") is None
    # The same construction with the right state signs in: only the state was wrong above.
    request = started_request()
    code = sso.idp.authorize("alice", request)
    page.goto(gw.url + "/ui/oidc/callback?" + urlencode({"code": code,
                                                         "state": request["state"]}))
    page.wait_for_url(gw.url + "/ui/")
    assert "oidc:alice@example.com" in page.locator(".who").inner_text()


def test_planted_callback_without_a_started_sign_in_is_refused(sso: Sso) -> None:
    """Login CSRF: an attacker's own code and state, sent to a victim's browser."""
    r = httpx.get(sso.gw.url + "/ui/oidc/callback", params={"code": "attacker-code",
                                                             "state": "attacker-state"})
    assert r.status_code == 400 and "not started in this browser" in r.text
    assert "gw_session" not in r.headers.get("set-cookie", "")


def test_sign_in_state_cookie_binds_state_nonce_and_pkce(sso: Sso) -> None:
    r = httpx.get(sso.gw.url + "/ui/oidc/login", follow_redirects=False)
    assert r.status_code == 303
    target = urlsplit(r.headers["location"])
    assert f"{target.scheme}://{target.netloc}" == sso.idp.url
    q = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert q["response_type"] == "code" and q["code_challenge_method"] == "S256"
    assert q["redirect_uri"] == sso.gw.url + "/ui/oidc/callback"
    set_cookie = r.headers["set-cookie"]
    assert set_cookie.startswith("gw_oidc=")
    for attr in ("HttpOnly", "Max-Age=600", "Path=/ui/oidc", "SameSite=lax"):
        assert attr in set_cookie
    payload = set_cookie.split("=", 1)[1].split(";")[0].split(".")[0]
    sealed = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert sealed["s"] == q["state"] and sealed["n"] == q["nonce"]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(sealed["v"].encode()).digest())
    assert challenge.decode().rstrip("=") == q["code_challenge"]
    # The cookie is signed: changing the state in it voids it.
    forged = orjson.dumps({**sealed, "s": "mine"})
    value = base64.urlsafe_b64encode(forged).decode().rstrip("=") + "." + set_cookie.split(
        "=", 1)[1].split(";")[0].split(".")[1]
    r = httpx.get(sso.gw.url + "/ui/oidc/callback", params={"code": "x", "state": "mine"},
                  cookies={"gw_oidc": value})
    assert r.status_code == 400 and "not started in this browser" in r.text


@pytest.mark.parametrize(("mode", "message"), [
    ("tampered", "signature does not verify"),
    ("wrong-aud", "issued for another audience"),
    ("expired", "The token has expired"),
    ("unknown-key", "signed with a key the identity provider does not publish"),
])
def test_bad_id_tokens_are_refused(sso: Sso, page: Any, mode: str, message: str) -> None:
    sso.idp.control("next", mode=mode)  # the provider's next token answer carries a bad token
    try:
        sign_in(page, sso.gw, "alice")
    finally:
        sso.idp.control("next", mode="")  # spent, or cleared if the sign-in never got there
    assert message in login_error(page)
    assert cookie(page, "gw_session") is None
    shot(page, f"id-token-{mode}")


def test_key_login_still_works_next_to_sso(sso: Sso) -> None:
    c = httpx.Client(base_url=sso.gw.url, follow_redirects=False)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/ui/login").text)
    assert token is not None
    r = c.post("/ui/login", data={"csrf": token.group(1), "key": ADMIN_KEY})
    assert r.status_code == 303
    assert c.get("/ui/").status_code == 200
