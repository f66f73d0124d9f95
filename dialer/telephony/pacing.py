"""Pacing across every worker: concurrent channels and call attempts per second per trunk,
and concurrent calls per campaign, counted in the store.

A slot is a lease — the attempt id in a sorted set scored by when it expires — so a worker
that dies does not leak capacity: its leases lapse (and the worker that reconciles its
attempts releases them at once). The rate is a sliding window: at most CPS calls in any
second. Each limit is one script on one key family (``Store.acquire_trunk_slot`` /
``acquire_campaign_slot``), so it stays atomic on Redis Cluster too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dialer.errors import TelephonyDown


class PacingStore(Protocol):
    """What pacing needs of the store."""

    async def acquire_trunk_slot(
        self, trunk: str, attempt_id: str, now_ms: int, until_ms: int, max_channels: int, cps: float
    ) -> tuple[bool, int]: ...

    async def acquire_campaign_slot(
        self, campaign: str, attempt_id: str, now_ms: int, until_ms: int, max_calls: int
    ) -> tuple[bool, int]: ...

    async def release_slots(self, trunk: str | None, campaign: str | None, attempt_id: str) -> None: ...

    async def trunk_calls(self, trunk: str, now_ms: int) -> int: ...


@dataclass(frozen=True, slots=True)
class Grant:
    ok: bool
    retry_ms: int = 0  # when refused: how long until a slot or a token frees up (a hint)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


class Pacer:
    def __init__(self, store: PacingStore) -> None:
        self.store = store

    async def acquire_trunk(
        self, trunk: str, attempt_id: str, now: datetime, lease_s: float, max_channels: int, cps: float
    ) -> Grant:
        ok, wait = await self.store.acquire_trunk_slot(
            trunk, attempt_id, _ms(now), _ms(now) + int(lease_s * 1000), max_channels, cps
        )
        return Grant(ok, wait)

    async def acquire_campaign(
        self, campaign: str, attempt_id: str, now: datetime, lease_s: float, max_calls: int
    ) -> Grant:
        ok, wait = await self.store.acquire_campaign_slot(
            campaign, attempt_id, _ms(now), _ms(now) + int(lease_s * 1000), max_calls
        )
        return Grant(ok, wait)

    async def acquire(
        self,
        campaign: str,
        trunk: str,
        attempt_id: str,
        now: Callable[[], datetime],
        *,
        lease_s: float,
        campaign_max: int,
        trunk_max: int,
        cps: float,
        give_up_s: float = 60.0,
    ) -> None:
        """A campaign slot and a trunk slot for one call, waiting (up to ``give_up_s``) while
        either is at capacity. Raises ``TelephonyDown`` when they stay full."""
        deadline = time.monotonic() + give_up_s
        while True:
            at = now()
            g = await self.acquire_campaign(campaign, attempt_id, at, lease_s, campaign_max)
            if g.ok:
                t = await self.acquire_trunk(trunk, attempt_id, at, lease_s, trunk_max, cps)
                if t.ok:
                    return
                await self.store.release_slots(None, campaign, attempt_id)
                g = t
            if time.monotonic() > deadline:
                raise TelephonyDown(f"trunk {trunk} or campaign {campaign} at capacity for {give_up_s:.0f} s")
            # a channel frees up when a call ends (any moment); a token after retry_ms
            await asyncio.sleep(min(max(g.retry_ms, 20), 200) / 1000)

    async def release(self, trunk: str | None, campaign: str | None, attempt_id: str) -> None:
        await self.store.release_slots(trunk, campaign, attempt_id)

    async def active(self, trunk: str, now: datetime) -> int:
        return await self.store.trunk_calls(trunk, _ms(now))
