"""OpenID Connect for the gateway: the issuer's metadata and signing keys, token checks, identities.

Used by the review page's sign-in (``gateway/ui/oidc.py``) and by the admin API's bearer tokens
(``gateway/auth.py``). The discovery document and the JWKS are fetched with aiohttp, with a
timeout and a size cap, lazily on first use and single-flight: a gateway starts even while its
identity provider is down, and a token cannot be verified until it answers (503, never a guess).

Signing keys are cached for ``jwks_cache_s``; a token naming an unknown key id re-fetches them
(the IdP rotated its keys), at most once per ``jwks_min_refresh_s`` so that forged key ids cannot
turn the gateway into a flood against the IdP. Only asymmetric algorithms are accepted, so a
token "signed" with the public key as an HMAC secret, or with ``alg: none``, is refused.

This module imports PyJWT, the ``oidc`` extra: it is imported only when ``oidc:`` is configured.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import orjson

from gateway.errors import AuthenticationFailed, Unavailable
from gateway.settings import OidcSettings, is_loopback_host

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
              "EdDSA")
MAX_DOCUMENT_BYTES = 512 * 1024
ACCEPTED_TYP = ("jwt", "at+jwt", "application/at+jwt")  # not logout tokens and the like
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
RETRY_AFTER_S = 2.0  # while the IdP is unreachable, callers share one failure for this long

log = logging.getLogger("gateway.oidc")


@dataclass(frozen=True, slots=True)
class Metadata:
    """The parts of the issuer's discovery document the gateway uses."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    token_auth_methods: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified user or service: a display name and the values of the role claim."""

    subject: str
    name: str
    values: tuple[str, ...]


class ProviderUnavailable(Unavailable):
    def __init__(self, message: str) -> None:
        super().__init__(message, code="oidc_unavailable")


class TokenRejected(AuthenticationFailed):
    """A token that is not valid for this gateway; the message says which check failed."""


def _check_endpoint(url: Any, name: str, issuer_is_loopback: bool) -> str:
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise ProviderUnavailable(f"The identity provider's discovery document has no valid "
                                  f"{name}.")
    if url.startswith("http://") and not (issuer_is_loopback
                                          and is_loopback_host(urlsplit(url).hostname)):
        raise ProviderUnavailable(f"The identity provider's {name} is not https: {url}")
    return url


def claim_values(claims: dict[str, Any], path: str) -> tuple[str, ...]:
    """The string values at a claim path: a string, or a list of strings (others ignored)."""
    node: Any = claims
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, str):
        return (node,)
    if isinstance(node, list):
        return tuple(v for v in node if isinstance(v, str))
    return ()


