"""The campaign report row (pure): what was tried, what came of it, where the debtor stands."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from dialer.domain import Account, AccountStatus, Attempt, Channel, Outcome, PaymentMethod, Phone
from dialer.formats.report import COLUMNS, report_row

T0 = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
ACCOUNT = Account(
    "C1", "Ana Souza", date(2026, 11, 10), Decimal("1234.50"), "BRL", PaymentMethod.BOLETO, AccountStatus.OPEN
)
PHONES = (Phone("+5511987654320"), Phone("+5511987654321"))


def attempt(minutes: int, channel: Channel, outcome: Outcome, n: int) -> Attempt:
    return Attempt("C1", PHONES[0].number, channel, T0 + timedelta(minutes=minutes), outcome, f"c:{n}", "s")


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (
            (),
            {"calls": 0, "sms": 0, "last_attempt_at": "", "last_outcome": "", "verified_conversation": False},
        ),
        (
            (
                attempt(0, Channel.VOICE, Outcome.NO_ANSWER, 1),
                attempt(1, Channel.SMS, Outcome.SMS_SENT, 2),
                attempt(2, Channel.VOICE, Outcome.SKIPPED, 3),  # a skipped step is no contact
            ),
            {
                "calls": 1,
                "sms": 1,
                "last_channel": "sms",
                "last_outcome": "sms_sent",
                "verified_conversation": False,
            },
        ),
        (
            (
                attempt(60, Channel.VOICE, Outcome.ANSWERED_VERIFIED, 1),
                attempt(0, Channel.VOICE, Outcome.BUSY, 2),
                attempt(90, Channel.VOICE, Outcome.PLACED, 3),  # still in the air: not counted yet
            ),
            {
                "calls": 2,
                "last_attempt_at": (
                    T0 + timedelta(minutes=60)
                ).isoformat(),  # the latest, not the last listed
                "last_outcome": "answered_verified",
                "verified_conversation": True,
            },
        ),
    ],
)
def test_report_row(history, expected):
    row = report_row(ACCOUNT, PHONES, history, None)
    assert tuple(row) == COLUMNS
    assert {k: row[k] for k in expected} == expected
    assert (row["amount"], row["due_date"], row["phones"], row["next_contact_at"]) == (
        "1234.50",
        "2026-11-10",
        2,
        "",
    )


def test_report_row_next_contact_and_suppressed_phones():
    nxt = T0 + timedelta(days=1)
    row = report_row(ACCOUNT, PHONES, (), nxt, frozenset({PHONES[1].number, "+5511000000000"}))
    assert row["next_contact_at"] == nxt.isoformat() and row["suppressed_phones"] == 1
