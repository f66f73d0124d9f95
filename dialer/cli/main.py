"""``python -m dialer …``: the command line of supervisors, admins and operators.

One registry: every command of every module, in the order ``--help`` lists them. A
command's module holds its arguments and what it does; this module builds the parser and
turns Régua's errors into a message that says what to do next and an exit status.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dialer.cli import accounts, agreements, campaigns, payments, people, plan, serve, suppressions
from dialer.cli.common import Command
from dialer.errors import ConfigError, InputError, ReguaError

COMMANDS: tuple[Command, ...] = (
    *plan.COMMANDS,  # plan, check-config
    *campaigns.COMMANDS,  # load, campaigns, create … archive, status, report
    *serve.COMMANDS,  # serve, demo
    *suppressions.COMMANDS,  # suppress import|add|remove|list
    *accounts.COMMANDS,  # audit, account, outbox, callbacks
    *people.COMMANDS,  # users, tokens
    *payments.COMMANDS,  # payments list|charges|reconcile|make|webhook
    *agreements.COMMANDS,  # agreements summary|list|show|offers|special|review
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dialer",
        description="Régua: a collections dialer that runs the régua de cobrança by the rules.",
    )
    p.add_argument("--config", help="a TOML file laid over config/dialer.toml (env DIALER_CONFIG)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.arguments(sub.add_parser(command.name, help=command.help))
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run = next(c.run for c in COMMANDS if c.name == args.command)
    try:
        return run(args)
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
