"""Twilio Programmable Messaging: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``.

Form-encoded ``To``, ``From`` (or ``MessagingServiceSid``), ``Body`` and, when set,
``StatusCallback``; HTTP basic auth ``AccountSid:AuthToken``. A 201 reply carries the
Message resource (``sid``, ``status``); an error carries ``code``, ``message``,
``more_info`` and ``status``.

Mapping: HTTP 429 (code 20429, never processed by Twilio, safe to retry), 5xx and
code 21611 (the sender's queue is full) are retryable; 401 (code 20003) and every
other 4xx (21211 invalid ``To``, 21610 the recipient replied STOP, 21408 region not
enabled, …) are permanent; 21610 is flagged ``opted_out`` so the number is suppressed for SMS. Twilio takes no idempotency key on this endpoint: the key
rides on the ``StatusCallback`` URL as ``regua_key`` so a receipt names its attempt.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from dialer.errors import SmsPermanent
from sms_gateway.base import SendResult, SmsMessage
from sms_gateway.http_transport import HttpReply, HttpTransport, SendCounters

TWILIO_API = "https://api.twilio.com"
RETRYABLE_CODES = frozenset({20429, 21611})
OPTED_OUT = 21610  # "Attempt to send to unsubscribed recipient"
FAILED_STATUSES = frozenset({"failed", "undelivered", "canceled"})


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    account_sid: str
    auth_token: str = field(repr=False)
    from_number: str = ""  # E.164 number, short code or alphanumeric sender id
    messaging_service_sid: str = ""  # instead of from_number
    status_callback: str = ""
    api_base: str = TWILIO_API
    price: float = 0.0  # per segment
    timeout: float = 10.0


def with_query(url: str, **params: str) -> str:
    """``url`` with ``params`` added to its query string."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


class TwilioSms(SendCounters):
    """``SmsGateway`` over Twilio's Messages API."""

    name = "twilio"

    def __init__(self, config: TwilioConfig) -> None:
        if not (config.from_number or config.messaging_service_sid):
            raise ValueError("twilio: a sender (from) or a messaging service is required")
        self.config = config
        self.url = f"{config.api_base.rstrip('/')}/2010-04-01/Accounts/{config.account_sid}/Messages.json"
        credentials = f"{config.account_sid}:{config.auth_token}".encode()
        self._headers = {
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            "Accept": "application/json",
        }
        self._http = HttpTransport(
            self.name, timeout=config.timeout, secrets=(config.auth_token, self._headers["Authorization"])
        )
        SendCounters.__init__(self)

    def form(self, message: SmsMessage) -> dict[str, str]:
        """The form fields Twilio gets for ``message``."""
        form = {"To": message.to, "Body": message.text}
        if self.config.messaging_service_sid:
            form["MessagingServiceSid"] = self.config.messaging_service_sid
        else:
            form["From"] = self.config.from_number
        if self.config.status_callback:
            form["StatusCallback"] = with_query(
                self.config.status_callback, regua_key=message.idempotency_key
            )
        return form

    async def send(self, message: SmsMessage) -> SendResult:
        return await self._counted(message, self._submit(message), self.config.price)

    async def _submit(self, message: SmsMessage) -> str:
        reply = await self._http.post(self.url, data=self.form(message), headers=self._headers)
        return self._accepted(reply)

    def _accepted(self, reply: HttpReply) -> str:
        body = reply.json()
        doc = body if isinstance(body, dict) else {}
        if 200 <= reply.status < 300:
            sid = doc.get("sid")
            if not isinstance(sid, str) or not sid:
                sid = "unknown"  # accepted all the same: resending could text the debtor twice
            status = str(doc.get("status") or "")
            if status in FAILED_STATUSES:
                code = doc.get("error_code") or ""
                raise SmsPermanent(
                    f"twilio: message {sid} {status} {code} {self._http.scrub(str(doc.get('error_message') or ''))}".strip()
                )
            return sid
        code = doc.get("code")
        detail = (
            f"{code} {doc.get('message') or ''}".strip()
            if code
            else reply.body[:200].decode("utf-8", "replace")
        )
        retryable = None
        if isinstance(code, int) and code in RETRYABLE_CODES:
            retryable = True
        error = self._http.error_for(reply, detail, retryable=retryable)
        if code == OPTED_OUT and isinstance(error, SmsPermanent):
            error.opted_out = True  # the recipient replied STOP to this sender at Twilio
        raise error

    async def close(self) -> None:
        await self._http.close()

    def health(self) -> dict[str, Any]:
        return {**super().health(), "account": self.config.account_sid}
