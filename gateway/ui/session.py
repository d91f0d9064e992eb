"""Sessions of the review page: an HMAC-signed cookie naming the key's digest or the signed-in
user, plus CSRF tokens.

The cookie holds no secret: the SHA-256 digest of the key used to log in (never the key) or, after
single sign-on, the user's name and the values of their role claim that the config maps; then a
per-session CSRF token and an expiry, signed with ``server.session_secret``. Without that setting
the signing key is derived from the admin key digests (and the OIDC client secret), so every
replica of one deployment agrees and rotating the admin keys logs everyone out. Each request maps
the digest or the claim values back to a principal through the *current* configuration, so a
reviewer key or a role mapping removed from the config stops working at once even with a valid
cookie.

Cookies are HttpOnly (scripts cannot read them), SameSite=Strict (other sites cannot make the
browser send them) and Secure over HTTPS; every form post must also carry the session's CSRF token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.settings import Settings, key_digest

COOKIE = "gw_session"
LOGIN_CSRF_COOKIE = "gw_login_csrf"
TTL_S = 12 * 3600


@dataclass(frozen=True, slots=True)
class SsoUser:
    """Who signed in with OIDC: a display name and their role-claim values that the config maps."""

    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Session:
    digest: str  # the key's SHA-256; "" for a single sign-on session
    csrf: str
    expires: float
    user: SsoUser | None = None


def session_secret(settings: Settings) -> bytes:
    if settings.server.session_secret:
        return settings.server.session_secret.encode()
    digests = sorted(key_digest(k) for k in settings.server.admin_keys)
    if not digests:  # no admin key: only reviewers can log in; their digests stand in
        digests = sorted(key_digest(k) for t in settings.teams for k in t.reviewer_keys)
    material = "\0".join(digests).encode()
    if settings.oidc is not None and settings.oidc.client_secret:
        # A session may name any user: settings guarantee a secret the config does not show.
        material += b"\0oidc\0" + settings.oidc.client_secret.encode()
    return hashlib.sha256(b"gateway-ui-session-v1\0" + material).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    def __init__(self, secret: bytes, ttl_s: float = TTL_S) -> None:
        self._secret = secret
        self._ttl_s = ttl_s

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def seal(self, data: dict[str, Any]) -> str:
        """``data`` as a signed cookie value (readable by the client, not changeable)."""
        payload = _b64(orjson.dumps(data))
        return f"{payload}.{self._sign(payload)}"

    def unseal(self, value: str | None, now: float | None = None) -> dict[str, Any] | None:
        """What ``seal`` signed, or None when missing, tampered with or past its "e" time."""
        if not value or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = orjson.loads(_unb64(payload))
            expired = float(data["e"]) < (time.time() if now is None else now)
        except (ValueError, KeyError, TypeError):
            return None
        return None if expired or not isinstance(data, dict) else data

    def issue(self, key: str, now: float | None = None) -> tuple[str, Session]:
        return self._issue(hashlib.sha256(key.encode()).hexdigest(), None, self._ttl_s, now)

    def issue_sso(self, user: SsoUser, ttl_s: float, now: float | None = None
                  ) -> tuple[str, Session]:
        return self._issue("", user, ttl_s, now)

    def _issue(self, digest: str, user: SsoUser | None, ttl_s: float, now: float | None
               ) -> tuple[str, Session]:
        now = time.time() if now is None else now
        session = Session(digest=digest, csrf=secrets.token_urlsafe(24), expires=now + ttl_s,
                          user=user)
        data: dict[str, Any] = {"d": digest, "c": session.csrf, "e": session.expires}
        if user is not None:
            data["u"] = [user.name, list(user.values)]
        return self.seal(data), session

    def read(self, value: str | None, now: float | None = None) -> Session | None:
        """The session in a cookie, or None when missing, tampered with or expired."""
        data = self.unseal(value, now)
        if data is None:
            return None
        try:
            user = None
            if "u" in data:
                name, values = data["u"]
                user = SsoUser(str(name), tuple(str(v) for v in values))
            return Session(digest=str(data["d"]), csrf=str(data["c"]), expires=float(data["e"]),
                           user=user)
        except (ValueError, KeyError, TypeError):
            return None


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given), expected)
