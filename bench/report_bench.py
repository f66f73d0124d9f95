"""The campaign report: accounts per second from Redis to CSV rows, beside a bare scan.

    python -m bench report_bench          # 100,000 accounts (BENCH_REPORT_ROWS to change)

A fresh redis-server gets a synthetic campaign; the report streams every account
(``Store.iter_accounts``: SCAN, the accounts' hashes, schedule scores and suppressions in
batches) into CSV rows written to nowhere. The limit beside it: the same SCAN and
pipelined HGETALLs with no parsing and no CSV.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import time
from datetime import datetime
from pathlib import Path

import redis.asyncio as aioredis

from bench.synthetic import write
from dialer.formats.campaign_file import RowDefaults
from dialer.formats.config_file import load_settings
from dialer.formats.report import COLUMNS, report_row
from dialer.rules.cadence import Cadence
from dialer.runtime.ingest import load_file
from dialer.store import Store
from dialer.store.embedded import EmbeddedRedis

ROWS = int(os.environ.get("BENCH_REPORT_ROWS", "100000"))


async def _run(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(tmp, appendonly=False) as server:
        settings = load_settings(env={})
        store = await Store.connect(server.url)
        now = datetime.fromisoformat("2026-11-23T10:00:00-03:00")
        await load_file(
            store,
            write(Path(tmp) / "c.csv", n, seed=11, today=now.date()),
            "bench",
            defaults=RowDefaults(True, True),
            secret=b"k",
            cadence=Cadence.from_settings(settings),
            now=now,
            actor="bench",
        )
        accounts = (await store.status("bench"))["accounts"]
        sink = io.StringIO()
        writer = csv.DictWriter(sink, fieldnames=COLUMNS)
        t0 = time.perf_counter()
        rows = 0
        async for batch in store.iter_accounts("bench"):
            for state, next_at, suppressed in batch:
                writer.writerow(report_row(state.account, state.phones, state.history, next_at, suppressed))
            rows += len(batch)
            sink.seek(0)
            sink.truncate()
        report_s = time.perf_counter() - t0
        # the limit: the same keys scanned and read, nothing else
        raw = aioredis.from_url(store.url, decode_responses=True)  # the limit runs on a bare client
        t1 = time.perf_counter()
        keys_: list[str] = []
        async for key in raw.scan_iter(match="regua:{c:bench}:a:*", count=1000, _type="hash"):
            keys_.append(key)
            if len(keys_) >= 500:
                async with raw.pipeline(transaction=False) as p:
                    for k in keys_:
                        p.hgetall(k)
                    await p.execute()
                keys_ = []
        if keys_:
            async with raw.pipeline(transaction=False) as p:
                for k in keys_:
                    p.hgetall(k)
                await p.execute()
        bare_s = time.perf_counter() - t1
        await raw.aclose()
        await store.close()
    rate, bare = rows / report_s, accounts / bare_s
    print(
        f"report: {rows:,} accounts of {accounts:,} to CSV rows in {report_s:.2f}s = {rate:,.0f} accounts/s\n"
        f"  limit: SCAN + pipelined HGETALL of the same hashes = {bare:,.0f}/s; the report runs at {rate / bare:.0%} of it"
    )
    return {"accounts_per_s": rate, "bare_per_s": bare}


def run() -> dict[str, float]:
    from dialer.runtime.wiring import run_async

    return run_async(_run(ROWS))  # type: ignore[no-any-return]


if __name__ == "__main__":
    run()
