"""Payment webhooks: payments settled per second by one Régua process.

A fresh redis-server; a campaign of N accounts loaded (one charge each); the real web app
(``create_app``: body limit, error and auth middlewares, security headers) with the payment
side on the generic signed provider, in its own process. A client in this process posts N
signed webhooks, one payment per account, ``CONCURRENCY`` at a time. Each one is
authenticated (HMAC over the raw body, timestamp window, replay check in Redis), recorded
once, settled (the account paid in its campaign through ``set_account_status``: a stale
claim for any worker), attributed, counted and audited. At the end every account must be
paid.

The limit beside it: a bare aiohttp handler in its own process that reads the body and
answers the same JSON, hit by the same client loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

N = 5000
CONCURRENCY = 64
TARGET = 1000
SECRET = "bench-secret-0123456789abcdef"

REGUA = textwrap.dedent(
    """
    import asyncio, sys, uvloop
    from aiohttp import web
    from dialer.clock import SystemClock
    from dialer.formats.config_file import load_settings
    from dialer.rules.cadence import Cadence
    from dialer.rules.policy import Policy
    from dialer.runtime.payments import Payments
    from dialer.runtime.wiring import Runtime
    from dialer.store import Store
    from dialer.web import auth
    from dialer.web.app import create_app
    from dialer.web.common import Services
    from payments.signed import SignedWebhookProvider

    async def main():
        settings = load_settings(env={})
        runtime = Runtime(settings, Policy.from_settings(settings), Cadence.from_settings(settings), SystemClock(), b"bench")
        store = await Store.connect(sys.argv[1])
        payments = Payments(store, SignedWebhookProvider(sys.argv[2]), runtime)
        app = create_app(Services(runtime, store, None, None, auth.TokenBook(()), payments=payments))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())
    """
)

BARE = textwrap.dedent(
    """
    import asyncio, uvloop
    from aiohttp import web

    async def handle(request):
        await request.read()
        return web.json_response({"events": 1, "accepted": 1, "duplicates": 0, "unknown": 0, "paid_accounts": []})

    async def main():
        app = web.Application()
        app.router.add_post("/webhooks/payments/signed", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())
    """
)


def _bodies(n: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "id": f"bench-{i}",
                "type": "payment",
                "account_id": f"B{i:06d}",
                "amount": "150.00",
                "paid_at": "2026-11-23T10:00:00-03:00",
                "method": "pix",
            }
        ).encode()
        for i in range(n)
    ]


async def _post_all(port: int, bodies: list[bytes]) -> tuple[float, int]:
    import aiohttp

    from payments.signed import HEADER, sign

    url = f"http://127.0.0.1:{port}/webhooks/payments/signed"
    queue = iter(bodies)
    failures = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:

        async def lane() -> None:
            nonlocal failures
            for body in queue:
                headers = {HEADER: sign(SECRET, body, int(time.time())), "Content-Type": "application/json"}
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    failures += resp.status != 200

        # warm up the connections (and the server's code paths) with a few refused requests
        async with session.post(url, data=b"{}") as resp:
            await resp.read()
        t0 = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(CONCURRENCY)))
        return len(bodies) / (time.perf_counter() - t0), failures


async def _load(redis_url: str, n: int, tmp: str) -> None:
    from dialer.clock import SystemClock
    from dialer.formats.config_file import load_settings
    from dialer.rules.cadence import Cadence
    from dialer.rules.policy import Policy
    from dialer.runtime.ingest import load_file
    from dialer.runtime.payments import Payments
    from dialer.runtime.wiring import Runtime
    from dialer.store import Store
    from payments.signed import SignedWebhookProvider

    path = os.path.join(tmp, "bench.csv")
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("account_id;name;phone;due_date;amount\n")
        for i in range(n):
            fh.write(f"B{i:06d};Pessoa {i};+55119{i % 100_000_000:08d};01/11/2026;150,00\n")
    settings = load_settings(env={})
    runtime = Runtime(
        settings, Policy.from_settings(settings), Cadence.from_settings(settings), SystemClock(), b"bench"
    )
    store = await Store.connect(redis_url)
    payments = Payments(store, SignedWebhookProvider(SECRET), runtime)
    await load_file(
        store,
        path,
        "bench",
        defaults=payments.row_defaults(True, True),
        secret=b"bench",
        cadence=runtime.cadence,
        now=runtime.clock.now(),
        actor="bench",
        charges=payments.on_load,
    )
    await store.transition("bench", "start", runtime.clock.now(), "bench")
    await store.close()


async def _paid(redis_url: str, n: int) -> int:
    from dialer.domain import AccountStatus
    from dialer.store import Store

    store = await Store.connect(redis_url)
    ids = [f"B{i:06d}" for i in range(n)]
    paid = 0
    for k in range(0, n, 500):
        for state in await store.load_accounts("bench", ids[k : k + 500]):
            paid += state is not None and state.account.status is AccountStatus.PAID
    await store.close()
    return paid


def _serve(code: str, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def run() -> dict[str, float]:
    from dialer.runtime.wiring import run_async
    from dialer.store.embedded import EmbeddedRedis

    bodies = _bodies(N)
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, appendonly=False) as redis_server:
        run_async(_load(redis_server.url, N, tmp))
        regua, port = _serve(REGUA, redis_server.url, SECRET)
        try:
            rate, failures = run_async(_post_all(port, bodies))
        finally:
            regua.terminate()
            regua.wait(10)
        paid = run_async(_paid(redis_server.url, N))
    bare_proc, bare_port = _serve(BARE)
    try:
        bare, _ = run_async(_post_all(bare_port, bodies))
    finally:
        bare_proc.terminate()
        bare_proc.wait(10)
    print(
        f"webhooks: {N:,} signed payment webhooks through the real app = {rate:,.0f} payments/s from one process, "
        f"{CONCURRENCY} in flight ({paid:,} of {N:,} accounts paid, {failures} non-200); target >= {TARGET:,}/s"
    )
    print(
        f"  limit: a bare aiohttp handler reading the same bodies = {bare:,.0f} requests/s; Régua at {rate / bare:.0%} of it"
    )
    return {"payments_per_s": rate, "bare_per_s": bare}


if __name__ == "__main__":
    run()
