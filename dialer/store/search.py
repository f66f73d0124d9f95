"""Finding accounts for the console: by id, name or phone, and those the rules hold back.

Redis has no index on an account's name or phones, so both searches walk the campaigns'
account hashes with SCAN, in pipelined batches, and are *bounded*: they stop at ``limit``
matches (``cut``: there may be more) and after reading ``budget`` account records
(``complete`` False: the rest was not read). An exact account id is looked up in every
campaign first, without scanning. Names match accent- and case-insensitively, every word
of the query somewhere in the name; phones match on their digits (a national number, with
or without the area code, finds its E.164 form).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dialer.store import keys
from dialer.store.base import StoreBase
from dialer.store.codec import SEP, from_ms, parse_account_fields
from dialer.store.keys import CampaignKeys
from dialer.store.values import AccountState

SCAN_BUDGET = 50_000  # account records one search reads at most
SCAN_BATCH = 500
MIN_PHONE_DIGITS = 4
LATEST_ENTRIES = 8  # timeline entries read first when looking for an account's latest decision


@dataclass(frozen=True, slots=True)
class AccountMatch:
    campaign: str
    account_id: str
    name: str
    status: str
    phones: tuple[str, ...]
    matched: str  # id | name | phone | reason
    decision: dict[str, Any] | None = None  # the latest decision (held-back search)


@dataclass(frozen=True, slots=True)
class AccountSearch:
    matches: tuple[AccountMatch, ...] = ()
    cut: bool = False  # stopped at the limit: there may be more matches
    scanned: int = 0  # account records read
    complete: bool = True  # every account of the campaigns searched was read
    campaigns: tuple[str, ...] = field(default_factory=tuple)


def fold(text: str) -> str:
    """Lower case without accents: ``"JOSÉ Conceição"`` -> ``"jose conceicao"``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _phone_digits(query: str) -> str:
    """The digits of a query that looks like a phone number ("" when it does not)."""
    if not re.fullmatch(r"[\d\s()+.\-]+", query):
        return ""
    digits = re.sub(r"\D", "", query).lstrip("0")
    return digits if len(digits) >= MIN_PHONE_DIGITS else ""


def _header(packed: str) -> tuple[str, str]:
    """Name and status from a packed account (``codec.pack_account``) without unpacking it."""
    parts = packed.split(SEP)
    return parts[0], parts[5] if len(parts) > 5 else ""


def _latest_decisions(entries: Sequence[str]) -> list[dict[str, Any]] | None:
    """The decisions of the newest timeline entry that holds any (entries oldest first)."""
    for raw in reversed(entries):
        try:
            decoded = json.loads(raw)
        except ValueError:
            continue
        events = decoded if isinstance(decoded, list) else [decoded]
        decisions = [e for e in events if isinstance(e, dict) and e.get("kind") == "decision"]
        if decisions:
            return decisions
    return None


