"""SIMULATOR: an in-process Asterisk Manager Interface server speaking the wire protocol byte
for byte — for tests, benchmarks and demos without a PBX (never for real calls).

It answers Login (accepting or refusing), Ping, Originate (``Async: true``: the queued
response, then Newchannel / Newstate / OriginateResponse / UserEvent / Hangup; a
``ChannelId`` that is a prefix of a live channel's uniqueid is refused with Reason 0, as
Asterisk 22 refuses it), and
CoreShowChannels (an event list), and for answered calls it connects to the FastAGI
server as Asterisk's ``AGI()`` would. What happens to a call is chosen by the last digit
of the dialled number (as in the sandbox). Faults on demand: refused logins, dropped
connections, garbage and split lines, missing OriginateResponses, restarts.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import re
import time
from dataclasses import dataclass, field
from typing import Any

from ivr.agi_simulator import Peer

EOL = "\r\n"

# last digit -> (reason, cause, answered, amd, keys for the IVR)
SCENARIOS: dict[str, tuple[int, int, bool, str, list[str]]] = {
    "0": (4, 16, True, "HUMAN", ["1", "1980", "1"]),
    "1": (4, 16, True, "HUMAN", ["2", ""]),
    "2": (4, 16, True, "MACHINE", []),
    "3": (3, 19, False, "", []),
    "4": (5, 17, False, "", []),
    "5": (8, 34, False, "", []),
    "6": (4, 16, True, "HUMAN", ["2", "9"]),
    "7": (8, 1, False, "", []),
    "8": (4, 16, True, "HUMAN", ["1", "1980", "2", "1"]),
    "9": (4, 16, True, "HUMAN", ["1", "1980", "4"]),
}


def message(**headers: Any) -> bytes:
    lines = []
    for key, value in headers.items():
        lines.append(f"{key}: {value}")
    return (EOL.join(lines) + EOL + EOL).encode()


def originate_response(
    action_id: str, action: dict[str, Any], response: str, channel: str, reason: str | int, uniqueid: str
) -> bytes:
    """The OriginateResponse an Async Originate ends with (Reason 4: answered)."""
    return message(
        Event="OriginateResponse",
        Privilege="call,all",
        ActionID=action_id,
        Response=response,
        Channel=channel,
        Context=action.get("Context", ""),
        Exten=action.get("Exten", ""),
        Reason=reason,
        Uniqueid=uniqueid,
        CallerIDNum="<unknown>",
        CallerIDName="<unknown>",
    )


@dataclass
class AmiServer:
    username: str = "regua"
    secret: str = "s3cret"
    agi_port: int | None = None
    ring_s: float = 0.01
    talk_s: float = 0.01
    drop_originate_response: bool = False  # never send OriginateResponse (a lost reply)
    refuse_connections: bool = False
    split_writes: bool = False  # send every message a few bytes at a time
    garbage: bool = False  # sprinkle lines that are no AMI at all
    port: int = 0
    actions: list[dict[str, str]] = field(default_factory=list)
    channels: dict[str, dict[str, str]] = field(default_factory=dict)  # answered calls by uniqueid
    live: list[str] = field(default_factory=list)  # the uniqueids (lower case) of every live channel, sorted
    originated: int = 0
    refused_ids: int = 0  # Originates refused because their uniqueid was a prefix of a live one
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _seq: Any = field(default_factory=lambda: itertools.count(1))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        await self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def drop_all(self) -> None:
        """Close every AMI connection (a network cut, or Asterisk going down)."""
        for w in list(self._writers):
            w.close()
        self._writers.clear()
        await asyncio.sleep(0)

    async def restart(self, down_s: float = 0.3) -> None:
        """Asterisk restarts: connections drop, new ones are refused for a while, calls are gone."""
        self.refuse_connections = True
        await self.drop_all()
        self.channels.clear()
        self.live.clear()
        await asyncio.sleep(down_s)
        self.refuse_connections = False

    # -- the protocol

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse_connections:
            writer.close()
            return
        self._writers.add(writer)
        authed = False
        try:
            writer.write(f"Asterisk Call Manager/9.0.0{EOL}".encode())
            await writer.drain()
            while True:
                action = await self._read_action(reader)
                if action is None:
                    return
                self.actions.append(action)
                name = action.get("Action", "").lower()
                aid = action.get("ActionID", "")
                if name == "login":
                    if action.get("Username") == self.username and action.get("Secret") == self.secret:
                        authed = True
                        await self._send(
                            writer,
                            message(Response="Success", ActionID=aid, Message="Authentication accepted"),
                        )
                        await self._send(
                            writer,
                            message(
                                Event="FullyBooted",
                                Privilege="system,all",
                                Uptime="100",
                                LastReload="100",
                                Status="Fully Booted",
                            ),
                        )
                    else:
                        await self._send(
                            writer, message(Response="Error", ActionID=aid, Message="Authentication failed")
                        )
                        return
                elif not authed:
                    await self._send(
                        writer, message(Response="Error", ActionID=aid, Message="Permission denied")
                    )
                elif name == "ping":
                    await self._send(
                        writer,
                        message(
                            Response="Success", ActionID=aid, Ping="Pong", Timestamp=f"{time.time():.6f}"
                        ),
                    )
                elif name == "originate":
                    await self._send(
                        writer,
                        message(Response="Success", ActionID=aid, Message="Originate successfully queued"),
                    )
                    self.originated += 1
                    task = asyncio.create_task(self._call(writer, action))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                elif name == "coreshowchannels":
                    await self._send(
                        writer,
                        message(
                            Response="Success",
                            ActionID=aid,
                            EventList="start",
                            Message="Channels will follow",
                        ),
                    )
                    for uid, ch in list(self.channels.items()):
                        await self._send(
                            writer,
                            message(
                                Event="CoreShowChannel",
                                ActionID=aid,
                                Channel=ch["Channel"],
                                Uniqueid=uid,
                                ChannelState="6",
                                ChannelStateDesc="Up",
                            ),
                        )
                    await self._send(
                        writer,
                        message(
                            Event="CoreShowChannelsComplete",
                            ActionID=aid,
                            EventList="Complete",
                            ListItems=len(self.channels),
                        ),
                    )
                elif name == "logoff":
                    await self._send(
                        writer, message(Response="Goodbye", ActionID=aid, Message="Thanks for all the fish.")
                    )
                    return
                else:
                    await self._send(
                        writer, message(Response="Error", ActionID=aid, Message="Invalid/unknown command")
                    )
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _read_action(self, reader: asyncio.StreamReader) -> dict[str, str] | None:
        headers: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        while True:
            raw = await reader.readline()
            if not raw:
                return None
            line = raw.decode().rstrip("\r\n")
            if not line:
                if headers:
                    for k, vs in multi.items():
                        headers[k] = ",".join(vs)
                    return headers
                continue
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key in headers:
                multi.setdefault(key, [headers[key]]).append(value)
            headers[key] = value

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        if writer.is_closing():
            raise ConnectionError("closed")
        if self.garbage:
            writer.write(b"this is not an AMI line\r\n\r\n")
        if self.split_writes:
            for i in range(0, len(data), 7):
                writer.write(data[i : i + 7])
                await writer.drain()
                await asyncio.sleep(0)
        else:
            writer.write(data)
        await writer.drain()

    async def _broadcast(self, data: bytes) -> None:
        for w in list(self._writers):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self._send(w, data)

    def _conflict(self, uid: str) -> str | None:
        """The live uniqueid a new one clashes with, as Asterisk 22 finds it: a channel whose
        uniqueid *starts with* the new one (case-insensitive), ``do_ids_conflict`` in
        ``main/channel.c`` through ``by_uniqueid_cb`` in ``main/channelstorage_ao2_legacy.c``."""
        new = uid.lower()
        i = bisect.bisect_left(self.live, new)  # sorted: a uniqueid it prefixes comes right after it
        return self.live[i] if i < len(self.live) and self.live[i].startswith(new) else None

    async def _call(self, writer: asyncio.StreamWriter, action: dict[str, str]) -> None:
        uid = action.get("ChannelId", f"1795000000.{next(self._seq)}")
        uid2 = action.get("OtherChannelId", "")
        chan = action.get("Channel", "PJSIP/x")
        aid = action.get("ActionID", "")
        if any(self._conflict(u) for u in (uid, uid2) if u):
            # "Channel Unique ID '…' already in use": no channel, the Originate fails (Reason 0)
            self.refused_ids += 1
            await self._broadcast(originate_response(aid, action, "Failure", chan, 0, "<null>"))
            return
        legs = [u.lower() for u in (uid, uid2) if u]
        for leg in legs:
            bisect.insort(self.live, leg)
        try:
            await self._run_call(writer, action, uid, chan, aid)
        finally:
            for leg in legs:
                i = bisect.bisect_left(self.live, leg)
                if i < len(self.live) and self.live[i] == leg:
                    del self.live[i]

    async def _run_call(
        self, writer: asyncio.StreamWriter, action: dict[str, str], uid: str, chan: str, aid: str
    ) -> None:
        number = re.sub(r"\D", "", chan.split("@")[0])
        reason, cause, answered, amd, keys = SCENARIOS[number[-1]]
        variables = dict(v.split("=", 1) for v in action.get("Variable", "").split(",") if "=" in v)
        name = f"{chan.split('@')[0]}-{next(self._seq):08x}"
        base = {"Channel": name, "Uniqueid": uid, "Linkedid": uid}
        await self._broadcast(
            message(
                Event="Newchannel",
                Privilege="call,all",
                ChannelState="0",
                ChannelStateDesc="Down",
                Exten=action.get("Exten", "s"),
                **base,
            )
        )
        await self._broadcast(
            message(
                Event="Newstate", Privilege="call,all", ChannelState="5", ChannelStateDesc="Ringing", **base
            )
        )
        await asyncio.sleep(self.ring_s)
        if not answered:
            if not self.drop_originate_response:
                await self._broadcast(originate_response(aid, action, "Failure", chan, reason, "<null>"))
            await self._broadcast(
                message(
                    Event="Hangup", Privilege="call,all", Cause=cause, **{"Cause-txt": "scripted"}, **base
                )
            )
            return
        self.channels[uid] = base
        await self._broadcast(
            message(Event="Newstate", Privilege="call,all", ChannelState="6", ChannelStateDesc="Up", **base)
        )
        if not self.drop_originate_response:
            await self._broadcast(originate_response(aid, action, "Success", name, "4", uid))
        outcome = ""
        if self.agi_port is not None:
            peer = Peer(list(keys), amd=amd)
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(peer.call(self.agi_port, (variables.get("ATTEMPT_ID", ""),)), 10)
            outcome = peer.variables.get("REGUA_OUTCOME", "")
        await asyncio.sleep(self.talk_s)
        if uid not in self.channels:  # Asterisk restarted meanwhile: the call is gone without a word
            return
        del self.channels[uid]
        await self._broadcast(
            message(
                Event="UserEvent",
                Privilege="user,all",
                UserEvent="ReguaEnd",
                Attempt=variables.get("ATTEMPT_ID", ""),
                AMD=amd,
                Outcome=outcome,
            )
        )
        await self._broadcast(
            message(
                Event="Hangup", Privilege="call,all", Cause=cause, **{"Cause-txt": "Normal Clearing"}, **base
            )
        )

    async def _safe(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._send(writer, data)
