"""The runtime commands of ``python -m dialer`` (they need Redis: ``REDIS_URL`` or the embedded one)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dialer.errors import InputError, StoreError
from dialer.formats.config_file import load_settings
from dialer.runtime import operations
from dialer.settings import PROJECT_ROOT, Settings
from dialer.store import TRANSITIONS

HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {}
SAMPLE_CAMPAIGN = PROJECT_ROOT / "config" / "sample_campaign.csv"


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def _handler(name: str) -> Callable[[Callable[..., Awaitable[int]]], Callable[..., Awaitable[int]]]:
    def register(fn: Callable[..., Awaitable[int]]) -> Callable[..., Awaitable[int]]:
        def run(args: argparse.Namespace) -> int:
            return asyncio.run(_with_store(fn, args))

        HANDLERS[name] = run
        return fn

    return register


async def _with_store(fn: Callable[..., Awaitable[int]], args: argparse.Namespace) -> int:
    from dialer.runtime.wiring import open_store

    settings = load_settings(args.config)
    async with open_store(settings) as store:
        return await fn(args, settings, store)


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str))


def add_parsers(sub: Any) -> None:
    s = sub.add_parser("load", help="load (upsert) a campaign file into Redis")
    s.add_argument("file")
    s.add_argument("--campaign", required=True)
    s.add_argument("--errors", help="write every rejected row here (CSV: line, column, value, reason)")
    s.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    s.add_argument("--start", action="store_true", help="start the campaign after loading")

    s = sub.add_parser("campaigns", help="list campaigns and their state")
    s.add_argument("--json", action="store_true")

    for action, text in (
        ("create", "create an empty campaign"),
        ("start", "start dialling"),
        ("pause", "pause (takes effect within a second on every worker)"),
        ("resume", "resume a paused campaign"),
        ("stop", "stop for good"),
        ("archive", "archive a stopped campaign"),
    ):
        s = sub.add_parser(action, help=text)
        s.add_argument("name")

    s = sub.add_parser("status", help="a campaign's state and counters")
    s.add_argument("name")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("serve", help="run scheduler + workers (+ HTTP API)")
    s.add_argument("--role", choices=["all", "scheduler", "worker", "api", "ivr"], default="all")
    s.add_argument("--workers", type=int, default=None, help="worker processes (default from config)")
    s.add_argument("--grace", type=float, default=30.0, help="seconds to finish in-flight work on stop")
    s.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live progress in the terminal (default: when attached to one)",
    )
    s.add_argument("--no-api", action="store_true", help="do not serve the HTTP API / dashboard")
    s.add_argument("--clock-start", help="SANDBOX: run on a simulated clock starting here (ISO 8601)")
    s.add_argument("--speed", type=float, default=1.0, help="SANDBOX: simulated clock speed-up")

    s = sub.add_parser("demo", help="SANDBOX: load the sample campaign and run it with live progress")
    s.add_argument(
        "--speed",
        type=float,
        default=3600.0,
        help="simulated seconds per real second (default 3600: an hour a second)",
    )
    s.add_argument("--start", default="2026-11-23T07:30:00-03:00", help="simulated start (ISO 8601)")
    s.add_argument("--file", default=str(SAMPLE_CAMPAIGN))
    s.add_argument("--seconds", type=float, default=0, help="stop after this many real seconds (0: Ctrl-C)")

    s = sub.add_parser("suppress", help="the global do-not-contact list")
    ssub = s.add_subparsers(dest="suppress_command", required=True)
    i = ssub.add_parser("import", help="import a registry (e.g. SP 'Não Me Ligue') or a company list")
    i.add_argument("file", help="CSV/text: a phone per line, optional registration or effective date")
    i.add_argument("--source", required=True, help="name of the list, e.g. nao-me-ligue-sp")
    i.add_argument(
        "--effective-after-days",
        type=int,
        default=0,
        help="days after the registration date the entry takes effect (SP registry: 30)",
    )
    i.add_argument("--errors", help="write rejected lines here")
    i.add_argument("--json", action="store_true")
    a = ssub.add_parser("add", help="suppress one number")
    a.add_argument("number")
    a.add_argument("--channel", choices=["voice", "sms"], help="default: every channel")
    a.add_argument(
        "--reason",
        default="opt_out",
        choices=["opt_out", "wrong_number", "dispute", "do_not_call", "invalid_number"],
    )
    a.add_argument("--source", default="manual")
    r = ssub.add_parser("remove", help="lift a suppression")
    r.add_argument("number")
    r.add_argument("--channel", choices=["voice", "sms"])
    ls = ssub.add_parser("list", help="list suppressed numbers")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--limit", type=int, default=1000)

    s = sub.add_parser("audit", help="an account's timeline: why was this person (not) called?")
    s.add_argument("--account", help="account id")
    s.add_argument("--campaign", help="limit to one campaign (or, alone: its lifecycle events)")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser(
        "account",
        help="mark an account paid / disputed / closed (every campaign stops at once) or open again",
    )
    s.add_argument("account_id", nargs="?", help="one account (or --file for many)")
    s.add_argument(
        "--file", help="many: an account id per line, optionally ';' and a note (e.g. a day's payments)"
    )
    s.add_argument("--status", required=True, choices=["paid", "disputed", "closed", "open"])
    s.add_argument("--campaign", help="only in this campaign (default: every campaign holding it)")
    s.add_argument("--note", default="", help="why, for the audit trail (e.g. the payment reference)")
    s.add_argument("--errors", help="with --file: write every rejected line here (CSV: line, value, reason)")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("report", help="one CSV row per account: status, attempts, last outcome, next contact")
    s.add_argument("campaign")
    s.add_argument("--out", help="write here (default: standard output)")

    s = sub.add_parser("outbox", help="SMS the sandbox gateway 'sent'")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("callbacks", help="callback requests debtors made in the IVR")
    s.add_argument("--json", action="store_true")


# ------------------------------------------------------------------------- load


@_handler("load")
async def _load(args: argparse.Namespace, settings: Settings, store: Any) -> int:
    from dialer.formats.campaign_file import RowDefaults
    from dialer.runtime.ingest import load_file
    from dialer.runtime.wiring import Runtime

    runtime = Runtime.build(settings)
    path = Path(args.file)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    defaults = RowDefaults(settings.policy.default_consent_voice, settings.policy.default_consent_sms)
    errors_fh = open(args.errors, "w", newline="", encoding="utf-8") if args.errors else None  # noqa: SIM115
    progress_cb = None
    progress = None
    if sys.stderr.isatty() and not args.json:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=True,
        )
        task = progress.add_task(f"loading {path.name}", total=path.stat().st_size)
        progress.start()

        def progress_cb(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

    try:
        summary = await load_file(
            store,
            path,
            args.campaign,
            defaults=defaults,
            secret=runtime.secret,
            cadence=runtime.cadence,
            now=runtime.clock.now(),
            actor=_actor(),
            errors_to=errors_fh,
            progress=progress_cb,
        )
    finally:
        if progress is not None:
            progress.stop()
        if errors_fh is not None:
            errors_fh.close()
    if args.start:
        await store.transition(args.campaign, "start", runtime.clock.now(), _actor())
    if args.json:
        _print_json(summary.as_dict())
    else:
        print(
            f"{path}: {summary.rows_read} rows read, {summary.accepted} accepted "
            f"({summary.new} new, {summary.updated} updated, {summary.unchanged} unchanged), "
            f"{summary.rejected} rejected, in {summary.seconds:.1f}s -> campaign {args.campaign}"
        )
        if summary.rejected:
            where = f" (details in {args.errors})" if args.errors else " (use --errors FILE for details)"
            print(f"{summary.rejected} row(s) rejected{where}", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------- lifecycle


@_handler("campaigns")
async def _campaigns(args: argparse.Namespace, settings: Settings, store: Any) -> int:
    rows = [await store.status(n) for n in await store.campaign_names()]
    if args.json:
        for r in rows:
            _print_json(r)
        return 0
    from dialer.cli.main import _print_table

    _print_table(
        ["campaign", "state", "accounts", "contacts", "scheduled", "queued", "in flight", "created"],
        [
            [
                r["name"],
                r["state"],
                str(r["accounts"]),
                str(r["contacts"]),
                str(r["scheduled"]),
                str(r["queued"]),
                str(r["in_flight"]),
                str(r["created_at"]),
            ]
            for r in rows
        ],
    )
    return 0


def _lifecycle(action: str) -> None:
    @_handler(action)
    async def run(args: argparse.Namespace, settings: Settings, store: Any) -> int:
        now = datetime.now(UTC)
        if action == "create":
            created = await store.create_campaign(args.name, now, _actor())
            print(f"campaign {args.name} {'created' if created else 'already exists'}")
            return 0
        result, previous = await store.transition(args.name, action, now, _actor())
        if result == "missing":
            raise StoreError(f"no campaign named {args.name!r} (see `python -m dialer campaigns`)")
        if result == "refused":
            allowed = ", ".join(sorted(TRANSITIONS[action][0]))
            print(
                f"cannot {action} campaign {args.name}: it is {previous} (allowed from: {allowed})",
                file=sys.stderr,
            )
            return 1
        print(f"campaign {args.name}: {previous} -> {TRANSITIONS_TARGET[action]}")
        return 0


TRANSITIONS_TARGET = {k: v[1] for k, v in TRANSITIONS.items()}
for _action in ("create", *TRANSITIONS):
    _lifecycle(_action)


@_handler("status")
async def _status(args: argparse.Namespace, settings: Settings, store: Any) -> int:
    status = await store.status(args.name)
    if args.json:
        _print_json(status)
        return 0
    for key in ("name", "state", "accounts", "contacts", "scheduled", "next_due", "queued", "in_flight"):
        print(f"{key:>10}: {status[key]}")
    for key, value in status["counters"].items():
        print(f"{key:>30}: {value}")
    return 0


# ------------------------------------------------------------------------- serve / demo


def _serve(args: argparse.Namespace) -> int:
    from dialer.clock import SimulatedClock
    from dialer.runtime.serve import ServeOptions, serve

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
    from dialer.runtime.wiring import run_async

    return int(run_async(serve(settings, options, clock=clock)))


HANDLERS["serve"] = _serve


def _setup_logging(quiet: bool = False) -> None:
    import logging

    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _demo(args: argparse.Namespace) -> int:
    from dialer.clock import SimulatedClock
    from dialer.runtime.serve import ServeOptions, serve

    settings = load_settings(args.config)
    if settings.service.telephony != "sandbox" or not settings.service.sms_provider.startswith("sandbox"):
        raise InputError("the demo runs on the sandbox only (unset DIALER_TELEPHONY / sms_provider)")
    clock = SimulatedClock(datetime.fromisoformat(args.start), args.speed)
    _setup_logging(quiet=sys.stdout.isatty())

    async def main() -> int:
        from dialer.formats.campaign_file import RowDefaults
        from dialer.runtime.ingest import load_file
        from dialer.runtime.wiring import Runtime, open_store

        runtime = Runtime.build(settings, clock=clock)
        async with open_store(settings) as store:
            await store.delete_campaign("demo")
            summary = await load_file(
                store,
                args.file,
                "demo",
                defaults=RowDefaults(
                    settings.policy.default_consent_voice, settings.policy.default_consent_sms
                ),
                secret=runtime.secret,
                cadence=runtime.cadence,
                now=clock.now(),
                actor="demo",
            )
            await store.transition("demo", "start", clock.now(), "demo")
        print(
            f"SANDBOX demo: loaded {summary.accepted} contacts from {args.file} "
            f"({summary.rejected} rejected); simulated clock starts {args.start} at x{args.speed:g}"
        )
        print(f"dashboard: {settings.service.public_url}/  (login in the README)")
        stop = asyncio.Event()
        if args.seconds:
            asyncio.get_running_loop().call_later(args.seconds, stop.set)
        return await serve(
            settings,
            ServeOptions(progress=sys.stdout.isatty(), progress_every_s=10.0, grace_s=5),
            clock=clock,
            stop=stop,
        )

    from dialer.runtime.wiring import run_async

    return int(run_async(main()))


HANDLERS["demo"] = _demo


# ------------------------------------------------------------------------- suppression


@_handler("suppress")
async def _suppress(args: argparse.Namespace, settings: Settings, store: Any) -> int:
    from dialer.domain import Channel, Suppression, SuppressionReason
    from dialer.formats.campaign_file import normalise_phone

    now = datetime.now(UTC)
    actor = _actor()
    if args.suppress_command == "add":
        try:
            number, _ = normalise_phone(args.number)
        except ValueError as exc:
            raise InputError(f"number {args.number!r} {exc}") from None
        s = Suppression(
            number,
            SuppressionReason(args.reason),
            Channel(args.channel) if args.channel else None,
            None,
            args.source,
        )
        await operations.suppress(store, [s], now, actor)
        print(f"{number} suppressed ({args.channel or 'every channel'}, {args.reason})")
        return 0
    if args.suppress_command == "remove":
        try:
            number, _ = normalise_phone(args.number)
        except ValueError as exc:
            raise InputError(f"number {args.number!r} {exc}") from None
        removed = await operations.unsuppress(
            store, number, Channel(args.channel) if args.channel else None, now, actor
        )
        print(f"{number}: {'suppression lifted' if removed else 'was not suppressed on that channel'}")
        return 0 if removed else 1
    if args.suppress_command == "list":
        entries = await store.suppression_list(args.limit)
        if args.json:
            for e in entries:
                _print_json(e)
        else:
            from dialer.cli.main import _print_table

            _print_table(
                ["number", "channel", "reason", "effective from", "source", "added"],
                [
                    [
                        e["number"],
                        e["channel"],
                        e["reason"],
                        str(e.get("effective_from") or "-"),
                        e.get("source", ""),
                        e.get("added_at", ""),
                    ]
                    for e in entries
                ],
            )
        return 0
    # import
    from dialer.formats.suppression_file import read_suppression_file

    errors_fh = open(args.errors, "w", newline="", encoding="utf-8") if args.errors else None  # noqa: SIM115
    writer = csv.writer(errors_fh) if errors_fh else None
    with open(args.file, "rb") as fh:
        result = await operations.import_suppressions(
            store,
            read_suppression_file(fh, args.source, timedelta(days=args.effective_after_days)),
            now,
            actor,
            source=args.source,
            effective_after_days=args.effective_after_days,
            on_rejected=writer.writerow if writer else None,
        )
    if errors_fh:
        errors_fh.close()
    imported, rejected = result.imported, result.rejected
    summary = {"file": args.file, **result.as_dict()}
    if args.json:
        _print_json(summary)
    else:
        print(
            f"{args.file}: {imported} numbers imported into the suppression list as {args.source!r}, "
            f"{rejected} rejected"
        )
    return 0


# ------------------------------------------------------------------------- audit / outbox


@_handler("audit")
async def _audit(args: argparse.Namespace, settings: Settings, store: Any) -> int:
    if args.account:
        events = await store.timeline(args.account, args.campaign)
        if not events:
            print(f"no events for account {args.account!r}", file=sys.stderr)
            return 1
    elif args.campaign:
        events = await store.campaign_audit(args.campaign)
    else:
        events = await store.global_audit()
    if args.json:
        for e in events:
            _print_json(e)
        return 0
    for e in events:
        rest = {k: v for k, v in e.items() if k not in ("at", "kind", "campaign")}
        print(
            f"{e.get('at', '')}  {e.get('campaign', ''):<12} {e.get('kind', ''):<16} "
            + json.dumps(rest, ensure_ascii=False, default=str)
        )
    return 0


@_handler("account")
async def _account(args: argparse.Namespace, settings: Settings, store: Any) -> int:
    from dialer.domain import AccountStatus

    if (args.account_id is None) == (args.file is None):
        raise InputError("give one account id or --file FILE (not both)")
    if args.file:
        return await _account_file(args, store, AccountStatus(args.status))

    changes = await operations.set_account_status(
        store,
        args.account_id,
        AccountStatus(args.status),
        datetime.now(UTC),
        _actor(),
        note=args.note,
        campaign=args.campaign,
    )
    if not changes:
        where = f"campaign {args.campaign!r}" if args.campaign else "any campaign"
        print(
            f"account {args.account_id!r} is not in {where}: check the id (python -m dialer audit --account ID)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        _print_json({"account": args.account_id, "status": args.status, "campaigns": changes})
        return 0
    for c in changes:
        what = f"{c['from']} -> {c['to']}" if c["changed"] else f"already {c['to']}"
        print(f"{args.account_id} in {c['campaign']}: {what}")
    return 0


async def _account_file(args: argparse.Namespace, store: Any, status: Any) -> int:
    """Apply one status to every account of a file; report what changed and what was refused."""
    from dialer.formats.status_file import read_status_file

    path = Path(args.file)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    now, actor = datetime.now(UTC), _actor()
    counts = {"rows": 0, "changed": 0, "unchanged": 0, "rejected": 0}
    rejected: list[tuple[int, str, str]] = []
    with path.open("rb") as fh:
        for line, account_id, note, problem in read_status_file(fh):
            counts["rows"] += 1
            if problem is None:
                changes = await operations.set_account_status(
                    store, account_id, status, now, actor, note=note or args.note, campaign=args.campaign
                )
                if not changes:
                    where = f"campaign {args.campaign!r}" if args.campaign else "any campaign"
                    problem = f"not in {where}"
                else:
                    counts["changed" if any(c["changed"] for c in changes) else "unchanged"] += 1
                    continue
            counts["rejected"] += 1
            rejected.append((line, account_id, problem))
    if args.errors:
        with open(args.errors, "w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows([("line", "value", "reason"), *rejected])
    summary = {"file": str(path), "status": status.value, **counts}
    if args.json:
        _print_json(
            {**summary, "errors": [{"line": n, "value": v, "reason": r} for n, v, r in rejected[:100]]}
        )
    else:
        print(
            f"{path}: {counts['rows']} rows; {counts['changed']} accounts set {status.value}, "
            f"{counts['unchanged']} already were, {counts['rejected']} rejected"
            + (f" (first: line {rejected[0][0]}: {rejected[0][2]}; all in --errors FILE)" if rejected else "")
        )
    return 1 if counts["rejected"] and not counts["changed"] + counts["unchanged"] else 0


@_handler("report")
async def _report(args: argparse.Namespace, settings: Settings, store: Any) -> int:
    from dialer.formats.report import COLUMNS, report_row

    status = await store.status(args.campaign)  # a clear error for an unknown name
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    rows = 0
    show = bool(args.out) and sys.stderr.isatty()
    try:
        async for batch in store.iter_accounts(args.campaign):
            for state, next_at, suppressed in batch:
                writer.writerow(report_row(state.account, state.phones, state.history, next_at, suppressed))
            rows += len(batch)
            if show:
                print(f"\r{rows:,} of {status['accounts']:,} accounts", end="", file=sys.stderr)
    finally:
        if args.out:
            out.close()
    if args.out:
        print(
            ("\r" if show else "") + f"{args.out}: {rows:,} accounts of campaign {args.campaign}",
            file=sys.stderr,
        )
    return 0


@_handler("outbox")
async def _outbox(args: argparse.Namespace, settings: Settings, store: Any) -> int:
    rows = await store.outbox(args.limit)
    if args.json:
        for r in rows:
            _print_json(r)
        return 0
    print("SANDBOX outbox: nothing here was really sent")
    for r in rows:
        print(f"{r.get('at', '')}  {r.get('to', '')}  [{r.get('level', '')}] {r.get('text', '')}")
    return 0


@_handler("callbacks")
async def _callbacks(args: argparse.Namespace, settings: Settings, store: Any) -> int:
    rows = await store.callbacks()
    if args.json:
        for r in rows:
            _print_json(r)
        return 0
    for r in rows:
        print(f"{r['requested_at']}  {r['campaign']}  {r['account_id']}  {r['phone']}  window={r['window']}")
    return 0
