"""Single sign-on for the review page: the OpenID Connect authorization code flow with PKCE.

``/ui/oidc/login`` starts a sign-in: a fresh ``state``, ``nonce`` and PKCE verifier go into a
short-lived signed cookie, and the browser goes to the identity provider. That cookie is
SameSite=Lax because the browser must send it on the IdP's cross-site redirect back, which a
Strict cookie is not; it is HttpOnly, scoped to ``/ui/oidc`` and good for one attempt.

``/ui/oidc/callback`` refuses an answer whose ``state`` is not the one in this browser's cookie
(a forged callback, or someone else's code planted in this browser), exchanges the code with the
verifier, verifies the ID token (signature by the issuer's keys, issuer, audience, expiry, nonce),
reads the role claim (from userinfo when the ID token lacks it) and maps it to admin or a team's
reviewer. Only then does it set the usual Strict session cookie; a user whose claim maps to no
role gets no session and a message saying why.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from gateway.auth import Authenticator, no_role_message
from gateway.errors import GatewayError
from gateway.settings import OidcSettings
from gateway.ui.session import COOKIE, SessionCodec, SsoUser, same_token

if TYPE_CHECKING:
    from gateway.oidc import OidcProvider

STATE_COOKIE = "gw_oidc"
STATE_PATH = "/ui/oidc"
STATE_TTL_S = 600
CALLBACK_PATH = "/ui/oidc/callback"

LoginPage = Callable[[Request, str, int], Awaitable[Response]]


class SignInFailed(GatewayError):
    """A sign-in that cannot finish; the message is shown on the login page."""

    status = 403
    type = "permission_error"
    code = "sign_in_failed"

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self._status = status

    def http_status(self) -> int:
        return self._status


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class OidcSignIn:
    def __init__(self, provider: OidcProvider, auth: Authenticator, codec: SessionCodec,
                 login_page: LoginPage) -> None:
        self.provider = provider
        self.settings: OidcSettings = provider.settings
        self.auth = auth
        self.codec = codec
        self.login_page = login_page
        self.redirect_uri = self.settings.redirect_base_url + CALLBACK_PATH
        self.secure = self.settings.redirect_base_url.startswith("https://")

    async def start(self, request: Request) -> Response:
        try:
            meta = await self.provider.metadata()
        except GatewayError as exc:
            return await self.login_page(request, exc.message, exc.http_status())
        state, nonce, verifier = (secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                                  secrets.token_urlsafe(48))
        params = {
            "response_type": "code", "client_id": self.settings.client_id,
            "redirect_uri": self.redirect_uri, "scope": " ".join(self.settings.scopes),
            "state": state, "nonce": nonce, "code_challenge_method": "S256",
            "code_challenge": _b64(hashlib.sha256(verifier.encode()).digest()),
        }
        sep = "&" if "?" in meta.authorization_endpoint else "?"
        response = RedirectResponse(meta.authorization_endpoint + sep + urlencode(params),
                                    status_code=303)
        sealed = self.codec.seal({"s": state, "n": nonce, "v": verifier,
                                  "e": time.time() + STATE_TTL_S})
        response.set_cookie(STATE_COOKIE, sealed, max_age=STATE_TTL_S, path=STATE_PATH,
                            httponly=True, samesite="lax", secure=self.secure)
        response.headers["cache-control"] = "no-store"
        return response

    async def callback(self, request: Request) -> Response:
        started = self.codec.unseal(request.cookies.get(STATE_COOKIE))
        try:
            user = await self._finish(request.query_params, started)
        except GatewayError as exc:
            response = await self.login_page(request, exc.message, exc.http_status())
        else:
            value, _ = self.codec.issue_sso(user, self.settings.session_ttl_s)
            # A page, not a redirect: a Strict cookie is not sent on a redirect chain that
            # began on another site, so /ui/ must be a fresh navigation from this one.
            response = Response(
                '<!doctype html><meta http-equiv="refresh" content="0; url=/ui/">'
                '<title>Signed in</title><a href="/ui/">Continue to the review queue</a>',
                media_type="text/html", headers={
                    "cache-control": "no-store", "referrer-policy": "no-referrer",
                    "x-frame-options": "DENY",
                    "content-security-policy": "default-src 'none'; frame-ancestors 'none'"})
            response.set_cookie(COOKIE, value, max_age=int(self.settings.session_ttl_s),
                                path="/ui", httponly=True, samesite="strict", secure=self.secure)
        response.delete_cookie(STATE_COOKIE, path=STATE_PATH, httponly=True, samesite="lax",
                               secure=self.secure)  # one attempt per state
        return response

    async def _finish(self, q: QueryParams, started: dict[str, Any] | None) -> SsoUser:
        if started is None:
            raise SignInFailed("This sign-in was not started in this browser, or took longer "
                               "than 10 minutes. Please sign in again.", 400)
        if not same_token(q.get("state"), str(started.get("s", ""))):
            raise SignInFailed("The answer from the identity provider does not match the "
                               "sign-in this browser started (state). Please sign in again.")
        if q.get("error"):
            detail = ": " + q["error_description"] if q.get("error_description") else ""
            raise SignInFailed(f"The identity provider refused the sign-in: {q['error']}"
                               f"{detail[:200]}.")
        if not q.get("code"):
            raise SignInFailed("The identity provider sent no authorization code.", 400)
        tokens = await self._exchange(q["code"], str(started["v"]))
        claims = await self.provider.verify_id_token(tokens["id_token"], nonce=str(started["n"]))
        if not self.provider.has_role_claim(claims) and isinstance(tokens.get("access_token"),
                                                                   str):
            claims = await self._with_userinfo(claims, tokens["access_token"])
        who = self.provider.identity(claims)
        if self.auth.sso(who.name, who.values) is None:
            raise SignInFailed(no_role_message(who.name, self.settings.role_claim, who.values))
        return SsoUser(who.name, tuple(v for v in who.values if v in self.settings.roles))

    async def _exchange(self, code: str, verifier: str) -> dict[str, Any]:
        """The token endpoint's answer to the code (client_secret_basic, or _post if that is
        all the IdP takes; a public client sends only its id and the PKCE verifier)."""
        meta = await self.provider.metadata()
        s = self.settings
        data = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.redirect_uri, "code_verifier": verifier}
        headers = {"accept": "application/json"}
        if s.client_secret is None:
            data["client_id"] = s.client_id
        elif ("client_secret_basic" in meta.token_auth_methods
              or "client_secret_post" not in meta.token_auth_methods):
            pair = f"{quote(s.client_id, safe='')}:{quote(s.client_secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            data.update(client_id=s.client_id, client_secret=s.client_secret)
        status, body = await self.provider.request_json("POST", meta.token_endpoint, data=data,
                                                        headers=headers)
        if status == 200 and isinstance(body, dict) and isinstance(body.get("id_token"), str):
            return body
        error = body.get("error") if isinstance(body, dict) else None
        raise SignInFailed(f"The identity provider did not accept the sign-in code "
                           f"({status}{', ' + str(error)[:80] if error else ''}). "
                           "Please sign in again.", 502 if status >= 500 else 400)

    async def _with_userinfo(self, claims: dict[str, Any], access_token: str
                             ) -> dict[str, Any]:
        meta = await self.provider.metadata()
        if meta.userinfo_endpoint is None:
            return claims
        status, info = await self.provider.request_json(
            "GET", meta.userinfo_endpoint,
            headers={"authorization": f"Bearer {access_token}", "accept": "application/json"})
        if status != 200 or not isinstance(info, dict):
            raise SignInFailed(f"The identity provider's userinfo endpoint answered {status}.",
                               502)
        if info.get("sub") != claims.get("sub"):  # Core 1.0 section 5.3.2: must be the same user
            raise SignInFailed("The identity provider's userinfo is about another user.", 502)
        return {**info, **claims}

    async def logout_url(self) -> str:
        """Where the browser goes after log-out: the IdP's end-session page when it has one
        (RP-initiated logout, coming back to /ui/login), else straight to /ui/login."""
        if not self.settings.logout_at_provider:
            return "/ui/login"
        try:
            meta = await self.provider.metadata()
        except GatewayError:
            return "/ui/login"
        if meta.end_session_endpoint is None:
            return "/ui/login"
        params = {"client_id": self.settings.client_id,
                  "post_logout_redirect_uri": self.settings.redirect_base_url + "/ui/login"}
        sep = "&" if "?" in meta.end_session_endpoint else "?"
        return meta.end_session_endpoint + sep + urlencode(params)
