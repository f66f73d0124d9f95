"""The IVR flow: every path walked, and no full-level prompt before verification."""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import pytest

from dialer.domain import Outcome
from dialer.errors import ConfigError
from dialer.rules.disclosure import Level
from ivr import flow
from ivr.prompts import Catalogue, DisclosureViolation

CORRECT = "1980"
KEYS = [*"0123456789*#", ""]  # every key, and the time-out
FACTOR_INPUTS = [CORRECT, "1979", "", "19"]
PARTIES = [flow.Party("Maria", None), flow.Party("Maria", "birth_year"), flow.Party("Maria", "digits", 4)]


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


@pytest.mark.parametrize("party", PARTIES, ids=["no-factor", "birth-year", "digits"])
@pytest.mark.parametrize("amd", [None, "HUMAN", "NOTSURE", "MACHINE"])
def test_every_path_keeps_full_prompts_behind_verification(catalogue, party, amd):
    """Breadth-first over every key, time-out and hang-up from every reachable state."""
    start, commands = flow.begin(party, amd)
    queue = deque([(start, commands, ())])
    seen: set[flow.Session] = set()
    paths = 0
    outcomes = set()
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
        if session.done:
            paths += 1
            outcomes.add(session.outcome)
            if session.outcome is not Outcome.ANSWERED_VERIFIED:
                assert not any(a.kind in ("payment_link", "callback") for a in session.actions)
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
        "window_words": "pela manhã",
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
    ],
)
def test_paths(party, keys, outcome, actions, last):
    session, played = run(party, keys)
    assert session.done
    assert session.outcome is outcome
    assert [a.kind for a in session.actions] == actions
    assert played[-1] == last
    if outcome is not Outcome.ANSWERED_VERIFIED:
        assert "debt" not in played and "menu" not in played


def test_machine_gets_the_whole_limited_message_and_nothing_else():
    session, commands = flow.begin(PARTIES[1], "MACHINE")
    assert [type(c).__name__ for c in commands] == ["Say", "Hangup"]
    assert commands[0].prompt == "limited_message" and not commands[0].verified
    assert session.outcome is Outcome.VOICEMAIL


def test_callback_window_is_recorded():
    session, _ = run(PARTIES[0], ["1", "2", "3"])
    assert session.actions == (flow.Action("callback", (("window", "evening"),)),)


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
