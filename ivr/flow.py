"""The IVR flow as a pure state machine: no audio, no sockets, no clock.

``begin(party, amd)`` opens a call; ``advance(session, event, party, check)`` consumes
what the person did (digits, a time-out, a hang-up) and returns the next session and the
commands for the transport (FastAGI in production, scripted keys in the sandbox):
``Say`` a prompt, ``Ask`` a prompt and collect digits, ``Hangup``.

    answering machine ─► limited message, hang up (the whole message: no short calls)
    person ─► "this is a call for {name}: 1 if you are, 2 if not"
      2 ─► ask them to have {name} call back; 9: "not {name}'s number" ─► wrong number
      no key / wrong keys twice ─► limited message, hang up
      1 ─► second factor if the account has one (two tries) ─► limited message on failure
        verified ─► the debt (amount, due date) ─► menu:
          1 payment link by SMS · 2 callback · 3 repeat · 4 stop calling me
          · 5 hear the company's best offer (when there is one) ─► 1 accept it (an
            agreement, made after the call) · anything else: back to the menu
          2 ─► keys 1..n pick one of the party's callback windows (hour ranges in the
               debtor's local time that the law and the configuration allow: computed by
               ``dialer.rules.callback_windows`` and handed in on ``Party``); the action
               records the range ("09:00-12:00") and its zone. No window to offer: the
               debtor hears that an agent will call within the hours the law allows, and
               the action carries no window.

``session.verified`` becomes true only on the transition that checks the second factor
(or on "1" when the account has none); commands carry the flag they were issued under,
and ``ivr.prompts.Catalogue.render`` refuses a full prompt without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from dialer.domain import Outcome
from dialer.rules.callback_windows import CallbackWindow


class State(StrEnum):
    IDENTIFY = "identify"
    THIRD_PARTY = "third_party"
    SECOND_FACTOR = "second_factor"
    MENU = "menu"
    CALLBACK = "callback"
    OFFER = "offer"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Party:
    """What the flow knows of the person it calls for (nothing about the debt)."""

    name: str
    second_factor: str | None = None  # "birth_year" | "digits" | None
    digits_count: int = 4
    callback_windows: tuple[CallbackWindow, ...] = ()  # what keys 1..n offer, in order
    offer: str | None = None  # the id of the best offer key 5 reads (its words are a field)


@dataclass(frozen=True, slots=True)
class Say:
    prompt: str
    verified: bool
    fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Ask:
    prompt: str
    verified: bool
    max_digits: int
    timeout_s: float
    fields: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


Command = Say | Ask | Hangup


@dataclass(frozen=True, slots=True)
class Action:
    kind: str  # payment_link | callback | opt_out | wrong_number
    data: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Session:
    state: State
    verified: bool = False
    outcome: Outcome = Outcome.ANSWERED_UNVERIFIED
    tries: int = 0  # failed inputs in the current state
    repeats: int = 0  # times the debt was repeated
    actions: tuple[Action, ...] = ()
    verification: str | None = None  # passed | failed | None
    keys: tuple[str, ...] = field(default=())

    @property
    def done(self) -> bool:
        return self.state is State.DONE


@dataclass(frozen=True, slots=True)
class Digits:
    value: str  # "" when the time-out passed without a key


@dataclass(frozen=True, slots=True)
class HungUp:
    pass


Event = Digits | HungUp
Check = Callable[[str, str], bool]  # (kind, digits) -> the second factor matches

MAX_TRIES = 2
MAX_REPEATS = 3
IDENTIFY_TIMEOUT_S = 6.0
FACTOR_TIMEOUT_S = 10.0
MENU_TIMEOUT_S = 8.0


def begin(party: Party, amd: str | None) -> tuple[Session, list[Command]]:
    """The first commands of an answered call. A machine gets the limited message in full."""
    if amd == "MACHINE":
        return Session(State.DONE, outcome=Outcome.VOICEMAIL), [Say("limited_message", False), Hangup()]
    return Session(State.IDENTIFY), [Ask("ask_identity", False, 1, IDENTIFY_TIMEOUT_S)]


def _limited_end(
    s: Session, outcome: Outcome, verification: str | None = None
) -> tuple[Session, list[Command]]:
    done = replace(s, state=State.DONE, outcome=outcome, verification=verification or s.verification)
    return done, [Say("limited_message", False), Hangup()]


def _factor_prompt(party: Party) -> Ask:
    if party.second_factor == "birth_year":
        return Ask("ask_birth_year", False, 4, FACTOR_TIMEOUT_S)
    return Ask(
        "ask_document_digits",
        False,
        party.digits_count,
        FACTOR_TIMEOUT_S,
        (("digits_count", str(party.digits_count)),),
    )


def _windows_prompt(party: Party) -> Ask:
    """The callback question: its ``windows`` field lists the ranges keys 1..n pick, in order."""
    labels = " ".join(w.label for w in party.callback_windows)
    return Ask("callback_windows", True, 1, MENU_TIMEOUT_S, (("windows", labels),))


def _window_for(party: Party, pressed: str) -> CallbackWindow | None:
    return {str(key): w for key, w in enumerate(party.callback_windows, 1)}.get(pressed)


def _menu(party: Party) -> Ask:
    return Ask("menu_offer" if party.offer else "menu", True, 1, MENU_TIMEOUT_S)


def _disclose(s: Session, party: Party) -> list[Command]:
    return [Say("debt", True), _menu(party)]


def _verified(s: Session, party: Party) -> tuple[Session, list[Command]]:
    v = replace(
        s, state=State.MENU, verified=True, outcome=Outcome.ANSWERED_VERIFIED, tries=0, verification="passed"
    )
    return v, _disclose(v, party)


def _retry(s: Session, again: Ask, pressed: str) -> tuple[Session, list[Command]] | None:
    """One more try of the same question, or None when the tries are used up."""
    if s.tries + 1 >= MAX_TRIES:
        return None
    lead: list[Command] = [Say("invalid_option", s.verified)] if pressed else []
    return replace(s, tries=s.tries + 1), [*lead, again]


def _finish(s: Session, *commands: Command, **changes: object) -> tuple[Session, list[Command]]:
    return replace(s, state=State.DONE, **changes), [*commands, Hangup()]  # type: ignore[arg-type]


def advance(session: Session, event: Event, party: Party, check: Check) -> tuple[Session, list[Command]]:
    """The next session and commands after ``event``. A finished session stays finished."""
    s = session
    if s.done:
        return s, []
    if isinstance(event, HungUp):
        return replace(s, state=State.DONE), []
    pressed = event.value
    s = replace(s, keys=(*s.keys, pressed))

    if s.state is State.IDENTIFY:
        if pressed == "1":
            if party.second_factor:
                return replace(s, state=State.SECOND_FACTOR, tries=0), [_factor_prompt(party)]
            return _verified(s, party)
        if pressed == "2":
            nxt = replace(s, state=State.THIRD_PARTY, outcome=Outcome.THIRD_PARTY, tries=0)
            return nxt, [Ask("third_party", False, 1, IDENTIFY_TIMEOUT_S)]
        again = _retry(s, Ask("ask_identity", False, 1, IDENTIFY_TIMEOUT_S), pressed)
        return again or _limited_end(s, Outcome.ANSWERED_UNVERIFIED)

    if s.state is State.THIRD_PARTY:
        if pressed == "9":
            return _finish(
                s,
                Say("wrong_number_confirm", False),
                outcome=Outcome.WRONG_NUMBER,
                actions=(*s.actions, Action("wrong_number")),
            )
        return _finish(s, Say("goodbye", False))

    if s.state is State.SECOND_FACTOR:
        kind = party.second_factor or "digits"
        if pressed and check(kind, pressed):
            return _verified(s, party)
        if s.tries + 1 >= MAX_TRIES:
            return _limited_end(s, Outcome.ANSWERED_UNVERIFIED, "failed")
        return replace(s, tries=s.tries + 1), [Say("verify_retry", False), _factor_prompt(party)]

    if s.state is State.MENU:
        if pressed == "1":
            return _finish(
                s,
                Say("confirm_payment_link", True),
                Say("goodbye", True),
                actions=(*s.actions, Action("payment_link")),
            )
        if pressed == "2":
            if not party.callback_windows:
                return _finish(
                    s,
                    Say("confirm_callback_lawful_hours", True),
                    Say("goodbye", True),
                    actions=(*s.actions, Action("callback")),
                )
            return replace(s, state=State.CALLBACK, tries=0), [_windows_prompt(party)]
        if pressed == "3" and s.repeats < MAX_REPEATS:
            r = replace(s, repeats=s.repeats + 1, tries=0)
            return r, _disclose(r, party)
        if pressed == "5" and party.offer:
            return replace(s, state=State.OFFER, tries=0), [
                Say("offer", True),
                Ask("offer_confirm", True, 1, MENU_TIMEOUT_S),
            ]
        if pressed == "4":
            return _finish(
                s,
                Say("confirm_stop", True),
                Say("goodbye", True),
                actions=(*s.actions, Action("opt_out", (("channel", "voice"),))),
            )
        again = _retry(s, _menu(party), pressed)
        return again or _finish(s, Say("goodbye", True))

    if s.state is State.OFFER:
        if pressed == "1" and party.offer:
            return _finish(
                s,
                Say("confirm_agreement", True),
                Say("goodbye", True),
                actions=(*s.actions, Action("agreement", (("offer", party.offer),))),
            )
        if pressed or s.tries + 1 < MAX_TRIES:  # declined (or one silence): back to the menu
            return replace(s, state=State.MENU, tries=0 if pressed else s.tries + 1), [_menu(party)]
        return _finish(s, Say("goodbye", True))

    if s.state is State.CALLBACK:
        window = _window_for(party, pressed)
        if window is not None:
            return _finish(
                s,
                Say("confirm_callback", True, (("window", window.label),)),
                Say("goodbye", True),
                actions=(
                    *s.actions,
                    Action("callback", (("window", window.label), ("timezone", window.timezone))),
                ),
            )
        again = _retry(s, _windows_prompt(party), pressed)
        return again or _finish(s, Say("goodbye", True))

    raise AssertionError(f"no transition from {s.state}")  # pragma: no cover
