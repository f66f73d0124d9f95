"""What an outcome implies — pure, no I/O.

When a worked entry ends (a contact made or not, a plan that waits, a claim refused, an
attempt reclaimed from a dead worker), one of the ``settle_*`` functions says everything
it implies: the attempt as recorded, the suppressions it causes, the callback the debtor
asked for, the SMS fallback a missed call triggers, the timeline events, the counters and
the next wake-up. The worker carries the result out (``Store.finish_many`` and
``Store.write_effects``) as soon as that contact ends — a call when it hangs up, the SMS
of one batch when the gateway has answered for the batch; it decides nothing itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol, assert_never

from dialer.domain import (
    Account,
    Attempt,
    CallResult,
    Channel,
    IvrAction,
    Outcome,
    Phone,
    Suppression,
    SuppressionReason,
)
from dialer.rules.audit import suppression_event
from dialer.rules.cadence import Cadence
from dialer.rules.planning import (
    Plan,
    PlanContact,
    PlanDone,
    PlanLater,
    PlanSkip,
    fallback_due,
    next_wake,
)

NOT_PLACED_RETRY = timedelta(minutes=5)


# ---------------------------------------------------------------------------- what is written


@dataclass(slots=True)
class Finish:
    """Everything one worked entry writes at the end, in one script."""

    campaign: str
    account_id: str
    entry_id: str = ""
    attempt: Attempt | None = None
    next_at: datetime | None = None
    drop_attempt: bool = False  # forget the claimed attempt: no contact was made
    fallback: str = ""  # "" keep, "-" clear, "<step>" set
    stats: dict[str, int] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Effects:
    """Side writes (suppressions, audit, callbacks, links, SMS index, counters given back),
    flushed in one pipeline for every contact that ended together."""

    suppressions: list[Suppression] = field(default_factory=list)
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (kind, data)
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)  # (link, campaign, account)
    sms: list[tuple[str, str, str, str, str]] = field(
        default_factory=list
    )  # provider, id, campaign, account, attempt
    uncount: list[tuple[str, Channel, date]] = field(default_factory=list)  # phone-day counters

    def __bool__(self) -> bool:
        return bool(
            self.suppressions or self.audit or self.callbacks or self.links or self.sms or self.uncount
        )

    def extend(self, other: Effects) -> None:
        self.suppressions += other.suppressions
        self.audit += other.audit
        self.callbacks += other.callbacks
        self.links += other.links
        self.sms += other.sms
        self.uncount += other.uncount


@dataclass(slots=True)
class Settlement:
    finish: Finish
    effects: Effects = field(default_factory=Effects)


# ---------------------------------------------------------------------------- what comes in


class EntryRef(Protocol):
    """A work stream entry (``store.WorkItem``)."""

    @property
    def campaign(self) -> str: ...

    @property
    def entry_id(self) -> str: ...

    @property
    def account_id(self) -> str: ...


class AccountView(Protocol):
    """An account as the worker read it (``store.AccountState``)."""

    @property
    def account(self) -> Account: ...

    @property
    def phones(self) -> tuple[Phone, ...]: ...

    @property
    def history(self) -> tuple[Attempt, ...]: ...

    @property
    def fallback(self) -> str | None: ...


class SentMessage(Protocol):
    """What a gateway said of a sent SMS (``sms_gateway.SendResult``)."""

    @property
    def provider(self) -> str: ...

    @property
    def message_id(self) -> str: ...

    @property
    def segments(self) -> int: ...

    @property
    def encoding(self) -> str: ...

    @property
    def cost(self) -> float: ...

    @property
    def duplicate(self) -> bool: ...

    @property
    def sandbox(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class CallEnded:
    """A call was placed and is over."""

    result: CallResult
    payment_link: dict[str, Any] | None = None  # the timeline event of the link SMS sent after it
    link_opted_out: bool = False  # that SMS was refused: the recipient unsubscribed at the provider
    provider: str = ""  # the SMS gateway's name, for that suppression's source


@dataclass(frozen=True, slots=True)
class TextEnded:
    """An SMS was handed to the gateway (``sent``) or refused (``error``)."""

    text: str
    sent: SentMessage | None = None
    error: str = ""
    opted_out: bool = False  # refused because the recipient unsubscribed at the provider
    provider: str = ""  # the gateway's name, for the suppression's source


@dataclass(frozen=True, slots=True)
class NotPlaced:
    """The contact was never made (no telephony, throttled): try again at ``retry_at``."""

    error: str
    retry_at: datetime | None = None


Ended = CallEnded | TextEnded | NotPlaced


# ---------------------------------------------------------------------------- settling


def decision_events(plan: Plan, at: datetime) -> list[dict[str, Any]]:
    """The decisions the plan was made of, one timeline event per phone asked about."""
    if isinstance(plan, PlanDone) or not plan.decisions:
        return []
    at_iso, step = at.isoformat(), plan.step.id
    # tuples and enums go to JSON as they are (orjson): no copies on the hot path
    return [
        {
            "at": at_iso,
            "kind": "decision",
            "step": step,
            "phone": number,
            "allowed": d.allowed,
            "channel": d.channel,
            "reasons": d.reasons,
            "not_before": d.not_before.isoformat() if d.not_before is not None else None,
            "time_zones": d.time_zones,
            "pack": d.pack,
            "region": d.region,
        }
        for number, d in plan.decisions
    ]


def _blocked_stats(plan: PlanLater | PlanSkip) -> dict[str, int]:
    stats: dict[str, int] = {}
    for _, d in plan.decisions:
        for r in d.reasons:
            stats[f"blocked:{r}"] = stats.get(f"blocked:{r}", 0) + 1
    return stats


def settle_no_contact(ref: EntryRef, plan: PlanLater | PlanSkip | PlanDone, now: datetime) -> Finish:
    """A plan that makes no contact: wait, skip a step no rule will allow, or finish."""
    campaign, account_id, entry_id = ref.campaign, ref.account_id, ref.entry_id
    events = decision_events(plan, now)
    match plan:
        case PlanLater():
            events.append(
                {
                    "at": now.isoformat(),
                    "kind": "scheduled",
                    "step": plan.step.id,
                    "next_at": plan.at.isoformat(),
                    "note": plan.note,
                }
            )
            return Finish(
                campaign, account_id, entry_id, next_at=plan.at, stats=_blocked_stats(plan), events=events
            )
        case PlanSkip():
            stats = {**_blocked_stats(plan), "skipped": 1}
            events.append(
                {"at": now.isoformat(), "kind": "step_skipped", "step": plan.step.id, "note": plan.note}
            )
            if plan.fallback_for:  # drop the fallback; look at the régua again at once
                return Finish(
                    campaign, account_id, entry_id, next_at=now, fallback="-", stats=stats, events=events
                )
            marker = Attempt(
                account_id,
                "",
                plan.step.channel,
                now,
                Outcome.SKIPPED,
                f"{campaign}:{entry_id}",
                plan.step.id,
            )
            return Finish(
                campaign, account_id, entry_id, attempt=marker, next_at=now, stats=stats, events=events
            )
        case PlanDone():
            events.append({"at": now.isoformat(), "kind": "done", "note": plan.note})
            return Finish(campaign, account_id, entry_id, stats={"done": 1}, events=events)
        case _:
            assert_never(plan)


def settle_unclaimed(ref: EntryRef, status: str, now: datetime) -> Finish:
    """The claim was refused: the account changed since it was read (``stale``: plan again
    in a second) or another attempt holds it (``locked``: look again in 30 s)."""
    delay = timedelta(seconds=1 if status == "stale" else 30)
    return Finish(
        ref.campaign, ref.account_id, ref.entry_id, next_at=now + delay, stats={f"claim_{status}": 1}
    )


def settle_over_cap(
    ref: EntryRef, plan: PlanContact, attempt: Attempt, tomorrow: datetime, now: datetime
) -> Finish:
    """The phone's daily cap across every campaign is used up: give the attempt back and
    wait for the debtor's next local day."""
    return Finish(
        ref.campaign,
        ref.account_id,
        ref.entry_id,
        attempt=attempt,
        drop_attempt=True,
        next_at=tomorrow,
        stats={"blocked:attempt_cap": 1},
        events=[
            {
                "at": now.isoformat(),
                "kind": "decision",
                "step": plan.step.id,
                "phone": plan.phone.number,
                "channel": attempt.channel,
                "allowed": False,
                "reasons": ["attempt_cap"],
                "not_before": tomorrow.isoformat(),
                "note": "this phone's daily cap was used by another campaign",
            }
        ],
    )


