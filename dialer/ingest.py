"""Loading a campaign file into Redis: streamed, validated, upserted, summarised.

The file is read one row at a time (``CampaignReader``); good rows are upserted in
pipelined batches (``Store.upsert_batch``: account + phone + schedule entry in one
script per row, so loading the same file twice changes nothing and a changed row
updates). Every rejected row goes to ``--errors`` with line, column, value and reason.
A wrong header is refused before anything is written.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, time
from pathlib import Path
from typing import IO, Any

from dialer.cadence import Cadence, next_step
from dialer.campaign_file import CampaignReader, CampaignRow, RowDefaults, RowError, make_hasher
from dialer.local_time import locate
from dialer.records import pack_account, pack_phone, to_ms
from dialer.store import Store

BATCH = 2000


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
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def first_due(row: CampaignRow, cadence: Cadence, now: datetime) -> int:
    """When the account should first be looked at: its next step's local day (or now)."""
    tz = locate(row.phone.number, row.account.region, row.account.timezone).tzinfos[0]
    today = now.astimezone(tz).date()
    nxt = next_step(row.account, (), today, cadence)
    if nxt is None:
        return to_ms(now)
    start = datetime.combine(nxt.due_on, time(0), tz)
    return to_ms(max(start, now))


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
) -> LoadSummary:
    """Stream ``path`` into ``campaign``. Raises HeaderError before writing anything."""
    import time as _time

    started = _time.perf_counter()
    # local file reads are short and sequential: reading them inline keeps memory flat
    size = os.path.getsize(path)  # noqa: ASYNC240
    summary = LoadSummary(campaign, str(path))
    writer = csv.writer(errors_to) if errors_to is not None else None
    if writer is not None:
        writer.writerow(["line", "column", "value", "reason", "account_id"])
    with open(path, "rb") as fh:  # noqa: ASYNC230
        reader = CampaignReader(fh, defaults=defaults, hasher=make_hasher(secret), today=now.date())
        await store.create_campaign(campaign, now, actor)
        batch: list[tuple[str, str, str, str, int]] = []

        async def flush() -> None:
            if not batch:
                return
            for result in await store.upsert_batch(campaign, batch):
                if result == 0:
                    summary.unchanged += 1
                elif result == 2:
                    summary.updated += 1
                else:
                    summary.new += 1
                    summary.new_accounts += result == 1
            batch.clear()
            if progress is not None:
                progress(reader.bytes_read(), size)

        for item in reader:
            summary.rows_read += 1
            if isinstance(item, RowError):
                summary.rejected += 1
                if writer is not None:
                    for e in item.errors:
                        writer.writerow([item.line, e.column, e.value, e.reason, item.account_id])
                continue
            summary.accepted += 1
            batch.append(
                (
                    item.account.account_id,
                    pack_account(item.account),
                    "p:" + item.phone.number,
                    pack_phone(item.phone),
                    first_due(item, cadence, now),
                )
            )
            if len(batch) >= BATCH:
                await flush()
        await flush()
    if progress is not None:
        progress(size, size)
    await store.add_counts(campaign, accounts=summary.new_accounts, contacts=summary.new)
    summary.seconds = round(_time.perf_counter() - started, 3)
    await store.audit_campaign(campaign, now, actor, "loaded", summary.as_dict())
    await store.wake(campaign)
    return summary
