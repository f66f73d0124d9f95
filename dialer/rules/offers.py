"""Offers, pure: what a verified debtor may accept for a debt on a given day.

The company's ``[negotiation]`` bands say, per payment method and days past due, the
discount for paying in one go, the most installments, the least installment, the down
payment and the plan's monthly interest (Price table). ``offers_for`` turns them into
concrete offers for one account on one debtor-local date — every amount in cents, every
installment dated — and nothing else decides what a debtor is asked to pay.

**What may be asked.** The debt *updated* to the offer's first due date is the principal,
the contract's fine for late payment (at most 2 %, CDC art. 52 §1) and moratory interest
pro rata (at most 1 % a month): ``updated``. A plan adds financing interest, at most
``max_interest_percent_month`` (what the contract allows). ``ceiling_cents`` is that sum
for an offer's shape; no offer ever asks more (property-tested). Amounts are rounded down,
so rounding never asks a cent more than the arithmetic allows; fine, interest and
financing are stated apart (CDC art. 52: the debtor sees each).

**How long an offer holds.** An offer is quoted on a date and holds ``offer_valid_days``:
its first installment (or the single payment) falls due then. ``find_offer`` recognises an
offer id quoted on any day still inside its validity — a debtor who opened the page
yesterday accepts yesterday's terms, a stale or made-up id is refused.
"""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal, InvalidOperation, localcontext
from enum import StrEnum

from dialer.domain import Account
from dialer.errors import InputError
from dialer.rules.charges import cents
from dialer.settings import NegotiationSettings, OfferBand, PaymentSettings


class OfferKind(StrEnum):
    CASH = "cash"  # one payment, with the band's discount
    INSTALLMENTS = "installments"
    SPECIAL = "special"  # made for this account by a supervisor or an admin


@dataclass(frozen=True, slots=True)
class Installment:
    number: int  # 1..n
    due: date
    amount_cents: int


@dataclass(frozen=True, slots=True)
class Offer:
    offer_id: str
    kind: OfferKind
    installments: tuple[Installment, ...]
    principal_cents: int  # the debt as loaded
    fine_cents: int  # the contract's fine (only once past due)
    interest_cents: int  # moratory interest to the first due date
    discount_cents: int  # taken off for paying in one go
    financing_cents: int  # the plan's interest
    plan_interest_percent_month: Decimal
    down_payment_cents: int
    quoted_on: date
    valid_until: date  # the offer holds until (and is first due on) this date

    @property
    def total_cents(self) -> int:
        return sum(i.amount_cents for i in self.installments)

    @property
    def count(self) -> int:
        return len(self.installments)

    @property
    def updated_cents(self) -> int:
        return self.principal_cents + self.fine_cents + self.interest_cents


@dataclass(frozen=True, slots=True)
class Special:
    """A special offer a supervisor or an admin made for one account."""

    discount_percent: Decimal = Decimal("0")
    installments: int = 1
    down_payment_percent: Decimal = Decimal("0")
    interest_percent_month: Decimal = Decimal("0")
    min_installment: Decimal = Decimal("1.00")
    until: date | None = None  # the last date it may be accepted (None: the usual validity)
    by: str = ""


SPECIAL_FIELDS = (
    "discount_percent",
    "installments",
    "down_payment_percent",
    "interest_percent_month",
    "until",
)


def _field(name: str) -> str:
    return f"field {name!r}"


