"""One Asterisk server's AMI session: panoramisk wrapped, with its traps closed.

``AmiServer`` (one per ``ami://user:secret@host:5038``) keeps a panoramisk ``Manager``
connected and healthy:

- every action has a deadline, because an action that had its first reply hangs forever
  after a disconnect; Originate is never re-sent after a reconnect (panoramisk would
  replay unanswered actions on FullyBooted: that could place a second call);
- events reach one callback that never raises (a raising callback drops the connection);
- the keep-alive ``Ping`` checks its reply, and a silent server is reconnected;
- reconnection backs off; wrong credentials stop the retries with one clear error
  instead of a loop of stack traces;
- messages are read by ``_Protocol``: panoramisk's own ``Message`` objects, built without
  its per-header dictionary updates (they were a quarter of a worker's CPU in a burst of
  2,000 live calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import panoramisk
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message

from dialer.errors import AmiLoginFailed, ConfigError

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


_WITH_BODY = ("Response: Follows", "Response: Fail")  # panoramisk keeps their last line as content


def parse_message(block: str) -> Message | None:
    """One AMI message (its lines, without the blank line that ends it) as the ``Message``
    panoramisk's ``Message.from_line`` makes — headers looked up in any case, a repeated
    header a list, ``Result`` unquoted, ``None`` for what is neither event nor response —
    in a third of its time."""
    if block.startswith(_WITH_BODY):
        return Message.from_line(block)  # rare (command output): panoramisk's own path
    store: dict[str, tuple[str, Any]] = {}
    for line in block.split("\r\n"):
        key, sep, value = line.partition(": ")
        if not sep:
            continue
        low = key.lower()
        if low == "result":
            value = unquote(value).strip()
        seen = store.get(low)
        if seen is None:
            store[low] = (key, value)
        else:
            before = seen[1]
            store[low] = (seen[0], [*before, value] if isinstance(before, list) else [before, value])
    if "event" not in store and "response" not in store:
        return None
    store["content"] = ("content", "")
    message: Message = Message.__new__(Message)
    message._store = store
    message.manager = None
    return message


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol, reading with ``parse_message``."""

    def data_received(self, data: bytes) -> None:
        if self.version is None:  # the banner (and what came with it): panoramisk's path
            super().data_received(data)
            return
        text = data.decode(getattr(self, "encoding", "ascii"), "ignore")
        if self.queue:
            text = self.queue.popleft() + text
        blocks = text.split("\r\n\r\n")
        self.queue.append(blocks.pop())
        for block in blocks:
            message = parse_message(block.strip())
            if message is not None:
                self.handle_message(message)


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
                protocol_factory=_Protocol,
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
