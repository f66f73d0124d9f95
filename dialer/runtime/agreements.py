"""Agreements in the service: accepting an offer, the installments' charges, keeping score.

**Accepting** (``accept``): the offer is looked up again by its id among those still valid
(``rules.offers.find_offer``), so a page cannot make up terms; the agreement is written by
one script that refuses a second current agreement of the account (two tabs, a double
click, the IVR and the page at once: one agreement); then — idempotent steps, run again
whenever the same offer is accepted again, so a crash half-way is finished by the retry —
one charge per installment (through the payment provider, the static Pix code without
one) and the account in status ``agreement`` in every campaign holding it: its régua waits,
the agreement's reminders run (``rules.agreements.reminder_cadence``, planned by the
worker through ``decide()``).

**Keeping score.** A payment on an installment's charge marks it paid (settlement calls
``installments_moved``); the last one closes the account as paid. The keeper looks at each
current agreement when an installment's grace ends: still unpaid ``break_after_days``
after its due date, the agreement is broken and the account goes back to its régua,
audited. A refund of an installment reopens what its payment closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from dialer.domain import Account, AccountStatus, Channel, Contact, Phone
from dialer.errors import InputError, StoreError
from dialer.formats import payment_links as pl
from dialer.rules.agreements import AgreementStatus, agreement_id, review
from dialer.rules.charges import ChargeStatus, cents, money, txid
from dialer.rules.messages import render_limited
from dialer.rules.offers import Offer, Special, find_offer, offers_for
from dialer.rules.planning import local_zone
from dialer.rules.policy import decide
from dialer.store import ChargeRecord, Store
from dialer.store.accounts import StatusChange
from dialer.store.agreements import AgreementRecord
from dialer.store.values import AccountState
from sms_gateway.base import SmsGateway, SmsMessage

if TYPE_CHECKING:
    from dialer.runtime.payments import Payments
    from dialer.runtime.wiring import Runtime

log = logging.getLogger("regua.agreements")

DEFAULT_ZONE = ZoneInfo("America/Sao_Paulo")


class OfferRefused(InputError):
    """The offer cannot be accepted (the reason says why and what to do)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Accepted:
    agreement: AgreementRecord
    created: bool  # False: the same offer accepted again (the agreement it made)


@dataclass
class Reviewed:
    looked: int = 0
    kept: int = 0
    broken: int = 0


def zone_of(state: AccountState) -> ZoneInfo:
    if not state.phones:
        return ZoneInfo(state.account.timezone) if state.account.timezone else DEFAULT_ZONE
    return local_zone(state.phones, state.account.region, state.account.timezone)


def local_day(state: AccountState, now: datetime) -> date:
    return now.astimezone(zone_of(state)).date()


async def paid_cents(store: Store, account: Account) -> int:
    """What the debtor has paid of this debt so far: on its whole-debt charge, and on the
    installments of agreements that ended without closing it (a broken one's money counts)."""
    paid = 0
    charge = await store.current_charge(account.account_id)
    if charge is not None and charge.amount == account.amount:
        paid += max(0, charge.paid_cents - charge.refunded_cents)
    for record in await store.account_agreements(account.account_id):
        if record.status is not AgreementStatus.CURRENT:
            paid += record.paid_cents
    return paid


async def balanced(store: Store, account: Account) -> Account:
    """The account as offers see it: its amount the balance still owed."""
    paid = await paid_cents(store, account)
    if paid <= 0:
        return account
    return replace(account, amount=money(max(0, cents(account.amount) - paid)))


async def offers_of(store: Store, settings: Any, state: AccountState, now: datetime) -> tuple[Offer, ...]:
    """The offers of an open account today, on the balance still owed (its special offer
    first, when it has one)."""
    if state.account.status is not AccountStatus.OPEN:
        return ()
    account = await balanced(store, state.account)
    special = await store.special_offer(account.account_id)
    return offers_for(account, local_day(state, now), settings.negotiation, settings.payments, special)


async def record_special(
    store: Store, account_id: str, special: Special | None, now: datetime, actor: str
) -> None:
    """Make (or, with None, withdraw) a special offer for one account, audited."""
    await store.set_special_offer(account_id, special)
    data: dict[str, Any] = {"account": account_id}
    if special is not None:
        data |= {
            "discount_percent": str(special.discount_percent),
            "installments": special.installments,
            "until": special.until.isoformat() if special.until else "",
        }
    action = "special_offer" if special is not None else "special_offer_withdrawn"
    await store.audit_agreement(now, actor, action, data)


