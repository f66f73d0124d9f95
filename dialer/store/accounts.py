"""Accounts across campaigns: timelines, status changes, the report's iteration, the audit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from dialer.domain import Account, AccountStatus
from dialer.errors import StoreError
from dialer.store import keys
from dialer.store.campaigns import CampaignStore
from dialer.store.codec import audit_fields, event_json, from_ms, pack_account, to_ms, unpack_account
from dialer.store.keys import CampaignKeys
from dialer.store.suppressions import SuppressionStore
from dialer.store.values import AccountState
from dialer.store.work import WorkStore


@dataclass(frozen=True, slots=True)
class StatusChange:
    account_id: str
    status: AccountStatus
    note: str = ""
    only_from: frozenset[AccountStatus] = frozenset()  # empty: from any status


class AccountStore(CampaignStore, WorkStore, SuppressionStore):
    async def audit_global(self, now: datetime, actor: str, kind: str, data: Mapping[str, Any]) -> None:
        await self._r.xadd(
            keys.AUDIT, {"at": now.isoformat(), "actor": actor, "kind": kind, "data": event_json(data)}
        )

    async def timeline(self, account_id: str, campaign: str | None = None) -> list[dict[str, Any]]:
        """An account's events across campaigns (or one), oldest first."""
        names = [campaign] if campaign else await self.campaign_names()
        events: list[dict[str, Any]] = []
        for name in names:
            for raw in await self._r.lrange(CampaignKeys(name).events(account_id), 0, -1):
                decoded = json.loads(raw)  # the events one finished entry wrote together
                for event in decoded if isinstance(decoded, list) else [decoded]:
                    event.setdefault("campaign", name)
                    events.append(event)
        events.sort(key=lambda e: str(e.get("at", "")))
        return events

    async def set_account_status(
        self,
        account_id: str,
        status: AccountStatus,
        now: datetime,
        actor: str,
        *,
        note: str = "",
        campaign: str | None = None,
    ) -> list[dict[str, Any]]:
        """Mark an account paid, disputed, closed or open again, in every campaign that holds
        it (or one). Takes effect at once: a worker that planned a contact on the old status
        finds its claim stale and decides again. Reopening puts the account back on the
        schedule. Returns one entry per campaign holding the account (empty: none does)."""
        changes = await self.set_statuses(
            [StatusChange(account_id, status, note)], now, actor, campaign=campaign
        )
        return changes[0]

    async def set_statuses(
        self,
        wanted: Sequence[StatusChange],
        now: datetime,
        actor: str,
        *,
        campaign: str | None = None,
        campaigns: Sequence[str] | None = None,
        known: Mapping[tuple[str, str], Account] | None = None,
    ) -> list[list[dict[str, Any]]]:
        """``set_account_status`` for many accounts at once (one pipeline per campaign, one
        for the audit): what a batch of payments does. A change with ``only_from`` applies
        only where the account's status is one of them (a refund reopens what a payment
        closed, not what a person disputed). ``known``: (campaign, account) as just read, to
        save reading it again (a change meanwhile is caught by the script and read again).
        Per change: one entry per campaign holding it."""
        names = (
            [campaign]
            if campaign
            else (list(campaigns) if campaigns is not None else await self.campaign_names())
        )
        out: list[list[dict[str, Any]]] = [[] for _ in wanted]
        for name in names:
            k = CampaignKeys(name)
            have = known or {}
            ask = [w for w in wanted if (name, w.account_id) not in have]
            read: dict[str, str | None] = {}
            if ask:
                async with self._r.pipeline(transaction=False) as p:
                    for w in ask:
                        p.hget(k.account(w.account_id), "a")
                    read = dict(zip((w.account_id for w in ask), await p.execute(), strict=True))
            packed_all = [
                pack_account(have[(name, w.account_id)])
                if (name, w.account_id) in have
                else read[w.account_id]
                for w in wanted
            ]
            tries: list[tuple[int, str, AccountStatus]] = []
            for i, (w, packed) in enumerate(zip(wanted, packed_all, strict=True)):
                if packed is None:
                    continue
                old = unpack_account(w.account_id, packed).status
                if old is w.status or (w.only_from and old not in w.only_from):
                    out[i].append({"campaign": name, "from": old, "to": w.status, "changed": False})
                    continue
                tries.append((i, packed, old))
            if not tries:
                continue
            async with self._r.pipeline(transaction=False) as p:
                for i, packed, old in tries:
                    await self._queue_status(p, k, wanted[i], packed, old, now, actor)
                done_all = await p.execute()
            for (i, _, old), done in zip(tries, done_all, strict=True):
                if done:
                    out[i].append({"campaign": name, "from": old, "to": wanted[i].status, "changed": True})
                else:  # a worker or a load changed the account meanwhile: read it again
                    out[i].append(await self._set_one(name, wanted[i], now, actor))
        audits = []
        for w, changes in zip(wanted, out, strict=True):
            if any(c["changed"] for c in changes):
                data: dict[str, Any] = {
                    "account": w.account_id,
                    "status": w.status,
                    "campaigns": [c["campaign"] for c in changes if c["changed"]],
                }
                if w.note:
                    data["note"] = w.note
                audits.append(data)
        if audits:
            async with self._r.pipeline(transaction=False) as p:
                for data in audits:
                    p.xadd(keys.AUDIT, audit_fields(now, actor, "account_status", data))
                await p.execute()
            if any(w.status in (AccountStatus.OPEN, AccountStatus.AGREEMENT) for w in wanted):
                await self.wake()
        return out

    async def _queue_status(
        self,
        pipe: Any,
        k: CampaignKeys,
        w: StatusChange,
        packed: str,
        old: AccountStatus,
        now: datetime,
        actor: str,
    ) -> None:
        account = unpack_account(w.account_id, packed)
        event = {"at": now.isoformat(), "kind": "status", "from": old, "to": w.status, "actor": actor}
        if w.note:
            event["note"] = w.note
        # back on its régua (or onto an agreement's reminders): planned again now
        reopen = str(to_ms(now)) if w.status in (AccountStatus.OPEN, AccountStatus.AGREEMENT) else ""
        await self._queue_script(
            pipe,
            self._set_status,
            [k.account(w.account_id), k.events(w.account_id), k.schedule],
            [
                packed,
                pack_account(replace(account, status=w.status)),
                event_json([event]),
                reopen,
                w.account_id,
            ],
        )

    async def _set_one(self, name: str, w: StatusChange, now: datetime, actor: str) -> dict[str, Any]:
        k = CampaignKeys(name)
        for _ in range(10):  # optimistic: a worker or a load changed the account meanwhile
            packed = await self._r.hget(k.account(w.account_id), "a")
            if packed is None:
                return {"campaign": name, "from": None, "to": w.status, "changed": False}
            old = unpack_account(w.account_id, packed).status
            if old is w.status or (w.only_from and old not in w.only_from):
                return {"campaign": name, "from": old, "to": w.status, "changed": False}
            async with self._r.pipeline(transaction=False) as p:
                await self._queue_status(p, k, w, packed, old, now, actor)
                (done,) = await p.execute()
            if done:
                return {"campaign": name, "from": old, "to": w.status, "changed": True}
        raise StoreError(f"account {w.account_id} in {name} kept changing; try again")

    async def iter_accounts(
        self, campaign: str, batch: int = 500
    ) -> AsyncIterator[list[tuple[AccountState, datetime | None, frozenset[str]]]]:
        """Every account of a campaign, in batches: its state, its next schedule entry and
        which of its phones are suppressed (any channel). Streams: only the ids already seen
        are kept, never the accounts."""
        k = CampaignKeys(campaign)
        prefix = f"{k.tag}:a:"
        ids: list[str] = []

        async def load(chunk: list[str]) -> list[tuple[AccountState, datetime | None, frozenset[str]]]:
            states = await self.load_accounts(campaign, chunk)
            scores = await self._r.zmscore(k.schedule, chunk)
            found = [(s, sc) for s, sc in zip(states, scores, strict=True) if s is not None]
            suppressed = await self.suppressions(p.number for s, _ in found for p in s.phones)
            return [
                (
                    s,
                    from_ms(int(sc)) if sc is not None else None,
                    frozenset(p.number for p in s.phones if p.number in suppressed),
                )
                for s, sc in found
            ]

        seen: set[str] = set()  # SCAN may return a key twice (if Redis resizes meanwhile)
        async for key in self._r.scan_iter(match=f"{prefix}*", count=1000, _type="hash"):
            account_id = key[len(prefix) :]
            if account_id in seen:
                continue
            seen.add(account_id)
            ids.append(account_id)
            if len(ids) >= batch:
                yield await load(ids)
                ids = []
        if ids:
            yield await load(ids)

    async def global_audit(self, count: int = 1000) -> list[dict[str, Any]]:
        out = []
        for entry_id, fields in await self._r.xrevrange(keys.AUDIT, count=count):
            out.append({"id": entry_id, **fields, "data": json.loads(fields.get("data", "{}"))})
        return out[::-1]

    # ------------------------------------------------------------------ suppression
