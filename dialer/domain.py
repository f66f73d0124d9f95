"""Domain types: plain frozen values shared by the core and the shell.

Nothing here does I/O. Times are timezone-aware ``datetime`` values; money is
``Decimal``; phone numbers are E.164 strings (``+5511987654321``).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, assert_never


class Channel(StrEnum):
    """The ways Régua reaches a debtor: a closed set. Every branch on a channel is a
    ``match`` ending in ``assert_never``, so a new member (e-mail, WhatsApp) fails the type
    check at each place that must learn it (see ARCHITECTURE.md, "Adding a channel")."""

    VOICE = "voice"
    SMS = "sms"

    @property
    def is_call(self) -> bool:
        """A live call: D+10, the quiet week after a conversation and the attempt caps per
        account are rules of calls; the other channels have their windows and daily caps."""
        match self:
            case Channel.VOICE:
                return True
            case Channel.SMS:
                return False
            case _:
                assert_never(self)


class PhoneType(StrEnum):
    MOBILE = "mobile"
    HOME = "home"
    WORK = "work"


class PaymentMethod(StrEnum):
    BOLETO = "boleto"
    CARD = "card"
    CREDIARIO = "crediario"


class AccountStatus(StrEnum):
    OPEN = "open"
    AGREEMENT = "agreement"  # an agreement (acordo) is current: its reminders, not the régua
    PAID = "paid"
    DISPUTED = "disputed"
    CLOSED = "closed"


#: the statuses a campaign file, a person or the API may set; ``agreement`` comes only
#: from an accepted offer (and ends with the agreement)
SETTABLE_STATUSES = (AccountStatus.OPEN, AccountStatus.PAID, AccountStatus.DISPUTED, AccountStatus.CLOSED)


class Reason(StrEnum):
    """Why a contact is blocked. These names are a contract (compliance.md)."""

    OUTSIDE_CALLING_HOURS = "outside_calling_hours"
    HOLIDAY = "holiday"
    BEFORE_MIN_DAYS_PAST_DUE = "before_min_days_past_due"
    NO_CONSENT = "no_consent"
    WORK_NUMBER_NOT_PROVIDED = "work_number_not_provided"
    ATTEMPT_CAP = "attempt_cap"
    RECENT_CONVERSATION = "recent_conversation"
    SUPPRESSED = "suppressed"
    ACCOUNT_CLOSED = "account_closed"


#: Reasons that pass by themselves as time goes by; the others need a person to act.
TIME_BASED_REASONS = frozenset(
    {
        Reason.OUTSIDE_CALLING_HOURS,
        Reason.HOLIDAY,
        Reason.BEFORE_MIN_DAYS_PAST_DUE,
        Reason.ATTEMPT_CAP,
        Reason.RECENT_CONVERSATION,
    }
)


class Outcome(StrEnum):
    """How an attempt ended."""

    PLACED = "placed"  # in flight: counts as an attempt until it ends
    ANSWERED_VERIFIED = "answered_verified"  # a conversation with the verified debtor
    ANSWERED_UNVERIFIED = "answered_unverified"  # a person who did not verify
    THIRD_PARTY = "third_party"  # someone said they are not the debtor
    VOICEMAIL = "voicemail"  # answering machine: got the limited message
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    CONGESTION = "congestion"
    REJECTED = "rejected"
    INVALID_NUMBER = "invalid_number"
    FAILED = "failed"
    WRONG_NUMBER = "wrong_number"  # the person said the number is not the debtor's
    SMS_SENT = "sms_sent"
    SMS_DELIVERED = "sms_delivered"
    SMS_FAILED = "sms_failed"
    UNKNOWN = "unknown"  # the worker placing it died and the PBX could not tell: counts
    SKIPPED = "skipped"  # a cadence step no rule would ever allow: no contact was made

    @property
    def is_attempt(self) -> bool:
        """Whether a contact was (or may have been) made: everything but SKIPPED."""
        return self is not Outcome.SKIPPED

    @property
    def connected(self) -> bool:
        """Whether the attempt counts for Reg F's 7-in-7 (busy / not in service do not)."""
        return self not in _UNCONNECTED

    @property
    def answered(self) -> bool:
        """A person or a machine picked up."""
        return self in _ANSWERED


_UNCONNECTED = frozenset(
    {
        Outcome.BUSY,
        Outcome.CONGESTION,
        Outcome.INVALID_NUMBER,
        Outcome.FAILED,
        Outcome.REJECTED,
        Outcome.SMS_FAILED,
    }
)
_ANSWERED = frozenset(
    {
        Outcome.ANSWERED_VERIFIED,
        Outcome.ANSWERED_UNVERIFIED,
        Outcome.THIRD_PARTY,
        Outcome.VOICEMAIL,
        Outcome.WRONG_NUMBER,
    }
)


class SuppressionReason(StrEnum):
    OPT_OUT = "opt_out"
    WRONG_NUMBER = "wrong_number"
    DISPUTE = "dispute"
    DO_NOT_CALL = "do_not_call"  # a registry entry (e.g. SP "Não Me Ligue")
    INVALID_NUMBER = "invalid_number"


