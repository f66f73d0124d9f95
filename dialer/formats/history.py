"""Attempt history files: JSON lines of past attempts (``plan --history``).

Each line: ``{"account_id": …, "phone": …, "channel": "voice"|"sms", "at": ISO 8601 with
offset, "outcome": …}`` and optionally ``step_id``. Bad lines raise ``InputError`` naming
the line, the field and the reason: a preview built on a half-read history would lie.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from dialer.domain import Attempt, Channel, Outcome
from dialer.errors import InputError
from dialer.formats.cell_values import normalise_phone


def parse_instant(text: str, what: str = "time") -> datetime:
    """ISO 8601 with an offset (``Z`` allowed). Naive times are refused."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{what} {text!r} is not ISO 8601 (e.g. 2026-11-23T10:00:00-03:00)") from None
    if value.tzinfo is None:
        raise ValueError(f"{what} {text!r} has no UTC offset (add e.g. -03:00 or Z)")
    return value


def attempt_from_json(obj: Any) -> Attempt:
    if not isinstance(obj, dict):
        raise ValueError("is not a JSON object")
    for key in ("account_id", "phone", "channel", "at", "outcome"):
        if not isinstance(obj.get(key), str) or not obj[key].strip():
            raise ValueError(f"field {key!r} is missing or not a string")
    try:
        channel = Channel(obj["channel"])
    except ValueError:
        raise ValueError(f"field 'channel': {obj['channel']!r} is not voice or sms") from None
    try:
        outcome = Outcome(obj["outcome"])
    except ValueError:
        allowed = ", ".join(o.value for o in Outcome)
        raise ValueError(f"field 'outcome': {obj['outcome']!r} is not one of {allowed}") from None
    try:
        phone, _ = normalise_phone(obj["phone"])
    except ValueError as exc:
        raise ValueError(f"field 'phone': {exc}") from None
    at = parse_instant(obj["at"], "field 'at':")
    return Attempt(
        account_id=obj["account_id"].strip(),
        phone=phone,
        channel=channel,
        at=at,
        outcome=outcome,
        attempt_id=str(obj.get("attempt_id", "")),
        step_id=str(obj.get("step_id", "")),
    )


def read_history(lines: Iterable[str], source: str = "history") -> dict[str, list[Attempt]]:
    """Attempts grouped by account id."""
    out: dict[str, list[Attempt]] = defaultdict(list)
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            attempt = attempt_from_json(json.loads(line))
        except json.JSONDecodeError as exc:
            raise InputError(f"{source}: line {number}: not JSON ({exc.msg})") from None
        except ValueError as exc:
            raise InputError(f"{source}: line {number}: {exc}") from None
        out[attempt.account_id].append(attempt)
    return dict(out)
