"""Small shared records: callbacks, admin configuration, IVR hand-off, payment links."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dialer.store import keys
from dialer.store.base import StoreBase
from dialer.store.codec import event_json


class HandoffStore(StoreBase):
    async def callbacks(self, limit: int = 500) -> list[dict[str, Any]]:
        """Open callback requests, oldest first; each with its ``id`` and, once an agent took
        it, ``claimed_by`` and ``claimed_at``."""
        members = await self._r.zrange(keys.CALLBACKS, 0, limit - 1)
        claims = (
            await self._r.hmget(keys.CALLBACK_CLAIMS, [callback_id(m) for m in members]) if members else []
        )
        out = []
        for member, claim in zip(members, claims, strict=True):
            entry = json.loads(member)
            entry["id"] = callback_id(member)
            if claim:
                entry.update(json.loads(claim))
            out.append(entry)
        return out

    async def claim_callback(self, cid: str, user: str, now: datetime) -> dict[str, Any] | None:
        """An agent takes a request (a second agent sees who has it). The request, or None."""
        for entry in await self.callbacks(10_000):
            if entry["id"] == cid:
                claim = {"claimed_by": user, "claimed_at": now.isoformat()}
                await self._r.hset(keys.CALLBACK_CLAIMS, cid, event_json(claim))
                return {**entry, **claim}
        return None

    async def complete_callback_id(self, cid: str) -> bool:
        """Mark a request done by its id. Whether it was open."""
        for member in await self._r.zrange(keys.CALLBACKS, 0, -1):
            if callback_id(member) == cid:
                async with self._r.pipeline(transaction=True) as p:
                    p.zrem(keys.CALLBACKS, member)
                    p.hdel(keys.CALLBACK_CLAIMS, cid)
                    removed, _ = await p.execute()
                return bool(removed)
        return False

    async def complete_callback(self, raw: Mapping[str, Any]) -> int:
        member = event_json({k: v for k, v in raw.items() if k not in ("id", "claimed_by", "claimed_at")})
        async with self._r.pipeline(transaction=True) as p:
            p.zrem(keys.CALLBACKS, member)
            p.hdel(keys.CALLBACK_CLAIMS, callback_id(member))
            removed, _ = await p.execute()
        return int(removed)

    # ------------------------------------------------------------------ admin configuration

    async def config_overlay(self) -> tuple[str, int]:
        text, version = await self._r.mget(keys.CONFIG_OVERLAY, keys.CONFIG_VERSION)
        return text or "", int(version or 0)

    async def set_config_overlay(self, text: str, now: datetime, actor: str, summary: str) -> int:
        async with self._r.pipeline(transaction=True) as p:
            p.set(keys.CONFIG_OVERLAY, text)
            p.incr(keys.CONFIG_VERSION)
            p.xadd(
                keys.AUDIT,
                {
                    "at": now.isoformat(),
                    "actor": actor,
                    "kind": "config_change",
                    "data": event_json({"summary": summary, "overlay": text}),
                },
            )
            _, version, _ = await p.execute()
        return int(version)

    # ------------------------------------------------------------------ IVR hand-off

    async def ivr_register(self, attempt_id: str, request: Mapping[str, str], ttl_s: int = 3600) -> None:
        """Before a call: what the IVR needs to find the account when Asterisk connects
        (calls started together share one round trip)."""
        key, value = f"{keys.IVR_REQUEST}{attempt_id}", event_json(request)

        async def queue(p: Any) -> None:
            p.set(key, value, ex=ttl_s)

        await self._coalesce.submit(queue)

    async def ivr_request(self, attempt_id: str) -> dict[str, str] | None:
        raw = await self._r.get(f"{keys.IVR_REQUEST}{attempt_id}")
        return json.loads(raw) if raw else None

    async def ivr_save_result(self, attempt_id: str, result: Mapping[str, Any], ttl_s: int = 86400) -> None:
        await self._r.set(f"{keys.IVR_RESULT}{attempt_id}", event_json(result), ex=ttl_s)

    async def ivr_result(self, attempt_id: str) -> dict[str, Any] | None:
        """What the IVR recorded of a call (calls ending together share one round trip)."""
        key = f"{keys.IVR_RESULT}{attempt_id}"

        async def queue(p: Any) -> None:
            p.get(key)

        raw = await self._coalesce.submit(queue)
        return json.loads(raw) if raw else None

    # ------------------------------------------------------------------ payment links

    async def register_link(self, link: str, campaign: str, account_id: str) -> None:
        await self._r.hset(keys.LINKS, link, f"{campaign}\x1f{account_id}")

    async def resolve_link(self, link: str) -> tuple[str, str] | None:
        value = await self._r.hget(keys.LINKS, link)
        if not value:
            return None
        campaign, _, account_id = value.partition("\x1f")
        return campaign, account_id

    # ------------------------------------------------------------------ audit

    # ------------------------------------------------------------------ prompt edits

    async def prompt_overrides(self) -> tuple[dict[str, dict[str, Any]], int]:
        """The admins' prompt edits (JSON laid over prompts/catalogue.toml) and their version."""
        raw, version = await self._r.mget(keys.PROMPT_OVERRIDES, keys.PROMPT_VERSION)
        return (json.loads(raw) if raw else {}), int(version or 0)

    async def prompt_version(self) -> int:
        return int(await self._r.get(keys.PROMPT_VERSION) or 0)

    async def save_prompt_overrides(
        self, overrides: Mapping[str, Any], now: datetime, actor: str, change: Mapping[str, Any]
    ) -> int:
        """Replace the prompt edits, bump their version and audit the change, together."""
        async with self._r.pipeline(transaction=True) as p:
            p.set(keys.PROMPT_OVERRIDES, json.dumps(overrides, ensure_ascii=False))
            p.incr(keys.PROMPT_VERSION)
            p.xadd(
                keys.AUDIT,
                {"at": now.isoformat(), "actor": actor, "kind": "prompt_change", "data": event_json(change)},
            )
            _, version, _ = await p.execute()
        return int(version)

    # ------------------------------------------------------------------ the sandbox's clock

    async def publish_clock(self, at: datetime | None, speed: float, wall: float, ttl_s: int) -> None:
        """SANDBOX: the simulated time ``at`` it was at wall-clock ``wall`` (epoch seconds),
        running ``speed`` times faster; readable for ``ttl_s`` seconds (None: withdraw it)."""
        if at is None:
            await self._r.delete(keys.SANDBOX_CLOCK)
            return
        await self._r.set(keys.SANDBOX_CLOCK, f"{at.isoformat()}|{speed}|{wall}", ex=ttl_s)

    async def shared_clock(self) -> tuple[datetime, float, float] | None:
        raw = await self._r.get(keys.SANDBOX_CLOCK)
        if not raw:
            return None
        at, speed, wall = raw.split("|")
        return datetime.fromisoformat(at), float(speed), float(wall)


def callback_id(member: str) -> str:
    """A callback request's stable id (its record is the sorted set's member)."""
    return hashlib.sha1(member.encode()).hexdigest()[:16]
