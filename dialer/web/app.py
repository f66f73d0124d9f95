"""The HTTP API and dashboard (aiohttp), built by ``create_app(services)``.

Every route names its role (``public``, ``operator``, ``supervisor``, ``admin``; see
``dialer.web.auth``); the auth middleware refuses anything else before the handler runs.
Errors are JSON ``{"error": …}`` with a status code and a sentence saying what to do —
never a traceback, a token or a debtor's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from dialer.errors import ConfigError, HeaderError, InputError, StoreError
from dialer.runtime import operations
from dialer.store import TRANSITIONS, Store
from dialer.web import auth

log = logging.getLogger("regua.api")
WEB = Path(__file__).parent / "templates"
MAX_UPLOAD = 2 * 1024**3

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Services:
    runtime: Any  # dialer.runtime.Runtime
    store: Store
    telephony: Any
    sms: Any
    tokens: auth.TokenBook
    started: float = 0.0


SERVICES = web.AppKey("services", Services)
ROLE = web.RequestKey("role", str)  # the caller's role ("" when anonymous)
_ROUTES: list[tuple[str, str, Handler, str]] = []


def route(method: str, path: str, role: str) -> Callable[[Handler], Handler]:
    """Register a handler with the role it needs (explicit for every route)."""
    assert role in ("public", *auth.ROLES), role

    def register(fn: Handler) -> Handler:
        fn.required_role = role  # type: ignore[attr-defined]
        _ROUTES.append((method, path, fn, role))
        return fn

    return register


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
    except StoreError as exc:
        status = 404 if "no campaign" in str(exc) else 503
        return web.json_response({"error": str(exc)}, status=status)
    except Exception:
        incident = uuid.uuid4().hex[:8]
        log.exception("request %s %s failed (incident %s)", request.method, request.path, incident)
        return web.json_response(
            {"error": f"internal error; the service log has the details (incident {incident})"}, status=500
        )


def _actor(request: web.Request) -> str:
    return f"api:{request.get(ROLE) or 'anonymous'}"


def _now(request: web.Request) -> datetime:
    return request.app[SERVICES].runtime.clock.now()  # type: ignore[no-any-return]


# ------------------------------------------------------------------ public


@route("GET", "/healthz", "public")
async def healthz(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    redis_ok = await s.store.ping()
    voice = s.telephony.health() if s.telephony is not None else {"state": "none"}
    state = voice.get("state", "unknown")
    status = "ok" if redis_ok and state in ("connected", "none") else "degraded"
    if not redis_ok:
        status = "down"
    body = {
        "status": status,
        "redis": "up" if redis_ok else "down",
        "voice": state,
        "sandbox": bool(voice.get("sandbox")),
    }
    return web.json_response(body, status=200 if redis_ok else 503)


@route("GET", "/login", "public")
async def login_page(request: web.Request) -> web.Response:
    return web.Response(text=(WEB / "login.html").read_text(), content_type="text/html")


@route("POST", "/login", "public")
async def login(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    form = await request.post()
    role = s.tokens.role_of(str(form.get("token", "")))
    if role is None:
        await asyncio.sleep(0.5)  # slow down guessing
        raise web.HTTPFound("/login?failed=1")
    response = web.HTTPFound("/")
    response.set_cookie(
        auth.SESSION_COOKIE,
        auth.make_session(s.runtime.secret, role),
        httponly=True,
        samesite="Strict",
        max_age=auth.SESSION_TTL_S,
    )
    raise response


@route("POST", "/logout", "public")
async def logout(request: web.Request) -> web.Response:
    response = web.HTTPFound("/login")
    response.del_cookie(auth.SESSION_COOKIE)
    raise response


# ------------------------------------------------------------------ operator


@route("GET", "/metrics", "operator")
async def metrics(request: web.Request) -> web.Response:
    from dialer.runtime.metrics import render_metrics

    body, content_type = await render_metrics(request.app[SERVICES])
    return web.Response(body=body, headers={"Content-Type": content_type})


@route("GET", "/api/health", "operator")
async def health_details(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    return web.json_response(
        {
            "redis": await s.store.ping(),
            "voice": s.telephony.health() if s.telephony is not None else None,
            "sms": s.sms.health() if s.sms is not None else None,
            "uptime_s": round(time.monotonic() - s.started, 1),
            "clock": _now(request).isoformat(),
        }
    )


@route("GET", "/api/short-calls", "operator")
async def short_calls(request: web.Request) -> web.Response:
    """Answered calls of 6 s or less, per trunk, for a day (Anatel blocks callers at 85 %)."""
    s = request.app[SERVICES]
    day = request.query.get("day") or _now(request).strftime("%Y-%m-%d")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise InputError("day must be YYYY-MM-DD")
    trunks: dict[str, dict[str, float]] = dict(await s.store.short_calls(day))  # type: ignore[arg-type]
    for t in trunks.values():
        t["ratio"] = round(t["short"] / t["answered"], 4) if t["answered"] else 0.0
    return web.json_response({"day": day, "threshold": 0.85, "trunks": trunks})


# ------------------------------------------------------------------ supervisor


@route("GET", "/", "supervisor")
async def dashboard(request: web.Request) -> web.Response:
    return web.Response(text=(WEB / "dashboard.html").read_text(), content_type="text/html")


@route("GET", "/api/me", "supervisor")
async def me(request: web.Request) -> web.Response:
    return web.json_response({"role": request[ROLE]})


@route("GET", "/api/campaigns", "supervisor")
async def campaigns(request: web.Request) -> web.Response:
    store = request.app[SERVICES].store
    return web.json_response([await store.status(n) for n in await store.campaign_names()])


@route("GET", "/api/campaigns/{name}", "supervisor")
async def campaign_status(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SERVICES].store.status(request.match_info["name"]))


@route("GET", "/api/campaigns/{name}/series", "supervisor")
async def campaign_series(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SERVICES].store.series(request.match_info["name"]))


@route("POST", "/api/campaigns/{name}/upload", "supervisor")
async def upload(request: web.Request) -> web.Response:
    """Body: the campaign file (text/csv, or multipart with a ``file`` field). ``?start=1``."""
    s = request.app[SERVICES]
    name = request.match_info["name"]
    fd, tmp = tempfile.mkstemp(prefix="regua-upload-", suffix=".csv")
    size = 0
    try:
        with os.fdopen(fd, "wb") as fh:
            if request.content_type.startswith("multipart/"):
                reader = await request.multipart()
                part = await reader.next()
                while part is not None and getattr(part, "name", None) != "file":
                    part = await reader.next()
                if part is None:
                    raise InputError("multipart upload without a 'file' field")
                while chunk := await part.read_chunk(1 << 16):  # type: ignore[union-attr]
                    size += len(chunk)
                    fh.write(chunk)
            else:
                async for chunk in request.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > MAX_UPLOAD:
                        raise InputError("file larger than 2 GiB: load it with `python -m dialer load`")
                    fh.write(chunk)
        if size == 0:
            raise InputError("empty upload: send the campaign file as the request body")
        summary, errors = await asyncio.to_thread(_load_in_thread, s, tmp, name, _actor(request))
        if request.query.get("start") in ("1", "true", "yes"):
            await s.store.transition(name, "start", _now(request), _actor(request))
        return web.json_response({**summary, "errors": errors[:1000]})
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _load_in_thread(
    s: Services, path: str, campaign: str, actor: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Loading reads a file row by row: do it off the service's event loop, on a loop of its own."""
    import csv
    import io

    from dialer.formats.campaign_file import RowDefaults
    from dialer.runtime.ingest import load_file

    runtime = s.runtime
    settings = runtime.settings

    async def main() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        store = await Store.connect(s.store.url)
        buf = io.StringIO()
        try:
            summary = await load_file(
                store,
                path,
                campaign,
                defaults=RowDefaults(
                    settings.policy.default_consent_voice, settings.policy.default_consent_sms
                ),
                secret=runtime.secret,
                cadence=runtime.cadence,
                now=runtime.clock.now(),
                actor=actor,
                errors_to=buf,
            )
        finally:
            await store.close()
        rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
        return summary.as_dict(), rows

    return asyncio.run(main())


