"""SANDBOX SMS: messages go to an outbox stream in Redis (``python -m dialer outbox``)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from dialer.clock import Clock
from dialer.store import keys
from sms_gateway.base import SendResult, SmsMessage
from sms_gateway.encoding import analyse

SEND = """
-- ARGV: now, then (key, to, text, campaign, level) per message; one call for a whole batch
local out = {}
local n = (#ARGV - 1) / 5
for i = 0, n - 1 do
  local key, to, text, campaign, level = ARGV[2 + 5 * i], ARGV[3 + 5 * i], ARGV[4 + 5 * i], ARGV[5 + 5 * i], ARGV[6 + 5 * i]
  local existing = redis.call('HGET', KEYS[1], key)
  if existing then
    out[i + 1] = {existing, 1}
  else
    local id = redis.call('XADD', KEYS[2], '*', 'to', to, 'text', text, 'campaign', campaign,
                          'level', level, 'at', ARGV[1], 'key', key, 'sandbox', '1')
    redis.call('HSET', KEYS[1], key, id)
    out[i + 1] = {id, 0}
  end
end
return out
"""


class SandboxSms:
    """Writes to the outbox. Sends issued in the same event-loop tick share one pipeline."""

    name = "sandbox"

    def __init__(self, client: aioredis.Redis, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self._script = client.register_script(SEND)
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
        args: list[str] = [self.clock.now().isoformat()]
        for m in messages:
            args += [m.idempotency_key, m.to, m.text, m.campaign, m.level]
        replies = await self._script(keys=[keys.SMS_SENT, keys.OUTBOX], args=args)
        out: list[SendResult | BaseException] = []
        for m, (message_id, duplicate) in zip(messages, replies, strict=True):
            if not int(duplicate):
                self.sent += 1
            out.append(_result(m, str(message_id), bool(int(duplicate))))
        return out

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let every send of this tick join the batch
        while self._queue:  # sends that arrive while a batch is in flight go in the next one
            batch, self._queue = self._queue, []
            now = self.clock.now().isoformat()
            try:
                args: list[str] = [now]
                for m, _ in batch:
                    args += [m.idempotency_key, m.to, m.text, m.campaign, m.level]
                replies = await self._script(keys=[keys.SMS_SENT, keys.OUTBOX], args=args)
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), (message_id, duplicate) in zip(batch, replies, strict=True):
                if not fut.done():
                    fut.set_result((str(message_id), int(duplicate)))

    async def close(self) -> None:
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)

    def health(self) -> dict[str, Any]:
        return {"provider": "sandbox", "state": "up", "sandbox": True, "sent": self.sent}


def _result(message: SmsMessage, message_id: str, duplicate: bool) -> SendResult:
    info = analyse(message.text)
    return SendResult("sandbox", message_id, info.segments, info.encoding, 0.0, duplicate, sandbox=True)
