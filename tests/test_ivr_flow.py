"""The IVR flow: every path walked, and no full-level prompt before verification."""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import pytest

from dialer.domain import Outcome
from dialer.errors import ConfigError
from dialer.rules.callback_windows import CallbackWindow
from dialer.rules.disclosure import Level
from ivr import flow
from ivr.prompts import Catalogue, DisclosureViolation

H = 3600
SP = tuple(
    CallbackWindow(s * H, e * H, "America/Sao_Paulo") for s, e in ((9, 12), (12, 15), (15, 18), (18, 20))
)
CE = tuple(CallbackWindow(s * H, e * H, "America/Fortaleza") for s, e in ((9, 12), (12, 15), (15, 18)))
CORRECT = "1980"
KEYS = [*"0123456789*#", "12", ""]  # every key, two at once, and the time-out
FACTOR_INPUTS = [CORRECT, "1979", "", "19"]
PARTIES = [
    flow.Party("Maria", None, callback_windows=SP),
    flow.Party("Maria", "birth_year", callback_windows=SP),
    flow.Party("Maria", "digits", 4, callback_windows=CE),
]
# every kind of party, with four, three, one or no windows to offer
OFFERING = flow.Party("Maria", "birth_year", callback_windows=SP, offer="c0123456789abcde")
WALKED = [
    *PARTIES,
    flow.Party("Maria", "birth_year"),
    flow.Party("Maria", None, callback_windows=SP[3:]),
    OFFERING,
]
WALKED_IDS = [
    "no-factor-SP",
    "birth-year-SP",
    "digits-CE",
    "birth-year-no-windows",
    "no-factor-one-window",
    "birth-year-offer",
]


def check(kind: str, digits: str) -> bool:
    return digits == (CORRECT if kind == "birth_year" else "1234")


@pytest.fixture(scope="module")
def catalogue(settings):
    return Catalogue.load(settings.limited_message.voice, ("Exemplo Cobranças", "Loja Exemplo S.A."))


def events_for(session: flow.Session, party: flow.Party) -> list[flow.Event]:
    if session.state is flow.State.SECOND_FACTOR:
        inputs = [*FACTOR_INPUTS, "1234"]
    else:
        inputs = KEYS
    return [flow.Digits(k) for k in inputs] + [flow.HungUp()]


@pytest.mark.parametrize("party", WALKED, ids=WALKED_IDS)
@pytest.mark.parametrize("amd", [None, "HUMAN", "NOTSURE", "MACHINE"])
def test_every_path_keeps_full_prompts_behind_verification(catalogue, party, amd):
    """Breadth-first over every key, time-out and hang-up from every reachable state."""
    start, commands = flow.begin(party, amd)
    queue = deque([(start, commands, ())])
    seen: set[flow.Session] = set()
    paths = 0
    outcomes = set()
    offered = {(w.label, w.timezone) for w in party.callback_windows}
    while queue:
        session, commands, path = queue.popleft()
        for command in commands:
            if isinstance(command, flow.Say | flow.Ask):
                level = catalogue.level(command.prompt)
                if level is Level.FULL:
                    assert command.verified and session.verified, (path, command)
                # the run-time guard agrees with the walk
                if not command.verified:
                    with pytest.raises(DisclosureViolation) if level is Level.FULL else _nothing():
                        catalogue.render(command.prompt, "pt-BR", _fields(), verified=False)
                # the callback question offers exactly the party's windows, in order
                if command.prompt == "callback_windows":
                    assert party.callback_windows
                    assert dict(command.fields)["windows"].split() == [
                        w.label for w in party.callback_windows
                    ]
        if session.done:
            paths += 1
            outcomes.add(session.outcome)
            if session.outcome is not Outcome.ANSWERED_VERIFIED:
                assert not any(a.kind in ("payment_link", "callback") for a in session.actions)
            for action in session.actions:
                if action.kind == "callback":  # an hour range that was offered, never a word
                    data = dict(action.data)
                    if offered:
                        assert (data["window"], data["timezone"]) in offered, path
                    else:
                        assert data == {}, path
            continue
        state_key = replace(session, keys=())  # what was pressed before does not change what comes next
        if state_key in seen:
            continue
        seen.add(state_key)
        for event in events_for(session, party):
            nxt, cmds = flow.advance(session, event, party, check)
            queue.append((nxt, cmds, (*path, event)))
    assert paths > 0
    if amd == "MACHINE":
        assert outcomes == {Outcome.VOICEMAIL}
    else:
        assert {
            Outcome.ANSWERED_VERIFIED,
            Outcome.THIRD_PARTY,
            Outcome.WRONG_NUMBER,
            Outcome.ANSWERED_UNVERIFIED,
        } <= outcomes


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _fields():
    return {
        "name": "Maria",
        "contact_name": "Ana",
        "callback_number": "0800",
        "callback_digits": "0 8 0 0",
        "business_name": "Loja",
        "salutation": "",
        "company": "Loja Exemplo",
        "amount_words": "dez reais",
        "due_words": "treze de novembro",
        "window_words": "das nove ao meio-dia",
        "window_options": "Para receber a ligação das nove ao meio-dia, digite 1.",
        "key": "1",
        "digits_count": "4",
    }


