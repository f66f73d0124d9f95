"""The pages a person opens: sign-in, sign-out and the dashboard."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from dialer.web import auth
from dialer.web.common import ROLE, RouteTable, services

TEMPLATES = Path(__file__).parent / "templates"

routes = RouteTable()


@routes.route("GET", "/login", "public")
async def login_page(request: web.Request) -> web.Response:
    return web.Response(text=(TEMPLATES / "login.html").read_text(), content_type="text/html")


@routes.route("POST", "/login", "public")
async def login(request: web.Request) -> web.Response:
    s = services(request)
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


@routes.route("POST", "/logout", "public")
async def logout(request: web.Request) -> web.Response:
    response = web.HTTPFound("/login")
    response.del_cookie(auth.SESSION_COOKIE)
    raise response


@routes.route("GET", "/", "supervisor")
async def dashboard(request: web.Request) -> web.Response:
    return web.Response(text=(TEMPLATES / "dashboard.html").read_text(), content_type="text/html")


@routes.route("GET", "/api/me", "supervisor")
async def me(request: web.Request) -> web.Response:
    return web.json_response({"role": request[ROLE]})
