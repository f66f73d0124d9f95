"""Charges and payments, pure: the stable charge id, a charge's terms, and what a set of
payment events means for a debt.

**One charge per debt.** The ``txid`` is an HMAC of the account and the debt (amount, due
date, installment) under the service's secret: the same account loaded again, or a worker
killed half-way, asks the provider for the same ``txid``, and the provider (``PUT
/cobv/{txid}``; Asaas's ``externalReference``) keeps one charge. The Pix API takes 26 to 35
characters ``[a-zA-Z0-9]`` for a ``cobv``; ours are 32.

**Order does not matter.** A charge's state is a function of the *set* of its events
(payments, refunds), never of the order they came in: the same event twice counts once (its
id), a refund that arrives before its payment nets to zero when both are in.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from dialer.domain import Account, PaymentMethod

TXID_LENGTH = 32
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


class EventKind(StrEnum):
    PAID = "paid"
    REFUND = "refund"


class ChargeStatus(StrEnum):
    PENDING = "pending"  # queued: the provider has not made it yet
    ACTIVE = "active"  # the provider has it; nothing (or not enough) paid
    PARTIAL = "partial"  # paid in part: the balance stays open
    PAID = "paid"  # paid in full (or more: see ``overpaid``)
    FAILED = "failed"  # the provider refused to make it (the reason is recorded)
    REMOVED = "removed"  # the provider removed it (expired, cancelled)


def txid(secret: bytes, account_id: str, amount: Decimal, due: date, installment: int = 0) -> str:
    """The charge id of one debt (or of installment ``installment`` of an agreement)."""
    payload = f"charge\x1f{account_id}\x1f{cents(amount)}\x1f{due.isoformat()}\x1f{installment}"
    mac = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    number = int.from_bytes(mac, "big")
    out = []
    for _ in range(TXID_LENGTH - 2):
        number, r = divmod(number, 32)
        out.append(_ALPHABET[r])
    return "rg" + "".join(out)


def valid_txid(text: str) -> bool:
    return 26 <= len(text) <= 35 and text.isascii() and text.isalnum()


def cents(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def money(value_cents: int) -> Decimal:
    return (Decimal(value_cents) / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """What the provider is asked to charge."""

    txid: str
    account_id: str
    name: str
    document: str | None  # CPF or CNPJ (normalised); the Pix API and Asaas need one
    amount: Decimal
    due_date: date
    valid_after_due_days: int
    fine_percent: Decimal
    interest_percent_month: Decimal
    method: PaymentMethod
    description: str
    installment: int = 0  # 0: the whole debt; n: installment n of an agreement


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """Money in (``paid``) or back out (``refund``), as a provider reported it."""

    event_id: str  # unique per provider and movement: the same event twice counts once
    kind: EventKind
    provider: str
    txid: str  # our charge id ("" when the provider named only the account)
    amount: Decimal
    at: datetime
    account_id: str = ""
    method: str = "pix"
    reference: str = ""  # the provider's own id (endToEndId, pay_…)
    sandbox: bool = False


@dataclass(frozen=True, slots=True)
class Charge:
    """A charge as the provider made it (what the debtor pays with)."""

    txid: str
    provider: str
    status: ChargeStatus
    amount: Decimal
    due_date: date
    provider_id: str = ""
    copy_paste: str = ""  # the Pix "copia e cola" (dynamic BR Code)
    location: str = ""  # the Pix payload location (``loc``)
    boleto_line: str = ""  # the digitable line, for a boleto
    payments: tuple[PaymentEvent, ...] = field(default=())  # what the provider says was paid


def charge_request(
    account: Account,
    secret: bytes,
    today: date,
    *,
    due_in_days: int,
    valid_after_due_days: int,
    fine_percent: Decimal,
    interest_percent_month: Decimal,
    description: str,
) -> ChargeRequest:
    """The charge for a whole debt: its id from the debt, its due date ``due_in_days`` from
    ``today`` (or the debt's own, when that is later)."""
    due = max(account.due_date, today + timedelta(days=due_in_days))
    return ChargeRequest(
        txid=txid(secret, account.account_id, account.amount, account.due_date),
        account_id=account.account_id,
        name=account.name,
        document=account.document,
        amount=account.amount,
        due_date=due,
        valid_after_due_days=valid_after_due_days,
        fine_percent=fine_percent,
        interest_percent_month=interest_percent_month,
        method=account.payment_method,
        description=description,
    )


@dataclass(frozen=True, slots=True)
class Standing:
    """What the events of a charge add up to."""

    status: ChargeStatus
    paid_cents: int
    refunded_cents: int
    balance_cents: int  # what is still owed (never negative)
    overpaid_cents: int  # paid beyond the debt (beyond the tolerance: flagged)

    @property
    def net_cents(self) -> int:
        return self.paid_cents - self.refunded_cents


def standing(amount_cents: int, paid_cents: int, refunded_cents: int, tolerance_cents: int = 0) -> Standing:
    """The state of a charge of ``amount_cents`` given the sums of its (deduplicated)
    payments and refunds: sums, so the order the events came in cannot matter."""
    net = paid_cents - refunded_cents
    if net >= amount_cents:
        status = ChargeStatus.PAID
    elif net > 0:
        status = ChargeStatus.PARTIAL
    else:
        status = ChargeStatus.ACTIVE
    over = max(0, net - amount_cents)
    return Standing(
        status, paid_cents, refunded_cents, max(0, amount_cents - net), over if over > tolerance_cents else 0
    )


def totals(events: list[tuple[EventKind, int]]) -> tuple[int, int]:
    """(paid, refunded) cents of a list of distinct events."""
    paid = sum(c for k, c in events if k is EventKind.PAID)
    return paid, sum(c for k, c in events if k is EventKind.REFUND)
