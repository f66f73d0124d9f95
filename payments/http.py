"""HTTP for the payment adapters: one ``aiohttp`` session each, mutual TLS when the provider
asks for it, replies read up to a bound, and retries where they are safe.

- **Safe to retry** (GET, PUT, DELETE: the same request twice has one effect; a POST the
  caller marks ``retry=True``, like an OAuth token request): a timeout, a refused or dropped
  connection, HTTP 408/429/5xx are retried with exponential back-off and jitter, up to
  ``attempts`` times; then ``PaymentRetryable``. A ``Retry-After`` is waited out in full; one
  longer than ``max_delay`` is not waited here: the error carries it (``retry_after``).
- **Not safe** (POST: Asaas makes a second charge for a second POST): never retried here;
  the failure is surfaced as ``PaymentRetryable`` and the caller looks the charge up before
  it tries again.
- HTTP 401/403 → ``PaymentPermanent`` ("check the credentials"); other 4xx → ``PaymentPermanent``
  with the provider's own explanation, scrubbed of every secret the adapter knows. Both are
  ``HttpRefused`` (``.status``: the HTTP status), retryable statuses ``HttpBusy``.
- A server certificate that does not verify is ``PaymentPermanent`` (check ``ca``); a TLS
  connection the server closes, with no client certificate configured, says that the
  provider may require one.
- Replies are read whole (a body arrives in many chunks) up to ``MAX_REPLY``.
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
MAX_DETAIL = 400
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


class HttpRefused(PaymentPermanent):
    """The provider answered with a refusal (4xx); ``status`` is the HTTP status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class HttpBusy(PaymentRetryable):
    """The provider answered 408/425/429/5xx; ``status`` is the HTTP status."""

    def __init__(self, message: str, *, status: int, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.status = status


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind an aiohttp error, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError) and not isinstance(current, aiohttp.ClientError):
            return current  # (aiohttp's certificate error is an SSLError itself: look inside)
        inner = getattr(current, "os_error", None) or getattr(current, "certificate_error", None)
        current = inner if isinstance(inner, BaseException) else (current.__cause__ or current.__context__)
    return None


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
        client_cert: bool = False,
    ) -> None:
        self.provider = provider
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.tls = tls
        self.max_connections = max_connections
        self.client_cert = client_cert  # our certificate is on the TLS context (mutual TLS)
        self._secrets = tuple(s for s in secrets if s)
        self._extra: tuple[str, ...] = ()
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

    def add_secret(self, secret: str, *, lasting: bool = False, keep: int = 8) -> None:
        """One more value no error may quote: for good (``lasting``: a credential), or among
        the newest ``keep`` of the passing ones (OAuth tokens)."""
        if not secret or secret in self._secrets or secret in self._extra:
            return
        if lasting:
            self._secrets = (*self._secrets, secret)
        else:
            self._extra = (*self._extra, secret)[-keep:]

    def scrub(self, text: str) -> str:
        for secret in (*self._secrets, *self._extra):
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
                chunks: list[bytes] = []
                size = 0
                while chunk := await resp.content.read(64 * 1024):  # read() gives what has come
                    size += len(chunk)
                    if size > MAX_REPLY:
                        raise PaymentRetryable(f"{self.provider}: reply over {MAX_REPLY} bytes")
                    chunks.append(chunk)
                return Reply(resp.status, resp.headers, b"".join(chunks))
        except TimeoutError as exc:
            raise PaymentRetryable(f"{self.provider}: no reply within {self.timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            raise self._transport_error(exc, url) from exc

    def _transport_error(self, exc: aiohttp.ClientError, url: str) -> PaymentRetryable | PaymentPermanent:
        tls = url.startswith("https:")
        bad = _ssl_error(exc)
        if isinstance(bad, ssl.SSLCertVerificationError):
            reason = getattr(bad, "verify_message", "") or bad.reason or "verification failed"
            return PaymentPermanent(
                f"{self.provider}: the server's TLS certificate is not trusted ({self.scrub(str(reason))}): "
                "check the provider's CA (option ca)"
            )
        if bad is not None:
            hint = (
                "; the provider may require a client certificate (mutual TLS), and none is configured "
                "(options cert and key)"
                if not self.client_cert
                else "; check that the provider accepts our client certificate"
            )
            return PaymentRetryable(
                f"{self.provider}: TLS failed ({self.scrub(bad.reason or str(bad))}){hint}"
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = exc.os_error.strerror or type(exc.os_error).__name__
            return PaymentRetryable(f"{self.provider}: cannot connect ({self.scrub(reason)})")
        if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            what = (
                "the connection was closed before an answer"
                if isinstance(exc, aiohttp.ServerDisconnectedError)
                else f"the connection failed ({self.scrub(exc.strerror or type(exc).__name__)})"
            )
            hint = ""
            if tls and not self.client_cert:
                hint = (
                    "; if the provider requires a client certificate (mutual TLS), none is "
                    "configured (options cert and key)"
                )
            return PaymentRetryable(f"{self.provider}: {what}{hint}")
        return PaymentRetryable(f"{self.provider}: HTTP transport failed ({type(exc).__name__})")

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
        retry: bool | None = None,
    ) -> Reply:
        """The reply to ``method url`` (a status in ``ok``; 404 too with ``missing_ok``).
        ``retry`` overrides whether the method is safe to send again."""
        safe = method in SAFE_METHODS if retry is None else retry
        delay = self.base_delay
        for attempt in range(1, self.attempts + 1):
            try:
                reply = await self._once(method, url, json_body=json_body, data=data, headers=headers or {})
            except PaymentRetryable as exc:
                self.last_error = str(exc)
                if not safe or attempt == self.attempts:
                    raise
                wait = delay * (0.5 + random.random() / 2)
            else:
                if reply.status in ok or (missing_ok and reply.status == 404):
                    return reply
                error = self.error_for(reply)
                self.last_error = str(error)
                if isinstance(error, PaymentPermanent) or not safe or attempt == self.attempts:
                    raise error
                if error.retry_after is not None and error.retry_after > self.max_delay:
                    raise error  # longer than we wait here: the caller schedules it
                # Retry-After is the least the provider asked for: waited out in full
                wait = (
                    error.retry_after + delay * random.random() / 4
                    if error.retry_after is not None
                    else delay * (0.5 + random.random() / 2)
                )
            self.retries += 1
            await asyncio.sleep(wait)
            delay = min(self.max_delay, delay * 2)
        raise AssertionError("unreachable")  # pragma: no cover

    def error_for(self, reply: Reply) -> HttpBusy | HttpRefused:
        text = f"{self.provider}: HTTP {reply.status}"
        detail = _detail(reply.json())
        if detail:
            text += f": {self.scrub(detail)}"
        if reply.status in (408, 425, 429) or reply.status >= 500:
            return HttpBusy(
                text, status=reply.status, retry_after=_retry_after(reply.headers.get("Retry-After"))
            )
        if reply.status in (401, 403):
            return HttpRefused(f"{text} (authentication refused: check the credentials)", status=reply.status)
        return HttpRefused(text, status=reply.status)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            await asyncio.sleep(0)
        self._session = None


def _detail(doc: Any) -> str:
    """The provider's own explanation: the Pix API's problem+json (``title``, ``detail``,
    ``violacoes``), Asaas's ``errors[].description``, an OAuth2 error (``error``,
    ``error_description``)."""
    if not isinstance(doc, dict):
        return ""
    parts: list[str] = []
    if isinstance(doc.get("title"), str):
        parts.append(doc["title"])
    violacoes = doc.get("violacoes")
    for item in violacoes if isinstance(violacoes, list) else []:  # the specific reasons first
        if isinstance(item, dict):
            parts.append(f"{item.get('propriedade', '')} {item.get('razao', '')}".strip())
    if isinstance(doc.get("detail"), str):
        parts.append(doc["detail"])
    errors = doc.get("errors")
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, dict) and isinstance(item.get("description"), str):
            parts.append(item["description"])
    for name in ("error", "error_description"):  # RFC 6749 5.2
        if isinstance(doc.get(name), str):
            parts.append(doc[name])
    return "; ".join(p for p in parts if p)
