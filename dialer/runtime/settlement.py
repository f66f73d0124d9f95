"""Settling payment events: recorded once, then the account paid (or reopened), the money
counted and credited, all audited — for many events at a time.

**One path to "paid".** When a charge's payments cover the debt the account is marked paid
through the store's status change — the path ``account --status paid`` takes — so every
campaign stops at once and a worker holding a claim finds it stale. A refund that uncovers
the debt reopens the account where a payment had closed it (not where a person disputed
it); a partial payment leaves it open with its balance on the timeline; an overpayment is
flagged. An event waits in ``unsettled`` until its batch is done, so a crash half-way is
finished by the reconciliation job (and the same event delivered again is counted once).

**Group commit.** Webhooks that arrive while a batch is being written wait for the next
one, which takes them all: a quiet service answers a webhook after one batch of one, a busy
one writes dozens per round trip. A webhook is answered only once its batch is written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dialer.domain import Account, AccountStatus
from dialer.rules.attribution import attribute
from dialer.rules.charges import ChargeStatus, EventKind, PaymentEvent, cents, money, standing
from dialer.store import AccountState, ChargeRecord, PaymentApply, StatusChange, Store

if TYPE_CHECKING:
    from dialer.runtime.agreements import Agreements
    from dialer.runtime.wiring import Runtime

MAX_BATCH = 500  # webhooks taken into one batch


@dataclass
class Received:
    """What a batch of events did."""

    accepted: int = 0
    duplicates: int = 0
    unknown: int = 0
    paid_accounts: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "unknown": self.unknown,
            "paid_accounts": self.paid_accounts,
        }

    def add(self, other: Received) -> None:
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.unknown += other.unknown
        self.paid_accounts += other.paid_accounts


class Replayed(Exception):
    """This delivery (its signature) was accepted before."""


@dataclass
class _Waiting:
    events: list[PaymentEvent]
    now: datetime
    replay: tuple[str, float] | None
    future: asyncio.Future[Received]


@dataclass
class _Settle:
    """One event to settle: which request it came in, its charge's sums after it."""

    item: int
    event: PaymentEvent
    txid: str
    paid: int
    refunded: int


