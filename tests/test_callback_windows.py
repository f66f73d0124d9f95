"""Callback windows: hour ranges the debtor's state allows, offered and recorded as ranges."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from dialer.domain import Account, Channel, Outcome, weekly
from dialer.rules.callback_windows import CallbackWindow, callback_windows, parse_label
from dialer.rules.local_time import locate
from ivr.conversation import callback_windows_for, party_for, run_conversation, window_words
from ivr.prompts import Catalogue, DisclosureViolation
from ivr.sandbox_runner import ScriptedVoice
from ivr.speech_text import hour_range_words

H = 3600
ALL = ["09:00-12:00", "12:00-15:00", "15:00-18:00", "18:00-20:00"]
TO_SIX = ALL[:3]


@pytest.mark.parametrize(
    ("number", "region", "labels", "zone"),
    [
        ("+5511987654321", None, ALL, "America/Sao_Paulo"),  # SP: 08:00-20:00
        ("+5521987654321", None, [*TO_SIX, "18:00-19:00"], "America/Sao_Paulo"),  # RJ: 09-19, cut
        ("+5585987654321", None, TO_SIX, "America/Fortaleza"),  # CE: 08-18, nothing after 18:00
        ("+5588987654321", None, TO_SIX, "America/Fortaleza"),  # CE's other DDD
        ("+5592987654321", None, TO_SIX, "America/Manaus"),  # AM: 08-18, UTC-4
        ("+5597987654321", None, TO_SIX, "America/Manaus"),  # AM, Manaus and Eirunepé (UTC-5)
        # Recife and Noronha (an hour ahead, where 20:00 comes at Recife's 19:00)
        ("+5581987654321", None, [*TO_SIX, "18:00-19:00"], "America/Recife"),
        # the account says Ceará: its law (on the number's clock, the same as Fortaleza's)
        ("+5511987654321", "CE", TO_SIX, "America/Sao_Paulo"),
        ("+5585987654321", "BR-SP", ALL, "America/Fortaleza"),  # moved to São Paulo
        ("+5571987654321", None, ALL, "America/Bahia"),  # BA: the default, 08-20
        ("+12125551234", None, ALL, "America/New_York"),  # US: 08:00-21:00
        ("+18505551234", None, ALL, "America/New_York"),  # FL panhandle: Eastern and Central
    ],
)
def test_windows_per_state(policy, number, region, labels, zone):
    windows = callback_windows(locate(number, region), policy)
    assert [w.label for w in windows] == labels
    assert {w.timezone for w in windows} == {zone}


def _with_voice_hours(policy, country, state, hours):
    pack = policy.packs[country]
    packs = {**policy.packs, country: replace(pack, hours={**pack.hours, (state, Channel.VOICE): hours})}
    return replace(policy, packs=packs)


@pytest.mark.parametrize(
    ("hours", "labels"),
    [
        (weekly(weekdays="10:00-17:00"), ["10:00-12:00", "12:00-15:00", "15:00-17:00"]),
        (weekly(weekdays="08:00-12:00,12:00-20:00"), ALL),  # touching intervals are one
        (
            weekly(weekdays="08:00-12:00,13:00-20:00"),
            ["09:00-12:00", "13:00-15:00", "15:00-18:00", "18:00-20:00"],
        ),
        (weekly(weekdays="08:00-18:30"), TO_SIX),  # half an hour after 18:00 is too short a window
        (weekly(weekdays="08:00-20:00", sat="08:00-14:00"), ALL),  # Saturday's hours do not matter
        # a window must suit every working day: Friday's shorter hours cut it
        (
            weekly(
                mon="08:00-20:00", tue="08:00-20:00", wed="08:00-20:00", thu="08:00-20:00", fri="08:00-16:00"
            ),
            ["09:00-12:00", "12:00-15:00", "15:00-16:00"],
        ),
        (weekly(sat="08:00-14:00"), []),  # no weekday hours: nothing to promise
    ],
)
def test_the_configured_hours_cut_the_windows(policy, hours, labels):
    cut = _with_voice_hours(policy, "BR", "SP", hours)
    assert [w.label for w in callback_windows(locate("+5511987654321"), cut)] == labels


def test_a_pack_the_policy_lacks_offers_nothing(policy):
    only_br = replace(policy, packs={"BR": policy.packs["BR"]})
    assert callback_windows(locate("+12125551234"), only_br) == ()


def test_every_window_is_within_the_law_on_every_working_day(policy):
    """Each window offered lies inside the state's voice hours, in every candidate zone."""
    for number in ("+5511987654321", "+5521987654321", "+5585987654321", "+5597987654321", "+5581987654321"):
        loc = locate(number)
        hours = policy.packs[loc.country].windows(loc.region, Channel.VOICE)
        for w in callback_windows(loc, policy):
            for weekday in range(5):
                assert any(s <= w.start and w.end <= e for s, e in hours[weekday]), (number, w)


@pytest.mark.parametrize(
    ("window", "label"),
    [
        (CallbackWindow(9 * H, 12 * H, "America/Sao_Paulo"), "09:00-12:00"),
        (CallbackWindow(18 * H, 19 * H + 30 * 60, "America/Sao_Paulo"), "18:00-19:30"),
        (CallbackWindow(20 * H, 24 * H, "America/Sao_Paulo"), "20:00-24:00"),
    ],
)
def test_labels_round_trip(window, label):
    assert window.label == label
    assert parse_label(label) == (window.start, window.end)


