"""Faults: a worker SIGKILLed mid-call, Redis killed and restarted mid-run, two workers racing.

Real processes, real redis-server, real signals.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dialer.domain import Channel, Outcome
from dialer.formats.config_file import load_settings
from dialer.rules.cadence import Cadence
from dialer.rules.planning import plan_account
from dialer.rules.policy import Policy
from dialer.runtime.worker import WorkerConfig
from dialer.store.embedded import EmbeddedRedis, free_port
from dialer.store.keys import CampaignKeys
from tests.runtime_helpers import campaign_csv, make_rig

MON_1000 = datetime.fromisoformat("2026-11-23T10:00:00-03:00")
DUE = "10/11/2026"
SP = ZoneInfo("America/Sao_Paulo")


async def test_sigkilled_worker_never_causes_a_second_call(redis_url, settings, tmp_path):
    rig = await make_rig(redis_url, settings, MON_1000)
    n = 30
    await rig.load(campaign_csv(tmp_path, [(f"A{i}", f"1198765{i:03d}3", DUE) for i in range(n)]))
    await rig.scheduler.run_once()
    # a worker process on a slow simulated clock: every call rings for ~6 real seconds
    env = {**os.environ, "REDIS_URL": redis_url, "DIALER_DATA_DIR": str(tmp_path / "var")}
    log = tmp_path / "worker.log"
    with log.open("wb") as log_fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dialer",
                "serve",
                "--role",
                "worker",
                "--no-api",
                "--no-progress",
                "--clock-start",
                MON_1000.isoformat(),
                "--speed",
                "5",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_fh,
        )
    k = CampaignKeys("c1")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until every call is claimed and ringing
            locks = [await rig.raw.hget(k.account(f"A{i}"), "lk") for i in range(n)]
            if all(locks):
                break
            await asyncio.sleep(0.05)
        assert all(locks), log.read_text()
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
    pending = await rig.raw.xpending(k.work, "workers")
    assert pending["pending"] == n  # the dead worker's entries are still there

    await asyncio.sleep(0.3)
    rig.clock.set(MON_1000 + timedelta(minutes=5))
    survivor = rig.worker("survivor", min_idle_ms=200)
    assert await survivor.run_once(reclaim=True) == n
    assert rig.telephony.placed == 0  # nothing dialled twice
    states = await rig.store.load_accounts("c1", [f"A{i}" for i in range(n)])
    for s in states:
        (call,) = [a for a in s.history if a.channel is Channel.VOICE]
        assert call.outcome is Outcome.UNKNOWN  # the PBX could not tell: counted, not repeated
        assert s.lock is None
    assert (await rig.raw.xpending(k.work, "workers"))["pending"] == 0
    assert await rig.raw.zcard(k.schedule) == n  # every account is scheduled again
    await rig.close()


async def test_a_kill_after_short_calls_ended_keeps_their_outcomes(redis_url, settings, tmp_path):
    """One batch, real time: busy (…4), congested (…5) and unallocated (…7) numbers end within
    two seconds, the no-answer ones (…3) ring for 30 s. The worker is SIGKILLed while those
    ring: what was known is kept — busy lines have their SMS fallback due, the unallocated
    number is suppressed — and only the calls still ringing come back unknown."""
    rig = await make_rig(redis_url, settings, MON_1000)
    digits = [4, 5, 7, 3, 3, 3]
    rows = [(f"A{i}", f"1198765{i:03d}{d}", DUE) for i, d in enumerate(digits)]
    await rig.load(campaign_csv(tmp_path, rows))
    await rig.scheduler.run_once()
    env = {**os.environ, "REDIS_URL": redis_url, "DIALER_DATA_DIR": str(tmp_path / "var")}
    log = tmp_path / "worker.log"
    with log.open("wb") as log_fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dialer",
                "serve",
                "--role",
                "worker",
                "--no-api",
                "--no-progress",
                "--clock-start",
                MON_1000.isoformat(),
                "--speed",
                "1",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log_fh,
        )
    ids = [a for a, _, _ in rows]
    short = {f"A{i}" for i, d in enumerate(digits) if d != 3}
    try:
        deadline = time.monotonic() + 20
        ended: set[str] = set()
        while time.monotonic() < deadline and ended != short:
            states = await rig.store.load_accounts("c1", ids)
            ended = {
                s.account.account_id
                for s in states
                if any(a.channel is Channel.VOICE and a.outcome is not Outcome.PLACED for a in s.history)
            }
            await asyncio.sleep(0.1)
        assert ended == short, log.read_text()  # the short calls are written while the others ring
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
    states = {s.account.account_id: s for s in await rig.store.load_accounts("c1", ids)}
    outcome = {a: next(x.outcome for x in s.history if x.channel is Channel.VOICE) for a, s in states.items()}
    assert [outcome[a] for a in ids] == [
        Outcome.BUSY,
        Outcome.CONGESTION,
        Outcome.INVALID_NUMBER,
        Outcome.PLACED,
        Outcome.PLACED,
        Outcome.PLACED,
    ]
    assert states["A0"].fallback == "d10_call" and states["A1"].fallback == "d10_call"  # SMS due
    suppressed = await rig.store.suppressions([f"+55{rows[2][1]}"])
    assert [s.reason.value for s in suppressed[f"+55{rows[2][1]}"]] == ["invalid_number"]

    await asyncio.sleep(0.3)
    rig.clock.set(MON_1000 + timedelta(minutes=5))
    survivor = rig.worker("survivor", min_idle_ms=200)
    await survivor.run_once(reclaim=True)
    assert rig.telephony.placed == 0  # nothing dialled twice
    after = {s.account.account_id: s for s in await rig.store.load_accounts("c1", ids)}
    kept = {a: [x.outcome for x in s.history if x.channel is Channel.VOICE] for a, s in after.items()}
    assert kept == {
        "A0": [Outcome.BUSY],
        "A1": [Outcome.CONGESTION],
        "A2": [Outcome.INVALID_NUMBER],
        "A3": [Outcome.UNKNOWN],
        "A4": [Outcome.UNKNOWN],
        "A5": [Outcome.UNKNOWN],
    }
    await rig.close()


async def test_redis_killed_and_restarted_mid_run_loses_nothing(settings, tmp_path):
    port = free_port()
    server = EmbeddedRedis(tmp_path / "redis", appendonly=True, fsync="always", port=port)
    server.start()
    rig = await make_rig(server.url, settings, MON_1000.replace(hour=7))
    n = 300
    rows = [(f"A{i}", f"1198{i:06d}{i % 10}", DUE) for i in range(n)]
    await rig.load(campaign_csv(tmp_path, rows))
    stop = asyncio.Event()
    worker = rig.worker("w1", min_idle_ms=1000, block_ms=100, heartbeat_s=0.3)

    async def tick() -> None:
        while not stop.is_set():
            rig.clock.advance(minutes=3)
            await asyncio.sleep(0.02)

    tasks = [
        asyncio.create_task(worker.run(stop)),
        asyncio.create_task(rig.scheduler.run(stop)),
        asyncio.create_task(tick()),
    ]
    try:
        await asyncio.sleep(1.5)
        server.kill()  # SIGKILL: as a crash would
        await asyncio.sleep(1.0)
        server = EmbeddedRedis(tmp_path / "redis", appendonly=True, fsync="always", port=port)
        server.start()
        await asyncio.sleep(4.0)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
    # let whatever was cut short be reclaimed and finished
    rig.clock.advance(minutes=1)
    await asyncio.sleep(1.1)
    await rig.worker("w2", min_idle_ms=1000).run_once(reclaim=True)

    k = CampaignKeys("c1")
    ids = [f"A{i}" for i in range(n)]
    states = await rig.store.load_accounts("c1", ids)
    assert all(s is not None for s in states)  # every account is still there, with its data
    scheduled = {m for m in await rig.raw.zrange(k.schedule, 0, -1)}
    queued = {f["a"] for _, f in await rig.raw.xrange(k.work)}
    policy, cadence = Policy.from_settings(settings), Cadence.from_settings(settings)
    lost = []
    for s in states:
        if s.account.account_id in scheduled or s.account.account_id in queued:
            continue
        plan = plan_account(s.account, s.phones, s.history, s.fallback, {}, rig.clock.now(), policy, cadence)
        if plan.kind != "done":
            lost.append((s.account.account_id, plan.kind))
    assert lost == []
    calls = Counter(
        (a.phone, a.at.astimezone(SP).date())
        for s in states
        for a in s.history
        if a.channel is Channel.VOICE and a.outcome is not Outcome.UNKNOWN
    )
    assert calls, Counter(a.outcome for s in states for a in s.history)  # calls were made
    assert max(calls.values()) == 1  # never twice the same phone the same day
    assert sum(calls.values()) > 0
    await rig.close()
    server.stop()


async def test_two_workers_respect_caps_over_a_week(redis_url, tmp_config, tmp_path):
    # a cadence that would call every 5 minutes if the caps did not stop it
    cfg = tmp_config(
        '[cadence]\nboleto = [{ id = "hammer", offset_days = 10, channel = "voice", template = "ivr",'
        " max_attempts = 10, retry_after_minutes = 5 }]\n"
    )
    settings = load_settings(cfg, env={})
    rig = await make_rig(redis_url, settings, MON_1000.replace(hour=7))
    rows = []
    for i in range(40):  # two phones per account, nobody answers
        rows += [(f"A{i}", f"1198760{i:03d}3", DUE), (f"A{i}", f"2198760{i:03d}3", DUE)]
    await rig.load(campaign_csv(tmp_path, rows))
    w1 = rig.worker("w1", batch=7)
    w2 = rig.worker("w2", batch=7)
    k = CampaignKeys("c1")
    end = MON_1000 + timedelta(days=9)
    while rig.clock.now() < end:
        await rig.scheduler.run_once()
        # duplicate every queued entry so both workers race on the same accounts
        for _, f in await rig.raw.xrange(k.work):
            await rig.raw.xadd(k.work, {"a": f["a"]})
        await asyncio.gather(w1.run_once(), w2.run_once())
        rig.clock.advance(minutes=20)
    states = await rig.store.load_accounts("c1", [f"A{i}" for i in range(40)])
    for s in states:
        calls = sorted(a.at.astimezone(SP) for a in s.history if a.channel is Channel.VOICE)
        per_phone_day = Counter(
            (a.phone, a.at.astimezone(SP).date()) for a in s.history if a.channel is Channel.VOICE
        )
        assert max(per_phone_day.values()) == 1
        days = [c.date() for c in calls]
        for d in days:  # 3 per account in any 7 consecutive local days
            assert sum(1 for x in days if d - timedelta(days=6) <= x <= d) <= 3
        # the caps let exactly 3 calls through in the first 7 days, then more the next week
        assert sum(1 for d in days if d <= MON_1000.date() + timedelta(days=6)) == 3
        assert len(calls) > 3
    await rig.close()


@pytest.fixture(autouse=True)
def _worker_config_is_typed():
    # make sure the knobs the tests turn exist (a renamed field would silently do nothing)
    WorkerConfig(min_idle_ms=1, block_ms=1, heartbeat_s=1, batch=1)
