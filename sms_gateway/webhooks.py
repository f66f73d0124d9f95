"""Delivery receipts, inbound replies and opt-out keywords, pure: no I/O.

Each provider reports in its own shape; this module checks that a request really comes
from it and turns the request into one of two small values:

- ``DeliveryReceipt(provider, message_id, status, error)`` with ``status`` one of
  ``delivered`` (on the handset), ``failed`` (will not be delivered), ``sent`` (in
  transit: queued, accepted, sent to the carrier) or ``unknown``;
- ``InboundMessage(provider, from_number, text)`` with ``from_number`` in E.164.

| provider | request | authenticity |
| --- | --- | --- |
| Twilio | form POST: ``MessageSid``, ``MessageStatus``, ``ErrorCode`` (status callback); ``From``, ``Body`` (incoming message) | ``X-Twilio-Signature``: base64 HMAC-SHA1, keyed by the auth token, of the full URL followed by every POST parameter's name and value, sorted by name |
| Zenvia | JSON event: ``type`` MESSAGE_STATUS (``messageId``, ``messageStatus.code``) or MESSAGE (``direction`` IN, ``message.from``, ``message.contents``) | Zenvia does not sign; the subscription sends a header we choose (``X-Regua-Token``) holding a shared secret |
| generic | JSON ``{"message_id", "status", "error"}`` or ``{"from", "text"}`` | ``X-Regua-Signature``: hex HMAC-SHA256 of the raw body with a shared secret (``sha256=`` prefix allowed) |

Bad input raises ``dialer.errors.InputError``; the ``verify_*`` functions return a bool
and compare in constant time.

``opt_out_keyword(text, country)`` implements compliance.md's SMS keywords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from dialer.errors import InputError

ReceiptStatus = Literal["delivered", "failed", "sent", "unknown"]

TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
ZENVIA_TOKEN_HEADER = "X-Regua-Token"
REGUA_SIGNATURE_HEADER = "X-Regua-Signature"


@dataclass(frozen=True, slots=True)
class DeliveryReceipt:
    provider: str
    message_id: str
    status: ReceiptStatus
    error: str = ""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    provider: str
    from_number: str  # E.164
    text: str


Params = Mapping[str, str] | Iterable[tuple[str, str]]

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def e164(number: str) -> str:
    """A sender's number in E.164 (``5511987654321`` -> ``+5511987654321``); InputError otherwise."""
    cleaned = re.sub(r"[\s().\-]", "", number)
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    elif not cleaned.startswith("+"):
        cleaned = "+" + cleaned
    if not _E164.match(cleaned):
        raise InputError("the sender's number is not an international (E.164) number")
    return cleaned


def _pairs(params: Params) -> list[tuple[str, str]]:
    return list(params.items()) if isinstance(params, Mapping) else list(params)


# ---------------------------------------------------------------- Twilio


def twilio_signature(auth_token: str, url: str, params: Params) -> str:
    """Twilio's ``X-Twilio-Signature`` for a form POST to ``url``."""
    pairs = _pairs(params)
    data = url
    for name in sorted({k for k, _ in pairs}):
        for value in sorted({v for k, v in pairs if k == name}):
            data += name + value
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_variants(url: str) -> set[str]:
    """``url`` as given, without its default port and with it: Twilio signs what it dialled."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    variants = {url}
    if default is None or not parts.hostname:
        return variants
    host = parts.hostname
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    if parts.port in (None, default):
        variants.add(urlunsplit(parts._replace(netloc=f"{auth}{host}")))
        variants.add(urlunsplit(parts._replace(netloc=f"{auth}{host}:{default}")))
    return variants


def verify_twilio_signature(auth_token: str, url: str, params: Params, signature: str | None) -> bool:
    """Whether ``signature`` is Twilio's for this request (the full URL Twilio called)."""
    if not signature or not auth_token:
        return False
    pairs = _pairs(params)
    presented = signature.encode()
    return any(
        hmac.compare_digest(twilio_signature(auth_token, candidate, pairs).encode(), presented)
        for candidate in _port_variants(url)
    )


