"""The whole dialer against a real Asterisk, beside a bare AMI client on the same Asterisk.

Needs an ``asterisk`` binary on PATH (Asterisk 22 built from source); skipped otherwise.
One Asterisk is started from ``config/asterisk/`` (as the live tests do), and rounds
alternate between:

1. **The limit**: a bare asyncio AMI client (a socket, no parsing beyond what it counts)
   sends N Originates — the very fields the dialer sends: channel ids, variables, caller
   id — as fast as it can, and counts the OriginateResponses.
2. **The dialer**: N accounts loaded into Redis, due now; the scheduler hands them to one
   worker whose voice backend is Asterisk over AMI (trunk caps raised: cps 1,000, 5,000
   channels): Redis → decide → pacing → IVR registration → Originate of ``Local/hold15@
   regua-bench`` (a debtor that answers, plays a tone and holds 15 s).

Both rates run from the first Originate to the last OriginateResponse (after one burst
that warms Asterisk up and is not counted); each is the median of ``LIVE_BENCH_ROUNDS`` (3) rounds of ``LIVE_BENCH_N`` (2,000) calls. Asterisk is pinned
to a processor of its own and the client under test to another (``LIVE_BENCH_PIN=0``: not).
Printed: both rates and their ratio, failures, peak calls in flight, the worker's CPU and
memory, Asterisk's CPU.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from dialer.clock import SimulatedClock
from dialer.formats.campaign_file import RowDefaults
from dialer.formats.config_file import load_settings
from dialer.runtime.gc_tuning import tune_gc
from dialer.runtime.ingest import load_file
from dialer.runtime.scheduler import Scheduler
from dialer.runtime.wiring import Runtime, run_async
from dialer.runtime.worker import Worker, WorkerConfig
from dialer.settings import TrunkSettings
from dialer.store import Store
from dialer.store.embedded import EmbeddedRedis
from dialer.telephony.asterisk import AmiUrl, AsteriskTelephony
from sms_gateway.sandbox import SandboxSms
from tests.runtime_helpers import with_asterisk

N = int(os.environ.get("LIVE_BENCH_N", "2000"))  # contacts a round, for each of the two
ROUNDS = int(os.environ.get("LIVE_BENCH_ROUNDS", "3"))
HOLD_S = 16  # 1 s of tone, then 15 s of silence
HOLD = "Local/hold15@regua-bench"


async def _bare(port: int, n: int, tag: str) -> dict[str, float]:
    """Originate ``n`` calls with nothing but a socket: rate to the n-th accepted Originate."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()  # the banner
    writer.write(b"Action: Login\r\nUsername: regua\r\nSecret: live-secret\r\nEvents: call\r\n\r\n")
    await writer.drain()
    accepted = failed = up = peak = 0
    answers: list[float] = []
    done = asyncio.Event()
    t0 = time.perf_counter()
    t_end = 0.0

    async def read() -> None:
        nonlocal accepted, failed, up, peak, t_end
        block: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if not line:
                return
            text = line.decode(errors="replace").rstrip("\r\n")
            if text:
                key, _, value = text.partition(": ")
                block[key] = value
                continue
            if block.get("Event") == "OriginateResponse" and block.get("ActionID", "").startswith(tag):
                answers.append(time.perf_counter() - t0)
                if block.get("Response") == "Success":
                    accepted += 1
                    up += 1
                    peak = max(peak, up)
                else:
                    failed += 1
                if accepted + failed == n:
                    t_end = time.perf_counter()
                    done.set()
            elif block.get("Event") == "Hangup" and block.get("Channel", "").startswith("Local/hold") and up:
                up -= 1 if block.get("Channel", "").endswith(";1") else 0
            block = {}

    reading = asyncio.create_task(read())
    t0 = time.perf_counter()
    for i in range(n):
        writer.write(
            (
                f"Action: Originate\r\nActionID: {tag}{i}\r\nChannel: {HOLD}\r\nContext: regua-bench-outbound\r\n"
                f"Exten: s\r\nPriority: 1\r\nAsync: true\r\nTimeout: 30000\r\nCallerID: +551140028922\r\n"
                # the same Originate the dialer sends: its own channel ids and variables
                f"ChannelId: bare-{tag}{i}\r\nOtherChannelId: bare-{tag}{i}.2\r\n"
                f"Variable: ATTEMPT_ID=bench:{tag}{i}\r\nVariable: REGUA_AGI=agi://127.0.0.1:4573/ivr\r\n"
                f"Variable: REGUA_TRUNK=bench\r\n\r\n"
            ).encode()
        )
        if i % 100 == 99:
            await writer.drain()
    await writer.drain()
    t_sent = time.perf_counter()
    try:
        await asyncio.wait_for(done.wait(), 120)
    except TimeoutError:
        t_end = time.perf_counter()
    reading.cancel()
    writer.close()
    return {
        "rate": (accepted + failed) / max(t_end - t0, 1e-9),
        "failed": failed,
        "peak": peak,
        "accepted": accepted,
        "sent_s": t_sent - t0,
        "p50_s": statistics.median(answers) if answers else 0.0,
    }


