"""Pacing across every worker, in Redis: concurrent channels and call attempts per second
per trunk, and concurrent calls per campaign.

A slot is a lease — the attempt id in a sorted set scored by when it expires — so a worker
that dies does not leak capacity: its leases lapse (and the worker that reconciles its
attempts releases them at once). The rate is a token bucket. Each limit is one Lua script
on one key family, so it stays atomic on Redis Cluster too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dialer.store.codec import to_ms
from dialer.store.keys import PREFIX

ACQUIRE = """
-- KEYS[1] leases zset, KEYS[2] bucket hash (may be absent: no rate limit)
-- ARGV: now_ms, lease_until_ms, member, max, rate per second (0: none), burst
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return {1, 0} end
local active = redis.call('ZCARD', KEYS[1])
if active >= tonumber(ARGV[4]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(first[2]) - now}
end
local rate = tonumber(ARGV[5])
if rate > 0 then
  local burst = tonumber(ARGV[6])
  local b = redis.call('HMGET', KEYS[2], 'tokens', 'ts')
  local tokens = tonumber(b[1]) or burst
  local ts = tonumber(b[2]) or now
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  if tokens < 1 then
    redis.call('HSET', KEYS[2], 'tokens', tokens, 'ts', now)
    return {0, math.ceil((1 - tokens) * 1000 / rate)}
  end
  redis.call('HSET', KEYS[2], 'tokens', tokens - 1, 'ts', now)
  redis.call('PEXPIRE', KEYS[2], 60000)
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
return {1, 0}
"""


@dataclass(frozen=True, slots=True)
class Grant:
    ok: bool
    retry_ms: int = 0  # when refused: how long until a slot or a token frees up (a hint)


class Pacer:
    def __init__(self, client: object) -> None:
        self.r = client
        self._acquire = client.register_script(ACQUIRE)  # type: ignore[attr-defined]

    @staticmethod
    def trunk_keys(trunk: str) -> tuple[str, str]:
        tag = f"{PREFIX}:{{t:{trunk}}}"
        return f"{tag}:leases", f"{tag}:bucket"

    @staticmethod
    def campaign_key(campaign: str) -> str:
        return f"{PREFIX}:{{c:{campaign}}}:leases"

    async def acquire_trunk(
        self, trunk: str, attempt_id: str, now: datetime, lease_s: float, max_channels: int, cps: float
    ) -> Grant:
        leases, bucket = self.trunk_keys(trunk)
        ok, wait = await self._acquire(
            keys=[leases, bucket],
            args=[to_ms(now), to_ms(now) + int(lease_s * 1000), attempt_id, max_channels, cps, max(1.0, cps)],
        )
        return Grant(bool(ok), int(wait))

    async def acquire_campaign(
        self, campaign: str, attempt_id: str, now: datetime, lease_s: float, max_calls: int
    ) -> Grant:
        key = self.campaign_key(campaign)
        ok, wait = await self._acquire(
            keys=[key, key + ":nobucket"],
            args=[to_ms(now), to_ms(now) + int(lease_s * 1000), attempt_id, max_calls, 0, 0],
        )
        return Grant(bool(ok), int(wait))

    async def release(self, trunk: str | None, campaign: str | None, attempt_id: str) -> None:
        if trunk:
            await self.r.zrem(self.trunk_keys(trunk)[0], attempt_id)  # type: ignore[attr-defined]
        if campaign:
            await self.r.zrem(self.campaign_key(campaign), attempt_id)  # type: ignore[attr-defined]

    async def active(self, trunk: str, now: datetime) -> int:
        leases, _ = self.trunk_keys(trunk)
        return int(await self.r.zcount(leases, to_ms(now), "+inf"))  # type: ignore[attr-defined]
