"""Redis high availability, on real redis-server processes on loopback: the runtime through
Sentinel; claims made durable with WAIT (no replica acknowledging → no call placed); the
primary SIGKILLed mid-campaign with two workers running → the replica promoted, the workers
reconnect, 0 contacts lost, 0 second calls, every attempt reconciled."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from datetime import datetime, timedelta

import pytest

from dialer.domain import Outcome
from dialer.errors import StoreError, StoreUnavailable
from dialer.store import Store
from dialer.store.store import parse_url
from tests.redis_topologies import SentinelSet
from tests.runtime_helpers import campaign_csv, make_rig

pytestmark = pytest.mark.timeout(240)

MON_0900 = datetime.fromisoformat("2026-11-23T09:00:00-03:00")


@pytest.fixture
def sentinels(tmp_path):
    found = SentinelSet(tmp_path / "redis")
    yield found
    found.stop()


@pytest.mark.parametrize(
    ("url", "kind", "hosts", "replicas"),
    [
        ("redis://127.0.0.1:6379/0", "single", (), 0),
        (
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster",
            "sentinel",
            (("10.0.0.1", 26379), ("10.0.0.2", 26379)),
            1,
        ),
        (
            "redis+sentinel://s1,s2:5000/m?wait_replicas=2&wait_timeout_ms=50",
            "sentinel",
            (("s1", 26379), ("s2", 5000)),
            2,
        ),
        ("redis+cluster://n1:7000,n2:7001", "cluster", (("n1", 7000), ("n2", 7001)), 0),
    ],
)
def test_the_url_names_the_topology(url, kind, hosts, replicas):
    t = parse_url(url)
    assert (t.kind, t.hosts, t.wait_replicas) == (kind, hosts, replicas)


async def test_a_single_server_url_may_ask_for_durable_claims(redis_url):
    store = await Store.connect(redis_url + "?wait_replicas=0&wait_timeout_ms=200")
    try:
        assert await store.ping() and store.wait_timeout_ms == 200
    finally:
        await store.close()


@pytest.mark.parametrize("url", ["memcached://x", "redis+sentinel://a:b/m", "redis://x/0?wait_replicas=many"])
def test_a_bad_url_says_what_to_write(url):
    with pytest.raises(StoreError):
        parse_url(url)


async def test_a_campaign_runs_through_sentinel_and_claims_wait_for_the_replica(
    sentinels, settings, tmp_path
):
    rig = await make_rig(sentinels.url, settings, MON_0900)
    try:
        assert rig.store.wait_replicas == 1
        await rig.load(
            campaign_csv(tmp_path, [(f"A{i}", f"1198765{i:04d}", "10/11/2026") for i in range(20)])
        )
        await rig.drive(MON_0900 + timedelta(hours=2))
        done = [
            s for s in await rig.store.load_accounts("c1", [f"A{i}" for i in range(20)]) if s and s.history
        ]
        assert len(done) == 20
        offset = sentinels.replica.client.info("replication")["slave_repl_offset"]
        assert offset > 0  # what the primary wrote is on the replica
    finally:
        await rig.close()


async def test_a_replica_that_does_not_acknowledge_a_claim_means_no_call(sentinels, settings, tmp_path):
    url = sentinels.url + "?wait_timeout_ms=300"
    rig = await make_rig(url, settings, MON_0900)
    replica = sentinels.replica.proc
    try:
        await rig.load(campaign_csv(tmp_path, [("A1", "11987650001", "10/11/2026")]))
        os.kill(replica.pid, signal.SIGSTOP)  # connected, but acknowledges nothing
        worker = rig.worker()
        await rig.scheduler.run_once()
        with pytest.raises(StoreUnavailable, match="replicas"):
            await worker.run_once()
        assert rig.telephony.placed == 0  # the claim was not durable: no call
    finally:
        os.kill(replica.pid, signal.SIGCONT)
        await rig.close()


class Recording:
    """The sandbox's calls, counted per attempt and per phone and day."""

    def __init__(self, telephony, clock, delay_s: float = 0.0) -> None:
        self.telephony = telephony
        self.calls: list[tuple[str, str, str]] = []
        inner = telephony.place_call

        async def place_call(request):
            self.calls.append((request.attempt_id, request.phone.number, clock.now().date().isoformat()))
            if delay_s:
                await asyncio.sleep(delay_s)  # a call takes a while: the kill lands mid-run
            return await inner(request)

        telephony.place_call = place_call


