"""The campaign report: one row per account, for the company's billing system or a
spreadsheet — where each debtor stands, what was tried, what came of it. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from dialer.domain import Account, Attempt, Channel, Outcome, Phone

COLUMNS = (
    "account_id",
    "name",
    "status",
    "due_date",
    "amount",
    "currency",
    "phones",
    "calls",
    "sms",
    "last_attempt_at",
    "last_channel",
    "last_outcome",
    "verified_conversation",
    "suppressed_phones",
    "next_contact_at",
)


def report_row(
    account: Account,
    phones: Sequence[Phone],
    history: Sequence[Attempt],
    next_at: datetime | None,
    suppressed: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """The account's line: attempts counted once finished (a skipped step is not a contact)."""
    made = [a for a in history if a.outcome not in (Outcome.SKIPPED, Outcome.PLACED)]
    last: Attempt | None = None
    for a in made:  # the latest; among equal times the one recorded last
        if last is None or a.at >= last.at:
            last = a
    return {
        "account_id": account.account_id,
        "name": account.name,
        "status": account.status.value,
        "due_date": account.due_date.isoformat(),
        "amount": str(account.amount),
        "currency": account.currency,
        "phones": len(phones),
        "calls": sum(1 for a in made if a.channel is Channel.VOICE),
        "sms": sum(1 for a in made if a.channel is Channel.SMS),
        "last_attempt_at": last.at.isoformat() if last else "",
        "last_channel": last.channel.value if last else "",
        "last_outcome": last.outcome.value if last else "",
        "verified_conversation": any(a.outcome is Outcome.ANSWERED_VERIFIED for a in made),
        "suppressed_phones": sum(1 for p in phones if p.number in suppressed),
        "next_contact_at": next_at.isoformat() if next_at else "",
    }
