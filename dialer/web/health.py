"""Health and monitoring: ``/healthz`` (public), ``/metrics``, health details and the
short-call ratio (operator)."""

from __future__ import annotations

import re
import time

from aiohttp import web

from dialer.errors import InputError
from dialer.runtime.metrics import render_metrics
from dialer.web.common import RouteTable, now, services

routes = RouteTable()


@routes.route("GET", "/healthz", "public")
async def healthz(request: web.Request) -> web.Response:
    s = services(request)
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


@routes.route("GET", "/metrics", "operator")
async def metrics(request: web.Request) -> web.Response:
    body, content_type = await render_metrics(services(request))
    return web.Response(body=body, headers={"Content-Type": content_type})


@routes.route("GET", "/api/health", "operator")
async def health_details(request: web.Request) -> web.Response:
    s = services(request)
    return web.json_response(
        {
            "redis": await s.store.ping(),
            "voice": s.telephony.health() if s.telephony is not None else None,
            "sms": s.sms.health() if s.sms is not None else None,
            "uptime_s": round(time.monotonic() - s.started, 1),
            "clock": now(request).isoformat(),
        }
    )


@routes.route("GET", "/api/short-calls", "operator")
async def short_calls(request: web.Request) -> web.Response:
    """Answered calls of 6 s or less, per trunk, for a day (Anatel blocks callers at 85 %)."""
    s = services(request)
    day = request.query.get("day") or now(request).strftime("%Y-%m-%d")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise InputError("day must be YYYY-MM-DD")
    trunks: dict[str, dict[str, float]] = dict(await s.store.short_calls(day))  # type: ignore[arg-type]
    for t in trunks.values():
        t["ratio"] = round(t["short"] / t["answered"], 4) if t["answered"] else 0.0
    return web.json_response({"day": day, "threshold": 0.85, "trunks": trunks})
