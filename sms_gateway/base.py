"""The ``SmsGateway`` protocol and its values, and what gateways need of the store.

Gateways never touch Redis themselves: the resilient wrapper keeps its idempotency
ledger and shared rate buckets through an ``SmsLedger``, the sandbox writes to an
``Outbox`` — both are the store's (``dialer.store.Store`` has these methods).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
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


class SmsLedger(Protocol):
    """Idempotency and shared rates, kept where every worker process sees them."""

    async def sms_claim(self, key: str, marker: str) -> str | None:
        """Take ``key`` with ``marker``; the value already there when someone had it."""
        ...

    async def sms_record(self, key: str, marker: str, value: str) -> None: ...

    async def sms_release(self, key: str, marker: str) -> None: ...

    async def rate_reserve(self, lane: str, provider: str, rate: float, burst: float, now_ms: int) -> int:
        """Reserve one token of the shared bucket; how many ms to wait before sending."""
        ...


class Outbox(Protocol):
    """SANDBOX: where the sandbox gateway 'sends' (``python -m dialer outbox`` reads it)."""

    async def outbox_send(
        self, now: datetime, messages: Sequence[tuple[str, str, str, str, str]]
    ) -> list[tuple[str, bool]]:
        """(key, to, text, campaign, level) per message; (id, duplicate) per message."""
        ...
