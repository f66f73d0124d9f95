"""Payment webhooks: ``POST /webhooks/payments/{pix/<token>/pix | asaas | signed}``.

Each one is bounded in size before it is read (1 MiB, refused by Content-Length at once and
while streaming otherwise), authenticated by its provider *before* its body is parsed,
and only then read. Every refusal — forged, replayed, oversized, malformed, for a provider
that is not the configured one — is a clear 4xx and one audit line (what was wrong, the
client's address; never a secret or a body). An event for a charge Régua does not know is
answered 200 and audited: the provider must not retry it forever, and nothing is lost.
"""

from __future__ import annotations

import logging

from aiohttp import web

from dialer.runtime.settlement import Replayed
from dialer.web.common import RouteTable, services
from payments.base import MAX_WEBHOOK_BODY, WebhookRefused, WebhookRequest

log = logging.getLogger("regua.payments")
routes = RouteTable()
# bodies over MAX_WEBHOOK_BODY are refused (and audited) here; far larger ones are refused by
# the app's body limit before anything runs
ROUTE_LIMIT = 4 * MAX_WEBHOOK_BODY


def _peer(request: web.Request) -> str:
    return request.remote or ""


def _client_cert(request: web.Request) -> tuple[bool, str]:
    """Whether the request came over a TLS connection with a verified client certificate
    (Régua's own mTLS listener), and the certificate's subject."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return False, ""
    cert = ssl_object.getpeercert()
    if not cert:
        return False, ""
    subject = ", ".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)
    return True, subject[:200]


async def _read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it passes ``limit`` (a chunked body has no length)."""
    chunks: list[bytes] = []
    total = 0
    while chunk := await request.content.read(64 * 1024):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class _AuditBudget:
    """At most ``per_minute`` refusal lines a minute per provider and status: a flood of
    forged requests is counted (``suppressed``), not written line by line into the audit."""

    def __init__(self, per_minute: int = 60) -> None:
        self.per_minute = per_minute
        self._window: dict[tuple[str, int], tuple[int, int]] = {}
        self.suppressed = 0

    def allow(self, provider: str, status: int, minute: int) -> bool:
        key = (provider, status)
        start, count = self._window.get(key, (minute, 0))
        if start != minute:
            start, count = minute, 0
        self._window[key] = (start, count + 1)
        if count < self.per_minute:
            return True
        self.suppressed += 1
        return False


_BUDGET = _AuditBudget()


async def _refuse(request: web.Request, provider: str, exc: WebhookRefused) -> web.Response:
    s = services(request)
    log.warning(
        "payment webhook refused (%s, %d): %s from %s", provider, exc.status, exc.audit, _peer(request)
    )
    now = s.runtime.clock.now()
    if not _BUDGET.allow(provider, exc.status, int(now.timestamp() // 60)):
        return web.json_response({"error": exc.reason}, status=exc.status)
    await s.store.audit_global(
        now,
        f"webhook:{provider}",
        "payment_webhook_refused",
        {"status": exc.status, "reason": exc.audit, "peer": _peer(request), "bytes": request.content_length},
    )
    log.warning(
        "payment webhook refused (%s, %d): %s from %s", provider, exc.status, exc.audit, _peer(request)
    )
    return web.json_response({"error": exc.reason}, status=exc.status)


async def _handle(request: web.Request, provider: str, token: str = "") -> web.Response:
    s = services(request)
    payments = s.payments
    if payments is None or payments.provider.name != provider:
        return await _refuse(
            request, provider, WebhookRefused(404, f"no {provider} payment provider is configured here")
        )
    length = request.content_length
    body = (
        None
        if length is not None and length > MAX_WEBHOOK_BODY
        else await _read_bounded(request, MAX_WEBHOOK_BODY)
    )
    if body is None:
        return await _refuse(
            request, provider, WebhookRefused(413, f"the body is larger than {MAX_WEBHOOK_BODY:,} bytes")
        )
    verified, subject = _client_cert(request)
    incoming = WebhookRequest(request.headers, body, token, _peer(request), verified, subject)
    adapter = payments.provider
    replay: tuple[str, float] | None = None
    try:
        adapter.authenticate(incoming)
        replay_key = getattr(adapter, "replay_key", None)
        if replay_key is not None:
            replay = (replay_key(incoming), float(getattr(adapter, "tolerance", 300.0)))
        events = adapter.parse_webhook(incoming)
    except WebhookRefused as exc:
        return await _refuse(request, provider, exc)
    try:
        result = await payments.submit(events, s.runtime.clock.now(), replay=replay)
    except Replayed:
        return await _refuse(
            request,
            provider,
            WebhookRefused(409, "this delivery was received before (a replay)", "replayed signature"),
        )
    return web.json_response({"events": len(events), **result.as_dict()})


@routes.route("POST", "/webhooks/payments/pix/{token}/pix", "public", max_body=ROUTE_LIMIT)
async def pix_callback(request: web.Request) -> web.Response:
    """The PSP appends ``/pix`` to the webhook URL it was given."""
    return await _handle(request, "pix", request.match_info["token"])


@routes.route("POST", "/webhooks/payments/pix/{token}", "public", max_body=ROUTE_LIMIT)
async def pix_callback_bare(request: web.Request) -> web.Response:
    return await _handle(request, "pix", request.match_info["token"])


@routes.route("POST", "/webhooks/payments/asaas", "public", max_body=ROUTE_LIMIT)
async def asaas_webhook(request: web.Request) -> web.Response:
    return await _handle(request, "asaas")


@routes.route("POST", "/webhooks/payments/signed", "public", max_body=ROUTE_LIMIT)
async def signed_webhook(request: web.Request) -> web.Response:
    return await _handle(request, "signed")
