"""The compliance engine: may we reach this person, on this channel, now?

``decide(contact, history, now, policy) -> Decision`` is pure (no I/O, the clock is
passed in) and every path that contacts a person goes through it, at dispatch time.

Rules, in the order a supervisor reads them (``Reason`` codes in brackets):

- the account is paid or closed [account_closed]; disputed, opted out, wrong number,
  a do-not-call registry entry in effect [suppressed];
- no consent on this channel [no_consent]; a work number the debtor did not give
  [work_number_not_provided];
- in the debtor's local time (every candidate zone): a holiday [holiday], outside the
  calling window of the pack and state [outside_calling_hours], a call before
  D+``min_days_past_due_voice`` [before_min_days_past_due], within
  ``recent_conversation_days`` of a verified conversation (that day is day 1)
  [recent_conversation], attempt caps per phone per local day and per account in 7
  consecutive local days, the US 7-in-7 among them [attempt_cap].

``not_before`` is the earliest instant at which every time-based rule passes in every
candidate zone (``now`` when allowed; ``None`` when only a person can unblock it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import assert_never
from zoneinfo import ZoneInfo

from dialer.domain import (
    AccountStatus,
    Attempt,
    Channel,
    Contact,
    Decision,
    Outcome,
    PhoneType,
    Reason,
)
from dialer.rules import calling_hours
from dialer.rules.calling_hours import WeeklyWindows
from dialer.rules.holiday_calendar import CustomHoliday, HolidayCalendar
from dialer.rules.local_time import locate
from dialer.settings import Settings

#: How far ahead ``not_before`` is searched before a contact is called never-eligible.
HORIZON_DAYS = 400


@dataclass(frozen=True, slots=True)
class Caps:
    voice_per_phone_per_day: int
    voice_per_account_per_7_days: int
    sms_per_phone_per_day: int

    def per_phone_per_day(self, channel: Channel) -> int:
        """Contacts on ``channel`` to one phone in one of its local days."""
        match channel:
            case Channel.VOICE:
                return self.voice_per_phone_per_day
            case Channel.SMS:
                return self.sms_per_phone_per_day
            case _:
                assert_never(channel)

    def per_account_per_7_days(self, channel: Channel) -> int | None:
        """Contacts on ``channel`` to one account in 7 days (None: no such cap)."""
        match channel:
            case Channel.VOICE:
                return self.voice_per_account_per_7_days
            case Channel.SMS:
                return None
            case _:
                assert_never(channel)


@dataclass(frozen=True, slots=True)
class PackPolicy:
    """One rule pack (a country), compiled for fast decisions."""

    country: str
    hours: Mapping[tuple[str | None, Channel], WeeklyWindows]  # effective: config ∩ law
    calendar: HolidayCalendar
    caps: Caps
    count_unconnected: bool
    recent_conversation_days: int

    def windows(self, state: str | None, channel: Channel) -> WeeklyWindows:
        found = self.hours.get((state, channel))
        if found is None:
            found = self.hours[(None, channel)]
        return found


@dataclass(frozen=True, slots=True)
class Policy:
    packs: Mapping[str, PackPolicy]
    min_days_past_due_voice: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        """Compile validated settings; each window is intersected with the legal floor."""
        packs: dict[str, PackPolicy] = {}
        for country, pack in settings.packs.items():
            states: set[str | None] = {None}
            states.update(s for s in pack.hours if s != "default")
            states.update(s for (c, s) in calling_hours.LEGAL_HOURS if c == country)
            hours: dict[tuple[str | None, Channel], WeeklyWindows] = {}
            for state in states:
                # the company's default narrows every state; a state entry narrows further
                default = pack.hours["default"]
                specific = pack.hours.get(state) if state else None
                law = calling_hours.legal_hours(country, state)
                for channel in Channel:
                    windows = calling_hours.intersect(
                        default.for_channel(channel).windows(), law.for_channel(channel)
                    )
                    if specific is not None:
                        windows = calling_hours.intersect(windows, specific.for_channel(channel).windows())
                    hours[(state, channel)] = windows
            custom = tuple(_custom_holiday(h.date, h.name, h.regions) for h in pack.custom_holidays)
            packs[country] = PackPolicy(
                country=country,
                hours=hours,
                calendar=HolidayCalendar(country, pack.observe_holidays, custom),
                caps=Caps(**pack.caps.model_dump()),
                count_unconnected=pack.count_unconnected_attempts,
                recent_conversation_days=pack.recent_conversation_days,
            )
        return cls(packs=packs, min_days_past_due_voice=settings.policy.min_days_past_due_voice)

    def warm(self, years: Iterable[int]) -> None:
        """Load every pack's holiday calendars for ``years`` (at a worker's start)."""
        years = tuple(years)
        for pack in self.packs.values():
            pack.calendar.warm(years)


def _custom_holiday(text: str, name: str, regions: Iterable[str]) -> CustomHoliday:
    if len(text) == 5:
        return CustomHoliday(int(text[:2]), int(text[3:]), name, None, frozenset(regions))
    d = date.fromisoformat(text)
    return CustomHoliday(d.month, d.day, name, d.year, frozenset(regions))


# ----------------------------------------------------------------------- decide


def decide(contact: Contact, history: Sequence[Attempt], now: datetime, policy: Policy) -> Decision:
    """Rule on one contact (account + phone + channel) at ``now`` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    account, phone, channel = contact.account, contact.phone, contact.channel
    loc = locate(phone.number, account.region, account.timezone)
    pack = policy.packs[loc.country]
    reasons: list[Reason] = []
    permanent = False

    if account.status in (AccountStatus.PAID, AccountStatus.CLOSED):
        reasons.append(Reason.ACCOUNT_CLOSED)
        permanent = True
    suppressed_from: datetime | None = None
    if account.status is AccountStatus.DISPUTED:
        reasons.append(Reason.SUPPRESSED)
        permanent = True
    else:
        for s in contact.suppressions:
            if s.number == phone.number and (s.channel is None or s.channel is channel):
                if s.effective_from is None or now >= s.effective_from:
                    reasons.append(Reason.SUPPRESSED)
                    permanent = True
                    break
                if suppressed_from is None or s.effective_from < suppressed_from:
                    suppressed_from = s.effective_from
    if not phone.consent.allows(channel):
        reasons.append(Reason.NO_CONSENT)
        permanent = True
    if phone.phone_type is PhoneType.WORK and not phone.provided_by_debtor:
        reasons.append(Reason.WORK_NUMBER_NOT_PROVIDED)
        permanent = True

    rules = [_ZoneRules(tz, loc.region, pack, policy, contact, history) for tz in loc.tzinfos]
    for rule in rules:
        rule.add_reasons_at(now, reasons)

    if not reasons:
        not_before: datetime | None = now
    elif permanent:
        not_before = None
    else:
        not_before = _earliest_common(now, rules)
        if not_before is not None and suppressed_from is not None and not_before >= suppressed_from:
            not_before = None
    if not_before is not None and not_before is not now:
        not_before = not_before.astimezone(loc.tzinfos[0])
    return Decision(
        allowed=not reasons,
        channel=channel,
        reasons=tuple(reasons),
        not_before=not_before,
        time_zones=loc.zones,
        pack=loc.country,
        region=loc.region,
    )