def sms_phone(state: AccountState) -> Phone | None:
    """The phone a summary goes to: the first that takes SMS (mobiles first)."""
    phones = sorted(state.phones, key=lambda p: p.phone_type.value != "mobile")
    return next((p for p in phones if p.consent.sms), None)


class Agreements:
    def __init__(self, store: Store, payments: Payments, runtime: Runtime) -> None:
        self.store, self.payments, self.runtime = store, payments, runtime
        self.sms: SmsGateway | None = None  # summaries are sent when the service has SMS
        self._wake = asyncio.Event()

    @property
    def settings(self) -> Any:
        return self.runtime.settings.negotiation

    # ------------------------------------------------------------------ offers

    async def special_for(self, account_id: str) -> Special | None:
        return await self.store.special_offer(account_id)

    async def offers(self, state: AccountState, now: datetime) -> tuple[Offer, ...]:
        return await offers_of(self.store, self.runtime.settings, state, now)

    async def make_special(self, account_id: str, special: Special | None, now: datetime, actor: str) -> None:
        await record_special(self.store, account_id, special, now, actor)

    # ------------------------------------------------------------------ accepting

    async def accept(
        self,
        campaign: str,
        state: AccountState,
        offer_id: str,
        now: datetime,
        *,
        via: str,
        actor: str,
        phone: Phone | None = None,
    ) -> Accepted:
        """Accept offer ``offer_id`` for the account (``phone``: the one the debtor verified
        on, on a call: the summary may say the terms there)."""
        # as it is now (a call ends minutes after its account was read: paid meanwhile?)
        (fresh,) = await self.store.load_accounts(campaign, [state.account.account_id])
        if fresh is None:
            raise OfferRefused("not_open", f"account {state.account.account_id} is no longer in {campaign}")
        state = fresh
        account = state.account
        if account.status not in (AccountStatus.OPEN, AccountStatus.AGREEMENT):
            raise OfferRefused(
                "not_open", f"account {account.account_id} is {account.status.value}: nothing to agree"
            )
        today = local_day(state, now)
        special = await self.special_for(account.account_id)
        owed = await balanced(self.store, account)  # the offers were made on the balance
        offer = find_offer(owed, offer_id, today, self.settings, self.runtime.settings.payments, special)
        aid = agreement_id(account.account_id, offer_id)
        if offer is None:
            existing = await self.store.agreement(aid)
            if existing is None:
                raise OfferRefused("stale", "this offer is no longer valid: choose one of today's offers")
            offer = existing.offer
        record = AgreementRecord(aid, account.account_id, campaign, offer, now.isoformat(), via, actor)
        zone = zone_of(state)
        first = offer.installments[0]
        review_at = datetime.combine(
            first.due + timedelta(days=self.settings.break_after_days), time(0), zone
        )
        made = await self.store.create_agreement(record, review_at, now)
        if made.conflict:
            raise OfferRefused("conflict", "an agreement is already current for this account")
        if made.ended:
            raise OfferRefused("ended", "this agreement has ended: the page has today's offers")
        record = await self.store.agreement(aid) or record
        await self._charges(record, account, now)
        names = (await self.store.holding_many([account.account_id])).get(account.account_id, [campaign])
        note = (
            f"agreement {aid}: {offer.count} × up to {money(max(i.amount_cents for i in offer.installments))}"
        )
        await self.store.set_statuses(
            [
                StatusChange(
                    account.account_id, AccountStatus.AGREEMENT, note, frozenset({AccountStatus.OPEN})
                )
            ],
            now,
            f"agreement:{via}",
            campaigns=names or [campaign],
        )
        if made.created:
            await self.store.audit_agreement(
                now,
                actor,
                "agreement_made",
                {
                    "agreement": aid,
                    "account": account.account_id,
                    "campaign": campaign,
                    "via": via,
                    "offer": offer.offer_id,
                    "installments": offer.count,
                    "total": str(money(offer.total_cents)),
                },
            )
            self._wake.set()
            await self.summary(record, state, now, phone=phone)
        return Accepted(record, made.created)

    async def accept_on_call(
        self, campaign: str, state: AccountState, offer_id: str, now: datetime, phone: Phone, attempt: str
    ) -> Accepted | None:
        """The offer a verified debtor accepted by key 5 on call ``attempt``: the agreement
        (None when it cannot be made any more: the call's record keeps the request)."""
        try:
            return await self.accept(campaign, state, offer_id, now, via="ivr", actor="ivr", phone=phone)
        except (OfferRefused, StoreError) as exc:
            log.warning("offer accepted on %s not made into an agreement: %s", attempt, exc)
            return None

    async def _charges(self, record: AgreementRecord, account: Any, now: datetime) -> None:
        payments = self.payments
        base = payments.record_for(account, record.campaign, now)
        records = []
        for i in record.offer.installments:
            amount = money(i.amount_cents)
            tx = txid(self.runtime.secret, record.agreement_id, amount, i.due, i.number)
            request = dict(base.request)
            # payable until the agreement would break for it, not a month longer
            request["valid_after_due_days"] = self.settings.break_after_days
            request["description"] = f"{request.get('description', '')} {i.number}/{record.offer.count}"[:140]
            records.append(
                ChargeRecord(
                    txid=tx,
                    account_id=account.account_id,
                    campaign=record.campaign,
                    provider=base.provider,
                    state=base.state,
                    amount=amount,
                    due=i.due.isoformat(),
                    installment=i.number,
                    agreement=record.agreement_id,
                    created_at=now.isoformat(),
                    sandbox=base.sandbox,
                    request=request,
                )
            )
        await payments.add_records(records, now)

    async def installment_charge(self, record: AgreementRecord) -> ChargeRecord | None:
        """The charge of the first unpaid installment (what the debtor pays next)."""
        nxt = next((i for i in record.offer.installments if i.number not in record.paid), None)
        if nxt is None:
            return None
        tx = txid(self.runtime.secret, record.agreement_id, money(nxt.amount_cents), nxt.due, nxt.number)
        return await self.store.charge(tx)

    # ------------------------------------------------------------------ summaries

    def summary_text(
        self, record: AgreementRecord, account: Account, language: str, url: str, *, full: bool
    ) -> str:
        company = self.runtime.settings.company
        if not full:  # anyone may read an SMS: it says where to look, behind the second factor
            return render_limited(self.settings.reminder_sms, language, account, company, link=url)
        cur = "BRL" if language.startswith("pt") else "USD"
        parts = [
            f"{pl.format_money(money(i.amount_cents), cur, language)} "
            f"{i.due.strftime('%d/%m') if language.startswith('pt') else i.due.strftime('%m/%d')}"
            for i in record.offer.installments
        ]
        if language.startswith("pt"):
            return f"{company.name}: acordo registrado, {record.offer.count}x: {'; '.join(parts)}. Pague em {url}"
        return f"{company.name}: agreement recorded, {record.offer.count} payments: {'; '.join(parts)}. Pay at {url}"

    async def summary(
        self, record: AgreementRecord, state: AccountState, now: datetime, *, phone: Phone | None = None
    ) -> str:
        """Send the agreement's summary by SMS when the rules allow it now; what happened.
        To the phone the debtor verified on during a call, the terms; else (anyone may read
        an SMS) where to see them, behind the second factor."""
        full = phone is not None
        phone = phone or sms_phone(state)
        if self.sms is None or phone is None:
            return "no SMS phone"
        suppressions = tuple((await self.store.suppressions([phone.number])).get(phone.number, ()))
        decision = decide(
            Contact(state.account, phone, Channel.SMS, suppressions, requested=True),
            state.history,
            now,
            self.runtime.policy,
        )
        if not decision.allowed:
            why = ", ".join(r.value for r in decision.reasons)
            await self.store.audit_agreement(
                now,
                "agreements",
                "agreement_summary_held",
                {"agreement": record.agreement_id, "reasons": why},
            )
            return f"held: {why}"
        language = "en" if phone.number.startswith("+1") else "pt-BR"
        url = await self.link_url(record.campaign, record.account_id, now)
        text = self.summary_text(record, state.account, language, url, full=full)
        try:
            await self.sms.send(
                SmsMessage(
                    phone.number,
                    text,
                    record.agreement_id + ":summary",
                    record.campaign,
                    "full" if full else "limited",
                )
            )
        except Exception as exc:  # an SMS failure never undoes the agreement
            log.warning("agreement %s: summary SMS not sent: %s", record.agreement_id, exc)
            return f"not sent: {exc}"
        return "sent"

    async def link_url(
        self, campaign: str, account_id: str, now: datetime, *, verified_until: datetime | None = None
    ) -> str:
        """A fresh signed link to the account's page (behind the second factor)."""
        link, url = pl.page_link(
            self.runtime.secret,
            self.runtime.settings,
            campaign,
            account_id,
            now,
            verified_until=verified_until,
        )
        await self.store.register_link(link, campaign, account_id)
        return url

    # ------------------------------------------------------------------ payments in

    async def installments_moved(
        self, moved: Sequence[tuple[ChargeRecord, bool, bool]], now: datetime
    ) -> None:
        """Settlement's report: (installment charge, paid in full now, paid in full before)."""
        touched: dict[str, AgreementRecord | None] = {}
        for charge, paid_now, paid_before in moved:
            if paid_now == paid_before or not charge.agreement:
                continue
            found = touched.get(charge.agreement) or await self.store.agreement(charge.agreement)
            if found is None:
                continue
            await self.store.mark_installment(
                charge.agreement, charge.installment, paid_now, found.campaign, charge.amount_cents
            )
            touched[charge.agreement] = found
        for aid in touched:
            record = await self.store.agreement(aid)
            if record is not None:
                await self._settle(record, now)

    async def _settle(self, record: AgreementRecord, now: datetime) -> None:
        standing = review(record.offer, record.paid, date.max, self.settings.break_after_days)
        names = (await self.store.holding_many([record.account_id])).get(record.account_id, [])
        if record.status is AgreementStatus.BROKEN:  # paid after the break: it counts to the debt
            await self._paid_after_break(record, now, names)
            return
        if standing.status is AgreementStatus.KEPT and record.status is AgreementStatus.CURRENT:
            await self._end(record, AgreementStatus.KEPT, now, names, "every installment paid")
        elif standing.status is not AgreementStatus.KEPT and record.status is AgreementStatus.KEPT:
            states = await self.store.load_accounts(record.campaign, [record.account_id])
            zone = zone_of(states[0]) if states and states[0] else DEFAULT_ZONE
            nxt = next(i for i in record.offer.installments if i.number not in record.paid)
            at = datetime.combine(nxt.due + timedelta(days=self.settings.break_after_days), time(0), zone)
            if await self.store.reopen_agreement(record, max(at, now)):
                why = f"agreement {record.agreement_id}: installment {nxt.number} refunded"
                await self._move(record, AccountStatus.AGREEMENT, AccountStatus.PAID, why, now, names)

    async def _paid_after_break(self, record: AgreementRecord, now: datetime, names: list[str]) -> None:
        states = await self.store.load_accounts(record.campaign, [record.account_id])
        state = states[0] if states else None
        if state is None or state.account.status is not AccountStatus.OPEN:
            return
        if await paid_cents(self.store, state.account) >= cents(state.account.amount):
            why = f"paid in full through agreement {record.agreement_id} after it broke"
            await self._move(record, AccountStatus.PAID, AccountStatus.OPEN, why, now, names)

    async def _move(
        self,
        record: AgreementRecord,
        to: AccountStatus,
        from_: AccountStatus,
        why: str,
        now: datetime,
        names: list[str],
    ) -> None:
        """The agreement's account from ``from_`` to ``to`` in every campaign holding it."""
        change = StatusChange(record.account_id, to, why, frozenset({from_}))
        await self.store.set_statuses([change], now, "agreements", campaigns=names)

    async def _end(
        self, record: AgreementRecord, status: AgreementStatus, now: datetime, names: list[str], why: str
    ) -> bool:
        audit = {
            "agreement": record.agreement_id,
            "account": record.account_id,
            "campaign": record.campaign,
            "why": why,
            "paid": str(money(record.paid_cents)),
            "total": str(money(record.offer.total_cents)),
        }
        if not await self.store.end_agreement(record, status, now, audit, "agreements"):
            return False
        to = AccountStatus.PAID if status is AgreementStatus.KEPT else AccountStatus.OPEN
        why = f"agreement {record.agreement_id} {status.value}: {why}"
        await self._move(record, to, AccountStatus.AGREEMENT, why, now, names)
        return True

    # ------------------------------------------------------------------ the keeper

    async def review_due(self, now: datetime) -> Reviewed:
        out = Reviewed()
        for aid in await self.store.agreements_to_review(now):
            record = await self.store.agreement(aid)
            if record is None or record.status is not AgreementStatus.CURRENT:
                await self.store.drop_review(aid)  # ended meanwhile: nothing to look at
                continue
            out.looked += 1
            names = (await self.store.holding_many([record.account_id])).get(record.account_id, [])
            state = None
            for name in [record.campaign, *names]:  # where the account is now
                (state,) = await self.store.load_accounts(name, [record.account_id])
                if state is not None:
                    break
            if state is None:  # the account is gone from every campaign: nothing to keep
                await self._end(record, AgreementStatus.BROKEN, now, names, "the account was removed")
                await self.store.drop_review(aid)
                continue
            if state.account.status is AccountStatus.PAID:  # the whole debt was paid some other way
                if await self._end(record, AgreementStatus.KEPT, now, names, "the debt was paid"):
                    out.kept += 1
                continue
            today = local_day(state, now)
            standing = review(record.offer, record.paid, today, self.settings.break_after_days)
            if standing.status is AgreementStatus.BROKEN and standing.overdue is not None:
                i = standing.overdue
                why = f"installment {i.number} due {i.due.isoformat()} unpaid {self.settings.break_after_days} days"
                if await self._end(record, AgreementStatus.BROKEN, now, names, why):
                    out.broken += 1
            elif standing.status is AgreementStatus.KEPT:
                if await self._end(record, AgreementStatus.KEPT, now, names, "every installment paid"):
                    out.kept += 1
            elif standing.look_again is not None:
                at = datetime.combine(standing.look_again, time(0), zone_of(state))
                await self.store.review_agreement_at(aid, max(at, now + timedelta(minutes=1)))
        return out

    async def run_keeper(self, stop: asyncio.Event, every_s: float = 60.0) -> None:
        if self.payments.provider.sandbox:
            every_s = min(every_s, 5.0)  # SANDBOX: simulated days pass in minutes
        while not stop.is_set():
            try:
                done = await self.review_due(self.runtime.clock.now())
                if done.kept or done.broken:
                    log.info("agreements: %d kept, %d broken", done.kept, done.broken)
            except StoreError:
                log.warning("agreements: Redis unavailable", exc_info=True)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    # ------------------------------------------------------------------ SANDBOX

    async def sandbox_accepts(self, campaign: str, state: AccountState, now: datetime) -> bool:
        """SANDBOX: the debtor opens the link and accepts one of the offers (then pays)."""
        offers = await self.offers(state, now)
        if not offers:
            return False
        try:
            accepted = await self.accept(
                campaign,
                state,
                random.choice(offers).offer_id,
                now,
                via="page",
                actor="debtor-page (SANDBOX)",
            )
        except OfferRefused:
            return False
        await self.sandbox_pays(accepted.agreement, now, 0.85)
        return True

    async def sandbox_pays(self, record: AgreementRecord, now: datetime, ratio: float) -> int:
        """SANDBOX: a debtor who accepted pays each installment (but now and then one) on a
        day near its due date. How many payments were scheduled."""
        if not self.payments.provider.sandbox:
            return 0
        scheduled = 0
        for i in record.offer.installments:
            if i.number > 1 and random.random() >= ratio:
                continue  # this one is missed: the agreement breaks
            tx = txid(self.runtime.secret, record.agreement_id, money(i.amount_cents), i.due, i.number)
            due_at = datetime.combine(i.due, time(12), DEFAULT_ZONE)
            at = max(now + timedelta(hours=1), due_at + timedelta(hours=random.uniform(-72, 24)))
            if i.number == 1:  # who accepts pays the first soon after
                at = now + timedelta(hours=random.uniform(1, 24))
            await self.store.schedule_sandbox_payment(tx, at)
            scheduled += 1
        return scheduled


def charge_is_open(record: ChargeRecord | None) -> bool:
    return record is not None and record.state in (ChargeStatus.PENDING, ChargeStatus.ACTIVE)
