"""Authentication: a bearer key becomes a Principal (team, key id, role), compared by SHA-256.

Keys from the config are hashed once at start-up; keys made with ``POST /admin/keys`` live in the
log store as hashes and are looked up on a miss, then cached briefly so that a flood of requests
does not become a flood of queries. Revoking a key on one replica takes effect there at once and
on the others within ``cache_ttl_s``. Unknown keys are cached too (shorter), so a client retrying
a bad key cannot hammer the database.

With ``oidc:`` configured, the admin API also takes an OIDC bearer token (a JWT from the issuer,
see ``gateway/oidc.py``) whose role claim maps to admin or to a team's reviewer; client calls
never do, so the request path is unchanged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from gateway.errors import AuthenticationFailed, Forbidden
from gateway.settings import KeySettings, OidcSettings, Settings, TeamSettings, key_digest
from gateway.stores.logs import LogStore

if TYPE_CHECKING:
    from gateway.oidc import OidcProvider

Role = Literal["client", "admin", "reviewer"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``team`` is None only for admins."""

    role: Role
    key_id: str  # a short, non-secret id: "cfg:<first 12 hex of the hash>" or a stored key's id
    team: TeamSettings | None
    key: KeySettings | None = None  # per-key budget and limits, for config keys given as objects

    @property
    def team_name(self) -> str | None:
        return self.team.name if self.team else None


def bearer_key(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    value = value.strip()
    return value or None


def looks_like_jwt(key: str) -> bool:
    return key.startswith("eyJ") and key.count(".") == 2


def no_role_message(name: str, claim: str, values: Sequence[str]) -> str:
    shown = ", ".join(repr(v[:60]) for v in values[:10]) or "none"
    return (f"{name} is signed in, but has no role on this gateway: the {claim!r} claim "
            f"(values: {shown}) matches nothing in the configured oidc.roles. Ask an admin "
            "to map one of these values to admin or to a team's reviewer.")


class Authenticator:
    def __init__(self, settings: Settings, store: LogStore | None, *,
                 cache_ttl_s: float = 5.0, negative_ttl_s: float = 1.0) -> None:
        self._static: dict[str, Principal] = {}
        self._teams = {t.name: t for t in settings.teams}
        self._store = store
        self._ttl = cache_ttl_s
        self._neg_ttl = negative_ttl_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}
        self._oidc_settings: OidcSettings | None = settings.oidc
        self.oidc: OidcProvider | None = None
        if settings.oidc is not None:
            from gateway.oidc import OidcProvider  # the optional extra, only when configured

            self.oidc = OidcProvider(settings.oidc)
        for k in settings.server.admin_keys:
            d = key_digest(k)
            self._static[d] = Principal("admin", f"cfg:{d[:12]}", None)
        for team in settings.teams:
            for entry in team.keys:
                ks = entry if isinstance(entry, KeySettings) else None
                d = key_digest(entry if isinstance(entry, str) else entry.key)
                kid = f"cfg:{ks.name}" if ks and ks.name else f"cfg:{d[:12]}"
                self._static[d] = Principal("client", kid, team, ks)
            for k in team.reviewer_keys:
                d = key_digest(k)
                self._static[d] = Principal("reviewer", f"cfg:{d[:12]}", team)

    async def authenticate(self, key: str | None, *, roles: tuple[Role, ...] = ("client",)
                           ) -> Principal:
        """The principal for this key, or AuthenticationFailed (401) for any other outcome."""
        if not key:
            raise AuthenticationFailed("Missing API key: send 'Authorization: Bearer <key>'.")
        digest = hashlib.sha256(key.encode()).hexdigest()
        principal = self._static.get(digest)
        if principal is None and self.oidc is not None and looks_like_jwt(key) and (
                "admin" in roles or "reviewer" in roles):
            principal = await self._bearer_token(key)
        if principal is None:
            principal = await self._lookup(digest)
        if principal is None or principal.role not in roles:
            raise AuthenticationFailed("Incorrect API key provided.")
        return principal

    async def _lookup(self, digest: str) -> Principal | None:
        if self._store is None:
            return None
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        stored = await self._store.find_key(digest)
        principal: Principal | None = None
        if stored is not None and stored.revoked_at is None:
            team = self._teams.get(stored.team)
            if team is not None:
                principal = Principal("client", stored.id, team)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[digest] = (now + (self._ttl if principal else self._neg_ttl), principal)
        return principal

    async def _bearer_token(self, token: str) -> Principal:
        assert self.oidc is not None
        who = await self.oidc.verify_bearer(token)  # 401 with the failed check, or 503
        principal = self.sso(who.name, who.values)
        if principal is None:
            raise Forbidden(no_role_message(who.name, self.oidc.settings.role_claim, who.values))
        return principal

    def sso(self, name: str, values: Sequence[str]) -> Principal | None:
        """The admin or reviewer that single sign-on claim values map to, by the *current*
        configuration (so a mapping removed from the config stops working at once)."""
        grant = self._oidc_settings.grant(tuple(values)) if self._oidc_settings else None
        if grant is None:
            return None
        role, team_name = grant
        if role == "admin":
            return Principal("admin", f"oidc:{name}", None)
        team = self._teams.get(team_name or "")
        return Principal("reviewer", f"oidc:{name}", team) if team is not None else None

    def staff(self, key_hash: str) -> Principal | None:
        """The admin or reviewer key with this SHA-256 digest (the review page's sessions hold
        the digest, never the key)."""
        p = self._static.get(key_hash)
        return p if p is not None and p.role in ("admin", "reviewer") else None

    def forget(self, key_hash: str) -> None:
        """Drop a cached lookup (after a revoke on this replica)."""
        self._cache.pop(key_hash, None)

    def team(self, name: str) -> TeamSettings | None:
        return self._teams.get(name)