@route("GET", "/api/campaigns/{name}/report.csv", "supervisor")
async def campaign_report(request: web.Request) -> web.StreamResponse:
    """One CSV row per account, streamed in batches (the rows never sit in memory together)."""
    import csv
    import io

    from dialer.formats.report import COLUMNS, report_row

    store = request.app[SERVICES].store
    name = request.match_info["name"]
    await store.status(name)  # unknown campaign: a 404 from the error middleware
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{name}-report.csv"',
        }
    )
    await response.prepare(request)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS)
    writer.writeheader()
    async for batch in store.iter_accounts(name):
        for state, next_at, suppressed in batch:
            writer.writerow(report_row(state.account, state.phones, state.history, next_at, suppressed))
        await response.write(buf.getvalue().encode())
        buf.seek(0)
        buf.truncate()
    await response.write(buf.getvalue().encode())
    await response.write_eof()
    return response


@route("POST", "/api/campaigns/{name}/{action:start|pause|resume|stop}", "supervisor")
async def lifecycle(request: web.Request) -> web.Response:
    return await _transition(request)


async def _transition(request: web.Request) -> web.Response:
    store = request.app[SERVICES].store
    name, action = request.match_info["name"], request.match_info["action"]
    result, previous = await store.transition(name, action, _now(request), _actor(request))
    if result == "missing":
        return web.json_response({"error": f"no campaign named {name!r}"}, status=404)
    if result == "refused":
        allowed = sorted(TRANSITIONS[action][0])
        return web.json_response(
            {"error": f"cannot {action} a campaign that is {previous} (allowed from: {', '.join(allowed)})"},
            status=409,
        )
    return web.json_response({"campaign": name, "from": previous, "to": TRANSITIONS[action][1]})


