"""Time zones by DDD, checked against real geography (compliance.md), and the library's errors."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from phonenumbers import timezone as pn_timezone

from dialer.errors import UnsupportedNumber
from dialer.rules.local_time import BR_DDD, US_STATE_ZONES, locate

# Real geography (compliance.md): UTC offsets per DDD, no daylight saving since 2019.
UTC_MINUS_4 = {"65", "66", "67", "69", "92", "95"}
TRUTH = {ddd: {-3} for ddd in BR_DDD}
TRUTH.update({d: {-4} for d in UTC_MINUS_4})
TRUTH["68"] = {-5}  # Acre
TRUTH["97"] = {-4, -5}  # most of Amazonas, and its south-west (Eirunepé)
TRUTH["81"] = {-3, -2}  # mainland Pernambuco, and Fernando de Noronha

STATES = {
    "SP": ["11", "12", "13", "14", "15", "16", "17", "18", "19"],
    "RJ": ["21", "22", "24"],
    "ES": ["27", "28"],
    "MG": ["31", "32", "33", "34", "35", "37", "38"],
    "PR": ["41", "42", "43", "44", "45", "46"],
    "SC": ["47", "48", "49"],
    "RS": ["51", "53", "54", "55"],
    "DF": ["61"],
    "GO": ["62", "64"],
    "TO": ["63"],
    "MT": ["65", "66"],
    "MS": ["67"],
    "AC": ["68"],
    "RO": ["69"],
    "BA": ["71", "73", "74", "75", "77"],
    "SE": ["79"],
    "PE": ["81", "87"],
    "AL": ["82"],
    "PB": ["83"],
    "RN": ["84"],
    "CE": ["85", "88"],
    "PI": ["86", "89"],
    "PA": ["91", "93", "94"],
    "AM": ["92", "97"],
    "RR": ["95"],
    "AP": ["96"],
    "MA": ["98", "99"],
}
SAMPLES = [datetime(2026, 1, 15, 12, tzinfo=UTC), datetime(2026, 7, 15, 12, tzinfo=UTC)]


def offsets(zones):
    return {
        int(s.astimezone(ZoneInfo(z)).utcoffset().total_seconds() // 3600) for z in zones for s in SAMPLES
    }


def test_every_ddd_is_known():
    assert sorted(BR_DDD) == sorted(d for ds in STATES.values() for d in ds)
    assert len(BR_DDD) == 67


@pytest.mark.parametrize("ddd", sorted(BR_DDD))
def test_our_table_matches_geography(ddd):
    loc = locate(f"+55{ddd}987654321")
    assert offsets(loc.zones) == TRUTH[ddd]
    assert loc.country == "BR"
    assert ddd in STATES[loc.region]


SUBSCRIBERS = [
    "987654321",
    "991234567",
    "981234567",
    "999999999",
    "33334444",
    "32221111",
    "21234567",
    "35551234",
]


def test_the_library_is_wrong_where_we_correct_it():
    """phonenumbers (pinned) gets five DDDs wrong for some prefixes: all of 81 on Noronha,
    all of 97 in Manaus, and parts of Pará (91, 93, 94) in UTC-4. If this starts failing,
    the library changed: re-check our table against geography, not against it."""
    wrong = set()
    for ddd in BR_DDD:
        for sub in SUBSCRIBERS:
            number = phonenumbers.parse(f"+55{ddd}{sub}")
            valid = phonenumbers.is_valid_number(number)
            if valid and offsets(pn_timezone.time_zones_for_number(number)) != TRUTH[ddd]:
                wrong.add(ddd)
    assert wrong == {"81", "91", "93", "94", "97"}


@pytest.mark.parametrize(
    ("number", "region", "zones", "state"),
    [
        ("+5597987654321", None, {"America/Manaus", "America/Eirunepe"}, "AM"),
        ("+5581987654321", None, {"America/Recife", "America/Noronha"}, "PE"),
        ("+5511987654321", "AM", {"America/Sao_Paulo", "America/Manaus", "America/Eirunepe"}, "AM"),
        ("+5511987654321", "BR-SP", {"America/Sao_Paulo"}, "SP"),
        ("+5511987654321", "NY", {"America/Sao_Paulo"}, "SP"),  # not a UF: ignored
        ("+12125551234", None, {"America/New_York"}, "NY"),
        ("+13105551234", None, {"America/Los_Angeles"}, "CA"),
        ("+18505551234", "FL", {"America/New_York", "America/Chicago"}, "FL"),
    ],
)
def test_locate(number, region, zones, state):
    loc = locate(number, region)
    assert set(loc.zones) == zones
    assert loc.region == state


def test_us_state_table_zones_exist():
    for zones in US_STATE_ZONES.values():
        for z in zones:
            ZoneInfo(z)


@pytest.mark.parametrize("number", ["+447911123456", "+4930123456", "+14165551234"])
def test_numbers_without_a_rule_pack_are_refused(number):
    with pytest.raises(UnsupportedNumber, match="no rule pack"):
        locate(number)
