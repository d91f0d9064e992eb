"""Sessions of the review page: an HMAC-signed cookie naming the key's digest, plus CSRF tokens.

The cookie holds no secret: the SHA-256 digest of the key used to log in (never the key), a
per-session CSRF token and an expiry, signed with ``server.session_secret``. Without that setting
the signing key is derived from the admin key digests, so every replica of one deployment agrees
and rotating the admin keys logs everyone out. Each request maps the digest back to a principal
through the *current* configuration, so a reviewer key removed from the config stops working at
once even with a valid cookie.

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

import orjson

from gateway.settings import Settings, key_digest

COOKIE = "gw_session"
LOGIN_CSRF_COOKIE = "gw_login_csrf"
TTL_S = 12 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    digest: str
    csrf: str
    expires: float


def session_secret(settings: Settings) -> bytes:
    if settings.server.session_secret:
        return settings.server.session_secret.encode()
    digests = sorted(key_digest(k) for k in settings.server.admin_keys)
    if not digests:  # no admin key: only reviewers can log in; their digests stand in
        digests = sorted(key_digest(k) for t in settings.teams for k in t.reviewer_keys)
    return hashlib.sha256(b"gateway-ui-session-v1\0" + "\0".join(digests).encode()).digest()


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

    def issue(self, key: str, now: float | None = None) -> tuple[str, Session]:
        now = time.time() if now is None else now
        session = Session(digest=hashlib.sha256(key.encode()).hexdigest(),
                          csrf=secrets.token_urlsafe(24), expires=now + self._ttl_s)
        payload = _b64(orjson.dumps({"d": session.digest, "c": session.csrf,
                                     "e": session.expires}))
        return f"{payload}.{self._sign(payload)}", session

    def read(self, value: str | None, now: float | None = None) -> Session | None:
        """The session in a cookie, or None when missing, tampered with or expired."""
        if not value or value.count(".") != 1:
            return None
        payload, signature = value.split(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = orjson.loads(_unb64(payload))
            session = Session(digest=str(data["d"]), csrf=str(data["c"]),
                              expires=float(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < (time.time() if now is None else now):
            return None
        return session


def same_token(given: str | None, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given), expected)
