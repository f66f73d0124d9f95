"""Wiring: the one place that picks adapters.

Settings in; out come the store (``REDIS_URL`` or the embedded Redis), the clock (the
wall clock, or the sandbox's simulated one), the rules compiled from the settings, the
voice backend (``telephony_from_settings``: sandbox or Asterisk) and the SMS gateway
(``sms_from_settings``: through ``sms_gateway.factory`` for every URL, the sandbox
included). Nothing else in the product constructs an adapter.

**The sandbox's simulated clock is shared.** ``serve --clock-start`` / ``demo`` publish
their clock in Redis while they run (``Store.publish_clock``, refreshed every few
seconds); a command (``load``, ``status``, ``account``, ``suppress`` …) run against the
same Redis reads it, so everything a supervisor does is stamped with the time the
service is living in. With no simulated clock published, commands use the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from dialer.clock import Clock, SimulatedClock, SystemClock
from dialer.errors import ConfigError, StoreError
from dialer.formats.config_file import load_settings
from dialer.rules.cadence import Cadence
from dialer.rules.policy import Policy
from dialer.runtime import operations
from dialer.runtime.payments import Payments
from dialer.runtime.secret_key import load_secret
from dialer.settings import Settings
from dialer.store import Store, embedded_redis
from dialer.telephony.asterisk import AsteriskTelephony
from dialer.telephony.base import Telephony
from dialer.telephony.sandbox import SandboxTelephony
from ivr.sandbox_runner import make_sandbox_ivr
from payments.factory import payments_from_settings
from sms_gateway.base import SmsGateway
from sms_gateway.factory import gateway_from_settings
from sms_gateway.resilient import ResilientSms
from sms_gateway.smpp import SmppSms

log = logging.getLogger("regua.runtime")
T = TypeVar("T")

CLOCK_TTL_S = 30  # a published simulated clock lapses this long after its service stops


@contextlib.asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """A connected Store on ``REDIS_URL`` or on the embedded Redis."""
    with contextlib.ExitStack() as stack:
        url = settings.service.redis_url or stack.enter_context(embedded_redis(settings.service.data_dir))
        store = await Store.connect(url)
        try:
            for old in await store.migrate_legacy_keys():
                log.warning("renamed Redis key %s (written by an earlier version)", old)
            yield store
        finally:
            await store.close()


@dataclass
class Runtime:
    """What the service runs on: settings, the rules compiled from them, the clock, the secret."""

    settings: Settings
    policy: Policy
    cadence: Cadence
    clock: Clock
    secret: bytes
    config_version: int = 0
    config_path: str | None = None  # the company's file the admins' overlay is laid over
    listeners: list[Callable[[Runtime], None]] = field(default_factory=list)  # told of each change

    async def apply(self, settings: Settings, version: int) -> None:
        """Switch to validated settings (an admin's change): rules and cadence at once."""
        self.settings = settings
        self.policy = Policy.from_settings(settings)
        self.cadence = Cadence.from_settings(settings)
        self.config_version = version
        for listener in self.listeners:
            listener(self)
        log.info("configuration version %d applied", version)

    async def watch_config(self, store: Store, stop: asyncio.Event) -> None:
        """Pick up changes other processes made (every 2 s), so every worker runs the same rules."""
        while not stop.is_set():
            try:
                overlay, version = await store.config_overlay()
                if version != self.config_version:
                    try:
                        await self.apply(load_settings(self.config_path, overlay=overlay or None), version)
                    except ConfigError as exc:  # cannot happen for a change the API validated
                        log.error("configuration version %d refused: %s", version, exc)
                        self.config_version = version
            except StoreError:
                log.warning("could not check the configuration version", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)

    @classmethod
    def build(
        cls, settings: Settings, *, clock: Clock | None = None, config_path: str | None = None
    ) -> Runtime:
        return cls(
            settings=settings,
            policy=Policy.from_settings(settings),
            cadence=Cadence.from_settings(settings),
            clock=clock or SystemClock(),
            secret=load_secret(settings.service.secret_key, settings.service.data_dir),
            config_path=config_path,
        )


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed (it is on Linux): the service's I/O loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(main)
    return uvloop.run(main)


# ---------------------------------------------------------------------------- the clock


async def publish_clock(store: Store, clock: SimulatedClock, stop: asyncio.Event) -> None:
    """SANDBOX: keep the service's simulated clock readable by commands while it runs."""
    try:
        while not stop.is_set():
            with contextlib.suppress(StoreError):
                await store.publish_clock(clock.now(), clock.speed, time.time(), CLOCK_TTL_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CLOCK_TTL_S / 3)
    finally:
        with contextlib.suppress(StoreError):
            await store.publish_clock(None, 0, 0, 0)


async def command_clock(settings: Settings, store: Store) -> Clock:
    """The clock a command runs on: the running sandbox service's simulated clock when one
    is published, else the wall clock."""
    if settings.service.telephony != "sandbox":
        return SystemClock()
    shared = await store.shared_clock()
    if shared is None:
        return SystemClock()
    at, speed, wall = shared
    return SimulatedClock(
        at + (datetime.now(at.tzinfo) - datetime.fromtimestamp(wall, at.tzinfo)) * speed, speed
    )


# ---------------------------------------------------------------------------- adapters


def telephony_from_settings(
    settings: Settings, clock: Clock, store: Store, *, realtime: bool = True
) -> Telephony:
    """The voice backend ``DIALER_TELEPHONY`` names: the sandbox (its calls run the real IVR
    flow with scripted keys) or Asterisk (``DIALER_AMI_URLS``)."""
    match settings.service.telephony:
        case "asterisk":
            return AsteriskTelephony.from_settings(settings, clock, store)
        case "sandbox":
            # the sandbox hears the admins' prompt edits as real calls do
            ivr = make_sandbox_ivr(settings, clock, overrides=store.prompt_overrides)
            return SandboxTelephony(clock, realtime=realtime, ivr=ivr)
    raise ConfigError("settings", "service.telephony", f"unknown backend {settings.service.telephony!r}")


def sms_from_settings(settings: Settings, store: Store, clock: Clock) -> SmsGateway:
    """The SMS gateway ``service.sms_provider`` (and its fallback) names, built by the one
    factory (which refuses a sandbox mixed with a real provider)."""
    gateway = gateway_from_settings(settings, store, clock)
    if isinstance(gateway, ResilientSms):
        _wire_smpp(gateway, settings, store, clock)
    return gateway


def _wire_smpp(gateway: ResilientSms, settings: Settings, store: Store, clock: Clock) -> None:
    """SMPP brings receipts and replies on its own connection: hand them to the same code
    the HTTP webhooks use."""
    for lane in (gateway.primary, gateway.secondary):
        inner = lane.gateway if lane is not None else None
        if isinstance(inner, SmppSms):
            inner.on_receipt = lambda r: store.record_receipt(
                r.provider, r.message_id, r.status, r.error, clock.now()
            )
            inner.on_inbound = lambda m: operations.sms_reply(store, gateway, settings, clock.now(), m)


def payments_for(runtime: Runtime, store: Store) -> Payments:
    """The payment side: the provider ``payments.provider`` names, on this store."""
    return Payments(store, payments_from_settings(runtime.settings), runtime)
