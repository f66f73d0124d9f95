"""What durable claims cost: dispatch through Redis Sentinel with claims WAITed for by the
replica, and without (``?wait_replicas=0``), on the same primary + replica + 3 sentinels.

N accounts due now go scheduler → worker (sandbox calls without simulated duration) →
recorded outcome, as in ``dispatch_bench``. Beside it, the limit it is compared with in the
same run: a bare client's write followed by ``WAIT 1`` (one replication round trip).
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime
from pathlib import Path

import redis

from bench.synthetic import write
from dialer.clock import SimulatedClock
from dialer.formats.campaign_file import RowDefaults
from dialer.formats.config_file import load_settings
from dialer.runtime.ingest import load_file
from dialer.runtime.scheduler import Scheduler
from dialer.runtime.wiring import Runtime, run_async
from dialer.runtime.worker import Worker, WorkerConfig
from dialer.store import Store
from dialer.telephony.sandbox import SandboxTelephony
from sms_gateway.sandbox import SandboxSms
from tests.redis_topologies import SentinelSet

N = 5_000


async def _dispatch(url: str, tmp: Path, n: int, name: str) -> tuple[float, int]:
    settings = load_settings(env={})
    start = datetime.fromisoformat("2026-11-24T10:00:00-03:00")
    clock = SimulatedClock(start, 1.0)
    runtime = Runtime.build(settings, clock=clock)
    store = await Store.connect(url)
    try:
        csv_path = write(tmp / f"{name}.csv", n, seed=3, today=start.date())
        await load_file(
            store, csv_path, name, defaults=RowDefaults(True, True), secret=b"k",
            cadence=runtime.cadence, now=clock.now(), actor="bench",
        )  # fmt: skip
        await store.transition(name, "start", clock.now(), "bench")
        scheduler = Scheduler(store, clock, batch=1000, max_backlog=10**9)
        worker = Worker(
            store, SandboxTelephony(clock, realtime=False), SandboxSms(store, clock), settings,
            runtime.policy, runtime.cadence, clock, config=WorkerConfig(batch=250), secret=b"k",
        )  # fmt: skip
        await scheduler.run_once()
        t0 = time.perf_counter()
        worked = await worker.run_once()
        return time.perf_counter() - t0, worked
    finally:
        await store.close()


def _bare_wait(port: int, rounds: int = 2000) -> float:
    """Seconds per write + WAIT 1 on a bare client (the replication round trip)."""
    r = redis.Redis(port=port)
    try:
        t0 = time.perf_counter()
        for i in range(rounds):
            r.set("bench:wait", i)
            r.execute_command("WAIT", 1, 1000)
        return (time.perf_counter() - t0) / rounds
    finally:
        r.close()


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        topo = SentinelSet(Path(tmp) / "redis")
        try:
            durable_s, durable_n = run_async(_dispatch(topo.url, Path(tmp), N, "durable"))
            plain_s, plain_n = run_async(_dispatch(topo.url + "?wait_replicas=0", Path(tmp), N, "plain"))
            wait_s = _bare_wait(topo.primary.port)
        finally:
            topo.stop()
    durable, plain = durable_n / durable_s, plain_n / plain_s
    cost_us = (durable_s / durable_n - plain_s / plain_n) * 1e6
    print(
        f"sentinel dispatch, one worker, {N:,} contacts: claims WAITed for by the replica "
        f"{durable:,.0f} contacts/s, without WAIT {plain:,.0f}/s ({durable / plain:.0%})"
    )
    print(
        f"  durable claims cost {cost_us:,.0f} µs per contact; the limit, a bare write + WAIT 1 on the "
        f"same primary: {wait_s * 1e6:,.0f} µs per round trip (one per batch of up to 250 claims)"
    )
    return {"durable_per_s": durable, "plain_per_s": plain, "cost_us": cost_us, "bare_wait_us": wait_s * 1e6}


if __name__ == "__main__":
    run()
