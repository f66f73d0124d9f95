"""Zenvia API v2, SMS channel: ``POST https://api.zenvia.com/v2/channels/sms/messages``.

Header ``X-API-TOKEN``; JSON body ``{"from": <sender alias>, "to": <country code +
number, digits only>, "contents": [{"type": "text", "text": …}]}``; the 200 reply is the
message object with its ``id``. Errors carry an error object ``{"code", "message"}``
(``description`` in some versions) and the HTTP status: 400 VALIDATION_ERROR, 401
AUTHENTICATION_ERROR, 404 NOT_FOUND, 409 DUPLICATED are final; 500 INTERNAL_ERROR is
worth a retry, as are 429 and the other 5xx. Delivery is reported asynchronously to a
subscribed webhook (MESSAGE_STATUS events, see ``webhooks.parse_zenvia``). Zenvia's v2
message has no client reference field, so the idempotency key stays on our side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dialer.errors import SmsPermanent
from sms_gateway.base import SendResult, SmsMessage
from sms_gateway.http_transport import HttpReply, HttpTransport, SendCounters

ZENVIA_API = "https://api.zenvia.com"
RETRYABLE_CODES = frozenset({"INTERNAL_ERROR"})


@dataclass(frozen=True, slots=True)
class ZenviaConfig:
    sender: str  # the SMS account alias connected on the Zenvia platform
    token: str = field(repr=False)
    api_base: str = ZENVIA_API
    price: float = 0.0  # per segment
    timeout: float = 10.0


def zenvia_recipient(e164: str) -> str:
    """Zenvia wants the full number with country code and no ``+``."""
    digits = e164[1:] if e164.startswith("+") else e164
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise SmsPermanent("zenvia: the recipient is not an E.164 number")
    return digits


class ZenviaSms(SendCounters):
    """``SmsGateway`` over Zenvia's v2 SMS channel."""

    name = "zenvia"

    def __init__(self, config: ZenviaConfig) -> None:
        self.config = config
        self.url = f"{config.api_base.rstrip('/')}/v2/channels/sms/messages"
        self._http = HttpTransport(self.name, timeout=config.timeout, secrets=(config.token,))
        self._headers = {
            "X-API-TOKEN": config.token,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        SendCounters.__init__(self)

    def body(self, message: SmsMessage) -> dict[str, Any]:
        """The JSON document Zenvia gets for ``message``."""
        return {
            "from": self.config.sender,
            "to": zenvia_recipient(message.to),
            "contents": [{"type": "text", "text": message.text}],
        }

    async def send(self, message: SmsMessage) -> SendResult:
        return await self._counted(message, self._submit(message), self.config.price)

    async def _submit(self, message: SmsMessage) -> str:
        payload = json.dumps(self.body(message), ensure_ascii=False).encode()
        reply = await self._http.post(self.url, body=payload, headers=self._headers)
        return self._accepted(reply)

    def _accepted(self, reply: HttpReply) -> str:
        body = reply.json()
        doc = body if isinstance(body, dict) else {}
        if 200 <= reply.status < 300:
            message_id = doc.get("id")
            # accepted all the same: resending could text the debtor twice
            return str(message_id) if message_id else "unknown"
        code = str(doc.get("code") or "")
        words = doc.get("message") or doc.get("description") or ""
        details = doc.get("details")
        if isinstance(details, list) and details and isinstance(details[0], dict):
            first = details[0]
            words = f"{words} ({first.get('path') or ''} {first.get('message') or ''})".strip()
        detail = f"{code} {words}".strip() or reply.body[:200].decode("utf-8", "replace")
        retryable = True if code in RETRYABLE_CODES else None
        raise self._http.error_for(reply, detail, retryable=retryable)

    async def close(self) -> None:
        await self._http.close()
