"""The HTTP API, the dashboard, the debtor pages and the webhooks (aiohttp).

``create_app(services)`` builds the application from every module's route table, listed
here — the whole surface of the service is this list. Each route names its role; the
auth middleware refuses anything else before the handler runs. Errors are JSON
``{"error": …}`` with a status code and a sentence saying what to do — never a
traceback, a token or a debtor's data.
"""

from __future__ import annotations

import logging
import time
import uuid

from aiohttp import web

from dialer.errors import ConfigError, HeaderError, InputError, StoreError, UnknownCampaign
from dialer.runtime.wiring import Runtime
from dialer.store import Store
from dialer.telephony.base import Telephony
from dialer.web import (
    accounts,
    auth,
    callbacks,
    campaigns,
    config,
    health,
    pages,
    pay,
    prompts,
    sms_webhooks,
    suppressions,
)
from dialer.web.common import ROLE, SERVICES, Handler, RouteTable, Services
from sms_gateway.base import SmsGateway

log = logging.getLogger("regua.api")

#: Every route of the service, by module.
ROUTE_TABLES: tuple[RouteTable, ...] = (
    health.routes,  # /healthz, /metrics, /api/health, /api/short-calls
    pages.routes,  # /login, /logout, /, /api/me
    campaigns.routes,  # /api/campaigns…
    accounts.routes,  # /api/accounts/{id}/…
    callbacks.routes,  # /api/callbacks…
    suppressions.routes,  # /api/suppressions…
    config.routes,  # /api/config
    prompts.routes,  # /api/prompts…
    pay.routes,  # /pay/{token}
    sms_webhooks.routes,  # /webhooks/sms/{provider}
)


def _wants_html(request: web.Request) -> bool:
    return not request.path.startswith("/api/") and "text/html" in request.headers.get("Accept", "")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    need = getattr(getattr(request.match_info, "handler", None), "required_role", None)
    if need is None:  # a route that forgot its role is a bug: refuse, do not serve
        need = "admin" if request.match_info.http_exception is None else "public"
    services = request.app[SERVICES]
    role = None
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        role = services.tokens.role_of(header[7:].strip())
    if role is None:
        cookie = request.cookies.get(auth.SESSION_COOKIE, "")
        if cookie:
            role = auth.read_session(services.runtime.secret, cookie)
    request[ROLE] = role or ""
    if not auth.allowed(role, need):
        if role is None and _wants_html(request):
            raise web.HTTPFound("/login")
        status = 401 if role is None else 403
        message = (
            "sign in: send 'Authorization: Bearer <token>'"
            if role is None
            else f"this needs the {need} role; yours is {role}"
        )
        return web.json_response({"error": message}, status=status)
    return await handler(request)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except (HeaderError, InputError, ConfigError) as exc:
        return web.json_response({"error": str(exc)}, status=400)
    except UnknownCampaign as exc:
        return web.json_response({"error": str(exc)}, status=404)
    except StoreError as exc:
        return web.json_response({"error": str(exc)}, status=503)
    except Exception:
        incident = uuid.uuid4().hex[:8]
        log.exception("request %s %s failed (incident %s)", request.method, request.path, incident)
        return web.json_response(
            {"error": f"internal error; the service log has the details (incident {incident})"}, status=500
        )


def create_app(services: Services) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=campaigns.MAX_UPLOAD
    )
    app[SERVICES] = services
    for table in ROUTE_TABLES:
        for r in table:
            app.router.add_route(r.method, r.path, r.handler)
    return app


async def start_api(
    runtime: Runtime, store: Store, telephony: Telephony | None, sms: SmsGateway | None
) -> web.AppRunner:
    tokens, source = auth.load_tokens(runtime.settings.service.data_dir)
    log.info("API tokens from %s", source)
    services = Services(runtime, store, telephony, sms, tokens, time.monotonic())
    app = create_app(services)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, runtime.settings.service.http_host, runtime.settings.service.http_port)
    await site.start()
    log.info(
        "dashboard and API on http://%s:%d/",
        runtime.settings.service.http_host,
        runtime.settings.service.http_port,
    )
    return runner
