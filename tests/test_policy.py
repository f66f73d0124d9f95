"""decide(): every rule of compliance.md, one table row per edge."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import pytest

from dialer.domain import (
    AccountStatus,
    Attempt,
    Channel,
    Consent,
    Contact,
    Outcome,
    PhoneType,
    Reason,
    Suppression,
    SuppressionReason,
)
from dialer.formats.config_file import load_settings
from dialer.rules.policy import Policy, decide
from tests.conftest import at, make_contact

V, S = Channel.VOICE, Channel.SMS
SP, RJ, CE, ES, PR = "+5511987654321", "+5521987654321", "+5585987654321", "+5527987654321", "+5541987654321"
AM92, AM97, MT, AC, PE81, PE87 = (
    "+5592987654321",
    "+5597987654321",
    "+5565987654321",
    "+5568987654321",
    "+5581987654321",
    "+5587987654321",
)
NY, FL850 = "+12125551234", "+18505551234"

# 2026-11-20 Fri (Consciência Negra), 21 Sat, 22 Sun, 23 Mon, 24 Tue.
WINDOW_CASES = [
    # number, now, allowed, reasons, not_before
    (SP, "2026-11-23T07:59:59-03:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-03:00"),
    (SP, "2026-11-23T08:00:00-03:00", True, set(), None),
    (SP, "2026-11-23T19:59:59-03:00", True, set(), None),
    (SP, "2026-11-23T20:00:00-03:00", False, {"outside_calling_hours"}, "2026-11-24T08:00:00-03:00"),
    (SP, "2026-11-21T13:59:00-03:00", True, set(), None),
    (SP, "2026-11-21T14:00:00-03:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-03:00"),
    (SP, "2026-11-22T10:00:00-03:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-03:00"),
    (SP, "2026-11-20T10:00:00-03:00", False, {"holiday"}, "2026-11-21T08:00:00-03:00"),
    # RJ: business days 09:00-19:00, no Saturdays
    (RJ, "2026-11-23T08:30:00-03:00", False, {"outside_calling_hours"}, "2026-11-23T09:00:00-03:00"),
    (RJ, "2026-11-23T18:59:00-03:00", True, set(), None),
    (RJ, "2026-11-23T19:00:00-03:00", False, {"outside_calling_hours"}, "2026-11-24T09:00:00-03:00"),
    (RJ, "2026-11-21T10:00:00-03:00", False, {"outside_calling_hours"}, "2026-11-23T09:00:00-03:00"),
    # CE: Mon-Fri 08:00-18:00
    (CE, "2026-11-23T17:59:00-03:00", True, set(), None),
    (CE, "2026-11-23T18:00:00-03:00", False, {"outside_calling_hours"}, "2026-11-24T08:00:00-03:00"),
    (CE, "2026-11-21T09:00:00-03:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-03:00"),
    # ES: 08:00-19:00, Saturdays off
    (ES, "2026-11-23T19:00:00-03:00", False, {"outside_calling_hours"}, "2026-11-24T08:00:00-03:00"),
    (ES, "2026-11-21T09:00:00-03:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-03:00"),
    # PR: Saturday until 13:00
    (PR, "2026-11-21T12:59:00-03:00", True, set(), None),
    (PR, "2026-11-21T13:00:00-03:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-03:00"),
    # AM (Manaus, UTC-4): Mon-Fri 08:00-18:00 local
    (AM92, "2026-11-23T07:59:00-04:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-04:00"),
    (AM92, "2026-11-23T08:00:00-04:00", True, set(), None),
    (AM92, "2026-11-23T18:00:00-04:00", False, {"outside_calling_hours"}, "2026-11-24T08:00:00-04:00"),
    (AM92, "2026-11-21T13:59:00-04:00", True, set(), None),
    # MT (Cuiabá, UTC-4): 08:30 in Brasília is 07:30 there
    (MT, "2026-11-23T08:30:00-03:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-04:00"),
    # AC (Rio Branco, UTC-5)
    (AC, "2026-11-23T09:30:00-03:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-05:00"),
    (AC, "2026-11-23T10:00:00-03:00", True, set(), None),
    # DDD 81: mainland Recife (UTC-3) and Fernando de Noronha (UTC-2) must both allow
    (PE81, "2026-11-23T07:30:00-03:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-03:00"),
    (PE81, "2026-11-23T19:30:00-03:00", False, {"outside_calling_hours"}, "2026-11-24T08:00:00-03:00"),
    (PE81, "2026-11-23T18:59:00-03:00", True, set(), None),
    (PE87, "2026-11-23T19:30:00-03:00", True, set(), None),
    # DDD 97: Manaus (UTC-4) and Eirunepé (UTC-5)
    (AM97, "2026-11-23T08:30:00-04:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-05:00"),
    (AM97, "2026-11-23T09:00:00-04:00", True, set(), None),
    (AM97, "2026-11-23T17:59:00-04:00", True, set(), None),
    # US: 08:00-21:00 every day, holidays not observed by default
    (NY, "2026-11-23T07:59:00-05:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-05:00"),
    (NY, "2026-11-23T20:59:00-05:00", True, set(), None),
    (NY, "2026-11-23T21:00:00-05:00", False, {"outside_calling_hours"}, "2026-11-24T08:00:00-05:00"),
    (NY, "2026-11-22T10:00:00-05:00", True, set(), None),
    (NY, "2026-11-26T10:00:00-05:00", True, set(), None),
    # area code 850 spans Eastern and Central
    (FL850, "2026-11-23T08:30:00-05:00", False, {"outside_calling_hours"}, "2026-11-23T08:00:00-06:00"),
    (FL850, "2026-11-23T20:30:00-05:00", True, set(), None),
]


@pytest.mark.parametrize(("number", "now", "allowed", "reasons", "not_before"), WINDOW_CASES)
@pytest.mark.parametrize("channel", [V, S])
def test_calling_windows(policy, number, now, allowed, reasons, not_before, channel):
    d = decide(make_contact(number, channel), [], at(now), policy)
    assert d.allowed is allowed
    assert set(d.reasons) == reasons
    if allowed:
        assert d.not_before == at(now)
    else:
        assert d.not_before == at(not_before)


@pytest.mark.parametrize(
    ("number", "region", "day", "holiday"),
    [
        (SP, None, "2026-07-09", True),  # Revolução Constitucionalista: SP only
        (RJ, None, "2026-07-09", False),
        (RJ, None, "2026-04-23", True),  # São Jorge: RJ only
        (SP, None, "2026-04-23", False),
        (SP, "RJ", "2026-04-23", True),  # the account's region picks the state
        (SP, None, "2026-11-20", True),  # Consciência Negra: national since 2024
        (AM92, None, "2026-11-20", True),
        (SP, None, "2026-12-25", True),
        (SP, None, "2026-12-24", False),
    ],
)
def test_holidays(policy, number, region, day, holiday):
    d0 = date.fromisoformat(day)
    if d0.weekday() >= 5:
        pytest.fail("pick a weekday so only the holiday can block")
    offset = "-04:00" if number == AM92 else "-03:00"
    d = decide(
        make_contact(number, due=d0 - timedelta(days=40), region=region),
        [],
        at(f"{day}T10:00:00{offset}"),
        policy,
    )
    assert (Reason.HOLIDAY in d.reasons) is holiday
    assert d.allowed is (not holiday)


def test_custom_holiday_from_config(tmp_config):
    path = tmp_config(
        '[packs.BR]\ncustom_holidays = [{date = "01-25", name = "Aniversário de SP", regions = ["SP"]}]\n'
    )
    policy = Policy.from_settings(load_settings(path, env={}))
    sp = decide(make_contact(SP, due=date(2026, 12, 1)), [], at("2027-01-25T10:00:00-03:00"), policy)
    rj = decide(make_contact(RJ, due=date(2026, 12, 1)), [], at("2027-01-25T10:00:00-03:00"), policy)
    assert sp.reasons == (Reason.HOLIDAY,)
    assert sp.not_before == at("2027-01-26T08:00:00-03:00")
    assert rj.allowed


@pytest.mark.parametrize(
    ("number", "due", "now", "channel", "blocked", "not_before"),
    [
        # due Sat 14 Nov: D+9 is Mon 23, D+10 is Tue 24
        (SP, "2026-11-14", "2026-11-23T10:00:00-03:00", V, True, "2026-11-24T08:00:00-03:00"),
        (SP, "2026-11-14", "2026-11-24T08:00:00-03:00", V, False, None),
        (SP, "2026-11-14", "2026-11-23T10:00:00-03:00", S, False, None),  # SMS before D+10 is fine
        # 00:30 on the 24th in Brasília is still the 23rd (D+9) in Manaus
        (AM92, "2026-11-14", "2026-11-24T03:30:00+00:00", V, True, "2026-11-24T08:00:00-04:00"),
        (SP, "2026-11-14", "2026-11-24T03:30:00+00:00", V, False, None),  # D+10, but 00:30: hours
        (NY, "2026-11-14", "2026-11-23T10:00:00-05:00", V, True, "2026-11-24T08:00:00-05:00"),
    ],
)
def test_min_days_past_due(policy, number, due, now, channel, blocked, not_before):
    d = decide(make_contact(number, channel, due=date.fromisoformat(due)), [], at(now), policy)
    assert (Reason.BEFORE_MIN_DAYS_PAST_DUE in d.reasons) is blocked
    if not_before:
        assert d.not_before == at(not_before)


def test_min_days_past_due_can_be_turned_off(tmp_config):
    policy = Policy.from_settings(
        load_settings(tmp_config("[policy]\nmin_days_past_due_voice = 0\n"), env={})
    )
    d = decide(make_contact(SP, due=date(2026, 11, 23)), [], at("2026-11-23T10:00:00-03:00"), policy)
    assert d.allowed


@pytest.mark.parametrize(
    ("kwargs", "channel", "reasons"),
    [
        ({"consent": Consent(voice=False, sms=True)}, V, {"no_consent"}),
        ({"consent": Consent(voice=False, sms=True)}, S, set()),
        ({"consent": Consent(voice=True, sms=False)}, S, {"no_consent"}),
        ({"phone_type": PhoneType.WORK, "provided_by_debtor": False}, V, {"work_number_not_provided"}),
        ({"phone_type": PhoneType.WORK, "provided_by_debtor": True}, V, set()),
        ({"phone_type": PhoneType.HOME, "provided_by_debtor": False}, V, set()),
        ({"status": AccountStatus.PAID}, V, {"account_closed"}),
        ({"status": AccountStatus.CLOSED}, S, {"account_closed"}),
        ({"status": AccountStatus.DISPUTED}, V, {"suppressed"}),
    ],
)
def test_permanent_rules_have_no_not_before(policy, kwargs, channel, reasons):
    d = decide(make_contact(SP, channel, **kwargs), [], at("2026-11-23T10:00:00-03:00"), policy)
    assert set(d.reasons) == reasons
    assert d.allowed is (not reasons)
    assert (d.not_before is None) is bool(reasons)


def test_permanent_and_time_reasons_are_all_reported(policy):
    c = make_contact(SP, consent=Consent(voice=False, sms=False))
    d = decide(c, [], at("2026-11-22T10:00:00-03:00"), policy)  # a Sunday
    assert set(d.reasons) == {"no_consent", "outside_calling_hours"}
    assert d.not_before is None


NOW = at("2026-11-23T10:00:00-03:00")


@pytest.mark.parametrize(
    ("suppression", "channel", "suppressed"),
    [
        (Suppression(SP, SuppressionReason.OPT_OUT, Channel.SMS), S, True),
        (Suppression(SP, SuppressionReason.OPT_OUT, Channel.SMS), V, False),
        (Suppression(SP, SuppressionReason.WRONG_NUMBER), V, True),
        (Suppression(SP, SuppressionReason.WRONG_NUMBER), S, True),
        (Suppression(RJ, SuppressionReason.WRONG_NUMBER), V, False),  # another number
        (Suppression(SP, SuppressionReason.DO_NOT_CALL, effective_from=NOW - timedelta(days=1)), V, True),
        (Suppression(SP, SuppressionReason.DO_NOT_CALL, effective_from=NOW + timedelta(days=1)), V, False),
    ],
)
def test_suppression(policy, suppression, channel, suppressed):
    base = make_contact(SP, channel)
    c = Contact(base.account, base.phone, channel, (suppression,))
    d = decide(c, [], NOW, policy)
    assert (Reason.SUPPRESSED in d.reasons) is suppressed
    assert d.allowed is (not suppressed)


def test_future_registry_entry_cuts_not_before(policy):
    """Blocked until Tuesday by hours, but a registry entry takes effect before then."""
    base = make_contact(SP)
    stop = Suppression(SP, SuppressionReason.DO_NOT_CALL, effective_from=at("2026-11-23T23:00:00-03:00"))
    d = decide(Contact(base.account, base.phone, V, (stop,)), [], at("2026-11-23T20:30:00-03:00"), policy)
    assert not d.allowed and d.not_before is None


def attempt(number, when, outcome=Outcome.NO_ANSWER, channel=V, account_id="ACC-1"):
    return Attempt(account_id, number, channel, at(when), outcome)


@pytest.mark.parametrize(
    ("number", "history", "now", "reasons", "not_before"),
    [
        # BR: 1 call per phone per local day (busy counts in Brazil: stricter)
        (
            SP,
            [attempt(SP, "2026-11-23T08:10:00-03:00", Outcome.BUSY)],
            "2026-11-23T10:00:00-03:00",
            {"attempt_cap"},
            "2026-11-24T08:00:00-03:00",
        ),
        (SP, [attempt(SP, "2026-11-21T08:10:00-03:00")], "2026-11-23T10:00:00-03:00", set(), None),
        # the local day, not the UTC day: 22:30 in Manaus on the 23rd is the 24th in UTC
        (
            AM92,
            [attempt(AM92, "2026-11-24T02:30:00+00:00")],
            "2026-11-23T23:30:00-04:00",
            {"attempt_cap", "outside_calling_hours"},
            "2026-11-24T08:00:00-04:00",
        ),
        # a call to another phone of the account the same day is fine per phone...
        (SP, [attempt(RJ, "2026-11-23T09:10:00-03:00")], "2026-11-23T10:00:00-03:00", set(), None),
        # ...but 3 calls per account in 7 consecutive local days is the cap (sliding window)
        (
            SP,
            [
                attempt(RJ, "2026-11-17T10:00:00-03:00"),
                attempt(RJ, "2026-11-18T10:00:00-03:00"),
                attempt(RJ, "2026-11-19T10:00:00-03:00"),
            ],
            "2026-11-23T10:00:00-03:00",
            {"attempt_cap"},
            "2026-11-24T08:00:00-03:00",
        ),
        (
            SP,
            [
                attempt(RJ, "2026-11-16T10:00:00-03:00"),
                attempt(RJ, "2026-11-18T10:00:00-03:00"),
                attempt(RJ, "2026-11-19T10:00:00-03:00"),
            ],
            "2026-11-23T10:00:00-03:00",
            set(),
            None,
        ),
        # another account's attempts never count
        (
            SP,
            [attempt(SP, "2026-11-23T08:10:00-03:00", account_id="OTHER")],
            "2026-11-23T10:00:00-03:00",
            set(),
            None,
        ),
        # an in-flight call counts
        (
            SP,
            [attempt(SP, "2026-11-23T09:59:00-03:00", Outcome.PLACED)],
            "2026-11-23T10:00:00-03:00",
            {"attempt_cap"},
            "2026-11-24T08:00:00-03:00",
        ),
    ],
)
def test_br_attempt_caps(policy, number, history, now, reasons, not_before):
    d = decide(make_contact(number), history, at(now), policy)
    assert set(d.reasons) == reasons
    if not_before:
        assert d.not_before == at(not_before)


def _us_week(outcomes):
    days = ["2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22", "2026-11-22"]
    hours = ["10", "10", "10", "10", "10", "10", "15"]
    return [
        attempt(f"+1212555{i:04d}", f"{d}T{h}:00:00-05:00", o)
        for i, (d, h, o) in enumerate(zip(days, hours, outcomes, strict=True))
    ]


@pytest.mark.parametrize(
    ("outcomes", "now", "blocked", "not_before"),
    [
        ([Outcome.NO_ANSWER] * 7, "2026-11-23T10:00:00-05:00", True, "2026-11-24T08:00:00-05:00"),
        ([Outcome.VOICEMAIL] * 7, "2026-11-23T10:00:00-05:00", True, "2026-11-24T08:00:00-05:00"),
        ([Outcome.NO_ANSWER] * 7, "2026-11-24T08:00:00-05:00", False, None),
        # busy / not in service do not count under Reg F
        ([Outcome.BUSY] + [Outcome.NO_ANSWER] * 6, "2026-11-23T10:00:00-05:00", False, None),
        ([Outcome.INVALID_NUMBER] + [Outcome.NO_ANSWER] * 6, "2026-11-23T10:00:00-05:00", False, None),
    ],
)
def test_us_seven_in_seven(policy, outcomes, now, blocked, not_before):
    d = decide(make_contact(NY), _us_week(outcomes), at(now), policy)
    assert (Reason.ATTEMPT_CAP in d.reasons) is blocked
    assert d.allowed is (not blocked)
    if not_before:
        assert d.not_before == at(not_before)


@pytest.mark.parametrize(
    ("number", "conversation", "now", "channel", "blocked", "not_before"),
    [
        # conversation on Mon 16 = day 1; day 7 is Sun 22; Mon 23 is free again
        (NY, "2026-11-16T10:00:00-05:00", "2026-11-22T20:00:00-05:00", V, True, "2026-11-23T08:00:00-05:00"),
        (NY, "2026-11-16T10:00:00-05:00", "2026-11-23T08:00:00-05:00", V, False, None),
        (NY, "2026-11-16T10:00:00-05:00", "2026-11-17T10:00:00-05:00", S, False, None),  # calls only
        (SP, "2026-11-17T10:00:00-03:00", "2026-11-23T10:00:00-03:00", V, True, "2026-11-24T08:00:00-03:00"),
    ],
)
def test_recent_conversation(policy, number, conversation, now, channel, blocked, not_before):
    history = [attempt(number, conversation, Outcome.ANSWERED_VERIFIED)]
    d = decide(make_contact(number, channel), history, at(now), policy)
    assert (Reason.RECENT_CONVERSATION in d.reasons) is blocked
    if not_before:
        assert d.not_before == at(not_before)


@pytest.mark.parametrize(
    ("number", "region", "timezone", "now", "zones", "allowed"),
    [
        # the account's region narrows or, when it conflicts with the number, adds zones
        (SP, "AC", None, "2026-11-23T09:30:00-03:00", ("America/Sao_Paulo", "America/Rio_Branco"), False),
        (AM97, "AM", None, "2026-11-23T09:00:00-04:00", ("America/Manaus", "America/Eirunepe"), True),
        (PE81, "PE", None, "2026-11-23T10:00:00-03:00", ("America/Recife", "America/Noronha"), True),
        # an explicit IANA zone wins
        (SP, None, "America/Manaus", "2026-11-23T08:30:00-03:00", ("America/Manaus",), False),
        (AM97, None, "America/Manaus", "2026-11-23T08:30:00-04:00", ("America/Manaus",), True),
        (FL850, "FL", None, "2026-11-23T08:30:00-05:00", ("America/New_York", "America/Chicago"), False),
        (NY, "US-CA", None, "2026-11-23T10:00:00-05:00", ("America/New_York", "America/Los_Angeles"), False),
    ],
)
def test_location_overrides(policy, number, region, timezone, now, zones, allowed):
    d = decide(make_contact(number, region=region, timezone=timezone), [], at(now), policy)
    assert set(d.time_zones) == set(zones)
    assert d.allowed is allowed


def test_region_picks_state_law(policy):
    # an SP number whose account says RJ follows RJ's law: no Saturdays
    d = decide(make_contact(SP, region="RJ"), [], at("2026-11-21T10:00:00-03:00"), policy)
    assert d.reasons == (Reason.OUTSIDE_CALLING_HOURS,)
    assert d.region == "RJ"


def test_company_can_narrow_hours(tmp_config):
    policy = Policy.from_settings(
        load_settings(
            tmp_config('[packs.BR.hours.default.voice]\nmon = "10:00-12:00, 14:00-18:00"\n'), env={}
        )
    )
    d = decide(make_contact(SP), [], at("2026-11-23T12:30:00-03:00"), policy)
    assert d.not_before == at("2026-11-23T14:00:00-03:00")
    # the narrowed default still never widens a stricter state: RJ opens at 10:00 now
    d = decide(make_contact(RJ), [], at("2026-11-23T09:30:00-03:00"), policy)
    assert d.not_before == at("2026-11-23T10:00:00-03:00")


def test_naive_now_is_refused(policy):
    from datetime import datetime

    with pytest.raises(ValueError, match="timezone-aware"):
        decide(make_contact(SP), [], datetime(2026, 11, 23, 10), policy)


@pytest.mark.parametrize(
    ("number", "now", "region", "until"),
    [
        # São Paulo, a weekday: the window closes at 20:00
        ("+5511987654321", "2026-11-23T19:30:00-03:00", None, "2026-11-23T20:00:00-03:00"),
        # Saturday: 14:00
        ("+5511987654321", "2026-11-28T13:59:00-03:00", None, "2026-11-28T14:00:00-03:00"),
        # Rio's law: 19:00
        ("+5521987654321", "2026-11-23T18:00:00-03:00", None, "2026-11-23T19:00:00-03:00"),
        # Manaus (UTC-4): 18:00 there is 19:00 in Brasília
        ("+5592987654321", "2026-11-23T17:00:00-04:00", None, "2026-11-23T18:00:00-04:00"),
    ],
)
def test_a_call_is_allowed_until_its_window_closes(policy, number, now, region, until):
    from dialer.rules.policy import allowed_until

    contact = make_contact(number, Channel.VOICE, due=date(2026, 11, 1), region=region)
    at = datetime.fromisoformat(now)
    assert decide(contact, (), at, policy).allowed
    assert allowed_until(contact, at, policy) == datetime.fromisoformat(until)


def test_where_zones_are_ambiguous_the_earliest_close_holds(policy):
    """DDD 97 spans UTC-4 and UTC-5: allowed until the first zone closes."""
    from dialer.rules.policy import allowed_until

    contact = make_contact("+5597987654321", Channel.VOICE, due=date(2026, 11, 1))
    at = datetime.fromisoformat("2026-11-23T11:00:00-04:00")
    assert decide(contact, (), at, policy).allowed and len(decide(contact, (), at, policy).time_zones) == 2
    assert allowed_until(contact, at, policy) == datetime.fromisoformat("2026-11-23T18:00:00-04:00")


def test_a_call_the_debtor_asked_for_is_held_by_time_and_stops_not_by_caps(policy):
    """After a verified conversation this morning the régua may not call for 7 days; the
    agent calling back at the debtor's request may, within the hours, never if suppressed."""
    from dialer.domain import Attempt, Outcome, Suppression, SuppressionReason

    contact = make_contact("+5511987654321", Channel.VOICE, due=date(2026, 11, 1))
    talk = Attempt(
        "ACC-1", "+5511987654321", Channel.VOICE, at("2026-11-23T09:00:00-03:00"), Outcome.ANSWERED_VERIFIED
    )
    afternoon = at("2026-11-23T15:00:00-03:00")
    assert not decide(contact, (talk,), afternoon, policy).allowed  # the régua waits a week
    asked = dataclasses.replace(contact, requested=True)
    assert decide(asked, (talk,), afternoon, policy).allowed
    night = decide(asked, (talk,), at("2026-11-23T21:00:00-03:00"), policy)
    assert not night.allowed and night.reasons == ("outside_calling_hours",)
    stopped = dataclasses.replace(
        asked, suppressions=(Suppression("+5511987654321", SuppressionReason.OPT_OUT),)
    )
    assert not decide(stopped, (talk,), afternoon, policy).allowed
