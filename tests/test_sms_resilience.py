"""The resilient wrapper: rate limit, retries, circuit breaker, fail-over, and idempotency
on the session's real redis-server (a worker SIGKILLed mid-send included)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from dialer.errors import SmsPermanent, SmsRetryable
from dialer.store import Store, keys
from sms_gateway.base import SendResult, SmsMessage
from sms_gateway.factory import provider_from_url
from sms_gateway.resilient import (
    CircuitBreaker,
    LanePolicy,
    RealTiming,
    ResiliencePolicy,
    ResilientSms,
    SharedTokenBucket,
    TokenBucket,
)
from tests.sms_servers import Fault, TwilioServer, ZenviaServer, twilio_error


class FakeTiming:
    """Time that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall_now = 1_800_000_000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.wall_now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall_now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)


class Scripted:
    """A provider double: each send takes the next step (an exception to raise, or None to accept)."""

    def __init__(self, name: str, steps: list[BaseException | None] | None = None) -> None:
        self.name = name
        self.steps = list(steps or [])
        self.calls = 0
        self.hold: asyncio.Event | None = None
        self.closed = False

    async def send(self, message: SmsMessage) -> SendResult:
        self.calls += 1
        if self.hold is not None:
            await self.hold.wait()
        step = self.steps.pop(0) if self.steps else None
        if step is not None:
            raise step
        return SendResult(self.name, f"{self.name}-{self.calls}", 1, "GSM-7", 0.01)

    async def close(self) -> None:
        self.closed = True

    def health(self) -> dict:
        return {"provider": self.name, "state": "up", "calls": self.calls}


def retryable(after: float | None = None) -> SmsRetryable:
    return SmsRetryable("throttled", retry_after=after)


def msg(key: str = "att-1") -> SmsMessage:
    return SmsMessage("+5511987654321", "Pague sua fatura", key)


def resilient(primary, secondary=None, *, timing=None, ledger=None, **policy) -> ResilientSms:
    return ResilientSms(
        primary,
        secondary,
        ledger=ledger,
        policy=ResiliencePolicy(idempotency=ledger is not None, **policy),
        timing=timing or FakeTiming(),
        rng=random.Random(7),
    )


