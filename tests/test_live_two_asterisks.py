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
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from decimal import Decimal

import pytest

from dialer.clock import SystemClock
from dialer.domain import Account, Channel, Consent, Outcome, Phone
from dialer.settings import TrunkSettings
from dialer.store import Store
from dialer.telephony.asterisk import AmiUrl, AsteriskTelephony
from dialer.telephony.base import CallRequest
from tests.runtime_helpers import with_asterisk
from tests.test_live_asterisk import LIVE, LiveAsterisk

pytestmark = LIVE

CHANNELS, CPS, CALLS = 8, 4.0, 36


@pytest.fixture
def two(tmp_path_factory):  # one pair a test: each test kills one of them
    servers = [LiveAsterisk(tmp_path_factory.mktemp(f"asterisk{i}")) for i in (1, 2)]
    yield servers
    for s in servers:
        s.stop()  # the one killed too: its log is closed


async def test_caps_hold_across_workers_calls_spread_and_a_killed_asterisk_is_survived(
    two, redis_url, settings
):
    store = await Store.connect(redis_url)
    trunk = TrunkSettings(name="bench", channel="Local/hold3@regua-bench", max_channels=CHANNELS, cps=CPS)
    s = with_asterisk(
        settings, context="regua-bench-outbound", trunks=(trunk,), ring_timeout_s=10, response_margin_s=3
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


class _Watch:
    """What one Asterisk says about the bench calls, over its own AMI session: when each
    call came up (``;1`` Newstate Up) and when it ended (``;1`` Hangup)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.ups: list[float] = []
        self.open = 0
        self._up: set[str] = set()  # channels seen up (a call that never came up is not counted)
        self.peak_seen: list[tuple[float, int]] = []  # (when, calls up on this server)
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        await reader.readline()
        writer.write(b"Action: Login\r\nUsername: regua\r\nSecret: live-secret\r\nEvents: call\r\n\r\n")
        block: dict[str, str] = {}
        try:
            while line := await reader.readline():
                text = line.decode(errors="replace").rstrip("\r\n")
                if text:
                    key, _, value = text.partition(": ")
                    block[key] = value
                    continue
                channel = block.get("Channel", "")
                if channel.startswith("Local/hold") and channel.endswith(";1"):
                    now = time.monotonic()
                    if block.get("Event") == "Newstate" and block.get("ChannelState") == "6":
                        self.ups.append(now)
                        self._up.add(channel)
                        self.open += 1
                    elif block.get("Event") == "Hangup" and channel in self._up:
                        self._up.discard(channel)
                        self.open -= 1
                    self.peak_seen.append((now, self.open))
                block = {}
        finally:
            writer.close()


async def test_three_worker_processes_on_two_asterisks_hold_the_caps_and_survive_one_killed(
    two, redis_url, settings, tmp_path
):
    """Three real worker processes (the service's worker role: Redis → decide → pacing →
    Originate, and their own FastAGI servers) share one Redis and two Asterisks. Measured
    on the Asterisks' side: the trunk's channels and calls per second never exceed its caps,
    both servers carry calls, and after one is SIGKILLed the other carries on alone; every
    contact ends with one call and an outcome — the killed server's calls ``unknown``."""
    from datetime import datetime

    from dialer.store.embedded import free_port
    from dialer.store.keys import CampaignKeys
    from tests.runtime_helpers import campaign_csv, make_rig

    start = datetime.fromisoformat("2026-11-23T10:00:00-03:00")  # a Monday, D+13
    rig = await make_rig(redis_url, settings, start)
    ids = [f"A{i}" for i in range(CALLS)]
    await rig.load(campaign_csv(tmp_path, [(a, f"1198765{i:04d}", "10/11/2026") for i, a in enumerate(ids)]))
    config = tmp_path / "workers.toml"
    urls = ", ".join(f'"ami://regua:live-secret@127.0.0.1:{a.ami_port}"' for a in two)
    config.write_text(
        f"""[service]
telephony = "asterisk"
ami_urls = [{urls}]
batch_size = 2
worker_concurrency = 3  # each holds 3 contacts at most: two fill 6 channels, 8 need all three

[asterisk]
context = "regua-bench-outbound"
ring_timeout_s = 10
response_margin_s = 3

[[asterisk.trunks]]
name = "bench"
channel = "Local/hold3@regua-bench"
max_channels = {CHANNELS}
cps = {CPS}
"""
    )
    watches = [_Watch(a.ami_port) for a in two]
    for w in watches:
        w.task = asyncio.create_task(w.run())
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    for i in range(3):
        env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "DIALER_DATA_DIR": str(tmp_path / f"var{i}"),
            "DIALER_AGI_PORT": str(free_port()),
            "DIALER_SECRET_KEY": "live-test-secret",
        }
        logs.append(tmp_path / f"worker{i}.log")
        with logs[-1].open("wb") as fh:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tests.live_worker", str(config), start.isoformat()],
                    env=env,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                )
            )
    victim = two[1]
    k = CampaignKeys("c1")

    def voice(state) -> list:  # the account's calls
        return [a for a in state.history if a.channel is Channel.VOICE]

    worked: set[str] = set()  # the processes seen holding contacts

    async def holding() -> None:
        summary = await rig.raw.xpending(k.work, "workers")
        worked.update(c["name"] for c in summary.get("consumers") or [] if int(c["pending"]) > 0)

    try:
        deadline = time.monotonic() + 60
        while not all(b"FastAGI listening" in p.read_bytes() for p in logs) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # the three are up and waiting for work
        await rig.scheduler.run_once()  # the work arrives: every contact due now
        while sum(len(w.ups) for w in watches) < CALLS // 3 and time.monotonic() < deadline:
            await holding()
            await asyncio.sleep(0.05)
        assert sum(len(w.ups) for w in watches) >= CALLS // 3, "\n".join(p.read_text()[-2000:] for p in logs)
        before_kill = [len(w.ups) for w in watches]
        killed_at = time.monotonic()
        os.killpg(victim.proc.pid, signal.SIGKILL)  # as a crash would
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = await rig.store.load_accounts("c1", ids)
            if all(voice(s) and voice(s)[-1].outcome is not Outcome.PLACED for s in states):
                break
            await holding()
            await asyncio.sleep(0.25)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        for w in watches:
            assert w.task is not None
            w.task.cancel()
        await asyncio.gather(*(w.task for w in watches if w.task), return_exceptions=True)
        await rig.close()
    log_tail = "\n".join(p.read_text()[-1500:] for p in logs)
    calls = {s.account.account_id: voice(s) for s in states}
    assert all(len(c) == 1 for c in calls.values()), log_tail  # one call a contact, none twice
    outcomes = Counter(c[0].outcome for c in calls.values())
    assert Outcome.PLACED not in outcomes, (outcomes, log_tail)  # every call reconciled
    assert 0 < outcomes[Outcome.UNKNOWN] <= CHANNELS, outcomes  # the victim's calls in flight
    assert len(worked) == 3, worked  # the three processes held contacts
    # the caps, as the Asterisks saw them: channels across both servers at any moment …
    changes = sorted(
        [(t, i, n) for i, w in enumerate(watches) for t, n in w.peak_seen if not (i == 1 and t > killed_at)]
        + [(killed_at, 1, 0)]  # the killed server's calls are gone with it
    )
    current = [0, 0]
    peak = 0
    for _, i, n in changes:
        current[i] = n
        peak = max(peak, sum(current))
    assert CHANNELS - 1 <= peak <= CHANNELS  # reached (more than two workers can hold), never passed
    # … and calls set up in any second (a 0.9 s window absorbs the events' jitter)
    ups = sorted(t for w in watches for t in w.ups)
    worst = max(sum(1 for t in ups if a <= t < a + 0.9) for a in ups)
    assert worst <= CPS
    assert all(n > 0 for n in before_kill)  # spread over both
    # the survivor carries on: every call answered after the kill was up on it
    assert any(t > killed_at + 1 for t in watches[0].ups)
    assert len(watches[0].ups) + before_kill[1] >= outcomes[Outcome.ANSWERED_UNVERIFIED]
    print(
        f"\nthree worker processes, two Asterisks: peak {peak} calls up (cap {CHANNELS}), worst second "
        f"{worst} set up (cap {CPS:g}/s), before the kill {before_kill}, survivor "
        f"{len(watches[0].ups)} calls in all, outcomes {dict(outcomes)}"
    )
