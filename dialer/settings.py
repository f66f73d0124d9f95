"""Settings: one tree of frozen models loaded from TOML, with environment overrides.

``config/dialer.toml`` holds every default. ``--config FILE`` (or ``DIALER_CONFIG``)
lays a company's file over it: only the keys it names change. Environment variables
override both: ``REDIS_URL``, ``DIALER_TELEPHONY``, ``DIALER_AMI_URLS``,
``DIALER_AGI_HOST``/``DIALER_AGI_PORT``, ``DIALER_HTTP_HOST``/``DIALER_HTTP_PORT``,
``DIALER_SECRET_KEY``, and any key as ``DIALER__SECTION__KEY`` (e.g.
``DIALER__POLICY__MIN_DAYS_PAST_DUE_VOICE=12``).

Everything is validated at start; the first problem raises ``ConfigError`` naming the
file, the key and the reason. A setting looser than a rule pack's legal floor is
refused (see ``calling_hours.LEGAL_HOURS`` and ``FLOORS`` below).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from dialer.errors import ConfigError
from dialer.rules import calling_hours
from dialer.rules.disclosure import limited_problems

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
        calling_hours.parse_day(v)
        return v

    def windows(self) -> calling_hours.WeeklyWindows:
        return tuple(calling_hours.parse_day(getattr(self, k)) for k in calling_hours.DAY_KEYS)


class ChannelHours(_Model):
    voice: DayHours
    sms: DayHours | None = None  # None: as voice

    def for_channel(self, channel: str) -> DayHours:
        return self.voice if channel == "voice" or self.sms is None else self.sms


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
        import datetime as dt

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
    secret_key: str = ""  # HMAC key for links and verification hashes (env DIALER_SECRET_KEY)
    language: str = "pt-BR"
    workers: int = Field(default=1, ge=1, le=256)
    batch_size: int = Field(default=200, ge=1, le=10000)


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


class Settings(_Model):
    service: ServiceSettings
    sms: SmsSettings = SmsSettings()
    asterisk: AsteriskSettings = AsteriskSettings()
    policy: PolicySettings
    company: CompanySettings
    limited_message: LimitedMessage
    packs: dict[str, PackSettings]
    cadence: dict[str, tuple[CadenceStep, ...]]


# ---------------------------------------------------------------- legal floors

#: What a company may not loosen, by pack (hours are in calling_hours.LEGAL_HOURS).
FLOORS: Mapping[str, Mapping[str, Any]] = {
    "BR": {
        "observe_holidays": (True, "Brazilian state laws forbid calls on holidays"),
        "recent_conversation_days": (7, "compliance.md: no call for 7 days after a conversation"),
    },
    "US": {
        "voice_per_account_per_7_days": (7, "Reg F 1006.14(b)(2): at most 7 calls in 7 days"),
        "recent_conversation_days": (7, "Reg F 1006.14(b)(2)(ii): 7 days after a conversation"),
    },
}

_ENV_ALIASES = {
    "REDIS_URL": ("service", "redis_url"),
    "DIALER_REDIS_URL": ("service", "redis_url"),
    "DIALER_TELEPHONY": ("service", "telephony"),
    "DIALER_AMI_URLS": ("service", "ami_urls"),
    "DIALER_AGI_HOST": ("service", "agi_host"),
    "DIALER_AGI_PORT": ("service", "agi_port"),
    "DIALER_AGI_ADVERTISE": ("service", "agi_advertise"),
    "DIALER_HTTP_HOST": ("service", "http_host"),
    "DIALER_HTTP_PORT": ("service", "http_port"),
    "DIALER_PUBLIC_URL": ("service", "public_url"),
    "DIALER_SECRET_KEY": ("service", "secret_key"),
    "DIALER_DATA_DIR": ("service", "data_dir"),
    "DIALER_SOUNDS_DIR": ("service", "sounds_dir"),
    "DIALER_SMS_PROVIDER": ("service", "sms_provider"),
    "DIALER_SMS_FALLBACK_PROVIDER": ("service", "sms_fallback_provider"),
    "DIALER_WORKERS": ("service", "workers"),
}
_LIST_KEYS = {("service", "ami_urls")}


def _merge(
    base: dict[str, Any],
    over: Mapping[str, Any],
    origin: dict[tuple[str, ...], str],
    source: str,
    path: tuple[str, ...] = (),
) -> None:
    for key, value in over.items():
        here = (*path, key)
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, origin, source, here)
        else:
            base[key] = value
            origin[here] = source


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), "-", "file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "-", f"not valid TOML: {exc}") from None


def _env_value(raw: str, path: tuple[str, ...]) -> Any:
    if path in _LIST_KEYS:
        return [p.strip() for p in raw.split(",") if p.strip()]
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _source_of(origin: Mapping[tuple[str, ...], str], loc: tuple[str, ...], default: str) -> str:
    for n in range(len(loc), 0, -1):
        if loc[:n] in origin:
            return origin[loc[:n]]
    for key, source in origin.items():  # a key below loc was set (e.g. one day of the hours)
        if key[: len(loc)] == loc:
            return source
    return default


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overlay: str | None = None,
) -> Settings:
    """Load defaults, lay ``path``, an admin's ``overlay`` (TOML text kept in Redis) and the
    environment over them, and validate everything."""
    env = os.environ if env is None else env
    data = _read_toml(DEFAULT_CONFIG)
    origin: dict[tuple[str, ...], str] = {}
    default_name = _display(DEFAULT_CONFIG)
    path = path or env.get("DIALER_CONFIG") or None
    if path:
        _merge(data, _read_toml(Path(path)), origin, _display(Path(path)))
    if overlay:
        try:
            _merge(data, tomllib.loads(overlay), origin, "admin overlay")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("admin overlay", "-", f"not valid TOML: {exc}") from None
    overrides: dict[str, Any] = {}
    env_origin: dict[tuple[str, ...], str] = {}
    for name, value in env.items():
        keypath: tuple[str, ...]
        if name in _ENV_ALIASES:
            keypath = _ENV_ALIASES[name]
        elif name.startswith("DIALER__"):
            keypath = tuple(p.lower() for p in name[len("DIALER__") :].split("__") if p)
        else:
            continue
        keypath = _match_case(data, keypath)
        node = overrides
        for part in keypath[:-1]:
            node = node.setdefault(part, {})
        node[keypath[-1]] = _env_value(value, keypath)
        env_origin[keypath] = f"environment ${name}"
    _merge(data, overrides, origin, "environment")
    origin.update(env_origin)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(str(p) for p in err["loc"])
        key = ".".join(loc) or "-"
        reason = err["msg"].removeprefix("Value error, ")
        if err["type"] == "missing":
            reason = "required key is missing"
        elif err["type"] == "extra_forbidden":
            reason = "unknown key (check its spelling against config/dialer.toml)"
        raise ConfigError(_source_of(origin, loc, default_name), key, reason) from None
    check_settings(settings, lambda loc: _source_of(origin, loc, default_name))
    return settings


def _match_case(data: Mapping[str, Any], keypath: tuple[str, ...]) -> tuple[str, ...]:
    """Environment names are upper case; match each part to the existing key's case."""
    out: list[str] = []
    node: Any = data
    for part in keypath:
        if isinstance(node, Mapping):
            match = next((k for k in node if k.lower() == part.lower()), part)
            out.append(match)
            node = node.get(match)
        else:
            out.append(part)
            node = None
    return tuple(out)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_settings(settings: Settings, where: Any = lambda loc: "config") -> None:
    """Cross-field checks: legal floors, hours, templates, cadence. Raises ConfigError."""

    def fail(loc: tuple[str, ...], reason: str) -> None:
        raise ConfigError(where(loc), ".".join(loc), reason)

    for country in ("BR", "US"):
        if country not in settings.packs:
            fail(("packs", country), "the rule pack is missing")
    for country, pack in settings.packs.items():
        if country not in FLOORS:
            fail(("packs", country), "unknown rule pack (Régua has BR and US)")
        floor = FLOORS[country]
        if "observe_holidays" in floor and not pack.observe_holidays:
            fail(
                ("packs", country, "observe_holidays"),
                f"may not be turned off: {floor['observe_holidays'][1]}",
            )
        minimum, why = floor.get("recent_conversation_days", (0, ""))
        if pack.recent_conversation_days < minimum:
            fail(
                ("packs", country, "recent_conversation_days"),
                f"{pack.recent_conversation_days} is looser than the legal floor {minimum} ({why})",
            )
        if "voice_per_account_per_7_days" in floor:
            limit, why = floor["voice_per_account_per_7_days"]
            if pack.caps.voice_per_account_per_7_days > limit:
                fail(
                    ("packs", country, "caps", "voice_per_account_per_7_days"),
                    f"{pack.caps.voice_per_account_per_7_days} exceeds {limit} ({why})",
                )
        if "default" not in pack.hours:
            fail(("packs", country, "hours", "default"), "every pack needs default hours")
        for state, hours in pack.hours.items():
            law = calling_hours.legal_hours(country, None if state == "default" else state)
            for channel in ("voice", "sms"):
                looser = calling_hours.looser_days(
                    hours.for_channel(channel).windows(),
                    law.for_channel(_channel(channel)),
                )
                if looser:
                    fail(
                        ("packs", country, "hours", state, channel),
                        "looser than the law ("
                        + law.source
                        + "): "
                        + "; ".join(looser)
                        + ". You may only narrow calling hours.",
                    )
    for channel, templates in (
        ("voice", settings.limited_message.voice),
        ("sms", settings.limited_message.sms),
    ):
        if not templates:
            fail(("limited_message", channel), "needs a template per language")
        for lang, text in templates.items():
            problems = limited_problems(text, (*settings.company.collection_names, settings.company.name))
            if problems:
                fail(("limited_message", channel, lang), "; ".join(problems))
    if settings.company.business_name:
        from dialer.rules.disclosure import fold

        folded = fold(settings.company.business_name)
        for name in settings.company.collection_names:
            if fold(name) in folded:
                fail(("company", "business_name"), "reveals collection; limited messages use it")
    for method, steps in settings.cadence.items():
        if method not in ("boleto", "card", "crediario"):
            fail(("cadence", method), "unknown payment method (boleto, card, crediario)")
        seen: set[str] = set()
        for i, step in enumerate(steps):
            loc = ("cadence", method, str(i))
            if step.id in seen:
                fail((*loc, "id"), f"step id {step.id!r} is used twice")
            seen.add(step.id)
            if (step.offset_days is None) == (step.trigger is None):
                fail(loc, "a step needs exactly one of offset_days or trigger")
            if step.channel == "sms" and step.template != "limited":
                fail(
                    (*loc, "template"),
                    "an SMS nobody asked for carries the limited message only: "
                    'use template = "limited" (edit its text in [limited_message.sms])',
                )
            if step.channel == "voice" and step.template != "ivr":
                fail((*loc, "template"), 'a call runs the IVR: use template = "ivr"')
    if settings.service.telephony == "asterisk" and not settings.company.caller_id:
        fail(
            ("company", "caller_id"),
            "real calls must show a caller ID (Lei CE 16.836/2019; Anatel's "
            "Origem Verificada): set the number callers see",
        )


def _channel(name: str) -> Any:
    from dialer.domain import Channel

    return Channel(name)
