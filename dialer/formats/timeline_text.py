"""An account's timeline as sentences a supervisor reads: what happened, and why not.

``describe(event, _, formats, zone)`` turns one timeline event (as the worker, the IVR, the
SMS receipts and status changes write them) into a line: the instant in the reader's zone,
the debtor's local time at that instant, and a sentence in the reader's language. It is
pure: the caller hands in the reader's ``gettext`` (``_``) and the callables that format
instants, so this module knows neither the web nor Babel. Every string goes through ``_``
(its Portuguese is in ``dialer/web/locale/pt_BR/LC_MESSAGES/console.po``); unknown event
kinds get a generic sentence, never an error.

The words for reasons, outcomes, statuses and suppression reasons are here too, for the
console's other pages (the held-back table, the callback queue, the do-not-contact list).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Gettext = Callable[[str], str]

#: Brazil's states by UF (the decision events name the state whose rules applied)
BR_STATES = {
    "AC": "Acre",
    "AL": "Alagoas",
    "AP": "Amapá",
    "AM": "Amazonas",
    "BA": "Bahia",
    "CE": "Ceará",
    "DF": "Distrito Federal",
    "ES": "Espírito Santo",
    "GO": "Goiás",
    "MA": "Maranhão",
    "MT": "Mato Grosso",
    "MS": "Mato Grosso do Sul",
    "MG": "Minas Gerais",
    "PA": "Pará",
    "PB": "Paraíba",
    "PR": "Paraná",
    "PE": "Pernambuco",
    "PI": "Piauí",
    "RJ": "Rio de Janeiro",
    "RN": "Rio Grande do Norte",
    "RS": "Rio Grande do Sul",
    "RO": "Rondônia",
    "RR": "Roraima",
    "SC": "Santa Catarina",
    "SP": "São Paulo",
    "SE": "Sergipe",
    "TO": "Tocantins",
}


@dataclass(frozen=True, slots=True)
class Formats:
    """How the reader sees instants (ISO 8601 text in, display text out)."""

    when: Callable[[str], str]  # in the reader's zone, e.g. "ter. 24 nov. 10:02"
    local: Callable[[str, str], str]  # in a given zone, e.g. ("…", "America/Manaus") -> "09:02"
    money: Callable[[str], str] = str  # an amount ("150.00") as the reader writes it: "R$ 150,00"


@dataclass(frozen=True, slots=True)
class Line:
    """One timeline event as read: when (reader's zone), the debtor's clock then, what happened."""

    when: str
    debtor_time: str  # "" when the debtor's zone is unknown
    text: str
    kind: str


def show_phone(number: str) -> str:
    """An E.164 number grouped as people write it: ``+55 11 98765-4321``, ``+1 212 555 0100``."""
    if re.fullmatch(r"\+55\d{10,11}", number):
        area, rest = number[3:5], number[5:]
        return f"+55 {area} {rest[:-4]}-{rest[-4:]}"
    if re.fullmatch(r"\+1\d{10}", number):
        return f"+1 {number[2:5]} {number[5:8]} {number[8:]}"
    return number


def place_words(region: str | None) -> str:
    """A state as people name it: ``Amazonas (AM)``; the code alone when we have no name."""
    if not region:
        return ""
    name = BR_STATES.get(region.upper())
    return f"{name} ({region.upper()})" if name else region


def reason_words(reason: str, _: Gettext, region: str | None = None) -> str:
    """Why a contact was held back (``domain.Reason``), in words."""
    match reason:
        case "outside_calling_hours":
            place = place_words(region)
            if place:
                return _("outside the calling hours allowed for {place}").format(place=place)
            return _("outside the calling hours")
        case "holiday":
            return _("a holiday where the debtor is")
        case "before_min_days_past_due":
            return _("too soon after the due date for a call")
        case "no_consent":
            return _("no consent for this channel")
        case "work_number_not_provided":
            return _("a work number the debtor did not give us")
        case "attempt_cap":
            return _("the limit of attempts was reached")
        case "recent_conversation":
            return _("we spoke with the debtor recently (a quiet week follows a conversation)")
        case "suppressed":
            return _("the number is on the do-not-contact list")
        case "account_closed":
            return _("the account is not open (paid, disputed or closed)")
        case "account_gone":
            return _("the account or this phone is no longer loaded")
        case _:
            return reason


def outcome_words(outcome: str, _: Gettext) -> str:
    """How an attempt ended (``domain.Outcome``), in words."""
    words = {
        "placed": _("in progress"),
        "answered_verified": _("answered, debtor verified"),
        "answered_unverified": _("answered, not verified"),
        "third_party": _("answered by someone else"),
        "voicemail": _("answering machine"),
        "no_answer": _("no answer"),
        "busy": _("busy"),
        "congestion": _("network congestion"),
        "rejected": _("rejected"),
        "invalid_number": _("the number does not exist"),
        "failed": _("failed"),
        "wrong_number": _("wrong number"),
        "sms_sent": _("SMS sent"),
        "sms_delivered": _("SMS delivered"),
        "sms_failed": _("SMS failed"),
        "unknown": _("outcome unknown"),
        "skipped": _("step skipped"),
    }
    return words.get(outcome, outcome)


def status_words(status: str, _: Gettext) -> str:
    """An account's status (``domain.AccountStatus``), in words."""
    words = {
        "open": _("open"),
        "agreement": _("in agreement"),
        "paid": _("paid"),
        "disputed": _("disputed"),
        "closed": _("closed"),
    }
    return words.get(status, status)


def suppression_reason_words(reason: str, _: Gettext) -> str:
    """Why a number is on the do-not-contact list (``domain.SuppressionReason``)."""
    words = {
        "opt_out": _("the debtor asked us to stop"),
        "wrong_number": _("wrong number"),
        "dispute": _("dispute"),
        "do_not_call": _("do-not-call registry"),
        "invalid_number": _("the number does not exist"),
    }
    return words.get(reason, reason)


def channel_words(channel: str, _: Gettext) -> str:
    """A suppression's channel: calls, SMS or every channel (``*``)."""
    words = {"voice": _("calls"), "sms": _("SMS"), "*": _("every channel"), "": _("every channel")}
    return words.get(channel, channel)


def level_words(level: str, _: Gettext) -> str:
    """A message's disclosure level."""
    words = {"none": _("greeting"), "limited": _("limited"), "full": _("full")}
    return words.get(level, level)


def _note_words(note: str, _: Gettext) -> str:
    """The planner's notes (English in the event) in the reader's language."""
    words = {
        "next step of the régua": _("the next step of the régua"),
        "held by the rules": _("held back by the rules"),
        "no phone may ever take this step": _("no phone may ever take this step"),
        "no phone may receive the fallback SMS": _("no phone may receive the fallback SMS"),
        "régua finished": _("the régua is over"),
        "no phones": _("the account has no phones"),
        "paid": _("the account is paid"),
        "disputed": _("the account is disputed"),
        "closed": _("the account is closed"),
        "this phone's daily cap was used by another campaign": _(
            "another campaign used this phone's daily limit"
        ),
        "reclaimed": _("taken over from a worker that stopped"),
        "reclaimed after a worker died; outcome from the PBX": _(
            "taken over from a worker that stopped; the outcome came from the PBX"
        ),
        "reclaimed after a worker died; outcome unknown": _(
            "taken over from a worker that stopped; the outcome is unknown"
        ),
    }
    return words.get(note, note)


def _s(event: Mapping[str, Any], key: str) -> str:
    value = event.get(key)
    return "" if value is None else str(value)


def action_words(action: str, data: Mapping[str, Any], _: Gettext) -> str:
    """What the person asked for in the IVR."""
    match action:
        case "payment_link":
            return _("asked for the payment link by SMS")
        case "callback":
            window = _s(data, "window")
            if window:
                return _("asked for a callback from an agent, {window} their time").format(
                    window=window.replace("-", "–")
                )
            return _("asked for a callback from an agent")
        case "opt_out":
            if _s(data, "channel") == "sms":
                return _("asked us to stop sending SMS")
            return _("asked us to stop calling")
        case "wrong_number":
            return _("said this number is not the debtor's")
        case _:
            return _("asked for “{action}”").format(action=action)


def _next_time(event: Mapping[str, Any], key: str, f: Formats, zone: str | None, _: Gettext) -> str:
    at = _s(event, key)
    if not at:
        return ""
    shown = f.when(at)
    if zone:
        shown += " " + _("({time} debtor's time)").format(time=f.local(at, zone))
    return shown


def _decision(event: Mapping[str, Any], _: Gettext, f: Formats, zone: str | None) -> str:
    phone = show_phone(_s(event, "phone"))
    sms = _s(event, "channel") == "sms"
    if event.get("allowed"):
        if sms:
            return _("the rules allow an SMS to {phone} now").format(phone=phone)
        return _("the rules allow a call to {phone} now").format(phone=phone)
    region = _s(event, "region") or None
    reasons = event.get("reasons") or []
    why = ", ".join(reason_words(str(r), _, region) for r in reasons) or _("held back")
    if sms:
        text = _("no SMS to {phone} — {why}").format(phone=phone, why=why)
    else:
        text = _("we did not call {phone} — {why}").format(phone=phone, why=why)
    nxt = _next_time(event, "not_before", f, zone, _)
    if nxt:
        text += "; " + _("next time allowed {when}").format(when=nxt)
    else:
        text += "; " + _("no time will allow it: a person must act")
    note = _s(event, "note")
    if note:
        text += "; " + _note_words(note, _)
    return text


def _attempt(event: Mapping[str, Any], _: Gettext) -> str:
    phone = show_phone(_s(event, "phone"))
    outcome = _s(event, "outcome")
    if _s(event, "channel") == "sms":
        level = level_words(_s(event, "level") or "limited", _)
        match outcome:
            case "sms_sent" | "sms_delivered":
                return _("SMS sent to {phone} ({level})").format(phone=phone, level=level)
            case "sms_failed":
                return _("SMS to {phone} not sent: {error}").format(
                    phone=phone, error=_s(event, "error") or _("refused")
                )
            case _:
                return _("SMS to {phone}: {outcome}").format(phone=phone, outcome=outcome_words(outcome, _))
    text = _("call to {phone}: {outcome}").format(phone=phone, outcome=outcome_words(outcome, _))
    duration = event.get("duration_s")
    if isinstance(duration, (int, float)) and duration > 0:
        text += " " + _("({seconds} s)").format(seconds=round(duration))
    return text


def _payment(event: Mapping[str, Any], _: Gettext, f: Formats) -> str:
    amount, balance = f.money(_s(event, "amount")), f.money(_s(event, "balance"))
    who = _s(event, "provider") + (" (SANDBOX)" if event.get("sandbox") else "")
    if _s(event, "kind") == "refund":
        text = _("refund of {amount} through {provider}: {balance} open again").format(
            amount=amount, provider=who, balance=balance
        )
    elif _s(event, "standing") == "partial":
        text = _("partial payment of {amount} through {provider}; {balance} still open").format(
            amount=amount, provider=who, balance=balance
        )
    else:
        text = _("payment of {amount} received through {provider}").format(amount=amount, provider=who)
    if _s(event, "overpaid"):
        text += " — " + _("{amount} more than the debt: check it").format(
            amount=f.money(_s(event, "overpaid"))
        )
    step = _s(event, "step")
    if step and _s(event, "kind") == "payment":
        text += " — " + _("credited to step {step} ({channel})").format(
            step=step, channel=channel_words(_s(event, "channel"), _)
        )
    return text


def _sentence(event: Mapping[str, Any], _: Gettext, f: Formats, zone: str | None) -> str:
    kind = _s(event, "kind")
    match kind:
        case "decision":
            return _decision(event, _, f, zone)
        case "scheduled":
            text = _("next look at this account {when}").format(when=_next_time(event, "next_at", f, zone, _))
            note = _s(event, "note")
            return text + (f" — {_note_words(note, _)}" if note else "")
        case "step_skipped":
            return _("step {step} skipped: {note}").format(
                step=_s(event, "step"), note=_note_words(_s(event, "note"), _)
            )
        case "done":
            return _("nothing more to do for this account: {note}").format(
                note=_note_words(_s(event, "note"), _)
            )
        case "attempt":
            return _attempt(event, _)
        case "not_placed":
            phone = show_phone(_s(event, "phone"))
            if _s(event, "channel") == "sms":
                text = _("the SMS to {phone} could not be sent now ({error}); we try again later")
            else:
                text = _("the call to {phone} could not be placed ({error}); we try again later")
            return text.format(phone=phone, error=_s(event, "error"))
        case "suppressed":
            return _("{phone} put on the do-not-contact list for {channel}: {reason}").format(
                phone=show_phone(_s(event, "phone")),
                channel=channel_words(_s(event, "channel"), _),
                reason=suppression_reason_words(_s(event, "reason"), _),
            )
        case "action" | "ivr_action":
            return action_words(_s(event, "action"), event, _)
        case "fallback_sms_due":
            return _("the call did not reach the debtor: the limited SMS goes next")
        case "sms":
            level = level_words(_s(event, "level"), _)
            phone = show_phone(_s(event, "phone"))
            if _s(event, "purpose") == "payment_link":
                return _("payment link sent by SMS to {phone} ({level})").format(phone=phone, level=level)
            return _("SMS sent to {phone} ({level})").format(phone=phone, level=level)
        case "sms_failed":
            error = _s(event, "error") or _("refused")
            if _s(event, "purpose") == "payment_link":
                return _("the payment link SMS was not sent: {error}").format(error=error)
            return _("SMS not sent: {error}").format(error=error)
        case "sms_receipt":
            status = _s(event, "status")
            if status == "delivered":
                return _("the operator confirmed the SMS was delivered")
            if status == "failed":
                error = _s(event, "error")
                text = _("the operator says the SMS was not delivered")
                return text + (f": {error}" if error else "")
            return _("SMS status from the operator: {status}").format(status=status)
        case "reconciled":
            return _("attempt settled after a worker stopped: {outcome}").format(
                outcome=outcome_words(_s(event, "outcome"), _)
            )
        case "status":
            text = _("account marked {to} (was {old}) by {actor}").format(
                to=status_words(_s(event, "to"), _),
                old=status_words(_s(event, "from"), _),
                actor=_s(event, "actor").removeprefix("user:"),
            )
            note = _s(event, "note")
            return text + (f": “{note}”" if note else "")
        case "payment" | "refund":
            return _payment(event, _, f)
        case "prompt":
            return _("played “{text}” ({level} message)").format(
                text=_s(event, "text"), level=level_words(_s(event, "level"), _)
            )
        case "keys":
            return _("the person pressed {keys}").format(keys=_s(event, "keys") or "—")
        case "verification":
            if _s(event, "result") == "passed":
                return _("the debtor passed verification")
            return _("verification failed")
        case "hangup":
            return _("the person hung up")
        case "ivr_end":
            text = _("the IVR ended: {outcome}").format(outcome=outcome_words(_s(event, "outcome"), _))
            return text
        case _:
            return _("event “{kind}” recorded").format(kind=kind or "?")


def describe(event: Mapping[str, Any], _: Gettext, formats: Formats, zone: str | None = None) -> Line:
    """One timeline event as a line: when (in the reader's zone), the debtor's local time
    then (``zone``: the debtor's; a decision's own first zone wins), and the sentence."""
    zones = event.get("time_zones")
    if isinstance(zones, Sequence) and not isinstance(zones, str) and zones:
        zone = str(zones[0])
    at = _s(event, "at")
    when = formats.when(at) if at else "—"
    debtor = formats.local(at, zone) if at and zone else ""
    return Line(when, debtor, _sentence(event, _, formats, zone), _s(event, "kind"))
