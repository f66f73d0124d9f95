"""Running the service: ``serve`` (scheduler, workers, API, IVR) and the SANDBOX ``demo``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
from datetime import datetime

from dialer.cli.common import Command
from dialer.clock import SimulatedClock
from dialer.errors import InputError
from dialer.formats.config_file import load_settings
from dialer.runtime import people
from dialer.runtime.ingest import load_file
from dialer.runtime.serve import ServeOptions
from dialer.runtime.serve import serve as run_service
from dialer.runtime.wiring import Runtime, open_store, payments_for, run_async
from dialer.settings import PROJECT_ROOT
from dialer.store import Store

SAMPLE_CAMPAIGN = PROJECT_ROOT / "config" / "sample_campaign.csv"


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", choices=["all", "scheduler", "worker", "api", "ivr"], default="all")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default from config)")
    p.add_argument("--grace", type=float, default=30.0, help="seconds to finish in-flight work on stop")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live progress in the terminal (default: when attached to one)",
    )
    p.add_argument("--no-api", action="store_true", help="do not serve the HTTP API / dashboard")
    p.add_argument("--clock-start", help="SANDBOX: run on a simulated clock starting here (ISO 8601)")
    p.add_argument("--speed", type=float, default=1.0, help="SANDBOX: simulated clock speed-up")


def _setup_logging(quiet: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def serve(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    clock = None
    if args.clock_start:
        if settings.service.telephony != "sandbox":
            raise InputError("--clock-start is for the sandbox only: real calls run on real time")
        clock = SimulatedClock(datetime.fromisoformat(args.clock_start), args.speed)
    options = ServeOptions(
        role=args.role,
        workers=args.workers or settings.service.workers,
        grace_s=args.grace,
        progress=sys.stdout.isatty() if args.progress is None else args.progress,
        progress_every_s=60.0,  # without a terminal: a status line per campaign a minute
        api=not args.no_api,
        config_path=args.config,
    )
    _setup_logging(quiet=options.progress)
    return run_async(run_service(settings, options, clock=clock))


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--speed",
        type=float,
        default=3600.0,
        help="simulated seconds per real second (default 3600: an hour a second)",
    )
    p.add_argument("--start", default="2026-11-23T07:30:00-03:00", help="simulated start (ISO 8601)")
    p.add_argument("--file", default=str(SAMPLE_CAMPAIGN))
    p.add_argument("--seconds", type=float, default=0, help="stop after this many real seconds (0: Ctrl-C)")


def demo(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if settings.service.telephony != "sandbox" or not settings.service.sms_provider.startswith("sandbox"):
        raise InputError("the demo runs on the sandbox only (unset DIALER_TELEPHONY / sms_provider)")
    clock = SimulatedClock(datetime.fromisoformat(args.start), args.speed)
    _setup_logging(quiet=sys.stdout.isatty())

    async def main() -> int:
        runtime = Runtime.build(settings, clock=clock)
        async with open_store(settings) as store:
            await store.delete_campaign("demo")
            payments = payments_for(runtime, store)
            summary = await load_file(
                store,
                args.file,
                "demo",
                defaults=payments.row_defaults(
                    settings.policy.default_consent_voice, settings.policy.default_consent_sms
                ),
                charges=payments.on_load,
                secret=runtime.secret,
                cadence=runtime.cadence,
                now=clock.now(),
                actor="demo",
            )
            await store.transition("demo", "start", clock.now(), "demo")
            created = await demo_users(store, clock.now())
        print(
            f"SANDBOX demo: loaded {summary.accepted} contacts from {args.file} "
            f"({summary.rejected} rejected); simulated clock starts {args.start} at x{args.speed:g}"
        )
        print(f"console: http://{settings.service.http_host}:{settings.service.http_port}/")
        for name, password in created:
            print(f"  sign in as {name} / {password}")
        if not created:
            print("  sign in with your users (python -m dialer users list)")
        stop = asyncio.Event()
        if args.seconds:
            asyncio.get_running_loop().call_later(args.seconds, stop.set)
        return await run_service(
            settings,
            ServeOptions(
                progress=sys.stdout.isatty(), progress_every_s=10.0, grace_s=5, config_path=args.config
            ),
            clock=clock,
            stop=stop,
        )

    return run_async(main())


DEMO_USERS = (("admin", "admin"), ("supervisor", "supervisor"), ("operator", "operator"))


async def demo_users(store: Store, now: datetime) -> list[tuple[str, str]]:
    """SANDBOX: an admin, a supervisor and an operator with fresh random passwords, when the
    store has no users yet (printed once, at the demo's start)."""
    if await store.count_users():
        return []
    created = []
    for name, role in DEMO_USERS:
        password = secrets.token_urlsafe(9)
        await people.add_user(store, name, role, password, now, "demo")
        created.append((name, password))
    return created


COMMANDS = (
    Command("serve", "run scheduler + workers (+ HTTP API)", _serve_arguments, serve),
    Command("demo", "SANDBOX: load the sample campaign and run it with live progress", _demo_arguments, demo),
)
