"""Signing in and out, who am I, and the console's static files (CSS, the small script)."""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

from aiohttp import web

from dialer.runtime.people import DUMMY_HASH, User, check_password
from dialer.web import auth, i18n
from dialer.web.common import RouteTable, actor, now, principal, services
from dialer.web.render import language_of, page

STATIC = Path(__file__).parent / "static"

routes = RouteTable()


@routes.route("GET", "/login", "public")
async def login_page(request: web.Request) -> web.StreamResponse:
    if principal(request) is not None and principal(request).via == "session":  # type: ignore[union-attr]
        raise web.HTTPFound("/")
    return page(request, "login.html", username="", error="")


@routes.route("POST", "/login", "public", max_body=4096)
async def login(request: web.Request) -> web.StreamResponse:
    s = services(request)
    tr = i18n.translations(language_of(request))
    if not auth.same_origin(request, s.runtime.settings.service.public_url):
        return page(
            request, "login.html", status=403, username="", error=tr.gettext("Sign in from Régua's own page.")
        )
    form = await request.post()
    name = str(form.get("username", "")).strip().lower()[:64]
    password = str(form.get("password", ""))[:256]
    address = auth.client_address(request)
    at = now(request)
    wait = await auth.sign_in_locked(s.store, name, address)
    if wait:
        await s.store.audit_global(
            at, f"login:{address}", "login_refused_locked", {"user": name[:40], "address": address}
        )
        minutes = max(1, (wait + 59) // 60)
        text = tr.gettext("Too many failed attempts. Try again in {minutes} minutes.").format(minutes=minutes)
        response = page(request, "login.html", status=429, username=name, error=text)
        response.headers["Retry-After"] = str(wait)
        return response
    record = await s.store.user(name) if name else None
    stored = str(record.get("password", "")) if record else DUMMY_HASH
    matches = await asyncio.to_thread(check_password, stored, password)  # the same work either way
    user = User.from_record(name, record) if record else None
    if not matches or user is None or user.disabled:
        locked = await auth.sign_in_failed(s.store, name, address, at)
        text = (
            tr.gettext("Too many failed attempts. Try again in {minutes} minutes.").format(
                minutes=auth.LOCK_S // 60
            )
            if locked
            else tr.gettext("That user and password were not accepted.")
        )
        return page(request, "login.html", status=429 if locked else 401, username=name, error=text)
    await s.store.clear_failures(f"user:{name}")
    cookie, _csrf = await auth.open_session(s.store, user, at)
    await s.store.audit_global(at, f"user:{name}", "login", {"address": address})
    response = web.HTTPFound("/")
    response.set_cookie(
        auth.SESSION_COOKIE,
        cookie,
        httponly=True,
        samesite="Strict",
        secure=auth.secure_cookies(request, s.runtime.settings.service.public_url),
        max_age=auth.SESSION_TTL_S,
        path="/",
    )
    raise response


@routes.route("POST", "/logout", "operator", max_body=4096)
async def logout(request: web.Request) -> web.StreamResponse:
    """Ends the session on the server (the cookie alone would be enough to sign in again)."""
    s, who = services(request), principal(request)
    if who is not None and who.via == "session":
        await s.store.close_session(who.session, who.name)
        await s.store.audit_global(now(request), actor(request), "logout", {})
    response = web.HTTPFound("/login")
    response.del_cookie(auth.SESSION_COOKIE, path="/")
    raise response


@routes.route("GET", "/api/me", "operator")
async def me(request: web.Request) -> web.Response:
    who = principal(request)
    assert who is not None
    return web.json_response(
        {"user": who.name, "role": who.role, "via": who.via, "language": who.language, "zone": who.zone}
    )


@routes.route("GET", "/static/{name:[a-z0-9_.-]+}", "public")
async def static(request: web.Request) -> web.StreamResponse:
    """The console's own CSS and script (and vendored assets): no CDN, no third party."""
    path = STATIC / request.match_info["name"]
    if not path.is_file():
        raise web.HTTPNotFound()
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return web.Response(body=path.read_bytes(), content_type=kind, headers={"Cache-Control": "max-age=300"})