def run(party, keys, amd=None):
    session, commands = flow.begin(party, amd)
    played = [c.prompt for c in commands if isinstance(c, flow.Say | flow.Ask)]
    for key in keys:
        if session.done:
            break
        event = flow.HungUp() if key is None else flow.Digits(key)
        session, commands = flow.advance(session, event, party, check)
        played += [c.prompt for c in commands if isinstance(c, flow.Say | flow.Ask)]
    return session, played


@pytest.mark.parametrize(
    ("party", "keys", "outcome", "actions", "last"),
    [
        (PARTIES[0], ["1", "1"], Outcome.ANSWERED_VERIFIED, ["payment_link"], "goodbye"),
        (PARTIES[1], ["1", CORRECT, "2", "2"], Outcome.ANSWERED_VERIFIED, ["callback"], "goodbye"),
        (PARTIES[1], ["1", CORRECT, "4"], Outcome.ANSWERED_VERIFIED, ["opt_out"], "goodbye"),
        (PARTIES[1], ["1", CORRECT, "3", "3", "3", "3", ""], Outcome.ANSWERED_VERIFIED, [], "goodbye"),
        (PARTIES[2], ["1", "1234", "1"], Outcome.ANSWERED_VERIFIED, ["payment_link"], "goodbye"),
        (PARTIES[1], ["1", "1111", "2222"], Outcome.ANSWERED_UNVERIFIED, [], "limited_message"),
        (PARTIES[1], ["1", "", ""], Outcome.ANSWERED_UNVERIFIED, [], "limited_message"),
        (PARTIES[0], ["2", "9"], Outcome.WRONG_NUMBER, ["wrong_number"], "wrong_number_confirm"),
        (PARTIES[0], ["2", ""], Outcome.THIRD_PARTY, [], "goodbye"),
        (PARTIES[0], ["", ""], Outcome.ANSWERED_UNVERIFIED, [], "limited_message"),
        (PARTIES[0], ["7", "8"], Outcome.ANSWERED_UNVERIFIED, [], "limited_message"),
        (PARTIES[0], ["7", "1", "1"], Outcome.ANSWERED_VERIFIED, ["payment_link"], "goodbye"),
        (PARTIES[1], ["1", None], Outcome.ANSWERED_UNVERIFIED, [], "ask_birth_year"),
        (PARTIES[0], ["1", "9", "9"], Outcome.ANSWERED_VERIFIED, [], "goodbye"),
        # key 5: the best offer, only where there is one
        (OFFERING, ["1", CORRECT, "5", "1"], Outcome.ANSWERED_VERIFIED, ["agreement"], "goodbye"),
        (OFFERING, ["1", CORRECT, "5", "2", "1"], Outcome.ANSWERED_VERIFIED, ["payment_link"], "goodbye"),
        (OFFERING, ["1", CORRECT, "5", "", ""], Outcome.ANSWERED_VERIFIED, [], "goodbye"),
        (PARTIES[1], ["1", CORRECT, "5", "5"], Outcome.ANSWERED_VERIFIED, [], "goodbye"),  # no offer: invalid
        (OFFERING, ["1", "1111", CORRECT, "5", "1"], Outcome.ANSWERED_VERIFIED, ["agreement"], "goodbye"),
        (OFFERING, ["1", "1111", "2222", "5", "1"], Outcome.ANSWERED_UNVERIFIED, [], "limited_message"),
    ],
)
def test_paths(party, keys, outcome, actions, last):
    session, played = run(party, keys)
    assert session.done
    assert session.outcome is outcome
    assert [a.kind for a in session.actions] == actions
    assert played[-1] == last
    if outcome is not Outcome.ANSWERED_VERIFIED:
        assert "debt" not in played and "menu" not in played and "offer" not in played
    if "agreement" in actions:
        (action,) = session.actions
        assert dict(action.data) == {"offer": party.offer}


