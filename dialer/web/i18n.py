"""The console's languages: Portuguese (Brazil) by default, English.

Strings are written in English in the templates and the code (``_("Campaigns")``); the
Portuguese catalogue is ``locale/pt_BR/LC_MESSAGES/messages.po``, read with Babel when the
service starts (no compiled files to keep). Dates, times and money are formatted by Babel
for the person's language, times in their zone.
"""

from __future__ import annotations

import gettext
import io
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"pt-BR": "pt_BR", "en": "en"}
DEFAULT = "pt-BR"


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalogue of ``language`` (English: the strings as written)."""
    locale = LANGUAGES.get(language, LANGUAGES[DEFAULT])
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def pick(language: str | None) -> str:
    return language if language in LANGUAGES else DEFAULT


def when(moment: datetime | str | None, language: str, zone: str, fmt: str = "medium") -> str:
    """An instant as the person reads it: in their zone and their language."""
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        try:
            instant = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    else:
        instant = moment
    return format_datetime(instant.astimezone(ZoneInfo(zone)), fmt, locale=LANGUAGES[pick(language)])


def money(amount: Decimal | float | str, currency: str, language: str) -> str:
    return format_currency(Decimal(str(amount)), currency, locale=LANGUAGES[pick(language)])


def number(value: float | int, language: str) -> str:
    return format_decimal(value, locale=LANGUAGES[pick(language)])