def settle_reclaimed(
    ref: EntryRef,
    state: AccountView,
    existing: Attempt,
    result: CallResult | None,
    now: datetime,
    cadence: Cadence,
    effects: Effects | None = None,
) -> Settlement:
    """An entry whose attempt a worker claimed and then died: never redo it; record what
    the PBX says became of it (``result``: its outcome and what the debtor asked for on
    the call — an opt-out, a wrong number, a callback — are honoured), else ``unknown``."""
    if effects is None:
        effects = Effects()
    outcome = existing.outcome
    detail = "reclaimed"
    now_iso = now.isoformat()
    events: list[dict[str, Any]] = []
    stats: dict[str, int] = {"reclaimed": 1}
    if outcome is Outcome.PLACED:
        outcome = result.outcome if result else Outcome.UNKNOWN
        detail = "reclaimed after a worker died; " + ("outcome from the PBX" if result else "outcome unknown")
    final = _with_outcome(existing, outcome)
    events.append(
        {"at": now_iso, "kind": "reconciled", "attempt": final.attempt_id, "outcome": outcome, "note": detail}
    )
    stats[f"outcome:{outcome}"] = 1
    if result is not None and existing.outcome is Outcome.PLACED:
        _implications(
            ref, existing.phone, outcome, result.actions, None, None, now_iso, events, stats, effects
        )
    history = [a for a in state.history if a.attempt_id != final.attempt_id] + [final]
    finish = Finish(
        ref.campaign,
        ref.account_id,
        ref.entry_id,
        attempt=final,
        next_at=next_wake(state.account, state.phones, history, state.fallback, now, cadence),
        stats=stats,
        events=events,
    )
    return Settlement(finish, effects)