def test_machine_gets_the_whole_limited_message_and_nothing_else():
    session, commands = flow.begin(PARTIES[1], "MACHINE")
    assert [type(c).__name__ for c in commands] == ["Say", "Hangup"]
    assert commands[0].prompt == "limited_message" and not commands[0].verified
    assert session.outcome is Outcome.VOICEMAIL


@pytest.mark.parametrize(
    ("party", "key", "window", "zone"),
    [
        (PARTIES[0], "1", "09:00-12:00", "America/Sao_Paulo"),
        (PARTIES[0], "3", "15:00-18:00", "America/Sao_Paulo"),
        (PARTIES[0], "4", "18:00-20:00", "America/Sao_Paulo"),
        (flow.Party("Maria", None, callback_windows=CE), "3", "15:00-18:00", "America/Fortaleza"),
    ],
)
def test_callback_window_is_recorded_as_an_hour_range(party, key, window, zone):
    session, played = run(party, ["1", "2", key])
    assert session.actions == (flow.Action("callback", (("window", window), ("timezone", zone))),)
    assert played[-2:] == ["confirm_callback", "goodbye"]


def test_a_window_not_offered_cannot_be_picked():
    # Ceará: three windows, no evening. Key 4 is not an option; twice and the call ends.
    party = flow.Party("Maria", None, callback_windows=CE)
    session, played = run(party, ["1", "2", "4", "4"])
    assert session.done and session.actions == ()
    assert played[-4:] == ["callback_windows", "invalid_option", "callback_windows", "goodbye"]
    session, _ = run(party, ["1", "2", "4", "2"])
    assert session.actions == (
        flow.Action("callback", (("window", "12:00-15:00"), ("timezone", "America/Fortaleza"))),
    )


def test_no_window_to_offer_promises_the_lawful_hours():
    session, played = run(flow.Party("Maria", None), ["1", "2"])
    assert session.done and session.outcome is Outcome.ANSWERED_VERIFIED
    assert session.actions == (flow.Action("callback"),)
    assert played[-2:] == ["confirm_callback_lawful_hours", "goodbye"]
    assert "callback_windows" not in played


def test_catalogue_levels(catalogue):
    assert catalogue.level("debt") is Level.FULL
    assert catalogue.level("ask_identity") is Level.LIMITED
    assert catalogue.level("goodbye") is Level.NONE
    text = catalogue.render("ask_identity", "en", _fields(), verified=False).text
    assert text == "Hello. This is a call for Maria. If you are Maria, press 1. If you are not, press 2."
    with pytest.raises(DisclosureViolation):
        catalogue.render("menu", "pt-BR", _fields(), verified=False)


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"ask_identity": {"level": "limited", "pt-BR": "Olá {name}, sua dívida venceu."}}, "debt"),
        (
            {"ask_identity": {"level": "limited", "en": "Hi {name}, you owe {amount_words}."}},
            "{amount_words}",
        ),
        ({"goodbye": {"level": "none", "en": "Bye {name}"}}, "{name}"),
        ({"goodbye": {"level": "secret", "en": "Bye"}}, "none, limited or full"),
        (
            {"third_party": {"level": "limited", "pt-BR": "Ligue para Exemplo Cobranças."}},
            "reveals collection",
        ),
        ({"new_prompt": {"level": "limited"}}, "needs a text"),
    ],
)
def test_admin_edits_that_leak_are_refused(settings, override, reason):
    with pytest.raises(ConfigError) as info:
        Catalogue.load(settings.limited_message.voice, ("Exemplo Cobranças",), overrides=override)
    assert reason in str(info.value)