_TWILIO_STATUS: dict[str, ReceiptStatus] = {
    "delivered": "delivered",
    "read": "delivered",
    "failed": "failed",
    "undelivered": "failed",
    "canceled": "failed",
    "sent": "sent",
    "queued": "sent",
    "accepted": "sent",
    "scheduled": "sent",
    "sending": "sent",
}


def parse_twilio(params: Params) -> DeliveryReceipt | InboundMessage:
    """A Twilio status callback or incoming-message webhook (form fields)."""
    fields = dict(_pairs(params))
    sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
    if (
        "Body" in fields
        and fields.get("SmsStatus", "received") == "received"
        and "MessageStatus" not in fields
    ):
        if not fields.get("From"):
            raise InputError("twilio: incoming message without From")
        return InboundMessage("twilio", e164(fields["From"]), fields["Body"])
    status = fields.get("MessageStatus") or fields.get("SmsStatus")
    if not sid or not status:
        raise InputError("twilio: neither a status callback nor an incoming message")
    error = fields.get("ErrorCode") or ""
    return DeliveryReceipt("twilio", sid, _TWILIO_STATUS.get(status.lower(), "unknown"), error)


# ---------------------------------------------------------------- Zenvia


def verify_shared_token(expected: str, presented: str | None) -> bool:
    """A shared-secret header (Zenvia's subscription headers) compared in constant time."""
    if not expected or not presented:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode())


_ZENVIA_STATUS: dict[str, ReceiptStatus] = {
    "DELIVERED": "delivered",
    "READ": "delivered",
    "VERIFIED": "delivered",
    "CLICKED": "delivered",
    "SENT": "sent",
    "REJECTED": "failed",
    "NOT_DELIVERED": "failed",
}


def _json(body: bytes | str, provider: str) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"{provider}: the webhook body is not JSON") from None
    if not isinstance(doc, dict):
        raise InputError(f"{provider}: the webhook body is not a JSON object")
    return doc


def parse_zenvia(body: bytes | str) -> DeliveryReceipt | InboundMessage:
    """A Zenvia v2 webhook event: MESSAGE_STATUS or an incoming (direction IN) MESSAGE."""
    doc = _json(body, "zenvia")
    kind = doc.get("type")
    if kind == "MESSAGE_STATUS":
        status = doc.get("messageStatus") or {}
        message_id = doc.get("messageId")
        if not isinstance(message_id, str) or not message_id or not isinstance(status, dict):
            raise InputError("zenvia: MESSAGE_STATUS without messageId or messageStatus")
        code = str(status.get("code") or "").upper()
        mapped = _ZENVIA_STATUS.get(code, "unknown")
        error = ""
        if mapped == "failed":
            causes = status.get("causes") or []
            first = causes[0] if isinstance(causes, list) and causes and isinstance(causes[0], dict) else {}
            error = str(
                first.get("channelErrorCode") or first.get("reason") or status.get("description") or code
            )
        return DeliveryReceipt("zenvia", message_id, mapped, error)
    if kind == "MESSAGE":
        message = doc.get("message") or {}
        direction = doc.get("direction") or message.get("direction")
        if direction != "IN":
            raise InputError("zenvia: MESSAGE event that is not incoming")
        sender = message.get("from")
        if not isinstance(sender, str):
            raise InputError("zenvia: incoming message without from")
        contents = message.get("contents") or []
        text = " ".join(
            str(c.get("text") or "") for c in contents if isinstance(c, dict) and c.get("type") == "text"
        )
        return InboundMessage("zenvia", e164(sender), text)
    raise InputError(f"zenvia: unexpected event type {str(kind)[:40]!r}")


# ---------------------------------------------------------------- generic JSON


def regua_signature(secret: str, raw_body: bytes) -> str:
    """The ``X-Regua-Signature`` a generic gateway sends: hex HMAC-SHA256 of the raw body."""
    return hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()


