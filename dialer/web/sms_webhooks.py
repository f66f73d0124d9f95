"""Provider webhooks: delivery receipts and inbound replies (opt-out by SMS).

Routes are public on the network but each one authenticates its provider before it reads
anything: Twilio's ``X-Twilio-Signature`` (``TWILIO_AUTH_TOKEN``), Zenvia's shared header
(``ZENVIA_WEBHOOK_TOKEN``), the generic gateway's ``X-Regua-Signature`` HMAC
(``SMS_WEBHOOK_SECRET``). A provider whose secret is not configured gets 404.

- A receipt updates the attempt the message belongs to (``sms_delivered`` /
  ``sms_failed``) and its timeline.
- A reply with an opt-out keyword (SAIR, PARAR, PARE, CANCELAR, DESCADASTRAR, STOP; in
  the US also QUIT, END, REVOKE, OPT OUT, UNSUBSCRIBE, STOPALL, CANCEL) suppresses SMS to
  that number at once — and calls too when ``policy.sms_opt_out_stops_calls`` is on —
  and sends one confirmation, never more.
"""

from __future__ import annotations

import logging
import os

from aiohttp import web

from dialer.errors import InputError
from dialer.runtime import operations
from dialer.web.common import RouteTable, services
from sms_gateway import webhooks as wh

log = logging.getLogger("regua.sms")
routes = RouteTable()


async def _parse(request: web.Request, provider: str) -> wh.DeliveryReceipt | wh.InboundMessage:
    raw = await request.read()
    if len(raw) > 64 * 1024:
        raise web.HTTPRequestEntityTooLarge(max_size=64 * 1024, actual_size=len(raw))
    if provider == "twilio":
        token = os.environ.get("TWILIO_AUTH_TOKEN", "")
        if not token:
            raise web.HTTPNotFound()
        params = list((await request.post()).items())
        url = services(request).runtime.settings.service.public_url.rstrip("/") + request.path_qs
        if not wh.verify_twilio_signature(
            token, url, [(k, str(v)) for k, v in params], request.headers.get(wh.TWILIO_SIGNATURE_HEADER)
        ):
            raise web.HTTPForbidden(reason="bad signature")
        return wh.parse_twilio([(k, str(v)) for k, v in params])
    if provider == "zenvia":
        token = os.environ.get("ZENVIA_WEBHOOK_TOKEN", "")
        if not token:
            raise web.HTTPNotFound()
        if not wh.verify_shared_token(token, request.headers.get(wh.ZENVIA_TOKEN_HEADER)):
            raise web.HTTPForbidden(reason="bad token")
        return wh.parse_zenvia(raw)
    secret = os.environ.get("SMS_WEBHOOK_SECRET", "")
    if not secret:
        raise web.HTTPNotFound()
    if not wh.verify_regua_signature(secret, raw, request.headers.get(wh.REGUA_SIGNATURE_HEADER)):
        raise web.HTTPForbidden(reason="bad signature")
    return wh.parse_generic(raw, provider)


@routes.route("POST", "/webhooks/sms/{provider:twilio|zenvia|http}", "public")
async def sms_webhook(request: web.Request) -> web.Response:
    provider = request.match_info["provider"]
    try:
        item = await _parse(request, provider)
    except InputError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    if isinstance(item, wh.DeliveryReceipt):
        found = await services(request).store.record_receipt(
            item.provider, item.message_id, item.status, item.error, services(request).runtime.clock.now()
        )
        return web.json_response({"receipt": item.status, "matched": found})
    s = services(request)
    return web.json_response(
        await operations.sms_reply(s.store, s.sms, s.runtime.settings, s.runtime.clock.now(), item)
    )
