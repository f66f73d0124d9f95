"""The campaign file reader: encodings, delimiters, every kind of bad row, line numbers."""

from __future__ import annotations

import io
import os
import random
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.domain import AccountStatus, PaymentMethod, PhoneType
from dialer.errors import HeaderError
from dialer.formats.campaign_file import (
    CampaignReader,
    CampaignRow,
    RowDefaults,
    RowError,
    normalise_phone,
    parse_amount,
)

HEADER = "account_id;name;phone;due_date;amount"


def read(text: str | bytes, **kw) -> list[CampaignRow | RowError]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return list(CampaignReader(io.BytesIO(data), **kw))


def errors_of(items):
    return [(e.line, f.column, f.reason) for e in items if isinstance(e, RowError) for f in e.errors]


def test_good_rows_with_every_optional_column():
    text = (
        "account_id,name,phone,due_date,amount,currency,payment_method,phone_type,provided_by_debtor,"
        "consent_voice,consent_sms,timezone,region,status,verify_birth_year,verify_digits\n"
        'C-1,José da Silva,(11) 98765-4321,13/11/2026,"1.234,56",BRL,crediário,work,sim,yes,não,'
        "America/Sao_Paulo,sp,open,1980,1234\n"
    )
    (row,) = read(text)
    assert isinstance(row, CampaignRow)
    a, p = row.account, row.phone
    assert (a.account_id, a.name, a.due_date, a.amount) == (
        "C-1",
        "José da Silva",
        date(2026, 11, 13),
        Decimal("1234.56"),
    )
    assert a.payment_method is PaymentMethod.CREDIARIO and a.status is AccountStatus.OPEN
    assert a.region == "SP" and a.timezone == "America/Sao_Paulo"
    assert p.number == "+5511987654321" and p.phone_type is PhoneType.WORK
    assert p.provided_by_debtor and p.consent.voice and not p.consent.sms
    # the second factor is kept only as a salted hash
    assert a.verify_birth_year_hash and "1980" not in a.verify_birth_year_hash
    assert a.verify_digits_hash and a.verify_digits_hash != a.verify_birth_year_hash


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252", "latin-1"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_encodings_and_delimiters(encoding, delimiter):
    import csv

    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter)
    writer.writerow(["account_id", "name", "phone", "due_date", "amount"])
    writer.writerow(["A1", "João Conceição", "21 98765-4321", "2026-11-13", "10,50"])
    text = out.getvalue()
    (row,) = read(text.encode(encoding))
    assert isinstance(row, CampaignRow)
    assert row.account.name == "João Conceição"
    assert row.account.amount == Decimal("10.50")


def test_consent_defaults_come_from_config():
    (row,) = read(HEADER + "\nA1;Ana;11987654321;2026-11-13;10\n", defaults=RowDefaults(True, False))
    assert row.phone.consent.voice and not row.phone.consent.sms


@pytest.mark.parametrize(
    ("line", "column", "reason"),
    [
        ("A1;Ana;12345;2026-11-13;10", "phone", "not"),
        ("A1;Ana;11 88765-4321;2026-11-13;10", "phone", "must start with 9"),
        ("A1;Ana;+44 7911 123456;2026-11-13;10", "phone", "no rule pack"),
        ("A1;Ana;0800 123 4567;2026-11-13;10", "phone", ""),
        ("A1;Ana;11987654321;2026-02-30;10", "due_date", "not a real calendar date"),
        ("A1;Ana;11987654321;31/04/2026;10", "due_date", "not a real calendar date"),
        ("A1;Ana;11987654321;next week;10", "due_date", "not a date"),
        ("A1;Ana;11987654321;2026-11-13;-10", "amount", "negative"),
        ("A1;Ana;11987654321;2026-11-13;abc", "amount", "not a number"),
        ("A1;Ana;11987654321;2026-11-13;0", "amount", "greater than zero"),
        ("A1;Ana;11987654321;2026-11-13;1.234", "amount", "ambiguous"),
        ("A1;;11987654321;2026-11-13;10", "name", "is required"),
        ("A1;123;11987654321;2026-11-13;10", "name", "no letters"),
        ("A1;Ana\x07;11987654321;2026-11-13;10", "name", "control characters"),
        ("A1;" + "A" * 500 + ";11987654321;2026-11-13;10", "name", "longer than"),
        ("A 1;Ana;11987654321;2026-11-13;10", "account_id", "may hold only"),
        (";Ana;11987654321;2026-11-13;10", "account_id", "is required"),
    ],
)
def test_bad_fields_are_named(line, column, reason):
    items = read(HEADER + "\n" + line + "\n")
    assert len(items) == 1 and isinstance(items[0], RowError)
    found = [(f.column, f.reason) for f in items[0].errors]
    assert any(c == column and reason in r for c, r in found), found
    assert items[0].line == 2


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("payment_method", "pix", "must be one of boleto, card, crediario"),
        ("phone_type", "fax", "must be one of mobile, home, work"),
        ("status", "lost", "must be one of open, paid, disputed, closed"),
        ("consent_voice", "maybe", "true/false"),
        ("timezone", "Mars/Olympus", "IANA"),
        ("region", "XX", "not a UF"),
        ("currency", "EUR", "must be one of BRL, USD"),
        ("verify_birth_year", "1850", "between 1900"),
        ("verify_digits", "12", "3 to 6 digits"),
    ],
)
def test_bad_optional_values(column, value, reason):
    items = read(f"{HEADER};{column}\nA1;Ana;11987654321;2026-11-13;10;{value}\n")
    assert errors_of(items) == [(2, column, next(f.reason for e in items for f in e.errors))]
    assert reason in items[0].errors[0].reason


