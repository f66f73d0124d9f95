"""SANDBOX SMS: messages go to an outbox stream in Redis (``python -m dialer outbox``)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from dialer import keys
from dialer.clock import Clock
from sms_gateway.base import SendResult, SmsMessage

SEND = """
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then return {existing, 1} end
local id = redis.call('XADD', KEYS[2], '*', 'to', ARGV[2], 'text', ARGV[3], 'campaign', ARGV[4],
                      'level', ARGV[5], 'at', ARGV[6], 'key', ARGV[1], 'sandbox', '1')
redis.call('HSET', KEYS[1], ARGV[1], id)
return {id, 0}
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
        from sms_gateway.encoding import analyse

        info = analyse(message.text)
        future: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()
        self._queue.append((message, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        message_id, duplicate = await future
        if not duplicate:
            self.sent += 1
        return SendResult(
            "sandbox", str(message_id), info.segments, info.encoding, 0.0, bool(duplicate), sandbox=True
        )

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let every send of this tick join the batch
        while self._queue:  # sends that arrive while a batch is in flight go in the next one
            batch, self._queue = self._queue, []
            now = self.clock.now().isoformat()
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    pipe.scripts.add(self._script)  # type: ignore[arg-type]
                    for m, _ in batch:
                        pipe.evalsha(
                            self._script.sha,
                            2,
                            keys.SMS_SENT,
                            keys.OUTBOX,
                            m.idempotency_key,
                            m.to,
                            m.text,
                            m.campaign,
                            m.level,
                            now,
                        )
                    replies = await pipe.execute()
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
