"""Helpers to run the real runtime (store, scheduler, worker, sandbox) against the test Redis."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from dialer.clock import ManualClock
from dialer.formats.campaign_file import RowDefaults
from dialer.rules.cadence import Cadence
from dialer.rules.policy import Policy
from dialer.runtime.ingest import LoadSummary, load_file
from dialer.runtime.scheduler import Scheduler
from dialer.runtime.worker import Worker, WorkerConfig
from dialer.settings import Settings
from dialer.store import Store
from dialer.telephony.sandbox import SandboxTelephony
from sms_gateway.sandbox import SandboxSms

HEADER = "account_id;name;phone;due_date;amount;consent_voice;consent_sms;verify_birth_year\n"


def with_asterisk(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with these ``[asterisk]`` keys changed (a trunk, a context, timeouts)."""
    return settings.model_copy(update={"asterisk": settings.asterisk.model_copy(update=changes)})


def campaign_csv(tmp: Path, rows: list[tuple[str, str, str]], name: str = "c.csv") -> Path:
    """rows: (account_id, phone, due date dd/mm/yyyy)."""
    path = tmp / name
    path.write_text(HEADER + "".join(f"{a};Pessoa {a};{p};{d};100,00;sim;sim;1980\n" for a, p, d in rows))
    return path


@dataclass
class Rig:
    store: Store
    settings: Settings
    policy: Policy
    cadence: Cadence
    clock: ManualClock
    telephony: SandboxTelephony
    sms: SandboxSms
    scheduler: Scheduler
    raw: Any  # a raw client: tests read what the store wrote

    async def close(self) -> None:
        if self.raw is not self.store._r:
            await self.raw.aclose()
        await self.store.close()

    def worker(self, name: str = "w1", **config: object) -> Worker:
        return Worker(
            self.store,
            self.telephony,
            self.sms,
            self.settings,
            self.policy,
            self.cadence,
            self.clock,
            consumer=name,
            config=WorkerConfig(**config),
            secret=b"test",
        )  # type: ignore[arg-type]

    async def load(self, path: Path, campaign: str = "c1", start: bool = True) -> LoadSummary:
        summary = await load_file(
            self.store,
            path,
            campaign,
            defaults=RowDefaults(True, True),
            secret=b"test",
            cadence=self.cadence,
            now=self.clock.now(),
            actor="test",
            errors_to=io.StringIO(),
        )
        if start:
            await self.store.transition(campaign, "start", self.clock.now(), "test")
        return summary

    async def drive(
        self, until: datetime, step: timedelta = timedelta(minutes=30), worker: Worker | None = None
    ) -> int:
        """Alternate scheduler and worker rounds while the clock walks to ``until``."""
        worker = worker or self.worker()
        total = 0
        while True:
            for _ in range(20):
                await self.scheduler.run_once()
                n = await worker.run_once()
                total += n
                if n == 0:
                    break
            if self.clock.now() >= until:
                return total
            self.clock.advance(seconds=step.total_seconds())


async def make_rig(url: str, settings: Settings, start: datetime) -> Rig:
    store = await Store.connect(url)
    clock = ManualClock(start)
    return Rig(
        store=store,
        settings=settings,
        policy=Policy.from_settings(settings),
        cadence=Cadence.from_settings(settings),
        clock=clock,
        telephony=SandboxTelephony(clock, realtime=False),
        sms=SandboxSms(store, clock),
        # a raw client of the same topology (one server, Sentinel's primary, a cluster)
        raw=aioredis.from_url(url, decode_responses=True) if url.startswith("redis://") else store._r,
        # the clock jumps: a scheduler with nothing due naps a fifth of a second, not 5 s
        scheduler=Scheduler(store, clock, max_backlog=100_000, max_sleep_s=0.2),
    )