@dataclass(frozen=True, slots=True)
class Consent:
    voice: bool = False
    sms: bool = False

    def allows(self, channel: Channel) -> bool:
        match channel:
            case Channel.VOICE:
                return self.voice
            case Channel.SMS:
                return self.sms
            case _:
                assert_never(channel)


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    name: str
    due_date: date
    amount: Decimal
    currency: str = "BRL"
    payment_method: PaymentMethod = PaymentMethod.BOLETO
    status: AccountStatus = AccountStatus.OPEN
    region: str | None = None  # UF or US state: narrows the time zone, picks the state law
    timezone: str | None = None  # IANA name: overrides the number
    verify_birth_year_hash: str | None = None
    verify_digits_hash: str | None = None
    boleto_line: str | None = None
    # CPF/CNPJ, kept only when a charge needs it; never in a repr (so never in a log)
    document: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Phone:
    number: str  # E.164
    phone_type: PhoneType = PhoneType.MOBILE
    provided_by_debtor: bool = True
    consent: Consent = field(default_factory=Consent)


@dataclass(frozen=True, slots=True)
class Suppression:
    """A stop on a number (``channel`` None: every channel)."""

    number: str
    reason: SuppressionReason
    channel: Channel | None = None
    effective_from: datetime | None = None  # e.g. 30 days after a registry entry
    source: str = ""

    def applies(self, number: str, channel: Channel, now: datetime) -> bool:
        if self.number != number:
            return False
        if self.channel is not None and self.channel is not channel:
            return False
        return self.effective_from is None or now >= self.effective_from


@dataclass(frozen=True, slots=True)
class Contact:
    """One phone of one account, on one channel: what ``decide()`` rules on."""

    account: Account
    phone: Phone
    channel: Channel
    suppressions: tuple[Suppression, ...] = ()
    # the debtor asked for this call (a callback request): the attempt caps and the quiet
    # week after a conversation do not hold it back (Reg F 1006.14(b)(3): calls made with the
    # consumer's prior consent); hours, holidays, consent and suppressions still do
    requested: bool = False


@dataclass(frozen=True, slots=True)
class Attempt:
    """A past (or in-flight) contact attempt."""

    account_id: str
    phone: str
    channel: Channel
    at: datetime
    outcome: Outcome
    attempt_id: str = ""
    step_id: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    channel: Channel
    reasons: tuple[Reason, ...]
    not_before: datetime | None  # now when allowed; None when no time will unblock it
    time_zones: tuple[str, ...]
    pack: str = ""
    region: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "channel": str(self.channel),
            "reasons": [str(r) for r in self.reasons],
            "not_before": self.not_before.isoformat() if self.not_before else None,
            "time_zones": list(self.time_zones),
            "pack": self.pack,
            "region": self.region,
        }


@dataclass(frozen=True, slots=True)
class IvrAction:
    """Something the verified debtor (or the person who answered) asked for."""

    kind: str  # payment_link | callback | opt_out | wrong_number
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CallResult:
    """How a call ended, as the voice backend saw it (and what the IVR recorded)."""

    outcome: Outcome
    duration_s: float = 0.0  # from answer to hang-up (0 when not answered)
    ring_s: float = 0.0
    amd: str | None = None  # MACHINE | HUMAN | NOTSURE | HANGUP
    hangup_cause: int | None = None
    actions: tuple[IvrAction, ...] = ()
    events: tuple[dict[str, Any], ...] = ()  # prompts played, keys pressed (for the audit)
    trunk: str = ""
    server: str = ""
    sandbox: bool = False
    language: str = ""
    detail: str = ""


# ---------------------------------------------------------------- weekly windows (calling hours)

DAY_KEYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

Interval = tuple[int, int]  # seconds after local midnight: [start, end)
#: One tuple of intervals per weekday, Monday first.
WeeklyWindows = tuple[tuple[Interval, ...], ...]

CLOSED: tuple[Interval, ...] = ()
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_day(spec: str) -> tuple[Interval, ...]:
    """``"08:00-20:00"`` or ``"08:00-12:00, 13:00-18:00"`` or ``"closed"``/``""``.

    Raises ``ValueError`` with a reason a person can act on.
    """
    text = spec.strip().lower()
    if text in ("", "closed", "fechado", "-"):
        return CLOSED
    intervals: list[Interval] = []
    for part in text.split(","):
        m = _RANGE.match(part)
        if not m:
            raise ValueError(f"{part.strip()!r} is not a range like 08:00-20:00 (or 'closed')")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 24 or h2 > 24 or m1 > 59 or m2 > 59 or (h1 == 24 and m1) or (h2 == 24 and m2):
            raise ValueError(f"{part.strip()!r} has an impossible time")
        start, end = (h1 * 60 + m1) * 60, (h2 * 60 + m2) * 60
        if end <= start:
            raise ValueError(f"{part.strip()!r} closes before it opens")
        intervals.append((start, end))
    intervals.sort()
    for (_, e1), (s2, _) in itertools.pairwise(intervals):
        if s2 < e1:
            raise ValueError(f"{spec!r} has overlapping ranges")
    return tuple(intervals)


def weekly(**days: str) -> WeeklyWindows:
    """Build windows from keyword specs; ``weekdays=`` covers mon–fri, missing days are closed."""
    base = {k: "" for k in DAY_KEYS}
    if "weekdays" in days:
        for k in DAY_KEYS[:5]:
            base[k] = days["weekdays"]
    for k, v in days.items():
        if k != "weekdays":
            base[k] = v
    return tuple(parse_day(base[k]) for k in DAY_KEYS)


def format_day(intervals: tuple[Interval, ...]) -> str:
    if not intervals:
        return "closed"
    return ", ".join(f"{_hm(s)}-{_hm(e)}" for s, e in intervals)


def _hm(secs: int) -> str:
    return f"{secs // 3600:02d}:{secs % 3600 // 60:02d}"