class OidcProvider:
    """One configured issuer: its metadata, keys and token checks. Built once per app."""

    def __init__(self, settings: OidcSettings) -> None:
        self.settings = settings
        self._metadata: Metadata | None = None
        self._meta_lock = asyncio.Lock()
        self._meta_error: tuple[float, str] | None = None  # when and why discovery last failed
        self._keys: dict[str, dict[str, Any]] = {}  # kid -> JWK, as published
        self._loaded: dict[tuple[str, str], jwt.PyJWK] = {}  # (kid, alg) -> key, parsed once
        self._keys_lock = asyncio.Lock()
        self._keys_at = float("-inf")  # monotonic time of the last good JWKS fetch
        self._tried_at = float("-inf")  # ... and of the last attempt

    # --- fetching ----------------------------------------------------------------------------

    async def request_json(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        """One HTTP exchange with the IdP: status and parsed JSON body (None if not JSON)."""
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http, http.request(
                    method, url, allow_redirects=False, **kwargs) as resp:
                body = await resp.content.read(MAX_DOCUMENT_BYTES + 1)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ProviderUnavailable(
                f"The identity provider at {self.settings.issuer} could not be reached "
                f"({type(exc).__name__}).") from None
        if len(body) > MAX_DOCUMENT_BYTES:
            raise ProviderUnavailable("The identity provider sent an oversized answer.")
        try:
            return status, orjson.loads(body)
        except orjson.JSONDecodeError:
            return status, None

    async def _get_document(self, url: str, what: str) -> dict[str, Any]:
        status, doc = await self.request_json("GET", url, headers={"accept": "application/json"})
        if status != 200 or not isinstance(doc, dict):
            raise ProviderUnavailable(f"The identity provider's {what} answered {status} at {url}.")
        return doc

    async def metadata(self) -> Metadata:
        if self._metadata is not None:
            return self._metadata
        async with self._meta_lock:
            if self._metadata is None:
                # Callers queued behind a failed attempt fail with it, not one timeout each.
                if self._meta_error and time.monotonic() - self._meta_error[0] < RETRY_AFTER_S:
                    raise ProviderUnavailable(self._meta_error[1])
                try:
                    self._metadata = await self._discover()
                except ProviderUnavailable as exc:
                    self._meta_error = (time.monotonic(), exc.message)
                    raise
        return self._metadata

    async def _discover(self) -> Metadata:
        issuer = self.settings.issuer
        doc = await self._get_document(
            issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery document")
        if doc.get("issuer") != issuer:  # OpenID Connect Discovery 1.0, section 4.3
            raise ProviderUnavailable(f"The discovery document names issuer "
                                      f"{doc.get('issuer')!r}, not the configured {issuer!r}.")
        loop = is_loopback_host(urlsplit(issuer).hostname)
        optional = {k: _check_endpoint(doc[k], k, loop) if doc.get(k) else None
                    for k in ("userinfo_endpoint", "end_session_endpoint")}
        methods = doc.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        return Metadata(
            authorization_endpoint=_check_endpoint(doc.get("authorization_endpoint"),
                                                   "authorization_endpoint", loop),
            token_endpoint=_check_endpoint(doc.get("token_endpoint"), "token_endpoint", loop),
            jwks_uri=_check_endpoint(doc.get("jwks_uri"), "jwks_uri", loop),
            userinfo_endpoint=optional["userinfo_endpoint"],
            end_session_endpoint=optional["end_session_endpoint"],
            token_auth_methods=tuple(str(m) for m in methods if isinstance(m, str)))

    async def _key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key to check a token's signature, fetching the JWKS when stale or on a miss."""
        found = await self._jwk(kid)
        loaded = self._loaded.get((found[0], alg))
        if loaded is None:
            declared = found[1].get("alg")
            if declared is not None and declared != alg:
                raise TokenRejected("The token's algorithm does not match its key.")
            try:  # a JWK without "alg" may serve any algorithm of its key type
                loaded = jwt.PyJWK(found[1], algorithm=alg)
            except jwt.PyJWTError:
                raise TokenRejected("The token's algorithm does not match its key.") from None
            if len(self._loaded) > 64:
                self._loaded.clear()
            self._loaded[(found[0], alg)] = loaded
        return loaded

    async def _jwk(self, kid: str | None) -> tuple[str, dict[str, Any]]:
        """A published key by id (and the id it is filed under)."""
        key = self._find(kid)
        if self._refresh_due(key):
            async with self._keys_lock:
                key = self._find(kid)
                if self._refresh_due(key):
                    self._tried_at = time.monotonic()
                    try:
                        await self._fetch_keys()
                    except ProviderUnavailable:
                        if not self._keys:
                            raise
                        log.warning("oidc: could not refresh the signing keys; using the "
                                    "cached ones")
                    key = self._find(kid)
        if key is None and not self._keys:
            raise ProviderUnavailable("The identity provider's signing keys are not available.")
        if key is None:
            raise TokenRejected("The token is signed with a key the identity provider does not "
                                "publish.")
        return key

    def _refresh_due(self, key: tuple[str, dict[str, Any]] | None) -> bool:
        now = time.monotonic()
        wanted = key is None or now - self._keys_at > self.settings.jwks_cache_s
        limit = self.settings.jwks_min_refresh_s if self._keys else RETRY_AFTER_S
        return wanted and now - self._tried_at >= limit

    def _find(self, kid: str | None) -> tuple[str, dict[str, Any]] | None:
        if kid is None:  # allowed only when the issuer has a single key
            return next(iter(self._keys.items())) if len(self._keys) == 1 else None
        jwk = self._keys.get(kid)
        return (kid, jwk) if jwk is not None else None

    async def _fetch_keys(self) -> None:
        meta = await self.metadata()
        doc = await self._get_document(meta.jwks_uri, "key set (JWKS)")
        keys: dict[str, dict[str, Any]] = {}
        for i, entry in enumerate(doc.get("keys") or []):
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            if entry.get("kty") not in ("RSA", "EC", "OKP"):
                continue  # symmetric ("oct") keys never verify a token here
            if entry.get("alg") is not None and entry["alg"] not in ALGORITHMS:
                continue
            keys[str(entry.get("kid", f"#{i}"))] = entry
        if not keys:
            raise ProviderUnavailable("The identity provider publishes no usable signing key.")
        self._keys, self._loaded = keys, {}
        self._keys_at = time.monotonic()

    # --- checking tokens ---------------------------------------------------------------------

    async def verify(self, token: str, *, audiences: list[str], nonce: str | None = None
                     ) -> dict[str, Any]:
        """The claims of a token signed by the issuer, for one of ``audiences``, not expired."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("The token is not a well-formed JWT.") from None
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if alg not in ALGORITHMS:
            raise TokenRejected(f"The token's algorithm {alg!r} is not accepted.")
        if typ is not None and str(typ).lower() not in ACCEPTED_TYP:
            raise TokenRejected(f"A token of type {typ!r} is not accepted here.")
        key = await self._key(kid if isinstance(kid, str) else None, alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key.key, algorithms=[alg], audience=audiences,
                issuer=self.settings.issuer, leeway=self.settings.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise TokenRejected("The token has expired.") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("The token was issued for another audience (accepted here: "
                                f"{', '.join(audiences)}).") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("The token comes from another issuer.") from None
        except jwt.InvalidSignatureError:
            raise TokenRejected("The token's signature does not verify.") from None
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"The token is not valid: {exc}.") from None
        if nonce is not None and claims.get("nonce") != nonce:
            raise TokenRejected("The ID token does not belong to this sign-in (nonce).")
        return claims

    async def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """An ID token from the code flow (OpenID Connect Core 1.0, section 3.1.3.7)."""
        claims = await self.verify(token, audiences=[self.settings.client_id], nonce=nonce)
        aud = claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != self.settings.client_id:
            raise TokenRejected("The ID token was issued to another client (azp).")
        return claims

    async def verify_bearer(self, token: str) -> Identity:
        """A bearer token for the admin API: a JWT access token or an ID token."""
        return self.identity(await self.verify(token, audiences=self.settings.accepted_audiences))

    def identity(self, claims: dict[str, Any]) -> Identity:
        s = self.settings
        name = next((v for v in (claims.get(s.name_claim), claims.get("preferred_username"),
                                 claims.get("sub")) if isinstance(v, str) and v), "unknown")
        return Identity(subject=str(claims.get("sub", "")),
                        name=_CONTROL.sub("", name)[:120],
                        values=claim_values(claims, s.role_claim))

    def has_role_claim(self, claims: dict[str, Any]) -> bool:
        return bool(claim_values(claims, self.settings.role_claim))
