"""The shapes of audit events, one function per kind, so every caller writes the same one."""

from __future__ import annotations

from typing import Any

from dialer.domain import Suppression


def suppression_event(s: Suppression, **context: str) -> tuple[str, dict[str, Any]]:
    """A suppression: ``("suppress", {number, channel, reason, source, **context})``
    (context: the campaign and account it came from, the SMS keyword …)."""
    return (
        "suppress",
        {
            "number": s.number,
            "channel": s.channel.value if s.channel else "*",
            "reason": s.reason.value,
            "source": s.source,
            **context,
        },
    )
