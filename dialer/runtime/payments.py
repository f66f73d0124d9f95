"""Payments in the service: charges made for each debt, events recorded and settled, the
reconciliation job that catches a lost webhook.

**One path to "paid".** A payment event is recorded once (``Store.record_payment``: the same
event id twice counts once), then *settled*: when the charge's payments cover the debt the
account is marked paid through ``operations.set_account_status`` — the path ``account
--status paid`` takes — so every campaign stops at once and a worker holding a claim finds
it stale. A refund that uncovers the debt reopens the account on its régua; a partial
payment leaves it open with its balance shown; an overpayment is flagged. An event waits in
``unsettled`` until that is done, so a crash between the two is retried by the job.

**Charges.** ``queue_for`` records one charge per debt (its txid from the debt: a reload or a
killed maker never makes a second) and the maker asks the provider for them, a few at a
time, with back-off on transient failures and the reason kept on permanent ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from dialer.domain import Account, AccountStatus, Outcome, PaymentMethod
from dialer.errors import PaymentError, PaymentPermanent, StoreError
from dialer.formats.campaign_file import RowDefaults
from dialer.rules.charges import (
    ChargeRequest,
    ChargeStatus,
    EventKind,
    PaymentEvent,
    charge_request,
    money,
)
from dialer.runtime.agreements import Agreements
from dialer.runtime.settlement import Received, Settlement
from dialer.store import AccountState, ChargeRecord, Store
from payments.base import PaymentProvider

if TYPE_CHECKING:
    from dialer.runtime.wiring import Runtime

log = logging.getLogger("regua.payments")

LEASE_S = 120.0  # a charge being made is someone's for this long (longer than any HTTP timeout)
MAX_ATTEMPTS = 20
SETTLE_GRACE = timedelta(seconds=30)  # an event unsettled this long was left by a crash


@dataclass
class Reconciled:
    asked: int = 0
    swept: int = 0
    resettled: int = 0
    received: Received = field(default_factory=Received)
    errors: list[str] = field(default_factory=list)


def _description(company: str) -> str:
    return f"{company}: pagamento"[:140]


class Payments:
    def __init__(self, store: Store, provider: PaymentProvider, runtime: Runtime) -> None:
        self.store = store
        self.provider = provider
        self.runtime = runtime
        self.made = 0
        self.failed = 0
        self._wake = asyncio.Event()
        self.settlement = Settlement(store, runtime)
        self.agreements = Agreements(store, self, runtime)
        self.settlement.agreements = self.agreements

    def bound_to(self, store: Store) -> Payments:
        """The same provider and rules on another connection (a load in its own thread)."""
        return Payments(store, self.provider, self.runtime)

    def row_defaults(self, consent_voice: bool, consent_sms: bool) -> RowDefaults:
        """How a campaign file's rows are read here: the CPF/CNPJ kept when charges need it."""
        return RowDefaults(consent_voice, consent_sms, keep_document=self.provider.needs_document)

    @property
    def settings(self) -> Any:
        return self.runtime.settings.payments

    # ------------------------------------------------------------------ charges

    def record_for(self, account: Account, campaign: str, now: datetime) -> ChargeRecord:
        s = self.settings
        request = charge_request(
            account,
            self.runtime.secret,
            now.date(),
            due_in_days=s.due_in_days,
            valid_after_due_days=s.valid_after_due_days,
            fine_percent=s.fine_percent,
            interest_percent_month=s.interest_percent_month,
            description=_description(self.runtime.settings.company.name),
        )
        return ChargeRecord(
            txid=request.txid,
            account_id=account.account_id,
            campaign=campaign,
            provider=self.provider.name,
            state=ChargeStatus.PENDING if self.provider.makes_charges else ChargeStatus.ACTIVE,
            amount=account.amount,
            due=request.due_date.isoformat(),
            created_at=now.isoformat(),
            sandbox=self.provider.sandbox,
            request=_request_doc(request),
        )

    async def queue_for(self, campaign: str, accounts: Sequence[Account], now: datetime) -> int:
        """A charge for each open account of a campaign file (the ones known already are
        left alone). Returns how many are new."""
        records = [
            self.record_for(a, campaign, now)
            for a in accounts
            if a.status is AccountStatus.OPEN and a.amount > 0
        ]
        added = await self.store.add_charges(records, now, queue=self.provider.makes_charges)
        if added:
            self._wake.set()
        return added

    async def add_records(self, records: Sequence[ChargeRecord], now: datetime) -> int:
        """Charges made elsewhere (an agreement's installments): recorded once, queued."""
        added = await self.store.add_charges(records, now, queue=self.provider.makes_charges)
        if added:
            self._wake.set()
        return added

    async def on_load(self, campaign: str, accounts: list[Account], now: datetime) -> int:
        """What a campaign load calls (``payments.create_on_load``)."""
        if not self.settings.create_on_load:
            return 0
        return await self.queue_for(campaign, accounts, now)

    async def charge_for(
        self, campaign: str, account: Account, now: datetime, *, wait_s: float = 5.0
    ) -> ChargeRecord | None:
        """The account's charge, made now when it is not yet (a verified debtor asked)."""
        record = await self.store.current_charge(account.account_id)
        if record is None or record.amount != account.amount:
            await self.queue_for(campaign, [account], now)
            record = await self.store.current_charge(account.account_id)
        if record is None or record.state is not ChargeStatus.PENDING:
            return record
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._make([record], now), wait_s)
        return await self.store.charge(record.txid)

    async def make_due(self, now: datetime, count: int | None = None) -> int:
        """One round of the maker: the charges due now, a few at a time. Returns how many."""
        limit = count or self.settings.create_concurrency * 4
        records = await self.store.claim_charges(now, LEASE_S, limit)
        if records:
            await self._make(records, now)
        return len(records)

    async def _make(self, records: list[ChargeRecord], now: datetime) -> None:
        sem = asyncio.Semaphore(self.settings.create_concurrency)

        async def one(record: ChargeRecord) -> None:
            async with sem:
                await self._make_one(record, now)

        await asyncio.gather(*(one(r) for r in records))

    async def _make_one(self, record: ChargeRecord, now: datetime) -> None:
        if record.state is not ChargeStatus.PENDING:
            await self.store.update_charge(record, done=True)
            return
        try:
            charge = await self.provider.create_charge(_request_from(record))
        except PaymentError as exc:
            attempts = record.attempts + 1
            permanent = isinstance(exc, PaymentPermanent) or attempts >= MAX_ATTEMPTS
            failed = replace(record, attempts=attempts, error=str(exc))
            if permanent:
                self.failed += 1
                failed = replace(failed, state=ChargeStatus.FAILED, request=_without_document(record.request))
                await self.store.update_charge(failed, done=True)
                await self.store.audit_global(
                    now,
                    f"payments:{self.provider.name}",
                    "charge_failed",
                    {"account": record.account_id, "txid": record.txid, "error": str(exc)},
                )
                log.warning("charge %s for account %s refused: %s", record.txid, record.account_id, exc)
            else:
                delay = min(3600.0, 30.0 * 2 ** (attempts - 1)) * (0.75 + random.random() / 2)
                await self.store.update_charge(failed, done=False, retry_at=now + timedelta(seconds=delay))
            return
        made = replace(
            record,
            state=ChargeStatus.REMOVED if charge.status is ChargeStatus.REMOVED else ChargeStatus.ACTIVE,
            made_at=now.isoformat(),
            provider_id=charge.provider_id,
            copy_paste=charge.copy_paste,
            location=charge.location,
            boleto_line=charge.boleto_line or record.boleto_line,
            due=charge.due_date.isoformat(),
            attempts=record.attempts + 1,
            error="",
            request=_without_document(record.request),  # the CPF is the provider's now
        )
        self.made += 1
        await self.store.update_charge(made, done=True, recheck_at=now + self.recheck_every)
        if charge.payments:  # paid before we even knew it was made (a retry after a crash)
            await self.receive(list(charge.payments), now)

    @property
    def recheck_every(self) -> timedelta:
        return timedelta(minutes=self.settings.recheck_minutes)

    async def run_maker(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                made = await self.make_due(self.runtime.clock.now())
            except StoreError:
                log.warning("charge maker: Redis unavailable", exc_info=True)
                made = 0
            if not made:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(stop, self._wake), 2.0)

    # ------------------------------------------------------------------ events

    async def receive(self, events: Sequence[PaymentEvent], now: datetime) -> Received:
        """Record and settle each event (idempotent; any order): ``runtime.settlement``."""
        return await self.settlement.settle(events, now)

    async def submit(
        self, events: Sequence[PaymentEvent], now: datetime, *, replay: tuple[str, float] | None = None
    ) -> Received:
        """A webhook's events, settled with the others arriving meanwhile (group commit)."""
        return await self.settlement.submit(events, now, replay=replay)

    # ------------------------------------------------------------------ reconciliation

    async def reconcile(self, now: datetime) -> Reconciled:
        """One run of the job: events a crash left unsettled, open charges asked again,
        and (where the provider can list) what was received since the last sweep."""
        out = Reconciled()
        left: list[PaymentEvent] = []
        for event_id in await self.store.unsettled(now - SETTLE_GRACE):
            doc = await self.store.payment_event(event_id)
            if doc is not None and doc.get("txid"):
                left.append(replace(_event_from(doc), txid=doc["txid"]))
            else:
                await self.store.settled(event_id)
        if left:  # recorded, then a crash: recording them again finds them and settles them
            out.received.add(await self.receive(left, now))
            out.resettled = len(left)
        if self.provider.makes_charges and not self.provider.sandbox:
            txids = await self.store.due_rechecks(now, self.settings.reconcile_batch)
            sem = asyncio.Semaphore(self.settings.create_concurrency)

            async def ask(txid: str) -> None:
                async with sem:
                    try:
                        charge = await self.provider.fetch_charge(txid)
                    except PaymentError as exc:
                        out.errors.append(str(exc))
                        await self.store.recheck_at(txid, now + timedelta(minutes=5))
                        return
                out.asked += 1
                if charge is None:
                    await self.store.recheck_at(txid, now + self.recheck_every)
                    return
                if charge.payments:
                    got = await self.receive(list(charge.payments), now)
                    out.received.add(got)
                if charge.status is ChargeStatus.REMOVED:
                    record = await self.store.charge(txid)
                    if record is not None:
                        await self.store.update_charge(replace(record, state=ChargeStatus.REMOVED), done=True)
                    await self.store.recheck_at(txid, None)
                elif charge.status is not ChargeStatus.PAID:
                    await self.store.recheck_at(txid, now + self.recheck_every)

            await asyncio.gather(*(ask(t) for t in txids))
        if self.provider.can_list and not self.provider.sandbox:
            mark = await self.store.sweep_mark()
            start = datetime.fromisoformat(mark) if mark else now - timedelta(days=1)
            try:
                events = await self.provider.received_since(start, now)
            except PaymentError as exc:
                out.errors.append(str(exc))
            else:
                out.swept = len(events)
                out.received.add(await self.receive(events, now))
                await self.store.set_sweep_mark(now - timedelta(minutes=10))  # overlap: late arrivals
        if self.provider.sandbox:
            await self._sandbox_pays(now, out)
        return out

    async def run_reconciler(self, stop: asyncio.Event, every_s: float = 60.0) -> None:
        if self.provider.sandbox:
            every_s = min(every_s, 5.0)  # SANDBOX: the demo's simulated hours pass in seconds
        while not stop.is_set():
            try:
                result = await self.reconcile(self.runtime.clock.now())
                if result.received.accepted or result.errors:
                    log.info(
                        "reconciliation: %d charges asked, %d payments found, %d errors",
                        result.asked,
                        result.received.accepted,
                        len(result.errors),
                    )
            except StoreError:
                log.warning("reconciliation: Redis unavailable", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    # ------------------------------------------------------------------ SANDBOX

    async def after_call(
        self, campaign: str, state: AccountState, outcome: Outcome, asked_link: bool, now: datetime
    ) -> None:
        """SANDBOX: some debtors who spoke to us pay a few simulated hours later; some of
        those who asked for the link open it and accept one of the offers, then pay its
        installments (now and then one too late: the agreement breaks)."""
        if not self.provider.sandbox or outcome is not Outcome.ANSWERED_VERIFIED:
            return
        account = state.account
        ratio = float(getattr(self.provider, "pay_ratio", 0.0))
        accepts = asked_link and random.random() < min(1.0, ratio * 1.5)  # about half, by default
        if accepts and await self.agreements.sandbox_accepts(campaign, state, now):
            return
        if random.random() >= ratio * (1.0 if asked_link else 0.4):
            return
        record = await self.store.current_charge(account.account_id)
        if record is None:
            await self.queue_for(campaign, [account], now)
            record = await self.store.current_charge(account.account_id)
        if record is not None:
            await self.store.schedule_sandbox_payment(
                record.txid, now + timedelta(hours=random.uniform(1, 48))
            )

    async def _sandbox_pays(self, now: datetime, out: Reconciled) -> None:
        pay = getattr(self.provider, "pay", None)
        if pay is None:
            return
        for txid in await self.store.due_sandbox_payments(now):
            record = await self.store.charge(txid)
            if record is None:
                continue
            owed = record.amount_cents - (record.paid_cents - record.refunded_cents)
            if owed <= 0:
                continue
            # now and then a debtor pays part of it: the balance stays open
            amount = money(owed if random.random() > 0.15 else max(1, owed // 2))
            out.received.add(await self.receive([pay(txid, amount, now)], now))


def _first(stop: asyncio.Event, wake: asyncio.Event) -> Any:
    async def wait() -> None:
        tasks = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()

    return wait()


def _request_doc(r: ChargeRequest) -> dict[str, Any]:
    return {
        "name": r.name,
        "document": r.document,
        "method": r.method.value,
        "description": r.description,
        "valid_after_due_days": r.valid_after_due_days,
        "fine_percent": str(r.fine_percent),
        "interest_percent_month": str(r.interest_percent_month),
    }


def _without_document(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "document"}


def _request_from(record: ChargeRecord) -> ChargeRequest:
    doc = record.request
    return ChargeRequest(
        txid=record.txid,
        account_id=record.account_id,
        name=str(doc.get("name", "")),
        document=doc.get("document"),
        amount=record.amount,
        due_date=datetime.fromisoformat(record.due).date(),
        valid_after_due_days=int(doc.get("valid_after_due_days", 30)),
        fine_percent=Decimal(str(doc.get("fine_percent", "0"))),
        interest_percent_month=Decimal(str(doc.get("interest_percent_month", "0"))),
        method=PaymentMethod(doc.get("method", "boleto")),
        description=str(doc.get("description", "")),
        installment=record.installment,
    )


def _event_from(doc: dict[str, Any]) -> PaymentEvent:
    return PaymentEvent(
        event_id=doc["id"],
        kind=EventKind(doc["kind"]),
        provider=doc.get("provider", ""),
        txid=doc.get("txid", ""),
        amount=Decimal(doc["amount"]),
        at=datetime.fromisoformat(doc["at"]),
        account_id=doc.get("account", ""),
        method=doc.get("method", ""),
        reference=doc.get("reference", ""),
        sandbox=bool(doc.get("sandbox", False)),
    )