def _with_outcome(a: Attempt, outcome: Outcome) -> Attempt:
    return Attempt(a.account_id, a.phone, a.channel, a.at, outcome, a.attempt_id, a.step_id)


def settle_contact(
    ref: EntryRef,
    state: AccountView,
    plan: PlanContact,
    attempt: Attempt,
    ended: Ended,
    now: datetime,
    cadence: Cadence,
    effects: Effects | None = None,
) -> Settlement:
    """A contact that was made (or could not be): its outcome, what it implies, and when
    to look at the account again. Side effects go into ``effects`` when given (the batch's
    accumulator: contacts that end together are written together), else a new one."""
    campaign = ref.campaign
    now_iso = now.isoformat()
    events = decision_events(plan, attempt.at)
    if effects is None:
        effects = Effects()
    if isinstance(ended, NotPlaced):
        events.append(
            {
                "at": now_iso,
                "kind": "not_placed",
                "channel": plan.channel,
                "phone": plan.phone.number,
                "step": plan.step.id,
                "error": ended.error,
            }
        )
        finish = Finish(
            campaign,
            ref.account_id,
            ref.entry_id,
            attempt=attempt,
            drop_attempt=True,
            next_at=ended.retry_at or now + NOT_PLACED_RETRY,
            stats={f"not_placed:{plan.channel}": 1},
            events=events,
        )
        return Settlement(finish, effects)

    actions: tuple[IvrAction, ...] = ()
    provider_stop: Suppression | None = None  # the SMS provider says the recipient unsubscribed
    number = plan.phone.number
    match ended:
        case CallEnded(result=result):
            outcome = result.outcome
            info: dict[str, Any] = {
                "duration_s": result.duration_s,
                "amd": result.amd,
                "cause": result.hangup_cause,
                "trunk": result.trunk,
            }
            if result.sandbox:
                info["sandbox"] = True
            events.extend({"at": now_iso, **e} for e in result.events)
            actions = result.actions
            if ended.link_opted_out:
                provider_stop = _provider_opt_out(number, f"sms-provider:{ended.provider}")
        case TextEnded(sent=sent, error=error):
            outcome, info = _text_outcome(ended)
            info = {**info, "level": "limited", "text": ended.text}
            if sent is not None and not error:
                # a message split in parts has one provider id per part, joined by commas
                for part_id in sent.message_id.split(","):
                    effects.sms.append((sent.provider, part_id, campaign, ref.account_id, attempt.attempt_id))
            if ended.opted_out:
                provider_stop = _provider_opt_out(number, f"sms-provider:{ended.provider}")
        case _:
            assert_never(ended)

    final = _with_outcome(attempt, outcome)
    events.append(
        {
            "at": now_iso,
            "kind": "attempt",
            "attempt": attempt.attempt_id,
            "channel": attempt.channel,
            "phone": number,
            "step": plan.step.id,
            "try": plan.attempt,
            "outcome": outcome,
            **info,
        }
    )
    stats = {f"outcome:{outcome}": 1, f"attempts:{plan.channel}": 1}
    payment_link = ended.payment_link if isinstance(ended, CallEnded) else None
    _implications(ref, number, outcome, actions, provider_stop, payment_link, now_iso, events, stats, effects)
    history = [a for a in state.history if a.attempt_id != final.attempt_id] + [final]
    fallback_op, fallback = "", state.fallback
    if plan.fallback_for:
        fallback_op, fallback = "-", None
    elif plan.channel is Channel.VOICE and fallback_due(plan.step, outcome, history):
        fallback_op, fallback = plan.step.id, plan.step.id
        events.append({"at": now_iso, "kind": "fallback_sms_due", "step": plan.step.id})
    next_at = next_wake(state.account, state.phones, history, fallback, now, cadence)
    if next_at is None:
        stats["done"] = 1
    finish = Finish(
        campaign,
        ref.account_id,
        ref.entry_id,
        attempt=final,
        next_at=next_at,
        fallback=fallback_op,
        stats=stats,
        events=events,
    )
    return Settlement(finish, effects)


