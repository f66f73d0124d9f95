"""The console's do-not-contact list: search, add, import a registry file, lift."""

from __future__ import annotations

from dialer.web.common import RouteTable

routes = RouteTable()
