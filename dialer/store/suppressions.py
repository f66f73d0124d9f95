"""The global do-not-contact list (every campaign, at once)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from dialer.domain import Channel, Suppression
from dialer.store import keys
from dialer.store.base import StoreBase
from dialer.store.codec import audit_fields, suppression_field, suppression_from_json, suppression_to_json


class SuppressionStore(StoreBase):
    async def suppressions(self, numbers: Iterable[str]) -> dict[str, tuple[Suppression, ...]]:
        numbers = list(dict.fromkeys(numbers))
        if not numbers:
            return {}
        fields = [f"{n}|{c}" for n in numbers for c in ("*", *(ch.value for ch in Channel))]
        values = await self._r.hmget(keys.SUPPRESS, fields)
        out: dict[str, list[Suppression]] = {}
        for f, v in zip(fields, values, strict=True):
            if v:
                s = suppression_from_json(f, v)
                if s is not None:
                    out.setdefault(s.number, []).append(s)
        return {n: tuple(v) for n, v in out.items()}

    async def suppress(
        self,
        entries: Sequence[Suppression],
        now: datetime,
        actor: str,
        audit: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> int:
        """Add suppression entries (global, every campaign) and their audit events, in one
        transaction. Returns how many were new."""
        if not entries:
            return 0
        async with self._r.pipeline(transaction=True) as p:
            p.hset(
                keys.SUPPRESS,
                mapping={suppression_field(s): suppression_to_json(s, now, actor) for s in entries},
            )
            for kind, data in audit:
                p.xadd(keys.AUDIT, audit_fields(now, actor, kind, data))
            results = await p.execute()
        return int(results[0])

    async def unsuppress(
        self,
        number: str,
        channel: Channel | None,
        now: datetime,
        actor: str,
        kind: str,
        data: Mapping[str, Any],
    ) -> int:
        """Lift one suppression and audit it (whether or not there was one), together."""
        field_name = f"{number}|{channel.value if channel else '*'}"
        found, missing = (audit_fields(now, actor, kind, {**data, "removed": n}) for n in (1, 0))
        removed = await self._unsuppress(
            keys=[keys.SUPPRESS, keys.AUDIT],
            args=[field_name, now.isoformat(), actor, kind, found["data"], missing["data"]],
        )
        return int(removed)

    async def suppression_list(self, limit: int = 1000) -> list[dict[str, Any]]:
        out = []
        async for f, v in self._r.hscan_iter(keys.SUPPRESS, count=500):
            entry = json.loads(v)
            entry["number"], entry["channel"] = f.split("|", 1)
            out.append(entry)
            if len(out) >= limit:
                break
        return out
