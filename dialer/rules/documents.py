"""Brazilian taxpayer numbers: CPF (people) and CNPJ (companies), check digits, pure.

A CPF has 11 digits, the last two check digits (mod 11, weights 10..2 then 11..2). A CNPJ
has 14 characters, the last two check digits over the first twelve with weights
5..2,9..2 then 6..2,9..2. From July 2026 the Receita Federal issues *alphanumeric* CNPJs
(IN RFB 2.229/2024): the first twelve may be letters A-Z, each worth its ASCII code minus
48 (so the digits keep their values), the check digits stay numeric. Numbers made of one
repeated digit pass the arithmetic but are not issued: refused.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s.\-/]")
_CPF = re.compile(r"^\d{11}$")
_CNPJ = re.compile(r"^[0-9A-Z]{12}\d{2}$")


def _check(values: list[int], weights: list[int]) -> int:
    rest = sum(v * w for v, w in zip(values, weights, strict=True)) % 11
    return 0 if rest < 2 else 11 - rest


def cpf_valid(digits: str) -> bool:
    if not _CPF.fullmatch(digits) or len(set(digits)) == 1:
        return False
    values = [int(c) for c in digits]
    first = _check(values[:9], list(range(10, 1, -1)))
    second = _check(values[:10], list(range(11, 1, -1)))
    return values[9] == first and values[10] == second


_W1 = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
_W2 = [6, *_W1]


def cnpj_valid(text: str) -> bool:
    if not _CNPJ.fullmatch(text) or len(set(text)) == 1:
        return False
    values = [ord(c) - 48 for c in text]
    first = _check(values[:12], _W1)
    second = _check(values[:13], _W2)
    return values[12] == first and values[13] == second


def normalise_document(text: str) -> str:
    """A CPF (11 digits) or a CNPJ (14 characters) without its punctuation, upper case;
    raises ValueError saying what is wrong (never quoting the number)."""
    value = _SEPARATORS.sub("", text.strip()).upper()
    if len(value) == 11:
        if not value.isdigit():
            raise ValueError("a CPF has 11 digits")
        if not cpf_valid(value):
            raise ValueError("is not a valid CPF (check digits do not match)")
        return value
    if len(value) == 14:
        if not cnpj_valid(value):
            raise ValueError("is not a valid CNPJ (check digits do not match)")
        return value
    raise ValueError("must be a CPF (11 digits) or a CNPJ (14 characters)")


def document_kind(value: str) -> str:
    """``cpf`` or ``cnpj`` for a normalised number."""
    return "cpf" if len(value) == 11 else "cnpj"


def with_check_digits(base: str) -> str:
    """The full number for a CPF base (9 digits) or a CNPJ base (12 characters): for tests
    and the sandbox's made-up debtors."""
    if len(base) == 9 and base.isdigit():
        values = [int(c) for c in base]
        values.append(_check(values, list(range(10, 1, -1))))
        values.append(_check(values, list(range(11, 1, -1))))
        return "".join(str(v) for v in values)
    if len(base) == 12 and re.fullmatch(r"[0-9A-Z]{12}", base):
        values = [ord(c) - 48 for c in base]
        d1 = _check(values, _W1)
        d2 = _check([*values, d1], _W2)
        return f"{base}{d1}{d2}"
    raise ValueError("a CPF base has 9 digits, a CNPJ base 12 characters")
