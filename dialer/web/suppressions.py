"""The do-not-contact list: list and add (supervisor), lift (admin)."""

from __future__ import annotations

from aiohttp import web

from dialer.domain import Channel, Suppression, SuppressionReason
from dialer.errors import InputError
from dialer.formats.cell_values import normalise_phone
from dialer.runtime import operations
from dialer.web.common import RouteTable, actor, json_body, now, query_int, services

routes = RouteTable()


@routes.route("GET", "/api/suppressions", "supervisor")
async def suppressions(request: web.Request) -> web.Response:
    limit = query_int(request, "limit", 500, low=1, high=10_000)
    return web.json_response(await services(request).store.suppression_list(limit))


@routes.route("POST", "/api/suppressions", "supervisor")
async def suppress(request: web.Request) -> web.Response:
    body = await json_body(request)
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
    store = services(request).store
    entry = Suppression(number, reason, channel, None, str(body.get("source", "dashboard"))[:64])
    await operations.suppress(store, [entry], now(request), actor(request))
    return web.json_response(
        {"number": number, "channel": channel.value if channel else "*", "reason": reason.value}, status=201
    )


@routes.route("DELETE", "/api/suppressions/{number}", "admin")
async def unsuppress(request: web.Request) -> web.Response:
    try:
        number, _ = normalise_phone(request.match_info["number"])
        channel = Channel(request.query["channel"]) if request.query.get("channel") else None
    except ValueError as exc:
        raise InputError(str(exc)) from None
    store = services(request).store
    removed = await operations.unsuppress(store, number, channel, now(request), actor(request))
    if not removed:
        return web.json_response({"error": "that number was not suppressed on that channel"}, status=404)
    return web.json_response({"number": number, "lifted": True})
