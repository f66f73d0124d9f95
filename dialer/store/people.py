"""People: named users with a role, their API tokens, their sessions, failed sign-ins.

Passwords and tokens are stored only as hashes (computed by ``web.auth``); a session is a
key of its own with its time to live, so signing out, disabling a user or revoking a token
takes effect on the next request of every process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dialer.store import keys
from dialer.store.base import StoreBase
from dialer.store.codec import audit_fields


class PeopleStore(StoreBase):
    # ------------------------------------------------------------------ users

    async def user(self, name: str) -> dict[str, Any] | None:
        raw = await self._r.hget(keys.USERS, name)
        return json.loads(raw) if raw else None

    async def users(self) -> dict[str, dict[str, Any]]:
        return {n: json.loads(v) for n, v in (await self._r.hgetall(keys.USERS)).items()}

    async def count_users(self) -> int:
        return int(await self._r.hlen(keys.USERS))

    async def save_user(
        self,
        name: str,
        record: Mapping[str, Any],
        now: datetime,
        actor: str,
        kind: str,
        audit: Mapping[str, Any],
    ) -> bool:
        """Create or change a user and audit it, together. Whether the user was new."""
        async with self._r.pipeline(transaction=True) as p:
            p.hset(keys.USERS, name, json.dumps(dict(record), ensure_ascii=False))
            p.xadd(keys.AUDIT, audit_fields(now, actor, kind, audit))
            created, _ = await p.execute()
        return bool(created)

    async def end_sessions(self, user: str) -> int:
        """End every session of ``user`` (signed out everywhere). How many there were."""
        members = await self._r.smembers(keys.user_sessions(user))
        async with self._r.pipeline(transaction=True) as p:
            for digest in members:
                p.delete(keys.session(digest))
            p.delete(keys.user_sessions(user))
            await p.execute()
        return len(members)

    # ------------------------------------------------------------------ tokens

    async def token(self, token_id: str) -> dict[str, Any] | None:
        raw = await self._r.hget(keys.TOKENS, token_id)
        return json.loads(raw) if raw else None

    async def tokens(self) -> dict[str, dict[str, Any]]:
        return {i: json.loads(v) for i, v in (await self._r.hgetall(keys.TOKENS)).items()}

    async def save_token(
        self,
        token_id: str,
        record: Mapping[str, Any],
        now: datetime,
        actor: str,
        kind: str,
        audit: Mapping[str, Any],
    ) -> None:
        async with self._r.pipeline(transaction=True) as p:
            p.hset(keys.TOKENS, token_id, json.dumps(dict(record), ensure_ascii=False))
            p.xadd(keys.AUDIT, audit_fields(now, actor, kind, audit))
            await p.execute()

    # ------------------------------------------------------------------ sessions

    async def open_session(self, digest: str, record: Mapping[str, Any], ttl_s: int) -> None:
        user = str(record["user"])
        async with self._r.pipeline(transaction=True) as p:
            p.set(keys.session(digest), json.dumps(dict(record)), ex=ttl_s)
            p.sadd(keys.user_sessions(user), digest)
            p.expire(keys.user_sessions(user), ttl_s)
            await p.execute()

    async def session(self, digest: str) -> dict[str, Any] | None:
        raw = await self._r.get(keys.session(digest))
        return json.loads(raw) if raw else None

    async def close_session(self, digest: str, user: str) -> None:
        async with self._r.pipeline(transaction=True) as p:
            p.delete(keys.session(digest))
            p.srem(keys.user_sessions(user), digest)
            await p.execute()

    # ------------------------------------------------------------------ failed sign-ins

    async def count_failure(self, scope: str, window_s: int) -> int:
        """Count a failed sign-in for ``scope`` (an account or a client address) in a window
        that starts at its first failure. The count so far."""
        return int(await self._count_failure(keys=[keys.login_failures(scope)], args=[window_s]))

    async def failures(self, *scopes: str) -> list[int]:
        values = await self._r.mget([keys.login_failures(s) for s in scopes])
        return [int(v or 0) for v in values]

    async def lock(self, scope: str, seconds: int) -> None:
        await self._r.set(keys.login_lock(scope), "1", ex=seconds)

    async def locked(self, *scopes: str) -> list[int]:
        """Seconds left on each scope's lockout (0: not locked)."""
        async with self._r.pipeline(transaction=False) as p:
            for s in scopes:
                p.ttl(keys.login_lock(s))
            ttls = await p.execute()
        return [max(0, int(t)) for t in ttls]

    async def clear_failures(self, scope: str) -> None:
        await self._r.delete(keys.login_failures(scope), keys.login_lock(scope))
