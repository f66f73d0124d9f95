"""A FastAGI server on asyncio: Asterisk's ``AGI(agi://host:port/script,args)`` lands here.

Our own, small and typed, because panoramisk's FastAGI server falls short for
production traffic: it reads the AGI environment without limits or time-outs, does not
tell a hang-up (result -1, ``511``, a ``HANGUP`` line, a closed socket) from an error,
and lets one slow peer hold a handler forever. Here every connection is its own task
with bounded reads and deadlines, so no peer can stall the event loop.

Wire format (Asterisk 22): the peer sends ``agi_<name>: <value>`` lines ending with a
blank line; then we write one command per line and read one reply per command:
``200 result=<r> [(<data>)] [endpos=<n>]``; ``510 Invalid or unknown command``;
``511 Command Not Permitted on a dead channel …``; ``520-…`` … ``520 End of proper
usage.``; and ``HANGUP`` at any time when the channel has ``AGISIGHUP`` on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("regua.fastagi")

MAX_HEADER_LINES = 128
MAX_LINE = 8192
# result: a number, or GET DATA's keys as typed (0-9, *, #, A-D); then (data) and endpos=
_RESULT = re.compile(r"^200 result=(-?[0-9*#A-D]*)(?: \((.*?)\))?(?: endpos=(\d+))?\s*$")


class AgiError(Exception):
    """The peer answered something we cannot use."""


class AgiHangup(AgiError):
    """The channel is gone (hang-up, dead channel, closed connection)."""


@dataclass(frozen=True, slots=True)
class AgiResult:
    code: int
    result: str
    data: str = ""
    endpos: int | None = None

    @property
    def value(self) -> int:
        try:
            return int(self.result)
        except ValueError:
            return 0


def parse_result(line: str) -> AgiResult:
    """Parse one reply line (pure). Raises AgiHangup / AgiError for the failure codes."""
    text = line.rstrip("\r\n")
    if text == "HANGUP":
        raise AgiHangup("HANGUP")
    m = _RESULT.match(text)
    if m:
        return AgiResult(200, m.group(1), m.group(2) or "", int(m.group(3)) if m.group(3) else None)
    if text.startswith("511"):
        raise AgiHangup(text)
    if text.startswith("510"):
        raise AgiError(f"Asterisk did not know the command: {text}")
    if text.startswith("520"):
        raise AgiError(f"invalid command syntax: {text}")
    raise AgiError(f"unexpected AGI reply: {text[:200]!r}")


def quote(arg: str) -> str:
    """An AGI argument: quoted, with quotes and backslashes escaped, no line breaks."""
    cleaned = arg.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")
    return f'"{cleaned}"'


class AgiSession:
    """One AGI conversation with Asterisk. Commands raise AgiHangup once the channel is gone."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        env: dict[str, str],
        *,
        reply_timeout: float = 30.0,
    ) -> None:
        self.reader, self.writer, self.env = reader, writer, env
        self.reply_timeout = reply_timeout
        self.hung_up = False

    @property
    def script(self) -> str:
        return self.env.get("agi_network_script", "").split("?", 1)[0].strip("/")

    def arg(self, n: int) -> str:
        return self.env.get(f"agi_arg_{n}", "")

    async def _readline(self, wait_s: float) -> str:
        try:
            raw = await asyncio.wait_for(self.reader.readline(), wait_s)
        except (TimeoutError, ConnectionError) as exc:
            self.hung_up = True
            raise AgiHangup(f"no reply from Asterisk ({type(exc).__name__})") from exc
        if not raw:
            self.hung_up = True
            raise AgiHangup("connection closed")
        if len(raw) > MAX_LINE:
            raise AgiError("reply line too long")
        return raw.decode("utf-8", errors="replace")

    async def command(self, text: str, *, wait: float = 0.0) -> AgiResult:
        """Send one command; ``wait`` is how long the command itself may take (playback, input)."""
        if self.hung_up:
            raise AgiHangup("channel already hung up")
        try:
            self.writer.write(text.encode() + b"\n")
            await asyncio.wait_for(self.writer.drain(), self.reply_timeout)
        except (TimeoutError, ConnectionError, RuntimeError) as exc:
            self.hung_up = True
            raise AgiHangup(f"cannot write to Asterisk: {type(exc).__name__}") from exc
        while True:
            line = await self._readline(self.reply_timeout + wait)
            if line.startswith("520-"):  # usage text: read to its end
                while not (await self._readline(self.reply_timeout)).startswith("520 "):
                    pass
                raise AgiError(f"invalid command syntax: {text.split(' ', 1)[0]}")
            try:
                return parse_result(line)
            except AgiHangup:
                self.hung_up = True
                raise

    async def stream_file(self, path: str, escape_digits: str = "") -> str:
        """Play a file; returns the digit that interrupted it ("" if none)."""
        r = await self.command(f"STREAM FILE {path} {quote(escape_digits)}", wait=600)
        if r.value < 0:
            self.hung_up = True
            raise AgiHangup("hung up during playback")
        return chr(r.value) if r.value > 0 else ""

    async def get_data(self, path: str, timeout_ms: int, max_digits: int) -> tuple[str, bool]:
        """Play a file and collect digits: (digits, timed_out)."""
        r = await self.command(f"GET DATA {path} {timeout_ms} {max_digits}", wait=600 + timeout_ms / 1000)
        if r.result == "-1":
            self.hung_up = True
            raise AgiHangup("hung up while collecting digits")
        return r.result, r.data == "timeout"

    async def get_variable(self, name: str) -> str | None:
        r = await self.command(f"GET VARIABLE {name}")
        return r.data if r.value == 1 else None

    async def set_variable(self, name: str, value: str) -> None:
        await self.command(f"SET VARIABLE {name} {quote(value)}")

    async def verbose(self, message: str, level: int = 3) -> None:
        await self.command(f"VERBOSE {quote(message)} {level}")

    async def hangup(self) -> None:
        with contextlib.suppress(AgiError):
            await self.command("HANGUP")
        self.hung_up = True