@pytest.mark.parametrize("bad", ["morning", "9-12", "09:00", "09:00-25:00", "09:61-10:00", ""])
def test_parse_label_refuses_words(bad):
    with pytest.raises(ValueError):
        parse_label(bad)


@pytest.mark.parametrize(
    ("start", "end", "pt", "en"),
    [
        (9, 12, "das nove ao meio-dia", "from nine to noon"),
        (12, 15, "do meio-dia às quinze horas", "from noon to three p.m."),
        (15, 18, "das quinze às dezoito horas", "from three to six p.m."),
        (18, 20, "das dezoito às vinte horas", "from six to eight p.m."),
        (18, 19, "das dezoito às dezenove horas", "from six to seven p.m."),
        (8, 11, "das oito às onze horas", "from eight to eleven a.m."),
        (11, 14, "das onze às catorze horas", "from eleven a.m. to two p.m."),
        (0, 1, "da meia-noite à uma hora", "from midnight to one a.m."),
        (20, 22, "das vinte às vinte e duas horas", "from eight to ten p.m."),
        (9.5, 12, "das nove e meia ao meio-dia", "from nine thirty to noon"),
    ],
)
def test_hour_ranges_in_words(start, end, pt, en):
    assert hour_range_words(int(start * H), int(end * H), "pt-BR") == pt
    assert hour_range_words(int(start * H), int(end * H), "en") == en


# ------------------------------------------------------------------ in a conversation


def _account() -> Account:
    return Account("A1", "Maria Silva", date(2026, 11, 1), Decimal("100.00"))


@pytest.fixture(scope="module")
def catalogue(settings):
    return Catalogue.load(settings.limited_message.voice, ("Exemplo Cobranças",))


FIELDS = {
    "name": "Maria",
    "contact_name": "Ana",
    "callback_number": "0800",
    "callback_digits": "zero oito zero zero",
    "business_name": "Loja",
    "salutation": "",
    "company": "Loja Exemplo",
    "amount_words": "cem reais",
    "due_words": "primeiro de novembro",
    "digits_count": "4",
}


async def _converse(catalogue, number, policy, keys, language="pt-BR"):
    windows = callback_windows_for(_account(), number, policy)
    voice = ScriptedVoice(keys)
    result = await run_conversation(
        voice, catalogue, party_for(_account(), windows), FIELDS, language, "HUMAN", lambda k, d: False
    )
    return result, {e["prompt"]: e["text"] for e in result.events if e["kind"] == "prompt"}


async def test_ceara_hears_no_evening_and_records_the_range(catalogue, policy):
    result, spoken = await _converse(catalogue, "+5585987654321", policy, ("1", "2", "3"))
    assert spoken["callback_windows"] == (
        "Um atendente vai ligar para você. "
        "Para receber a ligação das nove ao meio-dia, digite 1. "
        "Para receber a ligação do meio-dia às quinze horas, digite 2. "
        "Para receber a ligação das quinze às dezoito horas, digite 3."
    )
    assert spoken["confirm_callback"] == (
        "Pronto. Um atendente vai ligar para você das quinze às dezoito horas, em um dia útil."
    )
    assert result.outcome is Outcome.ANSWERED_VERIFIED
    (action,) = result.actions
    assert dict(action.data) == {"window": "15:00-18:00", "timezone": "America/Fortaleza"}
    assert {
        "kind": "ivr_action",
        "action": "callback",
        "window": "15:00-18:00",
        "timezone": "America/Fortaleza",
    } in result.events


async def test_sao_paulo_in_english_hears_four_windows(catalogue, policy):
    result, spoken = await _converse(catalogue, "+5511987654321", policy, ("1", "2", "4"), "en")
    assert spoken["callback_windows"] == (
        "An agent will call you back. To be called from nine to noon, press 1. "
        "To be called from noon to three p.m., press 2. To be called from three to six p.m., press 3. "
        "To be called from six to eight p.m., press 4."
    )
    assert spoken["confirm_callback"] == (
        "Done. An agent will call you back from six to eight p.m. on a working day."
    )
    assert dict(result.actions[0].data) == {"window": "18:00-20:00", "timezone": "America/Sao_Paulo"}


async def test_rio_is_offered_the_evening_cut_to_seven(catalogue, policy):
    result, spoken = await _converse(catalogue, "+5521987654321", policy, ("1", "2", "4"))
    assert "das dezoito às dezenove horas, digite 4" in spoken["callback_windows"]
    assert dict(result.actions[0].data)["window"] == "18:00-19:00"


async def test_no_window_to_offer(catalogue, policy):
    result, spoken = await _converse(catalogue, "+4420712345678", policy, ("1", "2"))  # no rule pack
    assert "callback_windows" not in spoken
    assert spoken["confirm_callback_lawful_hours"].endswith("em um horário permitido por lei.")
    assert [(a.kind, a.data) for a in result.actions] == [("callback", ())]


def test_window_words_follow_the_label():
    assert window_words("09:00-12:00", "pt-BR") == "das nove ao meio-dia"
    assert window_words("09:00-12:00", "en") == "from nine to noon"


def test_the_callback_prompts_are_full(catalogue):
    for pid in ("callback_windows", "callback_option", "confirm_callback", "confirm_callback_lawful_hours"):
        assert catalogue.level(pid).value == "full"
        with pytest.raises(DisclosureViolation):
            catalogue.render(
                pid,
                "pt-BR",
                {**FIELDS, "window_words": "x", "window_options": "x", "key": "1"},
                verified=False,
            )
