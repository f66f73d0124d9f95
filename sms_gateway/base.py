"""The ``SmsGateway`` protocol and its values."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class SmsMessage:
    to: str  # E.164
    text: str
    idempotency_key: str  # the attempt id: the same key never sends twice
    campaign: str = ""
    level: str = "limited"  # disclosure level of the rendered text


@dataclass(frozen=True, slots=True)
class SendResult:
    provider: str
    message_id: str
    segments: int = 1
    encoding: str = "GSM-7"
    cost: float = 0.0
    duplicate: bool = False  # the key was already sent: nothing new went out
    sandbox: bool = False


class SmsGateway(Protocol):
    name: str

    async def send(self, message: SmsMessage) -> SendResult:
        """Send once per idempotency key. Raises SmsRetryable or SmsPermanent."""
        ...

    async def close(self) -> None: ...

    def health(self) -> dict[str, Any]: ...


async def send_all(gateway: SmsGateway, messages: Sequence[SmsMessage]) -> list[SendResult | BaseException]:
    """Send a batch; per message its result or the exception it raised (SmsRetryable, ...).

    A gateway with a native batch call (``send_many``, e.g. the sandbox outbox: one Redis
    script for the batch) uses it; any other sends them concurrently.
    """
    many = getattr(gateway, "send_many", None)
    if many is not None:
        return list(await many(messages))
    return list(await asyncio.gather(*(gateway.send(m) for m in messages), return_exceptions=True))
