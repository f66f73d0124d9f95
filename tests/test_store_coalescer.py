"""Commands issued in the same event-loop tick share one pipeline (``Coalescer``): each
caller gets its own reply or its own error, and a round trip that fails fails all of them."""

from __future__ import annotations

import asyncio

import pytest

from dialer.errors import StoreError, StoreUnavailable
from dialer.store import Store
from dialer.store.base import Coalescer


def _count_pipelines(store: Store) -> list[int]:
    """The coalescer's pipelines from now on, one entry each."""
    executed: list[int] = []
    real = store._r.pipeline

    def counting(*args, **kwargs):
        executed.append(1)
        return real(*args, **kwargs)

    store._coalesce._r = type("R", (), {"pipeline": staticmethod(counting)})()
    return executed


async def test_calls_started_together_share_one_round_trip_and_get_their_own_replies(redis_url):
    store = await Store.connect(redis_url)
    try:
        executed = _count_pipelines(store)
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
        executed = _count_pipelines(store)
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


async def test_each_caller_gets_the_replies_of_the_commands_it_queued_and_only_those(redis_url):
    store = await Store.connect(redis_url)
    try:
        c = store._coalesce

        async def three(p):
            p.set("k1", "a")
            p.get("k1")
            p.incr("n")

        async def one(p):
            p.get("k1")

        async def two(p):
            p.get("k1")
            p.get("k1")

        many, single, wrong = await asyncio.gather(
            c.submit(three, many=True), c.submit(one), c.submit(two), return_exceptions=True
        )
        assert many == [True, "a", 1] and single == "a"
        assert isinstance(wrong, RuntimeError)  # two commands, one reply expected: a bug, loud
    finally:
        await store.close()
