"""Kill switches: turn a model or a team off at run time, on every replica, without a restart.

The switches live in the operations store (shared by all replicas); each replica keeps a copy in
memory and reloads it every ``poll_s`` (1 s), so the request path pays one dict lookup and a
switch takes effect everywhere within about a second (at once on the replica that set it). If
the store cannot be read, the last known switches stay in force: a switch that was on stays on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Literal

from gateway.errors import Unavailable
from gateway.stores.ops import OpsStore, Switch
from gateway.tasks import Background

log = logging.getLogger("gateway.killswitch")

Kind = Literal["model", "team"]
KINDS: tuple[Kind, ...] = ("model", "team")


class KillSwitches:
    def __init__(self, store: OpsStore, *, poll_s: float = 1.0) -> None:
        self._store = store
        self._poll_s = poll_s
        self._on: dict[tuple[str, str], Switch] = {}
        self._task = Background("kill-switch-poll", self._poll)

    async def start(self) -> None:
        await self.refresh()
        self._task.start()

    async def stop(self) -> None:
        await self._task.stop()

    async def refresh(self) -> None:
        self._on = {(s.kind, s.name): s for s in await self._store.switches()}

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                await self.refresh()
            except Exception as exc:  # keep the last known switches; try again next tick
                log.warning("cannot read kill switches (%s); keeping the last known ones",
                            type(exc).__name__)

    def check(self, team: str | None, model: str) -> None:
        """Raise 503 ``model_disabled`` / ``team_disabled`` when a switch is on."""
        if not self._on:
            return
        sw = self._on.get(("model", model))
        if sw is not None:
            raise Unavailable(f"The model '{model}' is disabled by an operator"
                              f"{_why(sw)}.", code="model_disabled")
        sw = self._on.get(("team", team)) if team is not None else None
        if sw is not None:
            raise Unavailable(f"The team '{team}' is disabled by an operator{_why(sw)}.",
                              code="team_disabled")

    def active(self) -> list[Switch]:
        return sorted(self._on.values(), key=lambda s: (s.kind, s.name))

    async def turn_off(self, kind: Kind, name: str, reason: str, actor: str) -> Switch:
        """Disable ``name``: at once on this replica, on the others within ``poll_s``."""
        sw = Switch(kind, name, reason, actor, time.time())
        await self._store.set_switch(sw)
        self._on[(kind, name)] = sw
        return sw

    async def turn_on(self, kind: Kind, name: str) -> bool:
        """Enable ``name`` again; False when it was not disabled."""
        removed = await self._store.delete_switch(kind, name)
        self._on.pop((kind, name), None)
        return removed


def _why(sw: Switch) -> str:
    return f" ({sw.reason})" if sw.reason else ""