def _implications(
    ref: EntryRef,
    number: str,
    outcome: Outcome,
    actions: Sequence[IvrAction],
    provider_stop: Suppression | None,
    payment_link: dict[str, Any] | None,
    now_iso: str,
    events: list[dict[str, Any]],
    stats: dict[str, int],
    effects: Effects,
) -> None:
    """What the outcome itself and what the person asked for imply: suppressions (an
    unallocated number, a wrong number, an opt-out, an unsubscribe at the SMS provider),
    a callback request, the payment link's timeline event — each on the timeline and the
    suppressions in the audit."""
    campaign = ref.campaign
    stops: list[Suppression] = []
    if outcome is Outcome.INVALID_NUMBER:
        stops.append(Suppression(number, SuppressionReason.INVALID_NUMBER, None, None, f"call:{campaign}"))
    if provider_stop is not None:
        stops.append(provider_stop)
    for action in actions:
        match action.kind:
            case "wrong_number":
                stops.append(
                    Suppression(number, SuppressionReason.WRONG_NUMBER, None, None, f"ivr:{campaign}")
                )
            case "opt_out":
                channel = Channel(action.data.get("channel", "voice"))
                stops.append(Suppression(number, SuppressionReason.OPT_OUT, channel, None, f"ivr:{campaign}"))
            case "callback":
                effects.callbacks.append(
                    {
                        "campaign": campaign,
                        "account_id": ref.account_id,
                        "phone": number,
                        "window": action.data.get("window", ""),  # hours in the debtor's local time
                        "timezone": action.data.get("timezone", ""),
                        "requested_at": now_iso,
                    }
                )
                stats["callbacks"] = stats.get("callbacks", 0) + 1
            case "payment_link":
                if payment_link is not None:
                    events.append(payment_link)
                stats["payment_links"] = stats.get("payment_links", 0) + 1
        events.append({"at": now_iso, "kind": "action", "action": action.kind, **action.data})
    for s in stops:
        effects.suppressions.append(s)
        events.append(
            {
                "at": now_iso,
                "kind": "suppressed",
                "phone": s.number,
                "channel": s.channel.value if s.channel else "*",
                "reason": s.reason.value,
            }
        )
        effects.audit.append(suppression_event(s, campaign=campaign, account=ref.account_id))


def _provider_opt_out(number: str, source: str) -> Suppression:
    return Suppression(number, SuppressionReason.OPT_OUT, Channel.SMS, None, source)


def _text_outcome(ended: TextEnded) -> tuple[Outcome, dict[str, Any]]:
    sent = ended.sent
    if ended.error or sent is None:
        return Outcome.SMS_FAILED, {"error": ended.error}
    info: dict[str, Any] = {
        "message_id": sent.message_id,
        "segments": sent.segments,
        "encoding": sent.encoding,
        "cost": sent.cost,
        "provider": sent.provider,
    }
    if sent.sandbox:
        info["sandbox"] = True
    if sent.duplicate and sent.message_id == "unknown":
        # an earlier try may or may not have gone out: never resent, recorded as unknown
        return Outcome.UNKNOWN, info
    return Outcome.SMS_SENT, info


def asked_for_payment_link(result: CallResult) -> bool:
    """The verified debtor asked, on this call, for the payment link by SMS (only a call
    that ended with a verified conversation can carry that request)."""
    return result.outcome is Outcome.ANSWERED_VERIFIED and any(
        a.kind == "payment_link" for a in result.actions
    )


def accepted_offer(result: CallResult) -> str:
    """The offer a verified debtor accepted on this call by key 5 (``""``: none)."""
    if result.outcome is not Outcome.ANSWERED_VERIFIED:
        return ""
    for a in result.actions:
        if a.kind == "agreement":
            return str(a.data.get("offer", ""))[:32]
    return ""