def verify_regua_signature(secret: str, raw_body: bytes, signature: str | None) -> bool:
    if not secret or not signature:
        return False
    presented = signature.strip()
    if presented.lower().startswith("sha256="):
        presented = presented[7:]
    return hmac.compare_digest(regua_signature(secret, raw_body).encode(), presented.lower().encode())


_GENERIC_STATUS: dict[str, ReceiptStatus] = {
    "delivered": "delivered",
    "delivrd": "delivered",
    "read": "delivered",
    "failed": "failed",
    "undelivered": "failed",
    "undeliv": "failed",
    "rejected": "failed",
    "rejectd": "failed",
    "expired": "failed",
    "sent": "sent",
    "queued": "sent",
    "accepted": "sent",
    "acceptd": "sent",
    "enroute": "sent",
}


def parse_generic(body: bytes | str, provider: str = "http") -> DeliveryReceipt | InboundMessage:
    """A generic gateway's receipt ``{"message_id", "status", "error"}`` or reply ``{"from", "text"}``."""
    doc = _json(body, provider)
    if "message_id" in doc:
        message_id = doc.get("message_id")
        status = doc.get("status")
        if not isinstance(message_id, str | int) or not isinstance(status, str):
            raise InputError(f"{provider}: a receipt needs message_id and status")
        error = doc.get("error") or ""
        return DeliveryReceipt(
            provider, str(message_id), _GENERIC_STATUS.get(status.lower(), "unknown"), str(error)
        )
    sender, text = doc.get("from"), doc.get("text")
    if isinstance(sender, str) and isinstance(text, str):
        return InboundMessage(provider, e164(sender), text)
    raise InputError(f"{provider}: neither a receipt (message_id, status) nor a reply (from, text)")


# ---------------------------------------------------------------- SMPP


_SMPP_STAT: dict[str, ReceiptStatus] = {
    "DELIVRD": "delivered",
    "UNDELIV": "failed",
    "REJECTD": "failed",
    "EXPIRED": "failed",
    "DELETED": "failed",
    "ACCEPTD": "sent",
    "ENROUTE": "sent",
}


def smpp_receipt(message_id: str, stat: str, err: str = "") -> DeliveryReceipt:
    """An SMSC delivery receipt's ``stat`` word as a ``DeliveryReceipt``."""
    status = _SMPP_STAT.get(stat.upper(), "unknown")
    error = err if status == "failed" and err not in ("", "000", "0") else ""
    return DeliveryReceipt("smpp", message_id, status, error)


# ---------------------------------------------------------------- opt-out keywords


#: compliance.md, "SMS opt-out keywords": for every number.
OPT_OUT_KEYWORDS = frozenset({"SAIR", "PARAR", "PARE", "CANCELAR", "DESCADASTRAR", "STOP"})
#: ... and for US numbers (FCC 24-24 names CANCEL too, compliance.md's US table).
OPT_OUT_KEYWORDS_US = frozenset({"QUIT", "END", "REVOKE", "OPTOUT", "UNSUBSCRIBE", "STOPALL", "CANCEL"})


def _fold(text: str) -> str:
    """Upper case, accents removed, punctuation and symbols as spaces, blanks collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = []
    for c in decomposed:
        if unicodedata.combining(c):
            continue
        kept.append(c if c.isalnum() else " ")
    return " ".join("".join(kept).upper().split())


def opt_out_keyword(text: str, country: str) -> str | None:
    """The opt-out keyword ``text`` is, or None.

    Any case, with or without accents, alone or with punctuation (``"Sair!"``,
    ``" párE. "``, ``"opt-out"``); a keyword inside a sentence does not count. ``OPT
    OUT`` is returned as ``OPTOUT``. ``country`` is the ISO code of the number's pack
    (``"BR"``, ``"US"``).
    """
    folded = _fold(text)
    if not folded:
        return None
    word = folded.replace(" ", "") if folded == "OPT OUT" else folded
    if word in OPT_OUT_KEYWORDS:
        return word
    if country.upper() == "US" and word in OPT_OUT_KEYWORDS_US:
        return word
    return None
