"""What an outcome implies (rules/settle.py): tables of cases, no Redis, no clock but the one given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.domain import (
    Account,
    Attempt,
    CallResult,
    Channel,
    Consent,
    IvrAction,
    Outcome,
    Phone,
    SuppressionReason,
)
from dialer.rules.cadence import Cadence
from dialer.rules.planning import PlanContact, PlanDone, PlanLater, PlanSkip, plan_account
from dialer.rules.policy import Policy
from dialer.rules.settle import (
    CallEnded,
    NotPlaced,
    TextEnded,
    settle_contact,
    settle_no_contact,
    settle_over_cap,
    settle_reclaimed,
    settle_unclaimed,
)

NOW = datetime.fromisoformat("2026-11-23T10:00:00-03:00")  # a Monday, D+13 of the due date below
DUE = date(2026, 11, 10)
NUMBER = "+5511987654320"


@dataclass(frozen=True)
class Ref:
    campaign: str = "c1"
    entry_id: str = "1700000000000-0"
    account_id: str = "A1"


@dataclass(frozen=True)
class State:
    account: Account
    phones: tuple[Phone, ...]
    history: tuple[Attempt, ...] = ()
    fallback: str | None = None


@dataclass(frozen=True)
class Sent:
    provider: str = "twilio"
    message_id: str = "SM1"
    segments: int = 1
    encoding: str = "GSM-7"
    cost: float = 0.05
    duplicate: bool = False
    sandbox: bool = False


@pytest.fixture(scope="module")
def cadence(settings) -> Cadence:
    return Cadence.from_settings(settings)


@pytest.fixture(scope="module")
def rules(settings) -> Policy:
    return Policy.from_settings(settings)


def state(**fields: object) -> State:
    account = Account("A1", "Ana Souza", DUE, Decimal("100.00"))
    phone = Phone(NUMBER, consent=Consent(voice=True, sms=True))
    return State(account, (phone,), **fields)  # type: ignore[arg-type]


def call_plan(cadence: Cadence, rules: Policy, st_: State | None = None) -> PlanContact:
    s = st_ or state()
    plan = plan_account(s.account, s.phones, s.history, s.fallback, {}, NOW, rules, cadence)
    assert isinstance(plan, PlanContact) and plan.channel is Channel.VOICE, plan
    return plan


def placed(plan: PlanContact) -> Attempt:
    return Attempt(
        "A1", plan.phone.number, plan.channel, NOW, Outcome.PLACED, "c1:1700000000000-0", plan.step.id
    )


def call(outcome: Outcome, *actions: IvrAction, **fields: object) -> CallEnded:
    return CallEnded(CallResult(outcome, actions=actions, **fields))  # type: ignore[arg-type]


# ------------------------------------------------------------------ a call's outcome


@pytest.mark.parametrize(
    ("outcome", "actions", "stops", "fallback_due", "callbacks"),
    [
        (Outcome.ANSWERED_VERIFIED, (), [], False, 0),
        (Outcome.NO_ANSWER, (), [], True, 0),
        (Outcome.BUSY, (), [], True, 0),
        (Outcome.CONGESTION, (), [], True, 0),
        (Outcome.FAILED, (), [], True, 0),
        (Outcome.REJECTED, (), [], True, 0),
        (Outcome.VOICEMAIL, (), [], False, 0),  # a machine got the limited message: reached
        (Outcome.THIRD_PARTY, (), [], False, 0),
        (Outcome.INVALID_NUMBER, (), [(SuppressionReason.INVALID_NUMBER, None)], False, 0),
        (
            Outcome.WRONG_NUMBER,
            (IvrAction("wrong_number"),),
            [(SuppressionReason.WRONG_NUMBER, None)],
            False,
            0,
        ),
        (
            Outcome.ANSWERED_VERIFIED,
            (IvrAction("opt_out", {"channel": "voice"}),),
            [(SuppressionReason.OPT_OUT, Channel.VOICE)],
            False,
            0,
        ),
        (Outcome.ANSWERED_VERIFIED, (IvrAction("callback", {"window": "09:00-12:00"}),), [], False, 1),
    ],
)
def test_what_a_call_implies(cadence, rules, outcome, actions, stops, fallback_due, callbacks):
    plan = call_plan(cadence, rules)
    s = settle_contact(Ref(), state(), plan, placed(plan), call(outcome, *actions), NOW, cadence)
    f = s.finish
    assert f.attempt is not None and f.attempt.outcome is outcome and not f.drop_attempt
    assert [(x.reason, x.channel) for x in s.effects.suppressions] == stops
    assert [kind for kind, _ in s.effects.audit] == ["suppress"] * len(stops)
    assert all(data["campaign"] == "c1" and data["account"] == "A1" for _, data in s.effects.audit)
    assert (f.fallback == plan.step.id) is fallback_due
    assert any(e["kind"] == "fallback_sms_due" for e in f.events) is fallback_due
    assert len(s.effects.callbacks) == callbacks
    assert f.stats[f"outcome:{outcome}"] == 1 and f.stats["attempts:voice"] == 1
    (attempt_event,) = [e for e in f.events if e["kind"] == "attempt"]
    assert attempt_event["outcome"] is outcome and attempt_event["step"] == plan.step.id
    if fallback_due:
        assert f.next_at == NOW  # the SMS fallback is due at once
    else:
        assert f.next_at is None or f.next_at >= NOW


def test_the_fallback_sms_is_sent_once_per_step(cadence, rules):
    plan = call_plan(cadence, rules)
    sms_sent = Attempt(
        "A1", NUMBER, Channel.SMS, NOW - timedelta(hours=1), Outcome.SMS_SENT, "c1:1-0", plan.step.id + "~sms"
    )
    earlier = state(history=(sms_sent,))
    s = settle_contact(Ref(), earlier, plan, placed(plan), call(Outcome.BUSY), NOW, cadence)
    assert s.finish.fallback == "" and not any(e["kind"] == "fallback_sms_due" for e in s.finish.events)


def test_a_payment_link_sent_after_the_call_is_on_its_timeline(cadence, rules):
    plan = call_plan(cadence, rules)
    link = {"at": NOW.isoformat(), "kind": "sms", "level": "full", "purpose": "payment_link"}
    ended = CallEnded(CallResult(Outcome.ANSWERED_VERIFIED, actions=(IvrAction("payment_link"),)), link)
    s = settle_contact(Ref(), state(), plan, placed(plan), ended, NOW, cadence)
    assert link in s.finish.events and s.finish.stats["payment_links"] == 1


def test_a_payment_link_refused_as_unsubscribed_stops_sms_to_that_number(cadence, rules):
    plan = call_plan(cadence, rules)
    failed = {"at": NOW.isoformat(), "kind": "sms_failed", "purpose": "payment_link", "error": "21610"}
    ended = CallEnded(
        CallResult(Outcome.ANSWERED_VERIFIED, actions=(IvrAction("payment_link"),)), failed, True, "twilio"
    )
    s = settle_contact(Ref(), state(), plan, placed(plan), ended, NOW, cadence)
    ((stop),) = s.effects.suppressions
    assert (stop.reason, stop.channel, stop.source) == (
        SuppressionReason.OPT_OUT,
        Channel.SMS,
        "sms-provider:twilio",
    )


def test_a_contact_never_made_gives_its_attempt_back(cadence, rules):
    plan = call_plan(cadence, rules)
    s = settle_contact(
        Ref(), state(), plan, placed(plan), NotPlaced("no Asterisk server is connected"), NOW, cadence
    )
    assert s.finish.drop_attempt and s.finish.next_at == NOW + timedelta(minutes=5)
    assert s.finish.stats == {"not_placed:voice": 1}
    retry = NOW + timedelta(minutes=10)
    again = settle_contact(Ref(), state(), plan, placed(plan), NotPlaced("throttled", retry), NOW, cadence)
    assert again.finish.next_at == retry


# ------------------------------------------------------------------ an SMS's outcome


def sms_plan(cadence: Cadence, rules: Policy) -> PlanContact:
    s = state(fallback="d10_call")
    plan = plan_account(s.account, s.phones, s.history, s.fallback, {}, NOW, rules, cadence)
    assert isinstance(plan, PlanContact) and plan.channel is Channel.SMS and plan.fallback_for == "d10_call"
    return plan


@pytest.mark.parametrize(
    ("ended", "outcome", "indexed"),
    [
        (TextEnded("Oi", sent=Sent()), Outcome.SMS_SENT, [("twilio", "SM1")]),
        (
            TextEnded("Oi", sent=Sent(message_id="SM1,SM2", segments=2)),
            Outcome.SMS_SENT,
            [("twilio", "SM1"), ("twilio", "SM2")],
        ),
        (TextEnded("Oi", error="not sent: over 3 segments"), Outcome.SMS_FAILED, []),
        (
            TextEnded("Oi", sent=Sent(provider="unknown", message_id="unknown", duplicate=True)),
            Outcome.UNKNOWN,
            [("unknown", "unknown")],
        ),
    ],
)
def test_what_an_sms_implies(cadence, rules, ended, outcome, indexed):
    plan = sms_plan(cadence, rules)
    s = settle_contact(Ref(), state(fallback="d10_call"), plan, placed(plan), ended, NOW, cadence)
    assert s.finish.attempt is not None and s.finish.attempt.outcome is outcome
    assert s.finish.fallback == "-"  # the fallback is done, whatever became of it
    assert [(p, m) for p, m, *_ in s.effects.sms] == indexed
    (event,) = [e for e in s.finish.events if e["kind"] == "attempt"]
    assert event["level"] == "limited" and event["text"] == "Oi"


def test_an_sms_refused_as_unsubscribed_suppresses_sms_only(cadence, rules):
    plan = sms_plan(cadence, rules)
    ended = TextEnded("Oi", error="21610 unsubscribed", opted_out=True, provider="twilio")
    s = settle_contact(Ref(), state(fallback="d10_call"), plan, placed(plan), ended, NOW, cadence)
    (stop,) = s.effects.suppressions
    assert (stop.channel, stop.reason) == (Channel.SMS, SuppressionReason.OPT_OUT)


# ------------------------------------------------------------------ entries with no contact


def test_plans_without_a_contact(cadence, rules):
    later = PlanLater(call_plan(cadence, rules).step, Channel.VOICE, NOW + timedelta(hours=3), note="held")
    f = settle_no_contact(Ref(), later, NOW)
    assert f.next_at == NOW + timedelta(hours=3) and f.attempt is None
    assert [e["kind"] for e in f.events] == ["scheduled"]
    skip = PlanSkip(later.step, Channel.VOICE, note="no phone may ever take this step")
    f = settle_no_contact(Ref(), skip, NOW)
    assert f.attempt is not None and f.attempt.outcome is Outcome.SKIPPED and f.next_at == NOW
    assert f.stats["skipped"] == 1
    fb_skip = PlanSkip(later.step, Channel.SMS, fallback_for="d10_call")
    f = settle_no_contact(Ref(), fb_skip, NOW)
    assert f.attempt is None and f.fallback == "-" and f.next_at == NOW
    f = settle_no_contact(Ref(), PlanDone("régua finished"), NOW)
    assert f.next_at is None and f.stats == {"done": 1}


def test_refused_claims_and_caps(cadence, rules):
    assert settle_unclaimed(Ref(), "stale", NOW).next_at == NOW + timedelta(seconds=1)
    assert settle_unclaimed(Ref(), "locked", NOW).next_at == NOW + timedelta(seconds=30)
    plan = call_plan(cadence, rules)
    tomorrow = NOW + timedelta(hours=14)
    f = settle_over_cap(Ref(), plan, placed(plan), tomorrow, NOW)
    assert f.drop_attempt and f.next_at == tomorrow and f.stats == {"blocked:attempt_cap": 1}


@pytest.mark.parametrize("pbx", [None, CallResult(Outcome.BUSY)])
def test_a_reclaimed_attempt_is_settled_never_redone(cadence, rules, pbx):
    plan = call_plan(cadence, rules)
    existing = placed(plan)
    f = settle_reclaimed(Ref(), state(history=(existing,)), existing, pbx, NOW, cadence).finish
    assert f.attempt is not None and f.attempt.outcome is (pbx.outcome if pbx else Outcome.UNKNOWN)
    assert f.stats["reclaimed"] == 1


# ------------------------------------------------------------------ invariants


@given(
    outcome=st.sampled_from([o for o in Outcome if o not in (Outcome.PLACED, Outcome.SKIPPED)]),
    kinds=st.lists(
        st.sampled_from(["wrong_number", "opt_out", "callback", "payment_link", "repeat"]), max_size=4
    ),
)
def test_every_settled_call_keeps_its_attempt_and_says_who_to_stop(settings, outcome, kinds):
    cadence, rules = Cadence.from_settings(settings), Policy.from_settings(settings)
    plan = call_plan(cadence, rules)
    actions = tuple(IvrAction(k, {"channel": "voice"} if k == "opt_out" else {}) for k in kinds)
    s = settle_contact(Ref(), state(), plan, placed(plan), call(outcome, *actions), NOW, cadence)
    f = s.finish
    assert (
        f.attempt is not None
        and f.attempt.attempt_id == "c1:1700000000000-0"
        and f.attempt.outcome is outcome
    )
    # every suppression is on the timeline and in the audit, and only these actions cause one
    expected = (outcome is Outcome.INVALID_NUMBER) + kinds.count("wrong_number") + kinds.count("opt_out")
    assert len(s.effects.suppressions) == expected == len(s.effects.audit)
    assert sum(e["kind"] == "suppressed" for e in f.events) == expected
    assert len(s.effects.callbacks) == kinds.count("callback")
    # the next look is never in the past
    assert f.next_at is None or f.next_at >= NOW


def test_what_the_debtor_asked_on_a_reclaimed_call_is_honoured(cadence, rules):
    """A worker died while a call ran; the PBX (the IVR's record) says the debtor asked to
    stop: the opt-out is written as for any call, never lost with the worker."""
    plan = call_plan(cadence, rules)
    existing = placed(plan)
    pbx = CallResult(Outcome.ANSWERED_VERIFIED, actions=(IvrAction("opt_out", {"channel": "voice"}),))
    s = settle_reclaimed(Ref(), state(history=(existing,)), existing, pbx, NOW, cadence)
    (stop,) = s.effects.suppressions
    assert (stop.number, stop.channel, stop.reason) == (NUMBER, Channel.VOICE, SuppressionReason.OPT_OUT)
    assert [k for k, _ in s.effects.audit] == ["suppress"]
    unknown = settle_reclaimed(Ref(), state(history=(existing,)), existing, None, NOW, cadence)
    assert not unknown.effects.suppressions and unknown.finish.attempt.outcome is Outcome.UNKNOWN


@pytest.mark.parametrize(
    ("outcome", "asked"),
    [
        (Outcome.ANSWERED_VERIFIED, True),
        (Outcome.ANSWERED_UNVERIFIED, False),  # a payment-link action without a verified debtor
        (Outcome.THIRD_PARTY, False),
        (Outcome.VOICEMAIL, False),
    ],
)
def test_only_a_verified_debtor_gets_the_payment_link(outcome, asked):
    from dialer.rules.settle import asked_for_payment_link

    assert asked_for_payment_link(CallResult(outcome, actions=(IvrAction("payment_link"),))) is asked
    assert not asked_for_payment_link(CallResult(outcome))