class SearchStore(StoreBase):
    async def _campaigns(self, campaign: str | None) -> list[str]:
        names = sorted(await self._r.hkeys(keys.CAMPAIGNS))
        if campaign is not None:
            return [campaign] if campaign in names else []
        return names

    async def search_accounts(
        self, query: str, limit: int = 50, *, campaign: str | None = None, budget: int = SCAN_BUDGET
    ) -> AccountSearch:
        """Accounts whose id is ``query`` (every campaign, first), then those whose name holds
        every word of it or whose phone holds its digits — bounded (see the module)."""
        text = query.strip()[:120]
        names = await self._campaigns(campaign)
        if not text or not names:
            return AccountSearch(campaigns=tuple(names))
        found: list[AccountMatch] = []
        exact: set[tuple[str, str]] = set()
        async with self._r.pipeline(transaction=False) as p:
            for name in names:
                p.hgetall(CampaignKeys(name).account(text))
            records = await p.execute()
        for name, record in zip(names, records, strict=True):
            if record and "a" in record:
                found.append(_match(name, text, record["a"], list(record), "id"))
                exact.add((name, text))
        words = fold(text).split()
        digits = _phone_digits(text)
        scanned = 0
        for name in names:
            prefix = CampaignKeys(name).account_prefix
            async for batch in self._scan_accounts(prefix):
                if scanned >= budget:
                    return AccountSearch(tuple(found[:limit]), False, scanned, False, tuple(names))
                batch = batch[: budget - scanned]
                scanned += len(batch)
                async with self._r.pipeline(transaction=False) as p:
                    for key in batch:
                        p.hget(key, "a")
                        if digits:
                            p.hkeys(key)
                    replies = await p.execute()
                step = 2 if digits else 1
                for i, key in enumerate(batch):
                    account_id = key[len(prefix) :]
                    packed = replies[i * step]
                    if packed is None or (name, account_id) in exact:
                        continue
                    fields = replies[i * step + 1] if digits else []
                    person = fold(_header(packed)[0])
                    if words and not digits and all(w in person for w in words):
                        found.append(_match(name, account_id, packed, fields, "name"))
                    elif digits and any(f.startswith("p:") and digits in f[3:] for f in fields):
                        found.append(_match(name, account_id, packed, fields, "phone"))
                    if len(found) > limit:
                        return AccountSearch(tuple(found[:limit]), True, scanned, False, tuple(names))
        cut = len(found) > limit
        return AccountSearch(tuple(found[:limit]), cut, scanned, not cut, tuple(names))

    async def held_back(
        self, campaign: str, reason: str, limit: int = 100, *, budget: int = SCAN_BUDGET
    ) -> AccountSearch:
        """Accounts of ``campaign`` whose latest decisions all held them back, one of them for
        ``reason`` (``domain.Reason``) — bounded like ``search_accounts``."""
        names = await self._campaigns(campaign)
        if not names:
            return AccountSearch()
        k = CampaignKeys(campaign)
        prefix = k.account_prefix
        found: list[AccountMatch] = []
        scanned = 0
        async for batch in self._scan_accounts(prefix):
            if scanned >= budget:
                return AccountSearch(tuple(found[:limit]), False, scanned, False, (campaign,))
            batch = batch[: budget - scanned]
            scanned += len(batch)
            ids = [key[len(prefix) :] for key in batch]
            async with self._r.pipeline(transaction=False) as p:
                for account_id in ids:
                    p.lrange(k.events(account_id), -LATEST_ENTRIES, -1)
                latest = await p.execute()
            decisions = [_latest_decisions(entries) for entries in latest]
            unsure = [i for i, d in enumerate(decisions) if d is None and len(latest[i]) >= LATEST_ENTRIES]
            if unsure:  # a long tail without a decision: read those timelines whole
                async with self._r.pipeline(transaction=False) as p:
                    for i in unsure:
                        p.lrange(k.events(ids[i]), 0, -1)
                    for i, entries in zip(unsure, await p.execute(), strict=True):
                        decisions[i] = _latest_decisions(entries)
            held = [
                (ids[i], d)
                for i, d in enumerate(decisions)
                if d
                and not any(e.get("allowed") for e in d)
                and any(reason in (e.get("reasons") or ()) for e in d)
            ]
            if not held:
                continue
            async with self._r.pipeline(transaction=False) as p:
                for account_id, _ in held:
                    p.hget(k.account(account_id), "a")
                    p.hkeys(k.account(account_id))
                replies = await p.execute()
            for j, (account_id, d) in enumerate(held):
                packed, fields = replies[2 * j], replies[2 * j + 1]
                if packed is None:
                    continue
                chosen = next(e for e in d if reason in (e.get("reasons") or ()))
                found.append(_match(campaign, account_id, packed, fields, "reason", chosen))
                if len(found) > limit:
                    return AccountSearch(tuple(found[:limit]), True, scanned, False, (campaign,))
        return AccountSearch(tuple(found), False, scanned, True, (campaign,))

    async def account_records(self, account_id: str) -> list[tuple[str, AccountState, datetime | None]]:
        """The account in every campaign holding it: (campaign, its state, its next schedule
        entry or None)."""
        names = sorted(await self._r.hkeys(keys.CAMPAIGNS))
        if not names:
            return []
        async with self._r.pipeline(transaction=False) as p:
            for name in names:
                k = CampaignKeys(name)
                p.hgetall(k.account(account_id))
                p.zscore(k.schedule, account_id)
            replies = await p.execute()
        out = []
        for i, name in enumerate(names):
            record, score = replies[2 * i], replies[2 * i + 1]
            if not record:
                continue
            flat = [x for pair in record.items() for x in pair]
            state = parse_account_fields(account_id, flat)
            if state is not None:
                out.append((name, state, from_ms(int(score)) if score is not None else None))
        return out

    async def _scan_accounts(self, prefix: str) -> AsyncIterator[list[str]]:
        """Account hash keys under ``prefix``, in batches, each once."""
        seen: set[str] = set()  # SCAN may return a key twice (if Redis resizes meanwhile)
        batch: list[str] = []
        async for key in self._r.scan_iter(match=f"{prefix}*", count=1000, _type="hash"):
            if key in seen:
                continue
            seen.add(key)
            batch.append(key)
            if len(batch) >= SCAN_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


def _match(
    campaign: str,
    account_id: str,
    packed: str,
    fields: Sequence[str],
    matched: str,
    decision: dict[str, Any] | None = None,
) -> AccountMatch:
    name, status = _header(packed)
    phones = tuple(sorted(f[2:] for f in fields if f.startswith("p:")))
    return AccountMatch(campaign, account_id, name, status, phones, matched, decision)
