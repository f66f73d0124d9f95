"""The debtor's location: rule pack (country), state, and candidate time zones.

Where a person may be is derived from the phone number's area code and narrowed by
what the account says (an IANA time zone, or a region: a Brazilian UF or a US state).
When a number can be in more than one zone, every candidate zone is returned and the
policy allows a contact only when it is allowed in all of them.

Brazil: our own table by DDD (``BR_DDD``), checked against real geography. The
``phonenumbers`` library gets five DDDs wrong (see ``tests/test_local_time.py``): it
puts all of DDD 81 on Fernando de Noronha (UTC−2) although the mainland of Pernambuco
is UTC−3; all of DDD 97 in Manaus (UTC−4) although south-west Amazonas (Eirunepé,
Envira, …) is UTC−5; and some prefixes of Pará's 91, 93 and 94 in UTC−4 although the
whole state is UTC−3.

United States: ``phonenumbers`` time-zone data, widened to the union of the zones of
every prefix under the area code (mobile numbers are ported freely inside an area
code, so a 7-digit prefix says little), plus our corrections in ``US_NPA_EXTRA``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from dialer.errors import UnsupportedNumber

# DDD -> (UF, IANA zones). No daylight saving in Brazil since 2019.
BR_DDD: dict[str, tuple[str, tuple[str, ...]]] = {
    **{d: ("SP", ("America/Sao_Paulo",)) for d in ("11", "12", "13", "14", "15", "16", "17", "18", "19")},
    **{d: ("RJ", ("America/Sao_Paulo",)) for d in ("21", "22", "24")},
    **{d: ("ES", ("America/Sao_Paulo",)) for d in ("27", "28")},
    **{d: ("MG", ("America/Sao_Paulo",)) for d in ("31", "32", "33", "34", "35", "37", "38")},
    **{d: ("PR", ("America/Sao_Paulo",)) for d in ("41", "42", "43", "44", "45", "46")},
    **{d: ("SC", ("America/Sao_Paulo",)) for d in ("47", "48", "49")},
    **{d: ("RS", ("America/Sao_Paulo",)) for d in ("51", "53", "54", "55")},
    "61": ("DF", ("America/Sao_Paulo",)),
    "62": ("GO", ("America/Sao_Paulo",)),
    "64": ("GO", ("America/Sao_Paulo",)),
    "63": ("TO", ("America/Araguaina",)),
    "65": ("MT", ("America/Cuiaba",)),  # UTC-4
    "66": ("MT", ("America/Cuiaba",)),  # UTC-4
    "67": ("MS", ("America/Campo_Grande",)),  # UTC-4
    "68": ("AC", ("America/Rio_Branco",)),  # UTC-5
    "69": ("RO", ("America/Porto_Velho",)),  # UTC-4
    **{d: ("BA", ("America/Bahia",)) for d in ("71", "73", "74", "75", "77")},
    "79": ("SE", ("America/Maceio",)),
    # DDD 81: mainland Pernambuco (UTC-3) *and* Fernando de Noronha (UTC-2).
    "81": ("PE", ("America/Recife", "America/Noronha")),
    "87": ("PE", ("America/Recife",)),
    "82": ("AL", ("America/Maceio",)),
    "83": ("PB", ("America/Fortaleza",)),
    "84": ("RN", ("America/Fortaleza",)),
    "85": ("CE", ("America/Fortaleza",)),
    "88": ("CE", ("America/Fortaleza",)),
    "86": ("PI", ("America/Fortaleza",)),
    "89": ("PI", ("America/Fortaleza",)),
    "91": ("PA", ("America/Belem",)),
    "93": ("PA", ("America/Santarem",)),
    "94": ("PA", ("America/Belem",)),
    "92": ("AM", ("America/Manaus",)),  # UTC-4
    # DDD 97: most of Amazonas (UTC-4) *and* its south-west (Eirunepé, UTC-5).
    "97": ("AM", ("America/Manaus", "America/Eirunepe")),
    "95": ("RR", ("America/Boa_Vista",)),  # UTC-4
    "96": ("AP", ("America/Belem",)),
    "98": ("MA", ("America/Fortaleza",)),
    "99": ("MA", ("America/Fortaleza",)),
}

BR_UF_ZONES: dict[str, tuple[str, ...]] = {}
for _uf, _zones in BR_DDD.values():
    BR_UF_ZONES[_uf] = tuple(dict.fromkeys(BR_UF_ZONES.get(_uf, ()) + _zones))

US_STATE_ZONES: dict[str, tuple[str, ...]] = {
    "AL": ("America/Chicago",),
    "AK": (
        "America/Anchorage",
        "America/Juneau",
        "America/Sitka",
        "America/Yakutat",
        "America/Nome",
        "America/Metlakatla",
        "America/Adak",
    ),
    "AZ": ("America/Phoenix",),
    "AR": ("America/Chicago",),
    "CA": ("America/Los_Angeles",),
    "CO": ("America/Denver",),
    "CT": ("America/New_York",),
    "DE": ("America/New_York",),
    "DC": ("America/New_York",),
    "FL": ("America/New_York", "America/Chicago"),
    "GA": ("America/New_York",),
    "HI": ("Pacific/Honolulu",),
    "ID": ("America/Boise", "America/Los_Angeles"),
    "IL": ("America/Chicago",),
    "IN": ("America/Indiana/Indianapolis", "America/Chicago"),
    "IA": ("America/Chicago",),
    "KS": ("America/Chicago", "America/Denver"),
    "KY": ("America/New_York", "America/Chicago"),
    "LA": ("America/Chicago",),
    "ME": ("America/New_York",),
    "MD": ("America/New_York",),
    "MA": ("America/New_York",),
    "MI": ("America/Detroit", "America/Menominee"),
    "MN": ("America/Chicago",),
    "MS": ("America/Chicago",),
    "MO": ("America/Chicago",),
    "MT": ("America/Denver",),
    "NE": ("America/Chicago", "America/Denver"),
    "NV": ("America/Los_Angeles", "America/Denver"),
    "NH": ("America/New_York",),
    "NJ": ("America/New_York",),
    "NM": ("America/Denver",),
    "NY": ("America/New_York",),
    "NC": ("America/New_York",),
    "ND": ("America/Chicago", "America/Denver"),
    "OH": ("America/New_York",),
    "OK": ("America/Chicago",),
    "OR": ("America/Los_Angeles", "America/Boise"),
    "PA": ("America/New_York",),
    "RI": ("America/New_York",),
    "SC": ("America/New_York",),
    "SD": ("America/Chicago", "America/Denver"),
    "TN": ("America/Chicago", "America/New_York"),
    "TX": ("America/Chicago", "America/Denver"),
    "UT": ("America/Denver",),
    "VT": ("America/New_York",),
    "VA": ("America/New_York",),
    "WA": ("America/Los_Angeles",),
    "WV": ("America/New_York",),
    "WI": ("America/Chicago",),
    "WY": ("America/Denver",),
    "PR": ("America/Puerto_Rico",),
    "VI": ("America/St_Thomas",),
    "GU": ("Pacific/Guam",),
}

# Area codes that cross a time-zone line where the library names only one side.
US_NPA_EXTRA: dict[str, tuple[str, ...]] = {
    "850": ("America/Chicago",),  # Florida panhandle: Pensacola is Central, Tallahassee Eastern
    "812": ("America/Chicago",),  # south-west Indiana (Evansville) is Central
    "270": ("America/New_York",),  # western Kentucky is Central, parts of it Eastern
    "423": ("America/New_York", "America/Chicago"),  # east Tennessee / Chattanooga area
    "915": ("America/Denver",),  # El Paso, Texas, is Mountain
    "906": ("America/Chicago",),  # Michigan's Upper Peninsula: four counties are Central
    "308": ("America/Denver",),  # western Nebraska
    "605": ("America/Denver",),  # western South Dakota
    "701": ("America/Denver",),  # south-west North Dakota
    "785": ("America/Denver",),  # north-west Kansas
    "208": ("America/Los_Angeles",),  # northern Idaho is Pacific
    "541": ("America/Boise",),  # eastern Oregon (Malheur county) is Mountain
}

#: Zones of the fifty states plus DC: the candidates when nothing narrows a US number.
US_ALL_ZONES: tuple[str, ...] = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)

_VALID_ZONES = frozenset(available_timezones())


@dataclass(frozen=True, slots=True)
class Location:
    """Where a debtor may be: the rule pack, the state, and every candidate zone."""

    country: str  # "BR" or "US": picks the rule pack
    region: str | None  # UF or US state (None when unknown)
    zones: tuple[str, ...]  # IANA names, the primary one first
    tzinfos: tuple[ZoneInfo, ...]


def is_valid_zone(name: str) -> bool:
    return name in _VALID_ZONES


def split_region(region: str | None) -> tuple[str | None, str | None]:
    """``"BR-SP"`` -> ``("BR", "SP")``; ``"sp"`` -> ``(None, "SP")``."""
    if not region:
        return None, None
    text = region.strip().upper()
    if "-" in text:
        country, _, sub = text.partition("-")
        return country, sub
    return None, text


def region_known(country: str, region: str) -> bool:
    if country == "BR":
        return region in BR_UF_ZONES
    if country == "US":
        return region in US_STATE_ZONES
    return False


@lru_cache(maxsize=1024)
def _us_npa_zones(npa: str) -> tuple[str, ...]:
    from phonenumbers.tzdata import TIMEZONE_DATA  # large table: load only when needed

    prefix = "1" + npa
    zones: dict[str, None] = {}
    for key, names in TIMEZONE_DATA.items():
        if key.startswith(prefix) or (prefix.startswith(key) and len(key) > 1):
            for name in names:
                if name != "Etc/Unknown":
                    zones[name] = None
    for name in US_NPA_EXTRA.get(npa, ()):
        zones[name] = None
    return tuple(zones) or US_ALL_ZONES


@lru_cache(maxsize=4096)
def _us_npa_state(npa: str) -> str | None:
    """The state an area code belongs to (``None`` if it is not a US geographic code)."""
    import phonenumbers
    from phonenumbers import geocoder

    number = phonenumbers.parse(f"+1{npa}2345678")
    if phonenumbers.region_code_for_number(number) not in ("US", "PR", "VI", "GU"):
        return None
    desc = geocoder.description_for_number(number, "en")
    # descriptions read "Dallas, TX", "Texas" or "Puerto Rico"
    if "," in desc:
        return desc.rsplit(",", 1)[1].strip() or None
    return _US_STATE_NAMES.get(desc.strip())


_US_STATE_NAMES = {
    "Alabama": "AL",
    "Alaska": "AK",
    "Arizona": "AZ",
    "Arkansas": "AR",
    "California": "CA",
    "Colorado": "CO",
    "Connecticut": "CT",
    "Delaware": "DE",
    "Florida": "FL",
    "Georgia": "GA",
    "Hawaii": "HI",
    "Idaho": "ID",
    "Illinois": "IL",
    "Indiana": "IN",
    "Iowa": "IA",
    "Kansas": "KS",
    "Kentucky": "KY",
    "Louisiana": "LA",
    "Maine": "ME",
    "Maryland": "MD",
    "Massachusetts": "MA",
    "Michigan": "MI",
    "Minnesota": "MN",
    "Mississippi": "MS",
    "Missouri": "MO",
    "Montana": "MT",
    "Nebraska": "NE",
    "Nevada": "NV",
    "New Hampshire": "NH",
    "New Jersey": "NJ",
    "New Mexico": "NM",
    "New York": "NY",
    "North Carolina": "NC",
    "North Dakota": "ND",
    "Ohio": "OH",
    "Oklahoma": "OK",
    "Oregon": "OR",
    "Pennsylvania": "PA",
    "Rhode Island": "RI",
    "South Carolina": "SC",
    "South Dakota": "SD",
    "Tennessee": "TN",
    "Texas": "TX",
    "Utah": "UT",
    "Vermont": "VT",
    "Virginia": "VA",
    "Washington": "WA",
    "West Virginia": "WV",
    "Wisconsin": "WI",
    "Wyoming": "WY",
    "Washington D.C.": "DC",
    "Puerto Rico": "PR",
}


def number_country(number: str) -> str:
    """The rule pack a number belongs to: ``"BR"`` or ``"US"``."""
    if number.startswith("+55"):
        return "BR"
    if number.startswith("+1") and _us_npa_state(number[2:5]) is not None:
        return "US"
    raise UnsupportedNumber(f"{number}: no rule pack for this country (Régua contacts BR and US)")


def _number_place(number: str) -> tuple[str, str | None, tuple[str, ...]]:
    """Country, state and zones from the first five characters (+55DD or +1NPA)."""
    country = number_country(number)
    if country == "BR":
        entry = BR_DDD.get(number[3:5])
        if entry is None:
            raise UnsupportedNumber(f"{number}: unknown Brazilian area code {number[3:5]}")
        return "BR", entry[0], entry[1]
    npa = number[2:5]
    return "US", _us_npa_state(npa), _us_npa_zones(npa)


def locate(number: str, region: str | None = None, timezone: str | None = None) -> Location:
    """Where the holder of ``number`` may be, narrowed by the account's region / zone.

    - an explicit IANA ``timezone`` wins for the zone;
    - a ``region`` picks the state (its law) and narrows the zones to those of the
      number that lie in the region; if they do not meet (the person moved), every
      candidate of both is kept: the contact must suit all of them.
    """
    # the place depends only on the country code and area code: cache on that prefix
    return _locate_prefix(number[:5], region, timezone)


@lru_cache(maxsize=16384)
def _locate_prefix(prefix: str, region: str | None, timezone: str | None) -> Location:
    country, state, zones = _number_place(prefix)
    region_country, region_code = split_region(region)
    if region_code and (region_country in (None, country)) and region_known(country, region_code):
        state = region_code
        region_zones = (BR_UF_ZONES if country == "BR" else US_STATE_ZONES)[region_code]
        narrowed = tuple(z for z in zones if z in region_zones)
        zones = narrowed or tuple(dict.fromkeys(zones + region_zones))
    if timezone:
        zones = (timezone,)
    return Location(country, state, zones, tuple(ZoneInfo(z) for z in zones))
