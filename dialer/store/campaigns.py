"""Campaigns: lifecycle, counters, plots, loading rows and handing due entries out."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError, ResponseError

from dialer.errors import InputError, UnknownCampaign
from dialer.store import keys
from dialer.store.base import StoreBase, mapped_error
from dialer.store.codec import event_json, from_ms, to_ms
from dialer.store.keys import CampaignKeys
from dialer.store.values import TRANSITIONS, CampaignInfo


class CampaignStore(StoreBase):
    async def create_campaign(self, name: str, now: datetime, actor: str) -> bool:
        """Create (idempotent). Returns True if it was new."""
        if not keys.valid_campaign_name(name):
            raise InputError(
                f"campaign name {name!r} must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        k = CampaignKeys(name)
        created = await self._r.hsetnx(keys.CAMPAIGNS, name, now.isoformat())
        if created:
            await self._r.hset(
                k.meta, mapping={"name": name, "state": "created", "created_at": now.isoformat()}
            )
            await self.audit_campaign(name, now, actor, "created", {})
        try:
            await self._r.xgroup_create(k.work, keys.GROUP, id="0", mkstream=True)
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
            await self._r.publish(keys.WAKE, name)
        return str(result), str(previous or "")

    async def delete_campaign(self, name: str) -> int:
        """Remove a campaign and all its keys (the demo's fresh start). Returns keys removed."""
        k = CampaignKeys(name)
        removed = 0
        batch: list[str] = []
        async for key in self._r.scan_iter(match=f"{k.tag}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += await self._r.unlink(*batch)
                batch.clear()
        if batch:
            removed += await self._r.unlink(*batch)
        await self._r.hdel(keys.CAMPAIGNS, name)
        return removed

    async def campaign_names(self) -> list[str]:
        return sorted(await self._r.hkeys(keys.CAMPAIGNS))

    async def campaign(self, name: str) -> CampaignInfo | None:
        meta = await self._r.hgetall(CampaignKeys(name).meta)
        if not meta:
            return None
        return CampaignInfo(name, meta.get("state", "?"), meta.get("created_at", ""), meta)

    async def campaign_states(self, names: Sequence[str]) -> dict[str, str]:
        if not names:
            return {}
        async with self._r.pipeline(transaction=False) as p:
            for n in names:
                p.hget(CampaignKeys(n).meta, "state")
            states = await p.execute()
        return {n: s or "" for n, s in zip(names, states, strict=True)}

    async def status(self, name: str) -> dict[str, Any]:
        k = CampaignKeys(name)
        async with self._r.pipeline(transaction=False) as p:
            p.hgetall(k.meta)
            p.hgetall(k.stats)
            p.zcard(k.schedule)
            p.zrange(k.schedule, 0, 0, withscores=True)
            p.xlen(k.work)
            p.zcount(k.schedule, "-inf", "+inf")
            p.hmget(keys.AGREEMENT_STATS, [f"{name}|{f}" for f in AGREEMENT_FIELDS])
            meta, stats, scheduled, first, backlog, _, agreed = await p.execute()
        if not meta:
            raise UnknownCampaign(f"no campaign named {name!r} (see `python -m dialer campaigns`)")
        pending = 0
        try:
            info = await self._r.xpending(k.work, keys.GROUP)
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
            # money the régua brought in (payments less refunds), credited to this campaign
            "recovered": str((Decimal(int(stats.get("recovered_cents", 0))) / 100).quantize(Decimal("0.01"))),
            "payments": int(stats.get("payments", 0)),
            "agreements": _agreements(agreed),
        }

    async def series(self, name: str, hours: int = 24 * 14) -> dict[str, Any]:
        """Outcomes per hour (the dashboard's plot): {"hours": [...], "series": {outcome: [...]}}."""
        raw = await self._r.hgetall(CampaignKeys(name).series)
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
        async with self._r.pipeline(transaction=False) as p:
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
        await self._r.publish(keys.WAKE, campaign)

    async def wake_listener(self) -> WakeListener:
        """A subscription to wake-ups (a campaign loaded, started, resumed; work due soon)."""
        pubsub = self._r.pubsub()
        await pubsub.subscribe(keys.WAKE)
        return WakeListener(pubsub)

    async def audit_campaign(
        self, campaign: str, now: datetime, actor: str, kind: str, data: Mapping[str, Any]
    ) -> None:
        await self._r.xadd(
            CampaignKeys(campaign).audit,
            {"at": now.isoformat(), "actor": actor, "kind": kind, "data": event_json(data)},
        )

    async def campaign_audit(self, campaign: str) -> list[dict[str, Any]]:
        out = []
        for entry_id, fields in await self._r.xrange(CampaignKeys(campaign).audit):
            out.append({"id": entry_id, **fields, "data": json.loads(fields.get("data", "{}"))})
        return out


class WakeListener:
    """What a sleeping scheduler listens to; ``close()`` when done."""

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a wake-up; whether one came."""
        try:
            msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=seconds)
        except (RedisError, OSError) as exc:
            raise mapped_error(exc) from exc
        return msg is not None

    async def close(self) -> None:
        try:
            await self._pubsub.unsubscribe(keys.WAKE)
            await self._pubsub.aclose()
        except Exception:  # closing a dead subscription: nothing to keep
            pass


AGREEMENT_FIELDS = ("made", "kept", "broken", "made_cents", "paid_cents")


def _agreements(values: list[str | None]) -> dict[str, Any]:
    """Agreements made from this campaign: how many, where they stand, their money."""
    n = dict(zip(AGREEMENT_FIELDS, (int(v or 0) for v in values), strict=True))
    return {
        "made": n["made"],
        "current": n["made"] - n["kept"] - n["broken"],
        "kept": n["kept"],
        "broken": n["broken"],
        "amount": str((Decimal(n["made_cents"]) / 100).quantize(Decimal("0.01"))),
        "paid": str((Decimal(n["paid_cents"]) / 100).quantize(Decimal("0.01"))),
    }