async def _dialer(ami_port: int, tmp: Path, n: int) -> dict[str, float]:
    tmp.mkdir(parents=True, exist_ok=True)
    with EmbeddedRedis(tmp / "redis", appendonly=False) as server:
        base = load_settings(env={})
        trunk = TrunkSettings(name="bench", channel=HOLD, max_channels=5000, cps=1000)
        settings = with_asterisk(
            base, context="regua-bench-outbound", trunks=(trunk,), campaign_max_channels=5000
        )
        start = datetime.fromisoformat("2026-11-24T10:00:00-03:00")
        clock = SimulatedClock(start, 1.0)
        runtime = Runtime.build(settings, clock=clock)
        store = await Store.connect(server.url)
        csv_path = tmp / "c.csv"  # every account due for a call now: São Paulo mobiles, D+54, consent
        csv_path.write_text(
            "account_id;name;phone;due_date;amount;consent_voice;consent_sms\n"
            + "".join(f"L{i:05d};Pessoa {i};1198{i:07d};01/10/2026;100,00;sim;sim\n" for i in range(n))
        )
        await load_file(
            store, csv_path, "live", defaults=RowDefaults(True, True), secret=b"k",
            cadence=runtime.cadence, now=clock.now(), actor="bench",
        )  # fmt: skip
        await store.transition("live", "start", clock.now(), "bench")
        voice = AsteriskTelephony(
            settings, store, clock, [AmiUrl("regua", "live-secret", "127.0.0.1", ami_port)]
        )
        await voice.start()
        stamps: list[float] = []  # when each Originate went out
        answers: list[float] = []  # when Asterisk answered it (OriginateResponse): as the bare client counts
        inner, inner_response = voice._originate, voice._on_originate_response

        async def originate(*args: object, **kw: object) -> object:
            stamps.append(time.perf_counter())
            return await inner(*args, **kw)  # type: ignore[arg-type]

        def response(call: object, m: object) -> None:
            answers.append(time.perf_counter())
            inner_response(call, m)  # type: ignore[arg-type]

        voice._originate = originate  # type: ignore[method-assign]
        voice._on_originate_response = response  # type: ignore[method-assign]
        worker = Worker(
            store, voice, SandboxSms(store, clock), settings, runtime.policy, runtime.cadence, clock,
            config=WorkerConfig(batch=500, concurrency=5000), secret=b"k",
        )  # fmt: skip
        scheduler = Scheduler(store, clock, batch=1000, max_backlog=10**9)
        tune_gc()  # as ``serve`` does once everything is built
        peak = 0
        stop = asyncio.Event()

        async def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, len(voice.calls))
                await asyncio.sleep(0.05)

        sampler = asyncio.create_task(sample())
        await scheduler.run_once()
        cpu0, t0 = time.process_time(), time.perf_counter()
        worked = await worker.run_once()
        cpu = time.process_time() - cpu0
        stop.set()
        await sampler
        status = await store.status("live")
        failed = int(status["counters"].get("outcome:failed", 0))
        await voice.close()
        await store.close()
        span = (max(answers) - stamps[0]) if answers and stamps else 1e-9
        return {
            "rate": len(answers) / max(span, 1e-9),
            "span_s": span,
            "p50_s": (statistics.median(answers) - stamps[0]) if answers and stamps else 0.0,
            "placed": len(stamps),
            "worked": worked,
            "failed": failed,
            "peak": peak,
            "cpu_s": cpu,
            "wall_s": time.perf_counter() - t0,
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spread(values: list[float]) -> str:
    return ", ".join(f"{v:,.0f}" for v in values)


def run() -> dict[str, float] | None:
    if shutil.which("asterisk") is None:
        print("live_bench: skipped — no `asterisk` binary on PATH (build Asterisk 22 from source)")
        return None
    from tests.test_live_asterisk import LiveAsterisk

    bare: list[dict[str, float]] = []
    dialer: list[dict[str, float]] = []
    # Asterisk on a processor of its own, as on a machine of its own; this process (the
    # bare client, or the worker) and its Redis on the other: otherwise the worker's CPU is
    # taken from Asterisk's and the bare client's is not, and the ratio measures the machine
    # (``LIVE_BENCH_PIN=0``: everything shares every processor)
    cpus = sorted(os.sched_getaffinity(0))
    pinned = len(cpus) >= 2 and os.environ.get("LIVE_BENCH_PIN", "1") != "0"
    if pinned:
        os.sched_setaffinity(0, {cpus[0]})
    with tempfile.TemporaryDirectory() as tmp:
        pbx = LiveAsterisk(Path(tmp) / "asterisk", cpus=set(cpus[1:]) if pinned else None)
        try:
            pbx.cli("core set verbose 0")
            run_async(_bare(pbx.ami_port, N, "warm-"))  # Asterisk's first burst is its slowest
            time.sleep(HOLD_S + 3)
            for r in range(ROUNDS):  # alternate, so that neither has the warmer Asterisk
                cpu0 = _cpu_s(pbx.proc.pid)
                bare.append(run_async(_bare(pbx.ami_port, N, f"b{r}-")))
                bare[-1]["pbx_cpu_s"] = _cpu_s(pbx.proc.pid) - cpu0
                print(
                    f"  round {r + 1}, bare client: {bare[-1]['rate']:,.0f}/s, half answered by "
                    f"{bare[-1]['p50_s']:.2f} s, all by {N / bare[-1]['rate']:.2f} s, peak "
                    f"{bare[-1]['peak']:,.0f}, {bare[-1]['failed']:.0f} failed; Asterisk used "
                    f"{bare[-1]['pbx_cpu_s']:.1f} s CPU", flush=True,
                )  # fmt: skip
                time.sleep(HOLD_S + 3)  # the burst's calls end
                cpu0 = _cpu_s(pbx.proc.pid)
                dialer.append(run_async(_dialer(pbx.ami_port, Path(tmp) / f"d{r}", N)))
                d = dialer[-1]
                print(
                    f"  round {r + 1}, dialer: {d['rate']:,.0f}/s, half answered by {d['p50_s']:.2f} s, all by "
                    f"{d['span_s']:.2f} s, peak {d['peak']:,.0f}, {d['failed']:.0f} failed; worker CPU "
                    f"{d['cpu_s']:.1f} s; Asterisk used {_cpu_s(pbx.proc.pid) - cpu0:.1f} s CPU "
                    "(with the calls' hold)", flush=True,
                )  # fmt: skip
        finally:
            pbx.stop()
    rate = statistics.median(r["rate"] for r in bare)
    ours = statistics.median(r["rate"] for r in dialer)
    if pinned:
        os.sched_setaffinity(0, set(cpus))
        print(f"  (Asterisk on processor(s) {cpus[1:]}, the client and Redis on processor {cpus[0]})")
    print(
        f"live: the whole dialer (Redis → decide → pacing → AMI), {N:,} contacts a round, median of {ROUNDS}: "
        f"{ours:,.0f} originations/s (rounds {_spread([r['rate'] for r in dialer])}; "
        f"failed {', '.join(str(int(r['failed'])) for r in dialer)}), peak {max(r['peak'] for r in dialer):,.0f} "
        f"calls in flight; worker CPU {statistics.median(r['cpu_s'] for r in dialer):.1f} s a round, "
        f"{max(r['rss_mb'] for r in dialer):.0f} MB max RSS"
    )
    print(
        f"  limit: a bare AMI client sending the same Originates on the same Asterisk, median of {ROUNDS}: "
        f"{rate:,.0f}/s (rounds {_spread([r['rate'] for r in bare])}; failed "
        f"{', '.join(str(int(r['failed'])) for r in bare)}; peak {max(r['peak'] for r in bare):,.0f}); "
        f"the dialer runs at {ours / rate:.2f}x of it (goal 0.9x)"
    )
    return {"dialer_per_s": ours, "bare_per_s": rate, "ratio": ours / rate}


if __name__ == "__main__":
    run()
