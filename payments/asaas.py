"""Asaas (``https://api.asaas.com/v3``): Pix or boleto charges, webhooks with a token.

- A charge is ``POST /payments`` with ``customer``, ``billingType`` (PIX or BOLETO),
  ``value``, ``dueDate``, ``description``, ``externalReference`` (our txid), ``fine``
  (percent) and ``interest`` (percent a month). A POST is not idempotent at Asaas, so every
  attempt first asks ``GET /payments?externalReference=<txid>``: a retry, a reload or a
  worker killed after its POST finds the charge it made instead of making a second. A POST
  that got no answer (a dropped connection, a timeout) is followed by that lookup at once:
  the payment Asaas made is returned when it is there.
- The customer is found by CPF/CNPJ (``GET /customers?cpfCnpj=``) or made once, with
  ``notificationDisabled`` — Asaas would otherwise e-mail and text the debtor on its own,
  outside Régua's hours, consent and disclosure rules.
- The Pix code is ``GET /payments/{id}/pixQrCode`` (``payload``), the boleto's digitable
  line ``GET /payments/{id}/identificationField``.
- Webhooks carry the token configured at Asaas in the ``asaas-access-token`` header;
  ``PAYMENT_RECEIVED`` and ``PAYMENT_CONFIRMED`` of one payment are the same money (counted
  once), ``PAYMENT_REFUNDED`` gives it back, ``PAYMENT_OVERDUE`` and the rest move no money.

URL ``asaas://`` with ``token_env`` (the API key's variable, required), ``webhook_token_env``
(required), ``api`` (default production; ``https://api-sandbox.asaas.com/v3`` for Asaas's
sandbox), ``billing`` = ``auto`` (the account's payment method: boleto → BOLETO, else PIX),
``PIX`` or ``BOLETO``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from dialer.domain import PaymentMethod
from dialer.errors import PaymentPermanent, PaymentRetryable
from dialer.rules.charges import Charge, ChargeRequest, ChargeStatus, EventKind, PaymentEvent
from payments.base import WebhookRefused, WebhookRequest
from payments.http import ProviderHttp

ASAAS_API = "https://api.asaas.com/v3"
BRT = ZoneInfo("America/Sao_Paulo")
PAID_EVENTS = frozenset({"PAYMENT_RECEIVED", "PAYMENT_CONFIRMED", "PAYMENT_RECEIVED_IN_CASH"})
REFUND_EVENTS = frozenset({"PAYMENT_REFUNDED"})
PAID_STATUSES = frozenset({"RECEIVED", "CONFIRMED", "RECEIVED_IN_CASH", "REFUNDED", "REFUND_REQUESTED"})
MAX_PAGES = 500


def _when(text: object, fallback: datetime | None = None) -> datetime:
    """Asaas's times are Brasília wall time ("2024-06-12 16:45:03") or dates."""
    if isinstance(text, str) and 8 <= len(text) <= 32:
        try:
            at = datetime.fromisoformat(text.replace(" ", "T"))
        except ValueError:
            pass
        else:
            return at if at.tzinfo else at.replace(tzinfo=BRT)
    if fallback is not None:
        return fallback
    raise ValueError("a date is missing or malformed")


def _value(doc: dict[str, Any]) -> Decimal:
    try:
        value = Decimal(str(doc.get("value")))
    except InvalidOperation:
        raise ValueError("payment.value is not a number") from None
    if not value.is_finite() or value < 0 or value > Decimal("1000000000"):
        raise ValueError("payment.value is out of range")
    return value.quantize(Decimal("0.01"))


def events_from_payment(pay: Any, event: str, at: datetime | None = None) -> list[PaymentEvent]:
    """The money an Asaas ``payment`` object (in an event ``event``) moved."""
    if event not in PAID_EVENTS and event not in REFUND_EVENTS:
        return []  # PAYMENT_CREATED, _OVERDUE, _UPDATED…: no money, and no payment date to read
    if not isinstance(pay, dict) or not isinstance(pay.get("id"), str) or not pay["id"]:
        raise ValueError("payment.id is missing")
    pay_id = pay["id"][:64]
    ref = pay.get("externalReference")
    txid: str = ref if isinstance(ref, str) else ""
    txid = txid if txid.isascii() and txid.isalnum() and len(txid) <= 35 else ""
    method = str(pay.get("billingType") or "").lower()[:16]
    paid_at = _when(pay.get("clientPaymentDate") or pay.get("paymentDate") or pay.get("confirmedDate"), at)
    value = _value(pay)
    out = [
        PaymentEvent(
            f"asaas:{pay_id}:paid",
            EventKind.PAID,
            "asaas",
            txid,
            value,
            paid_at,
            method=method,
            reference=pay_id,
        )
    ]
    if event in REFUND_EVENTS:
        out.append(
            PaymentEvent(
                f"asaas:{pay_id}:refund",
                EventKind.REFUND,
                "asaas",
                txid,
                value,
                at or paid_at,
                method=method,
                reference=pay_id,
            )
        )
    return out


