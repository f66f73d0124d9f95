"""Loading a synthetic campaign file with validation, beside ``redis-cli --pipe`` (the limit).

    python -m bench load_bench            # 1,000,000 rows (BENCH_ROWS to change)

Both load the same records into fresh redis-servers: Régua streams, validates every row
and upserts it with its schedule entry (one Lua script per batch of rows); ``redis-cli --pipe`` is
fed the equivalent HSET + ZADD commands already in wire format and does nothing else.
Peak memory is the loading process's own (VmHWM); bytes per contact come from
Redis ``INFO memory`` before and after.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.synthetic import write
from dialer.store.embedded import EmbeddedRedis

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))


def _child(csv_path: str, url: str) -> None:
    """Run in a separate process so its peak memory is the loader's alone."""
    from datetime import datetime

    from dialer.formats.campaign_file import RowDefaults
    from dialer.formats.config_file import load_settings
    from dialer.rules.cadence import Cadence
    from dialer.runtime.ingest import load_file
    from dialer.store import Store

    async def main() -> dict[str, float]:
        store = await Store.connect(url)
        settings = load_settings(env={})
        t0 = time.perf_counter()
        summary = await load_file(
            store,
            csv_path,
            "bench",
            defaults=RowDefaults(True, True),
            secret=b"k",
            cadence=Cadence.from_settings(settings),
            now=datetime.fromisoformat("2026-11-23T10:00:00-03:00"),
            actor="bench",
        )
        elapsed = time.perf_counter() - t0
        await store.close()
        return {"seconds": elapsed, "accepted": summary.accepted, "rejected": summary.rejected}

    from dialer.runtime.wiring import run_async

    out = run_async(main())
    out["peak_mb"] = _peak_rss_mb()
    print(json.dumps(out))


def _peak_rss_mb() -> float:
    """This process's peak resident memory. ``VmHWM`` belongs to the program now running;
    ``ru_maxrss`` also keeps the peak of the process it was forked from (Linux carries it
    across exec), which would count the benchmarks run before this one."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _resp(*args: str) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def _wire_file(csv_path: Path, out: Path) -> None:
    """The same records as plain HSET + ZADD in the Redis protocol (no validation at all)."""
    import io

    from dialer.formats.campaign_file import CampaignReader, CampaignRow, RowDefaults
    from dialer.store.codec import pack_account, pack_phone

    with open(csv_path, "rb") as fh, open(out, "wb") as dst:
        buf = io.BytesIO()
        for row in CampaignReader(fh, defaults=RowDefaults(True, True), check_duplicates=False):
            if not isinstance(row, CampaignRow):
                continue
            key = f"regua:{{c:bench}}:a:{row.account.account_id}"
            buf.write(
                _resp(
                    "HSET",
                    key,
                    "a",
                    pack_account(row.account),
                    "p:" + row.phone.number,
                    pack_phone(row.phone),
                )
            )
            buf.write(_resp("ZADD", "regua:{c:bench}:schedule", "1795000000000", row.account.account_id))
            if buf.tell() > 1 << 20:
                dst.write(buf.getvalue())
                buf = io.BytesIO()
        dst.write(buf.getvalue())


def run() -> dict[str, float]:
    import redis

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = write(Path(tmp) / "big.csv", ROWS, seed=5)
        size_mb = csv_path.stat().st_size / 1e6
        with EmbeddedRedis(Path(tmp) / "r1", appendonly=False) as server:
            client = redis.Redis(port=server.port)
            before = client.info("memory")["used_memory"]
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"from bench.load_bench import _child; _child({str(csv_path)!r}, {server.url!r})",
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            ours = json.loads(proc.stdout.strip().splitlines()[-1])
            after = client.info("memory")["used_memory"]
            contacts = ours["accepted"]
            client.close()
        wire = Path(tmp) / "wire.resp"
        _wire_file(csv_path, wire)
        cli = Path(EmbeddedRedis(tmp).binary).with_name("redis-cli")
        with EmbeddedRedis(Path(tmp) / "r2", appendonly=False) as server, open(wire, "rb") as fh:
            t0 = time.perf_counter()
            subprocess.run(
                [str(cli), "-p", str(server.port), "--pipe"], stdin=fh, capture_output=True, check=True
            )
            pipe_s = time.perf_counter() - t0
    rate = contacts / ours["seconds"]
    print(
        f"load: {ROWS:,} rows ({size_mb:.0f} MB CSV) validated and upserted in {ours['seconds']:.1f}s = "
        f"{rate:,.0f} rows/s; peak memory {ours['peak_mb']:.0f} MB (targets: < 60 s, < 300 MB)"
    )
    print(
        f"  limit: redis-cli --pipe with the same records, no validation: {pipe_s:.1f}s = "
        f"{contacts / pipe_s:,.0f} rows/s; Régua takes {ours['seconds'] / pipe_s:.1f}x that"
    )
    print(
        f"  Redis memory: {(after - before) / contacts:.0f} bytes per loaded contact "
        f"({(after - before) / 1e6:.0f} MB for {contacts:,})"
    )
    return {
        "seconds": ours["seconds"],
        "peak_mb": ours["peak_mb"],
        "pipe_seconds": pipe_s,
        "bytes_per_contact": (after - before) / contacts,
    }


if __name__ == "__main__":
    run()
