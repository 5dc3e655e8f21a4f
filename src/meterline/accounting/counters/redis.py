"""Counters in Redis, shared by any number of gateway replicas.

Atomicity: every operation that checks and then updates runs as ONE Lua script (registered once,
sent as EVALSHA). Redis runs a script to completion before serving any other command, so no
replica can slip between a check and its update: a multi-hold ``reserve`` reads every counter,
refuses if any lacks room, and only then writes all of them. Every script validates everything
before its first write, so an error (e.g. an overflow) never leaves a partial update behind.

Exactness: Lua 5.1 numbers are doubles, exact only up to 2**53 (~9.0e15 pico-dollars, about
$9,007), which a budget in pico-dollars easily exceeds. So the scripts never do money arithmetic
in Lua numbers:

* updates use HINCRBY / INCRBY, which Redis does in 64-bit integers (their replies, converted to
  Lua numbers, are never used);
* comparisons read the counters as decimal strings and split each into two limbs,
  ``hi * 10**9 + lo``, where both limbs stay far below 2**53; the limb sums are exact, and one
  carry normalisation gives the exact sign of ``limit - (spent + reserved + amount)``;
* counts go back to Python as strings (GET after the update), never as Lua numbers.

Counters are therefore exact up to Redis's own bound, 2**63 - 1 (~9.2e18 pico-dollars, about
$9.2 million). Larger limits are clamped to that bound; an update that would overflow it is
refused (limited holds) or raises (unlimited holds, ``add``) without changing anything.

Layout: budget counters are hashes with fields ``spent`` and ``reserved``; window counters are
plain integer strings. Every key carries ``prefix``; every write refreshes the key's TTL.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from meterline.accounting.counters.base import (
    INT64_MAX,
    Admitted,
    Hold,
    Level,
    Window,
    WindowHit,
)
from meterline.resp import Redis, RedisReplyError

__all__ = ["INT64_MAX", "RedisCounters"]

_PRELUDE = """
local B = 1000000000
local MAX = '9223372036854775807'
-- A decimal integer string (false/nil = 0) as exact limbs: value = hi * B + lo.
local function limbs(s)
  if not s then return 0, 0 end
  local neg = string.sub(s, 1, 1) == '-'
  if neg then s = string.sub(s, 2) end
  local n, hi, lo = #s, 0, tonumber(s)
  if n > 9 then hi, lo = tonumber(string.sub(s, 1, n - 9)), tonumber(string.sub(s, n - 8)) end
  if neg then return -hi, -lo end
  return hi, lo
end
-- Exactly: is the sum of the (up to three) values at most limit?
local function within(limit, a, b, c)
  local hi, lo = limbs(limit)
  for _, x in ipairs({a or '0', b or '0', c or '0'}) do
    local h, l = limbs(x)
    hi, lo = hi - h, lo - l
  end
  return hi + math.floor(lo / B) >= 0
end
"""

# KEYS: counters. ARGV: amount, then per key its limit ('' = none) and ttl. 0 or the 1-based
# index of the first key without room.
_RESERVE = """
local amount = ARGV[1]
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'spent', 'reserved')
  local limit = ARGV[2 * i]
  if limit ~= '' and not within(limit, v[1], v[2], amount) then return i end
  if not within(MAX, v[2], amount) then
    return redis.error_reply('meterline: reserved on ' .. key .. ' would overflow')
  end
end
for i, key in ipairs(KEYS) do
  redis.call('HINCRBY', key, 'reserved', amount)
  redis.call('EXPIRE', key, ARGV[2 * i + 1])
end
return 0
"""

# KEYS: counters. ARGV: reserved, -reserved, actual, then a ttl per key. Each key's spent
# afterwards, as strings (past 2^53 a Lua number would lose digits).
_SETTLE = """
for _, key in ipairs(KEYS) do
  if not within(MAX, redis.call('HGET', key, 'spent'), ARGV[3]) then
    return redis.error_reply('meterline: spent on ' .. key .. ' would overflow')
  end
end
for i, key in ipairs(KEYS) do
  if within(ARGV[1], redis.call('HGET', key, 'reserved')) then
    redis.call('HSET', key, 'reserved', '0')
  else
    redis.call('HINCRBY', key, 'reserved', ARGV[2])
  end
  redis.call('HINCRBY', key, 'spent', ARGV[3])
  redis.call('EXPIRE', key, ARGV[3 + i])
end
local spent = {}
for i, key in ipairs(KEYS) do
  spent[i] = redis.call('HGET', key, 'spent')
end
return spent
"""

# KEYS: counter. ARGV: spent, ttl.
_SEED = """
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: window. ARGV: amount, ttl. The count as a string.
_ADD = """
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return redis.call('GET', KEYS[1])
"""


