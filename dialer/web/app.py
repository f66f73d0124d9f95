"""The HTTP API, the dashboard, the debtor pages and the webhooks (aiohttp).

``create_app(services)`` builds the application from every module's route table, listed
here — the whole surface of the service is this list. Each route names its role; the
auth middleware refuses anything else before the handler runs. Errors are JSON
``{"error": …}`` with a status code and a sentence saying what to do — never a
traceback, a token or a debtor's data.
"""

from __future__ import annotations

import logging
import re
import ssl
import time
import uuid
from typing import Any

from aiohttp import web

from dialer.errors import ConfigError, HeaderError, InputError, StoreError, UnknownCampaign
from dialer.runtime.payments import Payments
from dialer.runtime.wiring import Runtime
from dialer.store import Store
from dialer.telephony.base import Telephony
from dialer.web import (
    accounts,
    agreements,
    auth,
    callbacks,
    campaigns,
    config,
    console_accounts,
    console_admin,
    console_admin_users,
    console_callbacks,
    console_campaigns,
    console_suppressions,
    debtor,
    health,
    pages,
    payment_webhooks,
    prompts,
    render,
    sms_webhooks,
    suppressions,
)
from dialer.web.common import DEFAULT_MAX_BODY, PRINCIPAL, SERVICES, Handler, RouteTable, Services
from sms_gateway.base import SmsGateway

log = logging.getLogger("regua.api")

#: Every route of the service, by module.
ROUTE_TABLES: tuple[RouteTable, ...] = (
    health.routes,  # /healthz, /metrics, /api/health, /api/short-calls
    pages.routes,  # /login, /logout, /api/me, /static/…
    console_campaigns.routes,  # /, /campaigns/{name}
    console_accounts.routes,  # /accounts, /accounts/{id}
    console_callbacks.routes,  # /callbacks
    console_suppressions.routes,  # /suppressions
    console_admin.routes,  # /admin/…
    console_admin_users.routes,  # /admin/users, /admin/tokens
    campaigns.routes,  # /api/campaigns…
    accounts.routes,  # /api/accounts/{id}/…
    callbacks.routes,  # /api/callbacks…
    suppressions.routes,  # /api/suppressions…
    config.routes,  # /api/config
    prompts.routes,  # /api/prompts…
    debtor.routes,  # /a/{token} (and /pay/{token}): the debtor's page
    agreements.routes,  # /api/agreements, offers, special offers
    sms_webhooks.routes,  # /webhooks/sms/{provider}
    payment_webhooks.routes,  # /webhooks/payments/{pix|asaas|signed}
)


def _wants_html(request: web.Request) -> bool:
    return not request.path.startswith("/api/") and "text/html" in request.headers.get("Accept", "")


