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
``suppressions``, ``handoffs``, ``channels``); ``Store`` is all of them on one client.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import DataError

from dialer.errors import StoreUnavailable
from dialer.store.accounts import AccountStore
from dialer.store.base import safe_url
from dialer.store.channels import ChannelStore
from dialer.store.handoffs import HandoffStore

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


class Store(AccountStore, HandoffStore, ChannelStore):
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
