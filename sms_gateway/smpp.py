"""SMPP 3.4 client (ESME) on asyncio streams; the PDUs are in ``smpp_pdu``.

One TCP connection, bound as transceiver (receipts come back on it) or transmitter,
opened on the first send and again after a loss. Requests and responses are matched by
sequence number, so up to ``window`` messages are in flight at once. The link is kept
alive with ``enquire_link`` when it has been idle for ``enquire_link_s``; a missing
answer drops it. The SMSC's own ``enquire_link`` and ``unbind`` are answered, a
``deliver_sm`` is acknowledged and handed to ``on_receipt`` (delivery receipts) or
``on_inbound`` (replies), and an unknown request gets a ``generic_nack``.

Errors: ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR and the like, a lost link and a
response timeout are ``SmsRetryable``; ESME_RINVDSTADR and every other refusal of the
message, and a bind refused for its credentials, are ``SmsPermanent``.

A long text goes out as several submit_sm with a concatenation UDH. Once the first part
is accepted the rest are retried here on transient errors; if a later part still fails
the message is reported ``SmsPermanent`` rather than resent whole, which would repeat
the parts the handset already has.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dialer.errors import SmsError, SmsPermanent, SmsRetryable
from sms_gateway import smpp_pdu as p
from sms_gateway.base import SendResult, SmsMessage
from sms_gateway.encoding import analyse
from sms_gateway.http_transport import cost_of
from sms_gateway.webhooks import DeliveryReceipt, InboundMessage, e164, smpp_receipt

log = logging.getLogger("regua.sms.smpp")

BINDS = {
    "transceiver": (p.Command.BIND_TRANSCEIVER, p.Command.BIND_TRANSCEIVER_RESP),
    "transmitter": (p.Command.BIND_TRANSMITTER, p.Command.BIND_TRANSMITTER_RESP),
}


@dataclass(frozen=True, slots=True)
class SmppConfig:
    host: str
    port: int = 2775
    system_id: str = ""
    password: str = field(default="", repr=False)
    system_type: str = ""
    bind: str = "transceiver"  # or "transmitter" (no receipts on this link)
    source: str = ""  # sender: alphanumeric, short code or E.164
    source_ton: int | None = None  # None: from the form of ``source``
    source_npi: int | None = None
    dest_ton: int = 1  # international
    dest_npi: int = 1  # ISDN (E.164)
    service_type: str = ""
    registered_delivery: int | None = None  # None: 1 when bound as transceiver, else 0
    enquire_link_s: float = 30.0
    response_timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    window: int = 10
    throttle_pause_s: float = 1.0  # ESME_RTHROTTLED carries no delay: wait this long
    part_retries: int = 3
    price: float = 0.0  # per segment


def source_address(config: SmppConfig) -> tuple[int, int, str]:
    """TON, NPI and digits of the sender: alphanumeric (5/0), short code (3/0) or E.164 (1/1)."""
    source = config.source
    digits = source[1:] if source.startswith("+") else source
    if digits.isdigit() and (source.startswith("+") or len(digits) > 8):
        ton, npi, source = 1, 1, digits
    elif digits.isdigit():
        ton, npi = 3, 0
    else:
        ton, npi = 5, 0
    return (
        ton if config.source_ton is None else config.source_ton,
        npi if config.source_npi is None else config.source_npi,
        source,
    )


Callback = Callable[[Any], object]


class _Link:
    """One bound connection: writes requests, matches responses, answers the SMSC."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        config: SmppConfig,
        on_pdu: Callable[[_Link, p.Pdu], None],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.config = config
        self.on_pdu = on_pdu
        self.pending: dict[int, asyncio.Future[p.Pdu]] = {}
        self._sequence = 0
        self.closed = False
        self.bound = False
        self.last_rx = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._read_loop(), name="smpp-read"))

    def start_keepalive(self) -> None:
        self._tasks.append(asyncio.create_task(self._keepalive(), name="smpp-enquire-link"))

    def next_sequence(self) -> int:
        self._sequence = self._sequence % 0x7FFFFFFF + 1
        return self._sequence

    def write(self, pdu: p.Pdu) -> None:
        if self.closed:
            raise SmsRetryable("smpp: the link is closed")
        self.writer.write(p.encode_pdu(pdu))

    async def request(self, command: int, body: bytes = b"", wait_s: float | None = None) -> p.Pdu:
        """Send a request and wait for its response (or a generic_nack with its sequence)."""
        sequence = self.next_sequence()
        future: asyncio.Future[p.Pdu] = asyncio.get_running_loop().create_future()
        self.pending[sequence] = future
        try:
            self.write(p.Pdu(command, 0, sequence, body))
            await self.writer.drain()
            return await asyncio.wait_for(future, wait_s or self.config.response_timeout_s)
        except TimeoutError:
            raise SmsRetryable(
                f"smpp: no response to {p.Pdu(command, 0, 0).command_name} "
                f"within {wait_s or self.config.response_timeout_s:g}s"
            ) from None
        except (ConnectionError, OSError) as exc:
            self.fail_all("smpp: connection lost while writing")
            raise SmsRetryable(f"smpp: connection lost ({type(exc).__name__})") from exc
        finally:
            self.pending.pop(sequence, None)

    def respond(self, request: p.Pdu, command: int, body: bytes = b"", status: int = 0) -> None:
        with contextlib.suppress(SmsRetryable):
            self.write(p.Pdu(command, status, request.sequence, body))

    async def _read_loop(self) -> None:
        try:
            while True:
                first = await self.reader.readexactly(4)
                try:
                    length = p.frame_length(first)
                except p.PduError as exc:
                    log.warning("smpp: %s; dropping the link", exc)
                    break
                rest = await self.reader.readexactly(length - 4)
                self.last_rx = time.monotonic()
                pdu = p.decode_pdu(first + rest)
                if pdu.is_response:
                    future = self.pending.get(pdu.sequence)
                    if future is not None and not future.done():
                        future.set_result(pdu)
                    elif pdu.command_id == p.Command.GENERIC_NACK:
                        log.warning(
                            "smpp: generic_nack %s for sequence %d", p.status_name(pdu.status), pdu.sequence
                        )
                    continue
                self.on_pdu(self, pdu)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not leave callers waiting forever
            log.exception("smpp: reader failed")
        finally:
            self.fail_all("smpp: connection lost")

    async def _keepalive(self) -> None:
        interval = self.config.enquire_link_s
        while not self.closed:
            idle = time.monotonic() - self.last_rx
            if idle < interval:
                await asyncio.sleep(interval - idle)
                continue
            try:
                resp = await self.request(p.Command.ENQUIRE_LINK)
            except SmsRetryable:
                log.warning("smpp: enquire_link unanswered; dropping the link")
                await self.close(unbind=False)
                return
            if resp.command_id != p.Command.ENQUIRE_LINK_RESP:
                log.warning("smpp: enquire_link answered by %s", resp.command_name)
            self.last_rx = time.monotonic()

    def fail_all(self, reason: str) -> None:
        self.closed = True
        self.bound = False
        for future in list(self.pending.values()):
            if not future.done():
                future.set_exception(SmsRetryable(reason))
        self.pending.clear()
        if not self.writer.is_closing():
            self.writer.close()

    async def close(self, *, unbind: bool = True) -> None:
        if unbind and self.bound and not self.closed:
            with contextlib.suppress(SmsError):
                await self.request(p.Command.UNBIND, wait_s=min(2.0, self.config.response_timeout_s))
        self.fail_all("smpp: link closed")
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


