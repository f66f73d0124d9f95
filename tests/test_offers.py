"""Offers and agreements, pure: tables of cases and properties (hypothesis).

The invariants: no offer ever asks more than the debt plus what the contract allows (the
fine, moratory interest and a plan's interest at most the contract's rate), amounts add up
to the cent, installments are dated monthly from the offer's validity, none is below the
band's least installment, and an offer holds exactly ``offer_valid_days``.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dialer.domain import Account, AccountStatus, PaymentMethod
from dialer.rules.agreements import AgreementStatus, agreement_id, reminder_cadence, review
from dialer.rules.cadence import next_step
from dialer.rules.offers import (
    OfferKind,
    Special,
    add_months,
    ceiling_cents,
    find_offer,
    late_charges,
    offers_for,
    plan_total_cents,
)
from dialer.settings import NegotiationSettings, OfferBand, PaymentSettings

PAY = PaymentSettings()  # fine 2 %, interest 1 % a month
BANDS = (
    OfferBand(max_days_past_due=30, cash_discount_percent=Decimal(5), max_installments=3),
    OfferBand(
        min_days_past_due=31,
        max_days_past_due=180,
        cash_discount_percent=Decimal(10),
        max_installments=6,
        down_payment_percent=Decimal(20),
        interest_percent_month=Decimal("0.99"),
    ),
    OfferBand(
        methods=("card",), min_days_past_due=181, cash_discount_percent=Decimal(30), max_installments=12
    ),
)
NEG = NegotiationSettings(bands=BANDS)
TODAY = date(2026, 11, 20)


def account(amount="480.00", due=date(2026, 10, 1), method=PaymentMethod.BOLETO, status=AccountStatus.OPEN):
    return Account("A1", "Ana", due, Decimal(amount), payment_method=method, status=status)


@pytest.mark.parametrize(
    ("principal", "due", "on", "fine", "interest"),
    [
        (48000, date(2026, 10, 1), date(2026, 9, 30), 0, 0),  # not due yet: nothing
        (48000, date(2026, 10, 1), date(2026, 10, 1), 0, 0),  # due today: nothing yet
        (48000, date(2026, 10, 1), date(2026, 10, 2), 960, 16),  # a day late: 2 % fine, 1/30 of 1 %
        (48000, date(2026, 10, 1), date(2026, 10, 31), 960, 480),  # 30 days: a month's interest
        (10001, date(2026, 1, 1), date(2026, 1, 16), 200, 50),  # rounded down, never up
    ],
)
def test_late_charges(principal, due, on, fine, interest):
    assert late_charges(principal, due, on, PAY) == (fine, interest)


@pytest.mark.parametrize(
    ("financed", "rate", "count", "due_now", "total"),
    [
        (10000, Decimal("0"), 4, False, 10000),  # no interest: the principal
        (10000, Decimal("1"), 1, False, 10100),  # one payment a month later: a month's interest
        (10000, Decimal("1"), 1, True, 10000),  # one payment now: none
        (120000, Decimal("1"), 12, False, 127942),  # Price: 12 × 106.6185… = 1,279.42 (rounded down)
    ],
)
def test_price_table(financed, rate, count, due_now, total):
    assert plan_total_cents(financed, rate, count, due_now=due_now) == total


@pytest.mark.parametrize(
    ("d", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 11, 23), 2, date(2027, 1, 23)),
        (date(2026, 3, 31), 13, date(2027, 4, 30)),
    ],
)
def test_months_are_calendar_months(d, months, expected):
    assert add_months(d, months) == expected


def test_the_offers_of_a_debt_50_days_late():
    offers = offers_for(account(), TODAY, NEG, PAY)
    cash, *plans = offers
    first_due = TODAY + timedelta(days=NEG.offer_valid_days)
    assert cash.kind is OfferKind.CASH and cash.count == 1 and cash.valid_until == first_due
    fine, interest = late_charges(48000, date(2026, 10, 1), first_due, PAY)
    assert (cash.fine_cents, cash.interest_cents) == (fine, interest) == (960, 848)
    assert cash.discount_cents == (48000 + 960 + 848) // 10 and cash.total_cents == 49808 - 4980
    assert [p.count for p in plans] == [2, 3, 4, 5, 6]
    for p in plans:
        assert p.kind is OfferKind.INSTALLMENTS and p.down_payment_cents == 49808 // 5
        assert p.installments[0].amount_cents == p.down_payment_cents
        assert [i.due for i in p.installments] == [add_months(first_due, k) for k in range(p.count)]
        assert p.financing_cents > 0 and p.plan_interest_percent_month == Decimal("0.99")


@pytest.mark.parametrize(
    ("amount", "due", "method", "kinds"),
    [
        ("480.00", date(2026, 12, 1), PaymentMethod.BOLETO, []),  # not due yet: no band
        ("480.00", date(2026, 11, 1), PaymentMethod.BOLETO, ["cash", "installments", "installments"]),
        ("120.00", date(2026, 11, 1), PaymentMethod.BOLETO, ["cash", "installments"]),  # 3 × 40 < 50
        ("60.00", date(2026, 11, 1), PaymentMethod.BOLETO, ["cash"]),  # too small to split
        ("480.00", date(2025, 1, 1), PaymentMethod.BOLETO, []),  # the old band is for cards only
        (
            "480.00",
            date(2025, 1, 1),
            PaymentMethod.CARD,
            ["cash", *["installments"] * 11],
        ),  # ~600 updated: 12 × 50
    ],
)
def test_bands_pick_the_offers(amount, due, method, kinds):
    assert [o.kind.value for o in offers_for(account(amount, due, method), TODAY, NEG, PAY)] == kinds


def test_no_offers_when_negotiation_is_off_or_nothing_is_owed():
    off = NEG.model_copy(update={"enabled": False})
    assert offers_for(account(), TODAY, off, PAY) == ()
    assert offers_for(account("0.00"), TODAY, NEG, PAY) == ()


def test_a_special_offer_comes_first_and_expires():
    special = Special(Decimal(40), 4, until=TODAY + timedelta(days=1), by="ana")
    offers = offers_for(account(), TODAY, NEG, PAY, special)
    assert offers[0].kind is OfferKind.SPECIAL and offers[0].count == 4
    assert offers[0].discount_cents == (48000 + 960 + 848) * 40 // 100
    later = offers_for(account(), TODAY + timedelta(days=2), NEG, PAY, special)
    assert all(o.kind is not OfferKind.SPECIAL for o in later)
    # quoted while it held, accepted after its last day: refused
    assert (
        find_offer(account(), offers[0].offer_id, TODAY + timedelta(days=1), NEG, PAY, special) == offers[0]
    )
    assert find_offer(account(), offers[0].offer_id, TODAY + timedelta(days=2), NEG, PAY, special) is None


def test_an_offer_holds_for_its_days_and_no_longer():
    offer = offers_for(account(), TODAY, NEG, PAY)[2]
    for later in range(NEG.offer_valid_days + 1):  # through the day of its first payment
        assert find_offer(account(), offer.offer_id, TODAY + timedelta(days=later), NEG, PAY) == offer
    assert offer.valid_until == TODAY + timedelta(days=NEG.offer_valid_days)
    too_late = TODAY + timedelta(days=NEG.offer_valid_days + 1)
    assert find_offer(account(), offer.offer_id, too_late, NEG, PAY) is None
    assert find_offer(account(), "c" + "0" * 15, TODAY, NEG, PAY) is None
    assert find_offer(account(), "", TODAY, NEG, PAY) is None
    assert find_offer(account("481.00"), offer.offer_id, TODAY, NEG, PAY) is None  # another debt


amounts = st.decimals(min_value=Decimal("1.00"), max_value=Decimal("250000.00"), places=2)
days = st.integers(min_value=-30, max_value=4000)
bands = st.builds(
    OfferBand,
    cash_discount_percent=st.decimals(min_value=0, max_value=Decimal("99.99"), places=2),
    max_installments=st.integers(min_value=1, max_value=48),
    min_installment=st.decimals(min_value=Decimal("1.00"), max_value=Decimal("500.00"), places=2),
    down_payment_percent=st.decimals(min_value=0, max_value=Decimal("99.99"), places=2),
    interest_percent_month=st.decimals(min_value=0, max_value=Decimal("1"), places=2),
)
contracts = st.builds(
    PaymentSettings,
    fine_percent=st.decimals(min_value=0, max_value=Decimal("2"), places=2),
    interest_percent_month=st.decimals(min_value=0, max_value=Decimal("1"), places=2),
)


@settings(max_examples=300, deadline=None)
@given(amount=amounts, late=days, band=bands, contract=contracts, method=st.sampled_from(PaymentMethod))
def test_no_offer_ever_asks_more_than_the_contract_allows(amount, late, band, contract, method):
    neg = NegotiationSettings(
        bands=(band.model_copy(update={"max_days_past_due": 3650, "min_days_past_due": -60}),)
    )
    acct = Account("X", "X", TODAY - timedelta(days=late), amount, payment_method=method)
    principal = int(amount * 100)
    for offer in offers_for(acct, TODAY, neg, contract):
        fine, interest = late_charges(principal, acct.due_date, offer.valid_until, contract)
        assert offer.principal_cents == principal and (offer.fine_cents, offer.interest_cents) == (
            fine,
            interest,
        )
        assert fine <= principal * 2 // 100 and interest <= principal * max(late + 3, 0) // 3000 + 1
        assert offer.total_cents <= ceiling_cents(offer, neg)
        ceiling_by_law = (
            principal
            + fine
            + interest
            + plan_total_cents(principal + fine + interest, Decimal("1"), offer.count, due_now=False)
            - (principal + fine + interest)
        )
        assert offer.total_cents <= max(ceiling_by_law, principal + fine + interest)
        assert offer.total_cents == sum(i.amount_cents for i in offer.installments)
        assert all(i.amount_cents > 0 for i in offer.installments)
        dues = [i.due for i in offer.installments]
        assert dues == sorted(dues) and dues[0] == TODAY + timedelta(days=neg.offer_valid_days)
        assert [i.number for i in offer.installments] == list(range(1, offer.count + 1))
        if offer.count > 1:
            assert min(i.amount_cents for i in offer.installments) >= int(band.min_installment * 100)
            assert offer.financing_cents >= 0 and offer.discount_cents == 0
        else:
            assert offer.total_cents == principal + fine + interest - offer.discount_cents


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"fine_percent": Decimal("2.5")}, "less than or equal to 2"),  # CDC art. 52 §1
        ({"interest_percent_month": Decimal("1.5")}, "less than or equal to 1"),
    ],
)
def test_the_contract_cannot_be_looser_than_the_law(change, reason):
    with pytest.raises(ValidationError, match=reason):
        PaymentSettings(**change)


@pytest.mark.parametrize(
    ("negotiation", "reason"),
    [
        ({"max_interest_percent_month": "1.5"}, "less than or equal to 1"),
        ({"bands": [{"interest_percent_month": "1.2"}]}, "above max_interest_percent_month"),
        ({"bands": [{"cash_discount_percent": "100"}]}, "less than 100"),
        ({"bands": [{"down_payment_percent": "-1"}]}, "greater than or equal to 0"),
        ({"bands": [{"min_installment": "0"}]}, "greater than 0"),
        ({"bands": [{"max_installments": 49}]}, "less than or equal to 48"),
        ({"bands": [{"min_days_past_due": 40, "max_days_past_due": 10}]}, "below min_days_past_due"),
        ({"bands": [{"max_days_past_due": 30}, {"min_days_past_due": 30}]}, "overlap"),
        ({"reminder_days": [-40]}, "within 30 days"),
        ({"offer_valid_days": 0}, "greater than or equal to 1"),
    ],
)
def test_the_validator_refuses_offer_rules_looser_than_allowed(negotiation, reason):
    with pytest.raises(ValidationError, match=reason):
        NegotiationSettings.model_validate(negotiation)


def test_bands_for_different_methods_may_share_days():
    NegotiationSettings(bands=(OfferBand(methods=("card",)), OfferBand(methods=("boleto",))))


# ---------------------------------------------------------------- agreements, pure


def test_an_agreement_id_is_the_account_and_the_offer():
    assert agreement_id("A1", "i1") == agreement_id("A1", "i1") != agreement_id("A1", "i2")
    assert agreement_id("A1", "i1") != agreement_id("A2", "i1")


@pytest.mark.parametrize(
    ("paid", "today", "status", "overdue", "look_again"),
    [
        (set(), date(2026, 11, 23), "current", None, date(2026, 12, 3)),
        (set(), date(2026, 11, 24), "current", 1, date(2026, 12, 3)),  # late, not yet broken
        (set(), date(2026, 12, 3), "broken", 1, None),  # 10 days after: broken
        ({1}, date(2026, 12, 3), "current", None, date(2027, 1, 2)),
        ({1}, date(2027, 1, 2), "broken", 2, None),
        ({2}, date(2026, 12, 3), "broken", 1, None),  # the second paid, the first not: broken
        ({1, 2, 3}, date(2027, 5, 1), "kept", None, None),
    ],
)
def test_review_table(paid, today, status, overdue, look_again):
    offer = offers_for(account(), TODAY, NEG, PAY)[2]  # 3 installments from 2026-11-23
    got = review(offer, paid, today, 10)
    assert got.status is AgreementStatus(status)
    assert (got.overdue.number if got.overdue else None) == overdue
    assert got.look_again == look_again


@settings(max_examples=100, deadline=None)
@given(paid=st.sets(st.integers(1, 6)), offset=st.integers(-10, 400))
def test_review_never_keeps_an_agreement_with_an_installment_unpaid(paid, offset):
    offer = offers_for(account(), TODAY, NEG, PAY)[-1]  # 6 installments
    got = review(offer, paid, TODAY + timedelta(days=offset), 10)
    unpaid = {i.number for i in offer.installments} - paid
    assert (got.status is AgreementStatus.KEPT) == (not unpaid)
    if got.status is AgreementStatus.BROKEN:
        assert got.overdue is not None and got.overdue.number in unpaid
        assert TODAY + timedelta(days=offset) >= got.overdue.due + timedelta(days=10)


def test_reminders_are_sms_steps_at_d_minus_3_and_d0_of_each_unpaid_installment():
    offer = offers_for(account(), TODAY, NEG, PAY)[2]
    acct = account(status=AccountStatus.AGREEMENT)
    cadence = reminder_cadence("ag123456789", offer, acct, {1}, (-3, 0))
    steps = cadence.dated("boleto")
    assert [(s.channel.value, s.offset_days) for s in steps] == [
        ("sms", (i.due - acct.due_date).days + d) for i in offer.installments[1:] for d in (-3, 0)
    ]
    nxt = next_step(acct, (), offer.installments[1].due - timedelta(days=5), cadence)
    assert nxt is not None and nxt.due_on == offer.installments[1].due - timedelta(days=3)
    assert next_step(account(), (), TODAY, cadence) is None  # an open account: not its cadence


@pytest.mark.parametrize(
    ("values", "error"),
    [
        (
            {"interest_percent_month": "3.5"},
            "field 'interest_percent_month': 3.5 is above what the contract allows",
        ),
        ({"installments": 0}, "field 'installments': a whole number from 1 to 48"),
        ({"installments": 49}, "from 1 to 48"),
        ({"installments": "6"}, "from 1 to 48"),  # a JSON string is not a count
        ({"installments": True}, "from 1 to 48"),
        ({"discount_percent": "abc"}, "field 'discount_percent': 'abc' is not a number"),
        ({"discount_percent": 100}, "must be at least 0 and below 100"),
        ({"down_payment_percent": -1}, "must be at least 0 and below 100"),
        ({"discount_percent": "NaN"}, "must be at least 0 and below 100"),
        ({"discount_percent": True}, "field 'discount_percent': True is not a number"),
        ({"until": "31/12/2026"}, "field 'until': '31/12/2026' is not YYYY-MM-DD"),
        ({"until": 20261231}, "is not YYYY-MM-DD"),
        ({"price": 1}, "unknown field 'price'"),
    ],
)
def test_a_special_offer_is_refused_naming_the_field_and_the_reason(values, error):
    from dialer.errors import InputError
    from dialer.rules.offers import special_offer

    with pytest.raises(InputError, match=re.escape(error)):
        special_offer(values, "maria", Decimal("2"))


def test_a_special_offer_names_fields_as_the_caller_does_and_keeps_what_was_asked():
    from dialer.errors import InputError
    from dialer.rules.offers import special_offer

    with pytest.raises(InputError, match=r"^--installments: a whole number from 1 to 48$"):
        special_offer({"installments": 60}, "maria", Decimal("2"), label=lambda f: "--installments")
    made = special_offer(
        {"discount_percent": "30", "installments": 6, "down_payment_percent": 10.5, "until": "2026-12-31"},
        "maria",
        Decimal("2"),
    )
    assert made == Special(
        discount_percent=Decimal("30"),
        installments=6,
        down_payment_percent=Decimal("10.5"),
        interest_percent_month=Decimal("0"),
        until=date(2026, 12, 31),
        by="maria",
    )
