"""Local servers that speak each SMS provider's documented API, for the adapter tests.

- ``TwilioServer``: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``, form fields,
  basic auth, Twilio's error JSON (``code``/``message``/``more_info``/``status``): 20003
  (401), 21211 invalid To, 21602 no Body, 21603 no From, 21610 unsubscribed, 20429 (429).
- ``ZenviaServer``: ``POST /v2/channels/sms/messages``, ``X-API-TOKEN``, the v2 message
  object back; error objects ``{"code", "message", "details"}``: VALIDATION_ERROR (400),
  AUTHENTICATION_ERROR (401), INTERNAL_ERROR (500).
- ``GenericServer``: a JSON gateway with a bearer token, ``{"data": {"message_id"}}``
  back, deduplicating on ``Idempotency-Key``.
- ``SmppServer``: an SMSC on asyncio speaking SMPP 3.4 PDUs. Its codec is written here
  with ``struct``, independent of ``sms_gateway.smpp_pdu``, so the two check each other.

Each HTTP server records its requests and takes scripted faults (``fail_next``):
a status and body, a ``Retry-After``, or a delay (for timeouts).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import itertools
import json
import re
import struct
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass
class Fault:
    status: int = 500
    body: dict[str, Any] | None = None
    retry_after: str | None = None
    delay: float = 0.0  # seconds before answering (a client timeout shorter than this fires)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes
    form: dict[str, str] = field(default_factory=dict)
    json: Any = None


class HttpTestServer:
    """An aiohttp app on a free loopback port; subclasses add the provider's routes."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.requests: list[Recorded] = []
        self.faults: collections.deque[Fault] = collections.deque()
        self._runner: web.AppRunner | None = None
        self.port = 0

    def fail_next(self, *faults: Fault) -> None:
        self.faults.extend(faults)

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> HttpTestServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def record(self, request: web.Request) -> Recorded:
        body = await request.read()
        rec = Recorded(request.path, dict(request.headers), body)
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            rec.form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
        elif ctype.startswith("application/json"):
            with contextlib.suppress(ValueError):
                rec.json = json.loads(body)
        self.requests.append(rec)
        return rec

    async def scripted(self) -> web.Response | None:
        """The next scripted fault, if any, as a response."""
        if not self.faults:
            return None
        fault = self.faults.popleft()
        if fault.delay:
            await asyncio.sleep(fault.delay)
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        if fault.body is None:
            return web.Response(status=fault.status, text="upstream trouble", headers=headers)
        return web.json_response(fault.body, status=fault.status, headers=headers)


# ---------------------------------------------------------------- Twilio


def twilio_error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class TwilioServer(HttpTestServer):
    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "tw-secret-token") -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.unsubscribed: set[str] = set()
        self.app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self.create_message)

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user == self.account_sid == request.match_info["sid"] and password == self.auth_token

    async def create_message(self, request: web.Request) -> web.Response:
        rec = await self.record(request)
        scripted = await self.scripted()
        if scripted is not None:
            return scripted
        if not self._authorised(request):
            return web.json_response(twilio_error(20003, "Authenticate", 401), status=401)
        form = rec.form
        to = form.get("To", "")
        if not to:
            return web.json_response(twilio_error(21604, "A 'To' phone number is required.", 400), status=400)
        if not E164.match(to):
            return web.json_response(twilio_error(21211, f"Invalid 'To' Phone Number: {to}", 400), status=400)
        if not form.get("Body"):
            return web.json_response(twilio_error(21602, "Message body is required.", 400), status=400)
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return web.json_response(
                twilio_error(21603, "A 'From' phone number is required.", 400), status=400
            )
        if to in self.unsubscribed:
            return web.json_response(
                twilio_error(21610, "Attempt to send to unsubscribed recipient", 400), status=400
            )
        sid = "SM" + uuid.uuid4().hex
        return web.json_response(
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": form["Body"],
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": form.get("MessagingServiceSid"),
                "num_media": "0",
                "num_segments": "1",
                "price": None,
                "sid": sid,
                "status": "queued",
                "to": to,
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
            status=201,
        )


