"""Values as words, per language, for the text-to-speech engine (num2words underneath).

money_words(Decimal("1234.56"), "BRL", "pt-BR")
    -> "mil duzentos e trinta e quatro reais e cinquenta e seis centavos"
date_words(date(2026, 11, 13), "pt-BR") -> "treze de novembro de dois mil e vinte e seis"
digits_words("0800", "pt-BR") -> "zero oito zero zero"
hour_range_words(9 * 3600, 12 * 3600, "pt-BR") -> "das nove ao meio-dia"
hour_range_words(15 * 3600, 18 * 3600, "en") -> "from three to six p.m."
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from num2words import num2words

_PT_MONTHS = (
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
)
_EN_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_PT_DIGITS = ("zero", "um", "dois", "três", "quatro", "cinco", "seis", "sete", "oito", "nove")
_EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_CURRENCY = {
    # language family -> currency -> (singular, plural, cent singular, cent plural)
    "pt": {
        "BRL": ("real", "reais", "centavo", "centavos"),
        "USD": ("dólar", "dólares", "centavo", "centavos"),
    },
    "en": {"BRL": ("real", "reais", "centavo", "centavos"), "USD": ("dollar", "dollars", "cent", "cents")},
}


def _family(language: str) -> str:
    return "pt" if language.lower().startswith("pt") else "en"


def number_words(n: int, language: str) -> str:
    """A whole number in words, without num2words' commas (and, in English, its "and")."""
    if _family(language) == "pt":
        return str(num2words(n, lang="pt_BR")).replace(",", "")
    return str(num2words(n, lang="en")).replace(",", "").replace(" and ", " ")


def money_words(amount: Decimal, currency: str, language: str) -> str:
    family = _family(language)
    one, many, cent_one, cent_many = _CURRENCY[family].get(currency, _CURRENCY[family]["BRL"])
    value = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    whole = int(value)
    cents = int((value - whole) * 100)
    parts = []
    if whole:
        unit = one if whole == 1 else many
        if family == "pt" and whole >= 1_000_000 and whole % 1_000_000 == 0:
            unit = "de " + many  # "um milhão de reais"
        parts.append(f"{number_words(whole, language)} {unit}")
    if cents or not whole:
        parts.append(f"{number_words(cents, language)} {cent_one if cents == 1 else cent_many}")
    return (" e " if family == "pt" else " and ").join(parts)


def date_words(d: date, language: str) -> str:
    if _family(language) == "pt":
        day = "primeiro" if d.day == 1 else number_words(d.day, language)
        return f"{day} de {_PT_MONTHS[d.month - 1]} de {number_words(d.year, language)}"
    ordinal = str(num2words(d.day, lang="en", to="ordinal"))
    year = str(num2words(d.year, lang="en", to="year")).replace(",", "")
    return f"{_EN_MONTHS[d.month - 1]} {ordinal}, {year}"


def digits_words(digits: str, language: str) -> str:
    """Digit by digit ("0800 123" -> "zero oito zero zero, um dois três"): how numbers are read out."""
    names = _PT_DIGITS if _family(language) == "pt" else _EN_DIGITS
    groups = [g for g in digits.replace("-", " ").split() if g]
    spoken = [" ".join(names[int(c)] for c in g if c.isdigit()) for g in groups]
    return ", ".join(s for s in spoken if s)


def _pt_hour(h: int) -> str:
    """An hour of the clock, feminine as Portuguese counts hours ("uma", "vinte e duas")."""
    words = number_words(h, "pt-BR")
    for masculine, feminine in (("um", "uma"), ("dois", "duas")):
        if words == masculine or words.endswith(" " + masculine):
            return words[: -len(masculine)] + feminine
    return words


def _pt_time(secs: int) -> tuple[str, str]:
    """(the words, their article's gender and number: "m" meio-dia, "f" meia-noite / uma, "p" the rest)."""
    h, m = secs // 3600 % 24, secs % 3600 // 60
    if m == 0 and h == 12:
        return "meio-dia", "m"
    if m == 0 and h == 0:
        return "meia-noite", "f"
    words = _pt_hour(h)
    if m:
        words += " e meia" if m == 30 else f" e {number_words(m, 'pt-BR')}"
    return words, "f" if h == 1 else "p"


def _en_time(secs: int) -> tuple[str, str]:
    """(the words, "a.m." / "p.m." / "" for noon and midnight), on a 12-hour clock."""
    h, m = secs // 3600 % 24, secs % 3600 // 60
    if m == 0 and h in (0, 12):
        return ("midnight" if h == 0 else "noon"), ""
    words = number_words(h % 12 or 12, "en")
    if m:
        words += f" oh {number_words(m, 'en')}" if m < 10 else f" {number_words(m, 'en')}"
    return words, "a.m." if h < 12 else "p.m."


def hour_range_words(start_s: int, end_s: int, language: str) -> str:
    """An hour range of the local clock, as a sentence says it: "das nove ao meio-dia",
    "do meio-dia às quinze horas"; "from nine to noon", "from eleven a.m. to two p.m."."""
    if _family(language) == "pt":
        start, g1 = _pt_time(start_s)
        end, g2 = _pt_time(end_s)
        since = {"m": "do", "f": "da", "p": "das"}[g1]
        until = {"m": "ao", "f": "à", "p": "às"}[g2]
        unit = " horas" if g2 == "p" else (" hora" if end == "uma" else "")
        return f"{since} {start} {until} {end}{unit}"
    start, am1 = _en_time(start_s)
    end, am2 = _en_time(end_s)
    if am1 and am2 and am1 != am2:
        start += f" {am1}"
    return f"from {start} to {end}" + (f" {am2}" if am2 else "")