class SmppSms:
    """``SmsGateway`` over one SMPP 3.4 connection."""

    name = "smpp"

    def __init__(
        self,
        config: SmppConfig,
        *,
        on_receipt: Callable[[DeliveryReceipt], object] | None = None,
        on_inbound: Callable[[InboundMessage], object] | None = None,
    ) -> None:
        if config.bind not in BINDS:
            raise ValueError(f"smpp: bind must be one of {sorted(BINDS)}")
        self.config = config
        self.on_receipt = on_receipt
        self.on_inbound = on_inbound
        self._link: _Link | None = None
        self._connecting = asyncio.Lock()
        self._window = asyncio.Semaphore(max(1, config.window))
        self._reference = random.randrange(256)
        self._source = source_address(config)
        self._closing = False
        self._callbacks: set[asyncio.Future[object]] = set()
        self.sent = 0
        self.failed = 0
        self.receipts = 0
        self.down = False
        self.last_error = ""

    # ------------------------------------------------------------ connection

    async def _bound_link(self) -> _Link:
        link = self._link
        if link is not None and not link.closed:
            return link
        async with self._connecting:
            if self._link is not None and not self._link.closed:
                return self._link
            if self._closing:
                raise SmsRetryable("smpp: the gateway is closing")
            self._link = await self._open()
            return self._link

    async def _open(self) -> _Link:
        c = self.config
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(c.host, c.port), c.connect_timeout_s
            )
        except TimeoutError:
            raise SmsRetryable(
                f"smpp: no connection to {c.host}:{c.port} within {c.connect_timeout_s:g}s"
            ) from None
        except OSError as exc:
            raise SmsRetryable(
                f"smpp: cannot connect to {c.host}:{c.port} ({exc.strerror or type(exc).__name__})"
            ) from exc
        link = _Link(reader, writer, c, self._on_request)
        link.start()
        command, expected = BINDS[c.bind]
        bind = p.Bind(c.system_id, c.password, c.system_type)
        try:
            resp = await link.request(command, bind.encode())
        except SmsRetryable:
            await link.close(unbind=False)
            raise
        if resp.command_id != expected or resp.status != p.Status.ESME_ROK:
            await link.close(unbind=False)
            status = resp.status if resp.command_id == expected else (resp.status or p.Status.ESME_RINVCMDID)
            reason = f"smpp: bind as {c.system_id!r} refused ({p.status_name(status)})"
            if status in p.BIND_REFUSED:
                raise SmsPermanent(reason + ": check system_id, password and system_type")
            raise SmsRetryable(reason)
        link.bound = True
        link.start_keepalive()
        log.info("smpp: bound to %s:%d as %s (%s)", c.host, c.port, c.system_id, c.bind)
        return link

    def _on_request(self, link: _Link, pdu: p.Pdu) -> None:
        command = pdu.command_id
        if command == p.Command.ENQUIRE_LINK:
            link.respond(pdu, p.Command.ENQUIRE_LINK_RESP)
        elif command == p.Command.DELIVER_SM:
            try:
                sm = p.ShortMessage.decode(pdu.body)
            except p.PduError as exc:
                link.respond(pdu, p.Command.DELIVER_SM_RESP, status=exc.status)
                return
            link.respond(pdu, p.Command.DELIVER_SM_RESP, p.MessageIdResp("").encode())
            self._delivered(sm)
        elif command == p.Command.UNBIND:
            link.respond(pdu, p.Command.UNBIND_RESP)
            link.fail_all("smpp: the SMSC unbound")
        elif command == p.Command.ALERT_NOTIFICATION:
            pass  # has no response
        else:
            link.respond(pdu, p.Command.GENERIC_NACK, status=p.Status.ESME_RINVCMDID)

    def _delivered(self, sm: p.ShortMessage) -> None:
        try:
            receipt = p.parse_receipt(sm)
            if receipt is not None:
                self.receipts += 1
                if self.on_receipt is not None:
                    self._call(self.on_receipt(smpp_receipt(receipt.message_id, receipt.stat, receipt.err)))
            elif not sm.is_delivery_receipt and self.on_inbound is not None:
                self._call(self.on_inbound(InboundMessage("smpp", e164(sm.source_addr), p.decode_text(sm))))
        except Exception:  # a receiver's bug must not break the link
            log.exception("smpp: handling a deliver_sm failed")

    def _call(self, outcome: object) -> None:
        """Run a coroutine a callback returned (receivers may be async), keeping a reference."""
        if inspect.isawaitable(outcome):
            future = asyncio.ensure_future(outcome)
            self._callbacks.add(future)
            future.add_done_callback(self._callback_done)

    def _callback_done(self, future: asyncio.Future[object]) -> None:
        self._callbacks.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.error("smpp: a deliver_sm receiver failed", exc_info=future.exception())

    # ------------------------------------------------------------ sending

    def _next_reference(self) -> int:
        self._reference = (self._reference + 1) % 256
        return self._reference

    async def send(self, message: SmsMessage) -> SendResult:
        try:
            result = await self._send(message)
        except SmsError as exc:
            self.failed += 1
            self.last_error = str(exc)
            self.down = isinstance(exc, SmsRetryable)
            raise
        self.sent += 1
        self.down = False
        return result

    async def _send(self, message: SmsMessage) -> SendResult:
        c = self.config
        destination = message.to[1:] if message.to.startswith("+") else message.to
        if not destination.isdigit() or not 6 <= len(destination) <= 15:
            raise SmsPermanent("smpp: the destination is not an E.164 number")
        info = analyse(message.text)
        if info.segments == 0:
            raise SmsPermanent("smpp: empty message")
        parts = p.message_parts(info, self._next_reference())
        source_ton, source_npi, source = self._source
        registered = c.registered_delivery
        if registered is None:
            registered = 1 if c.bind == "transceiver" else 0
        ids: list[str] = []
        async with self._window:
            for index, part in enumerate(parts):
                body = p.ShortMessage(
                    destination_addr=destination,
                    short_message=part.short_message,
                    source_addr=source,
                    source_addr_ton=source_ton,
                    source_addr_npi=source_npi,
                    dest_addr_ton=c.dest_ton,
                    dest_addr_npi=c.dest_npi,
                    service_type=c.service_type,
                    esm_class=part.esm_class,
                    registered_delivery=registered,
                    data_coding=part.data_coding,
                ).encode()
                ids.append(await self._submit(body, index, len(parts)))
        return SendResult(
            self.name, ",".join(ids), info.segments, info.encoding, cost_of(c.price, info.segments)
        )

    async def _submit(self, body: bytes, index: int, total: int) -> str:
        """One submit_sm; parts after the first are retried here on transient errors."""
        attempt = 0
        while True:
            try:
                error = await self._submit_once(body)
            except SmsRetryable as exc:
                error = exc
            if isinstance(error, str):
                return error
            if index == 0 or not isinstance(error, SmsRetryable) or attempt >= self.config.part_retries:
                if index > 0:
                    raise SmsPermanent(
                        f"smpp: part {index + 1}/{total} failed after part 1 was accepted ({error}); "
                        "not resent whole to avoid repeating parts"
                    ) from error
                raise error
            attempt += 1
            await asyncio.sleep(error.retry_after or self.config.throttle_pause_s * attempt)

    async def _submit_once(self, body: bytes) -> str | SmsError:
        link = await self._bound_link()
        resp = await link.request(p.Command.SUBMIT_SM, body)
        status = resp.status
        if resp.command_id == p.Command.SUBMIT_SM_RESP and status == p.Status.ESME_ROK:
            return p.MessageIdResp.decode(resp.body).message_id
        if resp.command_id == p.Command.GENERIC_NACK:
            status = status or p.Status.ESME_RSYSERR
        name = p.status_name(status)
        if status == p.Status.ESME_RINVBNDSTS:  # the SMSC thinks we are not bound: start over
            await link.close(unbind=False)
        if status == p.Status.ESME_RTHROTTLED:
            return SmsRetryable(f"smpp: throttled ({name})", retry_after=self.config.throttle_pause_s)
        if p.is_transient(status):
            return SmsRetryable(f"smpp: submit_sm refused for now ({name})")
        return SmsPermanent(f"smpp: submit_sm refused ({name})")

    # ------------------------------------------------------------ lifecycle

    async def close(self) -> None:
        """Unbind and close the connection (idempotent)."""
        self._closing = True
        async with self._connecting:
            link, self._link = self._link, None
        if link is not None:
            await link.close()
        if self._callbacks:
            await asyncio.gather(*self._callbacks, return_exceptions=True)
        self._closing = False

    def health(self) -> dict[str, Any]:
        link = self._link
        bound = link is not None and link.bound and not link.closed
        return {
            "provider": self.name,
            "state": "down" if self.down else ("up" if bound else "idle"),
            "bound": bound,
            "host": f"{self.config.host}:{self.config.port}",
            "system_id": self.config.system_id,
            "in_flight": len(link.pending) if link is not None else 0,
            "sent": self.sent,
            "failed": self.failed,
            "receipts": self.receipts,
            "last_error": self.last_error,
        }