def test_bad_rows_do_not_stop_the_file_and_lines_are_physical():
    text = (
        "\n".join(
            [
                HEADER,
                "A1;Ana;11987654321;2026-11-13;10",
                'A2;"Bea\nTriz";11987654322;2026-11-13;10',  # a quoted newline spans two lines
                "",
                "A3;Caio;11987654323;2026-13-01;10",
                "A1;Ana;(11) 98765-4321;2026-11-13;10",  # duplicate account+phone (other format)
                "A4;Davi;11987654324;2026-11-13;10;extra",
                "A5;Eva;11987654325;2026-11-13;10",
            ]
        )
        + "\n"
    )
    items = read(text)
    good = [i.line for i in items if isinstance(i, CampaignRow)]
    assert good == [2, 9]
    errs = errors_of(items)
    assert [(line, col) for line, col, _ in errs] == [(3, "name"), (6, "due_date"), (7, "phone"), (8, "-")]
    assert "duplicate" in errs[2][2]


def test_absurdly_long_line_is_rejected_alone():
    text = HEADER + "\nA1;" + "x" * 200_000 + ";11987654321;2026-11-13;10\nA2;Bia;11987654322;2026-11-13;10\n"
    items = read(text)
    assert isinstance(items[0], RowError) and "longer than" in items[0].errors[0].reason
    assert isinstance(items[1], CampaignRow) and items[1].line == 3


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("", "empty"),
        ("account_id;name;phone;due_date", "missing required column(s) amount"),
        ("conta;nome;telefone;vencimento;valor", "account_id, name, phone, due_date, amount"),
        ("account_id;name;phone;due_date;amount;phone", "appears twice"),
    ],
)
def test_wrong_header_is_refused_before_any_row(header, message):
    with pytest.raises(HeaderError, match="line 1") as info:
        CampaignReader(io.BytesIO((header + "\nA1;Ana;11987654321;2026-11-13;10\n").encode()))
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("raw", "e164", "kind"),
    [
        ("11987654321", "+5511987654321", PhoneType.MOBILE),
        ("(11) 98765-4321", "+5511987654321", PhoneType.MOBILE),
        ("+55 11 98765-4321", "+5511987654321", PhoneType.MOBILE),
        ("55 11 98765 4321", "+5511987654321", PhoneType.MOBILE),
        ("011 98765-4321", "+5511987654321", PhoneType.MOBILE),
        ("0055 11 98765-4321", "+5511987654321", PhoneType.MOBILE),
        ("11 3333-4444", "+551133334444", PhoneType.HOME),
        ("+1 (212) 555-1234", "+12125551234", PhoneType.MOBILE),
    ],
)
def test_phone_normalisation(raw, e164, kind):
    assert normalise_phone(raw) == (e164, kind)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1234.56", "1234.56"),
        ("1.234,56", "1234.56"),
        ("1,234.56", "1234.56"),
        ("1234,5", "1234.50"),
        ("R$ 1.234,56", "1234.56"),
        ("1.234.567", "1234567.00"),
        ("10", "10.00"),
    ],
)
def test_amounts(raw, value):
    assert parse_amount(raw) == Decimal(value)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(min_size=0, max_size=30), min_size=1, max_size=8))
