"""The HTTP side shared by the HTTP adapters (generic JSON, Twilio, Zenvia).

One ``aiohttp.ClientSession`` per adapter, created lazily inside the running loop and
closed by ``close()``. Transport failures are mapped here, at the boundary:

- no connection, a reset, a timeout  -> ``SmsRetryable``
- HTTP 429, 408 and 5xx              -> ``SmsRetryable`` (``retry_after`` from ``Retry-After``)
- HTTP 401/403                       -> ``SmsPermanent`` (authentication refused)
- any other 4xx, or a 3xx            -> ``SmsPermanent``

Messages name the provider and the status, never a URL's query, a header or a secret:
every secret the adapter knows is scrubbed from provider text before it is quoted.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from dialer.errors import SmsError, SmsPermanent, SmsRetryable
from sms_gateway.base import SendResult, SmsMessage
from sms_gateway.encoding import analyse

MAX_DETAIL = 200


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


def retry_after_seconds(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class SendCounters:
    """What an adapter's ``health()`` reports: messages sent and failed, the last error, and
    whether the provider looks down (its last failure was a transient one)."""

    name: str

    def __init__(self) -> None:
        self.sent = 0
        self.failed = 0
        self.last_error = ""
        self.down = False

    async def _counted(self, message: SmsMessage, submit: Awaitable[str], price: float) -> SendResult:
        """Await the provider's message id for ``message`` (``submit``) and count the outcome."""
        info = analyse(message.text)
        try:
            message_id = await submit
        except SmsError as exc:
            self.failed += 1
            self.last_error = str(exc)
            self.down = isinstance(exc, SmsRetryable)
            raise
        self.sent += 1
        self.down = False
        return SendResult(self.name, message_id, info.segments, info.encoding, cost_of(price, info.segments))

    def health(self) -> dict[str, Any]:
        return {
            "provider": self.name,
            "state": "down" if self.down else "up",
            "sent": self.sent,
            "failed": self.failed,
            "last_error": self.last_error,
        }


class HttpTransport:
    """POSTs for one adapter. ``secrets`` are scrubbed from every message it composes."""

    def __init__(
        self,
        provider: str,
        *,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_connections: int = 100,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.provider = provider
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.max_connections = max_connections
        self._secrets = tuple(s for s in secrets if s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, connect=self.connect_timeout),
                connector=aiohttp.TCPConnector(limit=self.max_connections),
                raise_for_status=False,
            )
        return self._session

    def scrub(self, text: str) -> str:
        """``text`` without any secret, cut to a readable length."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = " ".join(text.split())
        return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"

    async def post(
        self,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpReply:
        """POST and read the whole reply; transport failures become ``SmsRetryable``."""
        session = self._client()
        try:
            async with session.post(url, data=data if data is not None else body, headers=headers) as resp:
                payload = await resp.read()
                return HttpReply(resp.status, resp.headers, payload)
        except TimeoutError as exc:
            raise SmsRetryable(f"{self.provider}: no reply within {self.timeout:g}s") from exc
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise SmsRetryable(f"{self.provider}: cannot connect ({self.scrub(reason)})") from exc
        except aiohttp.ClientError as exc:
            raise SmsRetryable(f"{self.provider}: HTTP transport failed ({type(exc).__name__})") from exc

    def error_for(self, reply: HttpReply, detail: str = "", *, retryable: bool | None = None) -> SmsError:
        """The exception for a non-2xx reply. ``retryable`` overrides the status rule."""
        status = reply.status
        text = f"{self.provider}: HTTP {status}"
        if detail:
            text += f": {self.scrub(detail)}"
        if retryable is None:
            retryable = status in (408, 429) or status >= 500
        if retryable:
            return SmsRetryable(text, retry_after=retry_after_seconds(reply.headers.get("Retry-After")))
        if status in (401, 403):
            return SmsPermanent(f"{text} (authentication refused: check the credentials)")
        return SmsPermanent(text)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            # let the connector's transports finish closing (aiohttp's advice)
            await asyncio.sleep(0)
        self._session = None


def cost_of(price: float, segments: int) -> float:
    """Provider cost of a message from a per-segment price."""
    return round(price * segments, 6)
