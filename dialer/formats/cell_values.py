"""The single cells of a campaign (or suppression) file: yes/no, dates, amounts, phones.

Each parser takes the cell's text and returns the value, or raises ValueError with the
reason (never quoting more of the cell than the caller chooses to).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from dialer.domain import PhoneType
from dialer.errors import UnsupportedNumber
from dialer.rules.local_time import BR_DDD, number_country

MAX_AMOUNT = Decimal("1000000000")

_TRUE = frozenset({"true", "t", "sim", "s", "yes", "y", "1", "verdadeiro", "v", "x"})
_FALSE = frozenset({"false", "f", "nao", "não", "n", "no", "0", "falso"})
_DIGITS = re.compile(r"\D+")


def parse_bool(text: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise ValueError("is not true/false, sim/não, yes/no or 1/0")


_DMY = re.compile(r"(\d\d)/(\d\d)/(\d{4})")


def parse_date(text: str) -> date:
    t = text.strip()
    m = _DMY.fullmatch(t)
    if m:  # the common Brazilian spreadsheet form, fast
        try:
            d = date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
        except ValueError:
            raise ValueError("is not a real calendar date") from None
        if not 2000 <= d.year <= 2100:
            raise ValueError("year out of range (2000-2100)")
        return d
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            d = date.fromisoformat(t)
        elif re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", t):
            day, month, year = (int(p) for p in t.split("/"))
            d = date(year, month, day)
        else:
            raise ValueError("is not a date like 2026-11-13 or 13/11/2026")
    except ValueError as exc:
        if "is not a date" in str(exc):
            raise
        raise ValueError("is not a real calendar date") from None
    if not 2000 <= d.year <= 2100:
        raise ValueError("year out of range (2000-2100)")
    return d


_SIMPLE_AMOUNT = re.compile(r"(\d{1,9})(?:[.,](\d{1,2}))?")


def parse_amount(text: str) -> Decimal:
    m = _SIMPLE_AMOUNT.fullmatch(text)
    if m:  # "1234", "1234,5", "1234.56": no thousands separators, fast
        value = Decimal(f"{m.group(1)}.{(m.group(2) or '0').ljust(2, '0')}")
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value
    t = text.strip().replace("R$", "").replace("US$", "").replace("$", "").replace(" ", "")
    t = t.replace("\u00a0", "")
    if not t:
        raise ValueError("is empty")
    if t.startswith("-"):
        raise ValueError("is negative")
    if not re.fullmatch(r"[\d.,]+", t):
        raise ValueError("is not a number like 1234.56 or 1.234,56")
    if "," in t and "." in t:
        if t.rfind(",") > t.rfind("."):  # 1.234,56
            t = t.replace(".", "").replace(",", ".")
        else:  # 1,234.56
            t = t.replace(",", "")
    elif "," in t:
        if t.count(",") > 1:
            raise ValueError("has more than one decimal comma")
        t = t.replace(",", ".")
    elif t.count(".") > 1:
        if not re.fullmatch(r"\d{1,3}(\.\d{3})+", t):
            raise ValueError("is not a number like 1234.56 or 1.234,56")
        t = t.replace(".", "")
    try:
        value = Decimal(t)
    except InvalidOperation:
        raise ValueError("is not a number like 1234.56 or 1.234,56") from None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("has more than two decimals (ambiguous: write 1234.00 or 1.234,00)")
    if value <= 0:
        raise ValueError("must be greater than zero")
    if value >= MAX_AMOUNT:
        raise ValueError("is absurdly large")
    return value.quantize(Decimal("0.01"))


def normalise_phone(text: str) -> tuple[str, PhoneType]:
    """Any human format -> (E.164, type from the number). Default region BR.

    Brazilian numbers take a fast path over the national numbering plan; anything else
    goes through ``phonenumbers``. Raises ValueError with the reason.
    """
    t = text.strip()
    if not t:
        raise ValueError("is empty")
    digits = _DIGITS.sub("", t)
    if t.startswith("00"):  # an international prefix written the European way
        t, digits = "+" + digits[2:], digits[2:]
    if t.startswith("+55") and len(digits) in (12, 13) and not re.search(r"[^\d\s().+\-]", t):
        t, digits = digits[2:], digits[2:]  # a Brazilian number in international form
    if not t.startswith("+"):
        national = digits.lstrip("0") if digits.startswith("0") else digits
        if len(national) in (12, 13) and national.startswith("55") and len(digits) == len(national):
            national = national[2:]
        if len(national) in (10, 11) and national[:2] in BR_DDD:
            subscriber = national[2:]
            if len(subscriber) == 9:
                if subscriber[0] != "9":
                    raise ValueError("is not a valid Brazilian mobile number (must start with 9)")
                return "+55" + national, PhoneType.MOBILE
            if subscriber[0] in "2345":
                return "+55" + national, PhoneType.HOME
            raise ValueError("is not a valid Brazilian number")
    import phonenumbers

    try:
        parsed = phonenumbers.parse(t, "BR")
    except phonenumbers.NumberParseException:
        raise ValueError("is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("is not a valid phone number")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    try:
        number_country(e164)
    except UnsupportedNumber:
        raise ValueError("is in a country with no rule pack (Régua contacts BR and US)") from None
    kind = phonenumbers.number_type(parsed)
    if kind == phonenumbers.PhoneNumberType.FIXED_LINE:
        return e164, PhoneType.HOME
    if kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        return e164, PhoneType.MOBILE  # the stricter assumption (TCPA consent)
    raise ValueError("is not a personal line (toll-free, premium or VoIP service)")


def parse_choice(cls: type[StrEnum], text: str, column: str, choices: tuple[StrEnum, ...] = ()) -> object:
    t = text.strip().lower().replace("á", "a")
    members: tuple[StrEnum, ...] = choices or tuple(cls)
    try:
        value = cls(t)
    except ValueError:
        value = None
    if value is None or value not in members:
        allowed = ", ".join(m.value for m in members)
        raise ValueError(f"must be one of {allowed}") from None
    return value


# ------------------------------------------------------------------ the reader
