"""The Redis adapter: every read and write of the runtime, multi-key changes in Lua.

One ``Store`` per process (``await Store.connect(url)``). Atomicity rules:

- *upsert*: an account row and its schedule entry change together (``UPSERT``);
- *dispatch*: due schedule entries move to the work stream in one script, only while the
  campaign is running, so any number of schedulers never hand out an entry twice;
- *claim*: before a contact is made, the attempt is written into the account's hash
  with an optimistic history version (``hv``) and a lock — a worker whose view of the
  history is stale, or that finds the attempt already claimed (a reclaimed entry), does
  not place a second call;
- *finish*: outcome, history, next schedule entry, stream acknowledgement, counters
  and timeline events are written in one script.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dialer.domain import (
    Account,
    AccountStatus,
    Attempt,
    Channel,
    Outcome,
    Phone,
    Suppression,
    SuppressionReason,
)
from dialer.errors import StoreError
from dialer.store import keys
from dialer.store.codec import (
    from_ms,
    pack_account,
    pack_attempt,
    to_ms,
    unpack_account,
    unpack_attempt,
    unpack_phone,
)
from dialer.store.keys import CampaignKeys

# The asyncio client packs commands in Python; the sync client uses hiredis when it is
# installed. Our hot path sends long pipelines of scripts: pack them with hiredis too.
try:
    import hiredis

    class _HiredisConnectionImpl(aioredis.Connection):
        def pack_command(self, *args: Any) -> list[bytes]:
            # straight to hiredis (str, bytes, int and float arguments); a multi-word command
            # name ("SCRIPT LOAD") is split as redis-py does
            name = args[0]
            if isinstance(name, str) and " " in name:
                args = (*name.split(), *args[1:])
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # bytearray / memoryview arguments: as bytes, like redis-py
                args = tuple(bytes(a) if isinstance(a, (bytearray, memoryview)) else a for a in args)
            try:
                return [hiredis.pack_command(args)]
            except TypeError as exc:
                raise DataError(str(exc)) from exc

    _HiredisConnection: type[aioredis.Connection] | None = _HiredisConnectionImpl
except ImportError:  # pragma: no cover - hiredis is a pinned dependency
    _HiredisConnection = None

# ---------------------------------------------------------------------------- scripts

UPSERT = """
-- KEYS: schedule, then one account hash per row
-- ARGV: per row (account id, packed account, phone field, packed phone, schedule ms)
-- returns per row: 0 unchanged, 1 new account, 2 updated, 3 new phone on an account
local out = {}
for i = 2, #KEYS do
  local o = 5 * (i - 2)
  local key, id, acc, pf, ph, score = KEYS[i], ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5]
  local a = redis.call('HGET', key, 'a')
  local p = redis.call('HGET', key, pf)
  if a == acc and p == ph then
    out[i - 1] = 0
  else
    redis.call('HSET', key, 'a', acc, pf, ph)
    if not a then
      redis.call('ZADD', KEYS[1], 'NX', score, id)
      out[i - 1] = 1
    else
      -- a plan made on the old data must not be carried out: a worker's claim goes stale
      redis.call('HINCRBY', key, 'hv', 1)
      redis.call('ZADD', KEYS[1], 'LT', score, id)
      if not p then out[i - 1] = 3 else out[i - 1] = 2 end
    end
  end
end
return out
"""

DISPATCH = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return {-1, false} end
local room = tonumber(ARGV[3]) - redis.call('XLEN', KEYS[3])
local limit = math.min(tonumber(ARGV[2]), room)
local moved = 0
if limit > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, limit)
  for _, m in ipairs(due) do
    redis.call('XADD', KEYS[3], '*', 'a', m)
  end
  if #due > 0 then redis.call('ZREM', KEYS[2], unpack(due)) end
  moved = #due
end
local nxt = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
return {moved, nxt[2] or false}
"""

SET_STATUS = """
-- KEYS: account hash, events list, schedule; ARGV: packed account read, the new one,
-- events JSON, schedule score ('' : leave the schedule alone). 0: changed meanwhile, read again
if redis.call('HGET', KEYS[1], 'a') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'a', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'hv', 1)
redis.call('RPUSH', KEYS[2], ARGV[3])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[3], 'LT', ARGV[4], ARGV[5]) end
return 1
"""

# Batch scripts: every key of one call belongs to one campaign (one hash tag, one cluster
# slot), so a whole batch of a worker is one command and one reply.

LOAD = """
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out
"""

