"""What every route module shares: the app's services, the route table with roles, and
small request helpers (the caller's role and name, the service's clock, a JSON body).

Every route names its role (``public``, ``operator``, ``supervisor``, ``admin``; see
``auth``); the auth middleware refuses anything else before the handler runs.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from dialer.errors import InputError
from dialer.runtime.payments import Payments
from dialer.runtime.wiring import Runtime
from dialer.store import Store
from dialer.telephony.base import Telephony
from dialer.web import auth
from sms_gateway.base import SmsGateway

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Services:
    """What the handlers use: the runtime (settings, rules, clock, secret), the store, the
    voice backend and the SMS gateway the service runs, and the API tokens."""

    runtime: Runtime
    store: Store
    telephony: Telephony | None
    sms: SmsGateway | None
    tokens: auth.TokenBook
    started: float = 0.0
    payments: Payments | None = None  # charges, payment webhooks (None: the API runs without them)


SERVICES = web.AppKey("services", Services)
PRINCIPAL = web.RequestKey("principal", auth.Principal)  # who is asking (absent: nobody)
DEFAULT_MAX_BODY = 64 * 1024  # a request body larger than its route's limit is refused unread


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    role: str
    max_body: int = DEFAULT_MAX_BODY


@dataclass
class RouteTable:
    """One module's routes, each with the role it needs; ``create_app`` adds every table."""

    routes: list[Route] = field(default_factory=list)

    def route(
        self, method: str, path: str, role: str, *, max_body: int = DEFAULT_MAX_BODY
    ) -> Callable[[Handler], Handler]:
        """Register a handler with the role it needs and the largest body it reads."""
        if role not in ("public", *auth.ROLES):
            raise ValueError(f"unknown role {role!r} for {method} {path}")

        def register(fn: Handler) -> Handler:
            fn.required_role = role  # type: ignore[attr-defined]
            fn.max_body = max_body  # type: ignore[attr-defined]
            self.routes.append(Route(method, path, fn, role, max_body))
            return fn

        return register

    def __iter__(self) -> Any:
        return iter(self.routes)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def principal(request: web.Request) -> auth.Principal | None:
    return request.get(PRINCIPAL)


def actor(request: web.Request) -> str:
    """Who is acting, for the audit: the person (``user:maria``) or the machine token."""
    who = request.get(PRINCIPAL)
    return who.actor if who is not None else f"anonymous:{request.remote or '?'}"


def now(request: web.Request) -> datetime:
    """The service's clock (the sandbox's simulated one, when it runs on one)."""
    return services(request).runtime.clock.now()


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    return body


def query_int(request: web.Request, name: str, default: int, *, low: int, high: int) -> int:
    """An integer query parameter within [low, high]; anything else is a clear 400."""
    raw = request.query.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"query parameter {name!r} must be a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise InputError(f"query parameter {name!r} must be from {low} to {high}, not {value}")
    return value
