"""Workers: take due accounts from the work streams and run the régua on them.

For each batch of stream entries a worker

1. loads the accounts, their history and the global suppressions (one pipeline),
2. plans each account with ``dispatch.plan_account`` — ``decide()`` is asked again here,
   at dispatch time, for every phone that could carry the step,
3. claims the attempts it is about to make (``Store.claim_many``: optimistic history
   version + lock; an entry reclaimed from a dead worker finds its attempt already
   claimed and is reconciled instead of dialled twice),
4. places the calls / sends the SMS concurrently,
5. applies what the debtor asked for (suppression, callback, payment link), plans the
   account again with the new history, and writes outcome + next schedule entry +
   acknowledgement + counters + timeline in one script per entry.

``run()`` loops until its stop event is set; ``run_once()`` works what is there and
returns (burst mode for tests and benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from dialer.clock import Clock
from dialer.domain import (
    Attempt,
    Channel,
    Outcome,
    Suppression,
    SuppressionReason,
)
from dialer.errors import SmsPermanent, SmsRetryable, StoreError, TelephonyDown
from dialer.rules.cadence import Cadence
from dialer.rules.local_time import locate
from dialer.rules.messages import LANGUAGE_BY_PACK, render_limited
from dialer.rules.planning import Plan, fallback_due, next_wake, plan_account
from dialer.rules.policy import Policy
from dialer.runtime.operations import suppression_event
from dialer.settings import Settings
from dialer.store import AccountState, Effects, Finish, Store, WorkItem
from dialer.telephony.base import CallRequest, CallResult, IvrAction, Telephony
from sms_gateway.base import SmsGateway, SmsMessage, send_all
from sms_gateway.encoding import cap_segments

log = logging.getLogger("regua.worker")


def default_consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass
class WorkerConfig:
    batch: int = 200
    block_ms: int = 500
    lock_ms: int = 15 * 60 * 1000  # an attempt's lock outlives any call
    min_idle_ms: int = 30_000  # an entry idle this long belongs to a dead worker
    heartbeat_s: float = 10.0
    concurrency: int = 1000  # calls / SMS in flight at once in this worker
    campaign_refresh_s: float = 1.0
    retry_sms_after: timedelta = timedelta(minutes=10)


@dataclass
class _Job:
    item: WorkItem
    state: AccountState
    plan: Plan
    attempt: Attempt | None = None
    result: CallResult | None = None
    sms_result: Any = None
    error: str = ""
    drop: bool = False  # the contact was never made: forget the claimed attempt
    requeue_at: datetime | None = None
    day_key: tuple[str, Channel, date] | None = None  # the per-phone daily counter it was counted on
    pay_event: dict[str, Any] | None = None  # the payment-link SMS sent after the call
    sms_opted_out: bool = False  # the SMS provider says the recipient unsubscribed there
    extra_events: list[dict[str, Any]] = field(default_factory=list)


class Worker:
    def __init__(
        self,
        store: Store,
        telephony: Telephony,
        sms: SmsGateway,
        settings: Settings,
        policy: Policy,
        cadence: Cadence,
        clock: Clock,
        *,
        consumer: str | None = None,
        config: WorkerConfig | None = None,
        secret: bytes = b"regua-dev",
    ) -> None:
        self.secret = secret
        self.store = store
        self.telephony = telephony
        self.sms = sms
        self.settings = settings
        self.policy = policy
        self.cadence = cadence
        self.clock = clock
        self.consumer = consumer or default_consumer_name()
        self.config = config or WorkerConfig()
        self._sem = asyncio.Semaphore(self.config.concurrency)
        self._in_flight: dict[str, WorkItem] = {}
        self._campaigns: list[str] = []
        self._campaigns_at = -1e9
        self.processed = 0
        self.redis_ok = True
        self._reclaim_every = 10.0
        self._last_reclaim = -1e9
        self._warm()

    def _warm(self) -> None:
        """Holiday calendars of this year and the next, loaded before the first batch."""
        year = self.clock.now().year
        self.policy.warm((year, year + 1))

    def reconfigure(self, runtime: Any) -> None:
        """New rules, cadence and texts from an admin's change: used from the next batch on."""
        self.settings, self.policy, self.cadence = runtime.settings, runtime.policy, runtime.cadence
        self._warm()

    # ------------------------------------------------------------------ loops

    async def _active_campaigns(self) -> list[str]:
        loop = asyncio.get_running_loop()
        if loop.time() - self._campaigns_at >= self.config.campaign_refresh_s:
            names = await self.store.campaign_names()
            states = await self.store.campaign_states(names)
            # paused campaigns are read too: their entries go back to the schedule
            self._campaigns = [n for n in names if states.get(n) in ("running", "paused")]
            self._campaigns_at = loop.time()
        return self._campaigns

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then finish what is in hand and return."""
        heartbeat = asyncio.create_task(self._heartbeat_loop(stop))
        self._reclaim_every = max(1.0, self.config.min_idle_ms / 3000)
        self._last_reclaim = -1e9
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        backoff = 0.5
        try:
            while not stop.is_set():
                try:
                    await self._run_step(stop, tasks, loop)
                    backoff = 0.5
                except StoreError as exc:
                    self.redis_ok = False
                    log.warning("Redis unreachable (%s); retrying in %.1fs", exc, backoff)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    backoff = min(backoff * 2, 10.0)
                else:
                    self.redis_ok = True
        finally:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat

    async def _run_step(
        self, stop: asyncio.Event, tasks: set[asyncio.Task[None]], loop: asyncio.AbstractEventLoop
    ) -> None:
        campaigns = await self._active_campaigns()
        if not campaigns:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.campaign_refresh_s)
            return
        items: list[WorkItem] = []
        if loop.time() - self._last_reclaim >= self._reclaim_every:
            self._last_reclaim = loop.time()
            for c in campaigns:
                items += await self.store.reclaim(
                    c, self.consumer, self.config.min_idle_ms, self.config.batch
                )
        room = self.config.concurrency - len(self._in_flight)
        if room <= 0:
            await asyncio.sleep(0.05)
            return
        if not items:
            items = await self.store.read_work(
                self.consumer, campaigns, min(room, self.config.batch), self.config.block_ms
            )
        if items:
            for it in items:
                self._in_flight[it.entry_id] = it
            task = asyncio.create_task(self.process(items))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def run_once(self, *, reclaim: bool = False) -> int:
        """Burst mode: work every entry available now (without blocking); return how many."""
        total = 0
        self._campaigns_at = -1e9
        campaigns = await self._active_campaigns()
        if reclaim:
            for c in campaigns:
                items = await self.store.reclaim(c, self.consumer, self.config.min_idle_ms, self.config.batch)
                if items:
                    await self.process(items)
                    total += len(items)
        # two batches in flight: one computes while Redis executes the other's scripts
        pending: set[asyncio.Task[None]] = set()
        while True:
            items = await self.store.read_work(self.consumer, campaigns, self.config.batch, None)
            if not items:
                await asyncio.gather(*pending)
                return total
            pending.add(asyncio.create_task(self.process(items)))
            total += len(items)
            if len(pending) >= 3:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    t.result()

    async def _heartbeat_loop(self, stop: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            if self._in_flight:
                try:
                    await self.store.heartbeat(list(self._in_flight.values()), self.consumer)
                except Exception:  # a failed heartbeat is retried next time
                    log.warning("heartbeat failed; will retry", exc_info=True)

    # ------------------------------------------------------------------ a batch

    async def process(self, items: Sequence[WorkItem]) -> None:
        try:
            by_campaign: dict[str, list[WorkItem]] = {}
            for it in items:
                by_campaign.setdefault(it.campaign, []).append(it)
            for campaign, its in by_campaign.items():
                await self._process_campaign(campaign, its)
            self.processed += len(items)
        finally:
            for it in items:
                self._in_flight.pop(it.entry_id, None)

    async def _process_campaign(self, campaign: str, items: Sequence[WorkItem]) -> None:
        now = self.clock.now()
        state = (await self.store.campaign_states([campaign])).get(campaign)
        if state != "running":
            # paused / stopped: hand every entry back to the schedule, untouched
            await self.store.finish_many(
                [
                    Finish(campaign, it.account_id, it.entry_id, next_at=now, stats={"requeued_paused": 1})
                    for it in items
                ]
            )
            return
        states = await self.store.load_accounts(campaign, [it.account_id for it in items])
        numbers = [p.number for s in states if s for p in s.phones]
        suppressions = await self.store.suppressions(numbers)
        finishes: list[Finish] = []
        jobs: list[_Job] = []
        for it, st in zip(items, states, strict=True):
            if st is None:  # deleted meanwhile
                finishes.append(Finish(campaign, it.account_id, it.entry_id, stats={"missing": 1}))
                continue
            own = f"{campaign}:{it.entry_id}"
            placed = next(
                (a for a in st.history if a.attempt_id == own and a.outcome is Outcome.PLACED), None
            )
            if placed is not None:  # this entry's worker died mid-contact: settle it, never redo it
                finishes.append(await self._reconcile(campaign, it, st, placed, now))
                continue
            plan = plan_account(
                st.account, st.phones, st.history, st.fallback, suppressions, now, self.policy, self.cadence
            )
            if plan.kind == "contact":
                jobs.append(_Job(it, st, plan))
            else:
                finishes.append(self._finish_without_contact(campaign, it, st, plan, now))
        effects = Effects()
        if jobs:
            finishes += await self._contact(campaign, jobs, suppressions, now, effects)
        await self._write(finishes, effects)

    async def _write(self, finishes: list[Finish], effects: Effects | None = None) -> None:
        """Write results; if Redis is away, keep them and retry: an outcome is never dropped."""
        actor = f"worker:{self.consumer}"
        for f in finishes:  # every timeline event says who did it
            for event in f.events:
                event.setdefault("actor", actor)
        delay = 0.5
        # anything due within a scheduler's longest nap (5 s of real time) wakes the schedulers
        soon = self.clock.now() + timedelta(seconds=5 / self.clock.wall_seconds(1.0))
        while True:
            try:
                if effects:  # suppressions first: nothing rescheduled may miss them
                    await self.store.write_effects(effects, self.clock.now(), f"worker:{self.consumer}")
                    effects = None
                await self.store.finish_many(finishes)
                if any(f.next_at is not None and f.next_at <= soon for f in finishes):
                    await self.store.wake()  # schedulers may be asleep until later than that
                return
            except StoreError as exc:
                self.redis_ok = False
                log.warning("could not record %d results (%s); retrying in %.1fs", len(finishes), exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _finish_without_contact(
        self, campaign: str, it: WorkItem, st: AccountState, plan: Plan, now: datetime
    ) -> Finish:
        events = _decision_events(plan, now)
        stats: dict[str, int] = {}
        for _, d in plan.decisions:
            for r in d.reasons:
                stats[f"blocked:{r}"] = stats.get(f"blocked:{r}", 0) + 1
        if plan.kind == "later":
            events.append(
                {
                    "at": now.isoformat(),
                    "kind": "scheduled",
                    "step": _step_id(plan),
                    "next_at": plan.at.isoformat() if plan.at else None,
                    "note": plan.note,
                }
            )
            return Finish(campaign, it.account_id, it.entry_id, next_at=plan.at, stats=stats, events=events)
        if plan.kind == "skip":
            stats["skipped"] = 1
            events.append(
                {"at": now.isoformat(), "kind": "step_skipped", "step": _step_id(plan), "note": plan.note}
            )
            if plan.fallback_for:  # drop the fallback; look at the régua again at once
                return Finish(
                    campaign,
                    it.account_id,
                    it.entry_id,
                    next_at=now,
                    fallback="-",
                    stats=stats,
                    events=events,
                )
            assert plan.step is not None
            marker = Attempt(
                it.account_id,
                "",
                plan.step.channel,
                now,
                Outcome.SKIPPED,
                attempt_id=f"{campaign}:{it.entry_id}",
                step_id=plan.step.id,
            )
            return Finish(
                campaign, it.account_id, it.entry_id, attempt=marker, next_at=now, stats=stats, events=events
            )
        stats["done"] = 1
        events.append({"at": now.isoformat(), "kind": "done", "note": plan.note})
        return Finish(campaign, it.account_id, it.entry_id, stats=stats, events=events)

    async def _contact(
        self,
        campaign: str,
        jobs: list[_Job],
        suppressions: dict[str, tuple[Suppression, ...]],
        now: datetime,
        effects: Effects,
    ) -> list[Finish]:
        claims = []
        for job in jobs:
            plan = job.plan
            assert plan.step is not None and plan.phone is not None and plan.channel is not None
            job.attempt = Attempt(
                job.item.account_id,
                plan.phone.number,
                plan.channel,
                now,
                Outcome.PLACED,
                attempt_id=f"{campaign}:{job.item.entry_id}",
                step_id=plan.step.id,
            )
            claims.append((job.attempt, job.state.hv))
        results = await self.store.claim_many(campaign, claims, now, self.config.lock_ms)
        to_run: list[_Job] = []
        finishes: list[Finish] = []
        for job, claim in zip(jobs, results, strict=True):
            if claim.status == "new":
                to_run.append(job)
            elif claim.status == "exists":
                assert claim.existing is not None
                finishes.append(await self._reconcile(campaign, job.item, job.state, claim.existing, now))
            else:  # stale history or another attempt holds the account: look again shortly
                delay = timedelta(seconds=1 if claim.status == "stale" else 30)
                finishes.append(
                    Finish(
                        campaign,
                        job.item.account_id,
                        job.item.entry_id,
                        next_at=now + delay,
                        stats={f"claim_{claim.status}": 1},
                    )
                )
        if to_run:
            to_run = await self._global_phone_caps(campaign, to_run, finishes, now)
        if to_run:
            await self._execute_all(campaign, to_run)
            after = self.clock.now()
            # the payment links verified debtors asked for, sent together (one outbox batch)
            paying = [
                j for j in to_run if j.result and any(a.kind == "payment_link" for a in j.result.actions)
            ]
            if paying:
                await asyncio.gather(*(self._send_payment_link(campaign, j, after, effects) for j in paying))
            # contacts never made give their day's count back
            if unplaced := [j.day_key for j in to_run if j.drop and j.day_key]:
                await self.store.uncount_phone_days(unplaced)
            after_iso = after.isoformat()
            for job in to_run:
                finishes.append(self._after(campaign, job, effects, after, after_iso))
        return finishes

    async def _global_phone_caps(
        self, campaign: str, jobs: list[_Job], finishes: list[Finish], now: datetime
    ) -> list[_Job]:
        """The per-phone daily cap across *every* campaign (a person with two debts is still one
        person): counted atomically in Redis per phone, channel and local day. A job over the
        cap gives its claimed attempt back and waits for the next local day."""
        keys_: list[tuple[str, Channel, date]] = []
        caps = []
        for job in jobs:
            assert job.plan.phone is not None and job.plan.channel is not None
            account = job.state.account
            loc = locate(job.plan.phone.number, account.region, account.timezone)
            pack = self.policy.packs[loc.country]
            day = now.astimezone(loc.tzinfos[0]).date()
            cap = (
                pack.caps.voice_per_phone_per_day
                if job.plan.channel is Channel.VOICE
                else pack.caps.sms_per_phone_per_day
            )
            keys_.append((job.plan.phone.number, job.plan.channel, day))
            caps.append((cap, loc.tzinfos[0], day))
        counts = await self.store.count_phone_days(keys_)
        allowed: list[_Job] = []
        over: list[tuple[str, Channel, date]] = []
        for job, key, n, (cap, tz, day) in zip(jobs, keys_, counts, caps, strict=True):
            if n <= cap:
                job.day_key = key
                allowed.append(job)
                continue
            over.append(key)
            assert job.attempt is not None and job.plan.phone is not None
            tomorrow = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
            finishes.append(
                Finish(
                    campaign,
                    job.item.account_id,
                    job.item.entry_id,
                    attempt=job.attempt,
                    drop_attempt=True,
                    next_at=tomorrow,
                    stats={"blocked:attempt_cap": 1},
                    events=[
                        {
                            "at": now.isoformat(),
                            "kind": "decision",
                            "step": _step_id(job.plan),
                            "phone": job.plan.phone.number,
                            "channel": job.attempt.channel,
                            "allowed": False,
                            "reasons": ["attempt_cap"],
                            "not_before": tomorrow.isoformat(),
                            "note": "this phone's daily cap was used by another campaign",
                        }
                    ],
                )
            )
        if over:
            await self.store.uncount_phone_days(over)
        return allowed

    async def _execute_all(self, campaign: str, jobs: list[_Job]) -> None:
        """Place the calls (concurrently) and send the SMS (as one batch) of these jobs."""
        calls = [self._call(campaign, job) for job in jobs if job.plan.channel is Channel.VOICE]
        texts = [job for job in jobs if job.plan.channel is not Channel.VOICE]
        if texts:
            calls.append(self._send_limited(campaign, texts))
        await asyncio.gather(*calls)

    def _language(self, job: _Job) -> str:
        assert job.plan.phone is not None
        account = job.state.account
        loc = locate(job.plan.phone.number, account.region, account.timezone)
        return LANGUAGE_BY_PACK.get(loc.country, self.settings.service.language)

    async def _call(self, campaign: str, job: _Job) -> None:
        plan, attempt = job.plan, job.attempt
        assert plan.phone is not None and plan.step is not None and attempt is not None
        request = CallRequest(
            attempt.attempt_id, campaign, job.state.account, plan.phone, plan.step.id, self._language(job)
        )
        async with self._sem:
            try:
                job.result = await self.telephony.place_call(request)
            except TelephonyDown as exc:
                job.drop, job.error = True, str(exc)
            except Exception as exc:  # a backend bug must not lose the entry
                log.exception("voice backend failed on %s", attempt.attempt_id)
                job.result = CallResult(Outcome.FAILED, detail=f"backend error: {exc}")

    async def _send_limited(self, campaign: str, jobs: list[_Job]) -> None:
        """The limited SMS of each job (a step or a call's fallback), sent as one batch."""
        sms = self.settings.sms
        messages: list[SmsMessage] = []
        sending: list[_Job] = []
        for job in jobs:
            plan, attempt = job.plan, job.attempt
            assert plan.phone is not None and attempt is not None
            text = render_limited(
                self.settings.limited_message.sms,
                self._language(job),
                job.state.account,
                self.settings.company,
            )
            try:
                text, _ = cap_segments(text, sms.max_segments, fold=sms.fold_accents)
            except ValueError as exc:  # over the segment cap: refused, recorded, never sent
                job.error = f"not sent: {exc}"
            else:
                messages.append(SmsMessage(plan.phone.number, text, attempt.attempt_id, campaign, "limited"))
                sending.append(job)
            job.extra_events.append({"kind": "sms", "level": "limited", "text": text})
        if not messages:
            return
        results = await send_all(self.sms, messages)
        for job, result in zip(sending, results, strict=True):
            if isinstance(result, SmsRetryable):
                job.drop, job.error = True, str(result)
                job.requeue_at = self.clock.now() + self.config.retry_sms_after
            elif isinstance(result, SmsPermanent):
                job.error = str(result)
                job.sms_opted_out = result.opted_out
            elif isinstance(result, BaseException):
                raise result  # Redis or a bug: the batch stays pending and is worked again
            else:
                job.sms_result = result

    async def _reconcile(
        self, campaign: str, item: WorkItem, state: AccountState, existing: Attempt, now: datetime
    ) -> Finish:
        """A reclaimed entry whose attempt was claimed by a worker that died: never dial twice."""
        outcome = existing.outcome
        detail = "reclaimed"
        if outcome is Outcome.PLACED:
            result = None
            if existing.channel is Channel.VOICE:
                result = await self.telephony.reconcile(existing.attempt_id)
            outcome = result.outcome if result else Outcome.UNKNOWN
            detail = "reclaimed after a worker died; " + (
                "outcome from the PBX" if result else "outcome unknown"
            )
        final = Attempt(
            existing.account_id,
            existing.phone,
            existing.channel,
            existing.at,
            outcome,
            existing.attempt_id,
            existing.step_id,
        )
        history = [a for a in state.history if a.attempt_id != final.attempt_id] + [final]
        nxt = self._next_at(state, history, state.fallback, now)
        return Finish(
            campaign,
            item.account_id,
            item.entry_id,
            attempt=final,
            next_at=nxt,
            stats={"reclaimed": 1, f"outcome:{outcome}": 1},
            events=[
                {
                    "at": now.isoformat(),
                    "kind": "reconciled",
                    "attempt": final.attempt_id,
                    "outcome": outcome,
                    "note": detail,
                }
            ],
        )

    def _next_at(
        self, st: AccountState, history: Sequence[Attempt], fallback: str | None, now: datetime
    ) -> datetime | None:
        return next_wake(st.account, st.phones, history, fallback, now, self.cadence)

    def _after(self, campaign: str, job: _Job, effects: Effects, now: datetime, now_iso: str) -> Finish:
        """The attempt's outcome, what it implies, and when to look at the account again."""
        plan, attempt = job.plan, job.attempt
        assert plan.step is not None and plan.phone is not None and attempt is not None
        events = _decision_events(plan, attempt.at)
        stats: dict[str, int] = {}
        if job.drop:
            events.append(
                {
                    "at": now_iso,
                    "kind": "not_placed",
                    "channel": plan.channel,
                    "phone": plan.phone.number,
                    "step": plan.step.id,
                    "error": job.error,
                }
            )
            stats[f"not_placed:{plan.channel}"] = 1
            retry = job.requeue_at or now + timedelta(minutes=5)
            return Finish(
                campaign,
                job.item.account_id,
                job.item.entry_id,
                attempt=attempt,
                drop_attempt=True,
                next_at=retry,
                stats=stats,
                events=events,
            )
        if plan.channel is Channel.VOICE:
            assert job.result is not None
            outcome = job.result.outcome
            info: dict[str, Any] = {
                "duration_s": job.result.duration_s,
                "amd": job.result.amd,
                "cause": job.result.hangup_cause,
                "trunk": job.result.trunk,
            }
            if job.result.sandbox:
                info["sandbox"] = True
            events.extend({"at": now_iso, **e} for e in job.result.events)
        else:
            outcome = Outcome.SMS_FAILED if job.error or job.sms_result is None else Outcome.SMS_SENT
            if (
                job.sms_result is not None
                and job.sms_result.duplicate
                and job.sms_result.message_id == "unknown"
            ):
                outcome = Outcome.UNKNOWN  # an earlier try may or may not have gone out: never resent
            info = (
                {"error": job.error}
                if job.error
                else {
                    "message_id": job.sms_result.message_id,
                    "segments": job.sms_result.segments,
                    "encoding": job.sms_result.encoding,
                    "cost": job.sms_result.cost,
                    "provider": job.sms_result.provider,
                }
            )
            if job.sms_result is not None and job.sms_result.sandbox:
                info["sandbox"] = True
            if job.sms_result is not None and not job.error:
                # a message split in parts has one provider id per part, joined by commas
                for part_id in job.sms_result.message_id.split(","):
                    effects.sms.append(
                        (job.sms_result.provider, part_id, campaign, job.item.account_id, attempt.attempt_id)
                    )
        final = Attempt(
            attempt.account_id,
            attempt.phone,
            attempt.channel,
            attempt.at,
            outcome,
            attempt.attempt_id,
            attempt.step_id,
        )
        events.append(
            {
                "at": now_iso,
                "kind": "attempt",
                "attempt": attempt.attempt_id,
                "channel": attempt.channel,
                "phone": plan.phone.number,
                "step": plan.step.id,
                "try": plan.attempt,
                "outcome": outcome,
                **info,
                **{k: v for e in job.extra_events for k, v in e.items() if k != "kind"},
            }
        )
        stats[f"outcome:{outcome}"] = 1
        stats[f"attempts:{plan.channel}"] = 1
        # what the person asked for, and what the outcome itself implies
        self._apply_actions(campaign, job, outcome, now_iso, events, stats, effects)
        fallback_op = ""
        history = [a for a in job.state.history if a.attempt_id != final.attempt_id] + [final]
        fallback = job.state.fallback
        if plan.fallback_for:
            fallback_op, fallback = "-", None
        elif plan.channel is Channel.VOICE and fallback_due(plan.step, outcome, history):
            fallback_op, fallback = plan.step.id, plan.step.id
            events.append({"at": now_iso, "kind": "fallback_sms_due", "step": plan.step.id})
        next_at = next_wake(job.state.account, job.state.phones, history, fallback, now, self.cadence)
        if next_at is None:
            stats["done"] = 1
        return Finish(
            campaign,
            job.item.account_id,
            job.item.entry_id,
            attempt=final,
            next_at=next_at,
            fallback=fallback_op,
            stats=stats,
            events=events,
        )

    def _apply_actions(
        self,
        campaign: str,
        job: _Job,
        outcome: Outcome,
        now_iso: str,
        events: list[dict[str, Any]],
        stats: dict[str, int],
        effects: Effects,
    ) -> list[Suppression]:
        plan = job.plan
        assert plan.phone is not None
        number = plan.phone.number
        actions: list[IvrAction] = list(job.result.actions) if job.result else []
        stops: list[Suppression] = []
        if outcome is Outcome.INVALID_NUMBER:
            stops.append(
                Suppression(number, SuppressionReason.INVALID_NUMBER, None, None, f"call:{campaign}")
            )
        if job.sms_opted_out:
            stops.append(
                Suppression(
                    number, SuppressionReason.OPT_OUT, Channel.SMS, None, f"sms-provider:{self.sms.name}"
                )
            )
        for action in actions:
            if action.kind == "wrong_number":
                stops.append(
                    Suppression(number, SuppressionReason.WRONG_NUMBER, None, None, f"ivr:{campaign}")
                )
            elif action.kind == "opt_out":
                channel = Channel(action.data.get("channel", "voice"))
                stops.append(Suppression(number, SuppressionReason.OPT_OUT, channel, None, f"ivr:{campaign}"))
            elif action.kind == "callback":
                effects.callbacks.append(
                    {
                        "campaign": campaign,
                        "account_id": job.item.account_id,
                        "phone": number,
                        "window": action.data.get("window", ""),
                        "requested_at": now_iso,
                    }
                )
                stats["callbacks"] = stats.get("callbacks", 0) + 1
            elif action.kind == "payment_link":
                if job.pay_event is not None:  # sent by _send_payment_link before
                    events.append(job.pay_event)
                stats["payment_links"] = stats.get("payment_links", 0) + 1
            events.append({"at": now_iso, "kind": "action", "action": action.kind, **action.data})
        if stops:
            effects.suppressions.extend(stops)
            for s in stops:
                events.append(
                    {
                        "at": now_iso,
                        "kind": "suppressed",
                        "phone": s.number,
                        "channel": s.channel.value if s.channel else "*",
                        "reason": s.reason.value,
                    }
                )
                effects.audit.append(suppression_event(s, campaign=campaign, account=job.item.account_id))
        return stops

    async def _send_payment_link(self, campaign: str, job: _Job, now: datetime, effects: Effects) -> None:
        """The verified debtor asked for it on this call: a full-level SMS is allowed."""
        from dialer.formats import payment_links as pl

        plan = job.plan
        assert plan.phone is not None and job.attempt is not None
        account = job.state.account
        link = pl.link_id(self.secret, campaign, account.account_id)
        effects.links.append((link, campaign, account.account_id))
        token = pl.make_token(self.secret, link, now + pl.DEFAULT_TTL)
        url = pl.payment_url(
            self.settings.service.public_url, self.settings.company.payment_url_template, token
        )
        language = job.result.language if job.result and job.result.language else "pt-BR"
        text = pl.payment_sms_text(language, self.settings.company.name, account, url)
        message = SmsMessage(plan.phone.number, text, job.attempt.attempt_id + ":pay", campaign, "full")
        try:
            result = await self.sms.send(message)
            job.pay_event = {
                "at": now.isoformat(),
                "kind": "sms",
                "level": "full",
                "purpose": "payment_link",
                "phone": plan.phone.number,
                "message_id": result.message_id,
                "segments": result.segments,
                "sandbox": result.sandbox,
            }
        except (SmsRetryable, SmsPermanent) as exc:
            job.sms_opted_out = isinstance(exc, SmsPermanent) and exc.opted_out
            job.pay_event = {
                "at": now.isoformat(),
                "kind": "sms_failed",
                "purpose": "payment_link",
                "error": str(exc),
            }


def _step_id(plan: Plan) -> str | None:
    return plan.step.id if plan.step else None


def _decision_events(plan: Plan, at: datetime) -> list[dict[str, Any]]:
    if not plan.decisions:
        return []
    at_iso, step = at.isoformat(), _step_id(plan)
    # tuples and enums go to JSON as they are (orjson): no copies on the hot path
    return [
        {
            "at": at_iso,
            "kind": "decision",
            "step": step,
            "phone": number,
            "allowed": d.allowed,
            "channel": d.channel,
            "reasons": d.reasons,
            "not_before": d.not_before.isoformat() if d.not_before is not None else None,
            "time_zones": d.time_zones,
            "pack": d.pack,
            "region": d.region,
        }
        for number, d in plan.decisions
    ]
