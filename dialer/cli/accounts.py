"""Accounts and what happened to them: ``account`` (paid, disputed, closed, open again —
one or a day's file) and ``audit`` (an account's timeline: why was this person called, or
not?), plus the queues people work: ``callbacks`` and the SANDBOX ``outbox``."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from dialer.cli.common import Command, Context, print_json, with_store
from dialer.domain import SETTABLE_STATUSES, AccountStatus
from dialer.errors import InputError
from dialer.formats.status_file import read_status_file
from dialer.runtime import operations


def _audit_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--account", help="account id")
    p.add_argument("--campaign", help="limit to one campaign (or, alone: its lifecycle events)")
    p.add_argument("--json", action="store_true")


async def audit(args: argparse.Namespace, ctx: Context) -> int:
    store = ctx.store
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
            print_json(e)
        return 0
    for e in events:
        rest = {k: v for k, v in e.items() if k not in ("at", "kind", "campaign")}
        print(
            f"{e.get('at', '')}  {e.get('campaign', ''):<12} {e.get('kind', ''):<16} "
            + json.dumps(rest, ensure_ascii=False, default=str)
        )
    return 0


def _account_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("account_id", nargs="?", help="one account (or --file for many)")
    p.add_argument(
        "--file", help="many: an account id per line, optionally ';' and a note (e.g. a day's payments)"
    )
    p.add_argument("--status", required=True, choices=[s.value for s in SETTABLE_STATUSES])
    p.add_argument("--campaign", help="only in this campaign (default: every campaign holding it)")
    p.add_argument("--note", default="", help="why, for the audit trail (e.g. the payment reference)")
    p.add_argument("--errors", help="with --file: write every rejected line here (CSV: line, value, reason)")
    p.add_argument("--json", action="store_true")


async def account(args: argparse.Namespace, ctx: Context) -> int:
    if (args.account_id is None) == (args.file is None):
        raise InputError("give one account id or --file FILE (not both)")
    status = AccountStatus(args.status)
    if args.file:
        return await _account_file(args, ctx, status)
    changes = await operations.set_account_status(
        ctx.store, args.account_id, status, ctx.clock.now(), ctx.actor, note=args.note, campaign=args.campaign
    )
    if not changes:
        where = f"campaign {args.campaign!r}" if args.campaign else "any campaign"
        print(
            f"account {args.account_id!r} is not in {where}: check the id (python -m dialer audit --account ID)",
            file=sys.stderr,
        )
        return 1
    if args.json:
        print_json({"account": args.account_id, "status": args.status, "campaigns": changes})
        return 0
    for c in changes:
        what = f"{c['from']} -> {c['to']}" if c["changed"] else f"already {c['to']}"
        print(f"{args.account_id} in {c['campaign']}: {what}")
    return 0


async def _account_file(args: argparse.Namespace, ctx: Context, status: AccountStatus) -> int:
    """Apply one status to every account of a file; report what changed and what was refused."""
    path = Path(args.file)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    now = ctx.clock.now()
    counts = {"rows": 0, "changed": 0, "unchanged": 0, "rejected": 0}
    rejected: list[tuple[int, str, str]] = []
    with path.open("rb") as fh:
        for line, account_id, note, problem in read_status_file(fh):
            counts["rows"] += 1
            if problem is None:
                changes = await operations.set_account_status(
                    ctx.store,
                    account_id,
                    status,
                    now,
                    ctx.actor,
                    note=note or args.note,
                    campaign=args.campaign,
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
        print_json(
            {**summary, "errors": [{"line": n, "value": v, "reason": r} for n, v, r in rejected[:100]]}
        )
    else:
        print(
            f"{path}: {counts['rows']} rows; {counts['changed']} accounts set {status.value}, "
            f"{counts['unchanged']} already were, {counts['rejected']} rejected"
            + (f" (first: line {rejected[0][0]}: {rejected[0][2]}; all in --errors FILE)" if rejected else "")
        )
    return 1 if counts["rejected"] and not counts["changed"] + counts["unchanged"] else 0


def _outbox_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")


async def outbox(args: argparse.Namespace, ctx: Context) -> int:
    rows = await ctx.store.outbox(args.limit)
    if args.json:
        for r in rows:
            print_json(r)
        return 0
    print("SANDBOX outbox: nothing here was really sent")
    for r in rows:
        print(f"{r.get('at', '')}  {r.get('to', '')}  [{r.get('level', '')}] {r.get('text', '')}")
    return 0


def _json_only(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


async def callbacks(args: argparse.Namespace, ctx: Context) -> int:
    rows = await ctx.store.callbacks()
    if args.json:
        for r in rows:
            print_json(r)
        return 0
    for r in rows:
        print(f"{r['requested_at']}  {r['campaign']}  {r['account_id']}  {r['phone']}  window={r['window']}")
    return 0


COMMANDS = (
    Command(
        "audit",
        "an account's timeline: why was this person (not) called?",
        _audit_arguments,
        with_store(audit),
    ),
    Command(
        "account",
        "mark an account paid / disputed / closed (every campaign stops at once) or open again",
        _account_arguments,
        with_store(account),
    ),
    Command("outbox", "SMS the sandbox gateway 'sent'", _outbox_arguments, with_store(outbox)),
    Command("callbacks", "callback requests debtors made in the IVR", _json_only, with_store(callbacks)),
)
