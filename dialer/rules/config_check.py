"""What the law forbids a configuration to do — pure: settings in, ``ConfigError`` out.

A company may make any rule stricter; a change that makes one looser than a rule pack's
legal floor (calling hours, holidays, the quiet week after a conversation, Reg F's 7-in-7)
is refused with the key and the reason, and so is a limited message that says more than
a limited message may, or a cadence that would text anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dialer.domain import Channel
from dialer.errors import ConfigError
from dialer.rules import calling_hours
from dialer.rules.disclosure import Level, fold, level_problems, limited_problems
from dialer.rules.documents import cnpj_valid, normalise_document
from dialer.settings import Settings

#: What a company may not loosen, by pack (hours are in calling_hours.LEGAL_HOURS).
FLOORS: Mapping[str, Mapping[str, Any]] = {
    "BR": {
        "observe_holidays": (True, "Brazilian state laws forbid calls on holidays"),
        "recent_conversation_days": (7, "compliance.md: no call for 7 days after a conversation"),
    },
    "US": {
        "voice_per_account_per_7_days": (7, "Reg F 1006.14(b)(2): at most 7 calls in 7 days"),
        "recent_conversation_days": (7, "Reg F 1006.14(b)(2)(ii): 7 days after a conversation"),
    },
}


def check_settings(
    settings: Settings, where: Callable[[tuple[str, ...]], str] = lambda loc: "config"
) -> None:
    """Cross-field checks: legal floors, hours, templates, cadence. Raises ConfigError."""

    def fail(loc: tuple[str, ...], reason: str) -> None:
        raise ConfigError(where(loc), ".".join(loc), reason)

    for country in ("BR", "US"):
        if country not in settings.packs:
            fail(("packs", country), "the rule pack is missing")
    for country, pack in settings.packs.items():
        if country not in FLOORS:
            fail(("packs", country), "unknown rule pack (Régua has BR and US)")
        floor = FLOORS[country]
        if "observe_holidays" in floor and not pack.observe_holidays:
            fail(
                ("packs", country, "observe_holidays"),
                f"may not be turned off: {floor['observe_holidays'][1]}",
            )
        minimum, why = floor.get("recent_conversation_days", (0, ""))
        if pack.recent_conversation_days < minimum:
            fail(
                ("packs", country, "recent_conversation_days"),
                f"{pack.recent_conversation_days} is looser than the legal floor {minimum} ({why})",
            )
        if "voice_per_account_per_7_days" in floor:
            limit, why = floor["voice_per_account_per_7_days"]
            if pack.caps.voice_per_account_per_7_days > limit:
                fail(
                    ("packs", country, "caps", "voice_per_account_per_7_days"),
                    f"{pack.caps.voice_per_account_per_7_days} exceeds {limit} ({why})",
                )
        if "default" not in pack.hours:
            fail(("packs", country, "hours", "default"), "every pack needs default hours")
        for state, hours in pack.hours.items():
            law = calling_hours.legal_hours(country, None if state == "default" else state)
            for channel in Channel:
                looser = calling_hours.looser_days(
                    hours.for_channel(channel).windows(),
                    law.for_channel(channel),
                )
                if looser:
                    fail(
                        ("packs", country, "hours", state, channel.value),
                        "looser than the law ("
                        + law.source
                        + "): "
                        + "; ".join(looser)
                        + ". You may only narrow calling hours.",
                    )
    for place, templates in (
        (("limited_message", "voice"), settings.limited_message.voice),
        (("limited_message", "sms"), settings.limited_message.sms),
        (("negotiation", "reminder_sms"), settings.negotiation.reminder_sms),  # anyone may read an SMS
    ):
        if not templates:
            fail(place, "needs a template per language")
        for lang, text in templates.items():
            problems = limited_problems(text, (*settings.company.collection_names, settings.company.name))
            if problems:
                fail((*place, lang), "; ".join(problems))
    texts = (*settings.limited_message.sms.values(), *settings.negotiation.reminder_sms.values())
    if any("{link}" in t for t in texts):  # the link is in a limited SMS: its address must be limited too
        for place, url in (
            (
                ("company", "payment_url_template"),
                settings.company.payment_url_template.replace("{token}", ""),
            ),
            (("service", "public_url"), settings.service.public_url),
        ):
            problems = level_problems(
                url.replace("/", " / ").replace(".", " . ").replace("{", "").replace("}", ""),
                Level.LIMITED,
                (*settings.company.collection_names, settings.company.name),
                what="address",
            )
            if url and problems:
                fail(place, "goes in a limited SMS ({link}) and " + "; ".join(problems))
    if settings.company.cnpj and not cnpj_valid(normalise_document(settings.company.cnpj)):
        fail(("company", "cnpj"), f"{settings.company.cnpj!r} is not a valid CNPJ (check digits)")
    if settings.negotiation.bands and not settings.company.cnpj and settings.negotiation.enabled:
        fail(
            ("company", "cnpj"),
            "offers are shown on a collection page, which must name the creditor and its CNPJ "
            "(CDC art. 42-A): set company.cnpj (and company.legal_name)",
        )
    if settings.company.business_name:
        folded = fold(settings.company.business_name)
        for name in settings.company.collection_names:
            if fold(name) in folded:
                fail(("company", "business_name"), "reveals collection; limited messages use it")
    for method, steps in settings.cadence.items():
        if method not in ("boleto", "card", "crediario"):
            fail(("cadence", method), "unknown payment method (boleto, card, crediario)")
        seen: set[str] = set()
        for i, step in enumerate(steps):
            loc = ("cadence", method, str(i))
            if step.id in seen:
                fail((*loc, "id"), f"step id {step.id!r} is used twice")
            seen.add(step.id)
            if (step.offset_days is None) == (step.trigger is None):
                fail(loc, "a step needs exactly one of offset_days or trigger")
            if step.channel == "sms" and step.template != "limited":
                fail(
                    (*loc, "template"),
                    "an SMS nobody asked for carries the limited message only: "
                    'use template = "limited" (edit its text in [limited_message.sms])',
                )
            if step.channel == "voice" and step.template != "ivr":
                fail((*loc, "template"), 'a call runs the IVR: use template = "ivr"')
    if settings.service.telephony == "asterisk" and not settings.company.caller_id:
        fail(
            ("company", "caller_id"),
            "real calls must show a caller ID (Lei CE 16.836/2019; Anatel's "
            "Origem Verificada): set the number callers see",
        )
