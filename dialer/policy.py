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
from zoneinfo import ZoneInfo

from dialer import calling_hours
from dialer.calling_hours import WeeklyWindows
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
from dialer.holiday_calendar import CustomHoliday, HolidayCalendar
from dialer.local_time import Location, locate

#: How far ahead ``not_before`` is searched before a contact is called never-eligible.
HORIZON_DAYS = 400


@dataclass(frozen=True, slots=True)
class Caps:
    voice_per_phone_per_day: int
    voice_per_account_per_7_days: int
    sms_per_phone_per_day: int


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
    def from_settings(cls, settings: object) -> Policy:
        """Compile validated settings; each window is intersected with the legal floor."""
        from dialer.settings import Settings

        assert isinstance(settings, Settings)
        packs: dict[str, PackPolicy] = {}
        for country, pack in settings.packs.items():
            states: set[str | None] = {None}
            states.update(s for s in pack.hours if s != "default")
            states.update(s for (c, s) in calling_hours.LEGAL_HOURS if c == country)
            hours: dict[tuple[str | None, Channel], WeeklyWindows] = {}
            for state in states:
                configured = pack.hours.get(state or "default") or pack.hours["default"]
                law = calling_hours.legal_hours(country, state)
                for channel in Channel:
                    hours[(state, channel)] = calling_hours.intersect(
                        configured.for_channel(channel.value).windows(),
                        law.for_channel(channel),
                    )
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


def _custom_holiday(text: str, name: str, regions: Iterable[str]) -> CustomHoliday:
    if len(text) == 5:
        return CustomHoliday(int(text[:2]), int(text[3:]), name, None, frozenset(regions))
    d = date.fromisoformat(text)
    return CustomHoliday(d.month, d.day, name, d.year, frozenset(regions))


# ----------------------------------------------------------------------- decide


def decide(
    contact: Contact, history: Sequence[Attempt], now: datetime, policy: Policy
) -> Decision:
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

    rules = [
        _ZoneRules.build(tz, name, loc, pack, policy, contact, history)
        for tz, name in zip(loc.tzinfos, loc.zones, strict=True)
    ]
    for rule in rules:
        for reason in rule.reasons_at(now):
            if reason not in reasons:
                reasons.append(reason)

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


def _earliest_common(now: datetime, rules: Sequence[_ZoneRules]) -> datetime | None:
    """The first instant >= now at which every zone's time rules pass (fixpoint)."""
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


@dataclass(slots=True)
class _ZoneRules:
    """The time-based rules of one contact in one candidate zone."""

    tz: ZoneInfo
    windows: WeeklyWindows
    calendar: HolidayCalendar
    region: str | None
    min_day: date | None  # first local date a call may happen (D+N)
    quiet_until: date | None  # last local date of the post-conversation quiet period
    phone_days: dict[date, int]  # counted attempts on this phone per local date
    account_days: dict[date, int]  # counted attempts on the account per local date
    cap_phone_day: int
    cap_account_7d: int | None

    @classmethod
    def build(
        cls,
        tz: ZoneInfo,
        zone_name: str,
        loc: Location,
        pack: PackPolicy,
        policy: Policy,
        contact: Contact,
        history: Sequence[Attempt],
    ) -> _ZoneRules:
        channel = contact.channel
        number = contact.phone.number
        account_id = contact.account.account_id
        min_day = None
        quiet_until = None
        phone_days: dict[date, int] = {}
        account_days: dict[date, int] = {}
        last_conversation: date | None = None
        for a in history:
            if a.account_id != account_id or a.channel is not channel:
                continue
            counted = pack.count_unconnected or a.outcome.connected
            day = a.at.astimezone(tz).date()
            if counted:
                account_days[day] = account_days.get(day, 0) + 1
                if a.phone == number:
                    phone_days[day] = phone_days.get(day, 0) + 1
            if a.outcome is Outcome.ANSWERED_VERIFIED and (
                last_conversation is None or day > last_conversation
            ):
                last_conversation = day
        if channel is Channel.VOICE:
            if policy.min_days_past_due_voice > 0:
                min_day = contact.account.due_date + timedelta(days=policy.min_days_past_due_voice)
            if last_conversation is not None and pack.recent_conversation_days > 0:
                quiet_until = last_conversation + timedelta(days=pack.recent_conversation_days - 1)
            cap_phone = pack.caps.voice_per_phone_per_day
            cap_account: int | None = pack.caps.voice_per_account_per_7_days
        else:
            cap_phone = pack.caps.sms_per_phone_per_day
            cap_account = None
        return cls(
            tz=tz,
            windows=pack.windows(loc.region, channel),
            calendar=pack.calendar,
            region=loc.region,
            min_day=min_day,
            quiet_until=quiet_until,
            phone_days=phone_days,
            account_days=account_days,
            cap_phone_day=cap_phone,
            cap_account_7d=cap_account,
        )

    def _account_week(self, day: date) -> int:
        if not self.account_days:
            return 0
        return sum(self.account_days.get(day - timedelta(days=i), 0) for i in range(7))

    def day_reasons(self, day: date) -> list[Reason]:
        """Every rule that holds the whole local ``day`` closed."""
        out: list[Reason] = []
        if self.calendar.is_holiday(day, self.region):
            out.append(Reason.HOLIDAY)
        if self.min_day is not None and day < self.min_day:
            out.append(Reason.BEFORE_MIN_DAYS_PAST_DUE)
        if self.quiet_until is not None and day <= self.quiet_until:
            out.append(Reason.RECENT_CONVERSATION)
        if self.phone_days.get(day, 0) >= self.cap_phone_day or (
            self.cap_account_7d is not None and self._account_week(day) >= self.cap_account_7d
        ):
            out.append(Reason.ATTEMPT_CAP)
        return out

    def reasons_at(self, now: datetime) -> list[Reason]:
        local = now.astimezone(self.tz)
        out = self.day_reasons(local.date())
        if Reason.HOLIDAY not in out and not calling_hours.is_open(local, self.windows):
            out.append(Reason.OUTSIDE_CALLING_HOURS)
        return out

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
            if not self.day_reasons(day):
                found = calling_hours.next_open_on(
                    day, self.windows, self.tz, t if day == first else None
                )
                if found is not None:
                    return found
            day += timedelta(days=1)
        return None
