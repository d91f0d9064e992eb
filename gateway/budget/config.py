"""Teams' budget configuration at run time: the overrides in the store, a team's status, PATCH.

A PATCH is stored in the budget store with a new version, so it applies on every replica: each
replica caches a team's overrides with their version, and the store refuses a reservation made
against an old version (``stale``), which makes the replica reload them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.auth import Principal
from gateway.budget.link import StoreLink
from gateway.budget.scopes import (
    MICROS,
    TeamConfig,
    key_scopes,
    lines_for,
    scope_status,
    scopes_for,
    validated_patch,
)
from gateway.errors import InvalidRequest, NotFound
from gateway.pricing import Estimate
from gateway.settings import TeamSettings


class TeamConfigs:
    def __init__(self, teams: dict[str, TeamSettings], link: StoreLink,
                 clock: Callable[[], float]) -> None:
        self._teams = teams
        self._link = link
        self._clock = clock
        self._cached: dict[str, TeamConfig] = {}

    async def get(self, team: str) -> TeamConfig:
        """The team's overrides: cached, or read from the store."""
        cfg = self._cached.get(team)
        if cfg is None:
            version, raw = await self._link.call(self._link.store.get_config(team))
            cfg = TeamConfig(version, {k: orjson.loads(v) for k, v in raw.items()})
            self._cached[team] = cfg
        return cfg

    def cached(self, team: str) -> TeamConfig:
        """The last overrides read (none if never read): the store may be away."""
        return self._cached.get(team) or TeamConfig(0, {})

    def forget(self, team: str) -> None:
        """Changed elsewhere (a stale reservation): the next ``get`` reads the store."""
        self._cached.pop(team, None)

    def _team(self, team_name: str) -> TeamSettings:
        team = self._teams.get(team_name)
        if team is None:
            raise NotFound(f"No team named '{team_name}'.")
        return team

    async def status(self, team_name: str, degraded: bool) -> dict[str, Any]:
        """The body of GET /admin/teams/{team}/budget, plus tokens, limits and per-key budgets."""
        team = self._team(team_name)
        self.forget(team_name)  # admin reads are rare: always show the stored config
        cfg = await self.get(team_name)
        now = self._clock()
        scopes = scopes_for(team, Principal("client", "", team), cfg)
        keys = key_scopes(team, cfg)
        budgets, _, rates = lines_for(scopes + keys, Estimate(0, 0, 0), now)
        counters, remaining = await self._link.call(self._link.store.usage(
            team_name, [b.key for b in budgets], rates, int(now * MICROS)))
        by_key = dict(zip([b.key for b in budgets], counters, strict=True))
        rate_left = dict(zip([r.key for r in rates], remaining, strict=True))
        body = scope_status(scopes[0], by_key, rate_left, now)
        body = {"team": team_name, **body, "on_store_error": team.on_store_error,
                "degraded": degraded, "config_version": cfg.version}
        body["keys"] = [{"key": s.key_id, **scope_status(s, by_key, rate_left, now)}
                        for s in keys]
        return body

    async def update(self, team_name: str, patch: dict[str, Any]) -> None:
        """Store a PATCH of a team's (or one key's) budget and limits; see ``Budgets.update``."""
        team = self._team(team_name)
        if not isinstance(patch, dict):
            raise InvalidRequest("The body must be a JSON object.")
        patch = dict(patch)
        key_id = patch.pop("key", None)
        if key_id is not None and not isinstance(key_id, str):
            raise InvalidRequest("'key' must be a key id string.", param="key")
        scope = "team" if key_id is None else f"key:{key_id}"
        self.forget(team_name)
        cfg = await self.get(team_name)
        value = None
        if not patch.pop("reset", False):
            current = cfg.overrides.get(scope, {})
            value = orjson.dumps(validated_patch(team, current, key_id, patch)).decode()
        await self._link.call(self._link.store.set_config(team_name, scope, value))
        self.forget(team_name)
