"""Commands that need no Redis: ``plan`` (the supervisor's preview of every decision) and
``check-config`` (validate the configuration and print the calling hours in force)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from dialer.cli.common import Command, no_arguments, print_table
from dialer.domain import DAY_KEYS, Channel, format_day
from dialer.errors import InputError
from dialer.formats.campaign_file import CampaignReader, RowDefaults, RowError
from dialer.formats.config_file import load_settings
from dialer.formats.history import parse_instant, read_history
from dialer.formats.preview import plan as preview
from dialer.rules.policy import Policy


def _plan_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="campaign CSV (UTF-8 or cp1252, comma or semicolon)")
    p.add_argument("--now", help="ISO 8601 instant with offset (default: the current time)")
    p.add_argument("--history", help="JSON-lines file of past attempts")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def plan(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    policy = Policy.from_settings(settings)
    try:
        now = parse_instant(args.now, "--now") if args.now else datetime.now(UTC)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    history = {}
    if args.history:
        with open(args.history, encoding="utf-8") as fh:
            history = read_history(fh, args.history)
    defaults = RowDefaults(settings.policy.default_consent_voice, settings.policy.default_consent_sms)
    rejected = 0
    rows: list[list[str]] = []
    with open(args.file, "rb") as fh:
        reader = CampaignReader(fh, defaults=defaults)
        for item in preview(reader, history, now, policy):
            if isinstance(item, RowError):
                rejected += 1
                print(f"{args.file}: rejected: {item.describe()}", file=sys.stderr)
                continue
            if args.json:
                print(json.dumps(item.as_json(), ensure_ascii=False))
            else:
                d = item.decision
                rows.append(
                    [
                        item.row.account.account_id,
                        item.row.phone.number,
                        d.channel.value,
                        "yes" if d.allowed else "no",
                        ", ".join(d.reasons) or "-",
                        d.not_before.isoformat(timespec="minutes") if d.not_before else "never",
                        " ".join(d.time_zones),
                    ]
                )
    if not args.json:
        print_table(["account", "phone", "channel", "allowed", "reasons", "not before", "time zones"], rows)
    if rejected:
        print(f"{rejected} row(s) rejected; see the messages above", file=sys.stderr)
    return 0


def check_config(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    policy = Policy.from_settings(settings)
    rows = []
    for country, pack in sorted(policy.packs.items()):
        states = sorted({state for state, _ in pack.hours}, key=lambda s: s or "")
        for state in states:
            shown: list[tuple[str, ...]] = []
            by_windows: dict[object, list[str]] = {}
            for channel in Channel:  # channels with the same hours share a row
                by_windows.setdefault(pack.hours[(state, channel)], []).append(channel.value)
            for windows, channels in by_windows.items():
                shown.append(("+".join(channels), *(format_day(windows[i]) for i in range(7))))  # type: ignore[index]
            rows += [[country, state or "default", *row] for row in shown]
    print_table(["pack", "state", "channel", *DAY_KEYS], rows)
    print("configuration is valid")
    return 0


COMMANDS = (
    Command("plan", "preview every decision for a campaign file", _plan_arguments, plan),
    Command("check-config", "validate the configuration and print the hours", no_arguments, check_config),
)
