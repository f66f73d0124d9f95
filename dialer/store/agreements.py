"""Agreements (acordos) and the guards of the debtor pages (under ``{pay}`` and ``{g}``).

An agreement is a hash: ``doc`` — the accepted offer and who accepted it where, written
once — ``status`` (current | kept | broken), ``ended_at`` and ``paid:<n>`` for each
installment paid. ``agreement-current`` names the one current agreement of an account: the
script that makes an agreement writes it only when there is none, so two accepts at once
(two tabs, a double click, the IVR and the page) make one agreement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from dialer.rules.agreements import AgreementStatus
from dialer.rules.offers import Installment, Offer, OfferKind, Special
from dialer.store import keys
from dialer.store.base import StoreBase
from dialer.store.codec import audit_fields, to_ms


@dataclass(frozen=True, slots=True)
class AgreementRecord:
    agreement_id: str
    account_id: str
    campaign: str
    offer: Offer
    created_at: str
    via: str  # page | ivr | api
    actor: str
    status: AgreementStatus = AgreementStatus.CURRENT
    ended_at: str = ""
    paid: frozenset[int] = frozenset()

    def doc(self) -> dict[str, Any]:
        return {
            "id": self.agreement_id,
            "account": self.account_id,
            "campaign": self.campaign,
            "created_at": self.created_at,
            "via": self.via,
            "actor": self.actor,
            "offer": offer_doc(self.offer),
        }

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> AgreementRecord:
        doc = json.loads(raw["doc"])
        return cls(
            agreement_id=doc["id"],
            account_id=doc["account"],
            campaign=doc["campaign"],
            offer=offer_from(doc["offer"]),
            created_at=doc["created_at"],
            via=doc.get("via", ""),
            actor=doc.get("actor", ""),
            status=AgreementStatus(raw.get("status", "current")),
            ended_at=raw.get("ended_at", ""),
            paid=frozenset(int(k[5:]) for k in raw if k.startswith("paid:")),
        )

    @property
    def paid_cents(self) -> int:
        return sum(i.amount_cents for i in self.offer.installments if i.number in self.paid)


def offer_doc(o: Offer) -> dict[str, Any]:
    return {
        "id": o.offer_id,
        "kind": o.kind.value,
        "installments": [[i.number, i.due.isoformat(), i.amount_cents] for i in o.installments],
        "principal": o.principal_cents,
        "fine": o.fine_cents,
        "interest": o.interest_cents,
        "discount": o.discount_cents,
        "financing": o.financing_cents,
        "rate": str(o.plan_interest_percent_month),
        "down": o.down_payment_cents,
        "quoted_on": o.quoted_on.isoformat(),
        "valid_until": o.valid_until.isoformat(),
    }


def offer_from(d: dict[str, Any]) -> Offer:
    return Offer(
        offer_id=d["id"],
        kind=OfferKind(d["kind"]),
        installments=tuple(
            Installment(int(n), date.fromisoformat(due), int(c)) for n, due, c in d["installments"]
        ),
        principal_cents=int(d["principal"]),
        fine_cents=int(d["fine"]),
        interest_cents=int(d["interest"]),
        discount_cents=int(d["discount"]),
        financing_cents=int(d["financing"]),
        plan_interest_percent_month=Decimal(d["rate"]),
        down_payment_cents=int(d["down"]),
        quoted_on=date.fromisoformat(d["quoted_on"]),
        valid_until=date.fromisoformat(d["valid_until"]),
    )


def special_doc(s: Special) -> str:
    return json.dumps(
        {
            "discount_percent": str(s.discount_percent),
            "installments": s.installments,
            "down_payment_percent": str(s.down_payment_percent),
            "interest_percent_month": str(s.interest_percent_month),
            "min_installment": str(s.min_installment),
            "until": s.until.isoformat() if s.until else "",
            "by": s.by,
        }
    )


def special_from(text: str) -> Special:
    d = json.loads(text)
    return Special(
        discount_percent=Decimal(d["discount_percent"]),
        installments=int(d["installments"]),
        down_payment_percent=Decimal(d["down_payment_percent"]),
        interest_percent_month=Decimal(d["interest_percent_month"]),
        min_installment=Decimal(d["min_installment"]),
        until=date.fromisoformat(d["until"]) if d.get("until") else None,
        by=d.get("by", ""),
    )


@dataclass(frozen=True, slots=True)
class Made:
    agreement_id: str
    created: bool  # False: it existed (the same offer accepted again)
    conflict: bool = False  # another agreement of the account is current
    ended: bool = False  # this agreement was made before and has ended


class AgreementStore(StoreBase):
    async def create_agreement(self, record: AgreementRecord, review_at: datetime, now: datetime) -> Made:
        state, found = await self._agreement_create(
            keys=[
                keys.CURRENT_AGREEMENT,
                keys.agreement(record.agreement_id),
                keys.AGREEMENT_REVIEW,
                keys.AGREEMENT_STATS,
                keys.account_agreements(record.account_id),
            ],
            args=[
                record.account_id,
                record.agreement_id,
                json.dumps(record.doc(), separators=(",", ":")),
                to_ms(review_at),
                record.campaign,
                record.offer.total_cents,
                to_ms(now),
            ],
        )
        state = int(state)
        if state == 1:
            return Made(found, True)
        if state == 2:
            return Made(found, False, ended=True)
        return Made(found, False, conflict=found != record.agreement_id)

    async def agreement(self, agreement_id: str) -> AgreementRecord | None:
        raw = await self._r.hgetall(keys.agreement(agreement_id))
        return AgreementRecord.from_hash(raw) if raw and "doc" in raw else None

    async def current_agreements(self, account_ids: Sequence[str]) -> dict[str, AgreementRecord]:
        """The current agreement of each account that has one."""
        unique = list(dict.fromkeys(account_ids))
        if not unique:
            return {}
        ids = await self._r.hmget(keys.CURRENT_AGREEMENT, unique)
        found = [(a, i) for a, i in zip(unique, ids, strict=True) if i]
        async with self._r.pipeline(transaction=False) as p:
            for _, i in found:
                p.hgetall(keys.agreement(i))
            raws = await p.execute()
        return {
            a: AgreementRecord.from_hash(r) for (a, _), r in zip(found, raws, strict=True) if r and "doc" in r
        }

    async def account_agreements(self, account_id: str) -> list[AgreementRecord]:
        ids = await self._r.zrange(keys.account_agreements(account_id), 0, -1)
        out = []
        for i in ids:
            found = await self.agreement(i)
            if found is not None:
                out.append(found)
        return out

    async def mark_installment(
        self, agreement_id: str, number: int, paid: bool, campaign: str, cents: int
    ) -> bool:
        """Installment ``number`` paid (or, after a refund, not). True when that changed."""
        key = keys.agreement(agreement_id)
        if paid:
            changed = bool(await self._r.hsetnx(key, f"paid:{number}", "1"))
        else:
            changed = bool(await self._r.hdel(key, f"paid:{number}"))
        if changed:
            await self._r.hincrby(keys.AGREEMENT_STATS, f"{campaign}|paid_cents", cents if paid else -cents)
        return changed

    async def end_agreement(
        self,
        record: AgreementRecord,
        status: AgreementStatus,
        now: datetime,
        audit: dict[str, Any],
        actor: str,
    ) -> bool:
        done = await self._agreement_end(
            keys=[
                keys.agreement(record.agreement_id),
                keys.CURRENT_AGREEMENT,
                keys.AGREEMENT_REVIEW,
                keys.AGREEMENT_STATS,
            ],
            args=[status.value, now.isoformat(), record.account_id, record.agreement_id, record.campaign],
        )
        if done:
            await self._r.xadd(keys.AUDIT, audit_fields(now, actor, f"agreement_{status.value}", audit))
        return bool(done)

    async def reopen_agreement(self, record: AgreementRecord, review_at: datetime) -> bool:
        done = await self._agreement_reopen(
            keys=[
                keys.agreement(record.agreement_id),
                keys.CURRENT_AGREEMENT,
                keys.AGREEMENT_REVIEW,
                keys.AGREEMENT_STATS,
            ],
            args=[record.account_id, record.agreement_id, record.campaign, to_ms(review_at)],
        )
        return bool(done)

    async def review_agreement_at(self, agreement_id: str, at: datetime) -> None:
        await self._r.zadd(keys.AGREEMENT_REVIEW, {agreement_id: to_ms(at)}, xx=True)

    async def drop_review(self, agreement_id: str) -> None:
        await self._r.zrem(keys.AGREEMENT_REVIEW, agreement_id)

    async def agreements_to_review(self, now: datetime, count: int = 200) -> list[str]:
        return list(
            await self._r.zrangebyscore(keys.AGREEMENT_REVIEW, "-inf", to_ms(now), start=0, num=count)
        )

    async def agreement_stats(self) -> dict[str, dict[str, int]]:
        """Per campaign: made, current, kept, broken, made_cents, paid_cents."""
        raw = await self._r.hgetall(keys.AGREEMENT_STATS)
        out: dict[str, dict[str, int]] = {}
        for field, value in raw.items():
            campaign, _, name = field.rpartition("|")
            out.setdefault(campaign, {})[name] = int(value)
        for s in out.values():
            for name in ("made", "kept", "broken", "made_cents", "paid_cents"):
                s.setdefault(name, 0)
            s["current"] = s["made"] - s["kept"] - s["broken"]
        return out

    async def all_agreement_ids(self, count: int = 10000) -> list[str]:
        """Agreements to list (the current ones and those under review first)."""
        current = await self._r.hvals(keys.CURRENT_AGREEMENT)
        return list(current)[:count]

    async def audit_agreement(self, now: datetime, actor: str, action: str, data: dict[str, Any]) -> None:
        await self._r.xadd(keys.AUDIT, audit_fields(now, actor, action, data))

    # ------------------------------------------------------------------ special offers

    async def set_special_offer(self, account_id: str, special: Special | None) -> None:
        if special is None:
            await self._r.hdel(keys.SPECIAL_OFFERS, account_id)
        else:
            await self._r.hset(keys.SPECIAL_OFFERS, account_id, special_doc(special))

    async def special_offer(self, account_id: str) -> Special | None:
        raw = await self._r.hget(keys.SPECIAL_OFFERS, account_id)
        return special_from(raw) if raw else None

    # ------------------------------------------------------------------ debtor-page guards

    async def link_failure(self, nonce: str, address: str, window_s: int) -> tuple[int, int]:
        """Count a failed second factor on link ``nonce`` from ``address``: (link's, address's)."""
        a = await self._count_failure(keys=[keys.link_failures("link:" + nonce)], args=[window_s])
        b = await self._count_failure(keys=[keys.link_failures("ip:" + address)], args=[3600])
        return int(a), int(b)

    async def link_failures_of(self, nonce: str, address: str) -> tuple[int, int]:
        a, b = await self._r.mget([keys.link_failures("link:" + nonce), keys.link_failures("ip:" + address)])
        return int(a or 0), int(b or 0)

    async def lock_link(self, nonce: str, seconds: int) -> None:
        await self._r.set(keys.link_lock(nonce), "1", ex=max(1, seconds))

    async def link_locked(self, nonce: str) -> bool:
        return bool(await self._r.exists(keys.link_lock(nonce)))

    async def open_debtor_session(self, digest: str, data: dict[str, Any], ttl_s: int) -> None:
        await self._r.set(keys.debtor_session(digest), json.dumps(data), ex=ttl_s)

    async def debtor_session(self, digest: str) -> dict[str, Any] | None:
        raw = await self._r.get(keys.debtor_session(digest))
        return json.loads(raw) if raw else None

    async def close_debtor_session(self, digest: str) -> None:
        await self._r.delete(keys.debtor_session(digest))