@pytest.fixture
async def r(redis_url) -> AsyncIterator[aioredis.Redis]:
    """A raw client: the tests read what the ledger wrote."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
async def store(redis_url) -> AsyncIterator[Store]:
    s = await Store.connect(redis_url)
    yield s
    await s.close()


# ---------------------------------------------------------------- token bucket


async def test_token_bucket_paces_to_the_rate():
    timing = FakeTiming()
    bucket = TokenBucket(10, 1, timing)
    start = timing.now
    for _ in range(21):
        await bucket.acquire()
    assert timing.now - start == pytest.approx(2.0)  # 1 at once, then one every 0.1 s


async def test_token_bucket_burst_then_rate():
    timing = FakeTiming()
    bucket = TokenBucket(5, 5, timing)
    for _ in range(5):
        await bucket.acquire()
    assert timing.slept == []
    await bucket.acquire()
    assert timing.slept == [pytest.approx(0.2)]


async def test_token_bucket_in_real_time_with_concurrent_callers():
    bucket = TokenBucket(100, 1, RealTiming())
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.gather(*(bucket.acquire() for _ in range(21)))
    assert loop.time() - start >= 0.19  # 20 waits of 10 ms, served in order


async def test_no_rate_means_no_wait():
    timing = FakeTiming()
    bucket = TokenBucket(0, 1, timing)
    for _ in range(100):
        await bucket.acquire()
    assert timing.slept == []


# ---------------------------------------------------------------- circuit breaker


def test_circuit_opens_half_opens_and_closes():
    timing = FakeTiming()
    breaker = CircuitBreaker(3, 30, timing)
    for _ in range(2):
        breaker.failure()
    assert breaker.state == "closed" and breaker.allow()
    breaker.success()
    for _ in range(3):
        breaker.failure()
    assert breaker.state == "open" and not breaker.allow() and not breaker.available()
    assert breaker.retry_in() == pytest.approx(30)
    timing.advance(29.9)
    assert not breaker.allow()
    timing.advance(0.1)
    assert breaker.available()
    assert breaker.allow() and breaker.state == "half_open"  # the one trial
    assert not breaker.allow() and not breaker.available()  # nobody else meanwhile
    breaker.failure()  # the trial failed: open again for a full cool-down
    assert breaker.state == "open" and breaker.retry_in() == pytest.approx(30)
    timing.advance(30)
    assert breaker.allow()
    breaker.success()
    assert breaker.state == "closed" and breaker.failures == 0 and breaker.allow()


# ---------------------------------------------------------------- retries and fail-over


async def test_retries_with_growing_jittered_back_off():
    primary = Scripted("p", [retryable(), retryable()])
    timing = FakeTiming()
    gw = resilient(primary, timing=timing, max_attempts=3, base_delay=0.5)
    result = await gw.send(msg())
    assert result.message_id == "p-3" and primary.calls == 3
    assert len(timing.slept) == 2
    assert 0 <= timing.slept[0] <= 0.5 and 0 <= timing.slept[1] <= 1.0
    assert gw.health()["retries"] == 2


async def test_retry_after_is_honoured():
    primary = Scripted("p", [retryable(3.0)])
    timing = FakeTiming()
    gw = resilient(primary, timing=timing)
    await gw.send(msg())
    assert timing.slept == [pytest.approx(3.0)]


async def test_a_retry_after_beyond_max_delay_goes_back_to_the_caller():
    primary = Scripted("p", [retryable(600.0)])
    timing = FakeTiming()
    gw = resilient(primary, timing=timing, max_delay=30)
    with pytest.raises(SmsRetryable) as caught:
        await gw.send(msg())
    assert caught.value.retry_after == 600.0 and primary.calls == 1 and timing.slept == []


async def test_gives_up_after_max_attempts():
    primary = Scripted("p", [retryable()] * 10)
    gw = resilient(primary, max_attempts=4)
    with pytest.raises(SmsRetryable):
        await gw.send(msg())
    assert primary.calls == 4


async def test_a_permanent_refusal_is_not_retried_and_keeps_the_circuit_closed():
    primary = Scripted("p", [SmsPermanent("invalid number")])
    secondary = Scripted("s")
    gw = resilient(primary, secondary)
    with pytest.raises(SmsPermanent):
        await gw.send(msg())
    assert (primary.calls, secondary.calls) == (1, 0)
    assert gw.primary.breaker.state == "closed"


async def test_fails_over_after_repeated_failures_without_waiting():
    primary = Scripted("p", [retryable(), retryable()])
    secondary = Scripted("s")
    timing = FakeTiming()
    gw = resilient(primary, secondary, timing=timing, failover_after=2, max_attempts=3)
    result = await gw.send(msg())
    assert result.provider == "s" and (primary.calls, secondary.calls) == (2, 1)
    assert len(timing.slept) == 1  # one back-off between the primary's tries, none before the switch
    assert gw.health()["failovers"] == 1


async def test_an_open_circuit_sends_straight_to_the_secondary_until_the_cool_down():
    primary = Scripted("p", [retryable()] * 5)
    secondary = Scripted("s")
    timing = FakeTiming()
    gw = resilient(
        primary,
        secondary,
        timing=timing,
        circuit_failures=5,
        circuit_cool_down=30,
        failover_after=1,
        max_attempts=2,
    )
    for i in range(5):  # each message: one primary failure, then the secondary
        assert (await gw.send(msg(f"k{i}"))).provider == "s"
    assert gw.primary.breaker.state == "open" and primary.calls == 5
    assert (await gw.send(msg("k5"))).provider == "s" and primary.calls == 5  # not even tried
    timing.advance(30)
    result = await gw.send(msg("k6"))  # half-open: the trial goes to the primary, which has recovered
    assert result.provider == "p" and primary.calls == 6
    assert gw.primary.breaker.state == "closed"
    assert gw.health()["primary"]["circuit"] == "closed"


async def test_every_circuit_open_is_retryable_with_the_time_to_wait():
    primary = Scripted("p", [retryable()] * 4)
    secondary = Scripted("s", [retryable()] * 4)
    timing = FakeTiming()
    gw = resilient(
        primary, secondary, timing=timing, circuit_failures=2, circuit_cool_down=20, max_attempts=4
    )
    with pytest.raises(SmsRetryable):
        await gw.send(msg("k1"))
    assert gw.primary.breaker.state == "open" and gw.secondary.breaker.state == "open"
    calls = primary.calls + secondary.calls
    timing.advance(5)
    with pytest.raises(SmsRetryable, match="every provider's circuit is open") as caught:
        await gw.send(msg("k2"))
    assert primary.calls + secondary.calls == calls
    assert 0 < caught.value.retry_after <= 20
    assert gw.health()["state"] == "down"


async def test_close_closes_both():
    primary, secondary = Scripted("p"), Scripted("s")
    gw = resilient(primary, secondary)
    await gw.close()
    assert primary.closed and secondary.closed


# ---------------------------------------------------------------- idempotency (real Redis)


async def test_the_same_key_is_sent_once(r, store):
    primary = Scripted("p")
    gw = resilient(primary, ledger=store)
    first = await gw.send(msg("nov26:C1:1"))
    again = await gw.send(msg("nov26:C1:1"))
    assert primary.calls == 1
    assert not first.duplicate and again.duplicate
    assert (again.provider, again.message_id) == ("p", "p-1")
    assert await r.hget(keys.SMS_SENT, "nov26:C1:1") == "p:p-1"
    other = resilient(Scripted("p"), ledger=store)  # another worker, another process: same answer
    assert (await other.send(msg("nov26:C1:1"))).duplicate


async def test_concurrent_sends_of_one_key_reach_the_provider_once(r, store):
    primary = Scripted("p")
    primary.hold = asyncio.Event()
    workers = [resilient(primary, ledger=store) for _ in range(5)]
    tasks = [asyncio.create_task(w.send(msg("same"))) for w in workers for _ in range(2)]
    for _ in range(500):  # the other nine are turned away while the first is held (however slow the machine)
        if sum(t.done() for t in tasks) >= 9:
            break
        await asyncio.sleep(0.01)
    primary.hold.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    sent = [o for o in outcomes if isinstance(o, SendResult)]
    busy = [o for o in outcomes if isinstance(o, SmsRetryable)]
    assert primary.calls == 1 and len(sent) == 1 and len(busy) == 9
    assert all("being sent by another worker" in str(b) and b.retry_after > 0 for b in busy)
    assert (await workers[0].send(msg("same"))).duplicate


async def test_a_definite_failure_releases_the_key(r, store):
    failing = resilient(Scripted("p", [SmsPermanent("blocked")]), ledger=store)
    with pytest.raises(SmsPermanent):
        await failing.send(msg("k"))
    assert await r.hget(keys.SMS_SENT, "k") is None
    throttled = resilient(Scripted("p", [retryable()] * 3), ledger=store, max_attempts=3)
    with pytest.raises(SmsRetryable):
        await throttled.send(msg("k"))
    assert await r.hget(keys.SMS_SENT, "k") is None
    ok = Scripted("p")
    assert not (await resilient(ok, ledger=store).send(msg("k"))).duplicate and ok.calls == 1


async def test_a_cancelled_send_keeps_its_claim_and_is_never_resent(r, store):
    slow = Scripted("p")
    slow.hold = asyncio.Event()
    timing = FakeTiming()
    worker = resilient(slow, ledger=store, timing=timing, sending_timeout=300)
    task = asyncio.create_task(worker.send(msg("k")))
    await asyncio.sleep(0.05)
    task.cancel()  # the worker is stopped while the provider has the message
    with pytest.raises(asyncio.CancelledError):
        await task
    marker = await r.hget(keys.SMS_SENT, "k")
    assert marker.startswith("sending:")

    fresh = Scripted("p")
    other = resilient(fresh, ledger=store, timing=timing, sending_timeout=300)
    timing.advance(100)
    with pytest.raises(SmsRetryable, match="being sent by another worker") as caught:
        await other.send(msg("k"))
    assert caught.value.retry_after == pytest.approx(200, abs=1)
    timing.advance(201)
    result = await other.send(msg("k"))
    assert (result.duplicate, result.provider, result.message_id) == (True, "unknown", "unknown")
    assert fresh.calls == 0


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from dialer.store import Store
    from sms_gateway.base import SmsMessage
    from sms_gateway.resilient import ResilientSms

    class Hangs:
        name = "p"
        async def send(self, message):
            print("in-provider", flush=True)
            await asyncio.sleep(3600)
        async def close(self): pass
        def health(self): return {}

    async def main():
        store = await Store.connect(sys.argv[1])
        await ResilientSms(Hangs(), ledger=store).send(SmsMessage("+5511987654321", "Oi", "killed-key"))

    asyncio.run(main())
    """
)


