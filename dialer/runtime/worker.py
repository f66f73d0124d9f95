"""Workers: take due accounts from the work streams and run the régua on them.

For each batch of stream entries a worker

1. loads the accounts, their history and the global suppressions (one pipeline),
2. plans each account with ``rules.planning.plan_account`` — ``decide()`` is asked again
   here, at dispatch time, for every phone that could carry the step,
3. claims the attempts it is about to make (``Store.claim_many``: optimistic history
   version + lock; an entry reclaimed from a dead worker finds its attempt already
   claimed and is reconciled instead of dialled twice),
4. places the calls and sends the SMS concurrently, and
5. as **each** contact ends, settles it (``rules.settle``: outcome, suppressions,
   callback, fallback, timeline, next wake-up) and writes it at once; contacts that end
   together share one write (``ResultWriter``). A verified debtor's payment link leaves
   the moment their call ends, not when the batch's longest call does, and a worker
   killed mid-batch loses only the contacts still in progress (they are reconciled).

``run()`` loops until its stop event is set; ``run_once()`` works what is there and
returns (burst mode for tests and benchmarks). The worker decides nothing itself: the
rules plan, ``settle_*`` says what an outcome implies, the store writes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, assert_never

from dialer.clock import Clock
from dialer.domain import AccountStatus, Attempt, CallResult, Channel, Outcome, Suppression
from dialer.errors import PaymentError, SmsPermanent, SmsRetryable, StoreError, TelephonyDown
from dialer.formats import payment_links as pl
from dialer.rules.agreements import cadence_for, sms_templates
from dialer.rules.cadence import Cadence
from dialer.rules.local_time import locate
from dialer.rules.messages import LANGUAGE_BY_PACK, render_limited
from dialer.rules.planning import PlanContact, plan_account
from dialer.rules.policy import Policy
from dialer.rules.settle import (
    CallEnded,
    Effects,
    Ended,
    Finish,
    NotPlaced,
    TextEnded,
    accepted_offer,
    asked_for_payment_link,
    settle_contact,
    settle_no_contact,
    settle_over_cap,
    settle_reclaimed,
    settle_unclaimed,
)
from dialer.runtime.payments import Payments
from dialer.runtime.result_writer import ResultWriter
from dialer.settings import Settings
from dialer.store import AccountState, Store, WorkItem
from dialer.telephony.base import CallRequest, Telephony
from sms_gateway.base import SmsGateway, SmsMessage, send_all
from sms_gateway.encoding import analyse, cap_segments

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
    """One contact this worker is making: the entry, the account as read, its plan."""

    item: WorkItem
    state: AccountState
    plan: PlanContact
    attempt: Attempt
    day: tuple[str, Channel, date] | None = None  # the per-phone daily counter it was counted on
    link: tuple[str, str, str] | None = None  # (link id, campaign, account) of a payment link sent
    suppressions: tuple[Suppression, ...] = ()  # the phone's, as read with the batch
    cadence: Cadence | None = None  # what it was planned on (an agreement's reminders, or the régua)


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
        payments: Payments | None = None,
    ) -> None:
        self.secret, self.payments = secret, payments
        self.store = store
        self.telephony = telephony
        self.sms = sms
        self.settings = settings
        self.policy = policy
        self.cadence = cadence
        self.clock = clock
        self.consumer = consumer or default_consumer_name()
        self.config = config or WorkerConfig()
        self.writer: ResultWriter[_Job] = ResultWriter(
            store, clock, f"worker:{self.consumer}", self._settle_ended
        )
        self._sem = asyncio.Semaphore(self.config.concurrency)
        self._in_flight: dict[str, WorkItem] = {}
        self._campaigns: list[str] = []
        self._campaigns_at = -1e9
        self.processed = 0
        self._redis_ok = True
        self._reclaim_every = 10.0
        self._last_reclaim = -1e9
        self._warm()

    @property
    def redis_ok(self) -> bool:
        return self._redis_ok and self.writer.ok

    def _warm(self) -> None:
        """Holiday calendars of this year and the next, loaded before the first batch."""
        self.policy.warm((year := self.clock.now().year, year + 1))

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
                    self._redis_ok = False
                    log.warning("Redis unreachable (%s); retrying in %.1fs", exc, backoff)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    backoff = min(backoff * 2, 10.0)
                else:
                    self._redis_ok = True
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
        if (room := self.config.concurrency - len(self._in_flight)) <= 0:
            await asyncio.sleep(0.05)  # full: it reclaims nothing it could not take in hand
            return
        items: list[WorkItem] = []
        if loop.time() - self._last_reclaim >= self._reclaim_every:
            self._last_reclaim = loop.time()
            for c in campaigns:
                if (want := min(room - len(items), self.config.batch)) > 0:
                    items += await self.store.reclaim(c, self.consumer, self.config.min_idle_ms, want)
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
        # batches in flight up to ``concurrency`` contacts (calls that hold keep theirs open)
        pending: dict[asyncio.Task[None], int] = {}
        while True:
            for t in [t for t in pending if t.done()]:
                del pending[t]
                t.result()
            if (room := self.config.concurrency - sum(pending.values())) <= 0:
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                continue
            items = await self.store.read_work(self.consumer, campaigns, min(room, self.config.batch), None)
            if not items:
                await asyncio.gather(*pending)
                return total
            pending[asyncio.create_task(self.process(items))] = len(items)
            total += len(items)

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
            await self.writer.write(
                [
                    Finish(campaign, it.account_id, it.entry_id, next_at=now, stats={"requeued_paused": 1})
                    for it in items
                ]
            )
            return
        states = await self.store.load_accounts(campaign, [it.account_id for it in items])
        suppressions = await self.store.suppressions(p.number for s in states if s for p in s.phones)
        in_agreement = [
            s.account.account_id for s in states if s and s.account.status is AccountStatus.AGREEMENT
        ]
        agreements = await self.store.current_agreements(in_agreement) if in_agreement else {}
        finishes: list[Finish] = []
        effects = Effects()
        jobs: list[_Job] = []
        for it, st in zip(items, states, strict=True):
            if st is None:  # deleted meanwhile
                finishes.append(Finish(campaign, it.account_id, it.entry_id, stats={"missing": 1}))
                continue
            own = f"{campaign}:{it.entry_id}"
            placed = next(
                (a for a in st.history if a.attempt_id == own and a.outcome is Outcome.PLACED), None
            )
            # the régua, or for an account in agreement its reminders
            cadence = cadence_for(
                st.account, agreements.get(st.account.account_id), self.cadence, self.settings.negotiation
            )
            if placed is not None:  # this entry's worker died mid-contact: settle it, never redo it
                finishes.append(await self._reconcile(it, st, placed, now, effects, cadence))
                continue
            plan = plan_account(
                st.account, st.phones, st.history, st.fallback, suppressions, now, self.policy, cadence
            )
            if isinstance(plan, PlanContact):
                attempt = Attempt(
                    it.account_id, plan.phone.number, plan.channel, now, Outcome.PLACED, own, plan.step.id
                )
                jobs.append(
                    _Job(
                        it,
                        st,
                        plan,
                        attempt,
                        suppressions=suppressions.get(plan.phone.number, ()),
                        cadence=cadence,
                    )
                )
            else:
                finishes.append(settle_no_contact(it, plan, now))
        if jobs:
            await asyncio.gather(self.writer.write(finishes, effects=effects), self._contact(jobs, now))
        else:
            await self.writer.write(finishes, effects=effects)

    async def _reconcile(
        self,
        item: WorkItem,
        state: AccountState,
        existing: Attempt,
        now: datetime,
        effects: Effects,
        cadence: Cadence,
    ) -> Finish:
        """A reclaimed entry whose attempt was claimed by a worker that died: never dial twice."""
        result: CallResult | None = None
        if existing.outcome is Outcome.PLACED:
            match existing.channel:
                case Channel.VOICE:
                    result = await self.telephony.reconcile(existing.attempt_id)
                case Channel.SMS:  # the ledger never resends it; whether it left is unknown
                    result = None
                case _:
                    assert_never(existing.channel)
        return settle_reclaimed(item, state, existing, result, now, cadence, effects).finish

    async def _contact(self, jobs: list[_Job], now: datetime) -> None:
        campaign = jobs[0].item.campaign
        claims = await self.store.claim_many(
            campaign, [(j.attempt, j.state.hv) for j in jobs], now, self.config.lock_ms
        )
        to_run: list[_Job] = []
        finishes: list[Finish] = []
        effects = Effects()
        for job, claim in zip(jobs, claims, strict=True):
            if claim.status == "new":
                to_run.append(job)
            elif claim.status == "exists":
                assert claim.existing is not None
                finishes.append(
                    await self._reconcile(
                        job.item, job.state, claim.existing, now, effects, job.cadence or self.cadence
                    )
                )
            else:  # stale history or another attempt holds the account: look again shortly
                finishes.append(settle_unclaimed(job.item, claim.status, now))
        if to_run:
            to_run = await self._global_phone_caps(to_run, finishes, now)
        calls: list[_Job] = []
        texts: list[_Job] = []
        for job in to_run:
            match job.plan.channel:
                case Channel.VOICE:
                    calls.append(job)
                case Channel.SMS:
                    texts.append(job)
                case _:
                    assert_never(job.plan.channel)
        work = [self.writer.write(finishes, effects=effects), *(self._call(job) for job in calls)]
        if texts:
            work.append(self._text(texts))
        await asyncio.gather(*work)

    async def _global_phone_caps(self, jobs: list[_Job], finishes: list[Finish], now: datetime) -> list[_Job]:
        """The per-phone daily cap across *every* campaign (a person with two debts is still one
        person): counted atomically in Redis per phone, channel and local day. A job over the
        cap gives its claimed attempt back and waits for the next local day."""
        days: list[tuple[str, Channel, date]] = []
        caps = []
        for job in jobs:
            account, channel = job.state.account, job.plan.channel
            loc = locate(job.plan.phone.number, account.region, account.timezone)
            day = now.astimezone(loc.tzinfos[0]).date()
            days.append((job.plan.phone.number, channel, day))
            caps.append((self.policy.packs[loc.country].caps.per_phone_per_day(channel), loc.tzinfos[0], day))
        counts = await self.store.count_phone_days(days)
        allowed: list[_Job] = []
        over: list[tuple[str, Channel, date]] = []
        for job, key, n, (cap, tz, day) in zip(jobs, days, counts, caps, strict=True):
            if n <= cap:
                job.day = key
                allowed.append(job)
                continue
            over.append(key)
            tomorrow = datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)
            finishes.append(settle_over_cap(job.item, job.plan, job.attempt, tomorrow, now))
        if over:
            await self.store.uncount_phone_days(over)
        return allowed

    def _language(self, job: _Job) -> str:
        account = job.state.account
        loc = locate(job.plan.phone.number, account.region, account.timezone)
        return LANGUAGE_BY_PACK.get(loc.country, self.settings.service.language)

    def _settle_ended(
        self, ended: Sequence[tuple[_Job, Ended]], now: datetime, effects: Effects
    ) -> list[Finish]:
        """Settle contacts that just ended (``rules.settle``); their side effects go to ``effects``."""
        finishes = []
        for job, end in ended:
            if isinstance(end, NotPlaced) and job.day is not None:
                effects.uncount.append(job.day)  # a contact never made gives its day's count back
            if job.link is not None:  # the payment link sent after the call resolves to this account
                effects.links.append(job.link)
            settled = settle_contact(
                job.item, job.state, job.plan, job.attempt, end, now, job.cadence or self.cadence, effects
            )
            finishes.append(settled.finish)
        return finishes

    async def _call(self, job: _Job) -> None:
        plan, attempt = job.plan, job.attempt
        request = CallRequest(
            attempt.attempt_id,
            job.item.campaign,
            job.state.account,
            plan.phone,
            plan.step.id,
            self._language(job),
            plan.until,
        )
        ended: Ended
        async with self._sem:
            try:
                result = await self.telephony.place_call(request)
            except (TelephonyDown, StoreError) as exc:  # not placed: the step is tried again later
                ended = NotPlaced(str(exc))
            except Exception as exc:  # a backend bug must not lose the entry
                log.exception("voice backend failed on %s", attempt.attempt_id)
                ended = CallEnded(CallResult(Outcome.FAILED, detail=f"backend error: {exc}"))
            else:
                ended = CallEnded(result)
        asked = isinstance(ended, CallEnded) and asked_for_payment_link(ended.result)
        if isinstance(ended, CallEnded) and asked and self._may_text(job):
            ended = await self._send_payment_link(job, ended)
        await self.writer.write(ended=[(job, ended)])
        if self.payments is not None and isinstance(ended, CallEnded):
            offer = accepted_offer(ended.result)
            if offer:  # the verified debtor accepted the best offer by key 5
                await self.payments.agreements.accept_on_call(
                    job.item.campaign,
                    job.state,
                    offer,
                    self.clock.now(),
                    job.plan.phone,
                    job.attempt.attempt_id,
                )
            elif ended.result.sandbox:
                with contextlib.suppress(StoreError):  # SANDBOX: some who spoke to us pay later
                    await self.payments.after_call(
                        job.item.campaign, job.state, ended.result.outcome, asked, self.clock.now()
                    )

    async def _text(self, jobs: list[_Job]) -> None:
        """The limited SMS of each job (a step or a call's fallback), sent as one batch."""
        sms = self.settings.sms
        messages: list[SmsMessage] = []
        sending: list[tuple[_Job, str]] = []
        done: list[tuple[_Job, Ended]] = []
        for job in jobs:
            templates = sms_templates(self.settings, job.plan.step.template)  # limited, or a reminder
            link = self._page_link(job) if "{link}" in "".join(templates.values()) else ""
            text = render_limited(
                templates, self._language(job), job.state.account, self.settings.company, link=link
            )
            try:
                text, _ = cap_segments(text, sms.max_segments, fold=sms.fold_accents)
            except ValueError as exc:  # over the segment cap: refused, recorded, never sent
                done.append((job, TextEnded(text, error=f"not sent: {exc}")))
            else:
                messages.append(
                    SmsMessage(
                        job.plan.phone.number, text, job.attempt.attempt_id, job.item.campaign, "limited"
                    )
                )
                sending.append((job, text))
        failure: BaseException | None = None
        if messages:
            results = await send_all(self.sms, messages)
            for (job, text), result in zip(sending, results, strict=True):
                if isinstance(result, SmsRetryable):
                    done.append((job, NotPlaced(str(result), self.clock.now() + self.config.retry_sms_after)))
                elif isinstance(result, SmsPermanent):
                    done.append(
                        (
                            job,
                            TextEnded(
                                text, error=str(result), opted_out=result.opted_out, provider=self.sms.name
                            ),
                        )
                    )
                elif isinstance(result, BaseException):
                    failure = failure or result  # Redis or a bug: whether it left is unknown
                else:
                    done.append((job, TextEnded(text, sent=result)))
        await self.writer.write(ended=done)  # what is known is written, whatever failed
        if failure is not None:
            # those entries stay claimed and pending: the next worker reconciles them as
            # unknown (the ledger never sends an attempt twice), never as a new text
            raise failure

    def _page_link(self, job: _Job) -> str:
        """A fresh signed link to the account's page (it shows nothing before the second factor)."""
        campaign, account = job.item.campaign, job.state.account
        link, url = pl.page_link(self.secret, self.settings, campaign, account.account_id, self.clock.now())
        job.link = (link, campaign, account.account_id)
        return url

    def _may_text(self, job: _Job) -> bool:
        """A backstop before the full-level SMS: the debtor verified on this call, and the
        number is not suppressed for SMS (as read at the batch's start)."""
        number, now = job.plan.phone.number, self.clock.now()
        return not any(s.applies(number, Channel.SMS, now) for s in job.suppressions)

    async def _send_payment_link(self, job: _Job, ended: CallEnded) -> CallEnded:
        """The verified debtor asked for it on this call: a full-level SMS is allowed, now."""
        now = self.clock.now()
        campaign, account = job.item.campaign, job.state.account
        link = pl.link_id(self.secret, campaign, account.account_id)
        job.link = (link, campaign, account.account_id)
        # verified on this call: the link skips the second factor for a few minutes
        skip = timedelta(minutes=self.settings.negotiation.verified_call_minutes)
        token = pl.make_token(
            self.secret,
            link,
            now + pl.DEFAULT_TTL,
            nonce=pl.new_nonce(),
            verified_until=now + skip if skip else None,
        )
        url = pl.payment_url(
            self.settings.service.public_url, self.settings.company.payment_url_template, token
        )
        language = ended.result.language or "pt-BR"
        code, line = "", account.boleto_line or ""
        if self.payments is not None:  # the debt's own charge: made now if it was not yet
            try:
                charge = await self.payments.charge_for(campaign, account, now)
            except (StoreError, PaymentError) as exc:
                log.warning("no charge for the payment link of %s: %s", job.attempt.attempt_id, exc)
            else:
                code = charge.copy_paste if charge is not None else ""
                line = (charge.boleto_line if charge is not None else "") or line
        text = pl.payment_sms_text(language, self.settings.company.name, account, url)
        for extra in (pl.with_codes(language, text, code, line), pl.with_codes(language, text, code)):
            if extra != text and analyse(extra).segments <= self.settings.sms.max_segments:
                text = extra  # the codes that fit the segment cap (the link always does)
                break
        message = SmsMessage(job.plan.phone.number, text, job.attempt.attempt_id + ":pay", campaign, "full")
        try:
            result = await self.sms.send(message)
        except Exception as exc:  # refused, throttled, Redis away or a bug: the call's outcome stands
            if not isinstance(exc, (SmsRetryable, SmsPermanent)):
                log.exception("payment link for %s not sent", job.attempt.attempt_id)
            failed: dict[str, Any] = {
                "at": now.isoformat(),
                "kind": "sms_failed",
                "purpose": "payment_link",
                "error": str(exc),
            }
            opted_out = isinstance(exc, SmsPermanent) and exc.opted_out
            return CallEnded(ended.result, failed, opted_out, self.sms.name)
        event: dict[str, Any] = {
            "at": now.isoformat(),
            "kind": "sms",
            "level": "full",
            "purpose": "payment_link",
            "phone": job.plan.phone.number,
            "message_id": result.message_id,
            "segments": result.segments,
            "sandbox": result.sandbox,
        }
        return CallEnded(ended.result, event, False, self.sms.name)