@route("GET", "/api/accounts/{account_id}/timeline", "supervisor")
async def timeline(request: web.Request) -> web.Response:
    store = request.app[SERVICES].store
    events = await store.timeline(request.match_info["account_id"], request.query.get("campaign"))
    if not events:
        return web.json_response({"error": "no events for that account"}, status=404)
    return web.json_response(events)


@route("POST", "/api/accounts/{account_id}/status", "supervisor")
async def account_status(request: web.Request) -> web.Response:
    """``{"status": "paid"|"disputed"|"closed"|"open", "campaign"?: str, "note"?: str}``"""
    from dialer.domain import AccountStatus

    body = await _json(request)
    raw = body.get("status")
    try:
        status = AccountStatus(str(raw))
    except ValueError:
        allowed = ", ".join(s.value for s in AccountStatus)
        return web.json_response({"error": f"field 'status': {raw!r} is not one of {allowed}"}, status=400)
    campaign, note = body.get("campaign"), body.get("note", "")
    if (
        (campaign is not None and not isinstance(campaign, str))
        or not isinstance(note, str)
        or len(note) > 500
    ):
        return web.json_response(
            {"error": "field 'campaign' must be a string and 'note' a string of at most 500 characters"},
            status=400,
        )
    account_id = request.match_info["account_id"]
    changes = await operations.set_account_status(
        request.app[SERVICES].store,
        account_id,
        status,
        _now(request),
        _actor(request),
        note=note,
        campaign=campaign,
    )
    if not changes:
        return web.json_response({"error": f"account {account_id!r} is in no campaign"}, status=404)
    return web.json_response({"account": account_id, "status": status, "campaigns": changes})


@route("GET", "/api/callbacks", "supervisor")
async def callbacks(request: web.Request) -> web.Response:
    return web.json_response(await request.app[SERVICES].store.callbacks())


@route("POST", "/api/callbacks/complete", "supervisor")
async def callback_done(request: web.Request) -> web.Response:
    body = await _json(request)
    removed = await request.app[SERVICES].store.complete_callback(body)
    if not removed:
        return web.json_response({"error": "no such callback request"}, status=404)
    await request.app[SERVICES].store.audit_global(_now(request), _actor(request), "callback_done", body)
    return web.json_response({"done": True})


@route("GET", "/api/suppressions", "supervisor")
async def suppressions(request: web.Request) -> web.Response:
    limit = min(int(request.query.get("limit", "500") or 500), 10_000)
    return web.json_response(await request.app[SERVICES].store.suppression_list(limit))


