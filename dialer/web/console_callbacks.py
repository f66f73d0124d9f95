"""The console's callback queue: requests agents claim and mark done."""

from __future__ import annotations

from dialer.web.common import RouteTable

routes = RouteTable()
