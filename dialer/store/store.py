"""The Redis adapter: every read and write of the runtime, multi-key changes in Lua.

One ``Store`` per process (``await Store.connect(url)``; ``await close()``); no other
module touches the Redis client or spells a key. Atomicity rules:

- *upsert*: an account row and its schedule entry change together (``UPSERT``);
- *dispatch*: due schedule entries move to the work stream in one script, only while the
  campaign is running, so any number of schedulers never hand out an entry twice;
- *claim*: before a contact is made, the attempt is written into the account's hash
  with an optimistic history version (``hv``) and a lock — a worker whose view of the
  history is stale, or that finds the attempt already claimed (a reclaimed entry), does
  not place a second call;
- *finish*: outcome, history, next schedule entry, stream acknowledgement, counters
  and timeline events are written in one script.

The methods live in one module per concern (``campaigns``, ``work``, ``accounts``,
``suppressions``, ``handoffs``, ``channels``, ``people``); ``Store`` is all of them on one
client.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import DataError

from dialer.errors import StoreError, StoreUnavailable
from dialer.store import keys
from dialer.store.accounts import AccountStore
from dialer.store.agreements import AgreementStore
from dialer.store.base import safe_url
from dialer.store.channels import ChannelStore
from dialer.store.handoffs import HandoffStore
from dialer.store.payments import PaymentStore
from dialer.store.people import PeopleStore
from dialer.store.search import SearchStore

# The asyncio client packs commands in Python; the sync client uses hiredis when it is
# installed. Our hot path sends long pipelines of scripts: pack them with hiredis too.
try:
    import hiredis

    class _HiredisConnectionImpl(aioredis.Connection):
        def pack_command(self, *args: Any) -> list[bytes]:
            # straight to hiredis (str, bytes, int and float arguments); a multi-word command
            # name ("SCRIPT LOAD") is split as redis-py does
            name = args[0]
            if isinstance(name, str) and " " in name:
                args = (*name.split(), *args[1:])
            try:
                return [hiredis.pack_command(args)]
            except TypeError:  # bytearray / memoryview arguments: as bytes, like redis-py
                args = tuple(bytes(a) if isinstance(a, (bytearray, memoryview)) else a for a in args)
            try:
                return [hiredis.pack_command(args)]
            except TypeError as exc:
                raise DataError(str(exc)) from exc

    _HiredisConnection: type[aioredis.Connection] | None = _HiredisConnectionImpl
except ImportError:  # pragma: no cover - hiredis is a pinned dependency
    _HiredisConnection = None


class Store(AccountStore, HandoffStore, ChannelStore, PeopleStore, SearchStore, PaymentStore, AgreementStore):
    """Typed access to Régua's Redis data."""

    @classmethod
    async def connect(cls, url: str, *, check: bool = True) -> Store:
        # a blocking pool: concurrent batches wait for a connection instead of failing
        extra: dict[str, Any] = {}
        if url.startswith("redis://") and _HiredisConnection is not None:
            extra["connection_class"] = _HiredisConnection
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=5,
            health_check_interval=15,
            max_connections=64,
            timeout=30,
            **extra,
        )
        client = aioredis.Redis(connection_pool=pool)
        store = cls(client)
        store.url = url
        if check:
            try:
                await client.ping()
            except Exception as exc:  # unreachable, refused, timed out
                await client.aclose()
                raise StoreUnavailable(
                    f"cannot reach Redis at {safe_url(url)}: {exc}. Is it running? "
                    "Unset REDIS_URL to let Régua start its own."
                ) from exc
        return store

    async def close(self) -> None:
        await self._r.aclose()
        await self._r.connection_pool.disconnect()

    async def ping(self) -> bool:
        try:
            return bool(await self._r.ping())
        except Exception:  # any failure to answer is "down"
            return False

    async def migrate_legacy_keys(self) -> list[str]:
        """Rename the keys an earlier version wrote under other names (the suppression list,
        the audit, the SMS ledger …): nothing a company recorded is lost by an upgrade.
        Returns what was renamed. Refuses to guess when both names hold data."""
        async with self._r.pipeline(transaction=False) as p:
            for old, new in keys.LEGACY.items():
                p.exists(old)
                p.exists(new)
            found = await p.execute()
        renamed, clashes = [], []
        for i, (old, new) in enumerate(keys.LEGACY.items()):
            has_old, has_new = found[2 * i], found[2 * i + 1]
            if has_old and not has_new:
                await self._r.rename(old, new)
                renamed.append(old)
            elif has_old and has_new:
                clashes.append(f"{old} and {new}")
        if clashes:
            raise StoreError(
                "both the old and the new names hold data: " + "; ".join(clashes) + ". Keep the one to "
                "keep (e.g. RENAME the old one over the new one with redis-cli) and start again."
            )
        return renamed
