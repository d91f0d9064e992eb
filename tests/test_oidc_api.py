"""OIDC bearer tokens on the admin API, against a real OpenID provider (oidc-provider under Node).

Tokens from the provider itself (client_credentials JWT access tokens, and the ID token of a code
flow) are accepted and mapped by the role claim; tokens that are expired, for another audience,
changed after signing, forged (another key, ``alg: none``, HMAC with the public key, another
issuer, a logout token) or signed by an unknown key are refused, and unknown key ids cannot make
the gateway flood the provider. A provider that is down gives 503, not a guess.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from gateway.stores.sql.flags import flag_id
from tests.flagdata import submit
from tests.gateway_runner import RunningGateway, free_port, run_gateway
from tests.helpers import ADMIN_KEY, base_config
from tests.oidc_idp import ADMIN_RESOURCE, CLIENT_ID, OTHER_RESOURCE, Idp, new_key, run_idp
from tests.test_oidc_ui import sso_config
from tests.ui.test_review_ui import queue_items

MIN_REFRESH_S = 2.0


@dataclass
class Api:
    idp: Idp
    gw: RunningGateway

    def get(self, path: str, token: str) -> httpx.Response:
        return httpx.get(self.gw.url + path, headers={"authorization": f"Bearer {token}"},
                         timeout=30)


@pytest.fixture(scope="module")
def api(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Api]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with run_idp(pytestconfig, [url]) as idp:
        cfg = sso_config(url, idp, tmp_path_factory.mktemp("sso-api"),
                         jwks_min_refresh_s=MIN_REFRESH_S)
        with run_gateway(cfg, port=port) as gw:
            submit(gw, *queue_items())
            yield Api(idp, gw)


def claims(idp: Idp, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": idp.url, "sub": "mallory", "aud": ADMIN_RESOURCE, "iat": now,
            "exp": now + 300, "groups": ["gw-admins"], **over}


def error_of(r: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()["error"]
    return body


def test_service_tokens_map_to_admin_and_to_a_team_reviewer(api: Api) -> None:
    admin = api.idp.client_credentials("bot-admin")
    r = api.get("/admin/flags?status=open", admin)
    assert r.status_code == 200, r.text
    assert len(r.json()["items"]) == 7

    reviewer = api.idp.client_credentials("bot-reviewer")
    r = api.get("/admin/flags?status=open", reviewer)
    assert r.status_code == 200
    assert {i["team"] for i in r.json()["items"]} == {"search"}
    assert api.get(f"/admin/flags/{flag_id('req-b1')}", reviewer).status_code == 404
    assert api.get(f"/admin/flags/{flag_id('req-a1')}", reviewer).status_code == 200
    assert api.get("/admin/teams/other/budget", reviewer).status_code == 404
    r = httpx.post(api.gw.url + "/admin/keys", json={"team": "search", "name": "x"},
                   headers={"authorization": f"Bearer {reviewer}"})
    assert r.status_code == 403  # creating keys is for admins

    # A verdict through the API names the service.
    r = httpx.post(f"{api.gw.url}/admin/flags/{flag_id('req-a2')}/review",
                   json={"verdict": "dismissed", "note": "known host"},
                   headers={"authorization": f"Bearer {reviewer}"})
    assert r.status_code == 200, r.text
    assert r.json()["reviews"][-1]["reviewer"] == "oidc:bot-reviewer"


def test_id_token_of_a_code_flow_is_accepted(api: Api) -> None:
    tokens = api.idp.code_flow("bob", api.gw.url + "/ui/oidc/callback")
    r = api.get("/admin/flags", tokens["id_token"])
    assert r.status_code == 200, r.text
    assert {i["team"] for i in r.json()["items"]} == {"search"}
    # The code flow's access token is opaque (no resource was asked for): not a JWT, not a key.
    assert api.get("/admin/flags", tokens["access_token"]).status_code == 401


def test_token_whose_claim_maps_to_no_role_is_forbidden(api: Api) -> None:
    r = api.get("/admin/flags", api.idp.client_credentials("bot-norole"))
    assert r.status_code == 403
    err = error_of(r)
    assert err["type"] == "permission_error"
    assert "bot-norole is signed in, but has no role" in err["message"]
    assert "'marketing'" in err["message"]


def test_wrong_audience_expired_and_tampered_tokens_are_refused(api: Api) -> None:
    other = api.idp.client_credentials("bot-admin", resource=OTHER_RESOURCE)
    r = api.get("/admin/flags", other)
    assert r.status_code == 401 and "issued for another audience" in error_of(r)["message"]

    short = api.idp.client_credentials("bot-short")  # the provider gives it 1 second
    exp = jwt.decode(short, options={"verify_signature": False})["exp"]
    assert api.get("/admin/flags", short).status_code == 200
    time.sleep(max(0.0, exp - time.time()) + 1.1)
    r = api.get("/admin/flags", short)
    assert r.status_code == 401 and error_of(r)["message"] == "The token has expired."

    # A reviewer's token changed after signing to claim the admin group.
    head, payload, sig = api.idp.client_credentials("bot-reviewer").split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "==="))
    body["groups"] = ["gw-admins"]
    changed = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    r = api.get("/admin/flags", f"{head}.{changed}.{sig}")
    assert r.status_code == 401 and "signature does not verify" in error_of(r)["message"]


def test_forged_tokens_are_refused(api: Api) -> None:
    idp = api.idp
    mine, _ = new_key("k1")  # the attacker's own key, under the provider's key id
    cases = {
        "another key, same kid": idp.sign(claims(idp), key=mine),
        "another issuer": idp.sign(claims(idp, iss="https://evil.example")),
        "no expiry": idp.sign({k: v for k, v in claims(idp).items() if k != "exp"}),
        "alg none": jwt.encode(claims(idp), None, algorithm="none"),
        "logout token": jwt.encode(claims(idp), idp.keys["k1"][0], algorithm="RS256",
                                   headers={"kid": "k1", "typ": "logout+jwt"}),
        "another algorithm than the key's": jwt.encode(claims(idp), idp.keys["k1"][0],
                                                        algorithm="PS256", headers={"kid": "k1"}),
    }
    public_pem = idp.keys["k1"][0].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    head = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"k1","typ":"JWT"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims(idp)).encode()).rstrip(b"=")
    mac = hmac.new(public_pem, head + b"." + body, hashlib.sha256).digest()
    cases["HMAC with the public key"] = (head + b"." + body + b"." + base64.urlsafe_b64encode(
        mac).rstrip(b"=")).decode()
    for name, token in cases.items():
        r = api.get("/admin/flags", token)
        assert r.status_code == 401, (name, r.text)
        assert error_of(r)["type"] == "authentication_error", name
    # Properly signed by the provider's key, the same claims pass: the refusals were the forgery.
    assert api.get("/admin/flags", idp.sign(claims(idp))).status_code == 200


def test_admin_tokens_are_not_client_keys(api: Api) -> None:
    token = api.idp.client_credentials("bot-admin")
    r = httpx.post(api.gw.url + "/v1/chat/completions", json={
        "model": "mock", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_keys_are_refetched_on_rotation_but_unknown_kids_cannot_flood(api: Api) -> None:
    idp = api.idp
    assert api.get("/admin/flags", idp.client_credentials("bot-admin")).status_code == 200
    before = idp.control("stats")["jwks_fetches"]
    time.sleep(MIN_REFRESH_S + 0.1)
    idp.control("rotate")  # the provider now publishes k2 and signs with it
    rotated = idp.client_credentials("bot-admin")
    assert jwt.get_unverified_header(rotated)["kid"] == "k2"
    assert api.get("/admin/flags", rotated).status_code == 200
    assert idp.control("stats")["jwks_fetches"] == before + 1

    stranger, _ = new_key("x")
    started = time.monotonic()
    for _ in range(15):
        r = api.get("/admin/flags", idp.sign(claims(idp), kid=uuid.uuid4().hex, key=stranger))
        assert r.status_code == 401
        assert "key the identity provider does not publish" in error_of(r)["message"]
    elapsed = time.monotonic() - started
    extra = idp.control("stats")["jwks_fetches"] - before - 1
    assert extra <= 1 + int(elapsed / MIN_REFRESH_S), (extra, elapsed)
    assert api.get("/admin/flags", rotated).status_code == 200


def test_provider_down_gives_503_and_key_login_still_works(tmp_path: Path) -> None:
    dead = f"http://127.0.0.2:{free_port()}"
    url = f"http://127.0.0.1:{free_port()}"
    cfg = base_config("http://127.0.0.1:9/v1", tmp_path)
    cfg["oidc"] = {"issuer": dead, "client_id": CLIENT_ID, "client_secret": "s" * 20,
                   "redirect_base_url": url, "roles": {"gw-admins": "admin"}, "timeout_s": 2}
    with run_gateway(cfg, port=int(url.rsplit(":", 1)[1])) as gw:
        forged = jwt.encode({"sub": "x"}, "k" * 32, algorithm="HS256")
        token = jwt.encode({"sub": "x"}, new_key("k1")[0], algorithm="RS256",
                           headers={"kid": "k1"})
        r = httpx.get(gw.url + "/admin/flags", headers={"authorization": f"Bearer {token}"})
        assert r.status_code == 503 and error_of(r)["code"] == "oidc_unavailable"
        assert "could not be reached" in error_of(r)["message"]
        r = httpx.get(gw.url + "/admin/flags", headers={"authorization": f"Bearer {forged}"})
        assert r.status_code == 401  # refused before any fetch: HMAC is never accepted
        r = httpx.get(gw.url + "/ui/oidc/login")
        assert r.status_code == 503 and "could not be reached" in r.text
        r = httpx.get(gw.url + "/admin/flags", headers={"authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 200