async def test_a_worker_killed_mid_send_is_not_resent(r, store, redis_url):
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": root}
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, redis_url], stdout=subprocess.PIPE, env=env, cwd=root
    )
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert line.strip() == b"in-provider"
        marker = await r.hget(keys.SMS_SENT, "killed-key")
        assert marker and marker.startswith("sending:")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
    assert await r.hget(keys.SMS_SENT, "killed-key") == marker  # nobody cleaned up: it died

    provider = Scripted("p")
    timing = FakeTiming()
    timing.wall_now = int(marker.split(":")[1]) / 1000 + 301  # later than sending_timeout
    survivor = resilient(provider, ledger=store, timing=timing, sending_timeout=300)
    result = await survivor.send(SmsMessage("+5511987654321", "Oi", "killed-key"))
    assert result.duplicate and result.message_id == "unknown" and provider.calls == 0


async def test_without_redis_nothing_is_sent():
    provider = Scripted("p")
    dead = await Store.connect("redis://127.0.0.1:1/0", check=False)
    try:
        gw = resilient(provider, ledger=dead)
        with pytest.raises(SmsRetryable, match="idempotency store"):
            await gw.send(msg())
    finally:
        await dead.close()
    assert provider.calls == 0


# ---------------------------------------------------------------- with real adapters


