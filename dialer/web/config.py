"""The configuration admins change live: read it (secrets masked) and lay TOML over it."""

from __future__ import annotations

import os

from aiohttp import web

from dialer.errors import InputError
from dialer.formats.config_file import load_settings
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


@routes.route("PUT", "/api/config", "admin")
async def put_config(request: web.Request) -> web.Response:
    """Body: TOML laid over the files (hours, holidays, cadence, caps, limited message …).

    Validated exactly as at start (legal floors included); nothing is stored if it fails."""
    text = await request.text()
    if len(text) > 256 * 1024:
        raise InputError("configuration overlay larger than 256 KiB")
    forbidden = [k for k in ("[service]", "secret_key", "redis_url", "ami_urls") if k in text]
    if forbidden:
        raise InputError(
            "the service section (URLs, secrets) is set by the operator's environment, not through the API"
        )
    settings = load_settings(env=os.environ, overlay=text)  # raises ConfigError with key and reason
    s = services(request)
    version = await s.store.set_config_overlay(
        text, now(request), actor(request), f"{len(text)} bytes of TOML"
    )
    await s.runtime.apply(settings, version)
    return web.json_response({"version": version, "applied": True})
