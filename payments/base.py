"""The ``PaymentProvider`` protocol: create a charge, fetch a charge, authenticate and parse
a webhook, list what was received (for the reconciliation job).

Webhooks arrive as a ``WebhookRequest`` (headers, the raw body, the client's address,
whether a client certificate was verified), so an adapter needs no web framework. An
adapter **authenticates before it parses**: ``authenticate`` sees only headers and bytes,
and raises ``WebhookRefused`` (HTTP 401/403/409) when the request is not the provider's;
``parse_webhook`` raises ``WebhookRefused`` (HTTP 400) for a body it cannot read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dialer.rules.charges import Charge, ChargeRequest, PaymentEvent

MAX_WEBHOOK_BODY = 1024 * 1024  # a Pix callback may carry many pix; nothing needs more


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    headers: Mapping[str, str]  # case-insensitive (aiohttp's CIMultiDict)
    body: bytes
    path_token: str = ""  # the secret part of the webhook's URL, when the provider uses one
    peer: str = ""  # the client's address
    client_cert_verified: bool = False  # the request came over our mTLS listener
    client_cert_subject: str = ""


class WebhookRefused(Exception):
    """A webhook not accepted: ``status`` is the HTTP answer, ``reason`` what the caller is
    told (never a secret), ``audit`` what the audit line records."""

    def __init__(self, status: int, reason: str, audit: str = "") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.audit = audit or reason


class PaymentProvider(Protocol):
    name: str  # the scheme: sandbox, pix, asaas, signed
    sandbox: bool  # its payments are simulated: everything it records says SANDBOX
    needs_document: bool  # charges carry the debtor's CPF/CNPJ
    makes_charges: bool  # False: the company's system charges; Régua only hears of payments
    can_list: bool  # received_since works (the reconciliation job's sweep)

    async def create_charge(self, request: ChargeRequest) -> Charge:
        """Make the charge (idempotent on ``request.txid``): the same txid twice is one charge."""
        ...

    async def fetch_charge(self, txid: str) -> Charge | None:
        """The charge as the provider has it now (None: it has none by that id)."""
        ...

    def authenticate(self, request: WebhookRequest) -> None:
        """Raise ``WebhookRefused`` unless the request is the provider's (before parsing)."""
        ...

    def parse_webhook(self, request: WebhookRequest) -> list[PaymentEvent]:
        """The payment events in an authenticated webhook ([] for events that are not about
        money); raises ``WebhookRefused(400, …)`` for a body it cannot read."""
        ...

    async def received_since(self, start: datetime, end: datetime) -> list[PaymentEvent]:
        """Payments (and refunds) the provider received in [start, end): the sweep that
        catches a lost webhook. Providers with ``can_list`` False return []."""
        ...

    def health(self) -> dict[str, object]: ...

    async def close(self) -> None: ...
