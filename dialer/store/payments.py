"""Charges and payment events (everything under the ``{pay}`` hash tag).

A charge is a hash: ``c`` its record (JSON: account, campaign, provider, state, amount,
what the debtor pays with), ``paid`` and ``refunded`` (cents, incremented by the events),
``n`` (events). Its money is the sum of its events, recorded by one script that keeps each
event id once: a webhook delivered twice, or a payment both a webhook and the
reconciliation job report, counts once, in any order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from dialer.rules.charges import ChargeStatus, PaymentEvent, cents
from dialer.store import keys
from dialer.store.agreements import AgreementRecord
from dialer.store.base import StoreBase
from dialer.store.codec import audit_fields, event_json, to_ms
from dialer.store.keys import CampaignKeys


@dataclass(frozen=True, slots=True)
class ChargeRecord:
    txid: str
    account_id: str
    campaign: str
    provider: str
    state: ChargeStatus  # pending | active | failed | removed (the money is paid/refunded)
    amount: Decimal
    due: str
    installment: int = 0
    agreement: str = ""
    created_at: str = ""
    made_at: str = ""
    provider_id: str = ""
    copy_paste: str = ""
    location: str = ""
    boleto_line: str = ""
    error: str = ""
    attempts: int = 0
    sandbox: bool = False
    request: dict[str, Any] = field(default_factory=dict)  # what the provider is asked (until made)
    paid_cents: int = 0
    refunded_cents: int = 0
    events: int = 0

    @property
    def amount_cents(self) -> int:
        return cents(self.amount)

    def as_json(self) -> str:
        doc = {
            "txid": self.txid,
            "account": self.account_id,
            "campaign": self.campaign,
            "provider": self.provider,
            "state": self.state.value,
            "amount": str(self.amount),
            "due": self.due,
            "installment": self.installment,
            "agreement": self.agreement,
            "created_at": self.created_at,
            "made_at": self.made_at,
            "provider_id": self.provider_id,
            "copy_paste": self.copy_paste,
            "location": self.location,
            "boleto_line": self.boleto_line,
            "error": self.error,
            "attempts": self.attempts,
            "sandbox": self.sandbox,
            "request": self.request,
        }
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> ChargeRecord:
        doc = json.loads(raw["c"])
        return cls(
            txid=doc["txid"],
            account_id=doc["account"],
            campaign=doc.get("campaign", ""),
            provider=doc.get("provider", ""),
            state=ChargeStatus(doc.get("state", "pending")),
            amount=Decimal(doc["amount"]),
            due=doc.get("due", ""),
            installment=int(doc.get("installment", 0)),
            agreement=doc.get("agreement", ""),
            created_at=doc.get("created_at", ""),
            made_at=doc.get("made_at", ""),
            provider_id=doc.get("provider_id", ""),
            copy_paste=doc.get("copy_paste", ""),
            location=doc.get("location", ""),
            boleto_line=doc.get("boleto_line", ""),
            error=doc.get("error", ""),
            attempts=int(doc.get("attempts", 0)),
            sandbox=bool(doc.get("sandbox", False)),
            request=doc.get("request") or {},
            paid_cents=int(raw.get("paid", 0)),
            refunded_cents=int(raw.get("refunded", 0)),
            events=int(raw.get("n", 0)),
        )


@dataclass(frozen=True, slots=True)
class PaymentApply:
    """One payment event counted in one campaign (and put on the account's timeline there)."""

    campaign: str
    account_id: str
    event_id: str
    delta_cents: int  # negative for a refund
    is_payment: bool
    step: str
    channel: str
    timeline: dict[str, Any]
    attributed: bool  # this campaign's money


def _event_doc(event: PaymentEvent) -> dict[str, Any]:
    return {
        "id": event.event_id,
        "kind": event.kind.value,
        "provider": event.provider,
        "txid": event.txid,
        "account": event.account_id,
        "amount": str(event.amount),
        "at": event.at.isoformat(),
        "method": event.method,
        "reference": event.reference,
        "sandbox": event.sandbox,
    }


class PaymentStore(StoreBase):
    # ------------------------------------------------------------------ charges

    async def add_charges(self, records: Sequence[ChargeRecord], now: datetime, *, queue: bool = True) -> int:
        """Record charges not yet known (by txid) and queue them to be made; one known
        already (a file loaded again, a second campaign) is left as it is. Returns how many
        were new."""
        if not records:
            return 0
        async with self._r.pipeline(transaction=False) as p:
            for r in records:
                p.hsetnx(keys.charge(r.txid), "c", r.as_json())
            added = await p.execute()
        at = to_ms(now)
        async with self._r.pipeline(transaction=False) as p:
            for r, new in zip(records, added, strict=True):
                if new:
                    p.zadd(keys.account_charges(r.account_id), {r.txid: at}, nx=True)
                    if r.installment == 0:
                        p.hset(keys.CURRENT_CHARGE, r.account_id, r.txid)
                    if queue:
                        p.zadd(keys.CHARGE_QUEUE, {r.txid: at}, nx=True)
            await p.execute()
        return sum(1 for a in added if a)

    async def queue_charge_now(self, txid: str) -> None:
        """Make this charge first (a verified debtor asked for it)."""
        await self._r.zadd(keys.CHARGE_QUEUE, {txid: 0}, xx=True)

    async def claim_charges(self, now: datetime, lease_s: float, count: int) -> list[ChargeRecord]:
        """Up to ``count`` charges due to be made, leased for ``lease_s`` (a maker killed
        half-way leaves them to come back when the lease ends)."""
        txids = await self._charge_claim(
            keys=[keys.CHARGE_QUEUE], args=[to_ms(now), int(lease_s * 1000), count]
        )
        found = await self.charges(txids)
        return [c for c in found if c is not None]

    async def update_charge(
        self,
        record: ChargeRecord,
        *,
        done: bool,
        retry_at: datetime | None = None,
        recheck_at: datetime | None = None,
    ) -> None:
        """Write a charge's record; ``done``: off the queue (else back on it at ``retry_at``)."""
        async with self._r.pipeline(transaction=True) as p:
            p.hset(keys.charge(record.txid), "c", record.as_json())
            if done:
                p.zrem(keys.CHARGE_QUEUE, record.txid)
            elif retry_at is not None:
                p.zadd(keys.CHARGE_QUEUE, {record.txid: to_ms(retry_at)})
            if recheck_at is not None:
                p.zadd(keys.RECHECK, {record.txid: to_ms(recheck_at)})
            await p.execute()

    async def charge(self, txid: str) -> ChargeRecord | None:
        (found,) = await self.charges([txid])
        return found

    async def charges(self, txids: Sequence[str]) -> list[ChargeRecord | None]:
        if not txids:
            return []
        async with self._r.pipeline(transaction=False) as p:
            for t in txids:
                p.hgetall(keys.charge(t))
            raws = await p.execute()
        return [ChargeRecord.from_hash(raw) if raw and "c" in raw else None for raw in raws]

    async def account_charges(self, account_id: str) -> list[ChargeRecord]:
        txids = await self._r.zrange(keys.account_charges(account_id), 0, -1)
        return [c for c in await self.charges(txids) if c is not None]

    async def current_charge(self, account_id: str, *, installment: int = 0) -> ChargeRecord | None:
        """The account's most recent charge for the whole debt (or for one installment)."""
        if installment == 0:
            return (await self.current_charges([account_id])).get(account_id)
        for record in reversed(await self.account_charges(account_id)):
            if record.installment == installment:
                return record
        return None

    async def charge_queue_length(self) -> int:
        return int(await self._r.zcard(keys.CHARGE_QUEUE))

    # ------------------------------------------------------------------ payment events

    async def record_payment(self, event: PaymentEvent, txid: str, now: datetime) -> tuple[int, int, int]:
        """Record a payment event on charge ``txid`` once: (state, paid cents, refunded cents),
        state 1 new, 0 recorded before, 2 no such charge (the event is kept, the charge is not)."""
        doc = _event_doc(event)
        doc["txid"] = txid
        entry = json.dumps(doc, separators=(",", ":"))
        state, paid, refunded = await self._payment_record(
            keys=[keys.PAY_EVENTS, keys.charge(txid or "-"), keys.PAY_STREAM, keys.UNSETTLED],
            args=[
                event.event_id,
                entry,
                event.kind.value,
                cents(event.amount),
                to_ms(now),
                entry,
                txid or "-",
            ],
        )
        return int(state), int(paid), int(refunded)

    async def current_charges(self, account_ids: Sequence[str]) -> dict[str, ChargeRecord]:
        """Each account's most recent whole-debt charge (two round trips for all of them)."""
        unique = list(dict.fromkeys(account_ids))
        if not unique:
            return {}
        txids = await self._r.hmget(keys.CURRENT_CHARGE, unique)
        found = await self.charges([t for t in txids if t])
        records = {r.txid: r for r in found if r is not None}
        return {a: records[t] for a, t in zip(unique, txids, strict=True) if t in records}

    async def record_payments(
        self, pairs: Sequence[tuple[PaymentEvent, str]], now: datetime
    ) -> list[tuple[int, int, int]]:
        """``record_payment`` for many events in one pipeline, in order (two events of one
        charge see each other's sums)."""
        at = to_ms(now)
        async with self._r.pipeline(transaction=False) as p:
            for event, txid in pairs:
                doc = _event_doc(event)
                doc["txid"] = txid
                entry = json.dumps(doc, separators=(",", ":"))
                await self._queue_script(
                    p,
                    self._payment_record,
                    [keys.PAY_EVENTS, keys.charge(txid or "-"), keys.PAY_STREAM, keys.UNSETTLED],
                    [event.event_id, entry, event.kind.value, cents(event.amount), at, entry],
                )
            replies = await p.execute()
        return [(int(a), int(b), int(c)) for a, b, c in replies]

    async def unsettled_among(self, event_ids: Sequence[str]) -> set[str]:
        if not event_ids:
            return set()
        scores = await self._r.zmscore(keys.UNSETTLED, list(event_ids))
        return {e for e, sc in zip(event_ids, scores, strict=True) if sc is not None}

    async def holding_many(self, account_ids: Sequence[str]) -> dict[str, list[str]]:
        """The campaigns that hold each account (two round trips for all of them)."""
        unique = list(dict.fromkeys(account_ids))
        names = sorted(await self._r.hkeys(keys.CAMPAIGNS))
        if not names or not unique:
            return {a: [] for a in unique}
        async with self._r.pipeline(transaction=False) as p:
            for a in unique:
                for name in names:
                    p.exists(CampaignKeys(name).account(a))
            found = await p.execute()
        it = iter(found)
        return {a: [n for n in names if next(it)] for a in unique}

    async def apply_payments(self, applies: Sequence[PaymentApply]) -> None:
        """``apply_payment`` for many (campaign, event) pairs, and each charge's credit note."""
        if not applies:
            return
        async with self._r.pipeline(transaction=False) as p:
            for a in applies:
                k = CampaignKeys(a.campaign)
                await self._queue_script(
                    p,
                    self._payment_apply,
                    [k.payments, k.stats, k.events(a.account_id)],
                    [
                        a.event_id,
                        a.delta_cents,
                        1 if a.is_payment else 0,
                        a.step,
                        a.channel,
                        event_json([a.timeline]),
                        "1" if a.attributed else "0",
                    ],
                )
            await p.execute()

    async def finish_settling(
        self,
        event_ids: Sequence[str],
        *,
        credits: Sequence[tuple[str, str, str, datetime]],
        rechecks: Sequence[tuple[str, datetime | None]],
        audits: Sequence[tuple[datetime, str, str, Mapping[str, Any]]],
    ) -> None:
        """The end of a batch, in one pipeline: each charge's credit note (txid, step,
        channel, paid at), when to ask about it again, the audit lines, and the events off
        the unsettled list."""
        async with self._r.pipeline(transaction=False) as p:
            for txid, step, channel, paid_at in credits:
                p.hset(
                    keys.charge(txid),
                    mapping={"step": step, "channel": channel, "paid_at": paid_at.isoformat()},
                )
            for txid, at in rechecks:
                if at is None:
                    p.zrem(keys.RECHECK, txid)
                else:
                    p.zadd(keys.RECHECK, {txid: to_ms(at)})
            for now, actor, kind, data in audits:
                p.xadd(keys.AUDIT, audit_fields(now, actor, kind, data))
            if event_ids:
                p.zrem(keys.UNSETTLED, *event_ids)
            await p.execute()

    async def apply_payment(
        self,
        campaign: str,
        account_id: str,
        event_id: str,
        delta_cents: int,
        *,
        is_payment: bool,
        step: str,
        channel: str,
        timeline: dict[str, Any],
        attributed: bool,
    ) -> bool:
        """Count the event in one campaign once (its recovered money, when ``attributed``) and
        put it on the account's timeline there. False: that campaign had it already."""
        k = CampaignKeys(campaign)
        done = await self._payment_apply(
            keys=[k.payments, k.stats, k.events(account_id)],
            args=[
                event_id,
                delta_cents,
                1 if is_payment else 0,
                step,
                channel,
                event_json([timeline]),
                "1" if attributed else "0",
            ],
        )
        return bool(done)

    async def note_credit(self, txid: str, *, step: str, channel: str, paid_at: datetime) -> None:
        """What the report shows for the charge: the step credited with its latest payment."""
        await self._r.hset(
            keys.charge(txid), mapping={"step": step, "channel": channel, "paid_at": paid_at.isoformat()}
        )

    async def payment_summaries(self, account_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per account (whole-debt charge): paid, refunded, the credited step, when (the report)."""
        if not account_ids:
            return {}
        async with self._r.pipeline(transaction=False) as p:
            for a in account_ids:
                p.zrange(keys.account_charges(a), -1, -1)
            latest = await p.execute()
        pairs = [(a, t[0]) for a, t in zip(account_ids, latest, strict=True) if t]
        async with self._r.pipeline(transaction=False) as p:
            for _, t in pairs:
                p.hgetall(keys.charge(t))
            raws = await p.execute()
        out: dict[str, dict[str, Any]] = {}
        for (account, _), raw in zip(pairs, raws, strict=True):
            if raw and "c" in raw:
                record = ChargeRecord.from_hash(raw)
                out[account] = {
                    "record": record,
                    "step": raw.get("step", ""),
                    "channel": raw.get("channel", ""),
                    "paid_at": raw.get("paid_at", ""),
                }
        await self._with_agreements(account_ids, out)
        return out

    async def _with_agreements(self, account_ids: Sequence[str], out: dict[str, dict[str, Any]]) -> None:
        """Each account's latest agreement (its status, installments paid, total, paid)."""
        async with self._r.pipeline(transaction=False) as p:
            for a in account_ids:
                p.zrange(keys.account_agreements(a), -1, -1)
            latest = await p.execute()
        pairs = [(a, i[0]) for a, i in zip(account_ids, latest, strict=True) if i]
        if not pairs:
            return
        async with self._r.pipeline(transaction=False) as p:
            for _, i in pairs:
                p.hgetall(keys.agreement(i))
            raws = await p.execute()
        for (account, _), raw in zip(pairs, raws, strict=True):
            if raw and "doc" in raw:
                found = AgreementRecord.from_hash(raw)
                out.setdefault(account, {})["agreement"] = found

    async def settled(self, event_id: str) -> None:
        await self._r.zrem(keys.UNSETTLED, event_id)

    async def is_unsettled(self, event_id: str) -> bool:
        return await self._r.zscore(keys.UNSETTLED, event_id) is not None

    async def unsettled(self, before: datetime, count: int = 100) -> list[str]:
        """Event ids recorded before ``before`` whose account was never settled (a crash)."""
        return list(
            await self._r.zrange(keys.UNSETTLED, "-inf", to_ms(before), byscore=True, offset=0, num=count)
        )

    async def payment_events(self, count: int = 1000, *, newest_first: bool = True) -> list[dict[str, Any]]:
        """The payment stream (events as recorded, ``unknown`` when no charge matched)."""
        entries = await (self._r.xrevrange if newest_first else self._r.xrange)(keys.PAY_STREAM, count=count)
        out = []
        for entry_id, fields in entries:
            doc = json.loads(fields["e"])
            doc["entry"] = entry_id
            doc["unknown"] = fields.get("unknown") == "1"
            out.append(doc)
        return out

    async def payment_event(self, event_id: str) -> dict[str, Any] | None:
        raw = await self._r.hget(keys.PAY_EVENTS, event_id)
        return json.loads(raw) if raw else None

    async def campaigns_holding(self, account_id: str) -> list[str]:
        """The campaigns that hold this account (one round trip for all of them)."""
        names = sorted(await self._r.hkeys(keys.CAMPAIGNS))
        if not names:
            return []
        async with self._r.pipeline(transaction=False) as p:
            for name in names:
                p.exists(CampaignKeys(name).account(account_id))
            found = await p.execute()
        return [n for n, f in zip(names, found, strict=True) if f]

    # ------------------------------------------------------------------ reconciliation

    async def due_rechecks(self, now: datetime, count: int) -> list[str]:
        return list(await self._r.zrange(keys.RECHECK, "-inf", to_ms(now), byscore=True, offset=0, num=count))

    async def recheck_at(self, txid: str, at: datetime | None) -> None:
        """Ask about this charge again at ``at`` (None: never: it is paid or gone)."""
        if at is None:
            await self._r.zrem(keys.RECHECK, txid)
        else:
            await self._r.zadd(keys.RECHECK, {txid: to_ms(at)})

    async def open_charges(self) -> int:
        return int(await self._r.zcard(keys.RECHECK))

    async def sweep_mark(self) -> str | None:
        value: str | None = await self._r.get(keys.SWEEP)
        return value

    async def set_sweep_mark(self, at: datetime) -> None:
        await self._r.set(keys.SWEEP, at.isoformat())

    async def first_delivery(self, key: str, ttl_s: float) -> bool:
        """True the first time a webhook signature is seen within ``ttl_s`` (a replay: False)."""
        return bool(await self._r.set(keys.webhook_seen(key), "1", nx=True, ex=max(1, int(ttl_s) + 1)))

    async def first_deliveries(self, asks: Sequence[tuple[str, float]]) -> list[bool]:
        """``first_delivery`` for many (key, seconds) at once."""
        async with self._r.pipeline(transaction=False) as p:
            for key, ttl in asks:
                p.set(keys.webhook_seen(key), "1", nx=True, ex=max(1, int(ttl) + 1))
            return [bool(x) for x in await p.execute()]

    async def forget_deliveries(self, keys_: Sequence[str]) -> None:
        """Let these deliveries through again (their batch was not written)."""
        if keys_:
            await self._r.delete(*(keys.webhook_seen(k) for k in keys_))

    # ------------------------------------------------------------------ SANDBOX

    async def schedule_sandbox_payment(self, txid: str, at: datetime) -> None:
        await self._r.zadd(keys.SANDBOX_PAYS, {txid: to_ms(at)}, nx=True)

    async def due_sandbox_payments(self, now: datetime, count: int = 100) -> list[str]:
        due = list(
            await self._r.zrange(keys.SANDBOX_PAYS, "-inf", to_ms(now), byscore=True, offset=0, num=count)
        )
        if due:
            await self._r.zrem(keys.SANDBOX_PAYS, *due)
        return due
