"""One IVR conversation: the flow, the catalogue and a voice transport, with everything recorded.

``run_conversation`` drives ``ivr.flow`` over a ``Voice`` (FastAGI in production,
scripted keys in the sandbox), renders every prompt through ``Catalogue.render`` (which
refuses a full prompt before verification) and records each prompt played (id, level,
rendered text), each key pressed, the verification result and the actions, for the
attempt's audit trail.

Callback windows are hour ranges ("09:00-12:00") the flow hands over in a command's
fields: ``window`` (one, for the confirmation) becomes ``{window_words}``, ``windows``
(the ranges keys 1..n pick) becomes ``{window_options}``, the ``callback_option`` prompt
said once per range. ``callback_windows_for`` computes the ranges for the number called.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from dialer.domain import Account, AccountStatus, Outcome
from dialer.errors import UnsupportedNumber
from dialer.rules.callback_windows import CallbackWindow, callback_windows, parse_label
from dialer.rules.charges import money
from dialer.rules.local_time import locate
from dialer.rules.messages import limited_fields
from dialer.rules.offers import Offer, best_offer, offers_for
from dialer.rules.planning import local_zone
from dialer.rules.policy import Policy
from ivr import flow
from ivr.prompts import Catalogue, Rendered
from ivr.speech_text import date_words, digits_words, hour_range_words, money_words

CALLBACK_OPTION = "callback_option"


class Voice(Protocol):
    """What a conversation needs from a call."""

    async def say(self, prompt: Rendered) -> bool:
        """Play; False if the party hung up."""
        ...

    async def ask(self, prompt: Rendered, max_digits: int, timeout_s: float) -> str | None:
        """Play and collect up to ``max_digits``: the digits ("" on time-out), None on hang-up."""
        ...

    async def hangup(self) -> None: ...


@dataclass
class ConversationResult:
    outcome: Outcome
    verified: bool
    actions: list[flow.Action]
    events: list[dict[str, Any]] = field(default_factory=list)


def party_for(
    account: Account, windows: tuple[CallbackWindow, ...] = (), offer: Offer | None = None
) -> flow.Party:
    """The flow's view of the debtor; ``windows``: the callback windows to offer them;
    ``offer``: the best offer key 5 reads (its words come with ``call_fields``)."""
    offer_id = offer.offer_id if offer is not None else None
    if account.verify_birth_year_hash:
        return flow.Party(account.name, "birth_year", callback_windows=windows, offer=offer_id)
    if account.verify_digits_hash:
        return flow.Party(account.name, "digits", 4, callback_windows=windows, offer=offer_id)
    return flow.Party(account.name, None, callback_windows=windows, offer=offer_id)


def offer_words(offer: Offer, currency: str, language: str) -> str:
    """The offer said aloud: "à vista, quatrocentos e cinquenta reais, até 26 de novembro"."""
    first = offer.installments[0]
    due = date_words(first.due, language)
    amount = money_words(money(first.amount_cents), currency, language)
    pt = language.startswith("pt")
    if offer.count == 1:
        return f"à vista, {amount}, até {due}" if pt else f"{amount} in one payment, by {due}"
    # the installments after the down payment are equal to the cent but for the first ones
    each = money_words(
        money(offer.installments[1 if offer.down_payment_cents else 0].amount_cents), currency, language
    )
    if offer.down_payment_cents:
        rest = offer.count - 1
        if pt:
            return f"entrada de {amount} até {due}, e mais {rest} parcelas mensais de {each}"
        return f"{amount} down by {due}, then {rest} monthly payments of {each}"
    if pt:
        return f"{offer.count} parcelas mensais de {each}, a primeira até {due}"
    return f"{offer.count} monthly payments of {each}, the first by {due}"


def best_offer_for(
    account: Account, phones: Any, now: datetime, settings: Any, special: Any = None
) -> Offer | None:
    """The offer the IVR reads to a verified debtor (an open account only)."""
    if account.status is not AccountStatus.OPEN or not phones:
        return None
    today = now.astimezone(local_zone(phones, account.region, account.timezone)).date()
    return best_offer(offers_for(account, today, settings.negotiation, settings.payments, special))


def callback_windows_for(account: Account, number: str | None, policy: Policy) -> tuple[CallbackWindow, ...]:
    """The callback windows the law and the configuration allow where the holder of ``number``
    is (narrowed by the account's region and zone); none for a number without a rule pack."""
    if not number:
        return ()
    try:
        location = locate(number, account.region, account.timezone)
    except UnsupportedNumber:
        return ()
    return callback_windows(location, policy)


def window_words(label: str, language: str) -> str:
    """``"09:00-12:00"`` -> ``"das nove ao meio-dia"`` / ``"from nine to noon"``."""
    start, end = parse_label(label)
    return hour_range_words(start, end, language)


def call_fields(account: Account, company: Any, language: str, offer: Offer | None = None) -> dict[str, str]:
    """Every value a prompt may name. Which ones a prompt may *use* is its level's business."""
    fields = limited_fields(account, company)
    if offer is not None:
        fields["offer_words"] = offer_words(offer, account.currency, language)
    digits = "".join(c for c in str(getattr(company, "callback_number", "")) if c.isdigit())
    fields.update(
        company=str(getattr(company, "name", "")),
        amount_words=money_words(account.amount, account.currency, language),
        due_words=date_words(account.due_date, language),
        callback_digits=digits_words(digits, language) if digits else "",
    )
    return fields


async def run_conversation(
    voice: Voice,
    catalogue: Catalogue,
    party: flow.Party,
    fields: Mapping[str, str],
    language: str,
    amd: str | None,
    check: flow.Check,
) -> ConversationResult:
    events: list[dict[str, Any]] = []

    def render(prompt: str, verified: bool, extra: tuple[tuple[str, str], ...]) -> Rendered:
        values = dict(fields)
        for key, value in extra:
            if key == "window":
                values["window_words"] = window_words(value, language)
            elif key == "windows":
                values["window_options"] = " ".join(
                    catalogue.render(
                        CALLBACK_OPTION,
                        language,
                        {**values, "window_words": window_words(label, language), "key": str(n)},
                        verified=verified,
                    ).text
                    for n, label in enumerate(value.split(), 1)
                )
            else:
                values[key] = value
        rendered = catalogue.render(prompt, language, values, verified=verified)
        events.append(
            {
                "kind": "prompt",
                "prompt": prompt,
                "level": rendered.level.value,
                "text": rendered.text,
                "verified": verified,
            }
        )
        return rendered

    session, commands = flow.begin(party, amd)
    while True:
        event: flow.Event | None = None
        for command in commands:
            if isinstance(command, flow.Hangup):
                await voice.hangup()
                event = None
                break
            if isinstance(command, flow.Say):
                if not await voice.say(render(command.prompt, command.verified, command.fields)):
                    event = flow.HungUp()
                    break
                continue
            answer = await voice.ask(
                render(command.prompt, command.verified, command.fields),
                command.max_digits,
                command.timeout_s,
            )
            if answer is None:
                event = flow.HungUp()
                break
            shown = answer if session.state is not flow.State.SECOND_FACTOR else "*" * len(answer)
            events.append({"kind": "keys", "keys": shown, "state": session.state.value})
            event = flow.Digits(answer)
            break
        if event is None:
            break
        before = session.verification
        session, commands = flow.advance(session, event, party, check)
        if session.verification != before:
            events.append({"kind": "verification", "result": session.verification})
        if isinstance(event, flow.HungUp):
            events.append({"kind": "hangup", "state": session.state.value})
            break
    for action in session.actions:
        events.append({"kind": "ivr_action", "action": action.kind, **dict(action.data)})
    events.append({"kind": "ivr_end", "outcome": session.outcome.value, "verified": session.verified})
    return ConversationResult(session.outcome, session.verified, list(session.actions), events)
