"""The console's campaign pages: the list (the home page) and one campaign."""

from __future__ import annotations

from aiohttp import web

from dialer.web.common import RouteTable, services
from dialer.web.render import page

routes = RouteTable()


@routes.route("GET", "/", "supervisor")
async def campaigns_page(request: web.Request) -> web.Response:
    store = services(request).store
    statuses = [await store.status(n) for n in await store.campaign_names()]
    return page(request, "campaigns.html", campaigns=statuses)
