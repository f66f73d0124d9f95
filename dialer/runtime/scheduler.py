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
import logging
from datetime import datetime

from dialer.clock import Clock
from dialer.errors import StoreError
from dialer.store import Store, WakeListener

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
        listener: WakeListener | None = None
        try:
            while not stop.is_set():
                try:
                    if listener is None:
                        listener = await self.store.wake_listener()
                    moved, earliest = await self.run_once()
                except Exception:  # Redis away (StoreError) or a bug: say so, back off, retry
                    log.warning("scheduler round failed; retrying in 1s", exc_info=True)
                    if listener is not None:
                        await listener.close()
                        listener = None
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
                try:
                    await self._wait(listener, stop, wait)
                except StoreError:  # the subscription died with its connection: a new one
                    await listener.close()
                    listener = None
        finally:
            if listener is not None:
                await listener.close()

    async def _wait(self, listener: WakeListener, stop: asyncio.Event, seconds: float) -> None:
        """Sleep ``seconds`` of real time, or less if woken or stopped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not stop.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return
            if await listener.wait(min(left, 0.25)):
                return