# KEYS: per window its tokens key, then its requests key. ARGV: per window the token limit and
# the request limit ('' = none), then the ttl. Per window looked at: {tokens used ('' = not read),
# '1' / '0' for a request hit allowed or refused ('' = none), the window's count ('' = none)};
# the list ends at the first refusal.
_ADMIT = """
local out = {}
for i = 1, #KEYS / 2 do
  local tlimit, rlimit, ttl = ARGV[3 * i - 2], ARGV[3 * i - 1], ARGV[3 * i]
  local used = ''
  if tlimit ~= '' then
    used = redis.call('GET', KEYS[2 * i - 1]) or '0'
    if not within(tlimit, used, '1') then
      out[#out + 1] = {used, '', ''}
      return out
    end
  end
  local allowed, count = '', ''
  if rlimit ~= '' then
    local key = KEYS[2 * i]
    count = redis.call('GET', key) or '0'
    if within(rlimit, count, '1') then
      redis.call('INCRBY', key, 1)
      redis.call('EXPIRE', key, ttl)
      allowed, count = '1', redis.call('GET', key)
    else
      allowed = '0'
    end
  end
  out[#out + 1] = {used, allowed, count}
  if allowed == '0' then return out end
end
return out
"""


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _capped(limit: int) -> str:
    return str(min(limit, INT64_MAX))


class RedisCounters:
    """:class:`~meterline.accounting.counters.base.Counters` on a shared Redis: atomic Lua
    scripts, exact 64-bit integer arithmetic (through :mod:`meterline.resp`). Open with
    :meth:`connect`, release with :meth:`aclose`."""

    def __init__(self, client: Redis, prefix: str = "meterline:") -> None:
        self._redis = client
        self.prefix = prefix
        self._reserve = client.script(_PRELUDE + _RESERVE)
        self._settle = client.script(_PRELUDE + _SETTLE)
        self._seed = client.script(_SEED)
        self._add = client.script(_ADD)
        self._admit = client.script(_PRELUDE + _ADMIT)

    @classmethod
    async def connect(cls, url: str, prefix: str = "meterline:") -> RedisCounters:
        """Connect to ``url`` and ping once, so a wrong URL fails at start-up."""
        client = Redis.from_url(url)
        try:
            await client.execute("PING")
        except (RedisReplyError, OSError) as exc:
            await client.aclose()
            raise ConnectionError(f"cannot reach Redis at {_redacted(url)}: {exc}") from exc
        return cls(client, prefix)

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def reserve(self, holds: list[Hold], amount: int) -> int | None:
        if not holds:
            return None
        args: list[str | int] = [str(amount)]
        for hold in holds:
            args += ["" if hold.limit is None else _capped(hold.limit), hold.ttl]
        refused: Any = await self._reserve([self._key(h.key) for h in holds], args)
        return int(refused) - 1 if int(refused) else None

    async def settle(self, holds: list[Hold], reserved: int, actual: int) -> list[int]:
        if not holds:
            return []
        args: list[str | int] = [str(reserved), str(-reserved), str(actual)]
        args += [h.ttl for h in holds]
        spent = await self._settle([self._key(h.key) for h in holds], args)
        return [int(value) for value in spent]

    async def levels(self, keys: list[str]) -> list[Level]:
        rows = await self._redis.many([("HMGET", self._key(k), "spent", "reserved") for k in keys])
        return [Level(int(spent or 0), int(reserved or 0)) for spent, reserved in rows]

    async def seed(self, key: str, spent: int, ttl: int) -> None:
        await self._seed([self._key(key)], [str(spent), ttl])

    async def add(self, key: str, amount: int, ttl: int) -> int:
        return int(await self._add([self._key(key)], [str(amount), ttl]))

    async def get(self, key: str) -> int:
        value = await self._redis.execute("GET", self._key(key))
        return int(value) if value is not None else 0

    async def admit(self, windows: list[Window]) -> list[Admitted]:
        if not windows:
            return []
        keys: list[str] = []
        args: list[str | int] = []
        for w in windows:
            keys += [self._key(w.tokens_key), self._key(w.requests_key)]
            args.append("" if w.tokens_limit is None else _capped(w.tokens_limit))
            args += ["" if w.requests_limit is None else _capped(w.requests_limit), w.ttl]
        out: list[Admitted] = []
        for used, allowed, count in await self._admit(keys, args):
            hit = WindowHit(allowed == b"1", int(count)) if allowed else None
            out.append((int(used) if used else None, hit))
        return out

    async def health(self) -> dict[str, object]:
        """A ``PING``, given a second: counters that cannot be reached fail every request."""
        try:
            await asyncio.wait_for(self._redis.execute("PING"), 1.0)
            status = "ok"
        except (RedisReplyError, OSError, TimeoutError) as exc:
            status = f"error: {exc.__class__.__name__}"
        return {"backend": "redis", "status": status}

    async def aclose(self) -> None:
        await self._redis.aclose()
