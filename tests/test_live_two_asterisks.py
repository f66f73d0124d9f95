"""Two real Asterisk servers on loopback (from config/asterisk/), three workers' voice
backends sharing one Redis: the trunk's channel and CPS caps hold across all three, calls
spread over both servers by free capacity, and one Asterisk SIGKILLed mid-run — its calls
in flight end ``unknown`` (recorded, never redialled) and the other server carries on.

Skipped with a reason without an ``asterisk`` binary on PATH (build Asterisk 22 from source).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest

from dialer.clock import SystemClock
from dialer.domain import Account, Consent, Outcome, Phone
from dialer.settings import TrunkSettings
from dialer.store import Store
from dialer.telephony.asterisk import AmiUrl, AsteriskTelephony
from dialer.telephony.base import CallRequest
from tests.test_live_asterisk import ASTERISK, LiveAsterisk

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        ASTERISK is None,
        reason="live Asterisk tests need an `asterisk` binary on PATH "
        "(not in Debian's archive: build Asterisk 22 from source to run them)",
    ),
    pytest.mark.timeout(240),
]

CHANNELS, CPS, CALLS = 8, 4.0, 36


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    servers = [LiveAsterisk(tmp_path_factory.mktemp(f"asterisk{i}")) for i in (1, 2)]
    yield servers
    for s in servers:
        s.stop()  # the one killed too: its log is closed


async def test_caps_hold_across_workers_calls_spread_and_a_killed_asterisk_is_survived(
    two, redis_url, settings
):
    store = await Store.connect(redis_url)
    trunk = TrunkSettings(name="bench", channel="Local/hold3@regua-bench", max_channels=CHANNELS, cps=CPS)
    s = settings.model_copy(
        update={
            "asterisk": settings.asterisk.model_copy(
                update={
                    "context": "regua-bench-outbound",
                    "trunks": (trunk,),
                    "ring_timeout_s": 10,
                    "response_margin_s": 3,
                }
            )
        }
    )
    urls = [AmiUrl("regua", "live-secret", "127.0.0.1", a.ami_port) for a in two]
    workers = [AsteriskTelephony(s, store, SystemClock(), urls) for _ in range(3)]
    for w in workers:
        await w.start()
    account = Account("L1", "Maria", date(2026, 11, 1), Decimal("100.00"))
    phone = Phone("+5511987654320", consent=Consent(True, True))
    started: list[tuple[float, str]] = []  # (when, server) of each Originate
    peak = 0
    victim = two[1]

    def on(server_name: str) -> int:
        return sum(srv.active_calls for w in workers for srv in w.servers if srv.name == server_name)

    async def sample(stop: asyncio.Event) -> None:
        nonlocal peak
        seen: set[str] = set()
        while not stop.is_set():
            in_flight = sum(len(w.calls) for w in workers)
            peak = max(peak, in_flight)
            for w in workers:
                for cid, call in list(w.calls.items()):
                    if cid not in seen:
                        seen.add(cid)
                        started.append((time.monotonic(), call.server.name))
            await asyncio.sleep(0.02)

    stop = asyncio.Event()
    sampler = asyncio.create_task(sample(stop))
    prefix = f"live2:{int(time.time() * 1000)}-"
    try:
        tasks = [
            asyncio.create_task(
                workers[i % 3].place_call(CallRequest(f"{prefix}{i}", "live2", account, phone, "s", "pt-BR"))
            )
            for i in range(CALLS)
        ]
        deadline = time.monotonic() + 60
        while len(started) < CALLS // 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        before_kill = Counter(server for _, server in started)
        killed_at = time.monotonic()
        os.killpg(victim.proc.pid, signal.SIGKILL)  # as a crash would
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 180)
    finally:
        stop.set()
        await sampler
        for w in workers:
            await w.close()
        await store.close()
    victim_name = f"127.0.0.1:{victim.ami_port}"
    survivor_name = f"127.0.0.1:{two[0].ami_port}"
    assert peak <= CHANNELS  # the trunk's channels, across three workers
    times = sorted(t for t, _ in started)
    # the trunk's calls per second: never more than CPS within a second (the window is
    # Redis's; these times are sampled every 20 ms, so a 0.9 s window absorbs the sampling)
    worst = max(sum(1 for t in times if a <= t < a + 0.9) for a in times)
    assert worst <= CPS
    assert before_kill[victim_name] > 0 and before_kill[survivor_name] > 0  # spread over both
    after = [server for t, server in started if t > killed_at + 0.5]
    assert after and set(after) == {survivor_name}  # the survivor carries on alone
    outcomes = Counter(r.outcome if not isinstance(r, BaseException) else type(r).__name__ for r in results)
    assert all(not isinstance(r, BaseException) for r in results), outcomes  # every call came back
    lost = [r for r in results if r.outcome is Outcome.UNKNOWN]
    assert 0 < len(lost) <= CHANNELS  # the victim's calls in flight: recorded unknown, not redialled
    assert (
        len([r for r in results if r.outcome is not Outcome.UNKNOWN and r.outcome is not Outcome.FAILED])
        >= CALLS - CHANNELS
    )
    print(f"\ntwo Asterisks, three workers: peak {peak} in flight (cap {CHANNELS}), worst second {worst} "
          f"originations (cap {CPS:g}/s), before the kill {dict(before_kill)}, outcomes {dict(outcomes)}")  # fmt: skip
