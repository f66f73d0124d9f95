"""Progress while ``serve`` / ``demo`` run: a live table on a terminal (rich), one log line
per campaign every so often otherwise (a log file, systemd, a container)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from dialer.clock import Clock
from dialer.store import Store

log = logging.getLogger("regua.progress")

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
        "paid",
        "recovered",
        "agreements (current/kept/broken)",
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
            str(s.get("payments", 0)),
            str(s.get("recovered", "0.00")),
            _agreements(s),
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


def summary_line(status: dict[str, Any]) -> str:
    """One campaign's progress as one line of text."""
    c = status["counters"]
    reasons = sorted(
        ((k.split(":", 1)[1], v) for k, v in c.items() if k.startswith("blocked:")), key=lambda kv: -kv[1]
    )
    held = ", ".join(f"{r} {n}" for r, n in reasons[:3]) or "nothing"
    return (
        f"campaign {status['name']} {status['state']}: {status['contacts']} contacts, "
        f"{status['scheduled']} scheduled, {status['queued']} queued, {status['in_flight']} in flight; "
        f"{c.get('attempts:voice', 0)} calls ({c.get('outcome:answered_verified', 0)} verified, "
        f"{c.get('outcome:voicemail', 0)} machine, "
        f"{c.get('outcome:no_answer', 0) + c.get('outcome:busy', 0)} no answer/busy), "
        f"{c.get('outcome:sms_sent', 0)} SMS, {c.get('done', 0)} done; "
        f"{status.get('payments', 0)} payments, {status.get('recovered', '0.00')} recovered; "
        f"agreements {_agreements(status)}; held back by the rules: {held}"
    )


def _agreements(status: dict[str, Any]) -> str:
    a = status.get("agreements") or {}
    return f"{a.get('made', 0)} ({a.get('current', 0)}/{a.get('kept', 0)}/{a.get('broken', 0)})"


async def log_progress(store: Store, clock: Clock, stop: asyncio.Event, every_s: float) -> None:
    """Without a terminal: a line per campaign every ``every_s`` seconds, and a last one at stop."""
    while True:
        stopping = stop.is_set()
        try:
            statuses = await snapshot(store)
        except Exception as exc:  # Redis away: say so, keep trying
            log.warning("progress: Redis unreachable (%s); retrying", exc)
        else:
            now = clock.now().astimezone().strftime("%a %Y-%m-%d %H:%M")
            for status in statuses:
                if status["state"] not in ("archived",):
                    log.info("[clock %s] %s", now, summary_line(status))
        if stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)
