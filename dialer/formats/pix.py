"""Pix "copia e cola" codes: the BR Code (EMV QRCPS-MPM) payload, with its CRC16, pure.

Fields (ID, length, value): 00 payload format "01"; 01 point of initiation "12" (one
payment); 26 merchant account (00 GUI "br.gov.bcb.pix", 01 Pix key, 02 description);
52 MCC "0000"; 53 currency "986" (BRL); 54 amount; 58 country "BR"; 59 merchant name
(≤ 25); 60 city (≤ 15); 62 additional data (05 reference label / txid, ≤ 25
alphanumerics); 63 CRC16-CCITT (poly 0x1021, init 0xFFFF) over everything before it,
"6304" included, as four upper-case hex digits.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _tlv(tag: str, value: str) -> str:
    if len(value) > 99:
        raise ValueError(f"field {tag} is longer than 99 characters")
    return f"{tag}{len(value):02d}{value}"


def _ascii(text: str, limit: int) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9 .,\-/]", "", folded).strip()[:limit]


def brcode(
    key: str,
    amount: Decimal,
    merchant_name: str,
    merchant_city: str,
    txid: str = "***",
    description: str = "",
) -> str:
    """The "copia e cola" string for a payment of ``amount`` to Pix ``key``."""
    if not key or len(key) > 77:
        raise ValueError("a Pix key of 1 to 77 characters is required")
    if amount <= 0:
        raise ValueError("the amount must be positive")
    txid = re.sub(r"[^A-Za-z0-9]", "", txid)[:25] or "***"
    account = _tlv("00", "br.gov.bcb.pix") + _tlv("01", key)
    if description:
        account += _tlv("02", _ascii(description, 99 - len(account) - 4))
    payload = (
        _tlv("00", "01")
        + _tlv("01", "12")
        + _tlv("26", account)
        + _tlv("52", "0000")
        + _tlv("53", "986")
        + _tlv("54", f"{amount.quantize(Decimal('0.01'))}")
        + _tlv("58", "BR")
        + _tlv("59", _ascii(merchant_name, 25) or "RECEBEDOR")
        + _tlv("60", _ascii(merchant_city, 15) or "BRASIL")
        + _tlv("62", _tlv("05", txid))
        + "6304"
    )
    return payload + f"{crc16(payload.encode()):04X}"


def parse(code: str) -> dict[str, str]:
    """Split a BR Code into its top-level fields, checking lengths and the CRC (ValueError)."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(code):
        if i + 4 > len(code):
            raise ValueError(f"truncated field at {i}")
        tag, length = code[i : i + 2], code[i + 2 : i + 4]
        if not length.isdigit():
            raise ValueError(f"field {tag} has no length")
        value = code[i + 4 : i + 4 + int(length)]
        if len(value) != int(length):
            raise ValueError(f"field {tag} is shorter than its length")
        fields[tag] = value
        i += 4 + int(length)
    if "63" not in fields or not code.endswith(fields["63"]):
        raise ValueError("no CRC field at the end")
    expected = f"{crc16(code[:-4].encode()):04X}"
    if fields["63"].upper() != expected:
        raise ValueError(f"CRC {fields['63']} does not match {expected}")
    return fields
