"""Callbacks debtors asked for in the IVR: the queue and marking one done."""

from __future__ import annotations

from aiohttp import web

from dialer.web.common import RouteTable, actor, json_body, now, services

routes = RouteTable()


@routes.route("GET", "/api/callbacks", "supervisor")
async def callbacks(request: web.Request) -> web.Response:
    return web.json_response(await services(request).store.callbacks())


@routes.route("POST", "/api/callbacks/complete", "supervisor")
async def callback_done(request: web.Request) -> web.Response:
    body = await json_body(request)
    removed = await services(request).store.complete_callback(body)
    if not removed:
        return web.json_response({"error": "no such callback request"}, status=404)
    await services(request).store.audit_global(now(request), actor(request), "callback_done", body)
    return web.json_response({"done": True})
