"""Account status files: a day's payments (or disputes) exported by the billing system.

One account id per line, optionally followed (comma, semicolon or tab) by a note such as
the payment reference; a header line whose first field is ``account_id`` (or ``conta``)
is skipped, as are blank lines and lines starting with ``#``. Bad lines are yielded as
``(line, value, reason)``; the rest as ``(line, account_id, note)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

_SPLIT = re.compile(r"[;,\t]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ID = 64
MAX_NOTE = 500
HEADERS = {"account_id", "account", "conta", "contrato"}


def read_status_file(fh: BinaryIO) -> Iterator[tuple[int, str, str, str | None]]:
    """``(line, account_id, note, None)`` per good line, ``(line, value, "", reason)`` per bad one."""
    seen: dict[str, int] = {}
    for number, raw in enumerate(fh, 1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError:
            line = raw.decode("cp1252", errors="replace")
        line = line.strip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip().strip('"').strip() for f in _SPLIT.split(line, maxsplit=1)]
        account_id = fields[0]
        note = fields[1] if len(fields) > 1 else ""
        if number == 1 and account_id.lower() in HEADERS:
            continue
        if not account_id:
            yield (number, account_id, "", "account_id is empty")
        elif len(account_id) > MAX_ID:
            yield (number, account_id[:80], "", f"account_id is longer than {MAX_ID} characters")
        elif _CONTROL.search(account_id) or _CONTROL.search(note):
            yield (number, account_id, "", "control characters are not allowed")
        elif len(note) > MAX_NOTE:
            yield (number, account_id, "", f"note is longer than {MAX_NOTE} characters")
        elif account_id in seen:
            yield (number, account_id, "", f"duplicate of line {seen[account_id]}")
        else:
            seen[account_id] = number
            yield (number, account_id, note, None)
