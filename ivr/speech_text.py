"""Values as words, per language, for the text-to-speech engine (num2words underneath).

money_words(Decimal("1234.56"), "BRL", "pt-BR")
    -> "mil duzentos e trinta e quatro reais e cinquenta e seis centavos"
date_words(date(2026, 11, 13), "pt-BR") -> "treze de novembro de dois mil e vinte e seis"
digits_words("0800", "pt-BR") -> "zero oito zero zero"
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
