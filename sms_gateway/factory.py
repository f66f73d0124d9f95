"""Build the SMS gateway ``service.sms_provider`` (and ``sms_fallback_provider``) name.

Each provider is one URL; options are query parameters and secrets come from the
environment variable an option names (a secret written into the URL is refused):

======================  ================================================================
``sandbox://``          the store's outbox (demos; nothing is really sent)
``https://host/path``   generic HTTP JSON gateway. Options: ``auth_header``
                        (Authorization), ``auth_env`` (variable holding the secret),
                        ``auth_scheme`` (e.g. Bearer: the header is "Bearer <secret>"),
                        ``body`` (JSON template with {to} {text} {id} {from}) or
                        ``body_file``, ``id_path`` (id, data.message_id), ``from``,
                        ``idempotency_header`` (Idempotency-Key; empty for none).
                        Other query parameters stay in the gateway's URL.
``twilio://ACxxx@``     Twilio. ``token_env`` (required), ``from`` or
                        ``messaging_service``, ``status_callback``, ``api`` (base URL)
``zenvia://``           Zenvia v2. ``token_env`` (required), ``from`` (the SMS account
                        alias), ``api`` (base URL)
``smpp://id@host:2775`` SMPP 3.4. ``password_env``, ``system_type``, ``source``,
                        ``bind`` (transceiver|transmitter), ``source_ton``,
                        ``source_npi``, ``dest_ton``, ``dest_npi``, ``service_type``,
                        ``registered_delivery``, ``enquire_link`` (s), ``window``,
                        ``throttle_pause`` (s)
======================  ================================================================

Every real provider also takes ``price`` (per segment, for ``SendResult.cost``),
``timeout`` (s), ``rate`` (messages/s, 0 = none) and ``burst``. The primary's URL
also sets the resilience policy: ``max_attempts``, ``base_delay``, ``max_delay``,
``failover_after``, ``circuit_failures``, ``circuit_cool_down``, ``sending_timeout``.
Real providers are always wrapped in ``ResilientSms`` with Redis idempotency.

Every adapter ships with Régua (aiohttp and asyncio only): there is nothing extra to
install. Errors never quote a secret or a whole URL.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit, urlunsplit

from dialer.errors import ConfigError
from dialer.formats.provider_url import ProviderUrl, parse_url
from sms_gateway.base import Outbox, SmsGateway, SmsLedger
from sms_gateway.http_json import DEFAULT_TEMPLATE, HttpJsonConfig, HttpJsonSms
from sms_gateway.resilient import LanePolicy, ResiliencePolicy, ResilientSms
from sms_gateway.sandbox import SandboxSms
from sms_gateway.smpp import BINDS, SmppConfig, SmppSms
from sms_gateway.twilio import TWILIO_API, TwilioConfig, TwilioSms
from sms_gateway.zenvia import ZENVIA_API, ZenviaConfig, ZenviaSms

if TYPE_CHECKING:
    from dialer.clock import Clock
    from dialer.settings import Settings
    from dialer.store import Store

SUPPORTED = "sandbox://, http(s):// (generic JSON), twilio://, zenvia://, smpp://"
LANE_OPTIONS = frozenset({"rate", "burst"})
POLICY_OPTIONS = {
    "max_attempts": int,
    "base_delay": float,
    "max_delay": float,
    "failover_after": int,
    "circuit_failures": int,
    "circuit_cool_down": float,
    "sending_timeout": float,
}


def _unknown(url: ProviderUrl) -> None:
    if url.extra:
        names = ", ".join(sorted({n for n, _ in url.extra}))
        raise url.fail(f"unknown option(s) {names}")


COMMON = frozenset({"price", "timeout"}) | LANE_OPTIONS | frozenset(POLICY_OPTIONS)


def _http_json(url: ProviderUrl, env: Mapping[str, str]) -> SmsGateway:
    if not url.host:
        raise url.fail("the gateway's host is missing")
    if url.username:
        raise url.fail("credentials go in auth_env, not in the URL")
    template = url.text("body", "")
    if url.text("body_file"):
        try:
            template = Path(url.text("body_file")).read_text(encoding="utf-8")
        except OSError as exc:
            raise url.fail(f"body_file cannot be read ({exc.strerror})") from None
    secret = url.secret("auth_env", env, required=False)
    scheme = url.text("auth_scheme")
    netloc = url.host if url.port is None else f"{url.host}:{url.port}"
    endpoint = urlunsplit((url.scheme, netloc, url.path or "/", urlencode(url.extra), ""))
    return HttpJsonSms(
        HttpJsonConfig(
            url=endpoint,
            body_template=template or DEFAULT_TEMPLATE,
            id_path=url.text("id_path", "id") or "id",
            auth_header=url.text("auth_header", "Authorization") or "Authorization",
            auth_value=f"{scheme} {secret}" if scheme and secret else secret,
            sender=url.text("from"),
            idempotency_header=url.text("idempotency_header", "Idempotency-Key"),
            price=url.number("price", 0.0),
            timeout=url.number("timeout", 10.0) or 10.0,
        )
    )


HTTP_OPTIONS = COMMON | frozenset(
    {"auth_header", "auth_env", "auth_scheme", "body", "body_file", "id_path", "from", "idempotency_header"}
)


def _twilio(url: ProviderUrl, env: Mapping[str, str]) -> SmsGateway:
    _unknown(url)
    account = url.username or url.text("account")
    if not account.startswith("AC"):
        raise url.fail("the account SID (AC…) goes before the @: twilio://ACxxx@?from=…")
    if not (url.text("from") or url.text("messaging_service")):
        raise url.fail("from=+E164 (or messaging_service=MG…) is required")
    return TwilioSms(
        TwilioConfig(
            account_sid=account,
            auth_token=url.secret("token_env", env),
            from_number=url.text("from"),
            messaging_service_sid=url.text("messaging_service"),
            status_callback=url.text("status_callback"),
            api_base=url.text("api") or TWILIO_API,
            price=url.number("price", 0.0),
            timeout=url.number("timeout", 10.0) or 10.0,
        )
    )


TWILIO_OPTIONS = COMMON | frozenset(
    {"token_env", "from", "messaging_service", "status_callback", "api", "account"}
)


def _zenvia(url: ProviderUrl, env: Mapping[str, str]) -> SmsGateway:
    _unknown(url)
    if not url.text("from"):
        raise url.fail("from=<the SMS account alias on the Zenvia platform> is required")
    return ZenviaSms(
        ZenviaConfig(
            sender=url.text("from"),
            token=url.secret("token_env", env),
            api_base=url.text("api") or ZENVIA_API,
            price=url.number("price", 0.0),
            timeout=url.number("timeout", 10.0) or 10.0,
        )
    )


ZENVIA_OPTIONS = COMMON | frozenset({"token_env", "from", "api"})


def _smpp(url: ProviderUrl, env: Mapping[str, str]) -> SmsGateway:
    _unknown(url)
    if not url.host or not url.username:
        raise url.fail("system_id and host are required: smpp://system_id@host:2775?password_env=…")
    bind = url.text("bind", "transceiver") or "transceiver"
    if bind not in BINDS:
        raise url.fail(f"bind must be one of {', '.join(sorted(BINDS))}")

    def optional_int(name: str) -> int | None:
        return None if url.text(name) == "" else int(url.number(name, 0, cast=int))

    return SmppSms(
        SmppConfig(
            host=url.host,
            port=url.port or 2775,
            system_id=url.username,
            password=url.secret("password_env", env),
            system_type=url.text("system_type"),
            bind=bind,
            source=url.text("source"),
            source_ton=optional_int("source_ton"),
            source_npi=optional_int("source_npi"),
            dest_ton=int(url.number("dest_ton", 1, cast=int)),
            dest_npi=int(url.number("dest_npi", 1, cast=int)),
            service_type=url.text("service_type"),
            registered_delivery=optional_int("registered_delivery"),
            enquire_link_s=url.number("enquire_link", 30.0) or 30.0,
            response_timeout_s=url.number("timeout", 10.0) or 10.0,
            window=int(url.number("window", 10, cast=int)) or 1,
            throttle_pause_s=url.number("throttle_pause", 1.0),
            price=url.number("price", 0.0),
        )
    )


SMPP_OPTIONS = COMMON | frozenset(
    {
        "password_env",
        "system_type",
        "source",
        "bind",
        "source_ton",
        "source_npi",
        "dest_ton",
        "dest_npi",
        "service_type",
        "registered_delivery",
        "enquire_link",
        "window",
        "throttle_pause",
    }
)

BUILDERS: dict[str, tuple[frozenset[str], Callable[[ProviderUrl, Mapping[str, str]], SmsGateway]]] = {
    "http": (HTTP_OPTIONS, _http_json),
    "https": (HTTP_OPTIONS, _http_json),
    "twilio": (TWILIO_OPTIONS, _twilio),
    "zenvia": (ZENVIA_OPTIONS, _zenvia),
    "smpp": (SMPP_OPTIONS, _smpp),
}


def scheme_of(url: str) -> str:
    return urlsplit(url.strip()).scheme.lower()


def provider_from_url(
    url: str, *, env: Mapping[str, str] | None = None, key: str = "service.sms_provider"
) -> tuple[SmsGateway, ProviderUrl]:
    """The bare adapter a real provider's URL names, and the parsed URL (for its options)."""
    env = os.environ if env is None else env
    scheme = scheme_of(url)
    if scheme not in BUILDERS:
        shown = f"{scheme}://" if scheme else "a URL without a scheme"
        raise ConfigError(
            "settings",
            key,
            f"unsupported SMS provider {shown}; supported: {SUPPORTED}. Every adapter ships with "
            "Régua (nothing to install); see sms_gateway/factory.py for each URL's options, e.g. "
            "twilio://ACxxx@?from=+15550001111&token_env=TWILIO_AUTH_TOKEN",
        )
    known, build = BUILDERS[scheme]
    parsed = parse_url(url, key, known)
    return build(parsed, env), parsed