@route("POST", "/api/suppressions", "supervisor")
async def suppress(request: web.Request) -> web.Response:
    from dialer.domain import Channel, Suppression, SuppressionReason
    from dialer.formats.campaign_file import normalise_phone

    body = await _json(request)
    try:
        number, _ = normalise_phone(str(body.get("number", "")))
    except ValueError as exc:
        raise InputError(f"field 'number' {exc}") from None
    try:
        channel = Channel(body["channel"]) if body.get("channel") else None
        reason = SuppressionReason(body.get("reason", "opt_out"))
    except ValueError as exc:
        raise InputError(
            f"{exc}; channel is voice|sms, reason one of " + ", ".join(r.value for r in SuppressionReason)
        ) from None
    store = request.app[SERVICES].store
    entry = Suppression(number, reason, channel, None, str(body.get("source", "dashboard"))[:64])
    await operations.suppress(store, [entry], _now(request), _actor(request))
    return web.json_response(
        {"number": number, "channel": channel.value if channel else "*", "reason": reason.value}, status=201
    )


# ------------------------------------------------------------------ admin


@route("POST", "/api/campaigns/{name}/{action:archive}", "admin")
async def archive(request: web.Request) -> web.Response:
    return await _transition(request)


@route("DELETE", "/api/suppressions/{number}", "admin")
async def unsuppress(request: web.Request) -> web.Response:
    from dialer.domain import Channel
    from dialer.formats.campaign_file import normalise_phone

    try:
        number, _ = normalise_phone(request.match_info["number"])
        channel = Channel(request.query["channel"]) if request.query.get("channel") else None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    store = request.app[SERVICES].store
    removed = await operations.unsuppress(store, number, channel, _now(request), _actor(request))
    if not removed:
        return web.json_response({"error": "that number was not suppressed on that channel"}, status=404)
    return web.json_response({"number": number, "lifted": True})


@route("GET", "/api/config", "admin")
async def get_config(request: web.Request) -> web.Response:
    s = request.app[SERVICES]
    overlay, version = await s.store.config_overlay()
    data = s.runtime.settings.model_dump(mode="json")
    data["service"].pop("secret_key", None)
    data["service"]["redis_url"] = "***" if data["service"].get("redis_url") else ""
    data["service"]["ami_urls"] = [u.split("@")[-1] for u in data["service"].get("ami_urls", [])]
    return web.json_response({"version": version, "overlay": overlay, "effective": data})


@route("PUT", "/api/config", "admin")
async def put_config(request: web.Request) -> web.Response:
    """Body: TOML laid over the files (hours, holidays, cadence, caps, limited message …).

    Validated exactly as at start (legal floors included); nothing is stored if it fails."""
    from dialer.formats.config_file import load_settings

    text = await request.text()
    if len(text) > 256 * 1024:
        raise InputError("configuration overlay larger than 256 KiB")
    forbidden = [k for k in ("[service]", "secret_key", "redis_url", "ami_urls") if k in text]
    if forbidden:
        raise InputError(
            "the service section (URLs, secrets) is set by the operator's environment, not through the API"
        )
    settings = load_settings(env=os.environ, overlay=text)  # raises ConfigError with key and reason
    s = request.app[SERVICES]
    version = await s.store.set_config_overlay(
        text, _now(request), _actor(request), f"{len(text)} bytes of TOML"
    )
    await s.runtime.apply(settings, version)
    return web.json_response({"version": version, "applied": True})


# ------------------------------------------------------------------ plumbing


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    return body


def create_app(services: Services) -> web.Application:
    app = web.Application(middlewares=[error_middleware, auth_middleware], client_max_size=MAX_UPLOAD)
    app[SERVICES] = services
    from dialer.web import prompts as admin_routes  # noqa: F401
    from dialer.web import sms_webhooks  # noqa: F401  (modules that register routes)

    for method, path, handler, _role in _ROUTES:
        app.router.add_route(method, path, handler)
    return app


async def start_api(runtime: Any, store: Store, telephony: Any, sms: Any) -> web.AppRunner:
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