def allowed_until(contact: Contact, now: datetime, policy: Policy) -> datetime:
    """For a contact ``decide()`` allows at ``now``: the instant the time rules stop allowing
    it — its window's close or the end of the debtor's local day (caps and holidays are per
    day), the earliest over every candidate zone. A call that waited for a trunk past this
    instant is not placed; the worker decides again."""
    account = contact.account
    loc = locate(contact.phone.number, account.region, account.timezone)
    windows = policy.packs[loc.country].windows(loc.region, contact.channel)
    ends: list[datetime] = []
    for tz in loc.tzinfos:
        local = now.astimezone(tz)
        ends.append(calling_hours.open_until(local, windows) or now)
        ends.append(calling_hours.at_local(local.date() + timedelta(days=1), 0, tz))
    return min(ends)


def _earliest_common(now: datetime, rules: Sequence[_ZoneRules]) -> datetime | None:
    """The first instant >= now at which every zone's time rules pass (fixpoint)."""
    if len(rules) == 1:
        return rules[0].earliest(now)
    t = now
    for _ in range(64):
        candidates = []
        for rule in rules:
            found = rule.earliest(t)
            if found is None:
                return None
            candidates.append(found)
        latest = max(candidates)
        if latest == t:
            return t
        t = latest
    return None


class _ZoneRules:
    """The time-based rules of one contact in one candidate zone (built per decision)."""

    __slots__ = ("calendar", "capped_days", "min_day", "quiet_until", "region", "tz", "windows")

    def __init__(
        self,
        tz: ZoneInfo,
        region: str | None,
        pack: PackPolicy,
        policy: Policy,
        contact: Contact,
        history: Sequence[Attempt],
    ) -> None:
        channel = contact.channel
        self.tz = tz
        self.region = region
        self.windows = pack.windows(region, channel)
        self.calendar = pack.calendar
        self.min_day: date | None = None
        self.quiet_until: date | None = None
        self.capped_days: frozenset[date] = _NO_DAYS
        call = channel.is_call
        if call and policy.min_days_past_due_voice > 0:
            self.min_day = contact.account.due_date + timedelta(days=policy.min_days_past_due_voice)
        if not history or contact.requested:
            return
        number = contact.phone.number
        account_id = contact.account.account_id
        count_all = pack.count_unconnected
        phone_days: dict[date, int] = {}
        account_days: dict[date, int] = {}
        last_conversation: date | None = None
        for a in history:
            if a.account_id != account_id or a.channel is not channel or a.outcome is Outcome.SKIPPED:
                continue
            day = a.at.astimezone(tz).date()
            if count_all or a.outcome.connected:
                account_days[day] = account_days.get(day, 0) + 1
                if a.phone == number:
                    phone_days[day] = phone_days.get(day, 0) + 1
            if a.outcome is Outcome.ANSWERED_VERIFIED and (
                last_conversation is None or day > last_conversation
            ):
                last_conversation = day
        caps = pack.caps
        if call and last_conversation is not None and pack.recent_conversation_days > 0:
            self.quiet_until = last_conversation + timedelta(days=pack.recent_conversation_days - 1)
        self.capped_days = _capped_days(
            phone_days, caps.per_phone_per_day(channel), account_days, caps.per_account_per_7_days(channel)
        )

    def add_reasons_at(self, now: datetime, out: list[Reason]) -> None:
        """Append (once each) the reasons that block at ``now`` in this zone."""
        local = now.astimezone(self.tz)
        day = local.date()
        found: list[Reason] = []
        holiday = self.calendar.is_holiday(day, self.region)
        if holiday:
            found.append(Reason.HOLIDAY)
        if self.min_day is not None and day < self.min_day:
            found.append(Reason.BEFORE_MIN_DAYS_PAST_DUE)
        if self.quiet_until is not None and day <= self.quiet_until:
            found.append(Reason.RECENT_CONVERSATION)
        if day in self.capped_days:
            found.append(Reason.ATTEMPT_CAP)
        if not holiday and not calling_hours.is_open(local, self.windows):
            found.append(Reason.OUTSIDE_CALLING_HOURS)
        for reason in found:
            if reason not in out:
                out.append(reason)

    def _closed(self, day: date) -> bool:
        return (
            (self.min_day is not None and day < self.min_day)
            or (self.quiet_until is not None and day <= self.quiet_until)
            or day in self.capped_days
            or self.calendar.is_holiday(day, self.region)
        )

    def earliest(self, t: datetime) -> datetime | None:
        """The first instant >= t at which this zone's rules pass."""
        day = t.astimezone(self.tz).date()
        first = day
        # jump over whole blocks of closed days the rules make obvious
        if self.min_day is not None and day < self.min_day:
            day = self.min_day
        if self.quiet_until is not None and day <= self.quiet_until:
            day = self.quiet_until + timedelta(days=1)
        for _ in range(HORIZON_DAYS):
            if not self._closed(day):
                found = calling_hours.next_open_on(day, self.windows, self.tz, t if day == first else None)
                if found is not None:
                    return found
            day += timedelta(days=1)
        return None


_NO_DAYS: frozenset[date] = frozenset()


def _capped_days(
    phone_days: dict[date, int], cap_phone: int, account_days: dict[date, int], cap_account: int | None
) -> frozenset[date]:
    """Local dates on which a cap is already reached: per phone that day, or per account in
    the 7 consecutive days ending that day (a sliding window)."""
    capped = {day for day, n in phone_days.items() if n >= cap_phone}
    if cap_account is not None and sum(account_days.values()) >= cap_account:
        in_window: dict[int, int] = {}  # ordinal of a day -> attempts in the 7 days ending it
        for day, n in account_days.items():
            first = day.toordinal()
            for o in range(first, first + 7):
                in_window[o] = in_window.get(o, 0) + n
        capped.update(date.fromordinal(o) for o, n in in_window.items() if n >= cap_account)
    return frozenset(capped)