def lane_policy(url: ProviderUrl) -> LanePolicy:
    return LanePolicy(rate=url.number("rate", 0.0), burst=url.number("burst", 1.0) or 1.0)


def resilience_policy(url: ProviderUrl) -> ResiliencePolicy:
    defaults = ResiliencePolicy()
    values = {
        name: url.number(name, getattr(defaults, name), cast=cast) for name, cast in POLICY_OPTIONS.items()
    }
    values["max_attempts"] = max(1, values["max_attempts"])
    return ResiliencePolicy(**values)


def gateway_from_urls(
    primary: str,
    fallback: str = "",
    *,
    ledger: SmsLedger,
    clock: Clock,
    outbox: Outbox | None = None,
    env: Mapping[str, str] | None = None,
) -> SmsGateway:
    """The gateway for a primary URL and an optional fallback URL. ``ledger``: where sends
    are remembered (the store); ``outbox``: where the sandbox writes (the store too)."""
    primary_is_sandbox = scheme_of(primary) == "sandbox"
    if fallback and (primary_is_sandbox or scheme_of(fallback) == "sandbox"):
        raise ConfigError(
            "settings",
            "service.sms_fallback_provider",
            "the sandbox cannot be combined with another provider: a debtor would be 'texted' "
            "by the sandbox without anything being sent",
        )
    if primary_is_sandbox:
        if outbox is None:
            raise ValueError("the sandbox gateway needs an outbox (the store)")
        return SandboxSms(outbox, clock)
    first, first_url = provider_from_url(primary, env=env)
    second = second_url = None
    if fallback:
        second, second_url = provider_from_url(fallback, env=env, key="service.sms_fallback_provider")
    return ResilientSms(
        first,
        second,
        ledger=ledger,
        policy=resilience_policy(first_url),
        primary_lane=lane_policy(first_url),
        secondary_lane=lane_policy(second_url) if second_url is not None else LanePolicy(),
    )


def gateway_from_settings(settings: Settings, store: Store, clock: Clock) -> SmsGateway:
    """``service.sms_provider`` (+ ``sms_fallback_provider``), its ledger and outbox the store."""
    service = settings.service
    return gateway_from_urls(
        service.sms_provider, service.sms_fallback_provider, ledger=store, outbox=store, clock=clock
    )