async def test_the_primary_killed_mid_campaign_loses_no_contact_and_calls_nobody_twice(
    sentinels, settings, tmp_path
):
    n = 600
    rig = await make_rig(sentinels.url, settings, MON_0900.replace(hour=7))
    ids = [f"A{i:03d}" for i in range(n)]
    await rig.load(campaign_csv(tmp_path, [(a, f"119{i:08d}", "10/11/2026") for i, a in enumerate(ids)]))
    recording = Recording(rig.telephony, rig.clock, delay_s=0.05)
    stop = asyncio.Event()
    workers = [rig.worker(f"w{i}", batch=20, min_idle_ms=1500, block_ms=100, heartbeat_s=0.3) for i in (1, 2)]

    async def tick() -> None:  # the simulated morning passes: calls may start at 08:00
        while not stop.is_set():
            rig.clock.advance(minutes=2)
            await asyncio.sleep(0.02)

    tasks = [
        asyncio.create_task(rig.scheduler.run(stop)),
        *(asyncio.create_task(w.run(stop)) for w in workers),
        asyncio.create_task(tick()),
    ]
    killed_after, failover_s = 0, 0.0
    try:
        deadline = time.monotonic() + 120
        while len(recording.calls) < n // 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        killed_after = len(recording.calls)
        failover_s = await asyncio.to_thread(sentinels.kill_primary_and_wait_for_failover)
        while time.monotonic() < deadline:  # until every account has been worked
            await asyncio.sleep(0.5)
            try:
                states = await rig.store.load_accounts("c1", ids)
            except StoreError:
                continue
            if all(
                s is not None and s.history and all(a.outcome is not Outcome.PLACED for a in s.history)
                for s in states
            ):
                break
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    await asyncio.sleep(1.6)  # what a killed batch left pending is reclaimed and reconciled
    await rig.worker("w3", min_idle_ms=1500).run_once(reclaim=True)
    states = await rig.store.load_accounts("c1", ids)
    try:
        assert 0 < killed_after < n  # the primary died mid-campaign
        assert all(s is not None for s in states)  # nothing of the campaign was lost with it
        assert [a for s in states for a in s.history if a.outcome is Outcome.PLACED] == []  # all reconciled
        attempts = Counter(a for a, _, _ in recording.calls)
        phones = Counter((p, d) for _, p, d in recording.calls)
        assert max(attempts.values()) == 1 and max(phones.values()) == 1  # 0 second calls
        assert len([s for s in states if s.history]) == n  # 0 contacts lost
        voice = [a for s in states for a in s.history if a.channel.value == "voice"]
        print(
            f"\nfailover: primary SIGKILLed after {killed_after} of {n} calls; replica promoted in "
            f"{failover_s:.1f} s; {len(recording.calls)} calls placed, none twice; "
            f"{len(voice)} call attempts recorded, {Counter(a.outcome.value for a in voice).most_common(4)}"
        )
    finally:
        await rig.close()


async def test_a_store_connects_through_sentinel_after_the_failover(sentinels):
    store = await Store.connect(sentinels.url)
    try:
        await store._r.set("regua:probe", "1")
        await asyncio.to_thread(sentinels.kill_primary_and_wait_for_failover)
        for _ in range(50):
            try:
                assert await store._r.get("regua:probe") in ("1", None)
                break
            except Exception:  # the old primary's connections fail once
                await asyncio.sleep(0.2)
        assert await store.ping()
        await store._r.set("regua:probe2", "2")  # writes go to the new primary
        assert sentinels.replica.client.get("regua:probe2") == "2"
    finally:
        await store.close()
