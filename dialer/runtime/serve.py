"""``python -m dialer serve``: scheduler + workers (+ HTTP API and dashboard) in one asyncio process.

Roles split the service for scaling out: ``--role scheduler``, ``--role worker``,
``--role api``, or ``all`` (the default). ``--workers N`` runs N worker processes
(this one and N-1 children) against the same Redis; more hosts scale the same way.

SIGTERM / SIGINT: stop taking work, let in-flight calls and SMS finish (up to
``--grace`` seconds), write their outcomes, and exit; entries not finished stay pending
in their stream and another worker reclaims them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

from dialer.clock import Clock, SimulatedClock
from dialer.runtime.console import live_progress, log_progress
from dialer.runtime.gc_tuning import tune_gc
from dialer.runtime.scheduler import Scheduler
from dialer.runtime.wiring import (
    Runtime,
    open_store,
    payments_for,
    publish_clock,
    sms_from_settings,
    telephony_from_settings,
)
from dialer.runtime.worker import Worker, WorkerConfig, default_consumer_name
from dialer.settings import Settings
from dialer.store import Store
from dialer.web.app import start_api
from ivr.server import start_ivr

log = logging.getLogger("regua.service")


@dataclass
class ServeOptions:
    role: str = "all"  # all | scheduler | worker | api | ivr
    workers: int = 1
    grace_s: float = 30.0
    progress: bool = False  # the live table (a terminal)
    progress_every_s: float = 0.0  # else a log line per campaign this often (0: none)
    realtime_calls: bool = True
    api: bool = True
    config_path: str | None = None


async def serve(
    settings: Settings,
    options: ServeOptions,
    *,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    on_ready: object = None,
) -> int:
    runtime = Runtime.build(settings, clock=clock, config_path=options.config_path)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with open_store(settings) as store:
        children = _spawn_workers(options, store, runtime.clock)
        try:
            return await _run_roles(runtime, store, options, stop, on_ready)
        finally:
            for child in children:
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    await asyncio.to_thread(child.wait, options.grace_s + 5)
                except subprocess.TimeoutExpired:
                    child.kill()


def _spawn_workers(options: ServeOptions, store: Store, clock: Clock) -> list[subprocess.Popen[bytes]]:
    if options.workers <= 1 or options.role not in ("all", "worker"):
        return []
    env = dict(os.environ)
    env["REDIS_URL"] = store.url  # the embedded server's too: the children share this one
    cmd = [
        sys.executable,
        "-m",
        "dialer",
        "serve",
        "--role",
        "worker",
        "--workers",
        "1",
        "--grace",
        str(options.grace_s),
    ]
    if isinstance(clock, SimulatedClock):  # SANDBOX: the children live in the same simulated time
        cmd += ["--clock-start", clock.now().isoformat(), "--speed", str(clock.speed)]
    if options.config_path:
        cmd[3:3] = ["--config", options.config_path]
    log.info("starting %d more worker process(es)", options.workers - 1)
    return [subprocess.Popen(cmd, env=env) for _ in range(options.workers - 1)]


async def _run_roles(
    runtime: Runtime, store: Store, options: ServeOptions, stop: asyncio.Event, on_ready: object
) -> int:
    settings = runtime.settings
    telephony = telephony_from_settings(settings, runtime.clock, store, realtime=options.realtime_calls)
    sms = sms_from_settings(settings, store, runtime.clock)
    payments = payments_for(runtime, store)
    payments.agreements.sms = sms  # an agreement's summary goes by SMS
    await telephony.start()
    tasks: list[asyncio.Task[object]] = []
    worker = None
    try:
        if options.role in ("all", "scheduler"):
            scheduler = Scheduler(store, runtime.clock)
            tasks.append(asyncio.create_task(scheduler.run(stop), name="scheduler"))
        if options.role in ("all", "worker"):
            worker = Worker(
                store,
                telephony,
                sms,
                settings,
                runtime.policy,
                runtime.cadence,
                runtime.clock,
                consumer=default_consumer_name(),
                config=WorkerConfig(
                    batch=settings.service.batch_size, concurrency=settings.service.worker_concurrency
                ),
                secret=runtime.secret,
                payments=payments,
            )
            runtime.listeners.append(worker.reconfigure)
            tasks.append(asyncio.create_task(worker.run(stop), name="worker"))
            tasks.append(asyncio.create_task(payments.run_maker(stop), name="charges"))
        if options.role in ("all", "scheduler"):
            tasks.append(asyncio.create_task(payments.run_reconciler(stop), name="reconciliation"))
            tasks.append(asyncio.create_task(payments.agreements.run_keeper(stop), name="agreements"))
        tune_gc()  # all is built and no task has run yet: freeze it, collect the young less often
        tasks.append(asyncio.create_task(runtime.watch_config(store, stop), name="config"))
        if isinstance(runtime.clock, SimulatedClock) and options.role in ("all", "scheduler"):
            tasks.append(asyncio.create_task(publish_clock(store, runtime.clock, stop), name="clock"))
        if settings.service.telephony == "asterisk" and options.role in ("all", "worker", "ivr"):
            agi = await start_ivr(runtime, store)
            tasks.append(asyncio.create_task(_until(stop, agi.close), name="ivr"))
        if options.api and options.role in ("all", "api"):
            try:
                runner = await start_api(runtime, store, telephony, sms, payments)
            except OSError as exc:  # the port is taken: say what to do, keep dialling
                log.error(
                    "HTTP API not started on %s:%d (%s): set DIALER_HTTP_PORT to a free port",
                    settings.service.http_host,
                    settings.service.http_port,
                    exc.strerror or exc,
                )
            else:
                tasks.append(asyncio.create_task(_until(stop, runner.cleanup), name="api"))
        if options.progress:
            tasks.append(
                asyncio.create_task(
                    live_progress(store, runtime.clock, stop, telephony=telephony), name="progress"
                )
            )
        elif options.progress_every_s > 0 and options.role in ("all", "scheduler"):
            tasks.append(
                asyncio.create_task(
                    log_progress(store, runtime.clock, stop, options.progress_every_s), name="progress"
                )
            )
        if callable(on_ready):
            on_ready()
        await stop.wait()
        log.info("stopping: finishing what is in flight (up to %.0fs)", options.grace_s)
        done, pending = await asyncio.wait(tasks, timeout=options.grace_s)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for t in done:
            if t.exception() is not None:
                log.error("%s ended with an error: %s", t.get_name(), t.exception())
        return 0
    finally:
        await telephony.close()
        await sms.close()
        await payments.provider.close()


async def _until(stop: asyncio.Event, cleanup: object) -> None:
    await stop.wait()
    if callable(cleanup):
        result = cleanup()
        if asyncio.iscoroutine(result):
            await result
