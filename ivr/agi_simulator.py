"""SIMULATOR: a stand-in for Asterisk on the FastAGI wire (tests, benchmarks, demos): sends the agi_* environment, reads each command
and answers it the way Asterisk 22 does, from a script of key presses / time-outs / hang-ups."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

ENV = {
    "agi_network": "yes",
    "agi_network_script": "ivr",
    "agi_request": "agi://127.0.0.1/ivr",
    "agi_channel": "PJSIP/trunk-00000001",
    "agi_language": "pt_BR",
    "agi_type": "PJSIP",
    "agi_uniqueid": "1795000000.1",
    "agi_version": "22.0.0",
    "agi_callerid": "5511987654320",
    "agi_calleridname": "unknown",
    "agi_callingpres": "0",
    "agi_callingani2": "0",
    "agi_callington": "0",
    "agi_callingtns": "0",
    "agi_dnid": "unknown",
    "agi_rdnis": "unknown",
    "agi_context": "regua-outbound",
    "agi_extension": "s",
    "agi_priority": "5",
    "agi_enhanced": "0.0",
    "agi_accountcode": "",
    "agi_threadid": "140000000000000",
}

HANGUP = "HANGUP"  # in a script: the person hangs up at this command
DEAD = "DEAD"  # the channel is dead: 511 to this and every later command
CLOSE = "CLOSE"  # Asterisk closes the socket


@dataclass
class Peer:
    """Answers GET DATA with the next scripted input ("" = time-out), STREAM FILE with 0."""

    script: list[str]
    amd: str | None = "HUMAN"
    commands: list[str] = field(default_factory=list)
    played: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    answers: list[tuple[str, str]] = field(default_factory=list)  # (file played, what we "typed")

    async def call(self, port: int, args: tuple[str, ...] = (), script_name: str = "ivr") -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        env = {**ENV, "agi_network_script": script_name}
        for i, a in enumerate(args, 1):
            env[f"agi_arg_{i}"] = a
        writer.write("".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
        await writer.drain()
        dead = False
        try:
            while True:
                line = await asyncio.wait_for(reader.readline(), 10)
                if not line:
                    return
                command = line.decode().strip()
                self.commands.append(command)
                reply = self._reply(command, dead)
                if reply == CLOSE:
                    return
                if reply.startswith("511"):
                    dead = True
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    def _reply(self, command: str, dead: bool) -> str:
        if dead:
            return "511 Command Not Permitted on a dead channel or intercept routine"
        verb = command.split(" ", 2)
        if command.startswith("GET DATA") or command.startswith("STREAM FILE"):
            self.played.append(verb[2].split(" ", 1)[0])
            if command.startswith("STREAM FILE"):
                if self.script and self.script[0] in (HANGUP, DEAD, CLOSE):
                    return self._fail(self.script.pop(0), play=True)
                return "200 result=0 endpos=8000"
            nxt = self.script.pop(0) if self.script else ""
            self.answers.append((verb[2].split(" ", 1)[0], nxt))
            if nxt in (HANGUP, DEAD, CLOSE):
                return self._fail(nxt, play=False)
            return f"200 result={nxt} (timeout)" if nxt == "" else f"200 result={nxt}"
        if command.startswith("GET VARIABLE"):
            name = command.split(" ")[2]
            if name == "AMDSTATUS" and self.amd:
                return f"200 result=1 ({self.amd})"
            return "200 result=0"
        if command.startswith("SET VARIABLE"):
            _, _, name, value = command.split(" ", 3)
            self.variables[name] = value.strip('"')
            return "200 result=1"
        if command.startswith("HANGUP"):
            return "200 result=1"
        if command.startswith("VERBOSE"):
            return "200 result=1"
        return "510 Invalid or unknown command"

    @staticmethod
    def _fail(kind: str, play: bool) -> str:
        if kind == CLOSE:
            return CLOSE
        if kind == DEAD:
            return "511 Command Not Permitted on a dead channel or intercept routine"
        return "200 result=-1 endpos=0" if play else "200 result=-1"
