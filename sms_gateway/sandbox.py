"""SANDBOX SMS: messages go to the store's outbox (``python -m dialer outbox``), never out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from dialer.clock import Clock
from sms_gateway.base import Outbox, SendResult, SmsMessage
from sms_gateway.encoding import analyse


class SandboxSms:
    """Writes to the outbox. Sends issued in the same event-loop tick share one pipeline."""

    name = "sandbox"

    def __init__(self, outbox: Outbox, clock: Clock) -> None:
        self.outbox = outbox
        self.clock = clock
        self._queue: list[tuple[SmsMessage, asyncio.Future[tuple[str, int]]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self.sent = 0

    async def send(self, message: SmsMessage) -> SendResult:
        future: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        self._queue.append((message, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        message_id, duplicate = await future
        if not duplicate:
            self.sent += 1
        return _result(message, message_id, bool(duplicate))

    async def send_many(self, messages: Sequence[SmsMessage]) -> list[SendResult | BaseException]:
        """A whole batch in one script call (the worker's path)."""
        if not messages:
            return []
        replies = await self.outbox.outbox_send(self.clock.now(), [_row(m) for m in messages])
        out: list[SendResult | BaseException] = []
        for m, (message_id, duplicate) in zip(messages, replies, strict=True):
            if not duplicate:
                self.sent += 1
            out.append(_result(m, message_id, duplicate))
        return out

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let every send of this tick join the batch
        while self._queue:  # sends that arrive while a batch is in flight go in the next one
            batch, self._queue = self._queue, []
            try:
                replies = await self.outbox.outbox_send(self.clock.now(), [_row(m) for m, _ in batch])
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), (message_id, duplicate) in zip(batch, replies, strict=True):
                if not fut.done():
                    fut.set_result((message_id, int(duplicate)))

    async def close(self) -> None:
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        return {"provider": "sandbox", "state": "up", "sandbox": True, "sent": self.sent}


def _result(message: SmsMessage, message_id: str, duplicate: bool) -> SendResult:
    info = analyse(message.text)
    return SendResult("sandbox", message_id, info.segments, info.encoding, 0.0, duplicate, sandbox=True)


def _row(m: SmsMessage) -> tuple[str, str, str, str, str]:
    return m.idempotency_key, m.to, m.text, m.campaign, m.level
