"""The campaign report: one row per account, for the company's billing system or a
spreadsheet — where each debtor stands, what was tried, what came of it. Pure.

Names and account ids come from the company's file, so every text cell goes out through
``spreadsheet_safe`` (no formula runs when the report is opened). ``report_writer`` is the
one way to write it — plain CSV, or ``excel=True`` for Excel in a Brazilian locale — for
the command line and the HTTP route alike.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TextIO

from dialer.domain import Account, Attempt, Channel, Outcome, Phone

COLUMNS = (
    "account_id",
    "name",
    "status",
    "due_date",
    "amount",
    "currency",
    "phones",
    "calls",
    "sms",
    "last_attempt_at",
    "last_channel",
    "last_outcome",
    "verified_conversation",
    "suppressed_phones",
    "next_contact_at",
    "paid",  # money received less refunds
    "balance",  # what is still owed
    "paid_at",
    "recovered_by_step",  # the régua step credited with the payment (last contact that reached)
    "recovered_by_channel",
    "agreement",  # the latest agreement's status: current | kept | broken (empty: none)
    "agreement_installments",  # "paid/all", e.g. 1/3
    "agreement_total",  # what the agreement asks in all
)


# what makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: str) -> str:
    """``value`` as a spreadsheet shows it, never runs it: a leading ``'`` when it could start a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def report_writer(out: TextIO, *, excel: bool = False) -> csv.DictWriter[str]:
    """A writer of ``report_row``s on ``out``, the header already written.

    ``excel``: semicolon-separated with a UTF-8 byte order mark, as Excel in a Brazilian
    locale opens it (the comma is its decimal separator; without the mark it reads cp1252).
    ``out`` should be opened with ``newline=""`` (rows end in CRLF, as RFC 4180 says).
    """
    if excel:
        out.write("\ufeff")
        writer: csv.DictWriter[str] = _DecimalComma(out, fieldnames=COLUMNS, delimiter=";")
    else:
        writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    return writer


def _agreement_cells(payment: Mapping[str, Any] | None) -> dict[str, Any]:
    found = payment.get("agreement") if payment else None
    if found is None:
        return {"agreement": "", "agreement_installments": "", "agreement_total": ""}
    offer = found.offer
    return {
        "agreement": found.status.value,
        "agreement_installments": f"{len(found.paid)}/{offer.count}",
        "agreement_total": str((Decimal(offer.total_cents) / 100).quantize(Decimal("0.01"))),
    }


def _payment_cells(account: Account, payment: Mapping[str, Any] | None) -> dict[str, Any]:
    record = payment.get("record") if payment else None
    found = payment.get("agreement") if payment else None
    if found is not None and found.paid:  # money came in through the agreement's installments
        paid = (Decimal(found.paid_cents) / 100).quantize(Decimal("0.01"))
        left = max(0, found.offer.total_cents - found.paid_cents) if found.status.value != "broken" else None
        return {
            "paid": str(paid),
            "balance": str((Decimal(left) / 100).quantize(Decimal("0.01")))
            if left is not None
            else str(max(Decimal(0), account.amount - paid)),
            "paid_at": "",
            "recovered_by_step": "agreement",
            "recovered_by_channel": found.via,
        }
    if record is None or record.amount != account.amount:
        return {
            "paid": "0.00",
            "balance": str(account.amount),
            "paid_at": "",
            "recovered_by_step": "",
            "recovered_by_channel": "",
        }
    net = record.paid_cents - record.refunded_cents
    paid = (Decimal(net) / 100).quantize(Decimal("0.01"))
    balance = max(Decimal(0), account.amount - paid)
    credited = net > 0
    return {
        "paid": str(paid),
        "balance": str(balance.quantize(Decimal("0.01"))),
        "paid_at": payment.get("paid_at", "") if credited and payment else "",
        "recovered_by_step": payment.get("step", "") if credited and payment else "",
        "recovered_by_channel": payment.get("channel", "") if credited and payment else "",
    }


class _DecimalComma(csv.DictWriter):  # type: ignore[type-arg]
    """Amounts with a decimal comma, as a Brazilian Excel reads a number."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        changed = dict(rowdict)
        for name in ("amount", "paid", "balance"):
            value = changed.get(name)
            if isinstance(value, str) and value.replace(".", "", 1).isdigit():
                changed[name] = value.replace(".", ",")
        return super().writerow(changed)


def report_row(
    account: Account,
    phones: Sequence[Phone],
    history: Sequence[Attempt],
    next_at: datetime | None,
    suppressed: frozenset[str] = frozenset(),
    payment: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The account's line: attempts counted once finished (a skipped step is not a contact).

    Text cells are ``spreadsheet_safe``; counts stay numbers."""
    made = [a for a in history if a.outcome not in (Outcome.SKIPPED, Outcome.PLACED)]
    last: Attempt | None = None
    for a in made:  # the latest; among equal times the one recorded last
        if last is None or a.at >= last.at:
            last = a
    row: dict[str, Any] = {
        "account_id": account.account_id,
        "name": account.name,
        "status": account.status.value,
        "due_date": account.due_date.isoformat(),
        "amount": str(account.amount),
        "currency": account.currency,
        "phones": len(phones),
        "calls": sum(1 for a in made if a.channel is Channel.VOICE),
        "sms": sum(1 for a in made if a.channel is Channel.SMS),
        "last_attempt_at": last.at.isoformat() if last else "",
        "last_channel": last.channel.value if last else "",
        "last_outcome": last.outcome.value if last else "",
        "verified_conversation": any(a.outcome is Outcome.ANSWERED_VERIFIED for a in made),
        "suppressed_phones": sum(1 for p in phones if p.number in suppressed),
        "next_contact_at": next_at.isoformat() if next_at else "",
        **_payment_cells(account, payment),
        **_agreement_cells(payment),
    }
    return {k: spreadsheet_safe(v) if isinstance(v, str) else v for k, v in row.items()}
