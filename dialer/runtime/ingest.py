"""Loading a campaign file into Redis: streamed, validated, upserted, summarised.

The file is read one row at a time (``CampaignReader``); good rows are upserted in
pipelined batches (``Store.upsert_batch``: account + phone + schedule entry in one
script per row, so loading the same file twice changes nothing and a changed row
updates). Every rejected row goes to ``--errors`` with line, column, value and reason.
A wrong header is refused before anything is written.
"""

from __future__ import annotations

import asyncio
import csv
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, datetime
from datetime import time as clock_time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from dialer.domain import Account, AccountStatus, PaymentMethod
from dialer.formats.campaign_file import CampaignReader, CampaignRow, RowDefaults, RowError, RowParser
from dialer.rules.cadence import Cadence, next_step
from dialer.rules.local_time import locate
from dialer.store import Store
from dialer.store.codec import pack_account, pack_phone, to_ms, unpack_account

BATCH = 500
# what makes the charges of newly loaded debts (``Payments.queue_for``)
Charges = Callable[[str, list[Account], datetime], Awaitable[int]]


@dataclass
class LoadSummary:
    campaign: str
    file: str
    rows_read: int = 0
    accepted: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    new_accounts: int = 0
    charges: int = 0  # new charges queued (one per debt: a reload queues none)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FirstDue:
    """When an account is first looked at: the start of its régua's first step's local day.

    Loading never reads the clock for this: whatever clock the service runs on (the wall
    clock, or the sandbox's simulated one started at another date), an account loaded
    today is due at the same instant, and the worker decides at dispatch, on its own
    clock, which step is due then (the catch-up rule) and whether the rules allow it. An
    account loaded after its first step's day is therefore due at once.

    Many rows share a due date: the answer depends only on (due date, payment method,
    status, zone), so it is computed once per distinct tuple.
    """

    def __init__(self, cadence: Cadence) -> None:
        self.cadence = cadence
        self._cache: dict[tuple[date, PaymentMethod, AccountStatus, ZoneInfo], int] = {}

    def __call__(self, row: CampaignRow) -> int:
        a = row.account
        tz = locate(row.phone.number, a.region, a.timezone).tzinfos[0]
        key = (a.due_date, a.payment_method, a.status, tz)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = first_look(self.cadence, *key)
        return found


def first_look(
    cadence: Cadence, due: date, method: PaymentMethod, status: AccountStatus, tz: ZoneInfo
) -> int:
    """Epoch ms of the start of the first step's local day (the due date's, when no step is
    ahead or the account is not open: the worker then records that there is nothing to do)."""
    probe = Account("", "", due, Decimal(1), payment_method=method, status=status)
    nxt = next_step(probe, (), date.min, cadence)
    return to_ms(datetime.combine(nxt.due_on if nxt is not None else due, clock_time(0), tz))


# a file bigger than this is validated in worker processes (the machine's other cores)
PARALLEL_FROM_BYTES = 4 * 1024 * 1024
CHUNK = 2000

_worker_state: dict[str, Any] = {}


def _init_worker(parser: RowParser, cadence: Cadence) -> None:
    _worker_state.update(parser=parser, first_due=FirstDue(cadence))


def _validate_chunk(records: list[tuple[int, dict[str, str]] | RowError]) -> list[Any]:
    """In a worker process: validate and pack a chunk of records."""
    parser: RowParser = _worker_state["parser"]
    first_due: FirstDue = _worker_state["first_due"]
    out: list[Any] = []
    for rec in records:
        if isinstance(rec, RowError):
            out.append(rec)
            continue
        row = parser.parse(*rec)
        out.append(row if isinstance(row, RowError) else _packed(row, first_due))
    return out


def _packed(row: CampaignRow, first_due: FirstDue) -> tuple[int, str, str, str, str, str, int]:
    return (
        row.line,
        row.account.account_id,
        row.phone.number,
        pack_account(row.account),
        "p:" + row.phone.number,
        pack_phone(row.phone),
        first_due(row),
    )


