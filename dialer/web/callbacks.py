"""Callbacks debtors asked for in the IVR: the queue and marking one done."""

from __future__ import annotations

from aiohttp import web

from dialer.runtime.callbacks import queue
from dialer.web.common import RouteTable, actor, json_body, now, principal, services

routes = RouteTable()


@routes.route("GET", "/api/callbacks", "supervisor")
async def callbacks(request: web.Request) -> web.Response:
    """The queue, each request with ``may_call_now``, ``reasons`` and ``not_before`` (the
    rules' answer for a call now) and the debtor's local time."""
    s = services(request)
    return web.json_response(await queue(s.store, s.runtime.policy, now(request)))


@routes.route("POST", "/api/callbacks/{callback_id}/claim", "supervisor")
async def claim(request: web.Request) -> web.Response:
    s, who = services(request), principal(request)
    taken = await s.store.claim_callback(
        request.match_info["callback_id"], who.name if who else "?", now(request)
    )
    if taken is None:
        return web.json_response({"error": "no such callback request (done already?)"}, status=404)
    await s.store.audit_global(now(request), actor(request), "callback_claimed", {"id": taken["id"]})
    return web.json_response(taken)


@routes.route("POST", "/api/callbacks/{callback_id}/done", "supervisor")
async def done(request: web.Request) -> web.Response:
    s = services(request)
    found = next(
        (c for c in await s.store.callbacks(10_000) if c["id"] == request.match_info["callback_id"]), None
    )
    if found is None or not await s.store.complete_callback(found):
        return web.json_response({"error": "no such callback request (done already?)"}, status=404)
    await s.store.audit_global(now(request), actor(request), "callback_done", {"id": found["id"]})
    return web.json_response({"done": True})


@routes.route("POST", "/api/callbacks/complete", "supervisor")
async def callback_done(request: web.Request) -> web.Response:
    body = await json_body(request)
    removed = await services(request).store.complete_callback(body)
    if not removed:
        return web.json_response({"error": "no such callback request"}, status=404)
    await services(request).store.audit_global(now(request), actor(request), "callback_done", body)
    return web.json_response({"done": True})
