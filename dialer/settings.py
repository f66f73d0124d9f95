"""Settings: one tree of frozen models loaded from TOML, with environment overrides.

``config/dialer.toml`` holds every default. ``--config FILE`` (or ``DIALER_CONFIG``)
lays a company's file over it: only the keys it names change. Environment variables
override both: ``REDIS_URL``, ``DIALER_TELEPHONY``, ``DIALER_AMI_URLS``,
``DIALER_AGI_HOST``/``DIALER_AGI_PORT``, ``DIALER_HTTP_HOST``/``DIALER_HTTP_PORT``,
``DIALER_SECRET_KEY``, and any key as ``DIALER__SECTION__KEY`` (e.g.
``DIALER__POLICY__MIN_DAYS_PAST_DUE_VOICE=12``).

This module is the tree (frozen pydantic models, each value checked for its form);
``formats.config_file.load_settings`` reads the files and the environment into it, and
``rules.config_check`` refuses what the law forbids (a setting looser than a rule pack's
legal floor). The first problem raises ``ConfigError`` naming the file, the key and the
reason.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, assert_never

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dialer.domain import DAY_KEYS, Channel, WeeklyWindows, parse_day

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "dialer.toml"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DayHours(_Model):
    """Hours per weekday: ``"08:00-20:00"``, ``"08:00-12:00, 14:00-18:00"`` or ``"closed"``."""

    mon: str = "closed"
    tue: str = "closed"
    wed: str = "closed"
    thu: str = "closed"
    fri: str = "closed"
    sat: str = "closed"
    sun: str = "closed"

    @field_validator("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    @classmethod
    def _valid(cls, v: str) -> str:
        parse_day(v)
        return v

    def windows(self) -> WeeklyWindows:
        return tuple(parse_day(getattr(self, k)) for k in DAY_KEYS)


class ChannelHours(_Model):
    voice: DayHours
    sms: DayHours | None = None  # None: as voice

    def for_channel(self, channel: Channel) -> DayHours:
        match channel:
            case Channel.VOICE:
                return self.voice
            case Channel.SMS:
                return self.sms or self.voice
            case _:
                assert_never(channel)


class Caps(_Model):
    voice_per_phone_per_day: int = Field(ge=1)
    voice_per_account_per_7_days: int = Field(ge=1)
    sms_per_phone_per_day: int = Field(ge=1)


class CustomHolidaySpec(_Model):
    date: str  # "2026-01-25" (that year) or "01-25" (every year)
    name: str
    regions: tuple[str, ...] = ()

    @field_validator("date")
    @classmethod
    def _valid_date(cls, v: str) -> str:
        try:
            if len(v) == 5:
                dt.date(2024, int(v[:2]), int(v[3:]))  # a leap year accepts 02-29
            else:
                dt.date.fromisoformat(v)
        except ValueError:
            raise ValueError(f"{v!r} is not YYYY-MM-DD or MM-DD") from None
        return v


class PackSettings(_Model):
    observe_holidays: bool
    custom_holidays: tuple[CustomHolidaySpec, ...] = ()
    caps: Caps
    count_unconnected_attempts: bool
    recent_conversation_days: int = Field(ge=0)
    hours: dict[str, ChannelHours]


class PolicySettings(_Model):
    min_days_past_due_voice: int = Field(ge=0, le=365)
    default_consent_voice: bool
    default_consent_sms: bool
    sms_opt_out_stops_calls: bool = False  # an SMS "SAIR"/"STOP" also stops calls to that number


class CompanySettings(_Model):
    name: str  # the creditor, spoken only after verification
    collection_names: tuple[str, ...] = ()  # names that reveal collection: never in limited
    business_name: str = ""  # a name that does not reveal collection: allowed in limited
    contact_name: str  # a natural person to ask for
    callback_number: str
    caller_id: str = ""
    payment_url_template: str = ""
    pix_key: str = ""
    pix_merchant_name: str = ""
    pix_merchant_city: str = ""
    legal_name: str = ""  # the creditor's registered name, shown after verification (CDC art. 42-A)
    cnpj: str = ""  # the creditor's CNPJ, shown with it


class LimitedMessage(_Model):
    """The only text an unverified party, a machine or an unrequested SMS ever gets."""

    voice: dict[str, str]  # language -> template
    sms: dict[str, str]


class CadenceStep(_Model):
    id: str = Field(pattern=r"^[a-z0-9_\-]{1,32}$")
    offset_days: int | None = Field(default=None, ge=-60, le=365)
    trigger: Literal["charge_failed"] | None = None
    channel: Literal["voice", "sms"]
    template: str
    when: Literal["always", "previous_call_unanswered", "not_reached_yet"] = "always"
    max_attempts: int = Field(default=1, ge=1, le=10)
    retry_after_minutes: int = Field(default=240, ge=5)
    fallback: Literal["sms", "none"] = "none"


class ServiceSettings(_Model):
    redis_url: str = ""  # empty: start an embedded redis-server
    data_dir: str = "var"
    sounds_dir: str = ""  # rendered prompts, shared with Asterisk (default <data_dir>/sounds)
    telephony: Literal["sandbox", "asterisk"] = "sandbox"
    sms_provider: str = "sandbox://"
    sms_fallback_provider: str = ""
    ami_urls: tuple[str, ...] = ()
    agi_host: str = "127.0.0.1"
    agi_port: int = Field(default=4573, ge=1, le=65535)
    agi_advertise: str = ""  # host:port Asterisk should dial for FastAGI (default agi_host:port)
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=1, le=65535)
    public_url: str = "http://127.0.0.1:8080"
    # a second listener for providers that call back with a client certificate (the Pix
    # API's banks): TLS with our certificate, and a client certificate from client_ca
    # required (0: none; or put a TLS proxy in front, see README "Payments")
    webhook_tls_port: int = Field(default=0, ge=0, le=65535)
    webhook_tls_cert: str = ""
    webhook_tls_key: str = ""
    webhook_tls_client_ca: str = ""
    secret_key: str = ""  # HMAC key for links and verification hashes (env DIALER_SECRET_KEY)
    language: str = "pt-BR"
    workers: int = Field(default=1, ge=1, le=256)
    batch_size: int = Field(default=200, ge=1, le=10000)
    # contacts one worker holds at once (read, dialling, on the line); the rest stay in the
    # stream for the other workers — lower it to spread a small trunk over several workers
    worker_concurrency: int = Field(default=1000, ge=1, le=100000)


class TrunkSettings(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,32}$")
    # {e164} +5511987654321, {number} 5511987654321, {national} 11987654321
    channel: str = "PJSIP/{number}@trunk"
    max_channels: int = Field(default=30, ge=1, le=10000)
    cps: float = Field(default=5.0, gt=0, le=1000)
    servers: tuple[str, ...] = ()  # names (host:port) of the Asterisk servers that have it; empty: all


class AsteriskSettings(_Model):
    context: str = "regua-outbound"
    exten: str = "s"
    ring_timeout_s: int = Field(default=30, ge=5, le=120)
    response_margin_s: int = Field(default=15, ge=1, le=300)  # no OriginateResponse by then: failed
    max_call_s: int = Field(default=1800, ge=60, le=14400)
    ping_interval_s: float = Field(default=10.0, gt=0)
    campaign_max_channels: int = Field(default=200, ge=1)
    short_call_s: float = 6.0  # Anatel: calls this short count towards the short-call ratio
    short_call_warn_ratio: float = Field(default=0.5, gt=0, lt=1)  # warn long before the 85 % block
    trunks: tuple[TrunkSettings, ...] = (TrunkSettings(name="default"),)


class SmsSettings(_Model):
    fold_accents: bool = True  # "ligação" -> "ligacao": GSM-7, 160 characters a segment, not 70
    max_segments: int = Field(default=3, ge=1, le=10)  # longer texts are refused, not sent


class PaymentSettings(_Model):
    """Charges per debt and the provider that collects them (``payments.provider``)."""

    provider: str = "sandbox://"  # sandbox:// | pix+https://… | asaas://… | signed://…
    create_on_load: bool = True  # a charge for every account a campaign file loads
    due_in_days: int = Field(default=3, ge=0, le=60)  # the charge falls due this long after it is made
    valid_after_due_days: int = Field(default=30, ge=0, le=365)  # and may be paid this long after
    fine_percent: Decimal = Field(default=Decimal("2"), ge=0, le=Decimal("2"))  # CDC art. 52 §1
    # moratory interest a month: 1 % is the usual contract rate (CC art. 406 with the
    # Lei de Usura's ceiling for a creditor that is not a bank); more is refused
    interest_percent_month: Decimal = Field(default=Decimal("1"), ge=0, le=Decimal("1"))
    recheck_minutes: int = Field(default=60, ge=5, le=1440)  # open charges asked again this often
    reconcile_batch: int = Field(default=500, ge=1, le=100000)  # charges asked per reconciliation run
    create_concurrency: int = Field(default=8, ge=1, le=256)
    overpayment_tolerance: Decimal = Field(default=Decimal("0.00"), ge=0)  # more than this is flagged


class OfferBand(_Model):
    """The company's offers for debts of some payment methods and ages (days past due)."""

    methods: tuple[Literal["boleto", "card", "crediario"], ...] = ()  # empty: every method
    min_days_past_due: int = Field(default=0, ge=-60, le=3650)
    max_days_past_due: int = Field(default=3650, ge=-60, le=3650)
    cash_discount_percent: Decimal = Field(default=Decimal("0"), ge=0, lt=100)  # on the updated debt
    max_installments: int = Field(default=1, ge=1, le=48)  # 1: cash only
    min_installment: Decimal = Field(default=Decimal("50.00"), gt=0)  # no installment below this
    down_payment_percent: Decimal = Field(default=Decimal("0"), ge=0, lt=100)  # the first installment
    interest_percent_month: Decimal = Field(default=Decimal("0"), ge=0)  # the plan's, Price table

    @field_validator("max_days_past_due")
    @classmethod
    def _ordered(cls, v: int, info: Any) -> int:
        low = info.data.get("min_days_past_due")
        if low is not None and v < low:
            raise ValueError(f"max_days_past_due {v} is below min_days_past_due {low}")
        return v