# ---------------------------------------------------------------- Zenvia


class ZenviaServer(HttpTestServer):
    def __init__(self, token: str = "zv-secret-token", sender: str = "regua") -> None:
        super().__init__()
        self.token = token
        self.sender = sender
        self.app.router.add_post("/v2/channels/sms/messages", self.send_message)

    @staticmethod
    def invalid(path: str, message: str) -> web.Response:
        return web.json_response(
            {
                "code": "VALIDATION_ERROR",
                "message": "Validation error",
                "details": [{"code": "INVALID_FORMAT", "path": path, "message": message}],
            },
            status=400,
        )

    async def send_message(self, request: web.Request) -> web.Response:
        rec = await self.record(request)
        scripted = await self.scripted()
        if scripted is not None:
            return scripted
        token = request.headers.get("X-API-TOKEN")
        if token != self.token:
            return web.json_response(
                {"code": "AUTHENTICATION_ERROR", "message": "No authorization token was found"}, status=401
            )
        doc = rec.json
        if not isinstance(doc, dict):
            return self.invalid("", "body must be a JSON object")
        if doc.get("from") != self.sender:
            return self.invalid("from", "unknown sender for channel sms")
        to = doc.get("to")
        if not isinstance(to, str) or not to.isdigit() or not 10 <= len(to) <= 15:
            return self.invalid("to", "must be the full number with country code, digits only")
        contents = doc.get("contents")
        if (
            not isinstance(contents, list)
            or not contents
            or not all(isinstance(c, dict) and c.get("type") == "text" and c.get("text") for c in contents)
        ):
            return self.invalid("contents", "must be a list of text contents")
        return web.json_response(
            {
                "id": str(uuid.uuid4()),
                "from": doc["from"],
                "to": to,
                "direction": "OUT",
                "channel": "sms",
                "contents": contents,
            }
        )


# ---------------------------------------------------------------- generic JSON


class GenericServer(HttpTestServer):
    def __init__(self, token: str = "gen-secret-token", path: str = "/api/v1/sms") -> None:
        super().__init__()
        self.token = token
        self.path = path
        self.by_key: dict[str, str] = {}
        self.unique_sends = 0
        self.app.router.add_post(path, self.send)

    async def send(self, request: web.Request) -> web.Response:
        rec = await self.record(request)
        scripted = await self.scripted()
        if scripted is not None:
            return scripted
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        doc = rec.json
        if not isinstance(doc, dict) or not isinstance(doc.get("to"), str) or not doc.get("message"):
            return web.json_response({"message": "to and message are required"}, status=422)
        if not E164.match(doc["to"]):
            return web.json_response({"code": "bad_number", "message": "invalid destination"}, status=422)
        key = request.headers.get("Idempotency-Key", "")
        if key and key in self.by_key:
            return web.json_response({"data": {"message_id": self.by_key[key]}})
        self.unique_sends += 1
        message_id = f"gw-{self.unique_sends:06d}"
        if key:
            self.by_key[key] = message_id
        return web.json_response({"data": {"message_id": message_id, "status": "accepted"}})


# ---------------------------------------------------------------- SMPP


# command ids and statuses written out here on purpose (not imported from the code under test)
BIND_TRANSMITTER, BIND_TRANSCEIVER, BIND_RECEIVER = 0x00000002, 0x00000009, 0x00000001
SUBMIT_SM, DELIVER_SM, UNBIND, ENQUIRE_LINK = 0x00000004, 0x00000005, 0x00000006, 0x00000015
GENERIC_NACK, RESP = 0x80000000, 0x80000000
ESME_ROK, ESME_RINVCMDID, ESME_RINVBNDSTS, ESME_RINVPASWD = 0x00, 0x03, 0x04, 0x0E
ESME_RINVDSTADR, ESME_RTHROTTLED, ESME_RSYSERR = 0x0B, 0x58, 0x08


