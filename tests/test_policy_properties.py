"""Invariants of decide(), checked with hypothesis over random contacts, times and histories."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dialer.domain import TIME_BASED_REASONS, Attempt, Channel, Outcome
from dialer.rules.local_time import BR_DDD
from dialer.rules.policy import decide
from tests.conftest import make_contact

NUMBERS = [f"+55{ddd}987654321" for ddd in sorted(BR_DDD)] + [
    "+12125551234",
    "+18505551234",
    "+13105551234",
    "+19075551234",
    "+18085551234",
]
OTHER_PHONES = ["+5511912345678", "+5521912345678", "+12125550000"]

instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@st.composite
def scenario(draw):
    number = draw(st.sampled_from(NUMBERS))
    channel = draw(st.sampled_from(list(Channel)))
    now = draw(instants)
    due = now.date() - timedelta(days=draw(st.integers(-15, 40)))
    region = draw(st.sampled_from([None, None, None, "SP", "RJ", "AM", "PE", "NY", "FL"]))
    past = draw(
        st.lists(
            st.tuples(
                st.sampled_from([number, *OTHER_PHONES]),
                st.sampled_from(list(Channel)),
                st.integers(1, 14 * 24 * 60),
                st.sampled_from(list(Outcome)),
            ),
            max_size=8,
        )
    )
    history = [Attempt("ACC-1", p, ch, now - timedelta(minutes=m), o) for p, ch, m, o in past]
    return make_contact(number, channel, due=due, region=region), history, now


COMMON = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@COMMON
@given(scenario())
def test_allowed_means_no_reasons_and_not_before_now(policy, case):
    contact, history, now = case
    d = decide(contact, history, now, policy)
    assert d.allowed == (not d.reasons)
    if d.allowed:
        assert d.not_before == now
    elif d.not_before is not None:
        assert d.not_before > now
        assert set(d.reasons) <= TIME_BASED_REASONS


@COMMON
@given(scenario())
def test_a_decision_at_its_own_not_before_is_allowed(policy, case):
    contact, history, now = case
    d = decide(contact, history, now, policy)
    assume(not d.allowed and d.not_before is not None)
    later = decide(contact, history, d.not_before, policy)
    assert later.allowed, (d, later)


@COMMON
@given(scenario(), st.floats(0.0, 1.0, exclude_max=True))
def test_nothing_is_allowed_before_not_before(policy, case, fraction):
    contact, history, now = case
    d = decide(contact, history, now, policy)
    assume(not d.allowed and d.not_before is not None)
    between = now + (d.not_before - now) * fraction
    assume(between < d.not_before)
    assert not decide(contact, history, between, policy).allowed


@COMMON
@given(
    scenario(),
    st.sampled_from(list(Outcome)),
    st.integers(1, 14 * 24 * 60),
    st.sampled_from([None, *OTHER_PHONES]),
)
def test_more_history_never_unblocks(policy, case, outcome, minutes_ago, phone):
    contact, history, now = case
    before = decide(contact, history, now, policy)
    extra = Attempt(
        "ACC-1", phone or contact.phone.number, contact.channel, now - timedelta(minutes=minutes_ago), outcome
    )
    after = decide(contact, [*history, extra], now, policy)
    if not before.allowed:
        assert not after.allowed
        assert set(before.reasons) <= set(after.reasons)
        if before.not_before is None:
            assert after.not_before is None
        elif after.not_before is not None:
            assert after.not_before >= before.not_before


@COMMON
@given(scenario())
def test_voice_is_never_allowed_before_d_plus_ten_in_any_zone(policy, case):
    contact, history, now = case
    d = decide(contact, history, now, policy)
    if d.allowed and contact.channel is Channel.VOICE:
        from zoneinfo import ZoneInfo

        for zone in d.time_zones:
            local: date = now.astimezone(ZoneInfo(zone)).date()
            assert (local - contact.account.due_date).days >= 10
