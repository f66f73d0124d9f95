"""Compact text forms of accounts, phones and attempts as they sit in Redis hashes.

Fields are joined with the unit separator (0x1F), which the campaign reader never lets
into a value (control characters are rejected), so no escaping is needed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from dialer.domain import (
    Account,
    AccountStatus,
    Attempt,
    Channel,
    Consent,
    Outcome,
    PaymentMethod,
    Phone,
    PhoneType,
)

SEP = "\x1f"


def pack_account(a: Account) -> str:
    return SEP.join(
        [
            a.name,
            a.due_date.isoformat(),
            str(a.amount),
            a.currency,
            a.payment_method.value,
            a.status.value,
            a.region or "",
            a.timezone or "",
            a.verify_birth_year_hash or "",
            a.verify_digits_hash or "",
            a.boleto_line or "",
        ]
    )


_METHODS = {m.value: m for m in PaymentMethod}
_STATUSES = {s.value: s for s in AccountStatus}
_CHANNELS = {c.value: c for c in Channel}
_OUTCOMES = {o.value: o for o in Outcome}


def unpack_account(account_id: str, text: str) -> Account:
    name, due, amount, currency, method, status, region, tz, vb, vd, boleto = text.split(SEP)
    return Account(
        account_id,
        name,
        date.fromisoformat(due),
        Decimal(amount),
        currency,
        _METHODS[method],
        _STATUSES[status],
        region or None,
        tz or None,
        vb or None,
        vd or None,
        boleto or None,
    )


_TYPE = {PhoneType.MOBILE: "m", PhoneType.HOME: "h", PhoneType.WORK: "w"}
_TYPE_BACK = {v: k for k, v in _TYPE.items()}


def pack_phone(p: Phone) -> str:
    return "".join(
        [
            _TYPE[p.phone_type],
            "1" if p.provided_by_debtor else "0",
            "1" if p.consent.voice else "0",
            "1" if p.consent.sms else "0",
        ]
    )


_CONSENTS = {(v, s): Consent(voice=v, sms=s) for v in (True, False) for s in (True, False)}


def unpack_phone(number: str, text: str) -> Phone:
    return Phone(number, _TYPE_BACK[text[0]], text[1] == "1", _CONSENTS[text[2] == "1", text[3] == "1"])


def to_ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def from_ms(ms: int | str) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def pack_attempt(a: Attempt) -> str:
    return SEP.join([a.phone, a.channel, str(to_ms(a.at)), a.outcome, a.step_id])


def unpack_attempt(account_id: str, attempt_id: str, text: str) -> Attempt:
    phone, channel, ms, outcome, step = text.split(SEP)
    return Attempt(account_id, phone, _CHANNELS[channel], from_ms(ms), _OUTCOMES[outcome], attempt_id, step)
