"""Channel bookkeeping: SMS receipts, the sandbox outbox, the SMS ledger and shared rates,
voice pacing (leases and call-rate buckets), and the short-call counters."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from dialer.domain import Outcome
from dialer.store import keys
from dialer.store.base import StoreBase
from dialer.store.codec import event_json, pack_attempt, unpack_attempt
from dialer.store.keys import CampaignKeys


class ChannelStore(StoreBase):
    async def record_receipt(
        self, provider: str, message_id: str, status: str, error: str, now: datetime
    ) -> bool:
        """A delivery receipt: update the attempt the message belongs to. False if unknown."""
        days = [(now - timedelta(days=i)).date().isoformat() for i in range(31)]
        async with self._r.pipeline(transaction=False) as p:
            for day in days:
                p.hget(f"{keys.SMS_MESSAGE}{day}", f"{provider}:{message_id}")
            found = [v for v in await p.execute() if v]
        if not found:
            return False
        raw = found[0]
        ref = json.loads(raw)
        k = CampaignKeys(ref["campaign"])
        packed = await self._r.hget(k.account(ref["account_id"]), "h:" + ref["attempt_id"])
        event = {
            "at": now.isoformat(),
            "kind": "sms_receipt",
            "attempt": ref["attempt_id"],
            "provider": provider,
            "status": status,
            **({"error": error} if error else {}),
        }
        async with self._r.pipeline(transaction=False) as p:
            if packed and status in ("delivered", "failed"):
                attempt = unpack_attempt(ref["account_id"], ref["attempt_id"], packed)
                outcome = Outcome.SMS_DELIVERED if status == "delivered" else Outcome.SMS_FAILED
                p.hset(
                    k.account(ref["account_id"]),
                    "h:" + ref["attempt_id"],
                    pack_attempt(replace(attempt, outcome=outcome)),
                )
                p.hincrby(k.stats, f"outcome:{outcome}", 1)
            p.rpush(k.events(ref["account_id"]), event_json([event]))
            await p.execute()
        return True

    # ------------------------------------------------------------------ the sandbox outbox

    async def outbox_send(
        self, now: datetime, messages: Sequence[tuple[str, str, str, str, str]]
    ) -> list[tuple[str, bool]]:
        """SANDBOX: append (key, to, text, campaign, level) messages to the outbox, each key
        once (one script for the batch). Per message: (outbox id, whether it was a duplicate)."""
        if not messages:
            return []
        args: list[str] = [now.isoformat()]
        for m in messages:
            args += list(m)
        replies = await self._outbox_send(keys=[keys.SMS_SENT, keys.OUTBOX], args=args)
        return [(str(message_id), bool(int(duplicate))) for message_id, duplicate in replies]

    async def outbox(self, limit: int = 50) -> list[dict[str, str]]:
        """SANDBOX: the latest messages the sandbox gateway 'sent', newest first."""
        return [{"id": i, **f} for i, f in await self._r.xrevrange(keys.OUTBOX, count=limit)]

    async def outbox_size(self) -> int:
        return int(await self._r.xlen(keys.OUTBOX))

    # ------------------------------------------------------------------ the SMS ledger

    async def sms_claim(self, key: str, marker: str) -> str | None:
        """Claim an idempotency key with ``marker``; the value already there if it was taken."""
        existing = await self._sms_claim(keys=[keys.SMS_SENT], args=[key, marker])
        return None if existing is None else str(existing)

    async def sms_record(self, key: str, marker: str, value: str) -> None:
        """Record what a claimed key became (only over our own marker)."""
        await self._sms_record(keys=[keys.SMS_SENT], args=[key, marker, value])

    async def sms_release(self, key: str, marker: str) -> None:
        """Give a claim back after a definite failure (only our own)."""
        await self._sms_release(keys=[keys.SMS_SENT], args=[key, marker])

    async def rate_reserve(self, lane: str, provider: str, rate: float, burst: float, now_ms: int) -> int:
        """Reserve a token of a provider's shared bucket: the wait in ms (0: go now)."""
        return int(
            await self._rate_reserve(keys=[keys.sms_rate_bucket(lane, provider)], args=[rate, burst, now_ms])
        )

    # ------------------------------------------------------------------ pacing (voice)

    async def acquire_trunk_slot(
        self, trunk: str, attempt_id: str, now_ms: int, until_ms: int, max_channels: int, cps: float
    ) -> tuple[bool, int]:
        """A channel of ``trunk`` within its calls per second: (granted, retry hint in ms).
        The rate is a sliding window: no second ever sees more than the carrier's CPS (a
        token bucket of ``cps`` tokens let twice that through in the second after an idle
        spell — measured on two real Asterisks). Calls asking in the same instant share one
        round trip (``Coalescer``); the script stays one per call."""
        leases, window = keys.trunk_keys(trunk)
        args = [now_ms, until_ms, attempt_id, max_channels, cps]
        ok, wait = await self._coalesce.submit(
            lambda p: self._queue_script(p, self._pace, [leases, window], args)
        )
        return bool(ok), int(wait)

    async def acquire_campaign_slot(
        self, campaign: str, attempt_id: str, now_ms: int, until_ms: int, max_calls: int
    ) -> tuple[bool, int]:
        """One of the campaign's concurrent calls: (granted, retry hint in ms)."""
        leases = CampaignKeys(campaign).leases
        args = [now_ms, until_ms, attempt_id, max_calls, 0]
        ok, wait = await self._coalesce.submit(
            lambda p: self._queue_script(p, self._pace, [leases, leases + ":nobucket"], args)
        )
        return bool(ok), int(wait)

    async def release_slots(self, trunk: str | None, campaign: str | None, attempt_id: str) -> None:
        """Give back a call's trunk and campaign slots (calls ending together share one
        round trip)."""
        leases = [keys.trunk_keys(trunk)[0]] if trunk else []
        if campaign:
            leases.append(CampaignKeys(campaign).leases)

        async def queue(p: Any) -> None:
            for key in leases:
                p.zrem(key, attempt_id)

        if leases:
            await self._coalesce.submit(queue, many=True)

    async def trunk_calls(self, trunk: str, now_ms: int) -> int:
        """Calls holding a live lease on ``trunk`` (every worker's)."""
        return int(await self._r.zcount(keys.trunk_keys(trunk)[0], now_ms, "+inf"))

    # ------------------------------------------------------------------ short calls (Anatel)

    async def count_answered_call(self, day: str, trunk: str, short: bool) -> tuple[int, int]:
        """Count an answered call (short: ≤ the short-call threshold) for the day; the day's
        totals over every trunk: (answered, short)."""
        key = keys.SHORT_CALLS + day

        async def queue(p: Any) -> None:
            p.hincrby(key, f"{trunk}|answered", 1)
            p.hincrby(key, "all|answered", 1)
            if short:
                p.hincrby(key, f"{trunk}|short", 1)
                p.hincrby(key, "all|short", 1)
            p.expire(key, 40 * 86400)
            p.hmget(key, "all|answered", "all|short")

        *_, (answered, shorts) = await self._coalesce.submit(queue, many=True)
        return int(answered or 0), int(shorts or 0)

    async def short_calls(self, day: str) -> dict[str, dict[str, int]]:
        """Per trunk (and ``all``): answered and short calls of a day."""
        trunks: dict[str, dict[str, int]] = {}
        for key, value in (await self._r.hgetall(keys.SHORT_CALLS + day)).items():
            trunk, _, kind = key.partition("|")
            trunks.setdefault(trunk, {"answered": 0, "short": 0})[kind] = int(value)
        return trunks
