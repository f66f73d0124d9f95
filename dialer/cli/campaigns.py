"""Campaign commands: ``load`` a file, list ``campaigns``, the lifecycle (``create``,
``start``, ``pause``, ``resume``, ``stop``, ``archive``), ``status`` and the ``report``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from dialer.cli.common import Command, Context, print_json, print_table, with_store
from dialer.errors import InputError, UnknownCampaign
from dialer.formats.report import report_row, report_writer
from dialer.runtime.ingest import load_file
from dialer.runtime.wiring import Runtime, payments_for
from dialer.store import TRANSITIONS


def _load_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file")
    p.add_argument("--campaign", required=True)
    p.add_argument("--errors", help="write every rejected row here (CSV: line, column, value, reason)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--start", action="store_true", help="start the campaign after loading")


async def load(args: argparse.Namespace, ctx: Context) -> int:
    """Stream the file in. Scheduling does not read the clock (each account is due at its
    first step's local day; the worker decides at dispatch on the service's clock); the
    audit is stamped with the service's clock (a sandbox's simulated one while it runs)."""
    settings, store = ctx.settings, ctx.store
    runtime = Runtime.build(settings, clock=ctx.clock)
    path = Path(args.file)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    payments = payments_for(runtime, store)
    defaults = payments.row_defaults(
        settings.policy.default_consent_voice, settings.policy.default_consent_sms
    )
    errors_fh = open(args.errors, "w", newline="", encoding="utf-8") if args.errors else None  # noqa: SIM115
    progress_cb: Callable[[int, int], None] | None = None
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
            now=ctx.clock.now(),
            actor=ctx.actor,
            errors_to=errors_fh,
            progress=progress_cb,
            charges=payments.on_load,
        )
    finally:
        if progress is not None:
            progress.stop()
        if errors_fh is not None:
            errors_fh.close()
    if args.start:
        await store.transition(args.campaign, "start", ctx.clock.now(), ctx.actor)
    if args.json:
        print_json(summary.as_dict())
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


def _json_only(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


async def campaigns(args: argparse.Namespace, ctx: Context) -> int:
    rows = [await ctx.store.status(n) for n in await ctx.store.campaign_names()]
    if args.json:
        for r in rows:
            print_json(r)
        return 0
    print_table(
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


def _name(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")


def _lifecycle(action: str) -> Callable[[argparse.Namespace, Context], object]:
    async def run(args: argparse.Namespace, ctx: Context) -> int:
        now = ctx.clock.now()
        if action == "create":
            created = await ctx.store.create_campaign(args.name, now, ctx.actor)
            print(f"campaign {args.name} {'created' if created else 'already exists'}")
            return 0
        result, previous = await ctx.store.transition(args.name, action, now, ctx.actor)
        if result == "missing":
            raise UnknownCampaign(f"no campaign named {args.name!r} (see `python -m dialer campaigns`)")
        if result == "refused":
            allowed = ", ".join(sorted(TRANSITIONS[action][0]))
            print(
                f"cannot {action} campaign {args.name}: it is {previous} (allowed from: {allowed})",
                file=sys.stderr,
            )
            return 1
        print(f"campaign {args.name}: {previous} -> {TRANSITIONS[action][1]}")
        return 0

    return run


def _status_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name")
    p.add_argument("--json", action="store_true")


async def status(args: argparse.Namespace, ctx: Context) -> int:
    found = await ctx.store.status(args.name)
    if args.json:
        print_json(found)
        return 0
    for key in (
        "name",
        "state",
        "accounts",
        "contacts",
        "scheduled",
        "next_due",
        "queued",
        "in_flight",
        "recovered",
        "payments",
    ):
        print(f"{key:>10}: {found[key]}")
    a = found["agreements"]
    print(
        f"{'agreements':>10}: {a['made']} made ({a['amount']}), {a['current']} current, "
        f"{a['kept']} kept, {a['broken']} broken; {a['paid']} paid in installments"
    )
    for key, value in found["counters"].items():
        print(f"{key:>30}: {value}")
    return 0


def _report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("campaign")
    p.add_argument("--out", help="write here (default: standard output)")
    p.add_argument(
        "--excel",
        action="store_true",
        help="semicolon-separated UTF-8 with BOM, as Excel in a Brazilian locale opens it",
    )


async def report(args: argparse.Namespace, ctx: Context) -> int:
    store = ctx.store
    found = await store.status(args.campaign)  # a clear error for an unknown name
    out = open(args.out, "w", newline="", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    writer = report_writer(out, excel=args.excel)
    rows = 0
    show = bool(args.out) and sys.stderr.isatty()
    try:
        async for batch in store.iter_accounts(args.campaign):
            paid = await store.payment_summaries([s.account.account_id for s, _, _ in batch])
            for state, next_at, suppressed in batch:
                writer.writerow(
                    report_row(
                        state.account,
                        state.phones,
                        state.history,
                        next_at,
                        suppressed,
                        paid.get(state.account.account_id),
                    )
                )
            rows += len(batch)
            if show:
                print(f"\r{rows:,} of {found['accounts']:,} accounts", end="", file=sys.stderr)
    finally:
        if args.out:
            out.close()
    if args.out:
        print(
            ("\r" if show else "") + f"{args.out}: {rows:,} accounts of campaign {args.campaign}",
            file=sys.stderr,
        )
    return 0


_LIFECYCLE_HELP = {
    "create": "create an empty campaign",
    "start": "start dialling",
    "pause": "pause (takes effect within a second on every worker)",
    "resume": "resume a paused campaign",
    "stop": "stop for good",
    "archive": "archive a stopped campaign",
}

COMMANDS = (
    Command("load", "load (upsert) a campaign file into Redis", _load_arguments, with_store(load)),
    Command("campaigns", "list campaigns and their state", _json_only, with_store(campaigns)),
    *(Command(a, h, _name, with_store(_lifecycle(a))) for a, h in _LIFECYCLE_HELP.items()),  # type: ignore[arg-type]
    Command("status", "a campaign's state and counters", _status_arguments, with_store(status)),
    Command(
        "report",
        "one CSV row per account: status, attempts, last outcome, next contact",
        _report_arguments,
        with_store(report),
    ),
)
