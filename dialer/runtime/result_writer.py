"""Writing worked entries as their contacts end (the worker's half that talks to Redis).

Contacts that end in the same moment are settled with one clock reading and go in one
write; a contact ended alone (a verified debtor's call, while the rest of its batch still
rings) is written at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from dialer.clock import Clock
from dialer.errors import StoreError, StoreUnavailable
from dialer.rules.settle import Effects, Ended, Finish
from dialer.store import Store

log = logging.getLogger("regua.worker")
J = TypeVar("J")  # what the worker knows of one contact (its job)


class ResultWriter(Generic[J]):
    """Writes worked entries as their contacts end. Contacts that end in the same moment are
    settled with one clock reading and go in one write (one FINISH script per campaign and
    one effects pipeline).

    While Redis is unreachable (``StoreUnavailable``) a write is retried until it succeeds;
    a campaign whose script already ran is not run again. An entry Redis refuses (its keys
    hold another type: the FINISH script checks before writing) fails only its own caller;
    a contact whose settling raises fails only itself. An entry whose write failed (or was
    cut short at shutdown) stays pending in its stream and is reconciled by the next worker,
    never dialled again. A contact never made gives its phone-day count back once, after
    the write, never in a retry: a count that could not be given back errs on the safe side.
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        actor: str,
        settle: Callable[[Sequence[tuple[J, Ended]], datetime, Effects], list[Finish]],
    ) -> None:
        self.store, self.clock, self.actor, self.settle = store, clock, actor, settle
        self._queue: list[
            tuple[Sequence[Finish], Sequence[tuple[J, Ended]], Effects | None, asyncio.Future[None]]
        ] = []
        self._task: asyncio.Task[None] | None = None
        self.ok = True

    async def write(
        self,
        finishes: Sequence[Finish] = (),
        ended: Sequence[tuple[J, Ended]] = (),
        effects: Effects | None = None,
    ) -> None:
        """Write these finishes and effects (settling the ended contacts), with whatever else
        ends now; returns once done."""
        if not finishes and not ended and not effects:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((finishes, ended, effects, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # contacts ending in this tick join the write
        batch: list[tuple[list[Finish], Effects, asyncio.Future[None]]] = []
        try:
            while self._queue:
                queued, self._queue = self._queue, []
                now = self.clock.now()
                batch = []
                for finishes, ended, given, future in queued:
                    effects = given or Effects()
                    try:
                        settled = [*finishes, *(self.settle(ended, now, effects) if ended else ())]
                    except Exception as exc:  # a bug settling one contact fails that contact alone
                        log.exception("could not settle %d contact(s)", len(ended))
                        _fail(future, exc)
                        continue
                    batch.append((settled, effects, future))
                await self._write_batch(batch)
        except asyncio.CancelledError:
            pending = [f for *_, f in batch] + [f for *_, f in self._queue]
            if pending:
                log.warning(
                    "stopping: %d result write(s) cut short; their entries stay pending", len(pending)
                )
            for future in pending:
                future.cancel()
            self._queue = []
            raise

    async def _write_batch(self, batch: list[tuple[list[Finish], Effects, asyncio.Future[None]]]) -> None:
        if not batch:
            return
        everything = Effects()
        for _, effects, _ in batch:
            everything.extend(effects)
        try:
            refused = await self._write([f for finishes, _, _ in batch for f in finishes], everything)
        except StoreError as exc:  # the whole write refused (a campaign's own keys are broken)
            log.error("recording %d item(s) was refused: %s", len(batch), exc)
            for *_, future in batch:
                _fail(future, exc)
            return
        done = []
        for finishes, effects, future in batch:
            bad = [f for f in finishes if id(f) in refused]
            if bad:
                reason = f"Redis refused to record account {bad[0].account_id} of {bad[0].campaign}: its keys hold another type"
                log.error("%s", reason)
                _fail(future, StoreError(reason))
            else:
                done.append((effects, future))
        give_back = [day for effects, _ in done for day in effects.uncount]
        if give_back:
            try:
                await self.store.uncount_phone_days(give_back)
            except StoreError as exc:
                log.warning(
                    "%d phone-day count(s) not given back (%s): those caps err on the safe side",
                    len(give_back),
                    exc,
                )
        for _, future in done:
            if not future.done():
                future.set_result(None)

    async def _write(self, finishes: list[Finish], effects: Effects) -> set[int]:
        """Effects first (nothing rescheduled may miss a suppression), then one FINISH per
        campaign; retried while Redis is unreachable, each campaign's script run once.
        Returns the ids of the finishes Redis refused."""
        for f in finishes:  # every timeline event says who did it
            for event in f.events:
                event.setdefault("actor", self.actor)
        by_campaign: dict[str, list[Finish]] = {}
        for f in finishes:
            by_campaign.setdefault(f.campaign, []).append(f)
        # anything due within a scheduler's longest nap (5 s of real time) wakes the schedulers
        soon = self.clock.now() + timedelta(seconds=5 / self.clock.wall_seconds(1.0))
        wake = any(f.next_at is not None and f.next_at <= soon for f in finishes)
        refused: set[int] = set()
        delay = 0.5
        pending: Effects | None = effects
        while True:
            try:
                if pending:
                    await self.store.write_effects(pending, self.clock.now(), self.actor)
                pending = None
                while by_campaign:
                    campaign, group = next(iter(by_campaign.items()))
                    refused |= {id(f) for f in await self.store.finish_many(group)}
                    del by_campaign[campaign]
                if wake:
                    await self.store.wake()  # schedulers may be asleep until later than that
                self.ok = True
                return refused
            except StoreUnavailable as exc:
                self.ok = False
                log.warning("could not record %d results (%s); retrying in %.1fs", len(finishes), exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
