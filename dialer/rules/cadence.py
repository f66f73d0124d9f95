"""The régua: which step of the cadence is due next for an account.

Steps come from ``[cadence]`` in ``config/dialer.toml``, one list per payment method
(boleto, card, crediário, following the seeds): an offset in days from the due date or
a trigger (``charge_failed``), a channel, a template, a condition, how many attempts
and how far apart. ``next_step`` is pure: give it the account, its history and the
debtor's local date, and it says what is due and from when. Whether the contact may
actually happen then is ``policy.decide``'s question, asked again at dispatch.

Catch-up rule: when several steps are overdue (a campaign loaded at D+12), only the
latest one runs — a debtor does not get the D-10, D0, D+1 and D+5 messages in one day.
Steps older than the last one already worked are never revisited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from dialer.domain import Account, AccountStatus, Attempt, Channel, Outcome
from dialer.settings import Settings

# outcomes after which a step has reached someone and is done
_REACHED = frozenset(
    {
        Outcome.ANSWERED_VERIFIED,
        Outcome.ANSWERED_UNVERIFIED,
        Outcome.THIRD_PARTY,
        Outcome.VOICEMAIL,
        Outcome.WRONG_NUMBER,
        Outcome.SMS_SENT,
        Outcome.SMS_DELIVERED,
    }
)


_DONE = _REACHED | {Outcome.SKIPPED}


@dataclass(frozen=True, slots=True)
class Step:
    id: str
    channel: Channel
    template: str
    offset_days: int | None = None
    trigger: str | None = None
    when: str = "always"  # always | previous_call_unanswered | not_reached_yet
    max_attempts: int = 1
    retry_after: timedelta = timedelta(hours=4)
    fallback_sms: bool = False


@dataclass(frozen=True, slots=True)
class Cadence:
    steps: Mapping[str, tuple[Step, ...]]  # payment method -> steps
    works_on: frozenset[AccountStatus] = frozenset({AccountStatus.OPEN})  # the accounts it works
    _dated: Mapping[str, tuple[Step, ...]] = field(init=False, repr=False, compare=False)
    _triggered: Mapping[str, tuple[Step, ...]] = field(init=False, repr=False, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Cadence:
        return cls(
            {
                method: tuple(
                    Step(
                        id=s.id,
                        channel=Channel(s.channel),
                        template=s.template,
                        offset_days=s.offset_days,
                        trigger=s.trigger,
                        when=s.when,
                        max_attempts=s.max_attempts,
                        retry_after=timedelta(minutes=s.retry_after_minutes),
                        fallback_sms=s.fallback == "sms",
                    )
                    for s in steps
                )
                for method, steps in settings.cadence.items()
            }
        )

    def __post_init__(self) -> None:
        dated = {
            method: tuple(
                sorted((s for s in steps if s.offset_days is not None), key=lambda s: s.offset_days or 0)
            )
            for method, steps in self.steps.items()
        }
        object.__setattr__(self, "_dated", dated)
        triggered = {
            method: tuple(s for s in steps if s.trigger is not None) for method, steps in self.steps.items()
        }
        object.__setattr__(self, "_triggered", triggered)

    def dated(self, method: str) -> tuple[Step, ...]:
        """The steps with an offset, in cadence order (sorted once)."""
        return self._dated.get(method, ())

    def step(self, method: str, step_id: str) -> Step | None:
        for s in self.steps.get(method, ()):
            if s.id == step_id:
                return s
        return None


@dataclass(frozen=True, slots=True)
class NextStep:
    step: Step
    due_on: date  # the debtor-local date the step belongs to
    not_before: datetime | None  # a retry waits until then; None: any time on due_on
    attempt: int  # 1 for the first try of this step


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to the account outside Régua (e.g. a failed card charge)."""

    kind: str
    on: date


def _step_done(step: Step, attempts: Sequence[Attempt]) -> bool:
    finished = 0
    for a in attempts:
        if a.outcome in _DONE:
            return True
        if a.outcome is not Outcome.PLACED:
            finished += 1
    return finished >= step.max_attempts


