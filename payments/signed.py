"""A generic signed webhook, for companies whose billing system already knows the payment.

Régua makes no charge here (the payment page shows the static Pix code, or the boleto line
the campaign file carried); the company's system posts what it received:

    POST /webhooks/payments/signed
    Regua-Signature: t=1764590400,v1=<hex HMAC-SHA256 of "1764590400.<raw body>">
    {"id": "evt-8812", "type": "payment", "account_id": "A-1001", "amount": "150.00",
     "paid_at": "2026-12-01T14:03:00-03:00", "method": "pix"}

``type`` is ``payment`` or ``refund``; ``txid`` may name a charge instead of
``account_id``; ``{"events": [...]}`` carries up to 1,000 at once. The signature is checked
over the raw bytes before anything is parsed, in constant time, against the secret (and a
second one while a secret is being rotated: ``previous_secret_env``); a timestamp more than
``tolerance`` seconds (default 300) from our clock is refused, and the same signature twice
is refused as a replay (the runtime remembers signatures for the tolerance window). The
same event id under a new signature is a provider's retry: counted once.

URL ``signed://?secret_env=REGUA_PAYMENTS_SECRET`` (``previous_secret_env``, ``tolerance``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation

from dialer.rules.charges import Charge, ChargeRequest, ChargeStatus, EventKind, PaymentEvent
from payments.base import WebhookRefused, WebhookRequest

HEADER = "Regua-Signature"
MAX_EVENTS = 1000
_ID = re.compile(r"^[\w.:\-]{1,100}$")
_ACCOUNT = re.compile(r"^[\w.\-/:#@+]{1,64}$")
_SIG = re.compile(r"^t=(\d{1,12}),v1=([0-9a-f]{64})$")


def sign(secret: str, body: bytes, at: int) -> str:
    """The header value a sender puts on ``body`` at unix time ``at``."""
    mac = hmac.new(secret.encode(), str(at).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


class SignedWebhookProvider:
    name = "signed"
    sandbox = False
    needs_document = False
    makes_charges = False
    can_list = False

    def __init__(
        self,
        secret: str,
        *,
        previous_secret: str = "",
        tolerance: float = 300.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.secrets = tuple(s.encode() for s in (secret, previous_secret) if s)
        self.tolerance = tolerance
        self._now = now

    async def create_charge(self, request: ChargeRequest) -> Charge:
        return Charge(request.txid, self.name, ChargeStatus.ACTIVE, request.amount, request.due_date)

    async def fetch_charge(self, txid: str) -> Charge | None:
        return None

    async def received_since(self, start: datetime, end: datetime) -> list[PaymentEvent]:
        return []

    def authenticate(self, request: WebhookRequest) -> None:
        header = request.headers.get(HEADER, "")
        m = _SIG.fullmatch(header.strip())
        if m is None:
            raise WebhookRefused(401, f"the {HEADER} header is missing or malformed (t=<unix>,v1=<hex>)")
        at = int(m.group(1))
        skew = abs(self._now() - at)
        if skew > self.tolerance:
            raise WebhookRefused(
                401,
                f"the signature's timestamp is {skew:.0f} s from our clock (at most {self.tolerance:.0f})",
                "signed webhook: timestamp outside the window (a replay, or a clock off)",
            )
        signed = m.group(1).encode() + b"." + request.body
        given = bytes.fromhex(m.group(2))
        if not any(
            hmac.compare_digest(hmac.new(s, signed, hashlib.sha256).digest(), given) for s in self.secrets
        ):
            raise WebhookRefused(401, "the signature does not match", "signed webhook: bad signature")

    def replay_key(self, request: WebhookRequest) -> str:
        """What the runtime remembers for ``tolerance`` seconds to refuse the same delivery twice."""
        return hashlib.sha256(request.headers.get(HEADER, "").encode()).hexdigest()[:32]

    def parse_webhook(self, request: WebhookRequest) -> list[PaymentEvent]:
        try:
            doc = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            raise WebhookRefused(400, "the body is not JSON") from None
        batch = isinstance(doc, dict) and "events" in doc
        items = doc["events"] if batch else [doc]
        if not isinstance(items, list) or not items:
            raise WebhookRefused(400, "events must be a non-empty list")
        if len(items) > MAX_EVENTS:
            raise WebhookRefused(400, f"at most {MAX_EVENTS} events in one request")
        out = []
        for n, item in enumerate(items):
            try:
                out.append(self._event(item))
            except ValueError as exc:
                where = f"events[{n}]: " if batch else ""  # (not `"events" in doc`: 5 or null)
                raise WebhookRefused(400, f"{where}{exc}") from None
        return out

    def _event(self, item: object) -> PaymentEvent:
        if not isinstance(item, dict):
            raise ValueError("an event must be an object")
        event_id = item.get("id")
        if not isinstance(event_id, str) or not _ID.fullmatch(event_id):
            raise ValueError("id is required: letters, digits and . _ : - (at most 100)")
        kind = {"payment": EventKind.PAID, "refund": EventKind.REFUND}.get(str(item.get("type")))
        if kind is None:
            raise ValueError("type must be payment or refund")
        txid = item.get("txid", "")
        account = item.get("account_id", "")
        if not isinstance(txid, str) or (
            txid and not (txid.isascii() and txid.isalnum() and len(txid) <= 35)
        ):
            raise ValueError("txid must be letters and digits (at most 35)")
        if not isinstance(account, str) or (account and not _ACCOUNT.fullmatch(account)):
            raise ValueError("account_id is malformed")
        if not txid and not account:
            raise ValueError("txid or account_id is required")
        try:
            amount = Decimal(str(item.get("amount")))
        except InvalidOperation:
            raise ValueError("amount must be a number like 150.00") from None
        if (
            not amount.is_finite()
            or amount <= 0
            or amount > Decimal("1000000000")
            or amount != amount.quantize(Decimal("0.01"))
        ):
            raise ValueError("amount must be positive, with at most two decimals")
        paid_at = item.get("paid_at")
        try:
            at = (
                datetime.fromisoformat(str(paid_at).replace("Z", "+00:00"))
                if isinstance(paid_at, str) and len(paid_at) <= 40
                else None
            )
        except ValueError:
            at = None
        if at is None or at.tzinfo is None:
            raise ValueError("paid_at must be an ISO 8601 time with its offset")
        method = str(item.get("method") or "")[:16]
        return PaymentEvent(
            f"signed:{event_id}",
            kind,
            self.name,
            txid,
            amount,
            at,
            account_id=account,
            method=method,
            reference=event_id,
        )

    def health(self) -> dict[str, object]:
        return {"provider": self.name}

    async def close(self) -> None:
        return None