def cstr(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end].decode("latin-1"), end + 1


def parse_submit(body: bytes) -> dict[str, Any]:
    """submit_sm's mandatory fields (SMPP 3.4 section 4.4.1), read field by field."""
    out: dict[str, Any] = {}
    out["service_type"], pos = cstr(body, 0)
    out["source_addr_ton"], out["source_addr_npi"] = body[pos], body[pos + 1]
    out["source_addr"], pos = cstr(body, pos + 2)
    out["dest_addr_ton"], out["dest_addr_npi"] = body[pos], body[pos + 1]
    out["destination_addr"], pos = cstr(body, pos + 2)
    out["esm_class"], out["protocol_id"], out["priority_flag"] = body[pos], body[pos + 1], body[pos + 2]
    out["schedule_delivery_time"], pos = cstr(body, pos + 3)
    out["validity_period"], pos = cstr(body, pos)
    (
        out["registered_delivery"],
        out["replace_if_present_flag"],
        out["data_coding"],
        out["sm_default_msg_id"],
        length,
    ) = body[pos : pos + 5]
    out["short_message"] = body[pos + 5 : pos + 5 + length]
    out["tlv_bytes"] = body[pos + 5 + length :]
    return out


def pdu(command_id: int, sequence: int, body: bytes = b"", status: int = 0) -> bytes:
    return struct.pack(">IIII", 16 + len(body), command_id, status, sequence) + body


