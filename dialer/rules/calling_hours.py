"""Calling hours: when a debtor may be called or texted, in their local time.

This one file holds the rule: the legal tables (``LEGAL_HOURS``, with sources), the
weekly-window type, and the two questions the policy asks — *is it open at this local
instant?* and *when does it next open?*. Holidays live in ``holiday_calendar``; the
company's own (stricter) hours come from ``config/dialer.toml`` and are intersected
with the legal floor here, so a configuration can narrow the law but never widen it.

A start is allowed at or after the opening time and strictly before the closing time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import assert_never

from dialer.domain import CLOSED, DAY_KEYS, Channel, Interval, WeeklyWindows, format_day, parse_day, weekly

# the weekly-window value and its text form ("08:00-20:00") live with the domain types
__all__ = ["CLOSED", "DAY_KEYS", "Interval", "WeeklyWindows", "format_day", "parse_day", "weekly"]


@dataclass(frozen=True, slots=True)
class LegalHours:
    voice: WeeklyWindows
    sms: WeeklyWindows
    source: str

    def for_channel(self, channel: Channel) -> WeeklyWindows:
        match channel:
            case Channel.VOICE:
                return self.voice
            case Channel.SMS:  # CE and AL name text messages; the rest follow calls
                return self.sms
            case _:
                assert_never(channel)


def _same(windows: WeeklyWindows, source: str) -> LegalHours:
    return LegalHours(voice=windows, sms=windows, source=source)


_BR_DEFAULT = weekly(weekdays="08:00-20:00", sat="08:00-14:00")

#: The legal floor, by (pack, state). ``None`` is the pack's default for every other state.
#: See ../shared/compliance.md for the sources and our confidence in each.
LEGAL_HOURS: Mapping[tuple[str, str | None], LegalHours] = {
    ("BR", None): _same(_BR_DEFAULT, "strictest common reading of state laws, modelled on SP"),
    ("BR", "SP"): _same(_BR_DEFAULT, "Lei SP 15.426/2014"),
    ("BR", "AL"): _same(_BR_DEFAULT, "Lei AL 7.782/2016 (text messages included)"),
    ("BR", "RJ"): _same(weekly(weekdays="09:00-19:00"), "Lei RJ 7.868/2018 art. 3 §4"),
    ("BR", "CE"): _same(weekly(weekdays="08:00-18:00"), "Lei CE 16.836/2019 (SMS included)"),
    ("BR", "ES"): _same(weekly(weekdays="08:00-19:00"), "Lei ES 10.626/2017 (unconfirmed: Saturdays off)"),
    ("BR", "PR"): _same(weekly(weekdays="08:00-18:00", sat="08:00-13:00"), "unconfirmed"),
    ("BR", "AM"): _same(
        weekly(weekdays="08:00-18:00", sat="08:00-14:00"), "unconfirmed: the stricter of conflicting reports"
    ),
    ("US", None): _same(
        weekly(weekdays="08:00-21:00", sat="08:00-21:00", sun="08:00-21:00"),
        "FDCPA §805(a)(1); Reg F 12 CFR 1006.6(b)(1)(i)",
    ),
}


def legal_hours(country: str, state: str | None) -> LegalHours:
    return LEGAL_HOURS.get((country, state)) or LEGAL_HOURS[(country, None)]


def intersect_day(a: tuple[Interval, ...], b: tuple[Interval, ...]) -> tuple[Interval, ...]:
    out: list[Interval] = []
    for s1, e1 in a:
        for s2, e2 in b:
            s, e = max(s1, s2), min(e1, e2)
            if s < e:
                out.append((s, e))
    return tuple(sorted(out))


def intersect(a: WeeklyWindows, b: WeeklyWindows) -> WeeklyWindows:
    return tuple(intersect_day(x, y) for x, y in zip(a, b, strict=True))


def looser_days(candidate: WeeklyWindows, floor: WeeklyWindows) -> list[str]:
    """Days on which ``candidate`` opens where ``floor`` is closed (empty: it is within the law)."""
    bad = []
    for key, cand, lim in zip(DAY_KEYS, candidate, floor, strict=True):
        if intersect_day(cand, lim) != cand:
            bad.append(f"{key} {format_day(cand)} (the law allows {format_day(lim)})")
    return bad


def seconds_of_day(local: datetime) -> float:
    return local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6


def is_open(local: datetime, windows: WeeklyWindows) -> bool:
    """Whether a contact may *start* at this local wall-clock instant."""
    secs = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    for start, end in windows[local.weekday()]:
        if start <= secs < end:
            return True
    return False


def at_local(day: date, secs: int, tz: tzinfo) -> datetime:
    """The aware instant of ``secs`` after local midnight on ``day`` in ``tz``."""
    if secs >= 86400:
        return datetime.combine(day + timedelta(days=1), time(0), tz)
    return datetime.combine(day, time(secs // 3600, secs % 3600 // 60, secs % 60), tz)


def next_open_on(day: date, windows: WeeklyWindows, tz: tzinfo, after: datetime | None) -> datetime | None:
    """The first opening on ``day`` at or after ``after`` (any time of day if None)."""
    after_secs = seconds_of_day(after.astimezone(tz)) if after is not None else -1.0
    for start, end in windows[day.weekday()]:
        if after is None or after_secs < end:
            if after is not None and after_secs >= start:
                return after
            return at_local(day, start, tz)
    return None


def open_until(local: datetime, windows: WeeklyWindows) -> datetime | None:
    """The end of the window open at ``local`` (aware, in the debtor's zone); None if closed."""
    secs = seconds_of_day(local)
    for start, end in windows[local.weekday()]:
        if start <= secs < end:
            return at_local(local.date(), end, local.tzinfo or UTC)
    return None
