"""HTTP for the payment adapters: one ``aiohttp`` session each, mutual TLS when the provider
asks for it, replies read up to a bound, and retries where they are safe.

- **Safe to retry** (GET, PUT, DELETE: the same request twice has one effect): a timeout, a
  refused connection, HTTP 408/429/5xx are retried with exponential back-off and jitter,
  honouring ``Retry-After`` (capped), up to ``attempts`` times; then ``PaymentRetryable``.
- **Not safe** (POST: Asaas makes a second charge for a second POST): never retried here;
  the failure is surfaced as ``PaymentRetryable`` and the caller looks the charge up before
  it tries again.
- HTTP 401/403 → ``PaymentPermanent`` ("check the credentials"); other 4xx → ``PaymentPermanent``
  with the provider's own explanation, scrubbed of every secret the adapter knows.
"""

from __future__ import annotations

import asyncio
import json
import random
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from dialer.errors import PaymentPermanent, PaymentRetryable

MAX_REPLY = 2 * 1024 * 1024
MAX_DETAIL = 240
SAFE_METHODS = frozenset({"GET", "PUT", "DELETE", "HEAD"})


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None


def tls_context(cert: str = "", key: str = "", ca: str = "") -> ssl.SSLContext | None:
    """A client TLS context: the provider's CA (or the system's), our client certificate."""
    if not (cert or ca):
        return None
    context = ssl.create_default_context(cafile=ca or None)
    if cert:
        context.load_cert_chain(cert, key or None)
    return context


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class ProviderHttp:
    def __init__(
        self,
        provider: str,
        *,
        timeout: float = 15.0,
        attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 20.0,
        tls: ssl.SSLContext | None = None,
        secrets: tuple[str, ...] = (),
        max_connections: int = 32,
    ) -> None:
        self.provider = provider
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.tls = tls
        self.max_connections = max_connections
        self._secrets = tuple(s for s in secrets if s)
        self._session: aiohttp.ClientSession | None = None
        self.requests = 0
        self.retries = 0
        self.last_error = ""

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, connect=min(5.0, self.timeout)),
                connector=aiohttp.TCPConnector(limit=self.max_connections, ssl=self.tls or True),
            )
        return self._session

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = " ".join(text.split())
        return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"

    async def _once(
        self,
        method: str,
        url: str,
        *,
        json_body: Any,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str],
    ) -> Reply:
        self.requests += 1
        try:
            async with self._client().request(
                method, url, json=json_body, data=data, headers=headers
            ) as resp:
                length = resp.content_length
                if length is not None and length > MAX_REPLY:
                    raise PaymentRetryable(f"{self.provider}: reply of {length} bytes is over the limit")
                body = await resp.content.read(MAX_REPLY + 1)
                if len(body) > MAX_REPLY:
                    raise PaymentRetryable(f"{self.provider}: reply over {MAX_REPLY} bytes")
                return Reply(resp.status, resp.headers, body)
        except TimeoutError as exc:
            raise PaymentRetryable(f"{self.provider}: no reply within {self.timeout:g}s") from exc
        except aiohttp.ClientConnectorError as exc:
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            raise PaymentRetryable(f"{self.provider}: cannot connect ({self.scrub(reason)})") from exc
        except aiohttp.ClientError as exc:
            raise PaymentRetryable(f"{self.provider}: HTTP transport failed ({type(exc).__name__})") from exc

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201),
        missing_ok: bool = False,
    ) -> Reply:
        """The reply to ``method url`` (a status in ``ok``; 404 too with ``missing_ok``)."""
        safe = method in SAFE_METHODS
        delay = self.base_delay
        for attempt in range(1, self.attempts + 1):
            try:
                reply = await self._once(method, url, json_body=json_body, data=data, headers=headers or {})
            except PaymentRetryable as exc:
                self.last_error = str(exc)
                if not safe or attempt == self.attempts:
                    raise
                wait = delay
            else:
                if reply.status in ok or (missing_ok and reply.status == 404):
                    return reply
                error = self.error_for(reply)
                self.last_error = str(error)
                if isinstance(error, PaymentPermanent) or not safe or attempt == self.attempts:
                    raise error
                wait = min(self.max_delay, error.retry_after) if error.retry_after is not None else delay
            self.retries += 1
            await asyncio.sleep(wait * (0.5 + random.random() / 2))
            delay = min(self.max_delay, delay * 2)
        raise AssertionError("unreachable")  # pragma: no cover

    def error_for(self, reply: Reply) -> PaymentRetryable | PaymentPermanent:
        text = f"{self.provider}: HTTP {reply.status}"
        detail = _detail(reply.json())
        if detail:
            text += f": {self.scrub(detail)}"
        if reply.status in (408, 425, 429) or reply.status >= 500:
            return PaymentRetryable(text, retry_after=_retry_after(reply.headers.get("Retry-After")))
        if reply.status in (401, 403):
            return PaymentPermanent(f"{text} (authentication refused: check the credentials)")
        return PaymentPermanent(text)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            await asyncio.sleep(0)
        self._session = None


def _detail(doc: Any) -> str:
    """The provider's own explanation: the Pix API's problem+json (``title``, ``detail``,
    ``violacoes``) or Asaas's ``errors[].description``."""
    if not isinstance(doc, dict):
        return ""
    parts: list[str] = []
    for name in ("title", "detail"):
        if isinstance(doc.get(name), str):
            parts.append(doc[name])
    for item in doc.get("violacoes") or []:
        if isinstance(item, dict):
            parts.append(f"{item.get('propriedade', '')} {item.get('razao', '')}".strip())
    for item in doc.get("errors") or []:
        if isinstance(item, dict) and isinstance(item.get("description"), str):
            parts.append(item["description"])
    return "; ".join(p for p in parts if p)
