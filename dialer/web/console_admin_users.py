"""The console's administration of people: users (role, language, disabled, password) and API tokens.

Every change goes through ``runtime.people`` (the CLI's use cases: checked, hashed, audited
with the admin who made it). A token is shown whole once, on the page that issued it; the
list shows its id, owner and label, never its secret. An admin cannot disable themself nor
take away their own admin role (there would be nobody left to undo it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from dialer.errors import InputError
from dialer.runtime import people
from dialer.web.common import RouteTable, actor, now, principal, services
from dialer.web.console_admin import Refusal, admin_page, done, refusal, text, translator

routes = RouteTable()


async def _users(
    request: web.Request,
    refused: Refusal | None = None,
    typed: Mapping[str, str] | None = None,
    issued: str = "",
) -> web.Response:
    store = services(request).store
    users = sorted(
        (people.User.from_record(n, r) for n, r in (await store.users()).items()), key=lambda u: u.name
    )
    tokens = sorted(
        (
            {"id": i, **{k: r.get(k) for k in ("user", "label", "created_at", "revoked")}}
            for i, r in (await store.tokens()).items()
        ),
        key=lambda t: str(t["created_at"] or ""),
        reverse=True,
    )
    me = principal(request)
    return admin_page(
        request,
        "admin_users.html",
        refused=refused,
        users=users,
        tokens=tokens,
        roles=people.ROLES,
        languages=people.LANGUAGES,
        me=me.name if me is not None else "",
        typed=typed or {},
        issued=issued,
    )


@routes.route("GET", "/admin/users", "admin")
async def users_page(request: web.Request) -> web.Response:
    return await _users(request)


@routes.route("POST", "/admin/users", "admin", max_body=8192)
async def add_user(request: web.Request) -> web.Response:
    form = await request.post()
    typed = {k: text(form, k, 64) for k in ("name", "role", "language")}
    try:
        await people.add_user(
            services(request).store,
            typed["name"].lower(),
            typed["role"],
            str(form.get("password", ""))[:300],
            now(request),
            actor(request),
            language=typed["language"],
        )
    except InputError as exc:
        return await _users(request, refusal(exc), typed)
    raise done("/admin/users", "user_added")


async def _change(request: web.Request, what: str, **changes: Any) -> web.Response:
    name = request.match_info["name"]
    try:
        await people.change_user(services(request).store, name, now(request), actor(request), **changes)
    except InputError as exc:
        return await _users(request, refusal(exc))
    raise done("/admin/users", what)


def _is_me(request: web.Request) -> bool:
    me = principal(request)
    return me is not None and me.via != "env-token" and me.name == request.match_info["name"]


@routes.route("POST", "/admin/users/{name}", "admin", max_body=4096)
async def change_user(request: web.Request) -> web.Response:
    """Role and language; only what differs is changed (a new role ends the user's sessions)."""
    store = services(request).store
    record = await store.user(request.match_info["name"])
    if record is None:
        return await _users(request, Refusal("", f"no user named {request.match_info['name'][:40]!r}"))
    current = people.User.from_record(request.match_info["name"], record)
    form = await request.post()
    role, language = text(form, "role", 20) or current.role, text(form, "language", 20) or current.language
    if _is_me(request) and role != "admin":
        _ = translator(request)
        return await _users(
            request, Refusal("", _("You cannot take away your own admin role: ask another admin."))
        )
    changes = {k: v for k, v in (("role", role), ("language", language)) if v != getattr(current, k)}
    if not changes:
        raise done("/admin/users", "unchanged")
    return await _change(request, "user_changed", **changes)


@routes.route("POST", "/admin/users/{name}/disable", "admin", max_body=4096)
async def disable_user(request: web.Request) -> web.Response:
    if _is_me(request):
        _ = translator(request)
        return await _users(request, Refusal("", _("You cannot disable yourself: ask another admin.")))
    return await _change(request, "disabled", disabled=True)


@routes.route("POST", "/admin/users/{name}/enable", "admin", max_body=4096)
async def enable_user(request: web.Request) -> web.Response:
    return await _change(request, "enabled", disabled=False)


@routes.route("POST", "/admin/users/{name}/password", "admin", max_body=4096)
async def reset_password(request: web.Request) -> web.Response:
    """A new password (the user's sessions end: they sign in again with it)."""
    form = await request.post()
    return await _change(request, "password", password=str(form.get("password", ""))[:300])


@routes.route("POST", "/admin/tokens", "admin", max_body=4096)
async def issue_token(request: web.Request) -> web.Response:
    """The new token is on this page, once: only its hash is kept."""
    form = await request.post()
    typed = {"token_user": text(form, "user", 64), "label": text(form, "label", 80)}
    try:
        token = await people.issue_token(
            services(request).store, typed["token_user"], typed["label"], now(request), actor(request)
        )
    except InputError as exc:
        return await _users(request, refusal(exc), typed)
    return await _users(request, issued=token)


@routes.route("POST", "/admin/tokens/{token_id}/revoke", "admin", max_body=4096)
async def revoke_token(request: web.Request) -> web.Response:
    s = services(request)
    if not await people.revoke_token(
        s.store, request.match_info["token_id"][:40], now(request), actor(request)
    ):
        _ = translator(request)
        return await _users(request, Refusal("", _("There is no such token.")))
    raise done("/admin/users", "revoked")
