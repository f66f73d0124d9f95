"""Callback windows: the hour ranges a verified debtor may pick for an agent's call back.

``callback_windows(location, policy)`` returns the windows to offer, in the debtor's local
time (their primary zone, ``location.zones[0]``), out of ``CANDIDATES`` (09–12, 12–15,
15–18, 18–20). A window is offered only for the hours the pack's and the state's voice
windows (``PackPolicy.windows(region, Channel.VOICE)``: the company's configuration
intersected with the law) allow on *every* working day (Monday to Friday), in *every*
candidate zone of the number, so whichever working day the agent calls on, any instant of
the window is a lawful start. Holidays close whole days, never shorten one: they move the
call to another day, not the window.

A candidate that runs past the allowed hours is cut to them (Rio's law ends calls at
19:00: 18:00–20:00 becomes 18:00–19:00) and dropped when less than ``MIN_WINDOW_S`` is
left (Ceará ends at 18:00: nothing after 18:00 is offered). An empty result means no
window can be promised: the IVR then tells the debtor an agent will call within the
hours the law allows.

Several candidate zones (DDD 97: Manaus and Eirunepé; DDD 81: Recife and Noronha; a US
area code across a zone line): the other zones' hours are moved onto the primary zone's
clock at their offsets in January and in July, so a window suits every zone under
standard and daylight time alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dialer.domain import Channel, Interval
from dialer.rules.calling_hours import intersect_day
from dialer.rules.local_time import Location
from dialer.rules.policy import Policy

HOUR = 3600
DAY = 24 * HOUR
#: The windows a debtor may be offered, before the law and the configuration cut them.
CANDIDATES: tuple[Interval, ...] = (
    (9 * HOUR, 12 * HOUR),
    (12 * HOUR, 15 * HOUR),
    (15 * HOUR, 18 * HOUR),
    (18 * HOUR, 20 * HOUR),
)
#: A window cut shorter than this is not offered.
MIN_WINDOW_S = HOUR
#: Keys 1..9 pick a window: never more than nine.
MAX_WINDOWS = 9
WORKING_DAYS = range(5)  # Monday to Friday
# instants at which zone offsets are compared: both halves of the year (daylight saving)
_REFERENCE_INSTANTS = (datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class CallbackWindow:
    """An hour range in the debtor's local time: seconds after local midnight, and the zone."""

    start: int
    end: int
    timezone: str

    @property
    def label(self) -> str:
        """``"09:00-12:00"``: how the window is recorded (never a word such as "morning")."""
        return f"{_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(secs: int) -> str:
    return f"{secs // HOUR:02d}:{secs % HOUR // 60:02d}"


def parse_label(label: str) -> Interval:
    """``"09:00-12:00"`` -> ``(32400, 43200)``; raises ValueError on anything else."""
    start, sep, end = label.partition("-")
    if not sep:
        raise ValueError(f"{label!r} is not an hour range HH:MM-HH:MM")
    return _secs(start), _secs(end)


def _secs(text: str) -> int:
    hours, sep, minutes = text.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit() or len(minutes) != 2:
        raise ValueError(f"{text!r} is not a time HH:MM")
    value = int(hours) * HOUR + int(minutes) * 60
    if not 0 <= value <= DAY or int(minutes) >= 60:
        raise ValueError(f"{text!r} is not a time of day")
    return value


def callback_windows(
    location: Location, policy: Policy, candidates: tuple[Interval, ...] = CANDIDATES
) -> tuple[CallbackWindow, ...]:
    """The windows to offer a debtor at ``location`` (empty: none can be promised)."""
    pack = policy.packs.get(location.country)
    if pack is None or not location.zones:
        return ()
    weekly = pack.windows(location.region, Channel.VOICE)
    primary = location.tzinfos[0]
    allowed: tuple[Interval, ...] = ((0, DAY),)
    for weekday in WORKING_DAYS:
        day = _merge(weekly[weekday])
        for tz in location.tzinfos:
            for instant in _REFERENCE_INSTANTS:
                allowed = intersect_day(
                    allowed, _shift(day, _offset(primary, instant) - _offset(tz, instant))
                )
    allowed = _merge(allowed)
    zone = location.zones[0]
    offered: list[CallbackWindow] = []
    for start, end in candidates:
        for s, e in intersect_day(((start, end),), allowed):
            if e - s >= MIN_WINDOW_S:
                offered.append(CallbackWindow(s, e, zone))
    return tuple(offered[:MAX_WINDOWS])


def _offset(tz: ZoneInfo, instant: datetime) -> int:
    return int((instant.astimezone(tz).utcoffset() or timedelta()).total_seconds())


def _shift(day: tuple[Interval, ...], by: int) -> tuple[Interval, ...]:
    """A zone's intervals on the primary zone's clock (``by``: how far ahead the primary is),
    kept within the day: a window never runs past midnight."""
    out = []
    for start, end in day:
        s, e = max(0, start + by), min(DAY, end + by)
        if s < e:
            out.append((s, e))
    return tuple(out)


def _merge(day: tuple[Interval, ...]) -> tuple[Interval, ...]:
    """Sorted intervals with touching ones joined (08–12 and 12–20 are one 08–20)."""
    out: list[Interval] = []
    for start, end in sorted(day):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)
