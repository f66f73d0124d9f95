"""Wiring: settings -> Redis (embedded or remote), store, clock, telephony, SMS, secret.

The embedded Redis lives in ``<data_dir>/redis`` with its append-only file on. The
first Régua process that needs it starts it and writes its port to ``redis.port``;
others (a ``load`` while ``serve`` runs) find it there and share it; the process that
started it stops it when it exits. The data survives: the next start replays the AOF.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from dialer.clock import Clock, SystemClock
from dialer.rules.cadence import Cadence
from dialer.rules.policy import Policy
from dialer.runtime import operations
from dialer.runtime.secret_key import load_secret
from dialer.settings import Settings
from dialer.store import Store
from dialer.store.embedded import embedded_redis

log = logging.getLogger("regua.runtime")


@contextlib.asynccontextmanager
async def open_store(settings: Settings) -> AsyncIterator[Store]:
    """A connected Store on ``REDIS_URL`` or on the embedded Redis."""
    with contextlib.ExitStack() as stack:
        url = settings.service.redis_url or stack.enter_context(embedded_redis(settings.service.data_dir))
        store = await Store.connect(url)
        try:
            yield store
        finally:
            await store.close()


@dataclass
class Runtime:
    settings: Settings
    policy: Policy
    cadence: Cadence
    clock: Clock
    secret: bytes
    config_version: int = 0
    listeners: list[Any] = field(default_factory=list)  # called with the runtime on a change

    async def apply(self, settings: Settings, version: int) -> None:
        """Switch to validated settings (an admin's change): rules and cadence at once."""
        self.settings = settings
        self.policy = Policy.from_settings(settings)
        self.cadence = Cadence.from_settings(settings)
        self.config_version = version
        for listener in self.listeners:
            listener(self)
        log.info("configuration version %d applied", version)

    async def watch_config(self, store: Store, stop: asyncio.Event, base_path: str | None = None) -> None:
        """Pick up changes other processes made (every 2 s), so every worker runs the same rules."""
        from dialer.errors import ConfigError
        from dialer.formats.config_file import load_settings

        while not stop.is_set():
            try:
                overlay, version = await store.config_overlay()
                if version != self.config_version:
                    try:
                        await self.apply(load_settings(base_path, overlay=overlay or None), version)
                    except ConfigError as exc:  # cannot happen for a change the API validated
                        log.error("configuration version %d refused: %s", version, exc)
                        self.config_version = version
            except Exception:
                log.warning("could not check the configuration version", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 2.0)

    @classmethod
    def build(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        return cls(
            settings=settings,
            policy=Policy.from_settings(settings),
            cadence=Cadence.from_settings(settings),
            clock=clock or SystemClock(),
            secret=load_secret(settings.service.secret_key, settings.service.data_dir),
        )


def run_async(main: Any) -> Any:
    """``asyncio.run`` on uvloop when it is installed (it is on Linux): the service's I/O loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(main)
    return uvloop.run(main)


def make_telephony(settings: Settings, clock: Clock, store: Store, *, realtime: bool = True):  # type: ignore[no-untyped-def]
    """The voice backend ``DIALER_TELEPHONY`` names."""
    if settings.service.telephony == "asterisk":
        from dialer.telephony.asterisk import AsteriskTelephony

        return AsteriskTelephony.from_settings(settings, clock, store)
    from dialer.telephony.sandbox import SandboxTelephony

    ivr = None
    with contextlib.suppress(ImportError):
        from ivr.sandbox_runner import make_sandbox_ivr

        ivr = make_sandbox_ivr(settings)
    return SandboxTelephony(clock, realtime=realtime, ivr=ivr)


def make_sms(settings: Settings, store: Store, clock: Clock):  # type: ignore[no-untyped-def]
    """The SMS gateway ``service.sms_provider`` names (sandbox: the Redis outbox)."""
    from sms_gateway.factory import gateway_from_settings

    gateway = gateway_from_settings(settings, store, clock)
    _wire_smpp(gateway, settings, store, clock)
    return gateway


def _wire_smpp(gateway: Any, settings: Settings, store: Store, clock: Clock) -> None:
    """SMPP brings receipts and replies on its own connection: hand them to the same code
    the HTTP webhooks use."""
    from sms_gateway.smpp import SmppSms

    lanes = [getattr(gateway, "primary", None), getattr(gateway, "secondary", None)]
    for lane in lanes:
        inner = getattr(lane, "gateway", None)
        if isinstance(inner, SmppSms):
            inner.on_receipt = lambda r: store.record_receipt(
                r.provider, r.message_id, r.status, r.error, clock.now()
            )
            inner.on_inbound = lambda m: operations.sms_reply(store, gateway, settings, clock.now(), m)
