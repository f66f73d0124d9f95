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

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
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
        """``redis://`` (one server), ``redis+sentinel://h:p,h:p/<master>`` (the primary
        Sentinel names, found again after a failover) or ``redis+cluster://h:p,h:p``."""
        topology = parse_url(url)
        client = _client_for(topology)
        store = cls(client)
        manager: Any = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
        store._also_close = list(manager.sentinels) if manager is not None else []
        store.url = url
        store.wait_replicas, store.wait_timeout_ms = topology.wait_replicas, topology.wait_timeout_ms
        if store.cluster and store.wait_replicas:
            await client.aclose()
            raise StoreError(
                "wait_replicas is for one primary (redis:// or redis+sentinel://); a cluster's claims "
                "are as durable as each shard's primary (see README: faults)"
            )
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
        pool = getattr(self._r, "connection_pool", None)
        if pool is not None:
            await pool.disconnect()
        for other in getattr(self, "_also_close", ()):  # Sentinel's own connections
            await other.aclose()

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
                if self.cluster:  # other slots: copied whole, then the old one removed
                    await self._r.restore(new, 0, await self._r.dump(old))
                    await self._r.delete(old)
                else:
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


@dataclass(frozen=True, slots=True)
class Topology:
    """Where Redis is: one server, a Sentinel-watched primary, or a cluster."""

    kind: str  # single | sentinel | cluster
    url: str
    hosts: tuple[tuple[str, int], ...] = ()
    master: str = ""
    password: str | None = None
    db: int = 0
    # a claim that guards against a second call is acknowledged by this many replicas
    # (WAIT) before the call is placed: a failover cannot lose it
    wait_replicas: int = 0
    wait_timeout_ms: int = 1000


def _hosts(netloc: str, default_port: int) -> tuple[tuple[str, int], ...]:
    out = []
    for part in netloc.split(","):
        host, _, port = part.strip().rpartition(":") if ":" in part else (part.strip(), "", "")
        try:
            out.append((host or "127.0.0.1", int(port) if port else default_port))
        except ValueError:
            raise StoreError(f"{part!r} is not host:port") from None
    if not out:
        raise StoreError("no host in the Redis URL")
    return tuple(out)


def parse_url(url: str) -> Topology:
    """``REDIS_URL`` read: the scheme says the topology; ``?wait_replicas=N&wait_timeout_ms=T``
    makes claims durable (default 1 replica for Sentinel, none otherwise)."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    netloc = parts.netloc.rpartition("@")[2]
    password = unquote(parts.password) if parts.password else None
    try:
        wait_ms = int(query.get("wait_timeout_ms", "1000"))
        db = int(query.get("db", "0"))
        match parts.scheme:
            case "redis+sentinel":
                replicas = int(query.get("wait_replicas", "1"))
                master = parts.path.strip("/") or "mymaster"
                return Topology(
                    "sentinel", url, _hosts(netloc, 26379), master, password, db, replicas, wait_ms
                )
            case "redis+cluster":
                replicas = int(query.get("wait_replicas", "0"))
                return Topology("cluster", url, _hosts(netloc, 6379), "", password, 0, replicas, wait_ms)
            case "redis" | "rediss" | "unix":
                return Topology(
                    "single", url, wait_replicas=int(query.get("wait_replicas", "0")), wait_timeout_ms=wait_ms
                )
    except ValueError:
        raise StoreError(f"{safe_url(url)}: wait_replicas, wait_timeout_ms and db are numbers") from None
    raise StoreError(
        f"{safe_url(url)}: use redis://, redis+sentinel://host:port,…/<master> or redis+cluster://host:port,…"
    )


def _without_our_params(url: str) -> str:
    """The URL redis-py reads: our own query parameters (``wait_replicas``…) taken out."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("wait_replicas", "wait_timeout_ms")]
    return urlunsplit(parts._replace(query=urlencode(kept)))


class _WaitingSentinelPool(SentinelConnectionPool):
    """Sentinel's pool, waiting for a free connection instead of failing with "Too many
    connections" (as the single-server path's BlockingConnectionPool does)."""

    def __init__(self, *args: Any, max_connections: int = 64, **kwargs: Any) -> None:
        super().__init__(*args, max_connections=max_connections, **kwargs)  # type: ignore[no-untyped-call]
        self._slots = asyncio.Semaphore(max_connections)

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        await self._slots.acquire()
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except BaseException:
            self._slots.release()
            raise

    async def release(self, connection: Any) -> None:
        try:
            await super().release(connection)
        finally:
            self._slots.release()


def _client_for(t: Topology) -> Any:
    common: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 5,
        "health_check_interval": 15,
    }
    match t.kind:
        case "sentinel":
            sentinel = Sentinel(  # type: ignore[no-untyped-call]
                list(t.hosts),
                sentinel_kwargs={"socket_timeout": 2, "socket_connect_timeout": 2},
                password=t.password,
                db=t.db,
                socket_timeout=10,
                **common,
            )
            return sentinel.master_for(
                t.master,
                connection_pool_class=_WaitingSentinelPool,
                max_connections=64,
                password=t.password,
                db=t.db,
                socket_timeout=10,
                **common,
            )
        case "cluster":
            nodes = [ClusterNode(h, p) for h, p in t.hosts]
            # per node; the asyncio cluster client refuses (not waits) beyond it
            return RedisCluster(startup_nodes=nodes, password=t.password, max_connections=2048, **common)
    # a blocking pool: concurrent batches wait for a connection instead of failing
    extra: dict[str, Any] = {}
    if t.url.startswith("redis://") and _HiredisConnection is not None:
        extra["connection_class"] = _HiredisConnection
    pool = aioredis.BlockingConnectionPool.from_url(
        _without_our_params(t.url), max_connections=64, timeout=30, **common, **extra
    )
    return aioredis.Redis(connection_pool=pool)
