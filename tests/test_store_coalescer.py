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
