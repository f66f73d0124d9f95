"""Voice through Asterisk: AMI (panoramisk) for Originate and events, FastAGI for the IVR.

One ``AmiServer`` per Asterisk server (``ami://user:secret@host:5038``), each a wrapped
panoramisk ``Manager`` with the library's known traps closed:

- ``Originate`` is always sent with ``Async: true`` and our ``ActionID``; its future
  resolves to ``[Response, OriginateResponse]`` — we await that, not an event callback;
- Originate is never re-sent after a reconnect (panoramisk would replay unanswered
  actions on FullyBooted: that could place a second call); every action has a deadline,
  because an action that had its first reply hangs forever after a disconnect;
- events reach one async callback that never raises (a raising callback drops the
  connection); the keep-alive ``Ping`` checks its reply and a silent server is
  reconnected; reconnection backs off; wrong credentials stop the retries with one
  clear error instead of a loop of stack traces;
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
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import panoramisk
import panoramisk.actions

from dialer.clock import Clock
from dialer.domain import Outcome
from dialer.errors import AmiLoginFailed, ConfigError, TelephonyDown
from dialer.rules.call_outcome import classify
from dialer.settings import Settings, TrunkSettings
from dialer.store import Store
from dialer.telephony.base import CallRequest, CallResult, IvrAction
from dialer.telephony.pacing import Pacer

log = logging.getLogger("regua.asterisk")
# panoramisk logs every failed reconnect and every message; we report state changes ourselves
logging.getLogger("panoramisk").setLevel(logging.CRITICAL)

EVENTS_MASK = "call,user,system"  # the event classes we need, asked at login


@dataclass(frozen=True)
class AmiUrl:
    user: str
    secret: str = field(repr=False)
    host: str
    port: int

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> AmiUrl:
        parts = urlsplit(url.strip())
        if parts.scheme != "ami" or not parts.hostname or not parts.username:
            raise ConfigError("DIALER_AMI_URLS", _redact(url), "expected ami://user:secret@host:5038")
        return cls(unquote(parts.username), unquote(parts.password or ""), parts.hostname, parts.port or 5038)


def _redact(url: str) -> str:
    return re.sub(r"(//[^:/@]+):[^@]*@", r"\1:***@", url)


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


# ----------------------------------------------------------------------------- one server


class _Manager(panoramisk.Manager):  # type: ignore[misc]
    """panoramisk's Manager with the reconnect loop and pinger handed to ``AmiServer``."""

    def __init__(self, owner: AmiServer, **config: Any) -> None:
        super().__init__(**config)
        self.owner = owner

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        try:
            f.result()
        except OSError as exc:
            self.owner._connect_failed(exc)
            return
        super().connection_made(f)
        pinger = getattr(self, "pinger", None)
        if pinger is not None:  # ours checks the reply; theirs does not
            pinger.cancel()
            self.pinger = None

    def login(self, future: asyncio.Future[Any]) -> bool:
        self.authenticated_future = None
        try:
            resp = future.result()
        except Exception as exc:  # the connection went away during login
            self.owner._login_result(False, str(exc))
            return False
        ok = bool(resp.success)
        self.authenticated = ok
        self.owner._login_result(ok, str(resp.get("Message", "")))
        return ok

    def ping(self) -> None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._connected = False
        self.owner._lost(exc)


