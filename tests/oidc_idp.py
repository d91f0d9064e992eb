"""A real OpenID provider for the single sign-on tests: oidc-provider (npm) under Node.

``run_idp`` installs the npm packages from ``tests/oidc/package-lock.json`` on first use
(``npm ci``; ``tests/prepare.sh`` does the same ahead of time), writes the provider's users,
clients and signing keys to a file, starts ``node tests/oidc/idp.mjs`` and waits for its
discovery document. Without Node and npm the tests are skipped with the reason printed, or fail
under CI=true.

The provider listens on 127.0.0.2, the gateway on 127.0.0.1: two different sites to the browser,
so the sign-in makes the same cross-site redirects as against a real IdP (and SameSite=Strict
cookies behave as they will in production).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.gateway_runner import free_port
from tests.services import _unavailable

HERE = Path(__file__).resolve().parent / "oidc"
HOST = "127.0.0.2"
CLIENT_ID = "gateway"
CLIENT_SECRET = "gateway-client-secret-for-the-tests"
ADMIN_RESOURCE = "https://gateway.test/admin"
OTHER_RESOURCE = "https://other.test/api"
BOT_SECRET = "bot-secret-for-the-tests"

USERS: dict[str, Any] = {
    "alice": {"claims": {"email": "alice@example.com", "name": "Alice Admin",
                         "groups": ["staff", "gw-admins"]}},
    "bob": {"claims": {"email": "bob@example.com", "name": "Bob Reviewer",
                       "groups": ["staff", "search-reviewers"]},
            "userinfo_only": {"team_roles": ["search-review"]}},
    "carol": {"claims": {"email": "carol@example.com", "name": "Carol Marketing",
                         "groups": ["staff", "marketing"]}},
}
#: Service clients for the admin API, with the groups their client_credentials tokens carry.
BOTS = {"bot-admin": ["gw-admins"], "bot-reviewer": ["search-reviewers"],
        "bot-norole": ["marketing"], "bot-short": ["gw-admins"]}


def new_key(kid: str) -> tuple[rsa.RSAPrivateKey, dict[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key, as_dict=True)
    return key, {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


def install(config: pytest.Config) -> str:
    """The node binary, with tests/oidc/node_modules installed from the lock file."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable(config, "no node/npm for the single sign-on tests (Node 20+ and npm)")
    if not (HERE / "node_modules" / "oidc-provider" / "package.json").exists():
        with open(HERE / ".install.lock", "w") as lock:  # one installer at a time
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (HERE / "node_modules" / "oidc-provider" / "package.json").exists():
                done = subprocess.run(
                    [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=HERE,
                    capture_output=True, text=True, timeout=600, check=False)
                if done.returncode != 0:
                    _unavailable(config, "npm ci in tests/oidc failed: "
                                         f"{(done.stderr or done.stdout)[-800:]}")
    return node


class Idp:
    """A running provider: its issuer URL, signing keys and the test controls."""

    def __init__(self, port: int, keys: dict[str, tuple[rsa.RSAPrivateKey, dict[str, Any]]]
                 ) -> None:
        self.url = f"http://{HOST}:{port}"
        self.keys = keys
        self.proc: subprocess.Popen[bytes] | None = None

    def control(self, what: str, **params: str) -> dict[str, Any]:
        r = httpx.get(f"{self.url}/__test/{what}", params=params, timeout=10)
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def client_credentials(self, client_id: str, resource: str = ADMIN_RESOURCE) -> str:
        r = httpx.post(f"{self.url}/token", auth=(client_id, BOT_SECRET), timeout=10, data={
            "grant_type": "client_credentials", "resource": resource, "scope": "admin"})
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        assert token.count(".") == 2  # a JWT access token (RFC 9068)
        return token

    def sign(self, claims: dict[str, Any], *, kid: str = "k1",
             key: rsa.RSAPrivateKey | None = None) -> str:
        """A token signed with one of the provider's own keys (or ``key``), for edge cases."""
        signing = key if key is not None else self.keys[kid][0]
        return jwt.encode(claims, signing, algorithm="RS256", headers={"kid": kid})

    def authorize(self, user: str, request: dict[str, str]) -> str:
        """Sign ``user`` in at the authorization endpoint over HTTP (the development login
        form) with these request parameters; the code the provider sends back."""
        with httpx.Client(base_url=self.url, follow_redirects=False, timeout=10) as c:
            r = c.get("/auth?" + urlencode(request))
            form = c.get(r.headers["location"]).text
            action = re.search(r'action="([^"]+)"', form)
            assert action is not None, form
            r = c.post(urljoin(self.url, action.group(1)),
                       data={"prompt": "login", "login": user, "password": "pw"})
            while not r.headers["location"].startswith(request["redirect_uri"]):
                r = c.get(r.headers["location"])
            query = parse_qs(urlsplit(r.headers["location"]).query)
            assert query["state"] == [request["state"]]
            return query["code"][0]

    def code_flow(self, user: str, redirect_uri: str) -> dict[str, Any]:
        """The whole authorization code flow with PKCE as the gateway's client: the provider's
        token answer (ID token and access token), as a command-line tool would get it."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        code = self.authorize(user, {
            "client_id": CLIENT_ID, "redirect_uri": redirect_uri, "response_type": "code",
            "scope": "openid email profile groups", "state": "s", "nonce": "n",
            "code_challenge": challenge.decode().rstrip("="), "code_challenge_method": "S256"})
        r = httpx.post(f"{self.url}/token", auth=(CLIENT_ID, CLIENT_SECRET), timeout=10, data={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": verifier})
        assert r.status_code == 200, r.text
        tokens: dict[str, Any] = r.json()
        return tokens


@contextlib.contextmanager
def run_idp(config: pytest.Config, gateway_urls: list[str]) -> Iterator[Idp]:
    """A provider whose ``gateway`` client may redirect to each of these gateways."""
    node = install(config)
    port = free_port()
    keys = {kid: new_key(kid) for kid in ("k1", "k2", "k3")}
    idp = Idp(port, keys)
    gateway = {
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
        "redirect_uris": [u + "/ui/oidc/callback" for u in gateway_urls],
        "post_logout_redirect_uris": [u + "/ui/login" for u in gateway_urls],
        "grant_types": ["authorization_code"], "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    bots = [{"client_id": b, "client_secret": BOT_SECRET, "grant_types": ["client_credentials"],
             "response_types": [], "redirect_uris": []} for b in BOTS]
    options = {"host": HOST, "port": port, "keys": {k: v[1] for k, v in keys.items()},
               "clients": [gateway, *bots], "users": USERS, "client_groups": BOTS,
               "resources": [ADMIN_RESOURCE, OTHER_RESOURCE]}
    with tempfile.TemporaryDirectory(prefix="gw-idp-") as tmp:
        opts = Path(tmp) / "idp.json"
        opts.write_text(json.dumps(options))
        log = Path(tmp) / "idp.log"
        with log.open("wb") as out:
            idp.proc = subprocess.Popen([node, str(HERE / "idp.mjs"), str(opts)], cwd=HERE,
                                        stdout=out, stderr=subprocess.STDOUT,
                                        env={**os.environ, "NODE_ENV": "test"})
        try:
            _wait(idp, log)
            yield idp
        finally:
            idp.proc.terminate()
            try:
                idp.proc.wait(10)
            except subprocess.TimeoutExpired:
                idp.proc.kill()
                idp.proc.wait(10)


def _wait(idp: Idp, log: Path, timeout_s: float = 30) -> None:
    assert idp.proc is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if idp.proc.poll() is not None:
            raise RuntimeError(f"the test IdP exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(idp.url + "/.well-known/openid-configuration",
                         timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the test IdP did not start: {log.read_text()[-2000:]}")
