"""The scheduler: moves due accounts from each running campaign's schedule to its work stream.

The move is one Lua script per batch (``Store.dispatch_due``), so any number of
schedulers on any number of hosts never hand out the same entry twice. Between rounds
it sleeps until the earliest next due instant (in its clock's time), woken early by a
``WAKE`` message when a campaign is loaded, started or resumed — it never polls hot.
The work stream is kept short (``max_backlog``): the schedule, not the stream, is where
waiting work lives, so pausing a campaign leaves little to hand back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from dialer.clock import Clock
from dialer.store import keys
from dialer.store.store import Store

log = logging.getLogger("regua.scheduler")


class Scheduler:
    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        batch: int = 500,
        max_backlog: int = 2000,
        max_sleep_s: float = 5.0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.batch = batch
        self.max_backlog = max_backlog
        self.max_sleep_s = max_sleep_s
        self.dispatched = 0

    async def run_once(self) -> tuple[int, datetime | None]:
        """One round over every campaign. Returns (entries moved, earliest next due)."""
        now = self.clock.now()
        moved_total = 0
        earliest: datetime | None = None
        for name in await self.store.campaign_names():
            while True:
                moved, nxt = await self.store.dispatch_due(name, now, self.batch, self.max_backlog)
                if moved < 0:  # not running
                    break
                moved_total += moved
                if nxt is not None and (earliest is None or nxt < earliest):
                    earliest = nxt
                if moved < self.batch:
                    break
        self.dispatched += moved_total
        return moved_total, earliest

    async def run(self, stop: asyncio.Event) -> None:
        pubsub = self.store.r.pubsub()
        await pubsub.subscribe(keys.WAKE)
        try:
            while not stop.is_set():
                try:
                    moved, earliest = await self.run_once()
                except Exception:  # Redis away: say so, back off, try again
                    log.warning("scheduler round failed; retrying in 1s", exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                if moved:
                    # the stream may be full: give workers a moment, then go again
                    await asyncio.sleep(0.01)
                    continue
                wait = self.max_sleep_s
                if earliest is not None:
                    ahead = (earliest - self.clock.now()).total_seconds()
                    # due but not moved: the work stream is full; let the workers drain it
                    wait = min(wait, max(0.05, self.clock.wall_seconds(ahead)))
                await self._wait(pubsub, stop, wait)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe(keys.WAKE)
                await pubsub.aclose()

    async def _wait(self, pubsub: object, stop: asyncio.Event, seconds: float) -> None:
        """Sleep ``seconds`` of real time, or less if woken or stopped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not stop.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return
            msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=min(left, 0.25))  # type: ignore[attr-defined]
            if msg is not None:
                return
