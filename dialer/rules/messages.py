"""Texts sent to people, rendered from the configured templates.

Only the *limited* message may reach someone who has not proved who they are: the
debtor's name, a contact person, a callback number (and optionally a business name that
does not reveal collection). ``render_limited`` fills exactly those fields and nothing
else, whatever the template asks for (the config validator already refused templates
that ask for more).
"""

from __future__ import annotations

from collections.abc import Mapping

from dialer.domain import Account
from dialer.rules.disclosure import LIMITED_FIELDS

LANGUAGE_BY_PACK = {"BR": "pt-BR", "US": "en"}


class _Strict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise KeyError(f"placeholder {{{key}}} is not allowed here")


def limited_fields(account: Account, company: object, link: str = "") -> dict[str, str]:
    contact_name = str(getattr(company, "contact_name", ""))
    callback = str(getattr(company, "callback_number", ""))
    return {
        "name": account.name,
        "contact_name": contact_name,
        "callback_number": callback,
        "callback_digits": " ".join(c for c in callback if c.isdigit()),
        "business_name": str(getattr(company, "business_name", "")),
        "salutation": "",
        "link": link,  # a signed link to the debtor's page: it shows nothing before the second factor
    }


def render_limited(
    templates: Mapping[str, str], language: str, account: Account, company: object, *, link: str = ""
) -> str:
    """The limited message in ``language`` (falls back to pt-BR, then any)."""
    template = templates.get(language) or templates.get("pt-BR") or next(iter(templates.values()))
    fields = {k: v for k, v in limited_fields(account, company, link).items() if k in LIMITED_FIELDS}
    return template.format_map(_Strict(fields))