class SmppServer:
    """A small SMSC. Scripted behaviour: ``statuses`` (answers for the next submit_sm),
    ``nack_next`` (generic_nack the next N submits), ``answer_enquire_link``,
    ``refuse_numbers`` (ESME_RINVDSTADR)."""

    def __init__(self, system_id: str = "regua", password: str = "smpp-pw") -> None:
        self.system_id = system_id
        self.password = password
        self.statuses: collections.deque[int] = collections.deque()
        self.nack_next = 0
        self.answer_enquire_link = True
        self.refuse_numbers: set[str] = set()
        self.submit_delay = 0.0
        self.binds: list[dict[str, Any]] = []
        self.submits: list[dict[str, Any]] = []
        self.pdus_in: list[tuple[int, int, int]] = []  # (command_id, status, sequence)
        self.deliver_resps: list[int] = []  # statuses of deliver_sm_resp received
        self.enquire_links = 0
        self.unbinds = 0
        self.connections = 0
        self.raw_in = bytearray()
        self._ids = itertools.count(1)
        self._seq = itertools.count(1)
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._modes: dict[asyncio.StreamWriter, str] = {}
        self.port = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def drop_all(self) -> None:
        for w in self._writers:
            w.close()
        self._writers.clear()

    async def __aenter__(self) -> SmppServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # server-initiated PDUs
    def _transceivers(self) -> list[asyncio.StreamWriter]:
        return [w for w in self._writers if self._modes.get(w) == "transceiver" and not w.is_closing()]

    async def send_to_clients(self, data: bytes) -> None:
        for w in self._transceivers() or [w for w in self._writers if not w.is_closing()]:
            w.write(data)
            await w.drain()

    async def enquire_link(self) -> int:
        seq = next(self._seq)
        await self.send_to_clients(pdu(ENQUIRE_LINK, seq))
        return seq

    async def unbind_clients(self) -> int:
        seq = next(self._seq)
        await self.send_to_clients(pdu(UNBIND, seq))
        return seq

    async def send_unknown(self, command_id: int = 0x00000099) -> int:
        seq = next(self._seq)
        await self.send_to_clients(pdu(command_id, seq))
        return seq

    async def deliver(
        self,
        source: str,
        dest: str,
        short_message: bytes,
        *,
        esm: int = 0,
        coding: int = 0,
        tlvs: bytes = b"",
        writer: asyncio.StreamWriter | None = None,
    ) -> None:
        body = (
            b"\x00"
            + bytes((1, 1))
            + source.encode()
            + b"\x00"
            + bytes((5, 0))
            + dest.encode()
            + b"\x00"
            + bytes((esm, 0, 0))
            + b"\x00"
            + b"\x00"
            + bytes((0, 0, coding, 0, len(short_message)))
            + short_message
            + tlvs
        )
        data = pdu(DELIVER_SM, next(self._seq), body)
        if writer is None:
            await self.send_to_clients(data)
        else:
            writer.write(data)
            await writer.drain()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        bound = False
        try:
            while True:
                header = await reader.readexactly(16)
                length, command_id, status, sequence = struct.unpack(">IIII", header)
                body = await reader.readexactly(length - 16)
                self.raw_in += header + body
                self.pdus_in.append((command_id, status, sequence))
                if command_id in (BIND_TRANSMITTER, BIND_TRANSCEIVER, BIND_RECEIVER):
                    system_id, pos = cstr(body, 0)
                    password, pos = cstr(body, pos)
                    system_type, pos = cstr(body, pos)
                    version = body[pos]
                    self.binds.append(
                        {
                            "command_id": command_id,
                            "system_id": system_id,
                            "system_type": system_type,
                            "interface_version": version,
                        }
                    )
                    ok = system_id == self.system_id and password == self.password
                    resp_body = self.system_id.encode() + b"\x00" if ok else b""
                    writer.write(
                        pdu(command_id | RESP, sequence, resp_body, ESME_ROK if ok else ESME_RINVPASWD)
                    )
                    bound = ok
                    if ok:
                        self._modes[writer] = "transceiver" if command_id == BIND_TRANSCEIVER else "other"
                elif command_id == SUBMIT_SM:
                    if not bound:
                        writer.write(pdu(SUBMIT_SM | RESP, sequence, b"", ESME_RINVBNDSTS))
                    else:
                        await self._submit(writer, sequence, body)
                elif command_id == ENQUIRE_LINK:
                    self.enquire_links += 1
                    if self.answer_enquire_link:
                        writer.write(pdu(ENQUIRE_LINK | RESP, sequence))
                elif command_id == UNBIND:
                    self.unbinds += 1
                    writer.write(pdu(UNBIND | RESP, sequence))
                    await writer.drain()
                    break
                elif command_id == DELIVER_SM | RESP:
                    self.deliver_resps.append(status)
                elif command_id & RESP:
                    pass  # responses to our enquire_link / unbind / unknown requests
                else:
                    writer.write(pdu(GENERIC_NACK, sequence, b"", ESME_RINVCMDID))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _submit(self, writer: asyncio.StreamWriter, sequence: int, body: bytes) -> None:
        fields = parse_submit(body)
        self.submits.append(fields)
        if self.submit_delay:
            await asyncio.sleep(self.submit_delay)
        if self.nack_next:
            self.nack_next -= 1
            writer.write(pdu(GENERIC_NACK, sequence, b"", ESME_RSYSERR))
            return
        status = self.statuses.popleft() if self.statuses else ESME_ROK
        if fields["destination_addr"] in self.refuse_numbers:
            status = ESME_RINVDSTADR
        if status != ESME_ROK:
            writer.write(pdu(SUBMIT_SM | RESP, sequence, b"", status))
            return
        message_id = f"{next(self._ids):08X}"
        fields["message_id"] = message_id
        writer.write(pdu(SUBMIT_SM | RESP, sequence, message_id.encode() + b"\x00"))
        if fields["registered_delivery"] & 1 and self._modes.get(writer) == "transceiver":
            text = (
                f"id:{message_id} sub:001 dlvrd:001 submit date:2611231000 done date:2611231001 "
                "stat:DELIVRD err:000 text:"
            ).encode()
            tlvs = struct.pack(">HH", 0x001E, len(message_id) + 1) + message_id.encode() + b"\x00"
            tlvs += struct.pack(">HHB", 0x0427, 1, 2)
            await writer.drain()
            await self.deliver(
                fields["destination_addr"], fields["source_addr"], text, esm=0x04, tlvs=tlvs, writer=writer
            )
