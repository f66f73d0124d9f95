"""Holidays: national and state (from the ``holidays`` library) plus company dates.

Brazil: no calls or SMS on national holidays (20 November, Consciência Negra, is
national since 2024), on the debtor's state holidays, and on dates the company adds
(municipal holidays, which the library does not know). The US pack observes
holidays only if the company turns it on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import holidays


@dataclass(frozen=True, slots=True)
class CustomHoliday:
    """A company-defined date. ``year`` None: every year. ``regions`` empty: everywhere."""

    month: int
    day: int
    name: str
    year: int | None = None
    regions: frozenset[str] = frozenset()

    def matches(self, day: date, region: str | None) -> bool:
        if (day.month, day.day) != (self.month, self.day):
            return False
        if self.year is not None and day.year != self.year:
            return False
        return not self.regions or (region is not None and region in self.regions)


@lru_cache(maxsize=512)
def _official(country: str, region: str | None, year: int) -> frozenset[date]:
    subdivisions = holidays.country_holidays(country).subdivisions
    subdiv = region if region in subdivisions else None
    return frozenset(holidays.country_holidays(country, subdiv=subdiv, years=year).keys())


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    country: str
    observe_official: bool = True
    custom: tuple[CustomHoliday, ...] = ()
    _cache: dict[tuple[str | None, int], frozenset[date]] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    def days(self, region: str | None, year: int) -> frozenset[date]:
        """Every holiday of ``year`` for ``region`` (official ones if observed, plus custom)."""
        key = (region, year)
        found = self._cache.get(key)
        if found is None:
            days = set(_official(self.country, region, year)) if self.observe_official else set()
            for c in self.custom:
                if (c.year in (None, year)) and (not c.regions or region in c.regions):
                    try:
                        days.add(date(year, c.month, c.day))
                    except ValueError:  # 29 February in a common year
                        pass
            found = self._cache[key] = frozenset(days)
        return found

    def warm(self, years: Iterable[int]) -> None:
        """Compute every region's holidays for ``years`` now (a service does it at start-up, so
        the first batches of the day are not slowed by the ``holidays`` library)."""
        regions: list[str | None] = [None]
        if self.observe_official:
            regions += list(holidays.country_holidays(self.country).subdivisions)
        for year in years:
            for region in regions:
                self.days(region, year)

    def is_holiday(self, day: date, region: str | None) -> bool:
        return day in self.days(region, day.year)

    def name(self, day: date, region: str | None) -> str | None:
        for c in self.custom:
            if c.matches(day, region):
                return c.name
        if self.observe_official:
            subdivisions = holidays.country_holidays(self.country).subdivisions
            subdiv = region if region in subdivisions else None
            found = holidays.country_holidays(self.country, subdiv=subdiv, years=day.year).get(day)
            return str(found) if found else None
        return None
