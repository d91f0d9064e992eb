"""The Redis budget store (``redis://host:port/db``): exact across replicas, one script per call.

It fails closed: a Redis that does not answer raises ``StoreError`` (the caller also bounds every
call with ``stores.budget_timeout_s``), and the request is refused with 503 unless the team
allows degraded serving. Each operation is one script, so Redis runs it atomically: a reserve
checks every line and writes none unless all fit, which is what makes concurrent replicas unable
to overspend.

Key layout (``P`` = ``stores.budget_key_prefix``, ``T`` = team; ``{T}`` is a Redis Cluster hash
tag, so every key of a team lives in one slot and one script may touch them all)::

    P:{T}:b:<scope>:<usd|tok>:<period id>   HASH spent, reserved   (expires after its period)
    P:{T}:r:<scope>:<req|tok>               STRING GCRA tat in µs  (expires when idle)
    P:{T}:holds                             HASH hold id -> JSON [[counter key, amount], ...]
    P:{T}:hexp                              ZSET hold id -> expiry in µs (renewed while alive)
    P:{T}:cfg                               HASH scope -> JSON override, __version -> int
    P:{T}:m:<name>                          STRING done / sync / alert markers, with a TTL

Expired holds are purged lazily by the next script that touches the team: what they reserved is
given back, so a replica killed mid-request frees its holds within the hold TTL, no sweeper job.
Times come from the caller (so tests can move the clock); replicas must share NTP time.
"""

from __future__ import annotations

from typing import Any

from gateway.stores.budget import (
    DONE_MARK_TTL_US,
    SYNC_MARK_TTL_US,
    Counter,
    RateLine,
    ReserveRequest,
    ReserveResult,
    SettleRequest,
    StoreError,
)
from gateway.stores.budget_rules import gcra_remaining
from gateway.stores.resp import RedisReplyError, RedisUnavailable, RespClient

# Lua turns numbers into strings with %.14g, too few digits for microsecond times; every number
# that goes back to Redis passes through n().
_PRELUDE = """
local function n(x) return string.format('%.0f', x) end
local function purge(holds, hexp, now)
  local ids = redis.call('ZRANGEBYSCORE', hexp, '-inf', n(now), 'LIMIT', 0, 256)
  for _, id in ipairs(ids) do
    local rec = redis.call('HGET', holds, id)
    if rec then
      for _, l in ipairs(cjson.decode(rec)) do
        if l[2] ~= 0 then redis.call('HINCRBY', l[1], 'reserved', n(-l[2])) end
      end
      redis.call('HDEL', holds, id)
    end
    redis.call('ZREM', hexp, id)
  end
end
"""

# KEYS: holds, hexp, cfg, budget keys..., rate keys...
# ARGV: hold id, now, ttl, cfg version, nb, nr, mode, (limit, amount, expire_at)*, (limit, amount)*
_RESERVE = _PRELUDE + """
local holds, hexp, cfg = KEYS[1], KEYS[2], KEYS[3]
local hid, now, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local nb, nr, mode = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local W = 60000000
local version = redis.call('HGET', cfg, '__version') or '0'
if mode == 'reserve' and version ~= ARGV[4] then return {'stale', -1, '0', version} end
purge(holds, hexp, now)
local rec = {}
if mode == 'topup' then
  local raw = redis.call('HGET', holds, hid)
  if not raw then return {'stale', -1, '0', version} end
  rec = cjson.decode(raw)
end
local a = 8
local bl = {}
for i = 1, nb do
  local lim, amt, exp = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  a = a + 3
  local v = redis.call('HMGET', KEYS[3 + i], 'spent', 'reserved')
  local used = (tonumber(v[1]) or 0) + (tonumber(v[2]) or 0)
  if lim >= 0 and used + amt > lim then return {'budget', i - 1, '0', version, n(used)} end
  bl[i] = {amt, exp}
end
local rl = {}
for j = 1, nr do
  local lim, amt = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  local tat = tonumber(redis.call('GET', KEYS[3 + nb + j]) or '0')
  if tat < now then tat = now end
  local new = tat + math.ceil(amt * W / lim)
  if mode == 'reserve' and new - now > W then return {'rate', j - 1, n(new - now - W), version} end
  rl[j] = {new, lim}
end
local out = {'ok', -1, '0', version}
for i = 1, nb do
  local key, amt, exp = KEYS[3 + i], bl[i][1], bl[i][2]
  local r = redis.call('HINCRBY', key, 'reserved', n(amt))
  local sp = tonumber(redis.call('HGET', key, 'spent') or '0')
  if exp > 0 then redis.call('EXPIREAT', key, n(exp)) end
  out[#out + 1] = n(sp + r)
  local found = false
  for _, l in ipairs(rec) do
    if l[1] == key then l[2] = l[2] + amt; found = true end
  end
  if not found then rec[#rec + 1] = {key, amt} end
end
for j = 1, nr do
  local new, lim = rl[j][1], rl[j][2]
  redis.call('SET', KEYS[3 + nb + j], n(new), 'PX', n(math.floor((new - now) / 1000) + 1000))
  local rem = math.floor((now + W - new) * lim / W)
  if rem < 0 then rem = 0 end
  if rem > lim then rem = lim end
  out[#out + 1] = rem
end
if #rec == 0 then redis.call('HSET', holds, hid, '[]')
else redis.call('HSET', holds, hid, cjson.encode(rec)) end
redis.call('ZADD', hexp, n(now + ttl), hid)
return out
"""

