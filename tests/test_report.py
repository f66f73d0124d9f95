"""The campaign report row (pure): what was tried, what came of it, where the debtor stands."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from dialer.domain import Account, AccountStatus, Attempt, Channel, Outcome, PaymentMethod, Phone
from dialer.formats.report import COLUMNS, report_row, report_writer, spreadsheet_safe

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


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://x","pague")', '\'=HYPERLINK("http://x","pague")'),
        ("+5511987654321", "'+5511987654321"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Ana Souza", "Ana Souza"),
        ("1234.50", "1234.50"),  # a plain amount is data, not a formula
        ("2026-11-10", "2026-11-10"),
        ("2026-11-23T13:00:00+00:00", "2026-11-23T13:00:00+00:00"),
        ("a=b", "a=b"),  # only the first character makes a formula
        ("", ""),
    ],
)
def test_spreadsheet_safe(cell, safe):
    assert spreadsheet_safe(cell) == safe


def test_report_row_neutralises_formulas_from_the_company_file():
    account = replace(ACCOUNT, account_id="@C1", name="=cmd|' /C calc'!A0")
    row = report_row(account, PHONES, (), None)
    assert (row["account_id"], row["name"]) == ("'@C1", "'=cmd|' /C calc'!A0")
    assert (row["amount"], row["due_date"], row["phones"]) == ("1234.50", "2026-11-10", 2)


@pytest.mark.parametrize(
    ("excel", "start", "delimiter"),
    [(False, "account_id,name,status,", ","), (True, "\ufeffaccount_id;name;status;", ";")],
)
def test_report_writer(excel, start, delimiter):
    out = io.StringIO(newline="")
    writer = report_writer(out, excel=excel)
    writer.writerow(report_row(replace(ACCOUNT, name="=Souza, Ana; 1"), PHONES, (), None))
    text = out.getvalue()
    assert text.startswith(start) and text.count("\ufeff") == int(excel)
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=delimiter))
    assert tuple(rows[0]) == COLUMNS
    assert rows[1][:2] == ["C1", "'=Souza, Ana; 1"] and len(rows[1]) == len(COLUMNS)