class AmiServer:
    """One Asterisk server's AMI session, with health, back-off and checked pings."""

    def __init__(
        self,
        url: AmiUrl,
        on_event: Callable[[AmiServer, Any], None],
        *,
        ping_interval: float = 10.0,
        action_timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.name = url.name
        self.on_event = on_event
        self.ping_interval = ping_interval
        self.action_timeout = action_timeout
        self._changed = asyncio.Event()
        self._state = "down"  # connecting | connected | degraded | down | auth_failed
        self.detail = ""
        self.manager: _Manager | None = None
        self._login: asyncio.Future[bool] | None = None
        self._stop = False
        self._backoff = 0.5
        self._task: asyncio.Task[None] | None = None
        self.reconnected: asyncio.Event = asyncio.Event()
        self.connects = 0
        self.active_calls = 0

    # -- lifecycle

    async def start(self, wait: float = 5.0) -> None:
        self._task = asyncio.create_task(self._run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wait_state(("connected", "auth_failed")), wait)
        if self.state == "auth_failed":
            raise AmiLoginFailed(
                f"Asterisk {self.name} refused user {self.url.user!r}: {self.detail}. "
                "Check the AMI user and secret (manager.conf) and DIALER_AMI_URLS."
            )

    async def _wait_state(self, states: tuple[str, ...]) -> None:
        while self.state not in states:
            self._changed.clear()
            await self._changed.wait()

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        self._state = value
        self._changed.set()

    async def close(self) -> None:
        self._stop = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.manager is not None:
            with contextlib.suppress(Exception):
                self.manager.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        announced_down = False
        while not self._stop:
            self.state = "connecting" if self.state != "degraded" else "degraded"
            self._login = loop.create_future()
            self.manager = _Manager(
                self,
                host=self.url.host,
                port=self.url.port,
                username=self.url.user,
                secret=self.url.secret,
                events=EVENTS_MASK,
                ping_delay=3600,
                reconnect_timeout=3600,
                loop=loop,
                forgetable_actions=("ping", "login", "originate", "corefshowchannels", "coreshowchannels"),
            )
            self.manager.register_event("*", self._dispatch)
            self.manager.connect()
            try:
                ok = await asyncio.wait_for(self._login, 10)
            except TimeoutError:
                ok = False
                self.detail = "no AMI banner or login reply within 10 s"
            if not ok:
                if self.state == "auth_failed":
                    log.error("Asterisk %s: login refused (%s); not retrying", self.name, self.detail)
                    return
                if not announced_down:
                    log.error("Asterisk %s unreachable (%s); retrying with back-off", self.name, self.detail)
                    announced_down = True
                self.state = "down"
                with contextlib.suppress(Exception):
                    self.manager.close()
                await asyncio.sleep(self._backoff)
                self._backoff = min(self._backoff * 2, 30.0)
                continue
            announced_down = False
            self._backoff = 0.5
            self.connects += 1
            self.state = "connected"
            log.info("Asterisk %s connected (session %d)", self.name, self.connects)
            if self.connects > 1:
                self.reconnected.set()
            await self._keepalive()

    async def _keepalive(self) -> None:
        """Ping and check the reply; a missed Pong means a half-open connection: reconnect."""
        misses = 0
        while not self._stop and self.manager is not None and self.manager._connected:
            await asyncio.sleep(self.ping_interval)
            if self.manager is None or not self.manager._connected:
                break
            try:
                resp = await self.send({"Action": "Ping"}, deadline_s=min(5.0, self.ping_interval))
                misses = 0 if getattr(resp, "success", False) else misses + 1
            except (TimeoutError, ConnectionError):
                misses += 1
            if misses:
                self.state = "degraded"
                self.detail = f"{misses} ping(s) unanswered"
            else:
                self.state = "connected"
            if misses >= 2:
                log.warning("Asterisk %s stopped answering pings; reconnecting", self.name)
                with contextlib.suppress(Exception):
                    self.manager.close()
                break
        if not self._stop:
            self.state = "degraded" if self.state == "connected" else self.state

    # -- callbacks from _Manager

    def _connect_failed(self, exc: Exception) -> None:
        self.detail = f"{type(exc).__name__}: {exc}"
        if self._login is not None and not self._login.done():
            self._login.set_result(False)

    def _login_result(self, ok: bool, message: str) -> None:
        if not ok and "auth" in message.lower():
            self.state = "auth_failed"
        self.detail = message
        if self._login is not None and not self._login.done():
            self._login.set_result(ok)

    def _lost(self, exc: Exception | None) -> None:
        if self.state in ("connected", "degraded"):
            log.warning("Asterisk %s: connection lost", self.name)
        if self.state != "auth_failed":
            self.state = "down"
        if self._login is not None and not self._login.done():
            self._login.set_result(False)

    async def _dispatch(self, manager: Any, event: Any) -> None:
        try:
            self.on_event(self, event)
        except Exception:  # never let an event take the connection down
            log.exception("error handling AMI event %s", event.get("Event"))

    # -- actions

    @property
    def usable(self) -> bool:
        return (
            self.state in ("connected", "degraded") and self.manager is not None and self.manager._connected
        )

    async def send(
        self, action: dict[str, Any], *, deadline_s: float | None = None, as_list: bool | None = None
    ) -> Any:
        """Send an action and wait for its reply, never longer than ``deadline_s``."""
        if not self.usable or self.manager is None:
            raise ConnectionError(f"Asterisk {self.name} is {self.state}")
        future = self.manager.send_action(dict(action), as_list=as_list)
        return await asyncio.wait_for(asyncio.shield(future), deadline_s or self.action_timeout)

    def health(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "detail": self.detail,
            "sessions": self.connects,
            "active_calls": self.active_calls,
        }


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
            self.clock.now,
            lease_s=self.cfg.ring_timeout_s + self.cfg.max_call_s,
            campaign_max=self.cfg.campaign_max_channels,
            trunk_max=trunk.max_channels,
            cps=trunk.cps,
        )

    async def place_call(self, request: CallRequest) -> CallResult:
        _, trunk = self._pick()  # fail fast when no server is up
        await self._pace(request, trunk)
        try:
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
            await self.pacer.release(trunk.name, request.campaign, request.attempt_id)

    async def _originate(
        self, request: CallRequest, call: _Call, server: AmiServer, trunk: TrunkSettings, cid: str
    ) -> None:
        """Register the attempt for the IVR and send the Originate; ``call.done`` resolves later."""
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
        answered, shorts = await self.store.count_answered_call(day, trunk, duration <= self.cfg.short_call_s)
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
            actions=tuple(IvrAction(a["kind"]) for a in ivr.get("actions", [])),
            detail="reconciled from the IVR result",
        )