def _condition_holds(step: Step, history: Sequence[Attempt]) -> bool:
    if step.when == "always":
        return True
    if step.when == "not_reached_yet":
        return not any(a.outcome is Outcome.ANSWERED_VERIFIED for a in history)
    if step.when == "previous_call_unanswered":
        calls = [a for a in history if a.channel is Channel.VOICE and a.outcome is not Outcome.PLACED]
        if not calls:
            return False
        return not max(calls, key=lambda a: a.at).outcome.answered
    raise ValueError(f"unknown step condition {step.when!r}")


def next_step(
    account: Account,
    history: Sequence[Attempt],
    today: date,
    cadence: Cadence,
    events: Sequence[Event] = (),
) -> NextStep | None:
    """What is due next for ``account`` on the debtor-local date ``today`` (or later).

    Returns ``None`` when the régua has nothing more to do (paid, disputed, or every
    step worked).
    """
    if account.status not in cadence.works_on:
        return None
    method = account.payment_method  # a StrEnum: the same key as its value
    account_id = account.account_id
    mine = [a for a in history if a.account_id == account_id]
    dated = cadence._dated.get(method, ())
    if not mine and not events:  # the common case at load time: the first dated step not past
        return _first_step(account, dated, today)
    by_step: dict[str, list[Attempt]] = {}
    for a in mine:
        if a.step_id in by_step:
            by_step[a.step_id].append(a)
        else:
            by_step[a.step_id] = [a]

    # a triggered step runs once per event, on the event's date
    for step in cadence._triggered.get(method, ()) if events else ():
        for event in sorted(events, key=lambda e: e.on, reverse=True):
            if event.kind != step.trigger or event.on > today:
                continue
            since = [a for a in by_step.get(step.id, ()) if a.at.date() >= event.on]
            if not _step_done(step, since):
                return _pending(step, event.on, since)

    days = (today - account.due_date).days
    last_worked: int | None = None  # dated steps are in offset order: the last one tried
    for s in dated:
        if s.id in by_step:
            last_worked = s.offset_days or 0
    candidates = []
    latest_due: Step | None = None  # catch-up: only the latest overdue step runs
    for s in dated:
        offset = s.offset_days or 0
        if last_worked is not None and offset < last_worked:
            continue
        tries = by_step.get(s.id)
        if tries and _step_done(s, tries):
            continue
        candidates.append(s)
        if offset <= days:
            latest_due = s
    if latest_due is not None and _condition_holds(latest_due, mine):
        return _pending(
            latest_due,
            account.due_date + timedelta(days=latest_due.offset_days or 0),
            by_step.get(latest_due.id, ()),
        )
    reached = any(a.outcome is Outcome.ANSWERED_VERIFIED for a in mine)
    for step in candidates:
        if step.when == "not_reached_yet" and reached:
            continue  # a conversation happened: it cannot un-happen
        if (step.offset_days or 0) > days:
            return NextStep(step, account.due_date + timedelta(days=step.offset_days or 0), None, 1)
    return None


def _first_step(account: Account, dated: Sequence[Step], today: date) -> NextStep | None:
    """No history yet: the latest step already due (catch-up), else the first one ahead."""
    days = (today - account.due_date).days
    due: Step | None = None
    ahead: Step | None = None
    for s in dated:  # in offset order
        if (s.offset_days or 0) <= days:
            due = s
        else:
            ahead = s
            break
    if due is not None and due.when != "previous_call_unanswered":  # no call yet: cannot hold
        return NextStep(due, account.due_date + timedelta(days=due.offset_days or 0), None, 1)
    if ahead is not None:
        return NextStep(ahead, account.due_date + timedelta(days=ahead.offset_days or 0), None, 1)
    return None


def _pending(step: Step, due_on: date, attempts: Sequence[Attempt]) -> NextStep:
    tries = [a for a in attempts if a.outcome is not Outcome.PLACED]
    not_before = max(a.at for a in tries) + step.retry_after if tries else None
    return NextStep(step, due_on, not_before, len(tries) + 1)
