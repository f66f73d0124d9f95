"""Compact text forms of accounts, phones and attempts as they sit in Redis hashes.

Fields are joined with the unit separator (0x1F), which the campaign reader never lets
into a value (control characters are rejected), so no escaping is needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import orjson

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
    Suppression,
    SuppressionReason,
)
from dialer.store.values import AccountState

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
            a.document or "",
        ]
    )


_METHODS = {m.value: m for m in PaymentMethod}
_STATUSES = {s.value: s for s in AccountStatus}
_CHANNELS = {c.value: c for c in Channel}
_OUTCOMES = {o.value: o for o in Outcome}


def unpack_account(account_id: str, text: str) -> Account:
    fields = text.split(SEP)
    name, due, amount, currency, method, status, region, tz, vb, vd, boleto = fields[:11]
    document = fields[11] if len(fields) > 11 else ""  # accounts stored before payments have none
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
        document or None,
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


def event_json(event: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    # orjson: the same compact JSON as json.dumps, several times faster on the hot path
    return orjson.dumps(event, default=str).decode()


def audit_fields(now: datetime, actor: str, kind: str, data: Mapping[str, Any]) -> dict[str, str]:
    """One audit stream entry: when, who (a person or a named process), what, the details."""
    return {"at": now.isoformat(), "actor": actor, "kind": kind, "data": event_json(data)}


def suppression_field(s: Suppression) -> str:
    return f"{s.number}|{s.channel.value if s.channel else '*'}"


def suppression_to_json(s: Suppression, now: datetime, actor: str) -> str:
    return event_json(
        {
            "reason": s.reason.value,
            "effective_from": s.effective_from.isoformat() if s.effective_from else None,
            "source": s.source,
            "added_at": now.isoformat(),
            "actor": actor,
        }
    )


def suppression_from_json(field_name: str, value: str) -> Suppression | None:
    number, _, channel = field_name.partition("|")
    try:
        data = json.loads(value)
        eff = data.get("effective_from")
        return Suppression(
            number=number,
            reason=SuppressionReason(data["reason"]),
            channel=None if channel == "*" else Channel(channel),
            effective_from=datetime.fromisoformat(eff) if eff else None,
            source=str(data.get("source", "")),
        )
    except (ValueError, KeyError, TypeError):
        return None


def parse_account_fields(account_id: str, flat: Sequence[str]) -> AccountState | None:
    """An account hash as HGETALL returns it (field, value, field, value, ...)."""
    packed: str | None = None
    hv, lock, fallback = "0", None, None
    phones = []
    history = []
    for i in range(0, len(flat), 2):
        f, v = flat[i], flat[i + 1]
        kind = f[:2]
        if kind == "p:":
            phones.append(unpack_phone(f[2:], v))
        elif kind == "h:":
            history.append(unpack_attempt(account_id, f[2:], v))
        elif f == "a":
            packed = v
        elif f == "hv":
            hv = v
        elif f == "lk":
            lock = v
        elif f == "fb":
            fallback = v
    if packed is None:
        return None
    history.sort(key=attempt_order)
    return AccountState(
        unpack_account(account_id, packed), tuple(phones), tuple(history), int(hv), lock, fallback
    )


def attempt_order(a: Attempt) -> tuple[datetime, int, int]:
    """History order: by time, then by the stream entry the attempt came from (attempt ids
    end in the entry id, ``<ms>-<seq>``), so equal times keep the order they were made in."""
    ms, _, seq = a.attempt_id.rpartition(":")[2].partition("-")
    try:
        return a.at, int(ms), int(seq)
    except ValueError:
        return a.at, 0, 0