async def test_twilio_throttles_then_zenvia_takes_over(r, store):
    async with TwilioServer() as twilio, ZenviaServer() as zenvia:
        env = {"TW": twilio.auth_token, "ZV": zenvia.token}
        primary, _ = provider_from_url(
            f"twilio://{twilio.account_sid}@?from=%2B15550001111&token_env=TW&api={twilio.url}", env=env
        )
        secondary, _ = provider_from_url(f"zenvia://?from=regua&token_env=ZV&api={zenvia.url}", env=env)
        timing = FakeTiming()
        gw = ResilientSms(
            primary,
            secondary,
            ledger=store,
            policy=ResiliencePolicy(failover_after=2, max_attempts=3),
            primary_lane=LanePolicy(rate=50, burst=10),
            timing=timing,
            rng=random.Random(1),
        )
        try:
            twilio.fail_next(Fault(429, twilio_error(20429, "Too Many Requests", 429), retry_after="1"))
            first = await gw.send(msg("a1"))
            assert first.provider == "twilio" and timing.slept[0] >= 1.0
            assert await r.hget(keys.SMS_SENT, "a1") == f"twilio:{first.message_id}"

            twilio.fail_next(Fault(503), Fault(503))
            second = await gw.send(msg("a2"))
            assert second.provider == "zenvia" and len(zenvia.requests) == 1
            assert await r.hget(keys.SMS_SENT, "a2") == f"zenvia:{second.message_id}"

            again = await gw.send(msg("a2"))
            assert again.duplicate and again.message_id == second.message_id and len(zenvia.requests) == 1
            health = gw.health()
            assert health["primary"]["provider"] == "twilio" and health["secondary"]["sent"] == 1
            assert health["duplicates"] == 1 and health["primary"]["rate_per_s"] == 50
        finally:
            await gw.close()


async def test_the_rate_is_shared_by_every_process_through_redis(r, store):
    """Two wrappers (two worker processes) on one provider account share its rate: together
    they wait as one queue would, not each at the full rate."""
    timing = FakeTiming()  # wall time stands still: every wait comes from the shared bucket
    lane = LanePolicy(rate=20, burst=1)
    a, b = (
        ResilientSms(
            Scripted("twilio"),
            ledger=store,
            policy=ResiliencePolicy(idempotency=True),
            primary_lane=lane,
            timing=timing,
            rng=random.Random(1),
        )
        for _ in range(2)
    )
    waits: list[float] = []

    async def send(gw: ResilientSms, i: int) -> None:
        before = len(timing.slept)
        await gw.send(msg(f"shared-{i}"))
        waits.extend(timing.slept[before:])

    timing.advance = lambda seconds: None  # type: ignore[method-assign]
    for i in range(20):
        await send(a if i % 2 else b, i)
    # one token at once, then 50 ms more for each message, whichever process sends it
    assert sorted(waits) == [pytest.approx(0.05 * k) for k in range(1, 20)]
    assert isinstance(a.primary.bucket, SharedTokenBucket)


async def test_without_redis_the_rate_is_kept_in_memory():
    gw = resilient(Scripted("p"), timing=FakeTiming())
    assert isinstance(gw.primary.bucket, TokenBucket)
