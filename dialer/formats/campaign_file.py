"""The campaign file: a streaming, defensive reader of the CSV supervisors upload.

UTF-8 (with or without BOM) or Latin-1/cp1252 as Brazilian spreadsheets export it,
detected line by line; comma, semicolon or tab, detected from the header; lines ending in
LF, CRLF or — when the header does — a lone CR (old Mac); one row per phone. Columns by
header name, in any order (``REQUIRED`` and ``OPTIONAL``).

``CampaignReader(fh, …)`` checks the header at once (``HeaderError`` before anything is
yielded: nothing gets written for a file with a wrong header), then iterating yields a
``CampaignRow`` for each good row and a ``RowError`` — line, column, value, reason —
for each bad one (a value it quotes clipped to ``QUOTED_CHARS``). A bad row never stops
the file; a binary file is refused at its header. Memory stays flat: rows are read one at
a time; only a 64-bit fingerprint per (account, phone) is kept to find duplicates.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, BinaryIO

from dialer.domain import SETTABLE_STATUSES, Account, AccountStatus, Consent, PaymentMethod, Phone, PhoneType
from dialer.errors import HeaderError
from dialer.formats.cell_values import (
    normalise_phone,
    parse_amount,
    parse_bool,
    parse_choice,
    parse_date,
)
from dialer.rules.documents import normalise_document
from dialer.rules.local_time import is_valid_zone, number_country, region_known, split_region

REQUIRED = ("account_id", "name", "phone", "due_date", "amount")
OPTIONAL = (
    "currency",
    "payment_method",
    "phone_type",
    "provided_by_debtor",
    "consent_voice",
    "consent_sms",
    "timezone",
    "region",
    "status",
    "verify_birth_year",
    "verify_digits",
    "boleto_line",
    "document",
)
KNOWN = frozenset(REQUIRED + OPTIONAL)

MAX_LINE_BYTES = 64 * 1024
MAX_FIELD = {"account_id": 64, "name": 120, "phone": 40, "boleto_line": 60, "document": 24}
DEFAULT_MAX_FIELD = 100
QUOTED_CHARS = 60  # of a value from the file an error quotes: never kilobytes of it
CURRENCIES = frozenset({"BRL", "USD"})
_DIGITS = re.compile(r"\D+")
# Unicode category Cc: the C0 and C1 control characters and DEL
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_BINARY = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # no header has these
_ACCOUNT_ID = re.compile(r"^[\w.\-/:#@+]{1,64}$", re.UNICODE)


@dataclass(frozen=True, slots=True)
class CampaignRow:
    line: int
    account: Account
    phone: Phone


@dataclass(frozen=True, slots=True)
class FieldError:
    column: str
    value: str  # as the file had it, clipped
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", clip(self.value))


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    errors: tuple[FieldError, ...]
    account_id: str = ""

    def describe(self) -> str:
        return "; ".join(
            f"line {self.line}, column {e.column}: {e.reason}" + (f" (got {e.value!r})" if e.value else "")
            for e in self.errors
        )


def clip(value: str, n: int = QUOTED_CHARS) -> str:
    """``value`` cut to ``n`` characters and an ellipsis, for an error message."""
    return value if len(value) <= n else value[:n] + "…"


@dataclass(frozen=True, slots=True)
class RowDefaults:
    consent_voice: bool = False
    consent_sms: bool = False
    currency: str = "BRL"
    # the debtor's CPF/CNPJ is always checked; it is kept only when the payment provider
    # needs it for a charge (the Pix API's ``devedor``, Asaas's customer)
    keep_document: bool = False


Hasher = Callable[[str, str, str], str]


def make_hasher(secret: bytes) -> Hasher:
    """A salted hash for IVR second factors: ``hasher(account_id, kind, value)``."""

    key = hashlib.sha256(secret).digest()  # BLAKE2 keys are at most 64 bytes

    def hasher(account_id: str, kind: str, value: str) -> str:
        msg = f"{account_id}\x1f{kind}\x1f{value}".encode()
        return hashlib.blake2b(msg, key=key, digest_size=16).hexdigest()

    return hasher


# ------------------------------------------------------------------ decoding


class _CrAsLf(io.RawIOBase):
    """Old Mac lines (a lone CR) read as LF ones, each CR, LF or CRLF one line; ``head`` read."""

    def __init__(self, fh: BinaryIO, head: bytes) -> None:
        self._fh, self._head, self._pending, self._cr = fh, head, b"", False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            raw, self._head = self._head or self._fh.read(MAX_LINE_BYTES), b""
            if not raw:
                return 0
            raw = raw[1:] if self._cr and raw.startswith(b"\n") else raw  # a CRLF split between reads
            self._cr = raw.endswith(b"\r")
            self._pending = raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        n = min(len(buffer), len(self._pending))
        buffer[:n], self._pending = self._pending[:n], self._pending[n:]
        return n


def _decoded_lines(fh: BinaryIO, oversized: set[int]) -> Iterator[str]:
    """Physical lines as text: UTF-8 where it decodes, cp1252 (then Latin-1) where not."""
    first = fh.readline(MAX_LINE_BYTES)
    cr = first.find(b"\r")
    if cr != -1 and first[cr + 1 : cr + 2] not in (b"", b"\n"):  # a lone CR ends the header
        fh = io.BufferedReader(_CrAsLf(fh, first), MAX_LINE_BYTES)
        first = fh.readline(MAX_LINE_BYTES)
    number = 0
    for raw in itertools.chain([first], iter(lambda: fh.readline(MAX_LINE_BYTES), b"")):
        if not raw:
            return
        number += 1
        if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
            while True:  # drain the rest of an absurd line without keeping it
                more = fh.readline(MAX_LINE_BYTES)
                if not more or more.endswith(b"\n"):
                    break
            oversized.add(number)
            yield "\n"
            continue
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            try:
                yield raw.decode("cp1252")
            except UnicodeDecodeError:
                yield raw.decode("latin-1")


def _normalise_header(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().strip('"').strip().lower())


class CampaignReader:
    """Iterate a campaign file: ``CampaignRow`` or ``RowError`` per data row."""

    def __init__(
        self,
        fh: BinaryIO,
        *,
        defaults: RowDefaults | None = None,
        secret: bytes = b"regua-dev",
        check_duplicates: bool = True,
        today: date | None = None,
    ) -> None:
        self._fh = fh
        self.defaults = defaults or RowDefaults()
        self._check_duplicates = check_duplicates
        self._oversized: set[int] = set()
        self._lines = _decoded_lines(fh, self._oversized)
        first = next(self._lines, None)
        if 1 in self._oversized:
            raise HeaderError(f"line 1: a header over {MAX_LINE_BYTES} bytes: not a campaign file")
        if first is None or not first.strip():
            raise HeaderError("line 1: the file is empty (expected a header row)")
        if _BINARY.search(first):
            raise HeaderError("line 1: binary data, not CSV text (an .xlsx? UTF-16?): save as CSV UTF-8")
        self.delimiter = max((";", ",", "\t"), key=first.count)
        try:
            header = next(csv.reader([first], delimiter=self.delimiter))
        except csv.Error as exc:
            raise HeaderError(f"line 1: unreadable header: {exc}") from None
        self.columns = [_normalise_header(h) for h in header]
        seen: set[str] = set()
        for name in self.columns:
            if name in seen and name:
                raise HeaderError(f"line 1: column {clip(name)!r} appears twice")
            seen.add(name)
        missing = [c for c in REQUIRED if c not in seen]
        if missing:
            listed = ", ".join(clip(c, 30) for c in self.columns[:12] if c) + "…" * (len(self.columns) > 12)
            raise HeaderError(
                f"line 1: missing required column(s) {', '.join(missing)}; found {listed or 'none'}"
                f" (delimiter {self.delimiter!r}). Required: {', '.join(REQUIRED)}."
            )
        self.unknown_columns = [c for c in self.columns if c and c not in KNOWN]
        self.parser = RowParser(tuple(self.columns), self.defaults, secret, today or date.today())
        self._seen_pairs: set[int] = set()

    def bytes_read(self) -> int:
        try:
            return self._fh.tell()
        except (OSError, io.UnsupportedOperation):
            return 0

    def records(self) -> Iterator[tuple[int, dict[str, str]] | RowError]:
        """(line, column -> text) per data row, before validation; RowError for unreadable ones."""
        # the csv module counts physical lines; the header was line 1
        reader = csv.reader(self._lines, delimiter=self.delimiter, strict=False)
        prev_end = 1  # physical line where the previous record ended (the header: 1)
        ncols = len(self.columns)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RowError(prev_end + 1, (FieldError("-", "", f"unreadable CSV: {exc}"),))
                prev_end = 1 + reader.line_num
                continue
            line = prev_end + 1
            prev_end = 1 + reader.line_num
            if line in self._oversized:
                yield RowError(line, (FieldError("-", "", f"line longer than {MAX_LINE_BYTES} bytes"),))
                continue
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) > ncols and any(c.strip() for c in cells[ncols:]):
                yield RowError(line, (FieldError("-", "", f"{len(cells)} cells, header has {ncols}"),))
                continue
            yield line, {self.columns[i]: cells[i] for i in range(min(ncols, len(cells)))}

    def __iter__(self) -> Iterator[CampaignRow | RowError]:
        parse = self.parser.parse
        for item in self.records():
            if isinstance(item, RowError):
                yield item
                continue
            row = parse(*item)
            if isinstance(row, CampaignRow) and self._check_duplicates:
                dup = self.duplicate(row.line, row.account.account_id, row.phone.number)
                if dup is not None:
                    yield dup
                    continue
            yield row

    def duplicate(self, line: int, account_id: str, number: str) -> RowError | None:
        """A RowError if (account, phone) was already seen in this file; remembers it otherwise."""
        key = hash((account_id, number))
        if key in self._seen_pairs:
            return RowError(
                line,
                (FieldError("phone", number, f"duplicate of an earlier row for account {account_id}"),),
                account_id,
            )
        self._seen_pairs.add(key)
        return None


class RowParser:
    """Validates one record (column -> text) into a CampaignRow or a RowError.

    Holds no file and no state between rows, so it can run in another process.
    """

    def __init__(self, columns: tuple[str, ...], defaults: RowDefaults, secret: bytes, today: date) -> None:
        self.columns = columns
        self.defaults = defaults
        self._secret = secret
        self._hasher = make_hasher(secret)
        self._today = today
        self._field_parsers = self._parsers()

    def __getstate__(self) -> dict[str, object]:
        return {
            "columns": self.columns,
            "defaults": self.defaults,
            "secret": self._secret,
            "today": self._today,
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["columns"], state["defaults"], state["secret"], state["today"])  # type: ignore[misc]

    def _parsers(self) -> list[tuple[str, Callable[[str], object], bool]]:
        """(column, parser, required) for the columns this file has, in a fixed order."""
        table: list[tuple[str, Callable[[str], object], bool]] = [
            ("account_id", self._account_id, True),
            ("name", self._name, True),
            ("phone", normalise_phone, True),
            ("due_date", parse_date, True),
            ("amount", parse_amount, True),
            ("currency", self._currency, False),
            ("payment_method", lambda t: parse_choice(PaymentMethod, t, "payment_method"), False),
            ("phone_type", lambda t: parse_choice(PhoneType, t, "phone_type"), False),
            ("provided_by_debtor", parse_bool, False),
            ("consent_voice", parse_bool, False),
            ("consent_sms", parse_bool, False),
            ("timezone", self._timezone, False),
            ("region", str.upper, False),
            ("status", lambda t: parse_choice(AccountStatus, t, "status", SETTABLE_STATUSES), False),
            ("verify_birth_year", self._birth_year, False),
            ("verify_digits", self._verify_digits, False),
            ("boleto_line", self._boleto_line, False),
            ("document", normalise_document, False),
        ]
        present = set(self.columns)
        return [t for t in table if t[2] or t[0] in present]

    def parse(self, line: int, rec: dict[str, str]) -> CampaignRow | RowError:
        errors: list[FieldError] = []
        values: dict[str, object] = {}
        for column, parse, required in self._field_parsers:
            value = rec.get(column, "").strip()
            if not value:
                if required:
                    errors.append(FieldError(column, "", "is required"))
                continue
            limit = MAX_FIELD.get(column, DEFAULT_MAX_FIELD)
            if len(value) > limit:
                errors.append(FieldError(column, value, f"is longer than {limit} characters"))
                continue
            if _CONTROL.search(value):
                errors.append(
                    FieldError(column, value.encode("unicode_escape").decode(), "contains control characters")
                )
                continue
            try:
                values[column] = parse(value)
            except ValueError as exc:
                errors.append(FieldError(column, value, str(exc)))

        phone_pair = values.get("phone")
        if isinstance(phone_pair, tuple) and "region" in values:
            region = str(values["region"])
            country = number_country(phone_pair[0])
            rc, code = split_region(region)
            if (rc not in (None, country)) or not code or not region_known(rc or country, code):
                errors.append(
                    FieldError(
                        "region",
                        region,
                        f"is not a {'UF' if country == 'BR' else 'US state'} for a {country} number",
                    )
                )
        account_id = str(values.get("account_id", clip(rec.get("account_id", ""))))
        if errors:
            return RowError(line, tuple(errors), account_id)
        assert isinstance(phone_pair, tuple)
        number: str = phone_pair[0]
        phone_type: PhoneType = phone_pair[1]
        hasher = self._hasher
        by = values.get("verify_birth_year")
        vd = values.get("verify_digits")
        account = Account(
            account_id=account_id,
            name=str(values["name"]),
            due_date=values["due_date"],  # type: ignore[arg-type]
            amount=values["amount"],  # type: ignore[arg-type]
            currency=str(values.get("currency", self.defaults.currency)),
            payment_method=values.get("payment_method", PaymentMethod.BOLETO),  # type: ignore[arg-type]
            status=values.get("status", AccountStatus.OPEN),  # type: ignore[arg-type]
            region=values.get("region"),  # type: ignore[arg-type]
            timezone=values.get("timezone"),  # type: ignore[arg-type]
            verify_birth_year_hash=hasher(account_id, "birth_year", str(by)) if by else None,
            verify_digits_hash=hasher(account_id, "digits", str(vd)) if vd else None,
            boleto_line=values.get("boleto_line"),  # type: ignore[arg-type]
            document=values.get("document") if self.defaults.keep_document else None,  # type: ignore[arg-type]
        )
        phone = Phone(
            number=number,
            phone_type=values.get("phone_type", phone_type),  # type: ignore[arg-type]
            provided_by_debtor=bool(values.get("provided_by_debtor", True)),
            consent=Consent(
                voice=bool(values.get("consent_voice", self.defaults.consent_voice)),
                sms=bool(values.get("consent_sms", self.defaults.consent_sms)),
            ),
        )
        return CampaignRow(line, account, phone)

    # -- single fields

    @staticmethod
    def _account_id(text: str) -> str:
        if not _ACCOUNT_ID.fullmatch(text):
            raise ValueError("may hold only letters, digits and . - / : # @ + _")
        return text

    @staticmethod
    def _name(text: str) -> str:
        name = " ".join(text.split())
        if not any(c.isalpha() for c in name):
            raise ValueError("has no letters")
        return name

    @staticmethod
    def _currency(text: str) -> str:
        code = text.strip().upper()
        if code not in CURRENCIES:
            raise ValueError(f"must be one of {', '.join(sorted(CURRENCIES))}")
        return code

    @staticmethod
    def _timezone(text: str) -> str:
        if not is_valid_zone(text):
            raise ValueError("is not an IANA time zone such as America/Sao_Paulo")
        return text

    def _birth_year(self, text: str) -> str:
        if not re.fullmatch(r"\d{4}", text) or not 1900 <= int(text) <= self._today.year:
            raise ValueError(f"must be a year between 1900 and {self._today.year}")
        return text

    @staticmethod
    def _verify_digits(text: str) -> str:
        if not re.fullmatch(r"\d{3,6}", text):
            raise ValueError("must be 3 to 6 digits")
        return text

    @staticmethod
    def _boleto_line(text: str) -> str:
        digits = _DIGITS.sub("", text)
        if len(digits) not in (47, 48):
            raise ValueError("must have 47 digits (bank boleto) or 48 (utility bill)")
        return digits
