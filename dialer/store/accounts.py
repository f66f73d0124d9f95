"""Accounts across campaigns: timelines, status changes, the report's iteration, the audit."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from dialer.domain import AccountStatus
from dialer.errors import StoreError
from dialer.store import keys
from dialer.store.campaigns import CampaignStore
from dialer.store.codec import event_json, from_ms, pack_account, to_ms, unpack_account
from dialer.store.keys import CampaignKeys
from dialer.store.suppressions import SuppressionStore
from dialer.store.values import AccountState
from dialer.store.work import WorkStore


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
        names = [campaign] if campaign else await self.campaign_names()
        changes: list[dict[str, Any]] = []
        for name in names:
            k = CampaignKeys(name)
            for _ in range(10):  # optimistic: a worker or a load changed the account meanwhile
                packed = await self._r.hget(k.account(account_id), "a")
                if packed is None:
                    break
                account = unpack_account(account_id, packed)
                old = account.status
                if old is status:
                    changes.append({"campaign": name, "from": old, "to": status, "changed": False})
                    break
                event = {"at": now.isoformat(), "kind": "status", "from": old, "to": status, "actor": actor}
                if note:
                    event["note"] = note
                reopen = str(to_ms(now)) if status is AccountStatus.OPEN else ""
                done = await self._set_status(
                    keys=[k.account(account_id), k.events(account_id), k.schedule],
                    args=[
                        packed,
                        pack_account(replace(account, status=status)),
                        event_json([event]),
                        reopen,
                        account_id,
                    ],
                )
                if done:
                    changes.append({"campaign": name, "from": old, "to": status, "changed": True})
                    break
            else:
                raise StoreError(f"account {account_id} in {name} kept changing; try again")
        if any(c["changed"] for c in changes):
            data = {
                "account": account_id,
                "status": status,
                "campaigns": [c["campaign"] for c in changes if c["changed"]],
            }
            if note:
                data["note"] = note
            await self.audit_global(now, actor, "account_status", data)
            if status is AccountStatus.OPEN:
                await self.wake()
        return changes

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