COUNT = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[1])
end
return out
"""

CLAIM = """
-- KEYS: account hashes; ARGV: now_ms, lock_ms, then (attempt, expected hv, packed) per key
local now, lock_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local attempt, want, packed = ARGV[3 * i], ARGV[3 * i + 1], ARGV[3 * i + 2]
  local existing = redis.call('HGET', key, 'h:' .. attempt)
  local result = nil
  if existing then
    result = {'exists', existing}
  else
    local lk = redis.call('HGET', key, 'lk')
    if lk then
      local holder, exp = string.match(lk, '^(.*)|(%d+)$')
      if holder ~= attempt and tonumber(exp) > now then result = {'locked', lk} end
    end
    if not result then
      local hv = redis.call('HGET', key, 'hv') or '0'
      if hv ~= want then
        result = {'stale', hv}
      else
        redis.call('HSET', key, 'h:' .. attempt, packed, 'lk', attempt .. '|' .. (now + lock_ms),
                   'hv', tonumber(hv) + 1)
        result = {'new', ''}
      end
    end
  end
  out[i] = result
end
return out
"""

FINISH = r"""
-- KEYS: schedule, work, stats, series, then (account hash, events list) per entry
-- ARGV: group, hour bucket, then (attempt, packed, entry, account, score, fb, stats, events) per entry
local group, bucket = ARGV[1], ARGV[2]
local n = (#KEYS - 4) / 2
for i = 1, n do
  local acct, events = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local o = 2 + 8 * (i - 1)
  local attempt, packed, entry, account = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4]
  local score, fb, stats, evs = ARGV[o + 5], ARGV[o + 6], ARGV[o + 7], ARGV[o + 8]
  if attempt ~= '' then
    if packed == '' then
      redis.call('HDEL', acct, 'h:' .. attempt)  -- the contact was never made
    else
      redis.call('HSET', acct, 'h:' .. attempt, packed)
    end
    redis.call('HINCRBY', acct, 'hv', 1)
    local lk = redis.call('HGET', acct, 'lk')
    if lk and string.sub(lk, 1, #attempt + 1) == attempt .. '|' then
      redis.call('HDEL', acct, 'lk')
    end
  end
  if fb == '-' then
    redis.call('HDEL', acct, 'fb')
  elseif fb ~= '' then
    redis.call('HSET', acct, 'fb', fb)
  end
  if score ~= '' then
    redis.call('ZADD', KEYS[1], score, account)
  else
    redis.call('ZREM', KEYS[1], account)
  end
  if entry ~= '' then
    redis.call('XACK', KEYS[2], group, entry)
    redis.call('XDEL', KEYS[2], entry)
  end
  for k, v in string.gmatch(stats, '([^\31]+)\31(-?%d+)\31') do
    redis.call('HINCRBY', KEYS[3], k, v)
    if string.sub(k, 1, 8) == 'outcome:' then redis.call('HINCRBY', KEYS[4], bucket .. '|' .. k, v) end
  end
  if evs ~= '' then redis.call('RPUSH', events, evs) end
end
return n
"""

TRANSITIONS: Mapping[str, tuple[frozenset[str], str]] = {
    # action: (from states, to state)
    "start": (frozenset({"created"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "stop": (frozenset({"running", "paused", "created"}), "stopped"),
    "archive": (frozenset({"stopped", "created"}), "archived"),
}

TRANSITION = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing', false} end
local ok = false
for i = 3, #ARGV do if ARGV[i] == state then ok = true end end
if not ok then return {'refused', state} end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'state_at', ARGV[2])
return {'ok', state}
"""


# ---------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account as the worker sees it: its data, phones, history and flags."""

    account: Account
    phones: tuple[Phone, ...]
    history: tuple[Attempt, ...]
    hv: int
    lock: str | None = None
    fallback: str | None = None


@dataclass(frozen=True, slots=True)
class WorkItem:
    campaign: str
    entry_id: str
    account_id: str


@dataclass(frozen=True, slots=True)
class Claim:
    status: str  # new | exists | stale | locked
    existing: Attempt | None = None


@dataclass(slots=True)
class Finish:
    """Everything one worked entry writes at the end, in one script."""

    campaign: str
    account_id: str
    entry_id: str = ""
    attempt: Attempt | None = None
    next_at: datetime | None = None
    drop_attempt: bool = False  # forget the claimed attempt: no contact was made
    fallback: str = ""  # "" keep, "-" clear, "<step>" set
    stats: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Effects:
    """Side writes of a batch (suppressions, audit, callbacks, links), flushed in one pipeline."""

    suppressions: list[Suppression] = field(default_factory=list)
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (kind, data)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)  # (link, campaign, account)
    sms: list[tuple[str, str, str, str, str]] = field(
        default_factory=list
    )  # provider, id, campaign, account, attempt

    def __bool__(self) -> bool:
        return bool(self.suppressions or self.audit or self.callbacks or self.links or self.sms)


@dataclass(frozen=True, slots=True)
class CampaignInfo:
    name: str
    state: str
    created_at: str
    meta: dict[str, str]


def phone_day_key(number: str, channel: Channel, day: date) -> str:
    """The counter of contacts to one phone on one channel on one local day, across campaigns."""
    # one hash tag for every counter: a batch is counted by one script, on a cluster too
    return f"{keys.PREFIX}:{{phones}}:{number}:{channel}:{day.isoformat()}"


