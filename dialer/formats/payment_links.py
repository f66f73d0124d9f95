"""Signed, expiring payment links that carry no personal data.

A link names an opaque *link id* — an HMAC of (campaign, account), so it cannot be
turned back into the account without the key — plus an expiry, signed with HMAC-SHA256:

    https://…/pay/<link id>.<expiry, base36 seconds>.<signature>

The server resolves the link id to the account through Redis (``links`` hash), checks the
signature in constant time and the expiry against its clock. A forged, altered or
expired token gets a polite page that reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from dialer.domain import Account

DEFAULT_TTL = timedelta(days=7)


class InvalidToken(ValueError):
    """The token was not made by us (or was altered)."""


class ExpiredToken(ValueError):
    """The token was ours but its time is over."""


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def _b36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def link_id(secret: bytes, campaign: str, account_id: str) -> str:
    mac = hmac.new(secret, f"link\x1f{campaign}\x1f{account_id}".encode(), hashlib.sha256).digest()
    return _b32(mac[:15])


@dataclass(frozen=True, slots=True)
class LinkToken:
    """What a valid token says: the link id, this link's own nonce (each link sent is one:
    its failures and its lock are its own), and until when it may skip the second factor
    (a link sent just after the debtor verified on a call; None: never)."""

    link: str
    nonce: str
    expires: datetime
    verified_until: datetime | None = None


def new_nonce() -> str:
    return _b32(secrets.token_bytes(8))


def make_token(
    secret: bytes, link: str, expires: datetime, *, nonce: str = "", verified_until: datetime | None = None
) -> str:
    """``<link>.<expiry>.<signature>``; with a nonce (every link sent since negotiation came)
    ``<link>.<expiry>.<nonce>[.<verified until>].<signature>``, a shorter signature (96 bits:
    plenty against guesses made one HTTP request at a time) to keep SMS short."""
    payload = f"{link}.{_b36(int(expires.timestamp()))}"
    if not nonce:
        sig = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
        return f"{payload}.{_b32(sig[:20])}"
    payload += f".{nonce}"
    if verified_until is not None:
        payload += f".{_b36(int(verified_until.timestamp()))}"
    sig = hmac.new(secret, payload.encode(), hashlib.sha256).digest()
    return f"{payload}.{_b32(sig[:12])}"


def read_token(secret: bytes, token: str, now: datetime) -> LinkToken:
    """A valid token's contents; raises InvalidToken / ExpiredToken."""
    if len(token) > 160 or not token.isascii():
        raise InvalidToken("malformed")
    parts = token.split(".")
    if len(parts) not in (3, 4, 5) or not all(parts) or not all(p.isalnum() for p in parts):
        raise InvalidToken("malformed")
    *payload, sig = parts
    mac = hmac.new(secret, ".".join(payload).encode(), hashlib.sha256).digest()
    expected = _b32(mac[:20] if len(parts) == 3 else mac[:12])
    if not hmac.compare_digest(expected, sig):
        raise InvalidToken("bad signature")
    try:
        expires = int(payload[1], 36)
        until = int(payload[3], 36) if len(payload) == 4 else 0
    except ValueError:
        raise InvalidToken("malformed expiry") from None
    if now.timestamp() >= expires:
        raise ExpiredToken("expired")
    nonce = payload[2] if len(payload) >= 3 else sig[:16]  # an older link: its signature
    tz = now.tzinfo
    return LinkToken(
        payload[0],
        nonce,
        datetime.fromtimestamp(expires, tz),
        datetime.fromtimestamp(until, tz) if until else None,
    )


def verify_token(secret: bytes, token: str, now: datetime) -> str:
    """The link id of a valid token; raises InvalidToken / ExpiredToken."""
    return read_token(secret, token, now).link


def payment_url(public_url: str, url_template: str, token: str) -> str:
    """Where a link points: ``/a/<token>`` (a path that says nothing about money; the
    ``/pay/<token>`` links sent before still open the same page)."""
    if url_template:
        return url_template.replace("{token}", token)
    return public_url.rstrip("/") + "/a/" + token


def page_link(
    secret: bytes,
    settings: Any,
    campaign: str,
    account_id: str,
    now: datetime,
    *,
    verified_until: datetime | None = None,
) -> tuple[str, str]:
    """(link id, URL) of a fresh signed link to an account's page: a new nonce each time."""
    link = link_id(secret, campaign, account_id)
    token = make_token(secret, link, now + DEFAULT_TTL, nonce=new_nonce(), verified_until=verified_until)
    return link, payment_url(settings.service.public_url, settings.company.payment_url_template, token)


def format_money(amount: object, currency: str, language: str) -> str:
    value = Decimal(str(amount)).quantize(Decimal("0.01"))
    whole, cents = f"{value:,.2f}".split(".")
    if language.startswith("pt"):
        return ("R$ " if currency == "BRL" else currency + " ") + whole.replace(",", ".") + "," + cents
    return ("$" if currency == "USD" else currency + " ") + whole + "." + cents


def payment_sms_text(language: str, company_name: str, account: Account, url: str) -> str:
    """Full-level text: only ever sent because a verified debtor asked for it on a call."""
    amount = format_money(account.amount, account.currency, language)
    if language.startswith("pt"):
        due = account.due_date.strftime("%d/%m/%Y")
        return f"{company_name}: conforme solicitado, pague {amount} (venc. {due}) em {url}"
    due = account.due_date.strftime("%m/%d/%Y")
    return f"{company_name}: as requested, pay {amount} (due {due}) at {url}"


def with_codes(language: str, text: str, pix: str = "", boleto: str = "") -> str:
    """The payment SMS with the charge's Pix "copia e cola" and boleto line after it."""
    pt = language.startswith("pt")
    if boleto:
        text += f"\n{'Linha digitável' if pt else 'Boleto line'}: {boleto}"
    if pix:
        text += f"\n{'Pix copia e cola' if pt else 'Pix code'}: {pix}"
    return text