async def load_file(
    store: Store,
    path: str | Path,
    campaign: str,
    *,
    defaults: RowDefaults,
    secret: bytes,
    cadence: Cadence,
    now: datetime,
    actor: str,
    errors_to: IO[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    processes: int | None = None,
    charges: Charges | None = None,
) -> LoadSummary:
    """Stream ``path`` into ``campaign``. Raises HeaderError before writing anything.

    ``processes``: validation worker processes (default: none for small files, else the
    machine's cores minus one, at least one).
    """
    started = time.perf_counter()
    # local file reads are short and sequential: reading them inline keeps memory flat
    size = os.path.getsize(path)  # noqa: ASYNC240
    summary = LoadSummary(campaign, str(path))
    writer = csv.writer(errors_to) if errors_to is not None else None
    if writer is not None:
        writer.writerow(["line", "column", "value", "reason", "account_id"])
    if processes is None:
        processes = 0 if size < PARALLEL_FROM_BYTES else max(1, (os.cpu_count() or 2) - 1)
    with open(path, "rb") as fh:  # noqa: ASYNC230
        reader = CampaignReader(fh, defaults=defaults, secret=secret, today=now.date())
        await store.create_campaign(campaign, now, actor)
        batch: list[tuple[str, str, str, str, int]] = []
        writing: asyncio.Task[None] | None = None

        async def write(rows: list[tuple[str, str, str, str, int]]) -> None:
            results = await store.upsert_batch(campaign, rows)
            if charges is not None:
                accounts = {r[0]: r[1] for r in rows}  # one per account: its last row's data
                summary.charges += await charges(
                    campaign, [unpack_account(a, packed) for a, packed in accounts.items()], now
                )
            for result in results:
                if result == 0:
                    summary.unchanged += 1
                elif result == 2:
                    summary.updated += 1
                else:
                    summary.new += 1
                    summary.new_accounts += result == 1

        async def flush() -> None:
            nonlocal batch, writing
            if writing is not None:  # one write in flight: rows of one account stay in file order
                await writing
            if batch:
                writing = asyncio.create_task(write(batch))
                batch = []
            if progress is not None:
                progress(reader.bytes_read(), size)

        def reject(item: RowError) -> None:
            summary.rejected += 1
            if writer is not None:
                for e in item.errors:
                    writer.writerow([item.line, e.column, e.value, e.reason, item.account_id])

        async def take(item: Any) -> None:
            summary.rows_read += 1
            if isinstance(item, RowError):
                reject(item)
                return
            line, account_id, number, acc, phone_field, phone, score = item
            dup = reader.duplicate(line, account_id, number)
            if dup is not None:
                reject(dup)
                return
            summary.accepted += 1
            batch.append((account_id, acc, phone_field, phone, score))
            if len(batch) >= BATCH:
                await flush()

        if processes <= 0:
            parse = reader.parser.parse
            first_due = FirstDue(cadence)
            for rec in reader.records():
                if isinstance(rec, RowError):
                    await take(rec)
                    continue
                row = parse(*rec)
                await take(row if isinstance(row, RowError) else _packed(row, first_due))
        else:
            loop = asyncio.get_running_loop()
            with ProcessPoolExecutor(
                processes, initializer=_init_worker, initargs=(reader.parser, cadence)
            ) as pool:
                in_flight: deque[asyncio.Future[list[Any]]] = deque()
                chunk: list[Any] = []
                for rec in reader.records():
                    chunk.append(rec)
                    if len(chunk) >= CHUNK:
                        in_flight.append(loop.run_in_executor(pool, _validate_chunk, chunk))
                        chunk = []
                        while len(in_flight) > processes * 2:
                            for item in await in_flight.popleft():
                                await take(item)
                if chunk:
                    in_flight.append(loop.run_in_executor(pool, _validate_chunk, chunk))
                while in_flight:
                    for item in await in_flight.popleft():
                        await take(item)
        await flush()
        if writing is not None:
            await writing
    if progress is not None:
        progress(size, size)
    await store.add_counts(campaign, accounts=summary.new_accounts, contacts=summary.new)
    summary.seconds = round(time.perf_counter() - started, 3)
    await store.audit_campaign(campaign, now, actor, "loaded", summary.as_dict())
    await store.wake(campaign)
    return summary