def _hour_bucket(items: Sequence[Finish]) -> str:
    """The hour (epoch hours) a batch's outcomes are counted in, for the dashboard's series."""
    for f in items:
        if f.attempt is not None:
            return str(int(f.attempt.at.timestamp()) // 3600)
    return "0"


def _queue(pipe: Any, script: Any, keys_: Sequence[str], args: Sequence[Any]) -> None:
    """Queue a registered script on a pipeline (the pipeline loads it if Redis lost it)."""
    pipe.scripts.add(script)
    pipe.evalsha(script.sha, len(keys_), *keys_, *args)


def _event_json(event: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    # orjson: the same compact JSON as json.dumps, several times faster on the hot path
    return orjson.dumps(event, default=str).decode()


class Store:
    """Typed access to Régua's Redis data. ``await Store.connect(url)``; ``await close()``."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.r: Any = client  # redis-py's types do not know decode_responses=True: values are str
        self.url = ""
        self._upsert = client.register_script(UPSERT)
        self._dispatch = client.register_script(DISPATCH)
        self._claim = client.register_script(CLAIM)
        self._load = client.register_script(LOAD)
        self._count = client.register_script(COUNT)
        self._finish = client.register_script(FINISH)
        self._transition = client.register_script(TRANSITION)
        self._set_status = client.register_script(SET_STATUS)
        # the worker's XREADGROUP replies are read as Redis sends them (no dict per entry)
        self._raw_streams: Any = aioredis.Redis(connection_pool=client.connection_pool)
        self._raw_streams.set_response_callback("XREADGROUP", _as_sent)

    @classmethod
    async def connect(cls, url: str, *, check: bool = True) -> Store:
        # a blocking pool: concurrent batches wait for a connection instead of failing
        extra: dict[str, Any] = {}
        if url.startswith("redis://") and _HiredisConnection is not None:
            extra["connection_class"] = _HiredisConnection
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=5,
            health_check_interval=15,
            max_connections=64,
            timeout=30,
            **extra,
        )
        client = aioredis.Redis(connection_pool=pool)
        store = cls(client)
        store.url = url
        if check:
            try:
                await client.ping()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                await client.aclose()
                raise StoreError(
                    f"cannot reach Redis at {_safe_url(url)}: {exc}. Is it running? "
                    "Unset REDIS_URL to let Régua start its own."
                ) from exc
        return store

    async def close(self) -> None:
        await self.r.aclose()
        await self.r.connection_pool.disconnect()

    async def ping(self) -> bool:
        try:
            return bool(await self.r.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return False

    # ------------------------------------------------------------------ campaigns

    async def create_campaign(self, name: str, now: datetime, actor: str) -> bool:
        """Create (idempotent). Returns True if it was new."""
        if not keys.valid_campaign_name(name):
            raise StoreError(
                f"campaign name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        k = CampaignKeys(name)
        created = await self.r.hsetnx(keys.CAMPAIGNS, name, now.isoformat())
        if created:
            await self.r.hset(
                k.meta, mapping={"name": name, "state": "created", "created_at": now.isoformat()}
            )
            await self.audit_campaign(name, now, actor, "created", {})
        try:
            await self.r.xgroup_create(k.work, keys.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        return bool(created)

    async def transition(self, name: str, action: str, now: datetime, actor: str) -> tuple[str, str]:
        """Apply a lifecycle action atomically. Returns (result, previous state)."""
        sources, target = TRANSITIONS[action]
        k = CampaignKeys(name)
        result, previous = await self._transition(
            keys=[k.meta], args=[target, now.isoformat(), *sorted(sources)]
        )
        if result == "ok":
            await self.audit_campaign(name, now, actor, action, {"from": previous, "to": target})
            await self.r.publish(keys.WAKE, name)
        return str(result), str(previous or "")

    async def delete_campaign(self, name: str) -> int:
        """Remove a campaign and all its keys (the demo's fresh start). Returns keys removed."""
        k = CampaignKeys(name)
        removed = 0
        batch: list[str] = []
        async for key in self.r.scan_iter(match=f"{k.tag}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += await self.r.unlink(*batch)
                batch.clear()
        if batch:
            removed += await self.r.unlink(*batch)
        await self.r.hdel(keys.CAMPAIGNS, name)
        return removed

    async def campaign_names(self) -> list[str]:
        return sorted(await self.r.hkeys(keys.CAMPAIGNS))

    async def campaign(self, name: str) -> CampaignInfo | None:
        meta = await self.r.hgetall(CampaignKeys(name).meta)
        if not meta:
            return None
        return CampaignInfo(name, meta.get("state", "?"), meta.get("created_at", ""), meta)

    async def campaign_states(self, names: Sequence[str]) -> dict[str, str]:
        if not names:
            return {}
        async with self.r.pipeline(transaction=False) as p:
            for n in names:
                p.hget(CampaignKeys(n).meta, "state")
            states = await p.execute()
        return {n: s or "" for n, s in zip(names, states, strict=True)}

    async def status(self, name: str) -> dict[str, Any]:
        k = CampaignKeys(name)
        async with self.r.pipeline(transaction=False) as p:
            p.hgetall(k.meta)
            p.hgetall(k.stats)
            p.zcard(k.schedule)
            p.zrange(k.schedule, 0, 0, withscores=True)
            p.xlen(k.work)
            p.zcount(k.schedule, "-inf", "+inf")
            meta, stats, scheduled, first, backlog, _ = await p.execute()
        if not meta:
            raise StoreError(f"no campaign named {name!r} (see `python -m dialer campaigns`)")
        pending = 0
        try:
            info = await self.r.xpending(k.work, keys.GROUP)
            pending = int(info.get("pending", 0)) if isinstance(info, dict) else 0
        except ResponseError:
            pass
        return {
            "name": name,
            "state": meta.get("state"),
            "created_at": meta.get("created_at"),
            "state_at": meta.get("state_at"),
            "accounts": int(meta.get("accounts", 0)),
            "contacts": int(meta.get("contacts", 0)),
            "scheduled": scheduled,
            "next_due": from_ms(int(first[0][1])).isoformat() if first else None,
            "queued": max(0, backlog - pending),
            "in_flight": pending,
            "counters": {k2: int(v) for k2, v in sorted(stats.items())},
        }

    async def series(self, name: str, hours: int = 24 * 14) -> dict[str, Any]:
        """Outcomes per hour (the dashboard's plot): {"hours": [...], "series": {outcome: [...]}}."""
        raw = await self.r.hgetall(CampaignKeys(name).series)
        buckets: dict[int, dict[str, int]] = {}
        for field_name, value in raw.items():
            hour, _, stat = field_name.partition("|")
            buckets.setdefault(int(hour), {})[stat.removeprefix("outcome:")] = int(value)
        if not buckets:
            return {"hours": [], "series": {}}
        last = max(buckets)
        first = max(min(buckets), last - hours + 1)
        span = list(range(first, last + 1))
        names = sorted({k for b in buckets.values() for k in b})
        return {
            "hours": [from_ms(h * 3600 * 1000).isoformat() for h in span],
            "series": {n: [buckets.get(h, {}).get(n, 0) for h in span] for n in names},
        }

    # ------------------------------------------------------------------ ingest

    async def upsert_batch(self, campaign: str, rows: Sequence[tuple[str, str, str, str, int]]) -> list[int]:
        """rows: (account_id, packed account, phone field, packed phone, schedule ms); one script call.

        Returns per row 0 unchanged, 1 new account, 2 updated, 3 new phone on an account.
        """
        if not rows:
            return []
        k = CampaignKeys(campaign)
        keys_ = [k.schedule]
        args: list[Any] = []
        for account_id, acc, phone_field, phone, score in rows:
            keys_.append(k.account(account_id))
            args += [account_id, acc, phone_field, phone, score]
        return [int(x) for x in await self._upsert(keys=keys_, args=args)]

    async def add_counts(self, campaign: str, **counts: int) -> None:
        async with self.r.pipeline(transaction=False) as p:
            for name, value in counts.items():
                if value:
                    p.hincrby(CampaignKeys(campaign).meta, name, value)
            await p.execute()

    # ------------------------------------------------------------------ scheduling

    async def dispatch_due(
        self, campaign: str, now: datetime, limit: int, max_backlog: int
    ) -> tuple[int, datetime | None]:
        """Move due accounts to the work stream. Returns (moved or -1 if not running, next due)."""
        k = CampaignKeys(campaign)
        moved, nxt = await self._dispatch(
            keys=[k.meta, k.schedule, k.work], args=[to_ms(now), limit, max_backlog]
        )
        return int(moved), (from_ms(int(float(nxt))) if nxt else None)

    async def wake(self, campaign: str = "") -> None:
        await self.r.publish(keys.WAKE, campaign)

    async def ensure_group(self, campaign: str) -> None:
        try:
            await self.r.xgroup_create(CampaignKeys(campaign).work, keys.GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_work(
        self, consumer: str, campaigns: Sequence[str], count: int, block_ms: int | None
    ) -> list[WorkItem]:
        """New entries for this consumer; ``block_ms`` None returns at once."""
        if not campaigns:
            return []
        streams = {CampaignKeys(c).work: ">" for c in campaigns}
        by_key = {CampaignKeys(c).work: c for c in campaigns}
        try:
            reply = await self._raw_streams.xreadgroup(
                keys.GROUP, consumer, streams, count=count, block=block_ms
            )
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                for c in campaigns:
                    await self.ensure_group(c)
                return []
            raise
        # the reply as Redis sent it (RESP2 list or RESP3 map): [stream, [[id, [field, value]]]]
        items = []
        for stream, entries in reply.items() if isinstance(reply, dict) else reply or ():
            campaign = by_key[stream]
            for entry_id, fields in entries:
                for j in range(0, len(fields or ()), 2):  # a deleted entry comes back with none
                    if fields[j] == "a":
                        items.append(WorkItem(campaign, entry_id, fields[j + 1]))
                        break
        return items

    async def reclaim(self, campaign: str, consumer: str, min_idle_ms: int, count: int) -> list[WorkItem]:
        """Take over entries another (dead) worker left pending longer than ``min_idle_ms``."""
        k = CampaignKeys(campaign)
        try:
            reply = await self.r.xautoclaim(k.work, keys.GROUP, consumer, min_idle_ms, "0-0", count=count)
        except ResponseError as exc:
            if "NOGROUP" in str(exc):
                return []
            raise
        entries = reply[1] if len(reply) > 1 else []
        items = []
        for entry_id, fields in entries:
            if fields and "a" in fields:
                items.append(WorkItem(campaign, entry_id, fields["a"]))
            else:  # deleted meanwhile: acknowledge the husk
                await self.r.xack(k.work, keys.GROUP, entry_id)
        return items

    async def heartbeat(self, items: Iterable[WorkItem], consumer: str) -> None:
        """Reset the idle time of entries still being worked so nobody reclaims them."""
        by_campaign: dict[str, list[str]] = {}
        for it in items:
            by_campaign.setdefault(it.campaign, []).append(it.entry_id)
        for campaign, ids in by_campaign.items():
            await self.r.xclaim(CampaignKeys(campaign).work, keys.GROUP, consumer, 0, ids, justid=True)

    # ------------------------------------------------------------------ worker I/O

    async def load_accounts(self, campaign: str, account_ids: Sequence[str]) -> list[AccountState | None]:
        k = CampaignKeys(campaign)
        if not account_ids:
            return []
        raw = await self._load(keys=[k.account(a) for a in account_ids])
        out: list[AccountState | None] = []
        for account_id, flat in zip(account_ids, raw, strict=True):
            out.append(parse_account_fields(account_id, flat) if flat else None)
        return out

    async def suppressions(self, numbers: Iterable[str]) -> dict[str, tuple[Suppression, ...]]:
        numbers = list(dict.fromkeys(numbers))
        if not numbers:
            return {}
        fields = [f"{n}|{c}" for n in numbers for c in ("*", "voice", "sms")]
        values = await self.r.hmget(keys.SUPPRESS, fields)
        out: dict[str, list[Suppression]] = {}
        for f, v in zip(fields, values, strict=True):
            if v:
                s = suppression_from_json(f, v)
                if s is not None:
                    out.setdefault(s.number, []).append(s)
        return {n: tuple(v) for n, v in out.items()}

    async def claim_many(
        self, campaign: str, claims: Sequence[tuple[str, str, int, str]], now: datetime, lock_ms: int
    ) -> list[Claim]:
        """claims: (account_id, attempt_id, expected hv, packed attempt); one script call."""
        if not claims:
            return []
        k = CampaignKeys(campaign)
        args: list[Any] = [to_ms(now), lock_ms]
        for _, attempt_id, hv, packed in claims:
            args += [attempt_id, str(hv), packed]
        replies = await self._claim(keys=[k.account(c[0]) for c in claims], args=args)
        out = []
        for (account_id, attempt_id, _, _), (status, existing) in zip(claims, replies, strict=True):
            found = unpack_attempt(account_id, attempt_id, existing) if status == "exists" else None
            out.append(Claim(str(status), found))
        return out

    async def finish_many(self, finishes: Sequence[Finish]) -> None:
        """Write every result of a batch: one script call per campaign."""
        by_campaign: dict[str, list[Finish]] = {}
        for f in finishes:
            by_campaign.setdefault(f.campaign, []).append(f)
        for campaign, items in by_campaign.items():
            k = CampaignKeys(campaign)
            keys_: list[str] = [k.schedule, k.work, k.stats, k.series]
            args: list[Any] = [keys.GROUP, _hour_bucket(items)]
            for f in items:
                keys_ += [k.account(f.account_id), k.events(f.account_id)]
                args += [
                    f.attempt.attempt_id if f.attempt else "",
                    pack_attempt(f.attempt) if f.attempt and not f.drop_attempt else "",
                    f.entry_id,
                    f.account_id,
                    str(to_ms(f.next_at)) if f.next_at else "",
                    f.fallback,
                    "".join(f"{name}\x1f{value}\x1f" for name, value in f.stats.items()),
                    _event_json(f.events) if f.events else "",  # one list element per entry
                ]
            await self._finish(keys=keys_, args=args)

    async def write_effects(self, effects: Effects, now: datetime, actor: str) -> None:
        if not effects:
            return
        async with self.r.pipeline(transaction=False) as p:
            # one command per kind for the whole batch (the stream takes one XADD per event)
            if effects.suppressions:
                p.hset(
                    keys.SUPPRESS,
                    mapping={
                        _suppression_field(s): suppression_to_json(s, now, actor)
                        for s in effects.suppressions
                    },
                )
            at = now.isoformat()
            for kind, data in effects.audit:
                p.xadd(keys.AUDIT, {"at": at, "actor": actor, "kind": kind, "data": _event_json(data)})
            if effects.callbacks:
                score = to_ms(now)
                p.zadd(keys.CALLBACKS, {_event_json(cb): score for cb in effects.callbacks})
            if effects.links:
                p.hset(
                    keys.LINKS,
                    mapping={
                        link: f"{campaign}\x1f{account_id}" for link, campaign, account_id in effects.links
                    },
                )
            if effects.sms:  # one hash a day: one command for the whole batch, kept 30 days
                day_key = f"{keys.SMS_MESSAGE}{now.date().isoformat()}"
                p.hset(
                    day_key,
                    mapping={
                        f"{provider}:{message_id}": _event_json(
                            {"campaign": campaign, "account_id": account_id, "attempt_id": attempt_id}
                        )
                        for provider, message_id, campaign, account_id, attempt_id in effects.sms
                    },
                )
                p.expire(day_key, 30 * 86400)
            await p.execute()

    async def record_receipt(
        self, provider: str, message_id: str, status: str, error: str, now: datetime
    ) -> bool:
        """A delivery receipt: update the attempt the message belongs to. False if unknown."""
        days = [(now - timedelta(days=i)).date().isoformat() for i in range(31)]
        async with self.r.pipeline(transaction=False) as p:
            for day in days:
                p.hget(f"{keys.SMS_MESSAGE}{day}", f"{provider}:{message_id}")
            found = [v for v in await p.execute() if v]
        if not found:
            return False
        raw = found[0]
        ref = json.loads(raw)
        k = CampaignKeys(ref["campaign"])
        packed = await self.r.hget(k.account(ref["account_id"]), "h:" + ref["attempt_id"])
        event = {
            "at": now.isoformat(),
            "kind": "sms_receipt",
            "attempt": ref["attempt_id"],
            "provider": provider,
            "status": status,
            **({"error": error} if error else {}),
        }
        async with self.r.pipeline(transaction=False) as p:
            if packed and status in ("delivered", "failed"):
                attempt = unpack_attempt(ref["account_id"], ref["attempt_id"], packed)
                outcome = Outcome.SMS_DELIVERED if status == "delivered" else Outcome.SMS_FAILED
                p.hset(
                    k.account(ref["account_id"]),
                    "h:" + ref["attempt_id"],
                    pack_attempt(replace(attempt, outcome=outcome)),
                )
                p.hincrby(k.stats, f"outcome:{outcome}", 1)
            p.rpush(k.events(ref["account_id"]), _event_json([event]))
            await p.execute()
        return True

    async def count_phone_days(self, day_keys: Sequence[str]) -> list[int]:
        """Count one contact on each (phone, channel, local day) key; the new totals."""
        if not day_keys:
            return []
        return [int(n) for n in await self._count(keys=list(day_keys), args=[3 * 86400])]

    async def uncount_phone_days(self, day_keys: Sequence[str]) -> None:
        async with self.r.pipeline(transaction=False) as p:
            for key in day_keys:
                p.decr(key)
            await p.execute()

    # ------------------------------------------------------------------ callbacks

    async def callbacks(self, limit: int = 500) -> list[dict[str, Any]]:
        return [json.loads(e) for e in await self.r.zrange(keys.CALLBACKS, 0, limit - 1)]

    async def complete_callback(self, raw: Mapping[str, Any]) -> int:
        return int(await self.r.zrem(keys.CALLBACKS, _event_json(raw)))

    # ------------------------------------------------------------------ admin configuration

    async def config_overlay(self) -> tuple[str, int]:
        text, version = await self.r.mget(keys.CONFIG_OVERLAY, keys.CONFIG_VERSION)
        return text or "", int(version or 0)

    async def set_config_overlay(self, text: str, now: datetime, actor: str, summary: str) -> int:
        async with self.r.pipeline(transaction=True) as p:
            p.set(keys.CONFIG_OVERLAY, text)
            p.incr(keys.CONFIG_VERSION)
            p.xadd(
                keys.AUDIT,
                {
                    "at": now.isoformat(),
                    "actor": actor,
                    "kind": "config_change",
                    "data": _event_json({"summary": summary, "overlay": text}),
                },
            )
            _, version, _ = await p.execute()
        return int(version)

    # ------------------------------------------------------------------ IVR hand-off

    async def ivr_register(self, attempt_id: str, request: Mapping[str, str], ttl_s: int = 3600) -> None:
        """Before a call: what the IVR needs to find the account when Asterisk connects."""
        await self.r.set(f"{keys.IVR_REQUEST}{attempt_id}", _event_json(request), ex=ttl_s)

    async def ivr_request(self, attempt_id: str) -> dict[str, str] | None:
        raw = await self.r.get(f"{keys.IVR_REQUEST}{attempt_id}")
        return json.loads(raw) if raw else None

    async def ivr_save_result(self, attempt_id: str, result: Mapping[str, Any], ttl_s: int = 86400) -> None:
        await self.r.set(f"{keys.IVR_RESULT}{attempt_id}", _event_json(result), ex=ttl_s)

    async def ivr_result(self, attempt_id: str) -> dict[str, Any] | None:
        raw = await self.r.get(f"{keys.IVR_RESULT}{attempt_id}")
        return json.loads(raw) if raw else None

    # ------------------------------------------------------------------ payment links

    async def register_link(self, link: str, campaign: str, account_id: str) -> None:
        await self.r.hset(keys.LINKS, link, f"{campaign}\x1f{account_id}")

    async def resolve_link(self, link: str) -> tuple[str, str] | None:
        value = await self.r.hget(keys.LINKS, link)
        if not value:
            return None
        campaign, _, account_id = value.partition("\x1f")
        return campaign, account_id

    # ------------------------------------------------------------------ audit

    async def audit_campaign(
        self, campaign: str, now: datetime, actor: str, kind: str, data: Mapping[str, Any]
    ) -> None:
        await self.r.xadd(
            CampaignKeys(campaign).audit,
            {"at": now.isoformat(), "actor": actor, "kind": kind, "data": _event_json(data)},
        )

    async def audit_global(self, now: datetime, actor: str, kind: str, data: Mapping[str, Any]) -> None:
        await self.r.xadd(
            keys.AUDIT, {"at": now.isoformat(), "actor": actor, "kind": kind, "data": _event_json(data)}
        )

    async def timeline(self, account_id: str, campaign: str | None = None) -> list[dict[str, Any]]:
        """An account's events across campaigns (or one), oldest first."""
        names = [campaign] if campaign else await self.campaign_names()
        events: list[dict[str, Any]] = []
        for name in names:
            for raw in await self.r.lrange(CampaignKeys(name).events(account_id), 0, -1):
                decoded = json.loads(raw)  # the events one finished entry wrote together
                for event in decoded if isinstance(decoded, list) else [decoded]:
                    event.setdefault("campaign", name)
                    events.append(event)
        events.sort(key=lambda e: str(e.get("at", "")))
        return events

    async def set_account_status(
        self,
        account_id: str,
        status: AccountStatus,
        now: datetime,
        actor: str,
        *,
        note: str = "",
        campaign: str | None = None,
    ) -> list[dict[str, Any]]:
        """Mark an account paid, disputed, closed or open again, in every campaign that holds
        it (or one). Takes effect at once: a worker that planned a contact on the old status
        finds its claim stale and decides again. Reopening puts the account back on the
        schedule. Returns one entry per campaign holding the account (empty: none does)."""
        names = [campaign] if campaign else await self.campaign_names()
        changes: list[dict[str, Any]] = []
        for name in names:
            k = CampaignKeys(name)
            for _ in range(10):  # optimistic: a worker or a load changed the account meanwhile
                packed = await self.r.hget(k.account(account_id), "a")
                if packed is None:
                    break
                account = unpack_account(account_id, packed)
                old = account.status
                if old is status:
                    changes.append({"campaign": name, "from": old, "to": status, "changed": False})
                    break
                event = {"at": now.isoformat(), "kind": "status", "from": old, "to": status, "actor": actor}
                if note:
                    event["note"] = note
                reopen = str(to_ms(now)) if status is AccountStatus.OPEN else ""
                done = await self._set_status(
                    keys=[k.account(account_id), k.events(account_id), k.schedule],
                    args=[
                        packed,
                        pack_account(replace(account, status=status)),
                        _event_json([event]),
                        reopen,
                        account_id,
                    ],
                )
                if done:
                    changes.append({"campaign": name, "from": old, "to": status, "changed": True})
                    break
            else:
                raise StoreError(f"account {account_id} in {name} kept changing; try again")
        if any(c["changed"] for c in changes):
            data = {
                "account": account_id,
                "status": status,
                "campaigns": [c["campaign"] for c in changes if c["changed"]],
            }
            if note:
                data["note"] = note
            await self.audit_global(now, actor, "account_status", data)
            if status is AccountStatus.OPEN:
                await self.wake()
        return changes

    async def iter_accounts(
        self, campaign: str, batch: int = 500
    ) -> AsyncIterator[list[tuple[AccountState, datetime | None, frozenset[str]]]]:
        """Every account of a campaign, in batches: its state, its next schedule entry and
        which of its phones are suppressed (any channel). Streams: only the ids already seen
        are kept, never the accounts."""
        k = CampaignKeys(campaign)
        prefix = f"{k.tag}:a:"
        ids: list[str] = []

        async def load(chunk: list[str]) -> list[tuple[AccountState, datetime | None, frozenset[str]]]:
            states = await self.load_accounts(campaign, chunk)
            scores = await self.r.zmscore(k.schedule, chunk)
            found = [(s, sc) for s, sc in zip(states, scores, strict=True) if s is not None]
            suppressed = await self.suppressions(p.number for s, _ in found for p in s.phones)
            return [
                (
                    s,
                    from_ms(int(sc)) if sc is not None else None,
                    frozenset(p.number for p in s.phones if p.number in suppressed),
                )
                for s, sc in found
            ]

        seen: set[str] = set()  # SCAN may return a key twice (if Redis resizes meanwhile)
        async for key in self.r.scan_iter(match=f"{prefix}*", count=1000, _type="hash"):
            account_id = key[len(prefix) :]
            if account_id in seen:
                continue
            seen.add(account_id)
            ids.append(account_id)
            if len(ids) >= batch:
                yield await load(ids)
                ids = []
        if ids:
            yield await load(ids)

    async def campaign_audit(self, campaign: str) -> list[dict[str, Any]]:
        out = []
        for entry_id, fields in await self.r.xrange(CampaignKeys(campaign).audit):
            out.append({"id": entry_id, **fields, "data": json.loads(fields.get("data", "{}"))})
        return out

    async def global_audit(self, count: int = 1000) -> list[dict[str, Any]]:
        out = []
        for entry_id, fields in await self.r.xrevrange(keys.AUDIT, count=count):
            out.append({"id": entry_id, **fields, "data": json.loads(fields.get("data", "{}"))})
        return out[::-1]

    # ------------------------------------------------------------------ suppression

    async def suppress(self, entries: Sequence[Suppression], now: datetime, actor: str) -> int:
        """Add suppression entries (global, every campaign). Returns how many were new."""
        if not entries:
            return 0
        async with self.r.pipeline(transaction=False) as p:
            for s in entries:
                p.hset(keys.SUPPRESS, _suppression_field(s), suppression_to_json(s, now, actor))
            results = await p.execute()
        return sum(int(r) for r in results)

    async def unsuppress(self, number: str, channel: Channel | None) -> int:
        field_name = f"{number}|{channel.value if channel else '*'}"
        return int(await self.r.hdel(keys.SUPPRESS, field_name))

    async def suppression_list(self, limit: int = 1000) -> list[dict[str, Any]]:
        out = []
        async for f, v in self.r.hscan_iter(keys.SUPPRESS, count=500):
            entry = json.loads(v)
            entry["number"], entry["channel"] = f.split("|", 1)
            out.append(entry)
            if len(out) >= limit:
                break
        return out


def _suppression_field(s: Suppression) -> str:
    return f"{s.number}|{s.channel.value if s.channel else '*'}"


def suppression_to_json(s: Suppression, now: datetime, actor: str) -> str:
    return _event_json(
        {
            "reason": s.reason.value,
            "effective_from": s.effective_from.isoformat() if s.effective_from else None,
            "source": s.source,
            "added_at": now.isoformat(),
            "actor": actor,
        }
    )


def suppression_from_json(field_name: str, value: str) -> Suppression | None:
    number, _, channel = field_name.partition("|")
    try:
        data = json.loads(value)
        eff = data.get("effective_from")
        return Suppression(
            number=number,
            reason=SuppressionReason(data["reason"]),
            channel=None if channel == "*" else Channel(channel),
            effective_from=datetime.fromisoformat(eff) if eff else None,
            source=str(data.get("source", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def parse_account_fields(account_id: str, flat: Sequence[str]) -> AccountState | None:
    """An account hash as HGETALL returns it (field, value, field, value, ...)."""
    packed: str | None = None
    hv, lock, fallback = "0", None, None
    phones = []
    history = []
    for i in range(0, len(flat), 2):
        f, v = flat[i], flat[i + 1]
        kind = f[:2]
        if kind == "p:":
            phones.append(unpack_phone(f[2:], v))
        elif kind == "h:":
            history.append(unpack_attempt(account_id, f[2:], v))
        elif f == "a":
            packed = v
        elif f == "hv":
            hv = v
        elif f == "lk":
            lock = v
        elif f == "fb":
            fallback = v
    if packed is None:
        return None
    history.sort(key=_attempt_order)
    return AccountState(
        unpack_account(account_id, packed), tuple(phones), tuple(history), int(hv), lock, fallback
    )


def _as_sent(response: Any, **options: Any) -> Any:
    return response


def _attempt_order(a: Attempt) -> tuple[datetime, int, int]:
    """History order: by time, then by the stream entry the attempt came from (attempt ids
    end in the entry id, ``<ms>-<seq>``), so equal times keep the order they were made in."""
    ms, _, seq = a.attempt_id.rpartition(":")[2].partition("-")
    try:
        return a.at, int(ms), int(seq)
    except ValueError:
        return a.at, 0, 0


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url
