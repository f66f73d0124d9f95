"""What every command shares: the command value the registry holds, the store and clock a
runtime command runs with, and the ways results are printed (a table, JSON lines)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dialer.clock import Clock
from dialer.formats.config_file import load_settings
from dialer.runtime.wiring import command_clock, open_store, run_async
from dialer.settings import Settings
from dialer.store import Store


@dataclass(frozen=True, slots=True)
class Command:
    """One ``python -m dialer NAME``: its help, its arguments and what it does."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@dataclass(frozen=True, slots=True)
class Context:
    """What a runtime command gets: the settings, a connected store, the clock it runs on
    (the sandbox service's simulated one while it runs, else the wall clock) and who acts."""

    settings: Settings
    store: Store
    clock: Clock
    actor: str


StoreCommand = Callable[[argparse.Namespace, Context], Awaitable[int]]


def no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


def with_store(fn: StoreCommand) -> Callable[[argparse.Namespace], int]:
    """A command that needs Redis (``REDIS_URL`` or the embedded one)."""

    def run(args: argparse.Namespace) -> int:
        async def main() -> int:
            settings = load_settings(args.config)
            async with open_store(settings) as store:
                clock = await command_clock(settings, store)
                return await fn(args, Context(settings, store, clock, person()))

        return run_async(main())

    return run


def person() -> str:
    """Who runs the command, for the audit trail."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (a container): still a person at a terminal
        return "cli"


def print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str))


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*header, show_lines=False)
    for r in rows:
        table.add_row(*r)
    Console(width=max(160, Console().width), file=sys.stdout).print(table)
