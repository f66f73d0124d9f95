"""Build the payment provider ``payments.provider`` names.

======================================  ==========================================================
``sandbox://``                          charges in memory; the demo's debtors pay (SANDBOX).
                                        Options: ``pay_ratio`` (0-1, default 0.35)
``pix+https://api.psp.com.br/v2``       the Banco Central's Pix API (``payments.pix_api``)
``asaas://``                            Asaas (``payments.asaas``)
``signed://``                           the company's system posts signed payments (``payments.signed``)
======================================  ==========================================================

Every real provider also takes ``timeout`` (s, default 15) and ``attempts`` (default 4).
Secrets are read from the environment variables the ``*_env`` options name; a secret
written into the URL is refused, and no error quotes one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from dialer.errors import ConfigError
from dialer.formats.provider_url import ProviderUrl, parse_url, refuse_extra
from payments.asaas import ASAAS_API, AsaasProvider
from payments.base import PaymentProvider
from payments.http import ProviderHttp, tls_context
from payments.pix_api import PixApiProvider
from payments.sandbox import SandboxPayments
from payments.signed import SignedWebhookProvider

if TYPE_CHECKING:
    from dialer.settings import Settings

KEY = "payments.provider"
SUPPORTED = "sandbox://, pix+https://…, asaas://, signed://"
HTTP_OPTIONS = frozenset({"timeout", "attempts"})
PIX_OPTIONS = HTTP_OPTIONS | frozenset(
    {
        "client_id_env",
        "client_secret_env",
        "cert",
        "key",
        "ca",
        "token_url",
        "scope",
        "chave",
        "webhook_token_env",
        "mtls",
        "verify_header",
        "proxies",
    }
)
ASAAS_OPTIONS = HTTP_OPTIONS | frozenset({"token_env", "webhook_token_env", "api", "billing"})
SIGNED_OPTIONS = frozenset({"secret_env", "previous_secret_env", "tolerance"})


def _file(url: ProviderUrl, option: str) -> str:
    path = url.text(option)
    if path and not Path(path).is_file():
        raise url.fail(f"{option}: no file at {path}")
    return path


def _http(url: ProviderUrl, name: str, secrets: tuple[str, ...], **tls: str) -> ProviderHttp:
    if tls.get("key") and not tls.get("cert"):
        raise url.fail("key is our client certificate's private key: give cert too")
    try:
        context = tls_context(**tls)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise url.fail(f"the certificate files cannot be read ({type(exc).__name__})") from None
    timeout = url.number("timeout", 15.0)
    if timeout <= 0:
        raise url.fail("timeout must be more than 0 seconds")
    return ProviderHttp(
        name,
        timeout=timeout,
        attempts=url.number("attempts", 4, cast=int),
        tls=context,
        secrets=secrets,
        client_cert=bool(tls.get("cert")),
    )


def _pix(url: ProviderUrl, env: Mapping[str, str], settings: Settings | None) -> PaymentProvider:
    refuse_extra(url)
    scheme = url.scheme.split("+", 1)[1]
    if scheme not in ("https", "http") or not url.host:
        raise url.fail("write it as pix+https://api.psp.com.br/v2 (the PSP's API base)")
    host = f"[{url.host}]" if ":" in url.host else url.host  # an IPv6 address
    origin = f"{scheme}://{host}" + (f":{url.port}" if url.port else "")
    client_id = url.secret("client_id_env", env)
    client_secret = url.secret("client_secret_env", env)
    webhook_token = url.secret("webhook_token_env", env)
    chave = url.text("chave") or (settings.company.pix_key if settings else "")
    if not chave:
        raise url.fail("chave (the Pix key) is required, or company.pix_key")
    mtls = url.text("mtls", "proxy")
    if mtls not in ("proxy", "required", "off"):
        raise url.fail("mtls must be proxy, required or off")
    http = _http(
        url,
        "pix",
        (client_secret, webhook_token),
        cert=_file(url, "cert"),
        key=_file(url, "key"),
        ca=_file(url, "ca"),
    )
    try:
        proxies = tuple(
            p.strip() for p in url.text("proxies", "127.0.0.1/32,::1/128").split(",") if p.strip()
        )
        return PixApiProvider(
            origin + url.path,
            client_id=client_id,
            client_secret=client_secret,
            token_url=url.text("token_url") or origin + "/oauth/token",
            chave=chave,
            webhook_token=webhook_token,
            http=http,
            scope=url.text("scope"),
            mtls=mtls,
            verify_header=url.text("verify_header", "X-SSL-Client-Verify"),
            proxies=proxies,
        )
    except ValueError:
        raise url.fail("proxies must be addresses or networks, comma-separated") from None


def _asaas(url: ProviderUrl, env: Mapping[str, str]) -> PaymentProvider:
    refuse_extra(url)
    api_key = url.secret("token_env", env)
    webhook_token = url.secret("webhook_token_env", env)
    billing = url.text("billing", "auto").upper()
    if billing not in ("AUTO", "PIX", "BOLETO"):
        raise url.fail("billing must be auto, PIX or BOLETO")
    api = url.text("api", ASAAS_API)
    if not api.startswith(("https://", "http://")):
        raise url.fail("api must be an http(s) URL")
    return AsaasProvider(
        api_key=api_key,
        webhook_token=webhook_token,
        http=_http(url, "asaas", (api_key, webhook_token)),
        api=api,
        billing=billing if billing != "AUTO" else "auto",
    )


def _signed(url: ProviderUrl, env: Mapping[str, str]) -> PaymentProvider:
    refuse_extra(url)
    secret = url.secret("secret_env", env)
    if len(secret) < 16:
        raise ConfigError(
            "environment", url.text("secret_env"), "the webhook secret must have at least 16 characters"
        )
    return SignedWebhookProvider(
        secret,
        previous_secret=url.secret("previous_secret_env", env, required=False),
        tolerance=url.number("tolerance", 300.0),
    )


def _sandbox(url: ProviderUrl, settings: Settings | None) -> PaymentProvider:
    refuse_extra(url)
    ratio = url.number("pay_ratio", 0.35)
    if ratio > 1:
        raise url.fail("pay_ratio is a share: 0 to 1")
    company = settings.company if settings else None
    return SandboxPayments(
        pix_key=company.pix_key if company else "",
        merchant=(company.pix_merchant_name if company else "") or "REGUA SANDBOX",
        city=(company.pix_merchant_city if company else "") or "SAO PAULO",
        pay_ratio=ratio,
    )


def provider_from_url(
    url: str, *, settings: Settings | None = None, env: Mapping[str, str] | None = None
) -> PaymentProvider:
    env = os.environ if env is None else env
    scheme = url.strip().split("://", 1)[0].lower() if "://" in url else ""
    known = {
        "sandbox": frozenset({"pay_ratio"}),
        "asaas": ASAAS_OPTIONS,
        "signed": SIGNED_OPTIONS,
        "pix+https": PIX_OPTIONS,
        "pix+http": PIX_OPTIONS,
    }
    if scheme not in known:
        raise ConfigError("settings", KEY, f"unknown payment provider {scheme or url!r}: use {SUPPORTED}")
    parsed = parse_url(url, KEY, known[scheme])
    match scheme:
        case "sandbox":
            return _sandbox(parsed, settings)
        case "asaas":
            return _asaas(parsed, env)
        case "signed":
            return _signed(parsed, env)
        case _:
            return _pix(parsed, env, settings)


def payments_from_settings(settings: Settings, env: Mapping[str, str] | None = None) -> PaymentProvider:
    return provider_from_url(settings.payments.provider, settings=settings, env=env)
