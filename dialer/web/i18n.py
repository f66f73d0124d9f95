"""The console's languages: Portuguese (Brazil) by default, English.

Strings are written in English in the templates and the code (``_("Campaigns")``); the
Portuguese catalogue is every ``.po`` file in ``locale/pt_BR/LC_MESSAGES/`` (one per part
of the console), read with Babel when the service starts (no compiled files to keep). Dates, times and money are formatted by Babel
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
    files = sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po"))
    if not files:
        return gettext.NullTranslations()
    merged: gettext.NullTranslations | None = None
    for po in files:
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        part = gettext.GNUTranslations(buf)
        if merged is None:
            merged = part
        else:
            merged.add_fallback(part)
    assert merged is not None
    return merged


def catalogue_ids(language: str = DEFAULT) -> set[str]:
    """Every string the catalogues of ``language`` translate (for the completeness test)."""
    locale = LANGUAGES.get(language, LANGUAGES[DEFAULT])
    ids: set[str] = set()
    for po in (LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po"):
        with po.open("rb") as fh:
            ids |= {str(m.id) for m in read_po(fh, locale=locale) if m.id and m.string}
    return ids


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
