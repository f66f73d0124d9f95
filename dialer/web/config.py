"""The configuration admins change live: read it (secrets masked) and lay TOML over it."""

from __future__ import annotations

from aiohttp import web

from dialer.errors import InputError
from dialer.runtime import operations
from dialer.web.common import RouteTable, actor, now, services

routes = RouteTable()


@routes.route("GET", "/api/config", "admin")
async def get_config(request: web.Request) -> web.Response:
    s = services(request)
    overlay, version = await s.store.config_overlay()
    data = s.runtime.settings.model_dump(mode="json")
    data["service"].pop("secret_key", None)
    data["service"]["redis_url"] = "***" if data["service"].get("redis_url") else ""
    data["service"]["ami_urls"] = [u.split("@")[-1] for u in data["service"].get("ami_urls", [])]
    return web.json_response({"version": version, "overlay": overlay, "effective": data})


@routes.route("PUT", "/api/config", "admin", max_body=operations.MAX_OVERLAY)
async def put_config(request: web.Request) -> web.Response:
    """Body: TOML laid over the company's files (hours, holidays, cadence, caps, limited
    message …), validated exactly as at start (legal floors included); nothing is stored if
    it fails. The ``[service]`` section is the operator's environment's, refused."""
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"the body is not UTF-8 text (byte {exc.start}): send the TOML as UTF-8") from None
    s = services(request)
    version = await operations.change_config(s.store, s.runtime, text, now(request), actor(request))
    return web.json_response({"version": version, "applied": True})


@routes.route("DELETE", "/api/config", "admin")
async def clear_config(request: web.Request) -> web.Response:
    """Drop every change the admins made: the service runs on its files again."""
    s = services(request)
    version = await operations.clear_config(s.store, s.runtime, now(request), actor(request))
    return web.json_response({"version": version, "applied": True, "overlay": ""})
