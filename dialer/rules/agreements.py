"""Agreements (acordos), pure: what an accepted offer commits to, and where it stands.

An agreement is an accepted ``Offer`` for one account: its installments, each a charge of
its own. While it is *current* the account's régua waits and the agreement's own reminders
run instead — a step per installment and per ``reminder_days`` (D−3 and D0 by default),
SMS steps that go through ``decide()`` like any other contact (``reminder_cadence``).

``review`` says where it stands on a date: *kept* when every installment is paid (the
account closes as paid), *broken* when an installment is still unpaid ``break_after_days``
after its due date (the account goes back to its régua), else *current* with the date to
look again. The id is a function of the account and the offer, so the same offer accepted
twice (a double click, two tabs, a reload) is one agreement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from dialer.domain import Account, AccountStatus, Channel
from dialer.rules.cadence import Cadence, Step
from dialer.rules.offers import Installment, Offer

REMINDER_TEMPLATE = "agreement_reminder"


class AgreementStatus(StrEnum):
    CURRENT = "current"
    KEPT = "kept"  # every installment paid
    BROKEN = "broken"  # an installment unpaid too long: back to the régua


def agreement_id(account_id: str, offer_id: str) -> str:
    return "ag" + hashlib.sha256(f"agreement\x1f{account_id}\x1f{offer_id}".encode()).hexdigest()[:22]


@dataclass(frozen=True, slots=True)
class Review:
    status: AgreementStatus
    overdue: Installment | None = None  # the installment that broke it (or is late)
    look_again: date | None = None  # when the standing can change without a payment


def review(offer: Offer, paid: Collection[int], today: date, break_after_days: int) -> Review:
    """Where an agreement stands on the debtor-local date ``today`` given the installments
    paid (their numbers)."""
    unpaid = [i for i in offer.installments if i.number not in paid]
    if not unpaid:
        return Review(AgreementStatus.KEPT)
    first = unpaid[0]
    breaks_on = first.due + timedelta(days=break_after_days)
    if today >= breaks_on:
        return Review(AgreementStatus.BROKEN, first)
    return Review(AgreementStatus.CURRENT, first if today > first.due else None, breaks_on)


def step_id(agreement: str, installment: int, day: int) -> str:
    return f"{agreement[2:10]}-p{installment}{'d' if day >= 0 else 'm'}{abs(day)}"


def reminder_cadence(
    agreement: str, offer: Offer, account: Account, paid: Collection[int], reminder_days: Collection[int]
) -> Cadence:
    """The reminders still to come, as a cadence the planner works on an account in
    agreement: one SMS step per unpaid installment and reminder day."""
    steps = tuple(
        Step(
            id=step_id(agreement, i.number, day),
            channel=Channel.SMS,
            template=REMINDER_TEMPLATE,
            offset_days=(i.due - account.due_date).days + day,
        )
        for i in offer.installments
        if i.number not in paid
        for day in sorted(reminder_days)
    )
    return Cadence({account.payment_method.value: steps}, works_on=frozenset({AccountStatus.AGREEMENT}))


def cadence_for(account: Account, record: Any, cadence: Cadence, negotiation: Any) -> Cadence:
    """What the planner works for ``account``: its régua, or — in agreement — the current
    agreement's reminders (``record``: the agreement as stored; none: nothing to remind)."""
    if account.status is not AccountStatus.AGREEMENT:
        return cadence
    if record is None:  # ended meanwhile: its status follows
        return Cadence({})
    return reminder_cadence(
        record.agreement_id, record.offer, account, record.paid, negotiation.reminder_days
    )


def sms_templates(settings: Any, template: str) -> Mapping[str, str]:
    """The texts of an SMS step: an agreement's reminder (where to pay, behind the second
    factor) or the limited message. Both are limited: anyone may read an SMS."""
    if template == REMINDER_TEMPLATE:
        return dict(settings.negotiation.reminder_sms)
    return dict(settings.limited_message.sms)
