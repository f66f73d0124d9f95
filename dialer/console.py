"""Live progress in the terminal while ``serve`` / ``demo`` run (rich)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dialer.clock import Clock
from dialer.store import Store

OUTCOMES = [
    "answered_verified",
    "third_party",
    "voicemail",
    "no_answer",
    "busy",
    "failed",
    "wrong_number",
    "invalid_number",
    "unknown",
    "sms_sent",
    "sms_failed",
]


def render(statuses: list[dict[str, Any]], now_text: str, backend: dict[str, Any]) -> Group:
    sandbox = bool(backend.get("sandbox"))
    title = Text("Régua", style="bold")
    if sandbox:
        title.append("  SANDBOX — simulated calls and SMS, nobody is contacted", style="bold black on yellow")
    header = Text(
        f"clock {now_text}   voice backend: {backend.get('backend', '?')} ({backend.get('state', '?')})"
    )
    table = Table(
        "campaign",
        "state",
        "contacts",
        "scheduled",
        "queued",
        "in flight",
        "calls",
        "answered+verified",
        "machine",
        "no answer/busy",
        "SMS",
        "done",
        title_justify="left",
    )
    blocked = Table("campaign", "held back by the rules (decisions)", title_justify="left")
    for s in statuses:
        c = s["counters"]
        calls = c.get("attempts:voice", 0)
        table.add_row(
            s["name"],
            s["state"],
            str(s["contacts"]),
            str(s["scheduled"]),
            str(s["queued"]),
            str(s["in_flight"]),
            str(calls),
            str(c.get("outcome:answered_verified", 0)),
            str(c.get("outcome:voicemail", 0)),
            str(c.get("outcome:no_answer", 0) + c.get("outcome:busy", 0)),
            str(c.get("outcome:sms_sent", 0)),
            str(c.get("done", 0)),
        )
        reasons = sorted(
            ((k.split(":", 1)[1], v) for k, v in c.items() if k.startswith("blocked:")), key=lambda kv: -kv[1]
        )
        blocked.add_row(s["name"], ", ".join(f"{r} {n}" for r, n in reasons) or "-")
    return Group(
        Panel(header, title=title),
        table,
        blocked,
        Text("Ctrl-C stops: calls in flight finish first.", style="dim"),
    )


async def snapshot(store: Store) -> list[dict[str, Any]]:
    out = []
    for name in await store.campaign_names():
        with contextlib.suppress(Exception):
            out.append(await store.status(name))
    return out


async def live_progress(store: Store, clock: Clock, stop: asyncio.Event, *, telephony: Any = None) -> None:
    backend = telephony.health() if telephony is not None else {}
    with Live(refresh_per_second=4, transient=False) as live:
        while not stop.is_set():
            try:
                statuses = await snapshot(store)
            except Exception as exc:  # Redis away: show it, keep trying
                live.update(Text(f"Redis unreachable: {exc}; retrying…", style="bold red"))
            else:
                if telephony is not None:
                    backend = telephony.health()
                now = clock.now().astimezone().strftime("%a %Y-%m-%d %H:%M")
                live.update(render(statuses, now, backend))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
