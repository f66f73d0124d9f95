"""What to do with an account when its schedule entry comes due — pure, no I/O.

``plan_account`` combines the régua (``cadence.next_step``) with the rules
(``policy.decide``, asked for every phone that could carry the step) and returns one
``Plan`` — a tagged union: ``PlanContact`` (a phone now), ``PlanLater`` (wait until an
instant), ``PlanSkip`` (a step no rule will ever allow) or ``PlanDone`` (nothing left). The worker executes it; ``decide`` is therefore asked
again at dispatch time, whatever was planned when the entry was scheduled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import ClassVar, assert_never
from zoneinfo import ZoneInfo

from dialer.domain import Account, Attempt, Channel, Contact, Decision, Outcome, Phone, PhoneType, Suppression
from dialer.rules.cadence import Cadence, Step, next_step
from dialer.rules.local_time import locate
from dialer.rules.policy import Policy, allowed_until, decide

FALLBACK_SUFFIX = "~sms"

# a call ending like this did not reach anyone: the step's SMS fallback applies
NOT_REACHED = frozenset(
    {Outcome.NO_ANSWER, Outcome.BUSY, Outcome.CONGESTION, Outcome.FAILED, Outcome.REJECTED}
)

_PHONE_ORDER = {PhoneType.MOBILE: 0, PhoneType.HOME: 1, PhoneType.WORK: 2}


@dataclass(frozen=True, slots=True)
class PlanContact:
    """Reach ``phone`` on ``channel`` now, for ``step`` (``decide()`` allowed it)."""

    kind: ClassVar[str] = "contact"
    step: Step
    channel: Channel
    phone: Phone
    decisions: tuple[tuple[str, Decision], ...] = ()
    attempt: int = 1
    fallback_for: str | None = None  # the voice step this SMS is the fallback of
    note: str = ""
    until: datetime | None = None  # the time rules allow it until then (policy.allowed_until)


@dataclass(frozen=True, slots=True)
class PlanLater:
    """Nothing now: look at the account again at ``at`` (the rules or the régua wait)."""

    kind: ClassVar[str] = "later"
    step: Step
    channel: Channel
    at: datetime
    decisions: tuple[tuple[str, Decision], ...] = ()
    attempt: int = 1
    fallback_for: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class PlanSkip:
    """No phone will ever be allowed to take ``step``: record it skipped and go on."""

    kind: ClassVar[str] = "skip"
    step: Step
    channel: Channel
    decisions: tuple[tuple[str, Decision], ...] = ()
    attempt: int = 1
    fallback_for: str | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class PlanDone:
    """The régua has nothing more for this account."""

    kind: ClassVar[str] = "done"
    note: str = ""


Plan = PlanContact | PlanLater | PlanSkip | PlanDone


def local_zone(phones: Sequence[Phone], region: str | None, timezone: str | None) -> ZoneInfo:
    """The zone whose calendar date is the account's 'today' (its first phone's primary zone)."""
    return locate(phones[0].number, region, timezone).tzinfos[0]


def _candidates(phones: Sequence[Phone], channel: Channel) -> list[Phone]:
    ordered = sorted(phones, key=lambda p: (_PHONE_ORDER[p.phone_type], p.number))
    match channel:
        case Channel.VOICE:
            return ordered
        case Channel.SMS:  # texts go to mobiles only
            return [p for p in ordered if p.phone_type is PhoneType.MOBILE]
        case _:
            assert_never(channel)


def _try_phones(
    state_account: Account,
    phones: Sequence[Phone],
    channel: Channel,
    history: Sequence[Attempt],
    suppressions: Mapping[str, Sequence[Suppression]],
    now: datetime,
    policy: Policy,
) -> tuple[Phone | None, list[tuple[str, Decision]], datetime | None]:
    """First phone decide() allows now; else the earliest not_before among the others."""
    decisions: list[tuple[str, Decision]] = []
    earliest: datetime | None = None
    for phone in _candidates(phones, channel):
        contact = Contact(state_account, phone, channel, tuple(suppressions.get(phone.number, ())))
        d = decide(contact, history, now, policy)
        decisions.append((phone.number, d))
        if d.allowed:
            return phone, decisions, None
        if d.not_before is not None and (earliest is None or d.not_before < earliest):
            earliest = d.not_before
    return None, decisions, earliest


def plan_account(
    account: Account,
    phones: Sequence[Phone],
    history: Sequence[Attempt],
    fallback: str | None,
    suppressions: Mapping[str, Sequence[Suppression]],
    now: datetime,
    policy: Policy,
    cadence: Cadence,
) -> Plan:
    """The one thing to do for this account at ``now``."""
    if not phones:
        return PlanDone("no phones")
    if fallback:
        phone, decisions, earliest = _try_phones(
            account, phones, Channel.SMS, history, suppressions, now, policy
        )
        fb_step = Step(fallback + FALLBACK_SUFFIX, Channel.SMS, "limited")
        if phone is not None:
            return PlanContact(fb_step, Channel.SMS, phone, tuple(decisions), fallback_for=fallback)
        if earliest is not None:
            return PlanLater(fb_step, Channel.SMS, earliest, tuple(decisions), fallback_for=fallback)
        # no phone will ever take this SMS: drop the fallback, go on with the régua
        return PlanSkip(
            fb_step,
            Channel.SMS,
            tuple(decisions),
            fallback_for=fallback,
            note="no phone may receive the fallback SMS",
        )

    tz = local_zone(phones, account.region, account.timezone)
    today = now.astimezone(tz).date()
    nxt = next_step(account, history, today, cadence)
    if nxt is None:
        return PlanDone("régua finished" if account.status.value == "open" else account.status.value)
    start = datetime.combine(nxt.due_on, time(0), tz)
    if nxt.not_before is not None and nxt.not_before > start:
        start = nxt.not_before
    if start > now:
        return PlanLater(
            nxt.step, nxt.step.channel, start, attempt=nxt.attempt, note="next step of the régua"
        )
    phone, decisions, earliest = _try_phones(
        account, phones, nxt.step.channel, history, suppressions, now, policy
    )
    if phone is not None:
        channel = nxt.step.channel
        # a call may wait for a trunk: say until when the rules allow it
        until = allowed_until(Contact(account, phone, channel), now, policy) if channel.is_call else None
        return PlanContact(nxt.step, channel, phone, tuple(decisions), attempt=nxt.attempt, until=until)
    if earliest is not None:
        return PlanLater(
            nxt.step,
            nxt.step.channel,
            earliest,
            tuple(decisions),
            attempt=nxt.attempt,
            note="held by the rules",
        )
    return PlanSkip(
        nxt.step,
        nxt.step.channel,
        tuple(decisions),
        attempt=nxt.attempt,
        note="no phone may ever take this step",
    )


def next_wake(
    account: Account,
    phones: Sequence[Phone],
    history: Sequence[Attempt],
    fallback: str | None,
    now: datetime,
    cadence: Cadence,
) -> datetime | None:
    """When to look at the account again after an attempt (None: the régua is over).

    The next step's local day (or its retry time), without asking the rules: they are asked
    when the entry comes due, at dispatch, as always. A pending SMS fallback is due now.
    """
    if not phones:
        return None
    if fallback:
        return now
    tz = local_zone(phones, account.region, account.timezone)
    nxt = next_step(account, history, now.astimezone(tz).date(), cadence)
    if nxt is None:
        return None
    start = datetime.combine(nxt.due_on, time(0), tz)
    if nxt.not_before is not None and nxt.not_before > start:
        start = nxt.not_before
    return max(start, now)


def fallback_due(step: Step, outcome: Outcome, history: Sequence[Attempt]) -> bool:
    """Whether a finished call should trigger the step's limited SMS (once per step)."""
    if not step.fallback_sms or outcome not in NOT_REACHED:
        return False
    return not any(a.step_id == step.id + FALLBACK_SUFFIX for a in history)
