"""Disclosure levels and the check that keeps a *limited* message limited.

``none``    a greeting; says nothing about anybody.
``limited`` the debtor's name, a request to call back, a natural person's name to ask
            for, a callback number (optionally a salutation and a business name that
            does not reveal collection). Never a debt, an amount, a due date or a
            collector's name (Reg F 1006.2(j); CDC art. 42; LGPD).
``full``    amount, due date, company, payment options: only to a party verified on
            this call (or an SMS a verified debtor asked for).
"""

from __future__ import annotations

import re
import string
import unicodedata
from enum import StrEnum


class Level(StrEnum):
    NONE = "none"
    LIMITED = "limited"
    FULL = "full"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Level.NONE: 0, Level.LIMITED: 1, Level.FULL: 2}

#: Placeholders a limited template may use.
LIMITED_FIELDS = frozenset(
    {"name", "contact_name", "callback_number", "business_name", "salutation", "callback_digits", "link"}
)

#: Word stems that reveal a debt or collection, in Portuguese and English (accents folded).
FORBIDDEN_STEMS = (
    "divid",
    "debit",
    "debt",
    "cobranc",
    "cobrar",
    "collect",
    "pagament",
    "pagar",
    "pague",
    "payment",
    "pay ",
    "pay.",
    "valor",
    "amount",
    "balance",
    "saldo",
    "atras",
    "overdue",
    "past due",
    "vencid",
    "venciment",
    "due date",
    "boleto",
    "fatura",
    "invoice",
    "bill",
    "inadimpl",
    "delinquen",
    "owe",
    "devend",
    "deve ",
    "negativ",
    "serasa",
    "spc",
    "protest",
    "juros",
    "interest",
    "multa",
    "acordo",
    "renegoci",
    "quitar",
    "quitac",
    "credor",
    "creditor",
    "r$",
    "us$",
    "$",
    "reais",
    "dolar",
    "dollar",
)


def fold(text: str) -> str:
    """Lower case without accents: ``"Cobrança"`` -> ``"cobranca"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def template_fields(template: str) -> set[str]:
    """Placeholder names used by a ``str.format`` template (raises ValueError if malformed)."""
    names = set()
    for _, field, _, _ in string.Formatter().parse(template):
        if field is not None:
            if not field or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field):
                raise ValueError(f"placeholder {{{field}}} is not a plain name")
            names.add(field)
    return names


#: Placeholders only a full-level text (after verification) may use.
FULL_ONLY_FIELDS = frozenset({"company", "amount_words", "due_words", "window_words", "amount", "due_date"})
#: Neutral placeholders any level may use (they say nothing about a person or a debt).
NEUTRAL_FIELDS = frozenset({"digits_count"})


def level_problems(
    template: str, level: Level, forbidden_names: tuple[str, ...] = (), *, what: str = "prompt"
) -> list[str]:
    """Why ``template`` may not carry disclosure ``level`` (empty: it may).

    ``none``: no placeholder but neutral ones, nothing about a debt. ``limited``: the
    limited fields only, nothing about a debt or a collector. ``full``: anything.
    ``forbidden_names`` are names that reveal collection (the collector's name).
    """
    try:
        fields = template_fields(template)
    except ValueError as exc:
        return [str(exc)]
    if level is Level.FULL:
        return []
    allowed = NEUTRAL_FIELDS | (LIMITED_FIELDS if level is Level.LIMITED else frozenset())
    problems = []
    extra = sorted(fields - allowed)
    if extra:
        problems.append(
            f"a {level.value} {what} may not use "
            + ", ".join("{" + f + "}" for f in extra)
            + f" (only {', '.join(sorted(allowed)) or 'no placeholders'})"
        )
    literal = _literal(template)
    for stem in FORBIDDEN_STEMS:
        if _contains_stem(literal, stem):
            problems.append(f"mentions {stem.strip()!r}: a {level.value} {what} says nothing of a debt")
            break
    for name in forbidden_names:
        if name and fold(name) in literal:
            problems.append(f"names {name!r}, which reveals collection")
    return problems


def limited_problems(template: str, forbidden_names: tuple[str, ...] = ()) -> list[str]:
    """Why ``template`` may not be the limited message (empty list: it may): the limited
    level's rules, and it must give a callback number."""
    problems = level_problems(template, Level.LIMITED, forbidden_names, what="message")
    try:
        fields = template_fields(template)
    except ValueError:
        return problems
    if "callback_number" not in fields and not re.search(r"\d{4,}", _literal(template)):
        problems.append("has no callback number ({callback_number})")
    return problems


def _literal(template: str) -> str:
    """The template's own words (placeholders blanked), folded for matching."""
    return fold(re.sub(r"\{[^}]*\}", " ", template)) + " "


def _contains_stem(text: str, stem: str) -> bool:
    if not stem[0].isalnum():
        return stem in text
    # a stem must start a word: "bill" must not match "Billy"... but "pay " matches "pay "
    pattern = r"(?<![a-z0-9])" + re.escape(stem) + _NOT_FOLLOWED_BY.get(stem, "")
    return re.search(pattern, text) is not None


# stems that are also the start of innocent words: "Billy", "Owen", "Valor" as a surname is
# not excluded on purpose (a false alarm costs an admin a rewording, a leak costs a debtor).
_NOT_FOLLOWED_BY = {"bill": r"(?!y|ie)", "owe": r"(?!n)", "interest": "", "saldo": ""}