class NegotiationSettings(_Model):
    """Offers a verified debtor may accept, and the agreements (acordos) they make."""

    enabled: bool = True
    # the most a month the contract lets an installment plan charge (Price table); a
    # creditor that is not a bank is held to 1 % (Lei de Usura, CC art. 406 and 591)
    max_interest_percent_month: Decimal = Field(default=Decimal("1"), ge=0, le=Decimal("1"))
    offer_valid_days: int = Field(default=3, ge=1, le=30)  # an offer holds, and is first due, this long
    break_after_days: int = Field(default=10, ge=1, le=90)  # an installment unpaid this long breaks it
    reminder_days: tuple[int, ...] = (-3, 0)  # days from each installment's due date
    special_offer_roles: tuple[Literal["supervisor", "admin"], ...] = ("supervisor", "admin")
    bands: tuple[OfferBand, ...] = ()
    reminder_sms: dict[str, str] = {
        "pt-BR": "{name}, aqui é {contact_name}. Acesse {link} ou ligue {callback_number}. "
        "Para não receber mais mensagens, responda SAIR.",
        "en": "{name}, this is {contact_name}. Visit {link} or call {callback_number}. Reply STOP to opt out.",
    }
    # a debtor-facing page: failed second factors before a link locks, and per client address an hour
    link_max_failures: int = Field(default=3, ge=1, le=10)
    address_max_failures: int = Field(default=20, ge=1, le=1000)
    session_minutes: int = Field(default=15, ge=1, le=120)  # the verified page's session
    verified_call_minutes: int = Field(
        default=10, ge=0, le=60
    )  # a link sent after a verified call skips the factor

    @field_validator("reminder_days")
    @classmethod
    def _reminders(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < -30 or d > 30 for d in v):
            raise ValueError("reminder_days must lie within 30 days of the due date")
        return tuple(sorted(set(v)))

    @field_validator("bands")
    @classmethod
    def _bands(cls, v: tuple[OfferBand, ...], info: Any) -> tuple[OfferBand, ...]:
        ceiling = info.data.get("max_interest_percent_month", Decimal("1"))
        for i, b in enumerate(v, 1):
            if b.interest_percent_month > ceiling:
                raise ValueError(
                    f"band {i}: interest_percent_month {b.interest_percent_month} is above "
                    f"max_interest_percent_month {ceiling} (what the contract allows)"
                )
        for i, a in enumerate(v, 1):
            for j, b in enumerate(v[i:], i + 1):
                same = not a.methods or not b.methods or set(a.methods) & set(b.methods)
                if (
                    same
                    and a.min_days_past_due <= b.max_days_past_due
                    and b.min_days_past_due <= a.max_days_past_due
                ):
                    raise ValueError(f"bands {i} and {j} overlap (same payment method, same days past due)")
        return v


class Settings(_Model):
    service: ServiceSettings
    sms: SmsSettings = SmsSettings()
    payments: PaymentSettings = PaymentSettings()
    negotiation: NegotiationSettings = NegotiationSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    policy: PolicySettings
    company: CompanySettings
    limited_message: LimitedMessage
    packs: dict[str, PackSettings]
    cadence: dict[str, tuple[CadenceStep, ...]]
