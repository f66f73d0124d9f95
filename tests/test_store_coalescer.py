"""Commands issued in the same event-loop tick share one pipeline (``Coalescer``): each
caller gets its own reply or its own error, and a round trip that fails fails all of them."""

from __future__ import annotations

import asyncio

import pytest

from dialer.errors import StoreError, StoreUnavailable
from dialer.store import Store
from dialer.store.base import Coalescer


async def test_calls_started_together_share_one_round_trip_and_get_their_own_replies(redis_url):
    store = await Store.connect(redis_url)
    try:
        executed = []
        real = store._r.pipeline

        def counting(*args, **kwargs):
            executed.append(1)
            return real(*args, **kwargs)

        store._coalesce._r = type("R", (), {"pipeline": staticmethod(counting)})()
        await asyncio.gather(
            *(store.ivr_register(f"c1:{i}", {"campaign": "c1", "account_id": f"A{i}"}) for i in range(300))
        )
        assert len(executed) == 1  # 300 registrations, one pipeline
        found = await asyncio.gather(*(store.ivr_request(f"c1:{i}") for i in range(300)))
        assert [f["account_id"] for f in found] == [f"A{i}" for i in range(300)]
        grants = await asyncio.gather(
            *(store.acquire_trunk_slot("t", f"a{i}", 1_000, 61_000, 5, 1000.0) for i in range(8))
        )
        assert [ok for ok, _ in grants].count(True) == 5  # the channels (5), well within 1,000 cps
    finally:
        await store.close()


async def test_one_refused_command_fails_only_its_caller(redis_url):
    store = await Store.connect(redis_url)
    try:
        await store._r.set("regua:{c:x}:leases", "not a zset")  # a key of the wrong type
        ok, bad = await asyncio.gather(
            store.acquire_campaign_slot("y", "a1", 1_000, 61_000, 5),
            store.acquire_campaign_slot("x", "a2", 1_000, 61_000, 5),
            return_exceptions=True,
        )
        assert ok == (True, 0) and isinstance(bad, StoreError)
    finally:
        await store.close()


async def test_a_round_trip_that_fails_fails_every_caller():
    class Down:
        def pipeline(self, **_):
            raise ConnectionError("refused")

    c = Coalescer(Down())
    futures = [c.submit(lambda p: asyncio.sleep(0)) for _ in range(3)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    with pytest.raises(StoreUnavailable):
        await c.submit(lambda p: asyncio.sleep(0))


async def test_calls_ending_together_share_a_round_trip_each_with_its_own_counts(redis_url):
    """The end of a call: its slots given back, the IVR's result read, the answered call
    counted (several commands a caller) — for calls ending together, one pipeline."""
    store = await Store.connect(redis_url)
    try:
        for i in range(4):
            assert (await store.acquire_trunk_slot("t", f"a{i}", 1_000, 61_000, 10, 1000.0))[0]
        await store.ivr_save_result("a1", {"outcome": "verified"})
        executed = []
        real = store._r.pipeline

        def counting(*args, **kwargs):
            executed.append(1)
            return real(*args, **kwargs)

        store._coalesce._r = type("R", (), {"pipeline": staticmethod(counting)})()
        ends = await asyncio.gather(
            *(store.release_slots("t", None, f"a{i}") for i in range(4)),
            *(store.ivr_result(f"a{i}") for i in range(2)),
            *(store.count_answered_call("2026-11-23", "t", short=i % 2 == 0) for i in range(4)),
        )
        assert len(executed) == 1
        assert ends[4:6] == [None, {"outcome": "verified"}]
        # each caller sees the day's totals as its own commands left them, in order
        assert ends[6:] == [(1, 1), (2, 1), (3, 2), (4, 2)]
        assert await store.trunk_calls("t", 1_000) == 0  # every slot given back
    finally:
        await store.close()


async def test_a_caller_that_queues_other_than_it_said_fails_the_batch_not_silently():
    class Pipe:
        def __init__(self):
            self.n = 0

        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return False

        def get(self, _key):
            self.n += 1

        async def execute(self, raise_on_error=False):
            return [None] * self.n

    class Client:
        def pipeline(self, **_):
            return Pipe()

    c = Coalescer(Client())

    async def two(p):
        p.get("a")
        p.get("b")

    futures = [c.submit(two, replies=1), c.submit(two, replies=2)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
