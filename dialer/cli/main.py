"""``python -m dialer …``: the command line of supervisors, admins and operators."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from dialer.errors import ConfigError, InputError, ReguaError

Handler = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Handler] = {}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _COMMANDS[name] = fn
        return fn

    return register


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dialer",
        description="Régua: a collections dialer that runs the régua de cobrança by the rules.",
    )
    p.add_argument("--config", help="a TOML file laid over config/dialer.toml (env DIALER_CONFIG)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("plan", help="preview every decision for a campaign file")
    s.add_argument("file", help="campaign CSV (UTF-8 or cp1252, comma or semicolon)")
    s.add_argument("--now", help="ISO 8601 instant with offset (default: the current time)")
    s.add_argument("--history", help="JSON-lines file of past attempts")
    s.add_argument("--json", action="store_true", help="one JSON object per line")

    s = sub.add_parser("check-config", help="validate the configuration and print the hours")

    _add_runtime_commands(sub)
    return p


def _add_runtime_commands(sub: Any) -> None:
    """Commands that need the Redis runtime (registered by dialer.cli.commands)."""
    try:
        from dialer.cli import commands
    except ImportError:  # pragma: no cover - the runtime is part of the package
        return
    commands.add_parsers(sub)
    _COMMANDS.update(commands.HANDLERS)


def load_settings_or_exit(args: argparse.Namespace) -> Any:
    from dialer.formats.config_file import load_settings

    return load_settings(args.config)


@command("plan")
def _plan(args: argparse.Namespace) -> int:
    from dialer.formats.campaign_file import CampaignReader, RowDefaults, RowError
    from dialer.formats.history import parse_instant, read_history
    from dialer.formats.preview import plan
    from dialer.rules.policy import Policy

    settings = load_settings_or_exit(args)
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
        for item in plan(reader, history, now, policy):
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
        _print_table(["account", "phone", "channel", "allowed", "reasons", "not before", "time zones"], rows)
    if rejected:
        print(f"{rejected} row(s) rejected; see the messages above", file=sys.stderr)
    return 0


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*header, show_lines=False)
    for r in rows:
        table.add_row(*r)
    Console(width=max(160, Console().width)).print(table)


@command("check-config")
def _check_config(args: argparse.Namespace) -> int:
    from dialer.domain import Channel
    from dialer.rules.calling_hours import DAY_KEYS, format_day
    from dialer.rules.policy import Policy

    settings = load_settings_or_exit(args)
    policy = Policy.from_settings(settings)
    rows = []
    for country, pack in sorted(policy.packs.items()):
        for (state, channel), windows in sorted(
            pack.hours.items(), key=lambda kv: (kv[0][0] or "", kv[0][1].value)
        ):
            if channel is Channel.SMS and windows == pack.hours.get((state, Channel.VOICE)):
                continue
            label = (
                "voice+sms"
                if channel is Channel.VOICE and windows == pack.hours.get((state, Channel.SMS))
                else channel.value
            )
            rows.append([country, state or "default", label, *(format_day(windows[i]) for i in range(7))])
    _print_table(["pack", "state", "channel", *DAY_KEYS], rows)
    print("configuration is valid")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        print(
            "Fix the key above (see config/dialer.toml for every default) and start again.", file=sys.stderr
        )
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc.filename}: no such file", file=sys.stderr)
        return 2
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ReguaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