def special_offer(
    values: Mapping[str, object],
    by: str,
    max_interest: Decimal,
    *,
    label: Callable[[str], str] = _field,
) -> Special:
    """A special offer from what a person asked (a request body, command-line options),
    refused — ``InputError`` naming the field as ``label`` calls it — where it is looser
    than the contract (interest) or the law, or is not what it says it is. ``values`` are
    keyed by ``SPECIAL_FIELDS``; a missing one takes the usual default."""
    unknown = set(values) - set(SPECIAL_FIELDS)
    if unknown:
        raise InputError(f"unknown field {sorted(unknown)[0]!r}")

    def percent(name: str) -> Decimal:
        raw = values.get(name, "0")
        try:
            if isinstance(raw, bool):
                raise InvalidOperation
            value = Decimal(str(raw))
        except InvalidOperation:
            raise InputError(f"{label(name)}: {raw!r} is not a number") from None
        if not value.is_finite() or not Decimal(0) <= value < 100:
            raise InputError(f"{label(name)}: {raw} must be at least 0 and below 100")
        return value

    interest = percent("interest_percent_month")
    if interest > max_interest:
        raise InputError(
            f"{label('interest_percent_month')}: {interest} is above what the contract allows "
            f"({max_interest} a month)"
        )
    count = values.get("installments", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 48:
        raise InputError(f"{label('installments')}: a whole number from 1 to 48")
    until_raw = values.get("until")
    try:
        until = date.fromisoformat(until_raw) if isinstance(until_raw, str) and until_raw else None
    except ValueError:
        until = None
    if until is None and until_raw not in (None, ""):
        raise InputError(f"{label('until')}: {until_raw!r} is not YYYY-MM-DD")
    return Special(
        discount_percent=percent("discount_percent"),
        installments=count,
        down_payment_percent=percent("down_payment_percent"),
        interest_percent_month=interest,
        until=until,
        by=by,
    )


def _floor_cents(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def add_months(d: date, months: int) -> date:
    """The same day ``months`` later (the month's last day where it is shorter)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def late_charges(principal_cents: int, due: date, on: date, payments: PaymentSettings) -> tuple[int, int]:
    """(fine, moratory interest) in cents owed on ``on`` for a debt due on ``due``."""
    days = (on - due).days
    if days <= 0:
        return 0, 0
    fine = _floor_cents(Decimal(principal_cents) * payments.fine_percent / 100)
    interest = _floor_cents(Decimal(principal_cents) * payments.interest_percent_month / 100 * days / 30)
    return fine, interest


def plan_total_cents(financed_cents: int, rate_percent_month: Decimal, count: int, *, due_now: bool) -> int:
    """What ``count`` equal monthly payments of a Price table repay on ``financed_cents``
    (rounded down). ``due_now``: the first payment is due at once (no down payment)."""
    if count <= 0 or financed_cents <= 0:
        return 0
    if rate_percent_month == 0:
        return financed_cents
    with localcontext() as ctx:
        ctx.prec = 40
        i = rate_percent_month / 100
        pmt = Decimal(financed_cents) * i / (1 - (1 + i) ** -count)
        if due_now:
            pmt = pmt / (1 + i)
        return _floor_cents(pmt * count)


def _split(total_cents: int, count: int) -> list[int]:
    """``total_cents`` in ``count`` parts differing by at most a cent (the larger first)."""
    base, extra = divmod(total_cents, count)
    return [base + (1 if k < extra else 0) for k in range(count)]


def ceiling_cents(offer: Offer, negotiation: NegotiationSettings) -> int:
    """The most an offer of this shape may ask: the updated debt plus financing interest at
    the contract's highest rate (``max_interest_percent_month``)."""
    if offer.count <= 1:
        return offer.updated_cents
    financed = offer.updated_cents - offer.discount_cents - offer.down_payment_cents
    rest = offer.count - (1 if offer.down_payment_cents else 0)
    return offer.down_payment_cents + plan_total_cents(
        financed, negotiation.max_interest_percent_month, rest, due_now=not offer.down_payment_cents
    )


def band_for(account: Account, today: date, negotiation: NegotiationSettings) -> OfferBand | None:
    days = (today - account.due_date).days
    for band in negotiation.bands:
        if band.methods and account.payment_method.value not in band.methods:
            continue
        if band.min_days_past_due <= days <= band.max_days_past_due:
            return band
    return None


def _offer_id(account_id: str, kind: OfferKind, quoted_on: date, amounts: Sequence[int]) -> str:
    text = "\x1f".join([account_id, kind.value, quoted_on.isoformat(), *map(str, amounts)])
    return kind.value[0] + hashlib.sha256(text.encode()).hexdigest()[:15]


def _make(
    account: Account,
    kind: OfferKind,
    today: date,
    first_due: date,
    updated: tuple[int, int, int],
    amounts: list[int],
    *,
    discount: int = 0,
    financing: int = 0,
    rate: Decimal = Decimal("0"),
    down: int = 0,
) -> Offer:
    principal, fine, interest = updated
    dues = [add_months(first_due, k) for k in range(len(amounts))]  # monthly from the first
    return Offer(
        offer_id=_offer_id(account.account_id, kind, today, amounts),
        kind=kind,
        installments=tuple(
            Installment(n, d, a) for n, (d, a) in enumerate(zip(dues, amounts, strict=True), 1)
        ),
        principal_cents=principal,
        fine_cents=fine,
        interest_cents=interest,
        discount_cents=discount,
        financing_cents=financing,
        plan_interest_percent_month=rate,
        down_payment_cents=down,
        quoted_on=today,
        valid_until=first_due,
    )


def _plans(
    account: Account,
    kind: OfferKind,
    today: date,
    first_due: date,
    updated: tuple[int, int, int],
    *,
    most: int,
    least_cents: int,
    down_percent: Decimal,
    rate: Decimal,
    discount: int = 0,
) -> list[Offer]:
    base = sum(updated) - discount
    out = []
    for count in range(2, most + 1):
        down = _floor_cents(Decimal(base) * down_percent / 100) if down_percent else 0
        rest = count - (1 if down else 0)
        financed = base - down
        repaid = plan_total_cents(financed, rate, rest, due_now=not down)
        amounts = ([down] if down else []) + _split(repaid, rest)
        if min(amounts) < least_cents:
            break  # more installments only make them smaller
        out.append(
            _make(
                account, kind, today, first_due, updated, amounts,
                discount=discount, financing=repaid - financed, rate=rate, down=down,
            )
        )  # fmt: skip
    return out


def offers_for(
    account: Account,
    today: date,
    negotiation: NegotiationSettings,
    payments: PaymentSettings,
    special: Special | None = None,
) -> tuple[Offer, ...]:
    """The offers for ``account`` quoted on the debtor-local date ``today``: a special one
    first (when there is one still valid), then paying in one go, then the plans by count."""
    if not negotiation.enabled or account.amount <= 0:
        return ()
    principal = cents(account.amount)
    first_due = today + timedelta(days=negotiation.offer_valid_days)
    fine, interest = late_charges(principal, account.due_date, first_due, payments)
    updated = (principal, fine, interest)
    base = principal + fine + interest
    out: list[Offer] = []
    if special is not None and (special.until is None or today <= special.until):
        discount = _floor_cents(Decimal(base) * special.discount_percent / 100)
        if special.installments <= 1:
            out.append(
                _make(
                    account,
                    OfferKind.SPECIAL,
                    today,
                    first_due,
                    updated,
                    [base - discount],
                    discount=discount,
                )
            )
        else:
            rate = min(special.interest_percent_month, negotiation.max_interest_percent_month)
            plans = _plans(
                account, OfferKind.SPECIAL, today, first_due, updated,
                most=special.installments, least_cents=cents(special.min_installment),
                down_percent=special.down_payment_percent, rate=rate, discount=discount,
            )  # fmt: skip
            out += [p for p in plans if p.count == special.installments][:1]
    band = band_for(account, today, negotiation)
    if band is None:
        return tuple(out)
    discount = _floor_cents(Decimal(base) * band.cash_discount_percent / 100)
    out.append(
        _make(account, OfferKind.CASH, today, first_due, updated, [base - discount], discount=discount)
    )
    rate = min(band.interest_percent_month, negotiation.max_interest_percent_month)
    out += _plans(
        account, OfferKind.INSTALLMENTS, today, first_due, updated,
        most=band.max_installments, least_cents=cents(band.min_installment),
        down_percent=band.down_payment_percent, rate=rate,
    )  # fmt: skip
    return tuple(out)


def find_offer(
    account: Account,
    offer_id: str,
    today: date,
    negotiation: NegotiationSettings,
    payments: PaymentSettings,
    special: Special | None = None,
) -> Offer | None:
    """The offer ``offer_id`` if it was quoted on a day it still holds (today included)."""
    if not offer_id or len(offer_id) > 32:
        return None
    for back in range(negotiation.offer_valid_days + 1):  # its last day included
        day = today - timedelta(days=back)
        for offer in offers_for(account, day, negotiation, payments, special):
            if offer.offer_id != offer_id or today > offer.valid_until:
                continue
            if (
                offer.kind is OfferKind.SPECIAL
                and special is not None
                and special.until
                and today > special.until
            ):
                return None  # a special offer is accepted by its own last day
            return offer
    return None


def best_offer(offers: Sequence[Offer]) -> Offer | None:
    """The one the IVR reads: the special one, else paying in one go (the biggest discount)."""
    return offers[0] if offers else None