# KEYS: holds, hexp, done marker, budget keys..., rate keys...
# ARGV: hold id, now, usd, tok, nb, nr, marker ttl ms, (metric, expire_at)*, (limit, held)*
_SETTLE = _PRELUDE + """
local holds, hexp = KEYS[1], KEYS[2]
local hid, now = ARGV[1], tonumber(ARGV[2])
local usd, tok = tonumber(ARGV[3]), tonumber(ARGV[4])
local nb, nr = tonumber(ARGV[5]), tonumber(ARGV[6])
local W = 60000000
local held = {}
local rec = redis.call('HGET', holds, hid)
if rec then for _, l in ipairs(cjson.decode(rec)) do held[l[1]] = l[2] end end
local first = redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[7])
local out = {}
local a = 8
for i = 1, nb do
  local key, metric, exp = KEYS[3 + i], ARGV[a], tonumber(ARGV[a + 1])
  a = a + 2
  local add = 0
  if first then if metric == 'usd' then add = usd else add = tok end end
  if add ~= 0 then redis.call('HINCRBY', key, 'spent', n(add)) end
  local h = held[key] or 0
  if h ~= 0 then redis.call('HINCRBY', key, 'reserved', n(-h)) end
  if exp > 0 then redis.call('EXPIREAT', key, n(exp)) end
  local v = redis.call('HMGET', key, 'spent', 'reserved')
  out[#out + 1] = v[1] or '0'
  out[#out + 1] = v[2] or '0'
end
if rec then
  redis.call('HDEL', holds, hid)
  redis.call('ZREM', hexp, hid)
end
if first then
  for j = 1, nr do
    local lim, h = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    a = a + 2
    local key = KEYS[3 + nb + j]
    local tat = tonumber(redis.call('GET', key) or 'nil')
    if tat and tok ~= h then
      local d = math.ceil(math.abs(tok - h) * W / lim)
      if tok < h then d = -d end
      redis.call('SET', key, n(tat + d), 'KEEPTTL')
    end
  end
end
return out
"""

# KEYS: holds, hexp, budget keys...    ARGV: now
_USAGE = _PRELUDE + """
purge(KEYS[1], KEYS[2], tonumber(ARGV[1]))
local out = {}
for i = 3, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 'spent', 'reserved')
  out[#out + 1] = v[1] or '0'
  out[#out + 1] = v[2] or '0'
end
return out
"""

# KEYS: marker, budget keys...    ARGV: marker ttl ms, (amount, expire_at)*
_ADD_SPENT = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
for i = 2, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'spent', ARGV[2 * i - 2])
  local exp = tonumber(ARGV[2 * i - 1])
  if exp > 0 then redis.call('EXPIREAT', KEYS[i], ARGV[2 * i - 1]) end