def _limit(request: web.Request) -> int:
    handler = getattr(request.match_info, "handler", None)
    return int(getattr(handler, "max_body", DEFAULT_MAX_BODY))


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body larger than its route takes is refused before anything reads it (no
    authentication work, no parsing): by its Content-Length at once, while streaming when it
    has none (aiohttp stops reading at ``client_max_size``; streamed routes count)."""
    limit = _limit(request)
    length = request.content_length
    if length is not None and length > limit:
        return web.json_response(
            {"error": f"request body of {length:,} bytes is larger than this route takes ({limit:,} bytes)"},
            status=413,
        )
    return await handler(request)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    need = getattr(getattr(request.match_info, "handler", None), "required_role", None)
    if need is None:  # a route that forgot its role is a bug: refuse, do not serve
        need = "admin" if request.match_info.http_exception is None else "public"
    services = request.app[SERVICES]
    who = (
        await auth.principal_of(request, services.store, services.tokens)
        if _has_credentials(request)
        else None
    )
    if who is not None:
        request[PRINCIPAL] = who
    if not auth.allowed(who, need):
        if who is None and _wants_html(request):
            raise web.HTTPFound("/login")
        status = 401 if who is None else 403
        message = (
            "sign in, or send 'Authorization: Bearer <token>'"
            if who is None
            else f"this needs the {need} role; {who.name} is {who.role}"
        )
        return web.json_response({"error": message}, status=status)
    public_url = services.runtime.settings.service.public_url
    if (
        who is not None
        and who.via == "session"
        and request.method in auth.UNSAFE
        and not await auth.csrf_ok(request, who, public_url)
    ):
        return web.json_response(
            {"error": "refused: this change did not come from a Régua page (CSRF check); reload the page"},
            status=403,
        )
    return await handler(request)


def _has_credentials(request: web.Request) -> bool:
    return auth.SESSION_COOKIE in request.cookies or request.headers.get("Authorization", "").startswith(
        "Bearer "
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (HeaderError, InputError, ConfigError) as exc:
        return web.json_response({"error": _short(str(exc))}, status=400)
    except UnknownCampaign as exc:
        return web.json_response({"error": _short(str(exc))}, status=404)
    except StoreError as exc:
        return web.json_response({"error": _short(str(exc))}, status=503)
    except Exception:
        incident = uuid.uuid4().hex[:8]
        log.exception("request %s %s failed (incident %s)", request.method, safe_path(request.path), incident)
        return web.json_response(
            {"error": f"internal error; the service log has the details (incident {incident})"}, status=500
        )


_TOKEN_PATH = re.compile(r"^/(a|pay)/[^/]+")


def safe_path(path: str) -> str:
    """A path as logs may show it: a debtor link's token replaced (it opens a page)."""
    return _TOKEN_PATH.sub(r"/\1/…", path)


def _short(text: str, limit: int = 600) -> str:
    """An error never echoes kilobytes of the input."""
    return text if len(text) <= limit else text[:limit] + "…"


#: on every response; a page may set a stricter one of its own (the debtor pages do)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.get(PRINCIPAL) is not None:
        response.headers.setdefault("Cache-Control", "no-store")
    if request.secure or request.app[SERVICES].runtime.settings.service.public_url.startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    response.headers["Server"] = "Régua"  # not Python's and aiohttp's versions


def create_app(services: Services) -> web.Application:
    # client_max_size bounds what aiohttp reads into memory for any route (1 MiB); routes
    # that stream (uploads, recordings) count as they go, against their own limits
    app = web.Application(
        middlewares=[body_limit_middleware, error_middleware, auth_middleware], client_max_size=1024**2
    )
    app[SERVICES] = services
    app.on_response_prepare.append(_security_headers)
    render.setup(app)
    for table in ROUTE_TABLES:
        for r in table:
            app.router.add_route(r.method, r.path, r.handler)
    return app


def client_cert_context(service: Any) -> ssl.SSLContext:
    """TLS with our certificate that *requires* a client certificate signed by the provider's
    CA: how banks call back on the Pix API (the handler sees the verified certificate)."""
    if not (service.webhook_tls_cert and service.webhook_tls_client_ca):
        raise ConfigError(
            "settings",
            "service.webhook_tls_port",
            "needs webhook_tls_cert (and webhook_tls_key) and webhook_tls_client_ca",
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=service.webhook_tls_client_ca)
    context.load_cert_chain(service.webhook_tls_cert, service.webhook_tls_key or None)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


async def start_api(
    runtime: Runtime,
    store: Store,
    telephony: Telephony | None,
    sms: SmsGateway | None,
    payments: Payments | None = None,
) -> web.AppRunner:
    services = Services(runtime, store, telephony, sms, auth.TokenBook.from_env(), time.monotonic(), payments)
    if not await store.count_users():
        log.warning(
            "no users yet: create the first admin with `python -m dialer users add NAME --role admin`"
        )
    app = create_app(services)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    service = runtime.settings.service
    site = web.TCPSite(runner, service.http_host, service.http_port)
    await site.start()
    if service.webhook_tls_port:
        mtls = web.TCPSite(
            runner, service.http_host, service.webhook_tls_port, ssl_context=client_cert_context(service)
        )
        await mtls.start()
        log.info("mutual-TLS webhook listener on %s:%d", service.http_host, service.webhook_tls_port)
    log.info(
        "dashboard and API on http://%s:%d/",
        runtime.settings.service.http_host,
        runtime.settings.service.http_port,
    )
    return runner
