"""``suppress``: the global do-not-contact list — import a registry (SP "Não Me Ligue") or
a company list, add or lift one number, list them."""

from __future__ import annotations

import argparse
import csv
from datetime import timedelta

from dialer.cli.common import Command, Context, print_json, print_table, with_store
from dialer.domain import Channel, Suppression, SuppressionReason
from dialer.errors import InputError
from dialer.formats.cell_values import normalise_phone
from dialer.formats.suppression_file import read_suppression_file
from dialer.runtime import operations

CHANNELS = [c.value for c in Channel]


def _arguments(s: argparse.ArgumentParser) -> None:
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
    a.add_argument("--channel", choices=CHANNELS, help="default: every channel")
    a.add_argument("--reason", default="opt_out", choices=[r.value for r in SuppressionReason])
    a.add_argument("--source", default="manual")
    r = ssub.add_parser("remove", help="lift a suppression")
    r.add_argument("number")
    r.add_argument("--channel", choices=CHANNELS)
    ls = ssub.add_parser("list", help="list suppressed numbers")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--limit", type=int, default=1000)


def _number(raw: str) -> str:
    try:
        number, _ = normalise_phone(raw)
    except ValueError as exc:
        raise InputError(f"number {raw!r} {exc}") from None
    return number


async def suppress(args: argparse.Namespace, ctx: Context) -> int:
    store, now, actor = ctx.store, ctx.clock.now(), ctx.actor
    channel = Channel(args.channel) if getattr(args, "channel", None) else None
    match args.suppress_command:
        case "add":
            number = _number(args.number)
            entry = Suppression(number, SuppressionReason(args.reason), channel, None, args.source)
            await operations.suppress(store, [entry], now, actor)
            print(f"{number} suppressed ({args.channel or 'every channel'}, {args.reason})")
            return 0
        case "remove":
            number = _number(args.number)
            removed = await operations.unsuppress(store, number, channel, now, actor)
            print(f"{number}: {'suppression lifted' if removed else 'was not suppressed on that channel'}")
            return 0 if removed else 1
        case "list":
            entries = await store.suppression_list(args.limit)
            if args.json:
                for e in entries:
                    print_json(e)
                return 0
            print_table(
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
    errors_fh = open(args.errors, "w", newline="", encoding="utf-8") if args.errors else None  # noqa: SIM115
    writer = csv.writer(errors_fh) if errors_fh else None
    try:
        with open(args.file, "rb") as fh:
            result = await operations.import_suppressions(
                store,
                read_suppression_file(fh, args.source, timedelta(days=args.effective_after_days)),
                now,
                actor,
                file=args.file,
                source=args.source,
                effective_after_days=args.effective_after_days,
                on_rejected=writer.writerow if writer else None,
            )
    finally:
        if errors_fh:
            errors_fh.close()
    if args.json:
        print_json(result.as_dict())
    else:
        print(
            f"{args.file}: {result.imported} numbers imported into the suppression list as {args.source!r}, "
            f"{result.rejected} rejected"
        )
    return 0


COMMANDS = (Command("suppress", "the global do-not-contact list", _arguments, with_store(suppress)),)