class AsaasProvider:
    name = "asaas"
    sandbox = False
    needs_document = True
    makes_charges = True
    can_list = True

    def __init__(
        self,
        *,
        api_key: str,
        webhook_token: str,
        http: ProviderHttp,
        api: str = ASAAS_API,
        billing: str = "auto",
    ) -> None:
        self.api = api.rstrip("/")
        self._customers: dict[str, str] = {}  # CPF/CNPJ -> customer id (this process)
        self._locks: dict[str, asyncio.Lock] = {}
        self.api_key = api_key
        self.webhook_token = webhook_token
        self.http = http
        self.billing = billing

    def _headers(self) -> dict[str, str]:
        return {"access_token": self.api_key, "User-Agent": "regua"}

    async def _get(self, path: str, *, missing_ok: bool = False) -> Any:
        reply = await self.http.request(
            "GET", self.api + path, headers=self._headers(), missing_ok=missing_ok
        )
        return None if reply.status == 404 else reply.json()

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        reply = await self.http.request("POST", self.api + path, json_body=body, headers=self._headers())
        doc = reply.json()
        if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
            raise PaymentRetryable(f"asaas: POST {path} answered without an id")
        return doc

    async def _by_reference(self, txid: str) -> dict[str, Any] | None:
        doc = await self._get(f"/payments?{urlencode({'externalReference': txid})}")
        items = doc.get("data") if isinstance(doc, dict) else None
        for item in items or []:
            if isinstance(item, dict) and not item.get("deleted"):
                return item
        return None

    async def _customer(self, request: ChargeRequest) -> str:
        """The Asaas customer of this CPF/CNPJ, made once: two debts of one debtor made at
        the same moment wait for each other (one lock per document) instead of making two."""
        if not request.document:
            raise PaymentPermanent(
                f"asaas: account {request.account_id} has no CPF/CNPJ: Asaas needs the customer's "
                "(add a document column to the campaign file)"
            )
        if request.document in self._customers:
            return self._customers[request.document]
        lock = self._locks.setdefault(request.document, asyncio.Lock())
        async with lock:
            if request.document not in self._customers:
                if len(self._customers) >= 10_000:  # a bounded memory, not a directory of CPFs
                    self._customers.clear()
                self._customers[request.document] = await self._find_or_make_customer(request)
        self._locks.pop(request.document, None)
        return self._customers[request.document]

    async def _find_or_make_customer(self, request: ChargeRequest) -> str:
        assert request.document
        known = await self._customer_by_document(request.document)
        if known is not None:
            return known
        try:
            made = await self._post(
                "/customers",
                {
                    "name": request.name[:100],
                    "cpfCnpj": request.document,
                    "externalReference": request.account_id,
                    "notificationDisabled": True,
                },
            )
        except PaymentRetryable:
            found = await self._customer_by_document(request.document)  # made, then no answer
            if found is None:
                raise
            return found
        return str(made["id"])

    async def _customer_by_document(self, document: str) -> str | None:
        doc = await self._get(f"/customers?{urlencode({'cpfCnpj': document})}")
        for item in (doc.get("data") if isinstance(doc, dict) else None) or []:
            if isinstance(item, dict) and isinstance(item.get("id"), str) and not item.get("deleted"):
                return str(item["id"])
        return None

    def billing_type(self, request: ChargeRequest) -> str:
        if self.billing in ("PIX", "BOLETO"):
            return self.billing
        return "BOLETO" if request.method is PaymentMethod.BOLETO else "PIX"

    async def create_charge(self, request: ChargeRequest) -> Charge:
        found = await self._by_reference(request.txid)
        if found is None:
            customer = await self._customer(request)
            body: dict[str, Any] = {
                "customer": customer,
                "billingType": self.billing_type(request),
                "value": float(request.amount),
                "dueDate": request.due_date.isoformat(),
                "description": request.description[:500],
                "externalReference": request.txid,
            }
            if request.fine_percent > 0:
                body["fine"] = {"value": float(request.fine_percent), "type": "PERCENTAGE"}
            if request.interest_percent_month > 0:
                body["interest"] = {"value": float(request.interest_percent_month)}
            try:
                found = await self._post("/payments", body)
            except PaymentRetryable:
                # the POST may have made the payment before the answer was lost: look first,
                # so the caller's retry cannot make a second
                found = await self._by_reference(request.txid)
                if found is None:
                    raise
        return await self._charge(found, request.txid, codes=True)

    async def fetch_charge(self, txid: str) -> Charge | None:
        found = await self._by_reference(txid)
        return None if found is None else await self._charge(found, txid, codes=False)

    async def _charge(self, pay: dict[str, Any], txid: str, *, codes: bool) -> Charge:
        pay_id = str(pay.get("id"))
        status = str(pay.get("status") or "")
        copy_paste = boleto = ""
        if codes and status not in PAID_STATUSES:
            qr = await self._get(f"/payments/{quote(pay_id)}/pixQrCode", missing_ok=True)
            if isinstance(qr, dict) and isinstance(qr.get("payload"), str):
                copy_paste = qr["payload"]
            if pay.get("billingType") == "BOLETO":
                line = await self._get(f"/payments/{quote(pay_id)}/identificationField", missing_ok=True)
                if isinstance(line, dict) and isinstance(line.get("identificationField"), str):
                    boleto = "".join(c for c in line["identificationField"] if c.isdigit())
        try:
            amount = _value(pay)
            due = date.fromisoformat(str(pay.get("dueDate")))
        except ValueError as exc:
            raise PaymentRetryable(f"asaas: the payment object is malformed ({exc})") from None
        event = (
            "PAYMENT_REFUNDED"
            if status == "REFUNDED"
            else ("PAYMENT_RECEIVED" if status in PAID_STATUSES else "")
        )
        try:
            payments = tuple(events_from_payment(pay, event)) if event else ()
        except ValueError as exc:
            raise PaymentRetryable(f"asaas: the payment object is malformed ({exc})") from None
        state = ChargeStatus.PAID if status in PAID_STATUSES else ChargeStatus.ACTIVE
        if pay.get("deleted"):
            state = ChargeStatus.REMOVED
        return Charge(txid, self.name, state, amount, due, pay_id, copy_paste, "", boleto, payments)

    async def received_since(self, start: datetime, end: datetime) -> list[PaymentEvent]:
        out: list[PaymentEvent] = []
        for status in ("RECEIVED", "CONFIRMED", "REFUNDED"):
            offset = 0
            for _ in range(MAX_PAGES):
                query = urlencode(
                    {
                        "status": status,
                        "paymentDate[ge]": start.astimezone(BRT).date().isoformat(),
                        "paymentDate[le]": end.astimezone(BRT).date().isoformat(),
                        "offset": offset,
                        "limit": 100,
                    }
                )
                doc = await self._get(f"/payments?{query}")
                if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
                    raise PaymentRetryable("asaas: GET /payments answered without a data list")
                for pay in doc["data"]:
                    event = "PAYMENT_REFUNDED" if status == "REFUNDED" else "PAYMENT_RECEIVED"
                    try:
                        out += events_from_payment(pay, event)
                    except ValueError as exc:
                        raise PaymentRetryable(f"asaas: GET /payments: {exc}") from None
                if not doc.get("hasMore"):
                    break
                offset += len(doc["data"]) or 100
        return out

    def authenticate(self, request: WebhookRequest) -> None:
        token = request.headers.get("asaas-access-token", "")
        if not token:
            raise WebhookRefused(401, "the asaas-access-token header is missing", "asaas webhook: no token")
        if not hmac.compare_digest(token.encode(), self.webhook_token.encode()):
            raise WebhookRefused(401, "the asaas-access-token is wrong", "asaas webhook: wrong token")

    def parse_webhook(self, request: WebhookRequest) -> list[PaymentEvent]:
        try:
            doc = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookRefused(400, "the body is not JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("event"), str):
            raise WebhookRefused(400, "the body must be an Asaas event with an event field")
        event = doc["event"]
        if not event.startswith("PAYMENT_"):
            return []
        try:
            at = _when(doc.get("dateCreated"), None) if doc.get("dateCreated") else None
            return events_from_payment(doc.get("payment"), event, at)
        except ValueError as exc:
            raise WebhookRefused(400, str(exc)) from None

    def health(self) -> dict[str, object]:
        return {
            "provider": self.name,
            "requests": self.http.requests,
            "retries": self.http.retries,
            "last_error": self.http.last_error,
        }

    async def close(self) -> None:
        await self.http.close()
