"""The worker's I/O: read and reclaim entries, load accounts, claim, finish, side effects."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from redis.exceptions import ResponseError

from dialer.domain import Attempt, Channel
from dialer.errors import StoreUnavailable
from dialer.store import keys
from dialer.store.base import StoreBase
from dialer.store.codec import (
    event_json,
    pack_attempt,
    parse_account_fields,
    suppression_field,
    suppression_to_json,
    to_ms,
    unpack_attempt,
)
from dialer.store.keys import CampaignKeys
from dialer.store.values import AccountState, Claim, Effects, Finish, WorkItem


class WorkStore(StoreBase):
    async def ensure_group(self, campaign: str) -> None:
        try:
            await self._r.xgroup_create(CampaignKeys(campaign).work, keys.GROUP, id="0", mkstream=True)
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
            if self.cluster and len(streams) > 1:  # one slot per campaign: one read each, at once
                parts = await asyncio.gather(
                    *(
                        self._raw_streams.xreadgroup(
                            keys.GROUP, consumer, {s: ">"}, count=count, block=block_ms
                        )
                        for s in streams
                    )
                )
                reply = [
                    item
                    for part in parts
                    for item in (part.items() if isinstance(part, dict) else part or ())
                ]
            else:
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
            reply = await self._r.xautoclaim(k.work, keys.GROUP, consumer, min_idle_ms, "0-0", count=count)
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
                await self._r.xack(k.work, keys.GROUP, entry_id)
        return items

    async def heartbeat(self, items: Iterable[WorkItem], consumer: str) -> None:
        """Reset the idle time of entries still being worked so nobody reclaims them."""
        by_campaign: dict[str, list[str]] = {}
        for it in items:
            by_campaign.setdefault(it.campaign, []).append(it.entry_id)
        for campaign, ids in by_campaign.items():
            await self._r.xclaim(CampaignKeys(campaign).work, keys.GROUP, consumer, 0, ids, justid=True)

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

    async def claim_many(
        self, campaign: str, claims: Sequence[tuple[Attempt, int]], now: datetime, lock_ms: int
    ) -> list[Claim]:
        """claims: (the attempt about to be made, the history version it was planned on);
        one script call. Per claim: new (ours: go), exists (a reclaimed entry: reconcile),
        stale (the account changed: plan again) or locked (another attempt holds it)."""
        if not claims:
            return []
        k = CampaignKeys(campaign)
        args: list[Any] = [to_ms(now), lock_ms]
        for attempt, hv in claims:
            args += [attempt.attempt_id, str(hv), pack_attempt(attempt)]
        keys_ = [k.account(a.account_id) for a, _ in claims]
        if self.wait_replicas:
            replies = await self._claim_durably(keys_, args)
        else:
            replies = await self._claim(keys=keys_, args=args)
        out = []
        for (attempt, _), (status, existing) in zip(claims, replies, strict=True):
            found = (
                unpack_attempt(attempt.account_id, attempt.attempt_id, existing)
                if status == "exists"
                else None
            )
            out.append(Claim(str(status), found))
        return out

    async def _claim_durably(self, keys_: list[str], args: list[Any]) -> Any:
        """The claim script and ``WAIT`` on one connection (WAIT waits for *that
        connection's* writes): the claims are on the replicas before any call is placed, or
        no call is. Redis replicates asynchronously, and a primary lost before its replica
        had a claim would let a reclaimed entry dial the same attempt again. It waits for
        ``wait_replicas`` or the replicas the primary has, if fewer (checked every few
        seconds): a primary without a replica has nothing to fail over to — after a failover
        the promoted one carries on alone until a replica joins it. Raises
        ``StoreUnavailable`` when a replica it has does not acknowledge in time: the batch
        backs off; its entries come back and find their claims (reconciled, never redialled)."""
        wanted = min(self.wait_replicas, await self._replicas())
        if not wanted:
            return await self._claim(keys=keys_, args=args)
        async with self._r.pipeline(transaction=False) as p:
            await self._claim(keys=keys_, args=args, client=p)
            p.execute_command("WAIT", wanted, self.wait_timeout_ms)
            replies, acked = await p.execute()
        if int(acked) < wanted:
            self._replicas_at = 0.0  # look again: the replica may be gone
            raise StoreUnavailable(
                f"claims reached {acked} of {wanted} replicas within {self.wait_timeout_ms} ms: "
                "not calling until a replica has them"
            )
        return replies

    async def _replicas(self) -> int:
        """Replicas the primary has now (cached for 5 s: one INFO per worker every 5 s)."""
        now = time.monotonic()
        if now - self._replicas_at > 5.0:
            info = await self._r.info("replication")
            self._replicas_known = int(info.get("connected_slaves", 0))
            self._replicas_at = now
        return self._replicas_known

    async def finish_many(self, finishes: Sequence[Finish]) -> list[Finish]:
        """Write every result of a batch: one script call per campaign. Returns the finishes
        Redis refused (their account's keys hold another type: nothing of them is written)."""
        refused: list[Finish] = []
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
                    event_json(f.events) if f.events else "",  # one list element per entry
                ]
            refused += [items[int(i) - 1] for i in await self._finish(keys=keys_, args=args)]
        return refused

    async def write_effects(self, effects: Effects, now: datetime, actor: str) -> None:
        """Suppressions, audit, callbacks, payment links and the SMS index of a batch, in one
        pipeline (``effects.uncount`` is not written here: see ``uncount_phone_days``)."""
        if not effects:
            return
        async with self._r.pipeline(transaction=False) as p:
            # one command per kind for the whole batch (the stream takes one XADD per event)
            if effects.suppressions:
                p.hset(
                    keys.SUPPRESS,
                    mapping={
                        suppression_field(s): suppression_to_json(s, now, actor) for s in effects.suppressions
                    },
                )
            at = now.isoformat()
            for kind, data in effects.audit:
                p.xadd(keys.AUDIT, {"at": at, "actor": actor, "kind": kind, "data": event_json(data)})
            if effects.callbacks:
                score = to_ms(now)
                p.zadd(keys.CALLBACKS, {event_json(cb): score for cb in effects.callbacks})
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
                        f"{provider}:{message_id}": event_json(
                            {"campaign": campaign, "account_id": account_id, "attempt_id": attempt_id}
                        )
                        for provider, message_id, campaign, account_id, attempt_id in effects.sms
                    },
                )
                p.expire(day_key, 30 * 86400)
            await p.execute()

    async def count_phone_days(self, days: Sequence[tuple[str, Channel, date]]) -> list[int]:
        """Count one contact on each (phone, channel, local day); the new totals."""
        if not days:
            return []
        counters = [keys.phone_day(number, channel, day) for number, channel, day in days]
        return [int(n) for n in await self._count(keys=counters, args=[3 * 86400])]

    async def uncount_phone_days(self, days: Sequence[tuple[str, Channel, date]]) -> None:
        """Give back contacts counted but never made."""
        async with self._r.pipeline(transaction=False) as p:
            for number, channel, day in days:
                p.decr(keys.phone_day(number, channel, day))
            await p.execute()


def _hour_bucket(items: Sequence[Finish]) -> str:
    """The hour (epoch hours) a batch's outcomes are counted in, for the dashboard's series."""
    for f in items:
        if f.attempt is not None:
            return str(int(f.attempt.at.timestamp()) // 3600)
    return "0"
