"""SANDBOX: charges made in memory, and payments the demo makes up.

``create_charge`` answers at once with a Pix code for the company's key (a static BR Code
carrying the amount and the first 25 characters of the txid), so the payment page and the
payment SMS look as they will with a real provider. ``pay`` is how the demo's simulated
debtors pay: it returns the event the runtime records through the same path a real
webhook takes, every one marked ``sandbox``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from dialer.formats.pix import brcode
from dialer.rules.charges import Charge, ChargeRequest, ChargeStatus, EventKind, PaymentEvent
from payments.base import WebhookRefused, WebhookRequest

SANDBOX_KEY = "sandbox@regua.invalid"


class SandboxPayments:
    name = "sandbox"
    sandbox = True
    needs_document = False
    makes_charges = True
    can_list = True

    def __init__(
        self,
        *,
        pix_key: str = "",
        merchant: str = "REGUA SANDBOX",
        city: str = "SAO PAULO",
        pay_ratio: float = 0.35,
    ) -> None:
        self.pix_key = pix_key or SANDBOX_KEY
        self.merchant = merchant
        self.city = city
        self.pay_ratio = pay_ratio  # of debtors who asked for a payment link, the share that pays
        self.charges: dict[str, Charge] = {}
        self.received: list[PaymentEvent] = []
        self._serial = 0

    async def create_charge(self, request: ChargeRequest) -> Charge:
        if request.txid not in self.charges:
            code = brcode(self.pix_key, request.amount, self.merchant, self.city, txid=request.txid)
            self.charges[request.txid] = Charge(
                request.txid,
                self.name,
                ChargeStatus.ACTIVE,
                request.amount,
                request.due_date,
                f"sbx-{request.txid[:12]}",
                code,
            )
        return self.charges[request.txid]

    async def fetch_charge(self, txid: str) -> Charge | None:
        charge = self.charges.get(txid)
        if charge is None:
            return None
        mine = tuple(e for e in self.received if e.txid == txid)
        return Charge(
            charge.txid,
            charge.provider,
            charge.status,
            charge.amount,
            charge.due_date,
            charge.provider_id,
            charge.copy_paste,
            payments=mine,
        )

    def pay(
        self, txid: str, amount: Decimal, at: datetime, *, kind: EventKind = EventKind.PAID
    ) -> PaymentEvent:
        self._serial += 1
        event = PaymentEvent(
            f"sandbox:{txid}:{kind}:{self._serial}",
            kind,
            self.name,
            txid,
            amount,
            at,
            method="pix",
            reference=f"SBX{self._serial:08d}",
            sandbox=True,
        )
        self.received.append(event)
        return event

    async def received_since(self, start: datetime, end: datetime) -> list[PaymentEvent]:
        return [e for e in self.received if start <= e.at < end]

    def authenticate(self, request: WebhookRequest) -> None:
        raise WebhookRefused(404, "the sandbox takes no webhooks")

    def parse_webhook(self, request: WebhookRequest) -> list[PaymentEvent]:
        return []

    def health(self) -> dict[str, object]:
        return {
            "provider": self.name,
            "sandbox": True,
            "charges": len(self.charges),
            "payments": len(self.received),
        }

    async def close(self) -> None:
        return None
