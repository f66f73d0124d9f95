"""Do-not-call lists: a registry export (SP "Não Me Ligue") or a company's own list.

One number per line, optionally followed (comma, semicolon or tab) by the date it was
registered; a header line is skipped. An entry takes effect ``effective_after`` after its
registration date (São Paulo's registry: 30 days), at once when no date is given.
Bad lines are yielded as ``(line, value, reason)``; the rest import.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import BinaryIO
from zoneinfo import ZoneInfo

from dialer.domain import Suppression, SuppressionReason
from dialer.formats.cell_values import normalise_phone, parse_date

_SPLIT = re.compile(r"[;,\t]")


def read_suppression_file(
    fh: BinaryIO, source: str, effective_after: timedelta = timedelta(0)
) -> Iterator[Suppression | tuple[int, str, str]]:
    for number, raw in enumerate(fh, 1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            line = raw.decode("cp1252", errors="replace")
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f.strip().strip('"') for f in _SPLIT.split(line)]
        if number == 1 and not re.search(r"\d", fields[0]):
            continue  # header
        try:
            phone, _ = normalise_phone(fields[0])
        except ValueError as exc:
            yield (number, fields[0], f"phone {exc}")
            continue
        effective = None
        if len(fields) > 1 and fields[1]:
            try:
                registered = _parse_when(fields[1], phone)
            except ValueError as exc:
                yield (number, fields[1], f"date {exc}")
                continue
            effective = registered + effective_after
        yield Suppression(phone, SuppressionReason.DO_NOT_CALL, None, effective, source)


def _parse_when(text: str, phone: str) -> datetime:
    if "T" in text:
        value = datetime.fromisoformat(text)
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    day = parse_date(text)
    zone = ZoneInfo("America/Sao_Paulo") if phone.startswith("+55") else ZoneInfo("America/New_York")
    return datetime.combine(day, time(0), zone)