Handler = Callable[[AgiSession], Awaitable[None]]


class FastAgiServer:
    """Serve ``handlers[script]`` for each connection; unknown scripts are hung up."""

    def __init__(
        self,
        handlers: dict[str, Handler],
        host: str = "127.0.0.1",
        port: int = 4573,
        *,
        header_timeout: float = 5.0,
        call_timeout: float = 1800.0,
        reply_timeout: float = 30.0,
    ) -> None:
        self.handlers = handlers
        self.host, self.port = host, port
        self.header_timeout, self.call_timeout, self.reply_timeout = (
            header_timeout,
            call_timeout,
            reply_timeout,
        )
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.served = 0
        self.rejected = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port, limit=MAX_LINE * 2)
        sock = self._server.sockets[0].getsockname()
        self.port = int(sock[1])
        log.info("FastAGI listening on %s:%d", self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_env(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        env: dict[str, str] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.header_timeout
        for _ in range(MAX_HEADER_LINES):
            left = deadline - loop.time()
            if left <= 0:
                return None
            try:
                raw = await asyncio.wait_for(reader.readline(), left)
            except (TimeoutError, ValueError, ConnectionError):  # ValueError: line over the limit
                return None
            if not raw:
                return None  # closed before the headers ended
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            if not line:
                return env
            name, sep, value = line.partition(":")
            if sep and name.startswith("agi_"):
                env[name.strip()] = value.strip()
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            env = await self._read_env(reader)
            if env is None:
                self.rejected += 1
                log.info("AGI connection from %s closed or malformed before its headers ended", peer)
                return
            session = AgiSession(reader, writer, env, reply_timeout=self.reply_timeout)
            handler = self.handlers.get(session.script)
            if handler is None:
                self.rejected += 1
                log.warning("AGI script %r is not served here", session.script)
                await session.hangup()
                return
            self.served += 1
            try:
                await asyncio.wait_for(handler(session), self.call_timeout)
            except AgiHangup:
                log.debug("AGI peer %s hung up", peer)
            except TimeoutError:
                log.warning("AGI call from %s exceeded %.0fs; closing", peer, self.call_timeout)
            except AgiError as exc:
                log.warning("AGI call from %s ended on a protocol error: %s", peer, exc)
            except Exception:
                log.exception("AGI handler failed for %s", peer)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)