end
return 1
"""

# KEYS: cfg    ARGV: scope, value ('' deletes)
_SET_CONFIG = """
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return redis.call('HINCRBY', KEYS[1], '__version', 1)
"""


class RedisBudgetStore:
    """``BudgetStore`` over Redis (standalone or Cluster-ready key layout)."""

    def __init__(self, url: str, *, prefix: str = "gw", timeout_s: float = 0.25) -> None:
        self._r = RespClient(url, timeout_s=timeout_s)
        self._prefix = prefix

    def _k(self, team: str, name: str) -> str:
        return f"{self._prefix}:{{{team}}}:{name}"

    async def _cmd(self, *args: str | int) -> Any:
        try:
            return await self._r.call(*args)
        except (RedisUnavailable, RedisReplyError) as exc:
            raise StoreError(f"redis budget store: {exc}") from exc

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return await self._r.evalsha(script, keys, args)
        except (RedisUnavailable, RedisReplyError) as exc:
            raise StoreError(f"redis budget store: {exc}") from exc

    async def open(self) -> None:
        """Load the scripts now, so the first requests do not each pay a NOSCRIPT round trip.

        A Redis that is down at start-up is not an error here: requests fail closed until it
        answers, and /readyz reports it.
        """
        try:
            for script in (_RESERVE, _SETTLE, _USAGE, _ADD_SPENT, _SET_CONFIG):
                await self._r.call("SCRIPT", "LOAD", script)
        except (RedisUnavailable, RedisReplyError):
            return

    async def close(self) -> None:
        await self._r.close()

    async def ping(self) -> None:
        await self._cmd("PING")

    async def reserve(self, req: ReserveRequest) -> ReserveResult:
        return await self._reserve_or_top_up(req, "reserve")

    async def top_up(self, req: ReserveRequest) -> ReserveResult:
        return await self._reserve_or_top_up(req, "topup")

    async def _reserve_or_top_up(self, req: ReserveRequest, mode: str) -> ReserveResult:
        t = req.team
        keys = [self._k(t, "holds"), self._k(t, "hexp"), self._k(t, "cfg")]
        keys += [self._k(t, b.key) for b in req.budgets]
        keys += [self._k(t, r.key) for r in req.rates]
        args: list[Any] = [req.hold_id, req.now_us, req.ttl_us, req.cfg_version,
                           len(req.budgets), len(req.rates), mode]
        for b in req.budgets:
            args += [b.limit, b.amount, b.expire_at_s]
        for r in req.rates:
            args += [r.limit, r.amount]
        out = await self._call(_RESERVE, keys, args)
        outcome, index, retry, version = out[0], int(out[1]), int(out[2]), int(out[3])
        if outcome != "ok":
            return ReserveResult(outcome, index=index, retry_after_us=retry, cfg_version=version)
        nb = len(req.budgets)
        return ReserveResult("ok", used=tuple(int(x) for x in out[4:4 + nb]),
                             rate_remaining=tuple(int(x) for x in out[4 + nb:]),
                             cfg_version=version)

    async def settle(self, req: SettleRequest) -> tuple[Counter, ...]:
        t = req.team
        keys = [self._k(t, "holds"), self._k(t, "hexp"), self._k(t, f"m:done:{req.hold_id}")]
        keys += [self._k(t, b.key) for b in req.budgets]
        rates = [r for r in req.rates if r.metric == "tok"]
        keys += [self._k(t, r.key) for r in rates]
        args: list[Any] = [req.hold_id, req.now_us, req.actual_usd, req.actual_tok,
                           len(req.budgets), len(rates), DONE_MARK_TTL_US // 1000]
        for b in req.budgets:
            args += [b.metric, b.expire_at_s]
        for r in rates:
            args += [r.limit, r.amount]
        out = await self._call(_SETTLE, keys, args)
        return tuple(Counter(int(out[i]), int(out[i + 1])) for i in range(0, len(out), 2))

    async def renew(self, team: str, hold_ids: list[str], now_us: int, ttl_us: int) -> None:
        if not hold_ids:
            return
        expiry = now_us + ttl_us
        pairs = [x for hid in hold_ids for x in (expiry, hid)]
        await self._cmd("ZADD", self._k(team, "hexp"), "XX", *pairs)

    async def usage(self, team: str, keys: list[str], rates: list[RateLine],
                    now_us: int) -> tuple[list[Counter], list[int]]:
        full = [self._k(team, "holds"), self._k(team, "hexp")] + [self._k(team, k) for k in keys]
        out = await self._call(_USAGE, full, [now_us])
        counters = [Counter(int(out[i]), int(out[i + 1])) for i in range(0, len(out), 2)]
        remaining = []
        for r in rates:
            raw = await self._cmd("GET", self._k(team, r.key))
            remaining.append(gcra_remaining(int(raw) if raw else None, now_us, r.limit))
        return counters, remaining

    async def add_spent(self, team: str, batch_id: str, entries: list[tuple[str, int, int]],
                        now_us: int) -> None:
        keys = [self._k(team, f"m:sync:{batch_id}")] + [self._k(team, k) for k, _, _ in entries]
        args: list[Any] = [SYNC_MARK_TTL_US // 1000]
        for _, amount, expire_at in entries:
            args += [amount, expire_at]
        await self._call(_ADD_SPENT, keys, args)

    async def claim(self, team: str, marker: str, expire_at_s: int) -> bool:
        expiry: tuple[str | int, ...] = ("EXAT", expire_at_s) if expire_at_s else ()
        ok = await self._cmd("SET", self._k(team, f"m:claim:{marker}"), "1", "NX", *expiry)
        return ok is not None

    async def get_config(self, team: str) -> tuple[int, dict[str, str]]:
        flat = await self._cmd("HGETALL", self._k(team, "cfg"))
        raw = {str(flat[i]): str(flat[i + 1]) for i in range(0, len(flat), 2)}
        version = int(raw.pop("__version", "0"))
        return version, raw

    async def set_config(self, team: str, scope: str, value: str | None) -> int:
        out = await self._call(_SET_CONFIG, [self._k(team, "cfg")], [scope, value or ""])
        return int(out)

