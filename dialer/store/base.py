"""What every part of the store shares: the client (private), the scripts, the error boundary.

Redis errors never leave the store as redis-py's: a connection refused, reset or timed
out becomes ``StoreUnavailable`` (the caller backs off and retries), anything else Redis
refuses becomes ``StoreError``. ``StoreBase.__init_subclass__`` wraps every public
coroutine and async generator of the store's classes (``WakeListener`` maps its own), so
no method needs to remember (``Store.connect`` raises ``StoreUnavailable`` itself).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dialer.errors import StoreError, StoreUnavailable
from dialer.store import scripts

T = TypeVar("T")


def mapped_error(exc: BaseException) -> StoreError:
    """The project's error for a Redis (or socket) failure."""
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError)):
        return StoreUnavailable(f"Redis unreachable: {exc}")
    return StoreError(f"Redis refused a command: {exc}")


_FAILURES = (RedisError, OSError)


def _coroutine(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except _FAILURES as exc:
            raise mapped_error(exc) from exc

    return wrapper


def _generator(fn: Callable[..., AsyncIterator[T]]) -> Callable[..., AsyncIterator[T]]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[T]:
        try:
            async for item in fn(*args, **kwargs):
                yield item
        except _FAILURES as exc:
            raise mapped_error(exc) from exc

    return wrapper


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


class Coalescer:
    """Commands issued in the same event-loop tick go to Redis as one pipeline: a worker
    starting 500 calls at once makes one round trip for their 500 pacing scripts, not 500
    through the connection pool. Each caller gets its own reply (or its own error)."""

    def __init__(self, client: Any) -> None:
        self._r = client
        self._pending: list[tuple[Callable[[Any], Awaitable[None]], asyncio.Future[Any], bool]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, queue: Callable[[Any], Awaitable[None]], *, many: bool = False) -> asyncio.Future[Any]:
        """``queue(pipe)`` adds this call's command(s) to the next pipeline; the future gets
        the reply of its one command, or (``many``) the list of its commands' replies."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((queue, future, many))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._start)
        return future

    def _start(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        batch, self._pending, self._scheduled = self._pending, [], False
        try:
            counts = []  # how many commands each caller queued
            async with self._r.pipeline(transaction=False) as p:
                for queue, _, _ in batch:
                    before = len(p)
                    await queue(p)
                    counts.append(len(p) - before)
                replies = await p.execute(raise_on_error=False)
        except BaseException as exc:  # the whole round trip failed: every caller hears it
            error = mapped_error(exc) if isinstance(exc, _FAILURES) else exc
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(error)
            return
        at = 0
        for (_, future, many), n in zip(batch, counts, strict=True):
            mine, at = replies[at : at + n], at + n
            if future.done():
                continue
            failed = next((r for r in mine if isinstance(r, BaseException)), None)
            if failed is not None:
                future.set_exception(mapped_error(failed) if isinstance(failed, _FAILURES) else failed)
            elif many:
                future.set_result(mine)
            elif n == 1:
                future.set_result(mine[0])
            else:  # a caller's bug, loud in its tests
                future.set_exception(RuntimeError(f"{n} commands queued by a caller expecting one reply"))


class StoreBase:
    """The client and the registered scripts; subclasses add methods by concern."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, member in list(vars(cls).items()):
            if name.startswith("_"):
                continue
            if inspect.isasyncgenfunction(member):
                setattr(cls, name, _generator(member))
            elif inspect.iscoroutinefunction(member):
                setattr(cls, name, _coroutine(member))

    async def _queue_script(self, pipe: Any, script: Any, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Queue a script call on ``pipe``. A cluster pipeline takes no EVALSHA (redis-py):
        there it goes as EVAL, routed by its keys (all in one slot, or Redis refuses it)."""
        if self.cluster:
            pipe.execute_command("EVAL", script.script, len(keys), *keys, *args)
        else:
            await script(keys=list(keys), args=list(args), client=pipe)

    def __init__(self, client: aioredis.Redis) -> None:
        # redis-py's types do not know decode_responses=True: values are str
        self._r: Any = client
        self.url = ""
        register = client.register_script
        self._upsert = register(scripts.UPSERT)
        self._dispatch = register(scripts.DISPATCH)
        self._claim = register(scripts.CLAIM)
        self._load = register(scripts.LOAD)
        self._count = register(scripts.COUNT)
        self._finish = register(scripts.FINISH)
        self._transition = register(scripts.TRANSITION)
        self._set_status = register(scripts.SET_STATUS)
        self._pace = register(scripts.PACE_ACQUIRE)
        self._unsuppress = register(scripts.UNSUPPRESS)
        self._count_failure = register(scripts.COUNT_FAILURE)
        self._outbox_send = register(scripts.OUTBOX_SEND)
        self._sms_claim = register(scripts.SMS_CLAIM)
        self._sms_record = register(scripts.SMS_RECORD)
        self._sms_release = register(scripts.SMS_RELEASE)
        self._rate_reserve = register(scripts.RATE_RESERVE)
        self._payment_record = register(scripts.PAYMENT_RECORD)
        self._payment_apply = register(scripts.PAYMENT_APPLY)
        self._charge_claim = register(scripts.CHARGE_CLAIM)
        self._agreement_create = register(scripts.AGREEMENT_CREATE)
        self._agreement_end = register(scripts.AGREEMENT_END)
        self._agreement_reopen = register(scripts.AGREEMENT_REOPEN)
        self.cluster = hasattr(client, "get_node_from_key")  # a RedisCluster client
        self._coalesce = Coalescer(client)  # the per-call commands of calls started together
        self._also_close: list[Any] = []  # clients the store opened besides its own (Sentinel's)
        self.wait_replicas = 0  # claims acknowledged by this many replicas before a call (WAIT)
        self.wait_timeout_ms = 1000
        self._replicas_known, self._replicas_at = 0, 0.0
        # the worker's XREADGROUP replies are read as Redis sends them (no dict per entry)
        pool = getattr(client, "connection_pool", None)
        if pool is not None:
            self._raw_streams: Any = aioredis.Redis(connection_pool=pool)
        else:  # a cluster client routes by key: the same client, the same reply shape
            self._raw_streams = client
        self._raw_streams.set_response_callback("XREADGROUP", _as_sent)


def _as_sent(response: Any, **options: Any) -> Any:
    return response
