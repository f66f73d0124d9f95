"""Voice through Asterisk: AMI (panoramisk) for Originate and events, FastAGI for the IVR.

One ``AmiServer`` per Asterisk server (``ami_connection``: panoramisk with its traps
closed). Here, the calls:

- ``Originate`` is always sent with ``Async: true`` and our ``ActionID``; its future
  resolves to ``[Response, OriginateResponse]`` — we await that, not an event callback;
- calls spread over the servers by free capacity, paced across every worker
  (``pacing``); all servers down → ``TelephonyDown`` and the voice work is rescheduled;
- after a reconnect, ``CoreShowChannels`` reconciles the calls that were in flight.

A call is tied to its attempt by ``ChannelId`` (the channel's uniqueid) and the
``ATTEMPT_ID`` channel variable; OriginateResponse, Newstate, Hangup and the dialplan's
``UserEvent(ReguaEnd)`` from the ``h`` extension are correlated to it. No call stays
open: without an OriginateResponse by ring timeout + margin it is closed as failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import panoramisk.actions

from dialer.clock import Clock, SystemClock
from dialer.domain import Outcome
from dialer.errors import AmiLoginFailed, ConfigError, StoreError, TelephonyDown
from dialer.rules.call_outcome import classify
from dialer.settings import Settings, TrunkSettings
from dialer.store import Store
from dialer.telephony.ami_connection import EVENTS_MASK, AmiServer, AmiUrl
from dialer.telephony.base import CallRequest, CallResult, IvrAction
from dialer.telephony.pacing import Pacer

log = logging.getLogger("regua.asterisk")

__all__ = ["EVENTS_MASK", "AmiServer", "AmiUrl", "AsteriskTelephony", "channel_id", "dial_string"]


def channel_id(attempt_id: str) -> str:
    """The uniqueid of an attempt's call (its ``;1`` leg; the ``;2`` leg adds ``.2``).

    Of one fixed length, so that no id is a prefix of another's: Asterisk refuses a new
    channel whose uniqueid is a *prefix* of a live channel's (``channelstorage_ao2_legacy.c``
    compares with ``strncasecmp`` over the new id's length), and ids built from stream entry
    ids (``…-7`` beside a live ``…-75.2``) were refused whenever entries were dispatched out
    of order — about 5 % of calls. A hash of the attempt id: the same id for the same
    attempt in every process (events and reconciliation find the call by it); the attempt
    id itself travels in the ``ATTEMPT_ID`` channel variable."""
    return "regua-" + hashlib.blake2b(attempt_id.encode(), digest_size=12).hexdigest()


def dial_string(template: str, e164: str) -> str:
    number = e164.lstrip("+")
    national = number[2:] if number.startswith("55") else number[1:] if number.startswith("1") else number
    return template.replace("{e164}", e164).replace("{number}", number).replace("{national}", national)


# ----------------------------------------------------------------------------- calls


@dataclass
class _Call:
    request: CallRequest
    channel_id: str
    server: AmiServer
    trunk: TrunkSettings
    done: asyncio.Future[CallResult]
    started: float = field(default_factory=time.monotonic)
    answered_at: float | None = None
    responded: bool = False
    reason: int | None = None
    cause: int | None = None
    amd: str | None = None
    end_outcome: str | None = None
    channels: set[str] = field(default_factory=set)
    action_key: str = ""  # server|ActionID of its Originate
    watchdog: asyncio.Task[None] | None = None


class AsteriskTelephony:
    """The production voice backend (``DIALER_TELEPHONY=asterisk``)."""

    name = "asterisk"

    def __init__(self, settings: Settings, store: Store, clock: Clock, urls: list[AmiUrl]) -> None:
        if not urls:
            raise ConfigError("DIALER_AMI_URLS", "-", "set at least one ami://user:secret@host:5038")
        self.settings = settings
        self.cfg = settings.asterisk
        self.store = store
        self.clock = clock
        # a carrier's channels and calls per second are real seconds: pacing reads the wall
        # clock, whatever clock the rules run on, so every worker paces on the same time
        self.wall: Clock = SystemClock()
        self.pacer = Pacer(store)
        self.servers = [AmiServer(u, self._on_event, ping_interval=self.cfg.ping_interval_s) for u in urls]
        self.calls: dict[str, _Call] = {}  # by channel id (uniqueid of the ;1 leg)
        self.by_action: dict[str, _Call] = {}
        svc = settings.service
        advertise = svc.agi_advertise or f"{svc.agi_host}:{svc.agi_port}"
        self.agi_url = f"agi://{advertise}/ivr"
        self._watchers: list[asyncio.Task[None]] = []
        self.placed = 0
        self._short_ratio: float | None = None
        self._bg: set[asyncio.Future[Any]] = set()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock, store: Store) -> AsteriskTelephony:
        return cls(settings, store, clock, [AmiUrl.parse(u) for u in settings.service.ami_urls])

    async def start(self) -> None:
        results = await asyncio.gather(*(s.start() for s in self.servers), return_exceptions=True)
        failures = [r for r in results if isinstance(r, AmiLoginFailed)]
        if failures and len(failures) == len(self.servers):
            raise failures[0]
        for r in failures:
            log.error("%s", r)
        for s in self.servers:
            self._watchers.append(asyncio.create_task(self._reconcile_on_reconnect(s)))
            self._watchers.append(asyncio.create_task(self._settle_when_lost(s)))

    async def close(self) -> None:
        for t in self._watchers:
            t.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        await asyncio.gather(*(s.close() for s in self.servers), return_exceptions=True)

    def health(self) -> dict[str, Any]:
        servers = [s.health() for s in self.servers]
        up = sum(1 for s in self.servers if s.usable)
        state = "connected" if up == len(self.servers) else "degraded" if up else "down"
        return {
            "backend": "asterisk",
            "state": state,
            "servers": servers,
            "in_flight": len(self.calls),
            "placed": self.placed,
            "short_call_ratio": self._short_ratio,
        }

    # -- placing a call

    def _pick(self) -> tuple[AmiServer, TrunkSettings]:
        usable = [s for s in self.servers if s.usable]
        if not usable:
            raise TelephonyDown(
                "no Asterisk server is connected: " + ", ".join(f"{s.name} {s.state}" for s in self.servers)
            )
        for trunk in self.cfg.trunks:
            candidates = [s for s in usable if not trunk.servers or s.name in trunk.servers]
            if candidates:
                return min(candidates, key=lambda s: s.active_calls), trunk
        raise TelephonyDown("no connected Asterisk server has a configured trunk")

    async def _pace(self, request: CallRequest, trunk: TrunkSettings) -> None:
        await self.pacer.acquire(
            request.campaign,
            trunk.name,
            request.attempt_id,
            self.wall.now,
            lease_s=self.cfg.ring_timeout_s + self.cfg.max_call_s,
            campaign_max=self.cfg.campaign_max_channels,
            trunk_max=trunk.max_channels,
            cps=trunk.cps,
        )

    async def place_call(self, request: CallRequest) -> CallResult:
        _, trunk = self._pick()  # fail fast when no server is up
        await self._register(request)  # before the slot: nothing awaits between grant and Originate
        await self._pace(request, trunk)
        try:
            if request.not_after is not None and self.clock.now() >= request.not_after:
                raise TelephonyDown("the calling window closed while the call waited for a trunk: not placed")
            # after pacing, so calls spread by the capacity free *now*; counted at once
            server, trunk = self._pick()
        except TelephonyDown:
            await self.pacer.release(trunk.name, request.campaign, request.attempt_id)
            raise
        # counted before any await: calls picked in the same instant see each other
        server.active_calls += 1
        cid = channel_id(request.attempt_id)
        loop = asyncio.get_running_loop()
        call = _Call(request, cid, server, trunk, loop.create_future())
        call.channels.add(cid)
        try:
            await self._originate(request, call, server, trunk, cid)
            return await call.done
        finally:
            if call.watchdog is not None:
                call.watchdog.cancel()
            self.calls.pop(cid, None)
            if call.action_key:
                self.by_action.pop(call.action_key, None)
            server.active_calls = max(0, server.active_calls - 1)
            try:
                await self.pacer.release(trunk.name, request.campaign, request.attempt_id)
            except StoreError as exc:  # the leases lapse by themselves; the call's result stands
                log.warning("could not release the slots of %s (%s)", request.attempt_id, exc)

    async def _originate(
        self, request: CallRequest, call: _Call, server: AmiServer, trunk: TrunkSettings, cid: str
    ) -> None:
        """Send the Originate (the attempt is registered for the IVR); ``call.done`` resolves later."""
        self.calls[cid] = call
        action = {
            "Action": "Originate",
            "Channel": dial_string(trunk.channel, request.phone.number),
            "Context": self.cfg.context,
            "Exten": self.cfg.exten,
            "Priority": "1",
            "Timeout": str(self.cfg.ring_timeout_s * 1000),
            "CallerID": self.settings.company.caller_id or "",
            "Async": "true",
            "ChannelId": cid,
            "OtherChannelId": cid + ".2",
            "Variable": [
                f"ATTEMPT_ID={request.attempt_id}",
                f"REGUA_AGI={self.agi_url}",
                f"REGUA_TRUNK={trunk.name}",
            ],
        }
        if server.manager is None or not server.usable:
            raise TelephonyDown(f"Asterisk {server.name} went away before the call was placed")
        act = panoramisk.actions.Action(action)
        call.action_key = f"{server.name}|{act.action_id}"
        self.by_action[call.action_key] = call
        future = server.manager.send_action(act)
        self.placed += 1
        call.watchdog = asyncio.create_task(self._watch(call, future))

    async def _register(self, request: CallRequest) -> None:
        """What the IVR needs when Asterisk connects the call (calls started together share
        one round trip)."""
        await self.store.ivr_register(
            request.attempt_id,
            {
                "campaign": request.campaign,
                "account_id": request.account.account_id,
                "phone": request.phone.number,
                "language": request.language,
            },
            ttl_s=self.cfg.ring_timeout_s + self.cfg.max_call_s + 600,
        )

    async def _watch(self, call: _Call, originate: asyncio.Future[Any]) -> None:
        """Close the attempt whatever happens: response timeout, call too long, lost server."""
        wait = self.cfg.ring_timeout_s + self.cfg.response_margin_s
        try:
            reply = await asyncio.wait_for(asyncio.shield(originate), wait)
            self._originate_reply(call, reply)
        except TimeoutError:
            if not call.responded and call.answered_at is None:
                await self._complete(
                    call,
                    None if call.cause is not None else Outcome.FAILED,  # the Hangup may have said why
                    "no OriginateResponse within ring timeout + margin",
                )
                return
        except Exception as exc:
            if not call.responded:
                await self._complete(call, Outcome.FAILED, f"Originate failed: {exc}")
                return
        # answered (or ringing with a response): wait for the hang-up, bounded
        try:
            await asyncio.wait_for(asyncio.shield(call.done), self.cfg.max_call_s)
        except TimeoutError:
            await self._complete(call, None, f"no Hangup within {self.cfg.max_call_s} s")

    def _originate_reply(self, call: _Call, reply: Any) -> None:
        messages = reply if isinstance(reply, list) else [reply]
        for m in messages:
            if m.get("Event") == "OriginateResponse":
                self._on_originate_response(call, m)
            elif m.get("Response") == "Error":
                call.responded = True
                self._spawn(self._complete(call, Outcome.FAILED, str(m.get("Message", "refused"))))

    def _on_originate_response(self, call: _Call, m: Any) -> None:
        call.responded = True
        with contextlib.suppress(ValueError, TypeError):
            call.reason = int(m.get("Reason", ""))
        if m.get("Response") == "Failure" or call.reason in (0, 1, 3, 5, 8):
            # the channel never came up: there may be no Hangup for it
            self._spawn(self._complete(call, None, f"OriginateResponse reason {call.reason}"))

    # -- events

    def _on_event(self, server: AmiServer, event: Any) -> None:
        name = event.get("Event", "")
        uid = event.get("Uniqueid", "")
        call = self.calls.get(uid) or self.calls.get(uid[:-2] if uid.endswith(".2") else "")
        if call is None and name == "UserEvent":
            call = self.calls.get(channel_id(event.get("Attempt", "")))
        if call is None and name == "OriginateResponse":
            call = self.by_action.get(f"{server.name}|{event.get('ActionID', '')}")
        if call is None:
            return
        if name == "Newstate" and event.get("ChannelState") == "6" and uid == call.channel_id:
            call.answered_at = call.answered_at or time.monotonic()
        elif name == "OriginateResponse":
            self._on_originate_response(call, event)
        elif name == "UserEvent" and event.get("UserEvent") == "ReguaEnd":
            call.amd = event.get("AMD") or call.amd
            call.end_outcome = event.get("Outcome") or call.end_outcome
        elif name == "Hangup" and uid == call.channel_id:
            with contextlib.suppress(ValueError, TypeError):
                call.cause = int(event.get("Cause", "")) or None  # 0: Asterisk does not know
            if call.answered_at is None and not call.responded:
                # the OriginateResponse (with its Reason) follows the Hangup of a call that
                # never came up: give it a moment before classifying on the cause alone
                self._spawn(self._complete_later(call, event.get("Cause-txt", ""), 2.0))
            else:
                self._spawn(self._complete(call, None, event.get("Cause-txt", "")))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def _complete_later(self, call: _Call, detail: str, wait_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(call.done), wait_s)
        await self._complete(call, None, detail)

    async def _complete(self, call: _Call, forced: Outcome | None, detail: str) -> None:
        if call.done.done():
            return
        ivr = None
        if call.answered_at is not None:
            with contextlib.suppress(Exception):
                ivr = await self.store.ivr_result(call.request.attempt_id)
        amd = (ivr or {}).get("amd") or call.amd
        outcome = forced or classify(
            answered=call.answered_at is not None,
            reason=call.reason,
            cause=call.cause,
            amd=amd,
            ivr_outcome=(ivr or {}).get("outcome") or call.end_outcome,
        )
        duration = time.monotonic() - call.answered_at if call.answered_at else 0.0
        actions = tuple(
            IvrAction(a["kind"], {k: str(v) for k, v in a.items() if k != "kind"})
            for a in (ivr or {}).get("actions", [])
        )
        result = CallResult(
            outcome=outcome,
            duration_s=round(duration, 2),
            ring_s=round((call.answered_at or time.monotonic()) - call.started, 2),
            amd=amd,
            hangup_cause=call.cause,
            actions=actions,
            events=tuple((ivr or {}).get("events", [])),
            trunk=call.trunk.name,
            server=call.server.name,
            language=call.request.language,
            detail=detail,
        )
        if call.answered_at is not None:
            await self._count_short_call(call.trunk.name, duration)
        if not call.done.done():
            call.done.set_result(result)

    async def _count_short_call(self, trunk: str, duration: float) -> None:
        day = self.clock.now().strftime("%Y-%m-%d")
        try:
            answered, shorts = await self.store.count_answered_call(
                day, trunk, duration <= self.cfg.short_call_s
            )
        except StoreError as exc:  # a statistic: the call's result must not wait for it
            log.warning("short-call counter not updated (%s)", exc)
            return
        ratio = shorts / max(1, answered)
        self._short_ratio = round(ratio, 4)
        if answered >= 100 and ratio >= self.cfg.short_call_warn_ratio:
            log.warning(
                "short calls (<= %.0f s) are %.0f%% of today's answered calls; Anatel blocks "
                "callers at 85%% over 100,000 calls a day",
                self.cfg.short_call_s,
                ratio * 100,
            )

    # -- after a reconnect

    async def _reconcile_on_reconnect(self, server: AmiServer) -> None:
        while True:
            await server.reconnected.wait()
            server.reconnected.clear()
            try:
                await self.reconcile_server(server)
            except Exception:
                log.exception("reconciling calls on %s failed", server.name)

    async def _settle_when_lost(self, server: AmiServer, every_s: float = 0.5) -> None:
        """A server down for ``response_margin_s`` has lost its calls with it (an Asterisk
        killed: its channels are gone): they end as ``unknown`` — recorded, never redialled —
        and the other servers carry on. A server that comes back sooner is reconciled call by
        call instead (``reconcile_server``)."""
        down_since: float | None = None
        while True:
            await asyncio.sleep(every_s)
            if server.state != "down":
                down_since = None
                continue
            down_since = down_since or time.monotonic()
            if time.monotonic() - down_since < self.cfg.response_margin_s:
                continue
            lost = [c for c in self.calls.values() if c.server is server and not c.done.done()]
            for call in lost:
                await self._complete(
                    call, Outcome.UNKNOWN, f"Asterisk {server.name} lost for {self.cfg.response_margin_s} s"
                )
            if lost:
                log.warning(
                    "Asterisk %s is down: %d call(s) in flight recorded as unknown", server.name, len(lost)
                )

    async def reconcile_server(self, server: AmiServer) -> None:
        """Calls in flight on ``server`` when its connection dropped: still up, or over?"""
        mine = [c for c in self.calls.values() if c.server is server and not c.done.done()]
        if not mine:
            return
        reply = await server.send({"Action": "CoreShowChannels"}, deadline_s=15, as_list=True)
        messages = reply if isinstance(reply, list) else [reply]
        alive = {m.get("Uniqueid", "") for m in messages if m.get("Event") == "CoreShowChannel"}
        for call in mine:
            if call.channel_id in alive:
                call.responded = True
                call.answered_at = call.answered_at or time.monotonic()  # it is up: it was answered
                continue
            ivr = await self.store.ivr_result(call.request.attempt_id)
            if ivr:
                call.answered_at = call.answered_at or time.monotonic()
                await self._complete(call, None, "ended while AMI was disconnected (IVR result)")
            else:
                await self._complete(call, Outcome.UNKNOWN, "ended while AMI was disconnected")
        log.info("reconciled %d call(s) on %s after reconnect", len(mine), server.name)

    async def reconcile(self, attempt_id: str) -> CallResult | None:
        """A dead worker's attempt: the IVR result if the call reached it, else unknown."""
        ivr = await self.store.ivr_result(attempt_id)
        if not ivr:
            return None
        return CallResult(
            Outcome(ivr["outcome"]),
            amd=ivr.get("amd"),
            actions=tuple(
                IvrAction(a["kind"], {k: str(v) for k, v in a.items() if k != "kind"})
                for a in ivr.get("actions", [])
            ),
            detail="reconciled from the IVR result",
        )