class Settlement:
    def __init__(self, store: Store, runtime: Runtime) -> None:
        self.store = store
        self.runtime = runtime
        self._waiting: list[_Waiting] = []
        self._flushing: asyncio.Task[None] | None = None
        self.batches = 0
        self.agreements: Agreements | None = None  # told of installments paid or refunded

    async def settle(self, events: Sequence[PaymentEvent], now: datetime) -> Received:
        """Record and settle ``events`` now (idempotent; any order)."""
        (result,) = await self._run([_Waiting(list(events), now, None, _done_future())])
        if isinstance(result, BaseException):
            raise result
        return result

    async def submit(
        self, events: Sequence[PaymentEvent], now: datetime, *, replay: tuple[str, float] | None = None
    ) -> Received:
        """A webhook's events, settled with whatever else arrived meanwhile. ``replay``: a
        key remembered for that many seconds; seen already → ``Replayed``."""
        future: asyncio.Future[Received] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(list(events), now, replay, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                results = await self._run(batch)
            except Exception as exc:  # Redis away, or a bug: every webhook of the batch says so
                results = [exc] * len(batch)
            for w, r in zip(batch, results, strict=True):
                if w.future.done():
                    continue
                if isinstance(r, BaseException):
                    w.future.set_exception(r)
                else:
                    w.future.set_result(r)

    # ------------------------------------------------------------------ one batch

    async def _run(self, batch: list[_Waiting]) -> list[Received | BaseException]:
        self.batches += 1
        store = self.store
        results: list[Received | BaseException] = [Received() for _ in batch]
        fresh = await self._replay_checks(batch)
        try:
            return await self._write(batch, fresh, results)
        except BaseException:
            # nothing of it is known to be written: let the provider's retry through
            keys_ = [w.replay[0] for w, ok in zip(batch, fresh, strict=True) if ok and w.replay]
            with contextlib.suppress(Exception):
                await store.forget_deliveries(keys_)
            raise

    async def _replay_checks(self, batch: list[_Waiting]) -> list[bool]:
        asks = [(i, w.replay) for i, w in enumerate(batch) if w.replay is not None]
        fresh = [True] * len(batch)
        if asks:
            firsts = await self.store.first_deliveries([r for _, r in asks if r is not None])
            for (i, _), first in zip(asks, firsts, strict=True):
                fresh[i] = first
        return fresh

    async def _write(
        self, batch: list[_Waiting], fresh: list[bool], results: list[Received | BaseException]
    ) -> list[Received | BaseException]:
        store = self.store
        now = max(w.now for w in batch)
        flat: list[tuple[int, PaymentEvent]] = []
        for i, w in enumerate(batch):
            if fresh[i]:
                flat += [(i, e) for e in w.events]
            else:
                results[i] = Replayed("this delivery was received before (a replay)")
        if not flat:
            return results
        by_account = await store.current_charges(
            [e.account_id for _, e in flat if not e.txid and e.account_id]
        )
        pairs = [
            (e, e.txid or (by_account[e.account_id].txid if e.account_id in by_account else ""))
            for _, e in flat
        ]
        states = await store.record_payments(pairs, now)
        seen_before = [e.event_id for (e, _), (state, _, _) in zip(pairs, states, strict=True) if state == 0]
        unsettled = await store.unsettled_among(seen_before)
        audits: list[tuple[datetime, str, str, dict[str, Any]]] = []
        todo: list[_Settle] = []
        for (i, _), (event, txid), (state, paid, refunded) in zip(flat, pairs, states, strict=True):
            got = results[i]
            assert isinstance(got, Received)
            if state == 2:
                got.unknown += 1
                audits.append((now, f"payments:{event.provider}", "payment_unknown_charge", _unknown(event)))
            elif state == 0:
                got.duplicates += 1
                if event.event_id in unsettled:  # recorded, then a crash: finish it
                    todo.append(_Settle(i, event, txid, paid, refunded))
            else:
                got.accepted += 1
                todo.append(_Settle(i, event, txid, paid, refunded))
        await self._settle(todo, now, results, audits, {r.txid: r for r in by_account.values()})
        return results

    async def _settle(
        self,
        todo: list[_Settle],
        now: datetime,
        results: list[Received | BaseException],
        audits: list[tuple[datetime, str, str, dict[str, Any]]],
        known: dict[str, ChargeRecord],
    ) -> None:
        store = self.store
        missing = list({t.txid for t in todo} - set(known))
        records = {**known, **{r.txid: r for r in await store.charges(missing) if r is not None}}
        todo = [t for t in todo if t.txid in records]
        holding = await store.holding_many([records[t.txid].account_id for t in todo])
        states = await self._states(holding)
        settings = self.runtime.settings.payments
        tolerance = cents(settings.overpayment_tolerance)
        recheck = timedelta(minutes=settings.recheck_minutes)
        applies: list[PaymentApply] = []
        credits: list[tuple[str, str, str, datetime]] = []
        rechecks: list[tuple[str, datetime | None]] = []
        intents: dict[str, tuple[StatusChange, str, int]] = {}  # account -> (change, actor, item)
        moved: list[tuple[ChargeRecord, bool, bool]] = []  # installments: (charge, paid now, paid before)
        for t in todo:
            record, event = records[t.txid], t.event
            account = record.account_id
            st = standing(record.amount_cents, t.paid, t.refunded, tolerance)
            delta = cents(event.amount) * (1 if event.kind is EventKind.PAID else -1)
            before = standing(
                record.amount_cents, t.paid - max(delta, 0), t.refunded - max(-delta, 0), tolerance
            )
            names = holding.get(account, [])
            histories = [(n, states[(n, account)]) for n in names if (n, account) in states]
            touches = attribute(tuple(a for _, s in histories for a in s.history), event.at)
            credited = _credited_campaign(histories, touches.step, event.at) or (
                record.campaign if record.campaign in names else (names[0] if names else "")
            )
            sandbox = event.sandbox or record.sandbox
            actor = f"payments:{event.provider}" + (" (SANDBOX)" if sandbox else "")
            timeline = _timeline(now, event, t.txid, st, touches, sandbox)
            for name, _ in histories:
                applies.append(
                    PaymentApply(
                        name,
                        account,
                        event.event_id,
                        delta,
                        event.kind is EventKind.PAID,
                        touches.step,
                        touches.channel,
                        timeline,
                        name == credited,
                    )
                )
            if event.kind is EventKind.PAID:
                credits.append((t.txid, touches.step, touches.channel, event.at))
            note = f"{event.kind.value} {event.amount} via {event.provider} {event.reference}".strip()
            if record.agreement:  # an installment: its agreement says what the account is
                moved.append((record, st.status is ChargeStatus.PAID, before.status is ChargeStatus.PAID))
                if st.status is ChargeStatus.PAID:
                    rechecks.append((t.txid, None))
            elif st.status is ChargeStatus.PAID:
                intents[account] = (StatusChange(account, AccountStatus.PAID, note), actor, t.item)
                rechecks.append((t.txid, None))
            elif before.status is ChargeStatus.PAID and event.kind is EventKind.REFUND:
                # back on its régua where payment had closed it
                change = StatusChange(account, AccountStatus.OPEN, note, frozenset({AccountStatus.PAID}))
                intents[account] = (change, actor, t.item)
                rechecks.append((t.txid, now + recheck))
            audits.append((now, actor, "payment", _audit(account, t.txid, event, st, credited, touches.step)))
        await store.apply_payments(applies)
        await self._statuses(intents, holding, now, results, {key: st.account for key, st in states.items()})
        if moved and self.agreements is not None:  # before the events count as settled: a crash retries it
            await self.agreements.installments_moved(moved, now)
        await store.finish_settling(
            [t.event.event_id for t in todo], credits=credits, rechecks=rechecks, audits=audits
        )

    async def _states(self, holding: dict[str, list[str]]) -> dict[tuple[str, str], AccountState]:
        per_campaign: dict[str, list[str]] = {}
        for account, names in holding.items():
            for n in names:
                per_campaign.setdefault(n, []).append(account)
        out: dict[tuple[str, str], AccountState] = {}
        for name, accounts in per_campaign.items():
            for account, state in zip(accounts, await self.store.load_accounts(name, accounts), strict=True):
                if state is not None:
                    out[(name, account)] = state
        return out

    async def _statuses(
        self,
        intents: dict[str, tuple[StatusChange, str, int]],
        holding: dict[str, list[str]],
        now: datetime,
        results: list[Received | BaseException],
        known: dict[tuple[str, str], Account],
    ) -> None:
        by_actor: dict[str, list[tuple[StatusChange, int]]] = {}
        for change, actor, item in intents.values():
            by_actor.setdefault(actor, []).append((change, item))
        for actor, changes in by_actor.items():
            names = sorted({n for c, _ in changes for n in holding.get(c.account_id, [])})
            done = await self.store.set_statuses(
                [c for c, _ in changes], now, actor, campaigns=names, known=known
            )
            for (change, item), per_campaign in zip(changes, done, strict=True):
                got = results[item]
                if (
                    change.status is AccountStatus.PAID
                    and isinstance(got, Received)
                    and any(c["changed"] for c in per_campaign)
                ):
                    got.paid_accounts.append(change.account_id)


def _done_future() -> asyncio.Future[Received]:
    return asyncio.get_running_loop().create_future()


def _credited_campaign(histories: list[tuple[str, AccountState]], step: str, at: datetime) -> str:
    """The campaign whose contact is credited: the latest credited attempt of that step."""
    if not step:
        return ""
    best: tuple[datetime, str] | None = None
    for name, state in histories:
        for a in state.history:
            if a.step_id == step and a.at <= at and (best is None or a.at > best[0]):
                best = (a.at, name)
    return best[1] if best else ""


def _timeline(
    now: datetime, event: PaymentEvent, txid: str, st: Any, touches: Any, sandbox: bool
) -> dict[str, Any]:
    timeline = {
        "at": now.isoformat(),
        "kind": "payment" if event.kind is EventKind.PAID else "refund",
        "amount": str(event.amount),
        "paid_at": event.at.isoformat(),
        "provider": event.provider,
        "method": event.method,
        "reference": event.reference,
        "txid": txid,
        "balance": str(money(st.balance_cents)),
        "standing": st.status.value,
        "step": touches.step,
        "channel": touches.channel,
        "contacts": [t.as_dict() for t in touches.touches[:5]],
        "sandbox": sandbox,
    }
    if st.overpaid_cents:
        timeline["overpaid"] = str(money(st.overpaid_cents))
    return timeline


def _audit(account: str, txid: str, event: PaymentEvent, st: Any, campaign: str, step: str) -> dict[str, Any]:
    audit = {
        "account": account,
        "txid": txid,
        "event": event.event_id,
        "kind": event.kind.value,
        "amount": str(event.amount),
        "paid_at": event.at.isoformat(),
        "reference": event.reference,
        "balance": str(money(st.balance_cents)),
        "standing": st.status.value,
        "campaign": campaign,
        "step": step,
    }
    if st.overpaid_cents:
        audit["overpaid"] = str(money(st.overpaid_cents))
    return audit


def _unknown(event: PaymentEvent) -> dict[str, Any]:
    return {
        "event": event.event_id,
        "txid": event.txid,
        "account": event.account_id,
        "amount": str(event.amount),
        "kind": event.kind.value,
        "reference": event.reference,
    }
