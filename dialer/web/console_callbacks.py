"""The console's callback queue: requests agents claim and mark done.

Each request shows the debtor's local time now, the hours they asked for (in their zone),
and the rules' answer for a call now (``runtime.callbacks.queue``: ``decide()``, as for
every contact) — yes, or from when and why not, in words.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import web

from dialer.runtime.callbacks import queue
from dialer.web.common import RouteTable, actor, now, principal, services
from dialer.web.console_campaigns import gettext_of, message, see_other, words
from dialer.web.render import page

routes = RouteTable()


async def _queue(request: web.Request) -> list[dict[str, Any]]:
    s = services(request)
    return [
        {**item, "in_window": in_window(item.get("debtor_local_time"), item.get("window"))}
        for item in await queue(s.store, s.runtime.policy, now(request))
    ]


def in_window(local: Any, window: Any) -> bool | None:
    """Whether the debtor's local time (ISO) lies in the hours they asked for ("09:00-12:00");
    None when either is unknown."""
    m = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", str(window or ""))
    if not m or not local:
        return None
    try:
        at = datetime.fromisoformat(str(local))
    except ValueError:
        return None
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    minute = at.hour * 60 + at.minute
    return h1 * 60 + m1 <= minute < h2 * 60 + m2


def _messages(_: Any) -> dict[str, str]:
    return {
        "claimed": _("The request is yours: the others see that you took it."),
        "done": _("The request was marked done and left the queue."),
    }


async def _page(request: web.Request, *, status: int = 200, error: str = "") -> web.Response:
    _ = gettext_of(request)
    me = principal(request)
    return page(
        request,
        "callbacks.html",
        status=status,
        items=await _queue(request),
        me=me.name if me is not None else "",
        notice=message(request, _messages(_)),
        error=error,
        **words(request),
    )


@routes.route("GET", "/callbacks", "supervisor")
async def callbacks_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.route("GET", "/callbacks/rows", "supervisor")
async def callbacks_rows(request: web.Request) -> web.Response:
    """The queue's rows alone (the page reloads them every 30 s: "may call now" changes)."""
    me = principal(request)
    return page(
        request,
        "callbacks_rows.html",
        items=await _queue(request),
        me=me.name if me is not None else "",
        **words(request),
    )


def _gone(request: web.Request) -> str:
    _ = gettext_of(request)
    return _("That request is no longer open (someone marked it done). The list below is up to date.")


@routes.route("POST", "/callbacks/{callback_id}/claim", "supervisor", max_body=4096)
async def claim(request: web.Request) -> web.Response:
    s, who = services(request), principal(request)
    taken = await s.store.claim_callback(
        request.match_info["callback_id"], who.name if who else "?", now(request)
    )
    if taken is None:
        return await _page(request, status=404, error=_gone(request))
    await s.store.audit_global(now(request), actor(request), "callback_claimed", {"id": taken["id"]})
    raise see_other("/callbacks?did=claimed")


@routes.route("POST", "/callbacks/{callback_id}/done", "supervisor", max_body=4096)
async def done(request: web.Request) -> web.Response:
    s = services(request)
    cid = request.match_info["callback_id"]
    if not await s.store.complete_callback_id(cid):
        return await _page(request, status=404, error=_gone(request))
    await s.store.audit_global(now(request), actor(request), "callback_done", {"id": cid})
    raise see_other("/callbacks?did=done")
