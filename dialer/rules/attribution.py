"""What each step of the régua recovered: the contacts that preceded a payment.

A payment is credited to the **last contact that reached someone or delivered a message**
before it (last touch): a verified conversation, a voicemail or an unverified answer that
heard the limited message, an SMS sent or delivered. Contacts that reached no one (no
answer, busy, failed, skipped) are listed but not credited. With no such contact the money
is recorded as recovered with no step ("" — the debtor paid on their own).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dialer.domain import Attempt, Outcome

CREDITED = frozenset(
    {
        Outcome.ANSWERED_VERIFIED,
        Outcome.ANSWERED_UNVERIFIED,
        Outcome.VOICEMAIL,
        Outcome.SMS_SENT,
        Outcome.SMS_DELIVERED,
    }
)
MAX_LISTED = 20


@dataclass(frozen=True, slots=True)
class Touch:
    step: str
    channel: str
    attempt: str
    at: datetime
    outcome: str
    hours_before: float

    def as_dict(self) -> dict[str, object]:
        return {
            "step": self.step,
            "channel": self.channel,
            "attempt": self.attempt,
            "at": self.at.isoformat(),
            "outcome": self.outcome,
            "hours_before": self.hours_before,
        }


@dataclass(frozen=True, slots=True)
class Attribution:
    touches: tuple[Touch, ...]  # the contacts before the payment, newest first (at most 20)
    step: str  # the credited step ("" when none)
    channel: str

    @property
    def credited(self) -> Touch | None:
        return next((t for t in self.touches if t.outcome in CREDITED and t.step == self.step), None)


def attribute(history: tuple[Attempt, ...] | list[Attempt], paid_at: datetime) -> Attribution:
    before = sorted(
        (a for a in history if a.at <= paid_at and a.outcome.is_attempt), key=lambda a: a.at, reverse=True
    )
    touches = tuple(
        Touch(
            a.step_id,
            a.channel.value,
            a.attempt_id,
            a.at,
            a.outcome.value,
            round((paid_at - a.at).total_seconds() / 3600, 1),
        )
        for a in before[:MAX_LISTED]
    )
    for a in before:
        if a.outcome in CREDITED:
            return Attribution(touches, a.step_id, a.channel.value)
    return Attribution(touches, "", "")
