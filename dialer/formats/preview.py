"""``python -m dialer plan``: the supervisor's preview of every decision, and our test contract."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from dialer.domain import Attempt, Channel, Contact, Decision, Suppression
from dialer.formats.campaign_file import CampaignReader, CampaignRow, RowError
from dialer.rules.policy import Policy, decide


@dataclass(frozen=True, slots=True)
class PlannedContact:
    row: CampaignRow
    decision: Decision

    def as_json(self) -> dict[str, object]:
        return {
            "line": self.row.line,
            "account_id": self.row.account.account_id,
            "phone": self.row.phone.number,
            **self.decision.as_dict(),
        }


def plan(
    reader: CampaignReader,
    history: Mapping[str, Sequence[Attempt]],
    now: datetime,
    policy: Policy,
    suppressions: Mapping[str, Sequence[Suppression]] | None = None,
) -> Iterator[PlannedContact | RowError]:
    """One decision per phone row and channel; rejected rows pass through as RowError."""
    for item in reader:
        if isinstance(item, RowError):
            yield item
            continue
        past = history.get(item.account.account_id, ())
        stops = tuple((suppressions or {}).get(item.phone.number, ()))
        for channel in (Channel.VOICE, Channel.SMS):
            contact = Contact(item.account, item.phone, channel, stops)
            yield PlannedContact(item, decide(contact, past, now, policy))
