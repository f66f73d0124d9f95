"""The console's account pages: search (id, name, phone) and one account's timeline."""

from __future__ import annotations

from dialer.web.common import RouteTable

routes = RouteTable()
