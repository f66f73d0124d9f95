"""SMS through a real adapter: messages per second from one process, idempotency on.

A fresh redis-server and a Twilio-shaped HTTP server (``POST …/Messages.json``, basic
auth, form fields, a 201 with the message resource) are started for the run, the server
in its own process so that the sender keeps a core to itself. N messages with distinct
idempotency keys go through ``ResilientSms(TwilioSms)`` — Redis claim and record per
message, token bucket (set well above the target, so it is exercised but does not
bind), circuit breaker — with ``CONCURRENCY`` in flight.

The limit beside it: the same server hammered by a bare aiohttp loop with the same
concurrency and the same form POST, and no logic at all.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time

N = 5000
CONCURRENCY = 100
TARGET = 500

SERVER = textwrap.dedent(
    """
    import sys, uuid, uvloop
    from aiohttp import web

    async def create(request):
        form = await request.post()
        if request.headers.get("Authorization", "")[:6] != "Basic " or "To" not in form:
            return web.json_response({"code": 20003, "message": "Authenticate", "status": 401}, status=401)
        sid = "SM" + uuid.uuid4().hex
        return web.json_response(
            {"sid": sid, "status": "queued", "to": form["To"], "body": form["Body"], "num_segments": "1"},
            status=201,
        )

    async def main():
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", create)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    import asyncio
    uvloop.run(main())
    """
)

ACCOUNT = "AC" + "0" * 32


async def _bare(url: str, n: int) -> float:
    """The limit: the same POSTs with nothing around them."""
    import aiohttp

    form = {"To": "+5511987654321", "From": "+15550001111", "Body": "Pague sua fatura pelo Pix."}
    headers = {"Authorization": aiohttp.encode_basic_auth(ACCOUNT, "bench-token")}
    queue = iter(range(n))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def lane() -> None:
            for _ in queue:
                async with session.post(url, data=form, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 201

        t0 = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
        return n / (time.perf_counter() - t0)


async def _through_regua(api: str, redis_url: str, n: int) -> tuple[float, int, int]:
    import redis.asyncio as aioredis

    from dialer.store import Store, keys
    from sms_gateway.base import SmsMessage
    from sms_gateway.resilient import LanePolicy, ResiliencePolicy, ResilientSms
    from sms_gateway.twilio import TwilioConfig, TwilioSms

    client = aioredis.from_url(redis_url, decode_responses=True, max_connections=CONCURRENCY)
    store = await Store.connect(redis_url)
    twilio = TwilioSms(TwilioConfig(ACCOUNT, "bench-token", from_number="+15550001111", api_base=api))
    gateway = ResilientSms(
        twilio,
        ledger=store,
        policy=ResiliencePolicy(),
        primary_lane=LanePolicy(rate=20_000, burst=CONCURRENCY),
    )
    messages = [
        SmsMessage("+5511987654321", "Pague sua fatura pelo Pix.", f"bench:{i}", "bench") for i in range(n)
    ]
    # warm up: connections to Redis and the server, scripts loaded
    await asyncio.gather(*(gateway.send(SmsMessage("+5511987654321", "x", f"warm:{i}")) for i in range(50)))
    queue = iter(messages)
    duplicates = 0

    async def lane() -> None:
        nonlocal duplicates
        for m in queue:
            duplicates += (await gateway.send(m)).duplicate

    t0 = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - t0
    sent = await client.hgetall(keys.SMS_SENT)
    recorded = sum(1 for k, v in sent.items() if k.startswith("bench:") and v.startswith("twilio:SM"))
    await gateway.close()
    await client.aclose()
    await store.close()
    return n / elapsed, duplicates, recorded


def run() -> dict[str, float]:
    from dialer.runtime.wiring import run_async
    from dialer.store.embedded import EmbeddedRedis

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, env=env)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        api = f"http://127.0.0.1:{port}"
        url = f"{api}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
        with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, appendonly=False) as redis_server:
            rate, duplicates, recorded = run_async(_through_regua(api, redis_server.url, N))
            bare = run_async(_bare(url, N))
    finally:
        server.terminate()
        server.wait(10)
    print(
        f"sms: {N:,} messages through ResilientSms(Twilio adapter) with Redis idempotency and the shared rate limit = {rate:,.0f} SMS/s "
        f"from one process, {CONCURRENCY} in flight ({recorded:,} recorded, {duplicates} duplicates); "
        f"target >= {TARGET}/s"
    )
    print(
        f"  limit: the same server hammered by a bare aiohttp loop = {bare:,.0f} requests/s; "
        f"the adapter runs at {rate / bare:.0%} of it"
    )
    return {"sms_per_s": rate, "bare_per_s": bare}


if __name__ == "__main__":
    run()
