"""The régua: which step is due next, per payment method, with catch-up and retries."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from dialer.domain import Account, AccountStatus, Attempt, Channel, Outcome, PaymentMethod
from dialer.rules.cadence import Cadence, Event, next_step

DUE = date(2026, 11, 13)
BRT = timezone(timedelta(hours=-3))


@pytest.fixture(scope="module")
def cadence(settings):
    return Cadence.from_settings(settings)


def account(method=PaymentMethod.BOLETO, status=AccountStatus.OPEN):
    from decimal import Decimal

    return Account("A1", "Ana", DUE, Decimal("10"), payment_method=method, status=status)


def done(step_id, day_offset, outcome, channel=None, hour=10):
    when = datetime.combine(DUE + timedelta(days=day_offset), datetime.min.time(), BRT).replace(hour=hour)
    ch = channel or (Channel.VOICE if "call" in step_id else Channel.SMS)
    return Attempt("A1", "+5511987654321", ch, when, outcome, step_id=step_id)


@pytest.mark.parametrize(
    ("today", "history", "step", "due_on"),
    [
        (-20, [], "issue", -10),  # nothing yet: the first step, in the future
        (-10, [], "issue", -10),
        (-9, [done("issue", -10, Outcome.SMS_SENT)], "due_today", 0),
        (0, [done("issue", -10, Outcome.SMS_SENT)], "due_today", 0),
        (1, [done("due_today", 0, Outcome.SMS_DELIVERED)], "d1", 1),
        # loaded late at D+12: only the latest overdue step runs (catch-up)
        (12, [], "d10_call", 10),
        (6, [], "d5", 5),
        # a call not answered is retried up to max_attempts, then the régua moves on
        (11, [done("d10_call", 10, Outcome.NO_ANSWER)], "d10_call", 10),
        (
            13,
            [
                done("d10_call", 10, Outcome.NO_ANSWER),
                done("d10_call", 11, Outcome.BUSY),
                done("d10_call", 12, Outcome.NO_ANSWER),
            ],
            "d20_call",
            20,
        ),
        # a machine got the limited message: the step is done
        (11, [done("d10_call", 10, Outcome.VOICEMAIL)], "d20_call", 20),
        # never revisit steps older than the last one worked
        (
            25,
            [
                done("d20_call", 20, Outcome.NO_ANSWER),
                done("d20_call", 21, Outcome.NO_ANSWER),
                done("d20_call", 22, Outcome.NO_ANSWER),
            ],
            "d30_call",
            30,
        ),
    ],
)
def test_boleto(cadence, today, history, step, due_on):
    nxt = next_step(account(), history, DUE + timedelta(days=today), cadence)
    assert nxt is not None
    assert nxt.step.id == step
    assert nxt.due_on == DUE + timedelta(days=due_on)


def test_retry_waits_retry_after(cadence):
    first = done("d10_call", 10, Outcome.NO_ANSWER)
    nxt = next_step(account(), [first], DUE + timedelta(days=10), cadence)
    assert nxt.attempt == 2
    assert nxt.not_before == first.at + timedelta(minutes=1440)


def test_verified_debtor_skips_not_reached_yet_steps(cadence):
    history = [done("d10_call", 10, Outcome.ANSWERED_VERIFIED)]
    # d20 and d30 are "when = not_reached_yet": nothing left
    assert next_step(account(), history, DUE + timedelta(days=20), cadence) is None


def test_closed_accounts_have_no_next_step(cadence):
    for status in (AccountStatus.PAID, AccountStatus.DISPUTED, AccountStatus.CLOSED):
        assert next_step(account(status=status), [], DUE, cadence) is None


def test_everything_worked_means_none(cadence):
    history = [
        done("d30_call", 30, Outcome.NO_ANSWER),
        done("d30_call", 31, Outcome.NO_ANSWER),
        done("d30_call", 32, Outcome.NO_ANSWER),
    ]
    assert next_step(account(), history, DUE + timedelta(days=40), cadence) is None


def test_card_failed_charge_sends_sms_at_once(cadence):
    acc = account(PaymentMethod.CARD)
    assert next_step(acc, [], DUE - timedelta(days=5), cadence).step.id == "notice"
    failed = Event("charge_failed", DUE)
    nxt = next_step(acc, [done("notice", -5, Outcome.SMS_SENT)], DUE, cadence, [failed])
    assert (nxt.step.id, nxt.due_on, nxt.step.channel) == ("charge_failed", DUE, Channel.SMS)
    sent = done("charge_failed", 0, Outcome.SMS_SENT, hour=11)
    nxt = next_step(acc, [done("notice", -5, Outcome.SMS_SENT), sent], DUE, cadence, [failed])
    assert nxt.step.id == "d10_call"


def test_crediario_follows_the_seed(cadence):
    acc = account(PaymentMethod.CREDIARIO)
    ids = []
    history = []
    for day in range(-10, 40):
        nxt = next_step(acc, history, DUE + timedelta(days=day), cadence)
        if nxt and nxt.due_on == DUE + timedelta(days=day):
            ids.append((day, nxt.step.id))
            history.append(
                done(
                    nxt.step.id,
                    day,
                    Outcome.VOICEMAIL if nxt.step.channel is Channel.VOICE else Outcome.SMS_SENT,
                )
            )
    assert ids == [
        (-5, "notice"),
        (0, "due_today"),
        (5, "d5"),
        (10, "d10_call"),
        (20, "d20_sms"),
        (30, "d30_call"),
    ]


def test_previous_call_unanswered_condition(settings):
    from dialer.rules.cadence import Step

    step = Step("x", Channel.SMS, "limited", offset_days=11, when="previous_call_unanswered")
    cad = Cadence({"boleto": (step,)})
    day = DUE + timedelta(days=11)
    assert next_step(account(), [], day, cad) is None  # no call at all: the condition fails
    assert next_step(account(), [done("c", 10, Outcome.NO_ANSWER, Channel.VOICE)], day, cad).step.id == "x"
    assert next_step(account(), [done("c", 10, Outcome.THIRD_PARTY, Channel.VOICE)], day, cad) is None
