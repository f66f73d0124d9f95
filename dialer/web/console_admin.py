"""The console's administration: hours, holidays, cadence, caps, the limited message, prompts, users and tokens."""

from __future__ import annotations

from dialer.web.common import RouteTable

routes = RouteTable()