def test_random_garbage_rows_never_crash(cells):
    line = ";".join(c.replace("\n", " ").replace("\r", " ") for c in cells)
    for item in read(HEADER + "\n" + line + "\n"):
        assert isinstance(item, CampaignRow | RowError)


@pytest.mark.parametrize("end", ["\r", "\r\n", "\n"])
def test_line_ends_old_mac_windows_unix(end):
    """A file saved with CR only (old Mac, some spreadsheet exports) reads like any other."""
    rows = [
        HEADER,
        "A1;Ana;11987654320;2026-11-13;10",
        "A2;;11987654321;2026-11-13;10",  # line 3: no name
        'A3;"Bia' + end + 'Souza";11987654322;2026-11-13;10',  # one record over lines 4 and 5
        "A4;Cid;11987654323;2026-11-13;10",
    ]
    items = read(end.join(rows) + end)
    assert [i.line for i in items if isinstance(i, CampaignRow)] == [2, 6]
    assert errors_of(items) == [(3, "name", "is required"), (4, "name", "contains control characters")]


def test_lone_cr_in_a_unix_file_is_one_bad_row():
    items = read(HEADER + "\nA1;Ana\rSouza;11987654320;2026-11-13;10\nA2;Bia;11987654321;2026-11-13;10\n")
    assert [i.line for i in items if isinstance(i, CampaignRow)] == [3]


@pytest.mark.parametrize("seed", range(20))
def test_binary_garbage_is_refused_with_a_short_message(seed):
    data = random.Random(seed).randbytes(200_000) if seed else os.urandom(2_000_000)
    with pytest.raises(HeaderError, match="^line 1: ") as info:
        CampaignReader(io.BytesIO(data))
    assert len(str(info.value)) < 400


@pytest.mark.parametrize(
    "data",
    [
        b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",
        "account_id;name;phone;due_date;amount".encode("utf-16"),
    ],
)
def test_spreadsheet_or_utf16_is_named_binary(data):
    with pytest.raises(HeaderError, match="binary data, not CSV text"):
        CampaignReader(io.BytesIO(data + b"\n"))


BIG = "x" * 100_000


def _short(text: str) -> bool:
    return len(text) < 300 and BIG[:61] not in text


def test_errors_never_echo_a_huge_cell():
    # quoted across physical lines, a 100 KB cell fits under the line limit
    big = '"' + "\n".join(BIG[i : i + 1000] for i in range(0, len(BIG), 1000)) + '"'
    items = read(f"{HEADER}\nA1;{big};11987654320;2026-11-13;10\n{big};Ana;11987654321;2026-11-13;{big}\n")
    assert all(isinstance(i, RowError) for i in items) and len(items) == 2
    for item in items:
        assert _short(item.describe()) and len(item.account_id) <= 64
        assert all(len(f.value) <= 61 for f in item.errors), [len(f.value) for f in item.errors]
    assert items[0].errors[0].value.endswith("…")


@pytest.mark.parametrize(
    "header",
    [
        "account_id;name;phone;due_date;" + BIG[:60_000],  # no amount; a huge unknown column
        "account_id;" + BIG[:30_000] + ";" + BIG[:30_000] + ";phone;due_date;amount",  # twice
        ";".join(f"c{i}" for i in range(15_000)),  # thousands of columns, none required
        BIG,  # a header longer than the line limit
    ],
)
def test_header_errors_never_echo_kilobytes(header):
    with pytest.raises(HeaderError, match="^line 1: ") as info:
        CampaignReader(io.BytesIO((header + "\n").encode()))
    assert _short(str(info.value)), str(info.value)[:500]


def test_old_mac_file_reads_as_its_unix_twin_across_blocks():
    rows = [f"A{i};Nome {i};119876{i:05d};2026-11-13;10" for i in range(6000)]
    rows[3000] = "A3000;" + "x" * 70_000 + ";11987654321;2026-11-13;10"  # longer than a line may be
    rows[4000] = 'A4000;"Ana' + "\r\n" + 'Souza";11987654321;2026-11-13;10'  # a CRLF inside quotes
    unix, mac = (HEADER + "\n" + "\n".join(rows) + "\n"), (HEADER + "\r" + "\r".join(rows) + "\r")

    def summary(items):
        return [
            (i.line, type(i).__name__, i.errors[0].reason if isinstance(i, RowError) else "") for i in items
        ]

    mac_items = read(mac)
    assert summary(mac_items) == summary(read(unix.replace("\r\n", "\n")))
    assert errors_of(mac_items)[0][:2] == (3002, "-") and mac_items[-1].line == 6002
