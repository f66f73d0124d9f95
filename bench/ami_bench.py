"""Voice through AMI: originations per second, calls in flight, memory, and event parsing.

1. One AsteriskTelephony (one worker process) against the in-process AMI simulator with
   calls that ring for 8 s: how fast Originates go out, how many calls are in flight at
   once, and whether memory stays flat between two rounds.
2. AMI event parsing: the same byte stream of channel events read by panoramisk's
   protocol (what the adapter uses) and by a bare socket reader that only splits it into
   messages (the limit).
"""

from __future__ import annotations

import asyncio
import gc
import resource
import tempfile
import time
from datetime import date
from decimal import Decimal

from dialer.clock import SystemClock
from dialer.domain import Account, Consent, Phone
from dialer.formats.config_file import load_settings
from dialer.store import Store
from dialer.store.embedded import EmbeddedRedis
from dialer.telephony.ami_simulator import AmiServer, message
from dialer.telephony.asterisk import AmiUrl, AsteriskTelephony
from dialer.telephony.base import CallRequest

CALLS = 2000
EVENTS = 200_000


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


async def _originate(store: Store, n: int, rounds: int = 2) -> dict[str, float]:
    settings = load_settings(env={})
    trunk = settings.asterisk.trunks[0].model_copy(update={"max_channels": 10_000, "cps": 10_000})
    cfg = settings.asterisk.model_copy(
        update={"trunks": (trunk,), "campaign_max_channels": 10_000, "ring_timeout_s": 30}
    )
    settings = settings.model_copy(update={"asterisk": cfg})
    sim = AmiServer(ring_s=8.0)  # every call rings 8 s, then busy: calls pile up in flight
    await sim.start()
    voice = AsteriskTelephony(
        settings, store, SystemClock(), [AmiUrl("regua", "s3cret", "127.0.0.1", sim.port)]
    )
    await voice.start()
    account = Account("A", "Ana", date(2026, 11, 1), Decimal(10))
    out: dict[str, float] = {}
    rss = []
    for r in range(rounds):
        sent_before = sim.originated
        peak = 0
        t0 = time.perf_counter()
        tasks = [
            asyncio.create_task(
                voice.place_call(
                    CallRequest(
                        f"b:{r}-{i}",
                        "bench",
                        account,
                        Phone(f"+55119{r}{i:07d}4", consent=Consent(True, True)),
                        "s",
                    )
                )
            )
            for i in range(n)
        ]
        while sim.originated - sent_before < n:
            peak = max(peak, len(voice.calls))
            await asyncio.sleep(0.01)
        sent_s = time.perf_counter() - t0
        peak = max(peak, len(voice.calls))
        await asyncio.gather(*tasks)
        gc.collect()
        rss.append(_rss_mb())
        out = {"originate_per_s": n / sent_s, "peak_in_flight": peak}
    await voice.close()
    await sim.close()
    out["rss_round1_mb"], out["rss_round2_mb"] = rss[0], rss[-1]
    return out


async def _parse(n: int) -> dict[str, float]:
    import panoramisk

    events = []
    for i in range(n // 3):
        base = {
            "Channel": f"PJSIP/trunk-{i:08x}",
            "Uniqueid": f"regua-{i:024x}",
            "Linkedid": f"regua-{i:024x}",
        }
        events.append(
            message(
                Event="Newchannel",
                Privilege="call,all",
                ChannelState="0",
                ChannelStateDesc="Down",
                Exten="s",
                **base,
            )
        )
        events.append(
            message(Event="Newstate", Privilege="call,all", ChannelState="6", ChannelStateDesc="Up", **base)
        )
        events.append(
            message(Event="Hangup", Privilege="call,all", Cause="16", **{"Cause-txt": "Normal"}, **base)
        )
    stream = b"".join(events)
    count = len(events)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # as Asterisk does: the banner, then a login and its reply, then the events
        writer.write(b"Asterisk Call Manager/9.0.0\r\n")
        await writer.drain()
        login = await reader.readuntil(b"\r\n\r\n")
        action_id = next(
            (ln.split(b": ", 1)[1] for ln in login.split(b"\r\n") if ln.startswith(b"ActionID")), b""
        )
        writer.write(
            b"Response: Success\r\nActionID: " + action_id + b"\r\nMessage: Authentication accepted\r\n\r\n"
        )
        writer.write(stream)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    # the limit: read the bytes and split them into messages, nothing else
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()
    writer.write(b"Action: Login\r\nActionID: 1\r\nUsername: u\r\nSecret: s\r\n\r\n")
    messages = -1  # the login reply is not an event
    tail = b""
    while chunk := await reader.read(1 << 16):
        parts = (tail + chunk).split(b"\r\n\r\n")
        tail = parts.pop()
        messages += len(parts)
    bare_s = time.perf_counter() - t0
    writer.close()

    # panoramisk's protocol with our dispatch (every event reaches a callback)
    loop = asyncio.get_running_loop()
    got = 0
    done = loop.create_future()

    manager = panoramisk.Manager(
        host="127.0.0.1", port=port, loop=loop, ping_delay=3600, username="u", secret="s"
    )

    def on_event(m: object, e: object) -> None:
        nonlocal got
        got += 1
        if got >= count and not done.done():
            done.set_result(None)

    manager.register_event("*", on_event)
    manager.connection_lost = lambda exc: None  # the stream ends: no reconnect during the bench
    t0 = time.perf_counter()
    await manager.connect()
    await asyncio.wait_for(done, 120)
    parse_s = time.perf_counter() - t0
    manager.close()
    server.close()
    return {"events": count, "bare_per_s": messages / bare_s, "panoramisk_per_s": got / parse_s}


def run() -> dict[str, float]:
    async def main() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, appendonly=False) as server:
            store = await Store.connect(server.url)
            o = await _originate(store, CALLS)
            await store.close()
        p = await _parse(EVENTS)
        return {**o, **p}

    from dialer.runtime.wiring import run_async

    r = run_async(main())
    print(
        f"originate: {CALLS:,} calls placed at {r['originate_per_s']:,.0f} originations/s, "
        f"{r['peak_in_flight']:,.0f} calls in flight at the peak, one worker process "
        f"(targets: >= 200/s, >= 1,000 in flight)"
    )
    print(
        f"  memory: {r['rss_round1_mb']:.0f} MB after round 1, {r['rss_round2_mb']:.0f} MB after round 2 "
        f"(flat means no leak per call)"
    )
    print(
        f"AMI events: {r['events']:,} parsed by panoramisk at {r['panoramisk_per_s']:,.0f} events/s; "
        f"limit: a bare socket reader splitting the same stream at {r['bare_per_s']:,.0f} messages/s "
        f"(panoramisk runs at {r['panoramisk_per_s'] / r['bare_per_s']:.0%} of it)"
    )
    return r


if __name__ == "__main__":
    run()
